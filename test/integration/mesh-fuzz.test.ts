// Fuzzes the /mesh endpoint of a real peer process (fast-check): random and mutated handshake
// frames, oversize frames, invalid UTF-8, random sealed and unsealed frames after an authenticated
// handshake, floods of sockets and of failed handshakes. The peer must keep serving (GET /health
// 200), answer with close codes, and keep its RSS within the bound the flood script states
// (MEMORY_BOUND_BYTES over its idle RSS). Bounded: fixed run counts, well under 30 s.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { Keyring, newNonce } from '../../src/mesh/auth.js';
import { MAX_HANDSHAKE_FRAME_BYTES, MESH_PATH, message, PROTOCOL_VERSION } from '../../src/mesh/protocol.js';
import { dialHandshake, type Link } from '../../src/mesh/transport.js';
import { newSecret } from '../helpers/mesh.js';
import { startBot } from '../helpers/process.js';

/** RSS growth allowed under any unauthenticated flood with the default admission limits. */
const MEMORY_BOUND_BYTES = 64 * 1024 * 1024;
/** Close codes a handshake may end with; anything else (or no close at all) is a failure. */
const HANDSHAKE_CLOSES = new Set([1002, 1007, 1009, 4400, 4401, 4403, 4406, 4408, 4411, 4412]);
const LINK_CLOSES = new Set([1002, 1007, 1009, 4400, 4414]);
const calm = { active: false, reason: '', since: '', origin: '', epoch: 0 };

function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Local addresses 127.0.x.y: each fuzz run speaks from its own, so no per-address limit interferes. */
let nextAddress = 0;
const freshAddress = () => {
  nextAddress++;
  return `127.0.${1 + Math.floor(nextAddress / 250)}.${1 + (nextAddress % 250)}`;
};

