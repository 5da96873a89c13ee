import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

/**
 * The dashboard's files: plain ES modules shipped in src/http/dashboard, no build step. The path is
 * the same from src/http/routes (tests) and dist/http/routes (the built program).
 */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../src/http/dashboard/', import.meta.url));

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
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
