// Drives the web dial page in a real headless Chromium (playwright-core),
// for engine/tests/browser.rs. It reports on stdout, one JSON object a line:
//   {"event":"ready"}                     page loaded, JsSIP connected over /ws
//   {"event":"answered"}                  the call is up (or:)
//   {"event":"failed","status":"..."}     the call failed; the script ends
//   {"event":"media"}                     ICE + DTLS up (with --keys: then keyed)
//   {"event":"in-room","conference":..., "participants":[...]}
//   {"event":"measured","levels":{"1000":dB,...},"ok":bool}
//   {"event":"done"}                      hung up on request, browser closed
//   {"event":"error","message":"..."}     then exit code 1
// and, once in the room, waits for a line "hangup" on stdin (or stdin's end).
//
// Options: --url http://127.0.0.1:PORT  --wav FILE (the fake microphone)
//   --dial NUMBER  [--keys DIGITS] [--room NAME] [--hear HZ --not-hear HZ]
//   [--margin DB] [--screenshot FILE] [--timeout MS] [--until answer]
// Every wait is for an event, bounded by --timeout (default 30 s).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    wav: { type: 'string' },
    dial: { type: 'string' },
    keys: { type: 'string' },
    room: { type: 'string' },
    hear: { type: 'string' },
    'not-hear': { type: 'string' },
    margin: { type: 'string', default: '20' },
    screenshot: { type: 'string' },
    timeout: { type: 'string', default: '30000' },
    until: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
  },
});
const timeout = Number(opt.timeout);
const report = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

// stdin: "hangup" (or its end) ends the call.
const hangupRequested = new Promise((resolve) => {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => { if (line.trim() === 'hangup') resolve(); });
  lines.on('close', resolve);
});

const profile = await mkdtemp(join(tmpdir(), 'switchboard-chromium-'));
let browser;
try {
  // A fresh profile (--user-data-dir) for every run.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: opt.chromium,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${opt.wav}`,
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 380, height: 760 },
    deviceScaleFactor: 2,
    timeout,
  });
  const page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(timeout);
  page.on('console', (m) => process.stderr.write(`[page ${m.type()}] ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));

  await page.goto(`${opt.url}/phone/`);
  await page.waitForFunction(() => window.phone && window.phone.state === 'ready');
  report({ event: 'ready' });
  if (!opt.dial) {
    if (opt.screenshot) await screenshot(page);
    report({ event: 'done' });
  } else {
    await run(page);
  }
} catch (e) {
  report({ event: 'error', message: String(e && e.stack || e) });
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  await rm(profile, { recursive: true, force: true }).catch(() => {});
  process.exit();
}

async function run(page) {
  // Type the number and press Call, as a person would.
  await page.fill('#number', opt.dial);
  await page.click('#call');
  const outcome = await page.waitForFunction(() => window.phone.outcome).then((h) => h.jsonValue());
  if (outcome !== 'answered') {
    report({ event: 'failed', status: outcome });
    return;
  }
  report({ event: 'answered', callId: await page.evaluate(() => window.phone.callId) });
  if (opt.until === 'answer') {
    await page.click('#hangup');
    await page.waitForFunction(() => window.phone.state === 'ready');
    report({ event: 'done' });
    return;
  }

  await page.waitForFunction(() => window.phone.media === 'connected');
  report({ event: 'media' });
  if (opt.keys) {
    for (const digit of opt.keys) {
      await page.click(`#keypad button[data-digit="${digit}"]`);
    }
  }

  if (opt.room) {
    const room = await page.waitForFunction(
      (name) => window.phone.conference === name && window.phone.participants.length >= 2
        ? { conference: window.phone.conference, participants: window.phone.participants }
        : null,
      opt.room,
    ).then((h) => h.jsonValue());
    report({ event: 'in-room', ...room });
  }

  if (opt.hear) {
    // Measure in half-second windows until the tone is there with its
    // margin, or the time is up (then report the last measurement).
    const hear = Number(opt.hear);
    const others = (opt['not-hear'] || '').split(',').filter(Boolean).map(Number);
    const margin = Number(opt.margin);
    const deadline = Date.now() + timeout;
    let levels;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      levels = await page.evaluate((freqs) => window.phone.measure(freqs, 500), [hear, ...others]);
      ok = levels[hear] > -45 && others.every((hz) => levels[hear] - levels[hz] >= margin);
    }
    report({ event: 'measured', levels, ok });
  }

  if (opt.screenshot) await screenshot(page);
  await hangupRequested;
  await page.click('#hangup');
  await page.waitForFunction(() => window.phone.state === 'ready');
  report({ event: 'done' });
}

// The phone card with a margin of the page around it.
async function screenshot(page) {
  const box = await page.locator('main.phone').boundingBox();
  const margin = 16;
  await page.screenshot({
    path: opt.screenshot,
    clip: {
      x: Math.max(0, box.x - margin),
      y: Math.max(0, box.y - margin),
      width: box.width + 2 * margin,
      height: box.height + 2 * margin,
    },
  });
}
