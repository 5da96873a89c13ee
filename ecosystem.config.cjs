// PM2 process file (docs/deploy.md, "PM2"). Build first (`npm install` builds, or `npm run build`).
//
//   pm2 start ecosystem.config.cjs                    3 meshed peers: quantum-bot-1..3 on 127.0.0.1:9001..9003
//   QB_PEERS=5 pm2 start ecosystem.config.cjs         5 peers on 9001..9005
//   QB_PEERS=1 pm2 start ecosystem.config.cjs         one peer named quantum-bot: the guide's
//                                                     `pm2 start bot.js --name quantum-bot`, done right
//   pm2 save && pm2 startup                           start them again after a reboot
//
// Settings of this file (environment variables of the `pm2 start` command; none is read by the peer):
//   QB_PEERS         number of peers (default 3); 1 gives the single-peer form
//   QB_BASE_PORT     port of the first peer (default 9001); peer N listens on QB_BASE_PORT + N - 1
//   QB_HOST          address the peers bind to and dial each other on (default 127.0.0.1; 0.0.0.0 to
//                    open the dashboards to the network: mutations still need API_TOKEN)
//   QB_DATA_ROOT     directory of the peers' DATA_DIRs (default ./data/pm2; peer N uses QB_DATA_ROOT/peer-N)
//   QB_SECRETS_FILE  where MESH_SECRET and API_TOKEN are kept (default QB_DATA_ROOT/secrets.env)
//
// Secrets: MESH_SECRET and API_TOKEN come from the environment of `pm2 start` when set there, else
// from QB_SECRETS_FILE; when neither has them, random values are generated into that file (mode
// 0600) once, so every later start uses the same ones. Nothing secret is written in this file.
//
// CONTINUOUS_MODE=false: PM2 is the supervisor. Each app is one process; when it dies PM2 restarts it
// with its own exponential backoff and counts the restart (`pm2 ls`, ↺). With CONTINUOUS_MODE=true
// our supervisor would respawn the worker inside the PM2 app, so PM2 would never see a crash: its
// restart count, backoff and max_memory_restart would watch the supervisor, not the peer.
'use strict';

const { randomBytes } = require('node:crypto');
const { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { dirname, join, resolve } = require('node:path');
const { parseEnv } = require('node:util');

const SECRET_NAMES = ['MESH_SECRET', 'API_TOKEN'];

function wholeNumber(name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  }
  return value;
}

/** MESH_SECRET and API_TOKEN: the environment first, then the secrets file, else generated into it. */
function sharedSecrets(file) {
  const fromEnv = Object.fromEntries(
    SECRET_NAMES.filter((n) => process.env[n]).map((n) => [n, process.env[n]]),
  );
  if (SECRET_NAMES.every((n) => fromEnv[n])) return fromEnv;
  let stored = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {};
  const missing = SECRET_NAMES.filter((n) => !fromEnv[n] && !stored[n]);
  if (missing.length > 0) {
    for (const name of missing) stored[name] = randomBytes(32).toString('hex');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(
      file,
      `${SECRET_NAMES.filter((n) => stored[n])
        .map((n) => `${n}=${stored[n]}`)
        .join('\n')}\n`,
      {
        mode: 0o600,
      },
    );
    chmodSync(file, 0o600);
    stored = parseEnv(readFileSync(file, 'utf8'));
  }
  return Object.fromEntries(SECRET_NAMES.map((n) => [n, fromEnv[n] || stored[n]]));
}

/** What every app shares: how PM2 runs, restarts and stops one peer process. */
const common = {
  script: 'bot.js',
  cwd: __dirname,
  exec_mode: 'fork',
  instances: 1,
  autorestart: true,
  // 250 ms, then x1.5 per crash in a row, capped at 15 s by PM2; reset after 30 s of running.
  exp_backoff_restart_delay: 250,
  // Exit code 78 is a configuration error: a restart cannot fix it, so PM2 leaves the app stopped.
  stop_exit_codes: [78],
  // PM2 stops an app with SIGINT (handled like SIGTERM: a graceful stop, exit 0), then SIGKILLs it
  // after kill_timeout. A graceful stop takes up to 8 s; PM2's default of 1.6 s would cut it short.
  kill_timeout: 12_000,
  // A slow leak gets a graceful restart instead of an OOM kill.
  max_memory_restart: '512M',
  watch: false,
  vizion: false,
  // The peer's log lines (pino JSON) carry their own timestamps.
  time: false,
};

function singlePeer() {
  // The user's environment and ./.env decide everything else, as with `pm2 start bot.js`.
  return [
    {
      ...common,
      name: 'quantum-bot',
      env: { NODE_ENV: 'production', CONTINUOUS_MODE: 'false' },
    },
  ];
}

function meshOnOneHost(count) {
  const basePort = wholeNumber('QB_BASE_PORT', 9001, 1, 65_536 - count);
  const host = process.env.QB_HOST?.trim() || '127.0.0.1';
  const dialHost = host === '0.0.0.0' ? '127.0.0.1' : host;
  const dataRoot = resolve(__dirname, process.env.QB_DATA_ROOT?.trim() || 'data/pm2');
  const secrets = sharedSecrets(
    resolve(__dirname, process.env.QB_SECRETS_FILE?.trim() || join(dataRoot, 'secrets.env')),
  );
  const ports = Array.from({ length: count }, (_, i) => basePort + i);
  return ports.map((port, i) => {
    const dataDir = join(dataRoot, `peer-${i + 1}`);
    return {
      ...common,
      name: `quantum-bot-${i + 1}`,
      env: {
        NODE_ENV: 'production',
        CONTINUOUS_MODE: 'false',
        AUTO_START: 'true',
        AUTO_RECONNECT: 'true',
        HOST: host,
        PORT: String(port),
        DATA_DIR: dataDir,
        LOG_DIR: join(dataDir, 'logs'),
        // Every other peer of this host; mDNS is never needed (nor wanted) between processes of one host.
        MESH_DISCOVERY: 'static',
        MESH_PEERS: ports
          .filter((p) => p !== port)
          .map((p) => `${dialHost}:${p}`)
          .join(','),
        ...secrets,
      },
    };
  });
}

const peers = wholeNumber('QB_PEERS', 3, 1, 200);

module.exports = { apps: peers === 1 ? singlePeer() : meshOnOneHost(peers) };
