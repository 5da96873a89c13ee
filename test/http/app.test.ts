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

  it('needs no token to read', async () => {
    const t = await buildTestApp();
    for (const url of ['/health', '/status', '/kill-switch', '/metrics']) {
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
