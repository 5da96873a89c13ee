/**
 * One peer as a real process: `node bot.js` (the built code) on a free 127.0.0.1 port with temp
 * directories and no MESH_SECRET (so no discovery, no mDNS). Every test kills what it started, by
 * PID, through the helper's onTestFinished cleanup. Timing bounds are generous (a loaded 2-core
 * machine); the real figures come from `npm run bench:peer`.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { HEALTH_FIELDS, STATUS_FIELDS, status } from '../helpers/contract.js';
import { isAlive, startBot } from '../helpers/process.js';

/** Long enough for a respawn or a subsystem restart on a busy machine; polling ends it sooner. */
const RECOVERY = { timeout: 30_000, interval: 50 } as const;
/** SIGTERM must end everything within 10 s (docker's and PM2's grace period). */
const GRACEFUL_STOP_MS = 10_000;
/** A refused configuration exits before anything starts. */
const CONFIG_EXIT_MS = 10_000;
const EXIT_CONFIG = 78;

describe('one peer process (node bot.js)', () => {
  it('answers /health and /status with the fields of the contract (defaults: continuous mode)', async () => {
    const bot = await startBot();

    const health = await bot.get('/health');
    expect(health.status).toBe(200);
    const h = health.json();
    expect(Object.keys(h).sort()).toEqual([...HEALTH_FIELDS].sort());
    expect(h.status).toMatch(/^(ok|degraded)$/);
    expect(h.uptime).toBeGreaterThan(0);
    expect(h.memory.rssBytes).toBeGreaterThan(0);
    expect(typeof h.cpu.percent).toBe('number');
    expect(typeof h.eventLoopDelayMs).toBe('number');
    expect(h.connections).toMatchObject({ http: expect.any(Number), mesh: 0 });

    const s = await status(bot);
    for (const field of STATUS_FIELDS) expect(s, `/status.${field}`).toHaveProperty(field);
    expect(s.continuousMode).toBe(true);
    expect(s.peerId).toEqual(expect.any(String));
    expect(s.bootId).toEqual(expect.any(String));
    expect(Object.keys(s.killSwitch).sort()).toEqual(['active', 'epoch', 'origin', 'reason', 'since']);
    expect(s.killSwitch.active).toBe(false);
    expect(s.mesh.peers).toEqual([]);
    expect(s.reconnectAttempts).toBe(0);
    expect(s.subsystems.health).toMatchObject({ name: 'health', state: 'running', restarts: 0 });
    expect(s.prompt).toMatch(/continuous/i);
    expect(s.workerRespawns).toBe(0);
    // Continuous mode: `node bot.js` supervises a worker process of its own.
    expect(bot.children()).toHaveLength(1);
  });

  it('refuses POST /kill-switch without the token (401) and changes nothing', async () => {
    const bot = await startBot();
    const before = (await bot.get('/kill-switch')).json();

    const body = { activate: true, reason: 'no token' };
    const noToken = await bot.post('/kill-switch', body);
    expect(noToken.status).toBe(401);
    expect(noToken.json().error.code).toBe('QB_ERR_UNAUTHORIZED');
    const wrongToken = await bot.post('/kill-switch', body, 'not-the-token-at-all');
    expect(wrongToken.status).toBe(401);

    const after = (await bot.get('/kill-switch')).json();
    expect(after).toEqual(before);
    expect(after.active).toBe(false);
    expect(after.history).toEqual([]);
    expect((await status(bot)).killSwitch.active).toBe(false);
  });

  it('keeps an activated kill switch across a restart of the process', async () => {
    const first = await startBot();
    const tokenFile = join(first.dirs.dataDir, 'api-token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = first.apiToken();
    expect(first.stdout()).not.toContain(token);

    const activated = await first.post('/kill-switch', { activate: true, reason: 'integration test' }, token);
    expect(activated.status).toBe(200);
    expect(activated.json()).toMatchObject({ active: true, reason: 'integration test', epoch: 1 });
    const { peerId } = await status(first);

    const stopped = await first.stop('SIGTERM', GRACEFUL_STOP_MS);
    expect(stopped.code).toBe(0);

    const second = await startBot({ dirs: first.dirs });
    const ks = (await second.get('/kill-switch')).json();
    expect(ks).toMatchObject({ active: true, reason: 'integration test', origin: peerId, epoch: 1 });
    expect(ks.history).toHaveLength(1);
    expect(ks.history[0]).toMatchObject({ active: true, reason: 'integration test', origin: peerId });
    const s = await status(second);
    expect(s.peerId).toBe(peerId);
    expect(s.killSwitch.active).toBe(true);
    // Watching the process is not an operation: health keeps running under the kill switch.
    expect(s.subsystems.health.state).toBe('running');
    expect(second.apiToken()).toBe(token);
  });

  it('restarts a subsystem made to throw and counts the restart', async () => {
    const bot = await startBot({ env: { FAULT_INJECTION: 'true' } });
    const thrown = await bot.post('/faults/subsystems/health/throw', undefined, bot.apiToken());
    expect(thrown.status).toBe(202);

    await vi.waitFor(async () => {
      const health = (await status(bot)).subsystems.health;
      expect(health.restarts).toBeGreaterThanOrEqual(1);
      expect(health.state).toBe('running');
    }, RECOVERY);
    const health = (await status(bot)).subsystems.health;
    expect(health.lastError).toMatchObject({ code: 'QB_ERR_INJECTED_FAULT' });
    expect(bot.isRunning()).toBe(true);
    expect(bot.children()).toHaveLength(1);
    expect((await status(bot)).workerRespawns).toBe(0);
  });

  it('respawns a SIGKILLed or crashed worker on the same port while the supervisor lives on', async () => {
    const bot = await startBot({ env: { FAULT_INJECTION: 'true' } });
    const firstWorker = await bot.waitForWorker();
    const firstBoot = (await status(bot)).bootId;

    process.kill(firstWorker, 'SIGKILL');
    await vi.waitFor(() => expect(isAlive(firstWorker)).toBe(false), RECOVERY);
    await vi.waitFor(async () => {
      expect((await bot.get('/health')).status).toBe(200);
      expect((await status(bot)).workerRespawns).toBe(1);
    }, RECOVERY);
    const afterKill = await status(bot);
    expect(afterKill.bootId).not.toBe(firstBoot);
    expect(bot.isRunning()).toBe(true);
    expect(isAlive(bot.pid)).toBe(true);
    const secondWorker = await bot.waitForWorker({ not: firstWorker });
    expect(bot.children()).toEqual([secondWorker]);

    // An uncaught exception in the worker: the same recovery.
    const crash = await bot.post('/faults/worker/crash', undefined, bot.apiToken());
    expect(crash.status).toBe(202);
    await vi.waitFor(async () => {
      expect((await bot.get('/health')).status).toBe(200);
      expect((await status(bot)).workerRespawns).toBe(2);
    }, RECOVERY);
    expect((await status(bot)).bootId).not.toBe(afterKill.bootId);
    expect(isAlive(secondWorker)).toBe(false);
    expect(bot.isRunning()).toBe(true);
    expect(bot.stdout()).toContain('worker died; respawning');
  });

  it.each([
    { signal: 'SIGTERM', to: 'the supervisor' },
    { signal: 'SIGINT', to: 'the supervisor' },
    // Ctrl-C in a terminal signals the whole foreground process group: worker and supervisor at once.
    { signal: 'SIGINT', to: 'both processes' },
  ] as const)(
    'stops gracefully on $signal to $to: exit 0 within 10 s, worker gone',
    async ({ signal, to }) => {
      const bot = await startBot();
      const worker = await bot.waitForWorker();

      if (to === 'both processes') process.kill(worker, signal);
      const exit = await bot.stop(signal, GRACEFUL_STOP_MS);
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(exit.elapsedMs).toBeLessThan(GRACEFUL_STOP_MS);
      // The supervisor exits only after its worker did, so the worker is gone already, not respawned.
      expect(isAlive(worker)).toBe(false);
      expect(bot.workersSeen()).toEqual([worker]);
      expect(bot.stdout()).toContain('worker stopped; exiting');
      expect(bot.stdout()).not.toContain('worker died');
    },
  );

  it('leaves no orphan: a worker whose supervisor was SIGKILLed stops by itself', async () => {
    const bot = await startBot();
    const worker = await bot.waitForWorker();
    process.kill(bot.pid, 'SIGKILL');
    await bot.exited;
    // The worker sees its IPC channel close and stops gracefully, freeing the port.
    await vi.waitFor(() => expect(isAlive(worker)).toBe(false), { timeout: GRACEFUL_STOP_MS, interval: 50 });
    await expect(bot.get('/health')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('runs as one process with CONTINUOUS_MODE=false and exits 0 on SIGTERM', async () => {
    const bot = await startBot({ env: { CONTINUOUS_MODE: 'false' } });
    const s = await status(bot);
    expect(s.continuousMode).toBe(false);
    expect(bot.children()).toEqual([]);
    expect(bot.stdout()).toContain('"role":"single"');

    const exit = await bot.stop('SIGTERM', GRACEFUL_STOP_MS);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.elapsedMs).toBeLessThan(GRACEFUL_STOP_MS);
    expect(bot.workersSeen()).toEqual([]);
  });

  it.each(['true', 'false'])(
    'refuses a bad configuration with one message and exit 78, without respawning (CONTINUOUS_MODE=%s)',
    async (continuousMode) => {
      const bot = await startBot({
        env: { CONTINUOUS_MODE: continuousMode, HEALTH_CHECK_INTERVAL: '60', PORT: 'abc' },
        waitForHealth: false,
      });
      const startedAt = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([
        bot.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('a bad configuration did not end the process')),
            CONFIG_EXIT_MS,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      await bot.closed;

      expect(exit.code).toBe(EXIT_CONFIG);
      expect(exit.at - startedAt).toBeLessThan(CONFIG_EXIT_MS);
      const stderr = bot.stderr();
      expect(stderr).toContain('2 problems');
      expect(stderr).toMatch(/HEALTH_CHECK_INTERVAL=60 looks like seconds.*60000/);
      expect(stderr).toMatch(/PORT must be an integer.*"abc"/);
      // Nothing was forked, and nothing started: no restart loop.
      expect(bot.workersSeen()).toEqual([]);
      expect(bot.stdout()).not.toContain('worker started');
      expect(bot.stdout()).not.toContain('peer started');
    },
  );

  it('waits for an operator with AUTO_START=false', async () => {
    const bot = await startBot({ env: { AUTO_START: 'false' } });
    expect((await status(bot)).subsystems.health).toMatchObject({ state: 'stopped', desired: 'stopped' });
    const notReady = await bot.get('/ready');
    expect(notReady.status).toBe(503);
    expect(notReady.json()).toMatchObject({
      ready: false,
      reasons: ['health is stopped', 'ai is stopped', 'freelance is stopped', 'trading is stopped'],
    });
    // /health is liveness: it answers while the health subsystem is stopped.
    expect((await bot.get('/health')).status).toBe(200);

    expect((await bot.post('/subsystems/health/start')).status).toBe(401);
    expect((await status(bot)).subsystems.health.state).toBe('stopped');

    for (const name of ['health', 'ai', 'freelance', 'trading']) {
      const started = await bot.post(`/subsystems/${name}/start`, undefined, bot.apiToken());
      expect(started.status).toBe(202);
    }
    await vi.waitFor(async () => {
      expect((await status(bot)).subsystems.health.state).toBe('running');
      expect((await bot.get('/ready')).status).toBe(200);
    }, RECOVERY);
  });
});
