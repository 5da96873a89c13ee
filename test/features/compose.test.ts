import Fastify from 'fastify';
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { defineRun } from '../../src/actors/subsystem.js';
import { testConfig } from '../../src/config.js';
import { buildFeatures } from '../../src/features/compose.js';
import type { Feature, FeatureDefinition } from '../../src/features/feature.js';
import { openSqliteQueue } from '../../src/queue/sqlite.js';
import { openDb } from '../../src/store/db.js';
import { silentLogger } from '../helpers/logger.js';

const idle = defineRun(({ ready }) => {
  ready();
  return () => {};
});

function ctx() {
  const db = openDb(':memory:');
  const queue = openSqliteQueue(':memory:');
  onTestFinished(async () => {
    await queue.close();
    db.close();
  });
  return {
    config: testConfig('/tmp/unused-qb-compose'),
    db,
    queue,
    logger: silentLogger(),
    peerId: 'p1',
    bootId: 'b1',
    prompt: () => 'the prompt',
    linkedSummaries: () => [],
    killSwitchActive: () => false,
  };
}

const alpha: FeatureDefinition = {
  name: 'alpha',
  migrations: [{ name: 'alpha/001-things', sql: 'CREATE TABLE alpha_things (id INTEGER PRIMARY KEY)' }],
  create: (c) => {
    c.db.prepare('INSERT INTO alpha_things DEFAULT VALUES').run();
    return {
      name: 'alpha',
      registrations: [{ name: 'alpha', enabled: true, operates: true, run: idle }],
      routes: async (app, { apiToken }) => {
        app.get('/alpha', async () => ({ token: apiToken.length }));
      },
      status: () => ({
        things: (c.db.prepare('SELECT COUNT(*) AS n FROM alpha_things').get() as { n: number }).n,
      }),
      summary: () => ({ queues: { 'alpha.queued': 3 }, extra: { mood: 'ok' } }),
      metrics: (registry) => {
        new Gauge({
          name: 'qb_alpha',
          help: 'a metric of the alpha feature',
          registers: [registry],
          collect() {
            this.set(1);
          },
        });
      },
    };
  },
};

const beta: FeatureDefinition = {
  name: 'beta',
  migrations: [],
  create: (c) => {
    // A later feature finds an earlier one by name (freelance uses AI this way).
    const a = c.feature<Feature>('alpha');
    return {
      name: 'beta',
      registrations: [{ name: 'beta', enabled: false, operates: false, run: idle }],
      status: () => ({ sawAlpha: a?.name ?? null }),
      summary: () => ({ queues: { 'beta.queued': 1 } }),
    };
  },
};

describe('the feature seam', () => {
  it('applies migrations, builds in order and hands every part to its consumer', async () => {
    const c = ctx();
    const set = buildFeatures([alpha, beta], c);
    expect(set.registrations().map((r) => r.name)).toEqual(['alpha', 'beta']);
    expect(set.status()).toEqual({ alpha: { things: 1 }, beta: { sawAlpha: 'alpha' } });
    expect(set.summary()).toEqual({
      queues: { 'alpha.queued': 3, 'beta.queued': 1 },
      extra: { alpha: { mood: 'ok' } },
    });

    const app = Fastify();
    await set.registerRoutes(app, 'token-0123456789abcdef', 'API_TOKEN in the test');
    expect((await app.inject({ url: '/alpha' })).json()).toEqual({ token: 'token-0123456789abcdef'.length });
    await app.close();

    const registry = new Registry();
    set.metrics(registry);
    expect(await registry.metrics()).toContain('qb_alpha 1');
  });

  it('applies each named migration once, also when the peer builds again on the same database', () => {
    const c = ctx();
    buildFeatures([alpha], c);
    buildFeatures([alpha], c);
    const applied = c.db.prepare("SELECT name FROM schema_migrations WHERE name LIKE 'alpha/%'").all();
    expect(applied).toEqual([{ name: 'alpha/001-things' }]);
    expect(c.db.prepare('SELECT COUNT(*) AS n FROM alpha_things').get()).toEqual({ n: 2 });
  });

  it('refuses two features of one name', () => {
    expect(() => buildFeatures([alpha, alpha], ctx())).toThrow(/two features are named alpha/);
  });
});
