/**
 * The mesh wire protocol: version, message types, one schema per message, encode/decode, close
 * codes. Every message is one JSON text frame. ONLY APPEND: add message types and optional fields;
 * never change or remove what a released version sends, bump PROTOCOL_VERSION for anything else.
 *
 * Handshake (dialer D, acceptor A; proofs are HMAC-SHA256, see auth.ts):
 *   D -> A  hello     {v, cluster, peerId, bootId, nonce, listenPort, killSwitch}
 *   A -> D  challenge {v, cluster, peerId, bootId, nonce, killSwitch, proof: A's proof}
 *   D -> A  auth      {proof: D's proof}
 *   A -> D  ready     {}
 * then either side: status, killswitch, ping, pong, bye.
 */
import { type Static, type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';

/** Bump on any incompatible change; peers with another version are refused (close 4406). */
export const PROTOCOL_VERSION = 1;
/** Frames above this are refused by ws itself (close 1009). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** The whole handshake must finish within this, or the socket is closed (4408). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
export const MESH_PATH = '/mesh';

/** WebSocket close codes of the mesh. ONLY APPEND. */
export const CLOSE = {
  /** Graceful leave (after `bye`). */
  GOING_AWAY: 1001,
  /** A frame over MAX_MESSAGE_BYTES (ws sends it). */
  TOO_LARGE: 1009,
  /** Malformed JSON, unknown type, schema violation, message out of order. */
  BAD_MESSAGE: 4400,
  /** Proof did not verify: wrong or missing MESH_SECRET. */
  AUTH_FAILED: 4401,
  /** The other peer belongs to another MESH_CLUSTER. */
  WRONG_CLUSTER: 4403,
  /** Incompatible PROTOCOL_VERSION. */
  BAD_VERSION: 4406,
  /** Handshake not finished in time. */
  HANDSHAKE_TIMEOUT: 4408,
  /** Simultaneous dial: the link dialed by the smaller peerId is dropped. */
  DUPLICATE: 4409,
  /** A link of the same peer with a newer bootId replaced this one. */
  REPLACED: 4410,
  /** Dialed ourselves. */
  SELF: 4411,
  /** A nonce seen before: a replayed handshake. No longer sent (the acceptor's fresh nonce already
   *  defeats a replay); kept so an older peer's refusal is still named. */
  REPLAYED: 4412,
  /** Heartbeats missed: the peer is considered down. */
  TIMEOUT: 4413,
  /** This side failed handling the link (a full disk writing the kill switch...): that link only. */
  INTERNAL_ERROR: 1011,
  /** Another live process (another bootId) uses this peerId and holds the link: PEER_ID conflict. */
  DUPLICATE_PEER_ID: 4414,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** Close codes that mean "the other side refuses us"; retried slowly, shown as refused. */
export const REFUSAL_CODES: ReadonlySet<number> = new Set([
  CLOSE.AUTH_FAILED,
  CLOSE.WRONG_CLUSTER,
  CLOSE.BAD_VERSION,
  CLOSE.REPLAYED,
]);

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' });
const Nonce = Type.String({ minLength: 32, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const Proof = Type.String({ minLength: 64, maxLength: 64, pattern: '^[0-9a-f]+$' });

export const KillSwitchWire = Type.Object({
  active: Type.Boolean(),
  reason: Type.String({ maxLength: 500 }),
  since: Type.String({ maxLength: 40 }),
  origin: Type.String({ maxLength: 64 }),
  /** Bounded: past MAX_SAFE_INTEGER, epoch + 1 === epoch and the switch could never change again. */
  epoch: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
});

/** Most entries a status summary's `links` may carry; more are trimmed on receipt. */
export const MAX_SUMMARY_LINKS = 512;

const SummaryLink = Type.Object({
  peerId: Id,
  state: Type.Union([
    Type.Literal('connecting'),
    Type.Literal('connected'),
    Type.Literal('suspect'),
    Type.Literal('down'),
  ]),
});
const SummaryExtra = Type.Record(Type.String({ maxLength: 32 }), Type.Unknown());

/** What a peer tells the fleet about itself every MESH_SYNC_INTERVAL. */
export const StatusSummary = Type.Object({
  peerId: Id,
  bootId: Type.String({ maxLength: 64 }),
  version: Type.String({ maxLength: 40 }),
  /** Seconds. */
  uptime: Type.Number({ minimum: 0 }),
  /** host:port where this peer's API and dashboard listen, as it knows it. */
  apiPort: Type.Integer({ minimum: 0, maximum: 65535 }),
  killSwitch: KillSwitchWire,
  subsystems: Type.Array(
    Type.Object({
      name: Type.String({ maxLength: 32 }),
      state: Type.String({ maxLength: 16 }),
      restarts: Type.Integer({ minimum: 0 }),
    }),
    { maxItems: 32 },
  ),
  queues: Type.Record(Type.String({ maxLength: 32 }), Type.Integer({ minimum: 0 })),
  /** Free-form per-subsystem summaries (trading PnL...), kept small by MAX_MESSAGE_BYTES. */
  extra: Type.Optional(SummaryExtra),
  /** This peer's view of its links, so any peer can draw the whole mesh. */
  links: Type.Optional(Type.Array(SummaryLink, { maxItems: MAX_SUMMARY_LINKS })),
});

const messageSchemas = {
  hello: Type.Object({
    type: Type.Literal('hello'),
    v: Type.Integer(),
    cluster: Id,
    peerId: Id,
    bootId: Id,
    nonce: Nonce,
    listenPort: Type.Integer({ minimum: 0, maximum: 65535 }),
    killSwitch: KillSwitchWire,
  }),
  challenge: Type.Object({
    type: Type.Literal('challenge'),
    v: Type.Integer(),
    cluster: Id,
    peerId: Id,
    bootId: Id,
    nonce: Nonce,
    killSwitch: KillSwitchWire,
    proof: Proof,
  }),
  auth: Type.Object({ type: Type.Literal('auth'), proof: Proof }),
  ready: Type.Object({ type: Type.Literal('ready') }),
  status: Type.Object({ type: Type.Literal('status'), summary: StatusSummary }),
  killswitch: Type.Object({ type: Type.Literal('killswitch'), state: KillSwitchWire }),
  ping: Type.Object({ type: Type.Literal('ping'), id: Type.Integer({ minimum: 0 }), t: Type.Number() }),
  pong: Type.Object({ type: Type.Literal('pong'), id: Type.Integer({ minimum: 0 }), t: Type.Number() }),
  bye: Type.Object({ type: Type.Literal('bye'), reason: Type.String({ maxLength: 200 }) }),
} as const;

type Schemas = typeof messageSchemas;
export type MessageType = keyof Schemas;
export type Message = { [K in MessageType]: Static<Schemas[K]> }[MessageType];
export type MessageOf<K extends MessageType> = Static<Schemas[K]>;
export type KillSwitchWireState = Static<typeof KillSwitchWire>;
export type Summary = Static<typeof StatusSummary>;

const validators = Object.fromEntries(
  Object.entries(messageSchemas).map(([type, schema]) => [type, Compile(schema as TSchema)]),
) as Record<MessageType, ReturnType<typeof Compile>>;

/** A protocol violation, carrying the close code to end the link with. */
export class ProtocolError extends Error {
  constructor(
    readonly closeCode: CloseCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Builds a message; the only way to make one. */
export function message<K extends MessageType>(type: K, fields: Omit<MessageOf<K>, 'type'>): MessageOf<K> {
  return { type, ...fields } as MessageOf<K>;
}

export function encode(msg: Message): string {
  return JSON.stringify(msg);
}

/**
 * Parses and validates one frame.
 * @throws ProtocolError with the close code for the violation.
 */
export function decode(data: string | Buffer, byteLength = Buffer.byteLength(data)): Message {
  if (byteLength > MAX_MESSAGE_BYTES)
    throw new ProtocolError(CLOSE.TOO_LARGE, `message of ${byteLength} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, 'message is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, 'message is not an object');
  }
  const type = (parsed as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(validators, type)) {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, `unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
  const repaired = type === 'status' ? repairSummary((parsed as { summary?: unknown }).summary) : [];
  const validator = validators[type as MessageType];
  if (!validator.Check(parsed)) {
    const first = validator.Errors(parsed)[0];
    const where = first ? `${first.instancePath || '/'} ${first.message}` : 'schema';
    throw new ProtocolError(CLOSE.BAD_MESSAGE, `invalid ${type}: ${where}`);
  }
  if (repaired.length > 0) Object.defineProperty(parsed, REPAIRED, { value: repaired, enumerable: false });
  return parsed as Message;
}

const REPAIRED = Symbol('repaired');
const checkLink = Compile(SummaryLink);
const checkExtra = Compile(SummaryExtra);

/**
 * The optional fields decode dropped or trimmed from a message (empty for most): an optional field
 * is advisory, so a bad one is repaired and counted, and never closes the link. A link closed for
 * an optional field would flap every link of a fleet over one bad value.
 */
export function repairsOf(msg: Message): readonly string[] {
  return (msg as { [REPAIRED]?: string[] })[REPAIRED] ?? [];
}

/** Drops invalid `links` entries (at most MAX_SUMMARY_LINKS kept) and an invalid `extra`, in place. */
function repairSummary(summary: unknown): string[] {
  if (typeof summary !== 'object' || summary === null) return [];
  const s = summary as { links?: unknown; extra?: unknown };
  const repaired: string[] = [];
  if (s.links !== undefined) {
    if (!Array.isArray(s.links)) {
      delete s.links;
      repaired.push('links');
    } else {
      const valid = s.links.filter((l) => checkLink.Check(l)).slice(0, MAX_SUMMARY_LINKS);
      if (valid.length !== s.links.length) {
        s.links = valid;
        repaired.push('links');
      }
    }
  }
  if (s.extra !== undefined && !checkExtra.Check(s.extra)) {
    delete s.extra;
    repaired.push('extra');
  }
  return repaired;
}
