// One fake peer for mdns-probe.mjs: runs a real mdns discovery (real bonjour-service, real UDP
// multicast) and reports over IPC. It never calls process.exit: after {type:'stop'} it stops the
// discovery and drops IPC, so it exits by itself only if stop() released every socket and timer.
// Usage (forked): node mdns-peer.mjs <compiled mdns.js path> <options JSON>

import { pathToFileURL } from 'node:url';

const [modulePath, optionsJson] = process.argv.slice(2);
const { createMdnsDiscovery } = await import(pathToFileURL(modulePath).href);
const options = JSON.parse(optionsJson);
const send = (message) => {
  if (process.connected) process.send(message);
};

const discovery = createMdnsDiscovery(options);
await discovery.start({
  onSighting: (sighting) => send({ type: 'sighting', at: Date.now(), sighting }),
  onError: (error, source) =>
    send({
      type: 'error',
      at: Date.now(),
      source,
      code: error?.code,
      message: String(error?.message ?? error),
    }),
});
send({ type: 'started', at: Date.now() });

process.on('message', async (message) => {
  if (message?.type !== 'stop') return;
  const started = Date.now();
  await discovery.stop();
  send({ type: 'stopped', at: Date.now(), stopMs: Date.now() - started });
  process.disconnect();
});
