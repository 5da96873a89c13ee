#!/usr/bin/env node
/**
 * The keeper of a test's network namespace (see netns.ts); it runs INSIDE the namespace, started by
 * `unshare -n`. For each port given, it serves a Unix socket `<dir>/<port>.sock` whose connections
 * it pipes to 127.0.0.1:<port> in the namespace: file-system sockets cross network namespaces, so
 * the test process, which stays in the root namespace, can reach the peers in there.
 *
 * Before it says ready it checks that multicast works on this namespace's loopback (a datagram to
 * an mDNS-style group comes back), so an mDNS test that fails is not a broken namespace. It prints
 * one JSON line `{"ready":true,...}` or `{"ready":false,"error":...}`, and exits when its stdin
 * closes: the test that started it is gone, so nothing it made outlives it.
 *
 * Usage: node netns-relay.mjs <dir> <port>...
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

const [dir, ...ports] = process.argv.slice(2);
/** The mDNS group, but on a random port (not 5353), so no peer here takes the probe for mDNS. */
const PROBE_GROUP = '224.0.0.251';
const PROBE_TIMEOUT_MS = 3_000;

function relay(port) {
  return new Promise((resolve, reject) => {
    const server = createServer((client) => {
      const upstream = connect(port, '127.0.0.1');
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      for (const socket of [client, upstream]) {
        socket.on('error', end);
        socket.on('close', end);
      }
      client.pipe(upstream).pipe(client);
    });
    server.once('error', reject);
    server.listen(join(dir, `${port}.sock`), () => resolve(server));
  });
}

/** Sends one datagram to a multicast group from 127.0.0.1 and waits to receive it back. */
function multicastProbe() {
  return new Promise((resolve, reject) => {
    const receiver = createSocket({ type: 'udp4', reuseAddr: true });
    const sender = createSocket({ type: 'udp4', reuseAddr: true });
    const token = `qb-probe-${process.pid}-${Date.now()}`;
    const done = (err) => {
      clearTimeout(timer);
      receiver.close();
      sender.close();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () => done(new Error(`no multicast datagram came back on lo within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
    receiver.on('error', done);
    sender.on('error', done);
    receiver.on('message', (msg) => {
      if (msg.toString() === token) done();
    });
    receiver.bind(0, '0.0.0.0', () => {
      try {
        receiver.addMembership(PROBE_GROUP, '127.0.0.1');
      } catch (err) {
        return done(err);
      }
      sender.send(token, receiver.address().port, PROBE_GROUP, (err) => {
        if (err) done(err);
      });
    });
  });
}

try {
  if (!dir || ports.length === 0) throw new Error('usage: netns-relay.mjs <dir> <port>...');
  await multicastProbe();
  await Promise.all(ports.map((p) => relay(Number(p))));
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, ports: ports.map(Number) })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ ready: false, error: err.message })}\n`);
  process.exit(1);
}
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
