/**
 * A fleet of real peers (`node bot.js`, continuous mode: a top process that supervises a worker) on
 * 127.0.0.1 for the soak script: one generated MESH_SECRET and API_TOKEN, static discovery (never
 * mDNS: this runs in the root network namespace), MESH_PEERS = every other peer, a temp DATA_DIR
 * each. Every process is known by PID and start time; stop() and the exit handler signal only
 * those, so nothing else on the machine is ever touched.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BOT_JS,
  childPids,
  freePort,
  HOST,
  isAlive,
  killOnExit,
  readStat,
  signalOurs,
  staticPeers,
} from './proc.mjs';

/** Peers exit within 10 s of SIGTERM (the graceful stop's own bound); this is the backstop. */
const STOP_GRACE_MS = 15_000;

/** pid -> start time of every process of ours, across fleets, that may still run. */
const ours = new Map();
const killAll = () => {
  for (const [pid, startTime] of ours) signalOurs(pid, startTime, 'SIGKILL');
};
let exitHook = false;

/** A wait that does not keep the process alive (raced against something else). */
const backstop = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * @param {object} o
 * @param {number} o.count peers
 * @param {string} o.root folder that receives peer-N/ (data, logs, out.log)
 * @param {Record<string, string>} [o.env] extra environment for every peer
 * @param {(i: number) => Record<string, string>} [o.envFor] extra environment for peer i (0-based)
 * @param {boolean} [o.continuous] CONTINUOUS_MODE (true: top process + worker; false: one process)
 */
export async function startFleet({ count, root, env = {}, envFor = () => ({}), continuous = true }) {
  const secret = randomBytes(32).toString('base64url');
  const token = randomBytes(32).toString('base64url');
  const ports = [];
  while (ports.length < count) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  if (!exitHook) {
    exitHook = true;
    killOnExit(killAll);
  }
  const mine = new Set();

  const peers = ports.map((port, i) => {
    const name = `peer-${i + 1}`;
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const child = spawn(process.execPath, [BOT_JS], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? dir,
        HOST,
        PORT: String(port),
        DATA_DIR: join(dir, 'data'),
        LOG_DIR: join(dir, 'logs'),
        LOG_LEVEL: 'warn',
        PEER_ID: name,
        CONTINUOUS_MODE: String(continuous),
        MESH_SECRET: secret,
        MESH_DISCOVERY: 'static',
        MESH_PEERS: staticPeers(ports, port),
        API_TOKEN: token,
        ...env,
        ...envFor(i),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = createWriteStream(join(dir, 'out.log'));
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    const startTime = readStat(child.pid)?.startTime;
    if (startTime !== undefined) {
      ours.set(child.pid, startTime);
      mine.add(child.pid);
    }
    const peer = {
      name,
      port,
      url: `http://${HOST}:${port}`,
      pid: child.pid,
      startTime,
      exit: undefined,
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          peer.exit = { code, signal };
          ours.delete(child.pid);
          resolve(peer.exit);
        });
      }),
      /** The live worker's PID (remembered as ours), or undefined between a death and a respawn. */
      worker() {
        if (peer.exit) return undefined;
        const pid = childPids(peer.pid).at(-1);
        if (pid === undefined) return undefined;
        if (!ours.has(pid)) {
          const s = readStat(pid);
          if (s) {
            ours.set(pid, s.startTime);
            mine.add(pid);
          }
        }
        return pid;
      },
    };
    return peer;
  });

  async function stop() {
    for (const peer of peers) {
      peer.worker(); // remember the current worker, for the backstop
      if (!peer.exit) signalOurs(peer.pid, peer.startTime, 'SIGTERM');
    }
    const all = Promise.all(peers.map((p) => p.exited));
    const timedOut = await Promise.race([all.then(() => false), backstop(STOP_GRACE_MS).then(() => true)]);
    // Workers left behind by a top process that was SIGKILLed, and anything past the grace period.
    for (const pid of mine) signalOurs(pid, ours.get(pid), 'SIGKILL');
    if (timedOut) await Promise.race([all, backstop(2_000)]);
    for (const pid of mine) {
      if (!isAlive(pid, ours.get(pid))) {
        ours.delete(pid);
        mine.delete(pid);
      }
    }
    return { timedOut, exits: peers.map((p) => p.exit) };
  }

  return { peers, token, stop };
}