/** One socket that sends `frames` then a final garbage frame; resolves its close code or HTTP status. */
function handshakeRun(port: number, frames: Array<{ data: Buffer; binary: boolean }>, from: string) {
  return new Promise<{ code?: number; status?: number }>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${MESH_PATH}`, {
      localAddress: from,
      perMessageDeflate: false,
    });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({});
    }, 10_000);
    ws.on('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      ws.terminate();
      resolve({ status: res.statusCode ?? 0 });
    });
    ws.once('open', () => {
      for (const f of frames) ws.send(f.data, { binary: f.binary });
      ws.send('.');
    });
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code });
    });
  });
}

const validHello = () => ({
  type: 'hello',
  v: PROTOCOL_VERSION,
  cluster: 'quantum-bot',
  peerId: 'fuzzer',
  bootId: 'fuzzer-boot',
  nonce: newNonce(),
  listenPort: 1,
  killSwitch: calm,
});

/** A valid hello with one field removed, replaced by any JSON value, or added. */
const mutatedHello = fc
  .tuple(
    fc.constantFrom(...Object.keys(validHello()), 'extra', '__proto__', 'constructor'),
    fc.oneof(fc.constant(undefined), fc.jsonValue()),
  )
  .map(([key, value]) => {
    const hello: Record<string, unknown> = validHello();
    if (value === undefined) delete hello[key];
    else hello[key] = value;
    return Buffer.from(JSON.stringify(hello));
  });

const handshakeFrame = fc.oneof(
  mutatedHello.map((data) => ({ data, binary: false })),
  fc.json().map((s) => ({ data: Buffer.from(s), binary: false })),
  fc.uint8Array({ maxLength: 512 }).map((a) => ({ data: Buffer.from(a), binary: true })),
  // Text frames of raw bytes: mostly invalid UTF-8 (ws closes with 1007 before we see them).
  fc.uint8Array({ minLength: 1, maxLength: 512 }).map((a) => ({ data: Buffer.from(a), binary: false })),
  fc.integer({ min: 1, max: 64 * 1024 }).map((n) => ({
    data: Buffer.alloc(MAX_HANDSHAKE_FRAME_BYTES + n, 0x7b),
    binary: false,
  })),
);

describe('mesh endpoint under fuzzing', () => {
  it('keeps serving, answers with close codes and stays within its memory bound', {
    timeout: 60_000,
  }, async () => {
    const secret = newSecret();
    const bot = await startBot({
      env: {
        CONTINUOUS_MODE: 'false',
        MESH_SECRET: secret,
        MESH_DISCOVERY: 'static',
        MESH_PEERS: '',
        BOT_ENABLED: 'false',
        FREELANCE_ENABLED: 'false',
        AI_ENABLED: 'false',
      },
    });
    // /health answers from the boot gate before the app is loaded: the baseline is taken once the
    // whole peer is up (/ready), or module loading would count as growth under the flood.
    await vi.waitFor(async () => expect((await bot.get('/ready')).status).toBe(200), { timeout: 30_000 });
    const started = performance.now();
    const before = rss(bot.pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss(bot.pid));
    }, 50);
    onTestFinished(() => clearInterval(sampler));

    // 1. Random and mutated handshake frames, oversize frames, invalid UTF-8.
    await fc.assert(
      fc.asyncProperty(fc.array(handshakeFrame, { minLength: 1, maxLength: 3 }), async (frames) => {
        const { code, status } = await handshakeRun(bot.port, frames, freshAddress());
        expect(status, 'the upgrade was refused').toBeUndefined();
        expect(HANDSHAKE_CLOSES.has(code as number), `close code ${code}`).toBe(true);
      }),
      { numRuns: 80 },
    );
    expect((await bot.get('/health')).status).toBe(200);

    // 2. After an authenticated handshake: random sealed payloads and unsealed frames.
    const keyring = new Keyring([secret]);
    const payload = fc.oneof(
      fc.json().map((s) => ({ sealed: true, data: Buffer.from(s) })),
      fc
        .record({
          type: fc.constantFrom('ping', 'pong', 'status', 'killswitch', 'bye', 'hello', 'x'),
          v: fc.jsonValue(),
        })
        .map((m) => ({ sealed: true, data: Buffer.from(JSON.stringify(m)) })),
      fc.uint8Array({ maxLength: 256 }).map((a) => ({ sealed: true, data: Buffer.from(a) })),
      fc.uint8Array({ maxLength: 256 }).map((a) => ({ sealed: false, data: Buffer.from(a) })),
    );
    let boot = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(payload, { minLength: 1, maxLength: 4 }), async (frames) => {
        const link: Link = await dialHandshake(`127.0.0.1:${bot.port}`, {
          self: { peerId: 'fuzzer', bootId: `fuzzer-${++boot}`, cluster: 'quantum-bot', listenPort: 1 },
          keyring,
          killSwitch: () => calm,
        });
        const outcome = new Promise<{ pong?: true; code?: number }>((resolve) =>
          link.attach(
            (msg) => msg.type === 'pong' && msg.id === 424242 && resolve({ pong: true }),
            (code) => resolve({ code }),
          ),
        );
        for (const f of frames) {
          if (f.sealed) link.sendBytes(f.data);
          else link.socket.send({ data: f.data, binary: true });
        }
        link.send(message('ping', { id: 424242, t: 0 }));
        const result = await outcome;
        link.close(1000, 'run over');
        if (!result.pong)
          expect(LINK_CLOSES.has(result.code as number), `close code ${result.code}`).toBe(true);
      }),
      { numRuns: 40 },
    );
    expect((await bot.get('/health')).status).toBe(200);

    // 3. A flood of silent sockets from several addresses, and of failed handshakes from one.
    const silent: WebSocket[] = [];
    const outcomes = await Promise.all(
      Array.from({ length: 400 }, (_, i) => {
        const ws = new WebSocket(`ws://127.0.0.1:${bot.port}${MESH_PATH}`, {
          localAddress: `127.0.9.${1 + (i % 8)}`,
        });
        silent.push(ws);
        ws.on('error', () => {});
        return new Promise<string>((resolve) => {
          ws.once('open', () => resolve('open'));
          ws.once('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
        });
      }),
    );
    onTestFinished(() => {
      for (const ws of silent) ws.terminate();
    });
    expect(outcomes.filter((o) => o === 'open').length).toBeLessThanOrEqual(128);
    expect(outcomes.filter((o) => o === '503').length).toBeGreaterThan(0);
    expect(outcomes.every((o) => o === 'open' || o === '503')).toBe(true);
    expect((await bot.get('/health')).status).toBe(200);
    for (const ws of silent) ws.terminate();

    const failing = '127.0.10.1';
    const results: Array<{ code?: number; status?: number }> = [];
    for (let i = 0; i < 40; i++) results.push(await handshakeRun(bot.port, [], failing));
    expect(results.slice(0, 10).every((r) => r.code === 4400)).toBe(true);
    expect(results.slice(-5).every((r) => r.status === 503)).toBe(true);
    expect((await bot.get('/health')).status).toBe(200);
    // The refusals are counted where an operator looks.
    const metrics = (await bot.get('/metrics')).body;
    expect(metrics).toMatch(/qb_mesh_upgrades_refused_total\{reason="failing-address"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/qb_mesh_upgrades_refused_total\{reason="busy"[^}]*\} [1-9]/);

    clearInterval(sampler);
    peak = Math.max(peak, rss(bot.pid));
    console.log(
      `mesh fuzz: RSS before ${(before / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB, ` +
        `${Math.round(performance.now() - started)} ms`,
    );
    expect(peak - before).toBeLessThan(MEMORY_BOUND_BYTES);
  });
});
