import { afterAll, beforeAll, describe } from 'vitest';
import { openPostgresQueue } from '../../src/queue/postgres.js';
import { type PostgresServer, postgresUnavailable, startPostgres } from '../helpers/postgres.js';
import { queueConformance } from './conformance.js';

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the PostgreSQL queue conformance suite: ${unavailable}`);

describe.skipIf(unavailable !== null)('postgres backend', () => {
  let server: PostgresServer;
  let n = 0;
  beforeAll(async () => {
    server = await startPostgres({ fsync: false });
  });
  afterAll(() => server?.stop());

  queueConformance({
    name: 'postgres',
    async store() {
      // A database per test: each one starts empty and runs the named migrations itself.
      const url = await server.createDatabase(`queue_test_${++n}`);
      return {
        open: (options) => openPostgresQueue({ ...options, connectionString: url, maxConnections: 4 }),
      };
    },
  });
});
