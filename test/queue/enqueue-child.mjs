// Child of durability.test.ts: enqueues items as fast as it can and prints the id of each enqueue
// as soon as it resolves (the acknowledgement), until the test SIGKILLs it. Uses the build (dist/).
import { openPostgresQueue } from '../../dist/queue/postgres.js';
import { openSqliteQueue } from '../../dist/queue/sqlite.js';

const [kind, where] = process.argv.slice(2);
const queue =
  kind === 'sqlite' ? openSqliteQueue(where) : await openPostgresQueue({ connectionString: where });
let n = 0;
const loop = async () => {
  for (let i = 0; i < 100_000; i++) {
    const { item } = await queue.enqueue('durable', { n: n++ });
    process.stdout.write(`${item.id}\n`);
  }
};
await Promise.all(Array.from({ length: 32 }, loop));
