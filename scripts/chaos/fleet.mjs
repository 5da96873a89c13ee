/**
 * The peers of a chaos run: `node bot.js` (supervisor + worker, CONTINUOUS_MODE=true) in each
 * peer's namespace, its own DATA_DIR under the run folder, static discovery over the lab's 10.x
 * addresses (never mDNS in the root namespace), FAULT_INJECTION on, paper trading on EXCHANGE=sim,
 * and the fakes as AI provider, feed and webhook receiver. Every process is signalled by PID only,
 * and only while /proc shows it is still the one we started (scripts/lib/proc.mjs).
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BOT_JS, childPids, isAlive, readStat, rssBytes, signalOurs, sleep } from '../lib/proc.mjs';

const STOP_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 4_000;

export class Fleet {
  /**
   * @param {object} o
   * @param {ReturnType<import('./netlab.mjs').createNetLab>} o.lab
   * @param {string} o.runDir
   * @param {Record<string,string>} o.shared env every peer gets (secret, token, fakes, store)
   */
  constructor({ lab, runDir, shared }) {
    this.lab = lab;
    this.runDir = runDir;
    this.shared = shared;
    this.token = shared.API_TOKEN;
    this.peers = lab.peers.map((p, i) => ({
      index: i,
      id: `peer-${i + 1}`,
      address: p.address,
      port: p.port,
      dataDir: join(runDir, `peer-${i + 1}`),
      proc: undefined,
      /** { pid, startTime } of the supervisor we started last. */
      sup: undefined,
      starts: 0,
    }));
  }

  get size() {
    return this.peers.length;
  }

  url(i, path) {
    const p = this.peers[i];
    return `http://${p.address}:${p.port}${path}`;
  }

  envFor(i) {
    const p = this.peers[i];
    const others = this.peers.filter((q) => q.index !== i).map((q) => `${q.address}:${q.port}`);
    return {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? p.dataDir,
      ...this.shared,
      PORT: String(p.port),
      HOST: p.address,
      DATA_DIR: p.dataDir,
      LOG_DIR: join(p.dataDir, 'logs'),
      PEER_ID: p.id,
      // Static discovery only: mDNS must never run in the root namespace, and these are the
      // bridge's addresses (or loopback ports), which is all a peer needs.
      MESH_DISCOVERY: 'static',
      MESH_PEERS: others.join(','),
      HTTP_ALLOWED_HOSTS: p.address,
    };
  }

  /** Starts peer i (again); its output is appended to DATA_DIR/out.log. */
  start(i) {
    const p = this.peers[i];
    mkdirSync(p.dataDir, { recursive: true });
    const child = this.lab.spawnIn(i, process.execPath, [BOT_JS], {
      env: this.envFor(i),
      cwd: p.dataDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(join(p.dataDir, 'out.log'), { flags: 'a' });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.once('exit', () => log.end());
    p.proc = child;
    p.sup = { pid: child.pid, startTime: readStat(child.pid)?.startTime };
    p.starts++;
    return child;
  }

  running(i) {
    const s = this.peers[i].sup;
    return !!s && isAlive(s.pid, s.startTime);
  }

  supervisorPid(i) {
    return this.running(i) ? this.peers[i].sup.pid : undefined;
  }

  /** The worker: the supervisor's only child. */
  workerPid(i) {
    const sup = this.supervisorPid(i);
    return sup ? childPids(sup)[0] : undefined;
  }

  /** Signals peer i's worker (SIGKILL, SIGSTOP, SIGCONT); returns its PID or undefined. */
  signalWorker(i, signal) {
    const pid = this.workerPid(i);
    if (pid === undefined) return undefined;
    signalOurs(pid, readStat(pid)?.startTime, signal);
    return pid;
  }

  /**
   * Stops peer i: SIGTERM to the supervisor (it stops its worker, exit 0 within 10 s), SIGKILL of
   * both after STOP_TIMEOUT_MS; `hard` is SIGKILL of both at once (a lost machine).
   */
  async stop(i, { hard = false } = {}) {
    const p = this.peers[i];
    if (!this.running(i)) return;
    const { pid, startTime } = p.sup;
    const worker = this.workerPid(i);
    const workerStart = worker ? readStat(worker)?.startTime : undefined;
    // A stopped worker cannot stop gracefully: wake it first.
    if (worker) signalOurs(worker, workerStart, 'SIGCONT');
    const exited = new Promise((resolve) => {
      if (p.proc.exitCode !== null || p.proc.signalCode !== null) resolve();
      else p.proc.once('exit', resolve);
    });
    if (hard) {
      signalOurs(pid, startTime, 'SIGKILL');
      if (worker) signalOurs(worker, workerStart, 'SIGKILL');
    } else {
      signalOurs(pid, startTime, 'SIGTERM');
    }
    const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
    if (timedOut) signalOurs(pid, startTime, 'SIGKILL');
    if (worker) {
      for (let k = 0; k < 50 && isAlive(worker, workerStart); k++) {
        if (k === 25) signalOurs(worker, workerStart, 'SIGKILL');
        await sleep(100);
      }
    }
    await exited;
  }

  /** RSS of peer i (supervisor + worker), bytes; 0 when it is not running. */
  rss(i) {
    const sup = this.supervisorPid(i);
    if (!sup) return 0;
    const worker = this.workerPid(i);
    return rssBytes(sup) + (worker ? rssBytes(worker) : 0);
  }

  async get(i, path, { token = false } = {}) {
    const res = await fetch(this.url(i, path), {
      headers: token ? { authorization: `Bearer ${this.token}` } : {},
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`GET ${path} on ${this.peers[i].id}: ${res.status}`);
    return res.json();
  }

  /** POST with the token; resolves { status, body } (any status), rejects on no answer. */
  async post(i, path, body) {
    const res = await fetch(this.url(i, path), {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  }

  /** Stops every peer (gracefully, at once); used at the end and on SIGINT. */
  async stopAll() {
    await Promise.all(this.peers.map((_, i) => this.stop(i)));
  }

  /** Synchronous last resort for an 'exit' handler: SIGKILL whatever of ours still runs. */
  killAllSync() {
    for (const [i, p] of this.peers.entries()) {
      if (!this.running(i)) continue;
      const worker = this.workerPid(i);
      if (worker) signalOurs(worker, readStat(worker)?.startTime, 'SIGKILL');
      signalOurs(p.sup.pid, p.sup.startTime, 'SIGKILL');
    }
  }
}
