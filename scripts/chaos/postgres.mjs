/**
 * The fleet's PostgreSQL for `--store postgres`: initdb into a temp folder, pg_ctl on the bridge's
 * host address (so peers in their namespaces reach it) and 127.0.0.1, trust for the bridge's /24
 * only. As root the binaries run as the `postgres` user (initdb refuses root), as
 * test/helpers/postgres.ts does; that helper binds to 127.0.0.1 only, which the namespaces cannot
 * reach, hence this one. restart() is the chaos fault: `pg_ctl restart -m fast|immediate`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../lib/proc.mjs';

const run = promisify(execFile);

export function findPostgresBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

/** @param {{ host: string, subnet: string | null }} where: listen address, and the /24 trusted */
export async function startPostgres({ host, subnet }) {
  const bin = findPostgresBin();
  if (!bin)
    throw new Error('no PostgreSQL binaries under /usr/lib/postgresql/*/bin (--store postgres needs them)');
  const asRoot = userInfo().uid === 0;
  const dir = mkdtempSync(join(tmpdir(), 'qb-chaos-pg-'));
  const data = join(dir, 'data');
  if (asRoot) {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const exec = (file, args) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, file), ...args]) : run(join(bin, file), args);
  let running = false;
  const stop = async () => {
    if (running)
      await exec('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30']).catch(() => undefined);
    running = false;
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
    if (subnet) {
      // Written by root into a folder postgres owns: append through the postgres user.
      const line = `host all all ${subnet} trust\n`;
      if (asRoot)
        await run('runuser', [
          '-u',
          'postgres',
          '--',
          'sh',
          '-c',
          `printf '%s' '${line}' >> ${data}/pg_hba.conf`,
        ]);
      else writeFileSync(join(data, 'pg_hba.conf'), line, { flag: 'a' });
    }
    const port = await freePort();
    const listen = host === '127.0.0.1' ? host : `127.0.0.1,${host}`;
    const options = `-k ${dir} -c listen_addresses=${listen} -c max_connections=300 -p ${port}`;
    const ctl = (args) =>
      exec('pg_ctl', [...args, '-D', data, '-w', '-t', '60', '-l', join(dir, 'log'), '-o', options]);
    await ctl(['start']);
    running = true;
    return {
      url: `postgres://postgres@${host}:${port}/postgres`,
      port,
      /** A restart of the server: `fast` ends sessions cleanly, `immediate` is a crash (recovery at start). */
      async restart(mode) {
        await ctl(['restart', '-m', mode]);
      },
      /** Starts it when a failed restart left it down (the heal step). */
      async ensureRunning() {
        const status = await exec('pg_ctl', ['status', '-D', data]).then(
          () => true,
          () => false,
        );
        if (!status) await ctl(['start']);
      },
      stop,
      /** For an 'exit' handler: an immediate shutdown, then the folder goes. */
      stopSync() {
        if (running) {
          const args = ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20'];
          try {
            if (asRoot)
              execFileSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args], {
                stdio: 'ignore',
              });
            else execFileSync(join(bin, 'pg_ctl'), args, { stdio: 'ignore' });
          } catch {
            // Already down.
          }
          running = false;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
