/**
 * The boot gate answers /health from the moment the port listens, holds every other request (and
 * WebSocket upgrade) until the app is ready, then replays them through fastify. Real sockets on
 * 127.0.0.1, port 0.
 */
import { connect } from 'node:net';
import Fastify from 'fastify';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { HealthMonitor } from '../../src/actors/health-monitor.js';
import { BootGate } from '../../src/http/boot-gate.js';
import { HEALTH_FIELDS } from '../helpers/contract.js';
import { deferred } from '../helpers/process.js';

async function listeningGate(maxHeld?: number) {
  const health = new HealthMonitor();
  const gate = new BootGate({ health, ...(maxHeld === undefined ? {} : { maxHeld }) });
  onTestFinished(async () => {
    await gate.close();
    health.close();
  });
  await gate.listen(0, '127.0.0.1');
  const { port } = gate.server.address() as { port: number };
  return { gate, url: `http://127.0.0.1:${port}` };
}

function appOn(gate: BootGate) {
  const app = Fastify({ serverFactory: gate.serverFactory });
  app.get('/status', async () => ({ up: true }));
  onTestFinished(() => app.close());
  return app;
}

describe('BootGate', () => {
  it('answers GET /health before the app exists, and /ready with 503 "starting"', async () => {
    const { url } = await listeningGate();
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(Object.keys((await health.json()) as object).sort()).toEqual([...HEALTH_FIELDS].sort());
    const head = await fetch(`${url}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);

    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, reasons: ['the peer is starting'] });
  });

  it('holds other requests until open() and replays them through the app', async () => {
    const { gate, url } = await listeningGate();
    let answered = false;
    const held = fetch(`${url}/status`).then(async (r) => {
      answered = true;
      return { status: r.status, body: await r.json() };
    });
    const app = appOn(gate);
    await vi.waitFor(() => expect(gate.openSockets).toBeGreaterThanOrEqual(1));
    await app.ready();
    expect(answered).toBe(false);

    gate.open();
    expect(await held).toEqual({ status: 200, body: { up: true } });
    // Now the app answers directly.
    expect(await (await fetch(`${url}/status`)).json()).toEqual({ up: true });
  });

  it('holds a WebSocket upgrade and replays it once, to the handler given before open()', async () => {
    const { gate, url } = await listeningGate();
    const app = appOn(gate);
    await app.ready();
    // The app's upgrade handler is known before the gate opens; an upgrade arriving now must still
    // reach it once (a listener attached to the server directly took it twice).
    const calls: string[] = [];
    const upgraded = deferred<void>();
    gate.upgradesTo((req, s) => {
      calls.push(req.url ?? '');
      s.destroy();
      upgraded.resolve();
    });
    const socket = connect(Number(new URL(url).port), '127.0.0.1', () => {
      socket.write(
        'GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      );
    });
    onTestFinished(() => {
      socket.destroy();
    });
    await vi.waitFor(() => expect(gate.waiting).toBe(1));
    expect(calls).toEqual([]);
    gate.open();
    await upgraded.promise;
    expect(calls).toEqual(['/live']);
  });

  it('answers 503 QB_ERR_STARTING beyond its limit and to what it held when the start fails', async () => {
    const { gate, url } = await listeningGate(1);
    const first = fetch(`${url}/status`);
    await vi.waitFor(() => expect(gate.openSockets).toBeGreaterThanOrEqual(1));
    // Give the first request time to be parsed and held before the second arrives.
    await vi.waitFor(async () => {
      const second = await fetch(`${url}/status`);
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(((await second.json()) as { error: { code: string } }).error.code).toBe('QB_ERR_STARTING');
    });
    gate.fail();
    const r = await first;
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('QB_ERR_STARTING');
  });
});
