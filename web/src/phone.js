// The web dial page: a JsSIP user agent over SIP-over-WebSocket (/ws on the
// page's own host), one call at a time, DTMF as RFC 4733 telephone-events
// (RTCDTMFSender), a level meter and the conference participants list.
//
// `window.phone` is the page's small API, used by the browser tests:
//   phone.ready            a promise, settled once the WebSocket is up
//   phone.dial(number)     places a call (like typing it and pressing Call)
//   phone.press(digits)    keys digits on the keypad
//   phone.hangup()
//   phone.state            'connecting' | 'ready' | 'calling' | 'in-call' | 'error'
//   phone.outcome          null while a call is placed, then 'answered' or
//                          'failed <code> <cause>'
//   phone.callId           the SIP Call-ID of the current call
//   phone.media            the call's RTCPeerConnection state ('connected'
//                          once ICE and DTLS are up: DTMF can be sent)
//   phone.measure(freqs, ms)  the received audio's level at each frequency
//                          (dBFS, from the WebAudio analyser), averaged over ms
//   phone.participants     the last participants list fetched

import JsSIP from 'jssip';

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  form: $('dial'),
  number: $('number'),
  call: $('call'),
  keypad: $('keypad'),
  sent: $('sent'),
  mute: $('mute'),
  hangup: $('hangup'),
  level: $('level'),
  room: $('room'),
  roomName: $('room-name'),
  participants: $('participants'),
  remote: $('remote'),
};

const PARTICIPANTS_EVERY_MS = 1000;

let session = null;
let audio = null; // { context, analyser, source }
let pollTimer = null;

const phone = {
  state: 'connecting',
  outcome: null,
  callId: null,
  media: null,
  participants: [],
  conference: null,
  ready: null,
  dial,
  press,
  hangup,
  measure,
};
window.phone = phone;

function setState(state, text) {
  phone.state = state;
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  const inCall = state === 'calling' || state === 'in-call';
  ui.call.disabled = state !== 'ready';
  ui.hangup.disabled = !inCall;
  ui.mute.disabled = state !== 'in-call';
}

// ---- the user agent -------------------------------------------------------

const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const domain = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
const socket = new JsSIP.WebSocketInterface(wsUrl);
const ua = new JsSIP.UA({
  sockets: [socket],
  uri: `sip:web-${Math.random().toString(36).slice(2, 10)}@${domain}`,
  display_name: 'Web phone',
  register: false,
  session_timers: false,
  user_agent: 'switchboard-phone',
});

phone.ready = new Promise((resolve, reject) => {
  ua.on('connected', () => {
    if (!session) setState('ready', 'Ready');
    resolve();
  });
  ua.on('disconnected', (e) => {
    setState('error', 'Not connected to the engine');
    if (e && e.error) reject(new Error('WebSocket failed'));
  });
});

ua.on('newRTCSession', ({ session: s, originator, request }) => {
  if (originator !== 'local') {
    // Nobody calls the page.
    s.terminate({ status_code: 486 });
    return;
  }
  session = s;
  phone.callId = request.call_id;
  // For calls we place, JsSIP creates the RTCPeerConnection (and fires
  // 'peerconnection') before announcing the session: take it from the
  // session then.
  if (s.connection) watchPeerConnection(s.connection);
  else s.on('peerconnection', ({ peerconnection }) => watchPeerConnection(peerconnection));
  s.on('progress', () => setState('calling', 'Ringing…'));
  s.on('accepted', () => {
    phone.outcome = 'answered';
    setState('in-call', `In call with ${phone.number}`);
    startPolling();
  });
  s.on('ended', ({ cause }) => endOfCall(`Call ended (${cause})`));
  s.on('failed', ({ cause, message }) => {
    const code = message && message.status_code ? ` ${message.status_code}` : '';
    phone.outcome = `failed${code} ${cause}`;
    endOfCall(`Call failed:${code} ${cause}`);
  });
});

ua.start();

function dial(number) {
  number = String(number || '').trim();
  if (!number || phone.state !== 'ready') return false;
  phone.number = number;
  phone.outcome = null;
  ui.number.value = number;
  ui.sent.textContent = '';
  setState('calling', `Calling ${number}…`);
  // ICE-lite on the engine's side: no STUN/TURN needed.
  ua.call(`sip:${encodeURIComponent(number)}@${domain}`, {
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: [] },
    rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
  });
  return true;
}

