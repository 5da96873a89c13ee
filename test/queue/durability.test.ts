/**
 * "Everything the API accepted survives kill -9": a child process enqueues at full speed and prints
 * each id the moment its enqueue resolves; the test SIGKILLs it mid-stream and then finds every
 * acknowledged item in the store. Needs the build (npm test builds first), like test/integration.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { openPostgresQueue } from '../../src/queue/postgres.js';
import { openSqliteQueue } from '../../src/queue/sqlite.js';
import type { Queue } from '../../src/queue/types.js';
import { type PostgresServer, postgresUnavailable, startPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const CHILD = fileURLToPath(new URL('./enqueue-child.mjs', import.meta.url));
const BUILT = existsSync(fileURLToPath(new URL('../../dist/queue/sqlite.js', import.meta.url)));
if (!BUILT) console.warn('skipping queue kill -9 tests: no build in dist/ (run npm run build)');

/** Runs the child until it acknowledged at least `acks` items, SIGKILLs it, returns the acked ids. */
async function enqueueThenKill(kind: 'sqlite' | 'postgres', where: string, acks: number): Promise<string[]> {
  const child = spawn(process.execPath, [CHILD, kind, where], { stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const ids: string[] = [];
  let partial = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  const enough = Promise.withResolvers<void>();
  child.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    ids.push(...lines);
    if (ids.length >= acks) enough.resolve();
  });
  child.once('exit', () => enough.reject(new Error(`child exited early: ${stderr}`)));
  await enough.promise;
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  // Lines that reached the pipe before the kill count too: they were acknowledged.
  if (partial) ids.push(partial);
  return ids.filter((id) => /^\d+$/.test(id));
}

async function expectAllPresent(queue: Queue, ids: string[]): Promise<void> {
  const missing: string[] = [];
  for (const id of ids) if (!(await queue.get(id))) missing.push(id);
  expect(missing).toEqual([]);
}

describe.skipIf(!BUILT)('queue durability under kill -9', () => {
  it('sqlite: every acknowledged enqueue is in the file after the writer is SIGKILLed', async () => {
    const dir = tempDir('qb-durable-');
    const ids = await enqueueThenKill('sqlite', dir, 500);
    expect(ids.length).toBeGreaterThanOrEqual(500);
    const queue = openSqliteQueue(dir);
    onTestFinished(() => queue.close());
    await expectAllPresent(queue, ids);
  });

  const pgMissing = postgresUnavailable();
  if (pgMissing) console.warn(`skipping the PostgreSQL kill -9 test: ${pgMissing}`);
  describe.skipIf(pgMissing !== null)('postgres', () => {
    let server: PostgresServer;
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(() => server?.stop());

    it('every acknowledged enqueue is in the database after the client is SIGKILLed', async () => {
      const url = await server.createDatabase('durable');
      const ids = await enqueueThenKill('postgres', url, 500);
      const queue = await openPostgresQueue({ connectionString: url });
      onTestFinished(() => queue.close());
      await expectAllPresent(queue, ids);
    });
  });
});
