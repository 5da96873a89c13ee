// A hostile mDNS announcer for mdns-hostile.test.ts, run INSIDE A FRESH NETWORK NAMESPACE: it
// refuses to start unless loopback is the only interface. It publishes quantum-bot records with the
// peer ids it is given (malformed ones, or hundreds of distinct ones), each on a port where nothing
// listens, answers queries for them, prints one "ready" line and runs until SIGTERM/SIGKILL.
// Bounded: it exits by itself after HARD_LIMIT_MS.
// Usage: node mdns-announcer.mjs '<JSON {cluster, v, services: [{peerId, port}]}>'

import os from 'node:os';
import Bonjour from 'bonjour-service';

const HARD_LIMIT_MS = 180_000;
/** Services per Bonjour instance: one instance answers a query in one packet, which must stay under 64 KiB. */
const PER_INSTANCE = 50;

const interfaces = Object.keys(os.networkInterfaces());
if (interfaces.length !== 1 || interfaces[0] !== 'lo') {
  process.stderr.write(`not an isolated network namespace: interfaces ${interfaces.join(', ')}\n`);
  process.exit(3);
}
setTimeout(() => process.exit(0), HARD_LIMIT_MS).unref();

const { cluster, v, services } = JSON.parse(process.argv[2]);
const errors = [];
const instances = [];
for (let i = 0; i < services.length; i += PER_INSTANCE) {
  // bind 0.0.0.0 with the interface for membership: a socket bound to 127.0.0.1 gets no multicast.
  const bonjour = new Bonjour({ interface: '127.0.0.1', bind: '0.0.0.0' }, (err) => errors.push(String(err)));
  instances.push(bonjour);
  for (const [j, s] of services.slice(i, i + PER_INSTANCE).entries()) {
    bonjour.publish({
      name: `hostile-${i + j}`,
      type: 'quantum-bot',
      port: s.port,
      txt: { peerId: s.peerId, cluster, v: String(v) },
      probe: false,
    });
  }
}
process.stdout.write(`${JSON.stringify({ ready: true, services: services.length })}\n`);
process.once('SIGTERM', () => {
  for (const b of instances) b.destroy();
  process.exit(0);
});
// Keep the process alive (bonjour's timers are unref'd).
setInterval(() => {
  if (errors.length > 0) process.stderr.write(`${errors.splice(0).join('\n')}\n`);
}, 1000);
