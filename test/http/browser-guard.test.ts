// The browser surface: the Host allow-list on requests and upgrades (DNS rebinding), the Origin
// check on /live (any web page could otherwise read the feed), the mesh endpoint exempt from both,
// and reads of the fleet behind the token with DASHBOARD_TOKEN_REQUIRED.
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { testConfig } from '../../src/config.js';
import { browserPolicy, hostAllowed, hostName, originAllowed } from '../../src/http/origin.js';
import { createPeer } from '../../src/peer.js';
import { buildTestApp, TEST_TOKEN } from '../helpers/app.js';
import { silentLogger } from '../helpers/logger.js';

describe('origin.ts', () => {
  const policy = browserPolicy({ allowedHosts: undefined, allowedOrigins: [], boundHost: '0.0.0.0' });

  it('allows localhost, loopback, this machine and its addresses by default, on any port', () => {
    for (const h of [
      'localhost:9000',
      '127.0.0.1',
      '[::1]:80',
      `${hostname()}:1`,
      'LOCALHOST',
      'a.localhost:3',
    ]) {
      expect(hostAllowed(policy, h), h).toBe(true);
    }
    for (const h of ['evil.example:9000', 'evil.example', '127.0.0.1.evil.example', '', undefined]) {
      expect(hostAllowed(policy, h), String(h)).toBe(false);
    }
    expect(hostName('[::1]:9000')).toBe('::1');
    expect(hostName('Peer-A:80')).toBe('peer-a');
  });

  it('takes HTTP_ALLOWED_HOSTS instead of the defaults; * allows any host', () => {
    const listed = browserPolicy({ allowedHosts: ['bots.lan'], allowedOrigins: [], boundHost: '127.0.0.1' });
    expect(hostAllowed(listed, 'bots.lan:9000')).toBe(true);
    expect(hostAllowed(listed, 'localhost:9000')).toBe(false);
    const any = browserPolicy({ allowedHosts: ['*'], allowedOrigins: [], boundHost: '127.0.0.1' });
    expect(hostAllowed(any, 'anything.example')).toBe(true);
  });

  it("allows the page's own origin, listed origins and no Origin at all (not a browser)", () => {
    const p = browserPolicy({
      allowedHosts: undefined,
      allowedOrigins: ['https://ops.example'],
      boundHost: '127.0.0.1',
    });
    expect(originAllowed(p, 'http://127.0.0.1:9000', '127.0.0.1:9000')).toBe(true);
    expect(originAllowed(p, 'https://ops.example/', '127.0.0.1:9000')).toBe(true);
    expect(originAllowed(p, undefined, '127.0.0.1:9000')).toBe(true);
    expect(originAllowed(p, 'http://127.0.0.1:9001', '127.0.0.1:9000')).toBe(false);
    expect(originAllowed(p, 'http://evil.example', '127.0.0.1:9000')).toBe(false);
    expect(originAllowed(p, 'null', '127.0.0.1:9000')).toBe(false);
    expect(originAllowed(p, 'file://', '127.0.0.1:9000')).toBe(false);
  });
});

describe('HTTP requests', () => {
  it('answers an allowed Host and refuses another with 421 (DNS rebinding)', async () => {
    const { app } = await buildTestApp();
    expect((await app.inject({ url: '/status', headers: { host: 'localhost:9000' } })).statusCode).toBe(200);
    const rebound = await app.inject({ url: '/status', headers: { host: 'rebind.evil.example:9000' } });
    expect(rebound.statusCode).toBe(421);
    expect(rebound.json().error.code).toBe('QB_ERR_HOST_NOT_ALLOWED');
    expect((await app.inject({ url: '/mesh', headers: { host: 'evil.example' } })).statusCode).toBe(421);
  });

  it('keeps the fleet summary open by default, behind the token with DASHBOARD_TOKEN_REQUIRED', async () => {
    const open = await buildTestApp();
    expect((await open.app.inject({ url: '/status' })).statusCode).toBe(200);
    const closed = await buildTestApp({ env: { DASHBOARD_TOKEN_REQUIRED: 'true' } });
    for (const url of ['/status', '/mesh']) {
      const res = await closed.app.inject({ url });
      expect(res.statusCode, url).toBe(401);
      expect(res.json().error.code).toBe('QB_ERR_UNAUTHORIZED');
      expect((await closed.authed({ url })).statusCode, url).toBe(200);
    }
    expect((await closed.app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('puts a private route (an account or a task) behind the token whatever DASHBOARD_TOKEN_REQUIRED says', async () => {
    const { app, authed } = await buildTestApp();
    app.get('/probe/balances', { config: { access: 'private' } }, async () => ({ usdt: 1 }));
    expect((await app.inject({ url: '/probe/balances' })).statusCode).toBe(401);
    expect((await authed({ url: '/probe/balances' })).json()).toEqual({ usdt: 1 });
  });
});

describe('WebSocket upgrades on a real peer', () => {
  async function peer(env: Record<string, string> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'qb-guard-'));
    const p = createPeer(testConfig(dir, { API_TOKEN: TEST_TOKEN, ...env }), silentLogger());
    onTestFinished(async () => {
      await p.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await p.start();
    return p.port() as number;
  }

  /** Opens a socket; resolves 'open' or the HTTP status that refused it. */
  function attempt(port: number, path: string, headers: Record<string, string>): Promise<'open' | number> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    onTestFinished(() => ws.terminate());
    return new Promise((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => resolve(0));
    });
  }

  it('opens /live to its own page and scripts, refuses other origins (403) and other hosts (421)', async () => {
    const port = await peer();
    expect(await attempt(port, '/live', { origin: `http://127.0.0.1:${port}` })).toBe('open');
    expect(await attempt(port, '/live', {})).toBe('open');
    expect(await attempt(port, '/live', { origin: 'http://evil.example' })).toBe(403);
    expect(await attempt(port, '/live', { origin: `http://localhost:${port + 1}` })).toBe(403);
    expect(
      await attempt(port, '/live', { host: `evil.example:${port}`, origin: `http://evil.example:${port}` }),
    ).toBe(421);
  });

  it('lets peers reach /mesh by service name: no Host or Origin check there (HMAC guards it)', async () => {
    const port = await peer({ MESH_SECRET: 'a shared secret of enough length', MESH_DISCOVERY: 'static' });
    // The socket opens (the handshake then waits for a hello): the Host check did not refuse it.
    expect(await attempt(port, '/mesh', { host: `peer-b:${port}` })).toBe('open');
  });
});
