// A bare fastify hello-world: the yardstick of scripts/lib/http-bench.mjs. Listens on 127.0.0.1 at
// the port given as the only argument, prints "listening" once it does, exits on SIGTERM.
import Fastify from 'fastify';

const app = Fastify();
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: Number(process.argv[2]), host: '127.0.0.1' });
process.stdout.write('listening\n');
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