function press(digits) {
  for (const digit of String(digits)) {
    if (!/^[0-9*#]$/.test(digit)) continue;
    ui.sent.textContent += digit;
    if (session && phone.state === 'in-call') {
      session.sendDTMF(digit, { transportType: JsSIP.C.DTMF_TRANSPORT.RFC2833, duration: 160, interToneGap: 80 });
    }
  }
}

function hangup() {
  if (session && !session.isEnded()) session.terminate();
}

function toggleMute() {
  if (!session || phone.state !== 'in-call') return;
  const muted = session.isMuted().audio;
  if (muted) session.unmute({ audio: true });
  else session.mute({ audio: true });
  ui.mute.setAttribute('aria-pressed', String(!muted));
  ui.mute.textContent = muted ? 'Mute' : 'Unmute';
}

function endOfCall(text) {
  session = null;
  phone.media = null;
  stopPolling();
  ui.mute.setAttribute('aria-pressed', 'false');
  ui.mute.textContent = 'Mute';
  ui.remote.srcObject = null;
  if (audio) {
    audio.source.disconnect();
    audio.source = null;
  }
  const connected = ua.isConnected();
  setState(connected ? 'ready' : 'error', connected ? `${text}. Ready` : text);
}

// ---- received audio: playback, meter, measurements -------------------------

function watchPeerConnection(pc) {
  phone.media = pc.connectionState;
  pc.addEventListener('connectionstatechange', () => {
    phone.media = pc.connectionState;
  });
  pc.addEventListener('track', (event) => {
    if (event.track.kind !== 'audio') return;
    const stream = event.streams[0] || new MediaStream([event.track]);
    // Chrome feeds WebAudio from a remote stream only while a media element
    // plays it too.
    ui.remote.srcObject = stream;
    ui.remote.play().catch(() => {});
    attachAnalyser(stream);
  });
}

function attachAnalyser(stream) {
  if (!audio) {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    audio = { context, analyser, source: null };
    requestAnimationFrame(drawMeter);
  }
  audio.context.resume().catch(() => {});
  if (audio.source) audio.source.disconnect();
  audio.source = audio.context.createMediaStreamSource(stream);
  audio.source.connect(audio.analyser);
}

const meterBuffer = new Float32Array(2048);
function drawMeter() {
  if (audio) {
    audio.analyser.getFloatTimeDomainData(meterBuffer);
    let sum = 0;
    for (const x of meterBuffer) sum += x * x;
    const rms = Math.sqrt(sum / meterBuffer.length);
    // Roughly -60..0 dBFS onto 0..1.
    const db = 20 * Math.log10(rms + 1e-9);
    ui.level.value = Math.max(0, Math.min(1, (db + 60) / 60));
  }
  requestAnimationFrame(drawMeter);
}

// The level (dBFS) of each frequency in the received audio, averaged over
// `ms`: the analyser's spectrum, read every 50 ms, at the strongest bin
// within 15 Hz of each frequency.
async function measure(freqs, ms = 1000) {
  if (!audio || !audio.source) throw new Error('no received audio');
  const list = Array.isArray(freqs) ? freqs : [freqs];
  const { analyser, context } = audio;
  const bins = new Float32Array(analyser.frequencyBinCount);
  const binHz = context.sampleRate / analyser.fftSize;
  const sums = list.map(() => 0);
  let reads = 0;
  const until = performance.now() + ms;
  while (performance.now() < until) {
    analyser.getFloatFrequencyData(bins);
    list.forEach((hz, i) => {
      const lo = Math.max(0, Math.floor((hz - 15) / binHz));
      const hi = Math.min(bins.length - 1, Math.ceil((hz + 15) / binHz));
      let best = -Infinity;
      for (let b = lo; b <= hi; b++) best = Math.max(best, bins[b]);
      sums[i] += Math.pow(10, Math.max(best, -200) / 10);
    });
    reads += 1;
    await new Promise((r) => setTimeout(r, 50));
  }
  const result = {};
  list.forEach((hz, i) => {
    result[hz] = 10 * Math.log10(sums[i] / reads + 1e-30);
  });
  return result;
}

// ---- conference participants ------------------------------------------------

function startPolling() {
  stopPolling();
  const poll = async () => {
    if (!session || !phone.callId) return;
    try {
      const response = await fetch(`/phone/participants?call=${encodeURIComponent(phone.callId)}`,
        { cache: 'no-store' });
      if (response.ok) showRoom(await response.json());
    } catch (_) {
      // The next poll tries again.
    }
    if (session) pollTimer = setTimeout(poll, PARTICIPANTS_EVERY_MS);
  };
  poll();
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
  showRoom({ conference: null, participants: [] });
}

function showRoom({ conference, participants }) {
  phone.conference = conference;
  phone.participants = participants;
  ui.room.hidden = !conference;
  ui.roomName.textContent = conference || '';
  ui.participants.replaceChildren(...participants.map((p) => {
    const li = document.createElement('li');
    li.className = p.talking ? 'talking' : '';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = p.you ? `${p.name} (you)` : p.name;
    const tags = document.createElement('span');
    tags.className = 'tags';
    tags.textContent = [p.muted && 'muted', p.talking && 'talking'].filter(Boolean).join(', ');
    li.append(name, tags);
    return li;
  }));
}

// ---- controls -----------------------------------------------------------------

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  dial(ui.number.value);
});
ui.keypad.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-digit]');
  if (!button) return;
  if (session) press(button.dataset.digit);
  else ui.number.value += button.dataset.digit;
});
ui.hangup.addEventListener('click', hangup);
ui.mute.addEventListener('click', toggleMute);
setState('connecting', 'Connecting…');
