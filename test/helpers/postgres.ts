/**
 * A throwaway PostgreSQL server for tests and benchmarks: initdb into a fresh temp folder, pg_ctl
 * start on a free loopback port (Unix socket in the same folder), and `stop()` that shuts it down
 * and removes the folder. initdb refuses to run as root, so as root the folder is handed to the
 * `postgres` user and the binaries run through `runuser -u postgres --`.
 *
 * No vitest and no relative imports in here: scripts/bench-queue.mjs loads this file directly
 * (Node 24 strips the types). Tests use `postgresOrSkip()` to skip with a printed reason when the
 * binaries are missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  /** A new empty database on this server; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown) and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** fsync off makes tests faster; benchmarks keep it on (the default). */
  fsync?: boolean;
}

/** The bin folder of the newest installed Debian postgresql (with initdb and pg_ctl), or null. */
export function findPostgresBin(): string | null {
  if (process.env.QB_PG_BIN && existsSync(join(process.env.QB_PG_BIN, 'initdb')))
    return process.env.QB_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

/** Why PostgreSQL tests cannot run here, or null when they can. */
export function postgresUnavailable(): string | null {
  if (!findPostgresBin()) return 'no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin';
  if (userInfo().uid === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) {
    return 'running as root without runuser (initdb refuses root)';
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port from the kernel'))));
    });
  });
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('PostgreSQL binaries not found');
  const asRoot = userInfo().uid === 0;
  const dir = mkdtempSync(join(tmpdir(), 'qb-pg-'));
  const data = join(dir, 'data');
  if (asRoot) chownSync(dir, pgUid(), pgGid());
  const exec = (file: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, file), ...args]) : run(join(bin, file), args);
  let started = false;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (started)
      await exec('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await exec('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    const flags = [
      `-k ${dir}`,
      '-c listen_addresses=127.0.0.1',
      '-c max_connections=200',
      `-c fsync=${options.fsync === false ? 'off' : 'on'}`,
    ];
    // A port can be taken between freePort() and the server's bind: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        await exec('pg_ctl', [
          'start',
          '-D',
          data,
          '-w',
          '-t',
          '60',
          '-l',
          join(dir, 'log'),
          '-o',
          `${flags.join(' ')} -p ${port}`,
        ]);
        started = true;
        const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
        return {
          url,
          port,
          stop,
          async createDatabase(name: string) {
            if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
            await exec('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', name]);
            return `postgres://postgres@127.0.0.1:${port}/${name}`;
          },
        };
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

function pgUid(): number {
  return idOf('-u');
}

function pgGid(): number {
  return idOf('-g');
}

function idOf(flag: '-u' | '-g'): number {
  // The postgres user exists wherever the Debian package is installed.
  return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
}

/** A test server that can be stopped and started again on the same port with its data kept. */
export interface RestartablePostgres extends PostgresServer {
  /**
   * `pg_ctl stop`: `fast` disconnects clients and shuts down cleanly, `immediate` kills the server
   * as a crash would (recovery on the next start). The folder and the port are kept.
   */
  halt(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts the halted server again with the same options (`pg_ctl restart` reads postmaster.opts). */
  resume(): Promise<void>;
}

/** startPostgres, plus halt and resume for outage tests. */
export async function startRestartablePostgres(
  options: StartPostgresOptions = {},
): Promise<RestartablePostgres> {
  const server = await startPostgres(options);
  const bin = findPostgresBin() as string;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  const data = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]
    ?.data_directory as string;
  await client.end();
  const asRoot = userInfo().uid === 0;
  const pgCtl = (args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args])
      : run(join(bin, 'pg_ctl'), args);
  return {
    ...server,
    async halt(mode = 'fast') {
      await pgCtl(['stop', '-D', data, '-m', mode, '-w', '-t', '30']);
    },
    async resume() {
      // pg_ctl restart on a stopped server starts it with the options of its last start.
      await pgCtl(['restart', '-D', data, '-w', '-t', '60', '-l', join(data, '..', 'log')]);
    },
  };
}
