import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestApp, TEST_TOKEN } from '../helpers/app.js';

/** Every endpoint that changes something, with a body it would accept. */
const MUTATING = [
  { method: 'POST', url: '/kill-switch', payload: { activate: true, reason: 'should not happen' } },
  { method: 'POST', url: '/subsystems/health/stop' },
  { method: 'POST', url: '/subsystems/health/start' },
  { method: 'POST', url: '/subsystems/health/restart' },
] as const;

const BAD_AUTHORIZATION: Array<[string, Record<string, string>]> = [
  ['no Authorization header', {}],
  ['a wrong token', { authorization: 'Bearer wrong-token-0123456789abcdef' }],
  ['a prefix of the token', { authorization: `Bearer ${TEST_TOKEN.slice(0, -1)}` }],
  ['another scheme', { authorization: `Basic ${TEST_TOKEN}` }],
  ['Bearer without a token', { authorization: 'Bearer ' }],
];

describe('HTTP app: authentication', () => {
  it.each(MUTATING)(
    '$method $url answers 401 without the right token and changes nothing',
    async (request) => {
      const t = await buildTestApp();
      const before = t.subsystem('health');
      expect(before.state).toBe('running');
      for (const [what, headers] of BAD_AUTHORIZATION) {
        const res = await t.app.inject({ ...request, headers });
        expect(res.statusCode, what).toBe(401);
        expect(res.json(), what).toEqual({
          error: { code: 'QB_ERR_UNAUTHORIZED', message: expect.any(String) },
        });
      }
      expect(t.deps.killSwitch.get()).toMatchObject({ active: false, epoch: 0 });
      expect(t.deps.killSwitch.history()).toEqual([]);
      expect(t.subsystem('health')).toEqual(before);
    },
  );

  it('accepts the token case-insensitively in its scheme, as RFC 6750 allows', async () => {
    const t = await buildTestApp();
    const res = await t.app.inject({
      method: 'POST',
      url: '/subsystems/health/restart',
      headers: { authorization: `bearer ${TEST_TOKEN}` },
    });
    expect(res.statusCode).toBe(202);
  });

  it.each([
    ['API_TOKEN', {}, "API_TOKEN in the peer's environment"],
    [
      'a launcher hint (QB_TOKEN_HINT)',
      { QB_TOKEN_HINT: 'API_TOKEN in /srv/qb/cluster.env' },
      'API_TOKEN in /srv/qb/cluster.env',
    ],
  ] as const)('says where the token is in a 401 and in GET /token-hint: %s', async (_what, env, hint) => {
    const t = await buildTestApp({ env });
    const res = await t.app.inject({ method: 'POST', url: '/subsystems/health/restart' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.message).toBe(
      `missing or wrong bearer token (Authorization: Bearer <token>); this peer's token is ${hint}`,
    );
    expect(res.body).not.toContain(TEST_TOKEN);
    const where = await t.app.inject({ url: '/token-hint' });
    expect(where.statusCode).toBe(200);
    expect(where.json()).toEqual({ header: 'Authorization: Bearer <token>', tokenHint: hint });
  });

  it('names the real path of a generated token file, without revealing the token', async () => {
    const t = await buildTestApp({ env: { API_TOKEN: '' } });
    const file = join(t.dataDir, 'api-token');
    const token = readFileSync(file, 'utf8').trim();
    const res = await t.app.inject({
      method: 'POST',
      url: '/kill-switch',
      payload: { activate: true, reason: 'x' },
    });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.message).toContain(`this peer's token is in the file ${file}`);
    expect(res.body).not.toContain(token);
    const where = await t.app.inject({ url: '/token-hint' });
    expect(where.json().tokenHint).toBe(`in the file ${file} (generated at first start)`);
    expect(where.body).not.toContain(token);
  });

  it('needs no token to read', async () => {
    const t = await buildTestApp();
    for (const url of ['/health', '/status', '/kill-switch', '/metrics', '/token-hint']) {
      expect((await t.app.inject({ url })).statusCode, url).toBe(200);
    }
  });
});

describe('HTTP app: errors', () => {
  it('answers an unknown route with a 404 JSON error', async () => {
    const t = await buildTestApp();
    for (const [method, url] of [
      ['GET', '/nope'],
      ['GET', '/nope?x=1'],
      ['DELETE', '/kill-switch'],
    ] as const) {
      const res = await t.app.inject({ method, url });
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toEqual({
        error: { code: 'QB_ERR_NOT_FOUND', message: `no route ${method} ${url.split('?')[0]}` },
      });
    }
  });

  it('answers malformed JSON with 400 and a body over the limit with 413', async () => {
    const t = await buildTestApp();
    const malformed = await t.authed({
      method: 'POST',
      url: '/kill-switch',
      headers: { 'content-type': 'application/json' },
      payload: '{"activate": tru',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('QB_ERR_VALIDATION');

    const huge = await t.authed({
      method: 'POST',
      url: '/kill-switch',
      payload: { activate: true, reason: 'x'.repeat(70 * 1024) },
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('QB_ERR_PAYLOAD_TOO_LARGE');
    expect(t.deps.killSwitch.get().active).toBe(false);
  });

  it('hides the internals of a 5xx from the client', async () => {
    const t = await buildTestApp();
    t.deps.mesh = () => {
      throw new Error('secret detail of a bug');
    };
    const res = await t.app.inject({ url: '/status' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'QB_ERR_INTERNAL', message: 'internal error' } });
    expect(res.body).not.toContain('secret detail');
  });
});
