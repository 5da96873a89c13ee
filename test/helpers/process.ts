/**
 * Starts the built `bot.js` as a real child process (`node bot.js`) for integration tests: a free
 * port on 127.0.0.1, temp DATA_DIR and LOG_DIR, a clean environment, stdout/stderr kept for the
 * failure report, and a cleanup registered with `onTestFinished` that SIGKILLs only the processes
 * this helper started, by PID. It is the only place the tests start `bot.js`.
 *
 * mDNS never runs in the root network namespace (it would multicast out of the machine's real
 * interface), so MESH_SECRET, which turns discovery on, is accepted only with MESH_DISCOVERY=static
 * (loopback dials, no packets elsewhere), or for a peer started inside a network namespace of the
 * test's own (`netns`, see netns.ts): the process is then exec'd there by `nsenter` and reached
 * through that namespace's Unix-socket relay.
 *
 * The worker of continuous mode is not visible through the API, so the helper finds it as the bot
 * process's child (/proc/<pid>/task/<tid>/children) and remembers every worker it saw with its start
 * time: a PID is only ever killed while /proc still shows the same process (no PID-reuse accidents).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

/** The built entry point; `npx tsc -p tsconfig.build.json` must have run. */
export const BOT_JS = fileURLToPath(new URL('../../bot.js', import.meta.url));

export const LOOPBACK = '127.0.0.1';

/** Node 20 has no Promise.withResolvers. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A port that was free a moment ago (the kernel picks it); startBot retries on EADDRINUSE. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port from the kernel'))));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// /proc: children, liveness with PID-reuse protection

interface ProcStat {
  state: string;
  ppid: number;
  /** Clock ticks after boot; with the PID it identifies one process for its whole life. */
  startTime: string;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  return { state: fields[0] ?? '?', ppid: Number(fields[1]), startTime: fields[19] ?? '' };
}

/** The start time of a process (clock ticks after boot), which with its PID names it for its life. */
export function startTimeOf(pid: number): string | undefined {
  return readStat(pid)?.startTime;
}

/** True while the process runs; a zombie (exited, not yet reaped) counts as gone. */
export function isAlive(pid: number, startTime?: string): boolean {
  const stat = readStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/** The PIDs of a process's children (every thread's list, as the kernel keeps them per thread). */
export function childPids(pid: number): number[] {
  const pids = new Set<number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const tid of tasks) {
    try {
      for (const word of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/)) {
        if (word) pids.add(Number(word));
      }
    } catch {
      // The thread ended while we read.
    }
  }
  return [...pids].filter((child) => isAlive(child));
}

// ---------------------------------------------------------------------------------------------
// HTTP over loopback, one connection per request (no pooled sockets to a killed worker)

export interface HttpAnswer {
  status: number;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: test code reads JSON answers field by field.
  json(): any;
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  token?: string;
  timeoutMs?: number;
  /** Connect to this Unix socket instead of the URL's host:port (a peer inside a namespace). */
  socketPath?: string;
}

