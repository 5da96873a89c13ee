#!/usr/bin/env node
// The entry the 24/7 guide names: `node bot.js`, `CONTINUOUS_MODE=true AUTO_START=true node bot.js`.
// It only loads the built code; `npm install` builds it (the `prepare` script).
//
// Keep this file to syntax that any Node.js since 14 parses: its first job is to refuse an
// unsupported Node with one clear line, before anything is loaded that could crash obscurely.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';

const NEEDED_MAJOR = 24;
const EXIT_CONFIG = 78; // EX_CONFIG: the supervisor and PM2 docs treat it as "do not restart"
const major = Number(process.versions.node.split('.')[0]);
if (!(major >= NEEDED_MAJOR)) {
  console.error(
    `quantum-bot: Node.js ${process.versions.node} found, Node.js ${NEEDED_MAJOR} LTS or newer needed: ` +
      'run `source scripts/use-node.sh` (Node 24 from the npm registry) or install it from nodejs.org.',
  );
  process.exit(EXIT_CONFIG);
}

const main = new URL('./dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('quantum-bot is not built: run `npm install` (or `npm run build`) first.');
  process.exit(1);
}
// Node's on-disk compile cache (V8 code cache of every module loaded after this call): a start with
// a warm cache skips most of the compiling. It lives in the user's cache folder, shared by every
// peer of this user on the machine and keyed by Node version and file contents, so an upgrade
// invalidates it; NODE_COMPILE_CACHE=dir overrides the place, NODE_DISABLE_COMPILE_CACHE=1 turns
// it off. A folder that cannot be written only means a cold start, never an error.
try {
  module.enableCompileCache?.(join(homedir(), '.cache', 'quantum-bot', 'compile-cache'));
} catch {
  // No home folder: start without the cache.
}

// Start-up allocates in a burst (modules, schemas, migrations, the sim market's history) and most of
// it survives, so V8 grows the young generation to its maximum (2 x 16 MiB) and keeps it committed
// while the peer idles: 15 to 18 MiB of an idle peer's RSS (122 MiB instead of 106 with EXCHANGE=sim,
// `npm run bench:trading`). Hold the young generation at its initial size while starting; afterwards
// V8 grows it as usual when real load needs it. Only on the V8 the project is tested with (an unknown
// flag would print an error line), and never over the user's own young-generation flags.
const holdYoungGeneration =
  major === NEEDED_MAJOR &&
  !/semi-space/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS || ''}`);
if (holdYoungGeneration) v8.setFlagsFromString('--semi-space-growth-factor=1');

// Claim SIGTERM/SIGINT before the program loads: a stop request during start-up is kept for the
// role that runs (src/process/signals.ts), instead of killing the process half-started.
const signals = await import(new URL('./dist/process/signals.js', import.meta.url).href);
signals.catchStopSignals();
await import(main.href);
if (holdYoungGeneration) v8.setFlagsFromString('--semi-space-growth-factor=2'); // V8's default
// Node writes the cache when the process exits; a worker that runs for months, or dies by SIGKILL,
// would never write it. Once started (the worker's peer listens, the supervisor has forked), write it.
module.flushCompileCache?.();
