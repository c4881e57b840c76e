// Builds the web dial page into dist/ (what the engine serves at /phone):
// src/phone.js bundled with JsSIP into one ES module, the HTML and CSS
// copied. Run by scripts/web (npm ci, then this).
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'phone.js')],
  outfile: join(dist, 'phone.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const file of ['index.html', 'phone.css']) {
  await copyFile(join(here, 'src', file), join(dist, file));
}
console.log(`web: built ${dist}`);