export function http(url: string, options: RequestOptions = {}): Promise<HttpAnswer> {
  const { method = 'GET', body, token, timeoutMs = 5_000, socketPath } = options;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { connection: 'close' };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const where = socketPath === undefined ? {} : { socketPath };
    const req = httpRequest(url, { method, headers, agent: false, timeout: timeoutMs, ...where }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Polls GET <baseUrl>/health until it answers 200; `alive` lets a dead process end the wait early. */
export async function waitForHealth(
  baseUrl: string,
  {
    timeoutMs = 30_000,
    intervalMs = 50,
    alive = () => true,
    socketPath,
  }: { timeoutMs?: number; intervalMs?: number; alive?: () => boolean; socketPath?: string } = {},
): Promise<HttpAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the process exited before ${baseUrl}/health answered (${last})`);
    try {
      const answer = await http(`${baseUrl}/health`, {
        timeoutMs: 2_000,
        ...(socketPath === undefined ? {} : { socketPath }),
      });
      if (answer.status === 200) return answer;
      last = `status ${answer.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${baseUrl}/health did not answer 200 within ${timeoutMs} ms (${last})`);
}

// ---------------------------------------------------------------------------------------------
// The bot process

export interface BotDirs {
  /** The temp directory (also the cwd, so no stray `.env` is read). */
  root: string;
  dataDir: string;
  logDir: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  at: number;
}

export interface StartOptions {
  /** Added to the base environment (HOST, PORT, DATA_DIR, LOG_DIR, LOG_LEVEL); wins over it. */
  env?: Record<string, string>;
  /** Directories of an earlier start, to restart on the same DATA_DIR; new temp dirs otherwise. */
  dirs?: BotDirs;
  /** Wait until /health answers 200 (default true). */
  waitForHealth?: boolean;
  healthTimeoutMs?: number;
  /**
   * Run the peer inside this network namespace (made by the test, see netns.ts). Needs env.PORT:
   * the namespace's relay serves a fixed list of ports.
   */
  netns?: NetNamespace;
}

/** A network namespace of the test's own, as startBot needs it. */
export interface NetNamespace {
  /** `/proc/<pid>/ns/net` of a process that keeps the namespace alive. */
  readonly path: string;
  /** A Unix socket (file system sockets cross network namespaces) that reaches 127.0.0.1:port inside. */
  socketFor(port: number): string;
}

export interface BotProcess {
  /** PID of `node bot.js` (the supervisor in continuous mode). */
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly dirs: BotDirs;
  readonly child: ChildProcess;
  /** Resolves when `node bot.js` exits. */
  readonly exited: Promise<ExitInfo>;
  /** Resolves when its stdout and stderr are closed (after exit, once no worker holds them). */
  readonly closed: Promise<void>;
  isRunning(): boolean;
  stdout(): string;
  stderr(): string;
  /** The token generated into DATA_DIR/api-token. */
  apiToken(): string;
  /** Live children of the bot process: in continuous mode, its worker. */
  children(): number[];
  /** Waits for a live worker, optionally one other than `not`; returns its PID. */
  waitForWorker(options?: { not?: number; timeoutMs?: number }): Promise<number>;
  /** Every worker PID seen so far. */
  workersSeen(): number[];
  get(path: string): Promise<HttpAnswer>;
  post(path: string, body?: unknown, token?: string): Promise<HttpAnswer>;
  /** Sends a signal and waits for the exit; rejects after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo & { elapsedMs: number }>;
  /** SIGKILLs the bot process and every worker it had that still runs; idempotent. */
  kill(): Promise<void>;
}

/** Processes alive in this test worker, so an abrupt exit of vitest still kills them. */
const live = new Set<BotProcess>();
process.once('exit', () => {
  for (const bot of live) void bot.kill();
});

export function makeDirs(): BotDirs {
  const root = mkdtempSync(join(tmpdir(), 'qb-integ-'));
  return { root, dataDir: join(root, 'data'), logDir: join(root, 'logs') };
}

/**
 * Starts `node bot.js` and registers its cleanup with `onTestFinished` (call it inside a test).
 * Temp dirs it created are removed after the processes are gone; the captured output is printed
 * when the test failed.
 */
export async function startBot(options: StartOptions = {}): Promise<BotProcess> {
  checkDiscoveryIsContained(options);
  const ownDirs = options.dirs === undefined;
  const dirs = options.dirs ?? makeDirs();
  if (ownDirs) onTestFinished(() => rmSync(dirs.root, { recursive: true, force: true }));

  const fixedPort = options.env?.PORT !== undefined;
  if (options.netns && !fixedPort) throw new Error('a peer inside a namespace needs a fixed env.PORT');
  const attempts = fixedPort || options.waitForHealth === false ? 1 : 3;
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ? Number(options.env?.PORT) : await freePort();
    const bot = spawnBot(port, dirs, options.env ?? {}, options.netns);
    if (options.waitForHealth === false) return bot;
    try {
      await waitForHealth(bot.url, {
        timeoutMs: options.healthTimeoutMs ?? 30_000,
        alive: bot.isRunning,
        ...(options.netns ? { socketPath: options.netns.socketFor(port) } : {}),
      });
      return bot;
    } catch (err) {
      // Someone took the port between freePort() and the bind: try another one.
      if (attempt < attempts && bot.stdout().includes('EADDRINUSE')) {
        await bot.kill();
        continue;
      }
      throw err;
    }
  }
}

/**
 * With MESH_SECRET a peer starts discovery. In the root namespace only static discovery is allowed
 * (dials to the listed loopback addresses, nothing else); mdns and dns only inside a namespace of
 * the test's own, which the kernel must confirm is not ours.
 */
function checkDiscoveryIsContained(options: StartOptions): void {
  const env = options.env ?? {};
  if (env.MESH_SECRET === undefined) return;
  const kinds = (env.MESH_DISCOVERY ?? 'mdns')
    .split(',')
    .map((k) => k.trim().toLowerCase())
    .filter(Boolean);
  if (kinds.length > 0 && kinds.every((k) => k === 'static')) return;
  if (options.netns && namespaceId(options.netns.path) !== namespaceId('/proc/self/ns/net')) return;
  throw new Error(
    `MESH_DISCOVERY=${env.MESH_DISCOVERY ?? '(default mdns)'} with MESH_SECRET runs only inside a network ` +
      'namespace of the test (startBot({ netns })): mDNS must never run in the root namespace',
  );
}

function namespaceId(path: string): string {
  try {
    return readlinkSync(path);
  } catch (err) {
    throw new Error(`cannot read the network namespace ${path}: ${(err as Error).message}`);
  }
}

function spawnBot(
  port: number,
  dirs: BotDirs,
  extraEnv: Record<string, string>,
  netns: NetNamespace | undefined,
): BotProcess {
  // A clean environment: nothing of the developer's shell (MESH_SECRET, API_TOKEN...) leaks in.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dirs.root,
    HOST: LOOPBACK,
    PORT: String(port),
    DATA_DIR: dirs.dataDir,
    LOG_DIR: dirs.logDir,
    LOG_LEVEL: 'info',
    ...extraEnv,
  };
  // nsenter joins the namespace and execs node without forking: the PID is node's own.
  const [command, args] = netns
    ? ['nsenter', [`--net=${netns.path}`, '--', process.execPath, BOT_JS]]
    : [process.execPath, [BOT_JS]];
  const child = spawn(command, args, { cwd: dirs.root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${command} ${args.join(' ')}`);
  const pid = child.pid;
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });

  let exitInfo: ExitInfo | undefined;
  const exited = deferred<ExitInfo>();
  const closed = deferred<void>();
  child.once('exit', (code, signal) => {
    exitInfo = { code, signal, at: Date.now() };
    exited.resolve(exitInfo);
  });
  child.once('close', () => closed.resolve());

  // Remember every worker with its start time, so cleanup can kill it even after the bot died.
  const workers = new Map<number, string>();
  const track = () => {
    if (exitInfo) return [];
    const pids = childPids(pid);
    for (const p of pids) {
      const stat = readStat(p);
      if (stat && !workers.has(p)) workers.set(p, stat.startTime);
    }
    return pids;
  };
  const tracker = setInterval(track, 50);
  tracker.unref();

  const isRunning = () => exitInfo === undefined;
  const url = `http://${LOOPBACK}:${port}`;
  const via = netns ? { socketPath: netns.socketFor(port) } : {};
  let killing: Promise<void> | undefined;

  const bot: BotProcess = {
    pid,
    port,
    url,
    dirs,
    child,
    exited: exited.promise,
    closed: closed.promise,
    isRunning,
    stdout: () => out,
    stderr: () => err,
    apiToken: () => readFileSync(join(dirs.dataDir, 'api-token'), 'utf8').trim(),
    children: track,
    workersSeen: () => [...workers.keys()],
    async waitForWorker({ not, timeoutMs = 30_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (!isRunning()) throw new Error('the bot process exited while waiting for its worker');
        const worker = track().find((p) => p !== not);
        if (worker !== undefined) return worker;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no worker process under ${pid} within ${timeoutMs} ms`);
    },
    get: (path) => http(`${url}${path}`, via),
    post: (path, body, token) => http(`${url}${path}`, { method: 'POST', body, token, ...via }),
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      track();
      const sentAt = Date.now();
      if (isRunning()) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`pid ${pid} did not exit within ${timeoutMs} ms of ${signal}`)),
          timeoutMs,
        );
      });
      try {
        const info = await Promise.race([exited.promise, timeout]);
        return { ...info, elapsedMs: info.at - sentAt };
      } finally {
        clearTimeout(timer);
      }
    },
    kill() {
      killing ??= (async () => {
        // Children first (the bot cannot fork another one once it is dead, and a worker that lost
        // its supervisor stops by itself: belt and braces).
        track();
        clearInterval(tracker);
        if (isRunning()) child.kill('SIGKILL');
        for (const [worker, startTime] of workers) {
          if (isAlive(worker, startTime)) {
            try {
              process.kill(worker, 'SIGKILL');
            } catch {
              // Gone meanwhile.
            }
          }
        }
        const deadline = Date.now() + 5_000;
        while (
          Date.now() < deadline &&
          (isRunning() || [...workers].some(([worker, startTime]) => isAlive(worker, startTime)))
        ) {
          await new Promise((r) => setTimeout(r, 20));
        }
        live.delete(bot);
      })();
      return killing;
    },
  };
  live.add(bot);

  onTestFinished(async (context) => {
    await bot.kill();
    if (context.task.result?.state === 'fail') {
      process.stderr.write(
        `\n----- node bot.js (pid ${pid}, port ${port}) exit ${JSON.stringify(exitInfo)}; workers seen: ${bot
          .workersSeen()
          .join(', ')}\n----- stdout\n${out}\n----- stderr\n${err}\n-----\n`,
      );
    }
  });
  return bot;
}
