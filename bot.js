#!/usr/bin/env node
// The entry the 24/7 guide names: `node bot.js`, `CONTINUOUS_MODE=true AUTO_START=true node bot.js`.
// It only loads the built code; `npm install` builds it (the `prepare` script).
import { existsSync } from 'node:fs';

const main = new URL('./dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('quantum-bot is not built: run `npm install` (or `npm run build`) first.');
  process.exit(1);
}
await import(main.href);
