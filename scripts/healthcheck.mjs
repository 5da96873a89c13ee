#!/usr/bin/env node
// Liveness probe: GET /health on the peer of this container (or process manager slot); exit 0 on 200,
// 1 otherwise. The Docker HEALTHCHECK and the compose files run it with node, because the slim image
// has no curl or wget. It reads PORT and HOST as the peer does (environment first, then ./.env);
// a wildcard or empty HOST means the peer listens everywhere, so it asks 127.0.0.1.
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parseEnv } from 'node:util';

const TIMEOUT_MS = 4_000;

const fileEnv = existsSync('.env') ? parseEnv(readFileSync('.env', 'utf8')) : {};
const setting = (name) => {
  const value = process.env[name] ?? fileEnv[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
};
const port = Number(setting('PORT') ?? 9000);
const configuredHost = setting('HOST');
const host =
  configuredHost === undefined || configuredHost === '0.0.0.0' || configuredHost === '::'
    ? '127.0.0.1'
    : configuredHost.replace(/^\[(.*)\]$/, '$1');

const fail = (why) => {
  console.log(`unhealthy: ${why}`);
  process.exit(1);
};

const req = request(
  { host, port, path: '/health', method: 'GET', timeout: TIMEOUT_MS, agent: false },
  (res) => {
    res.resume();
    if (res.statusCode === 200) {
      console.log(`healthy: GET http://${host}:${port}/health 200`);
      process.exit(0);
    }
    fail(`GET http://${host}:${port}/health answered ${res.statusCode}`);
  },
);
req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
req.on('error', (err) => fail(`GET http://${host}:${port}/health: ${err.message}`));
req.end();
