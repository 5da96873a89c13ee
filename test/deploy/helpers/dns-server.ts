/**
 * A tiny authoritative DNS server for tests: it answers A queries for the names it holds with every
 * address listed (as docker's embedded DNS answers a compose service name with every replica), AAAA
 * and other types of those names with an empty NOERROR answer, and anything else with NXDOMAIN. It
 * records every query, so a test can show that the peers really asked it.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

export interface DnsQuery {
  name: string;
  type: string;
  /** Source address of the query. */
  from: string;
  at: number;
}

export interface DnsServer {
  readonly address: string;
  readonly port: number;
  /** Sets the A records of a name (replacing earlier ones); an empty list keeps the name, without records. */
  setRecords(name: string, addresses: readonly string[]): void;
  queries(): readonly DnsQuery[];
  close(): Promise<void>;
}

const NXDOMAIN = 3;
const FORMERR = 1;

const normalise = (name: string) => name.toLowerCase().replace(/\.$/, '');

export function startDnsServer(options: { address: string; port?: number }): Promise<DnsServer> {
  const records = new Map<string, string[]>();
  const seen: DnsQuery[] = [];
  const socket: Socket = createSocket({ type: 'udp4' });

  const answer = (message: Buffer, remote: RemoteInfo) => {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return; // Not DNS: nothing to answer.
    }
    if (query.type !== 'query') return;
    const question = query.questions?.[0];
    const recursion = (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    if (!question) {
      socket.send(
        dnsPacket.encode({ type: 'response', id: query.id, flags: FORMERR | recursion, questions: [] }),
        remote.port,
        remote.address,
      );
      return;
    }
    const name = normalise(question.name);
    seen.push({ name, type: question.type, from: remote.address, at: Date.now() });
    const addresses = records.get(name);
    const answers: dnsPacket.Answer[] =
      addresses && question.type === 'A'
        ? addresses.map((data) => ({ type: 'A', name: question.name, class: 'IN', ttl: 0, data }))
        : [];
    const response = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | recursion | (addresses ? 0 : NXDOMAIN),
      questions: [question],
      answers,
    });
    socket.send(response, remote.port, remote.address);
  };

  socket.on('message', (message, remote) => {
    try {
      answer(message, remote);
    } catch {
      // A malformed query must never take the test process down.
    }
  });

  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port ?? 53, options.address, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      const bound = socket.address();
      resolve({
        address: bound.address,
        port: bound.port,
        setRecords(name, addresses) {
          records.set(normalise(name), [...addresses]);
        },
        queries: () => seen,
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}
