import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

/**
 * The dashboard's files: plain ES modules shipped in src/http/dashboard, no build step. The path is
 * the same from src/http/routes (tests) and dist/http/routes (the built program).
 */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../src/http/dashboard/', import.meta.url));

/** The chart library's self-contained ES module, served by the peer (no CDN: peers run offline too). */
const CHARTS_FILE = join(
  dirname(createRequire(import.meta.url).resolve('lightweight-charts/package.json')),
  'dist/lightweight-charts.standalone.production.mjs',
);

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  app.get('/vendor/lightweight-charts.mjs', async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(createReadStream(CHARTS_FILE)),
  );
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: '/',
    index: ['index.html'],
    // Operators reload after an upgrade; stale cached scripts would talk an old feed version.
    cacheControl: true,
    maxAge: 0,
    wildcard: false,
  });
};
