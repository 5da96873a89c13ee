/**
 * The mesh wire protocol: version range, message types, one schema per message, encode/decode,
 * close codes, size limits. Every message is one JSON document. ONLY APPEND: add message types and
 * optional fields; never change or remove what a released version sends, raise PROTOCOL_VERSION
 * for anything else and keep MIN_PROTOCOL_VERSION as long as the old behaviour is still spoken.
 *
 * Handshake, in plaintext text frames (dialer D, acceptor A; proofs are HMAC-SHA256 over the hash
 * of the canonical hello and challenge, see auth.ts):
 *   D -> A  hello     {v, vMin, cluster, peerId, bootId, nonce, listenPort, killSwitch}
 *   A -> D  challenge {v, vMin, cluster, peerId, bootId, nonce, killSwitch, proof: A's proof}
 *   D -> A  auth      {proof: D's proof}
 *   A -> D  ready     {}                      (the first sealed frame)
 * then, sealed (seal.ts) in binary frames, either side: status, killswitch, ping, pong, bye,
 * status-delta, status-request, suspect (a watcher's report, see watch-ring.ts; an older peer
 * counts and ignores it). A `status` with a `seq` says its sender also speaks deltas: from
 * then on it may get `status-delta`s (seq + 1, + 2...) on that link instead of whole summaries, and
 * asks with `status-request` for the whole one when it sees a gap. A peer whose status has no `seq`
 * (an older one) keeps getting the whole summary every sync.
 * `v` is the highest version a peer speaks, `vMin` the lowest (absent: v); both link on the highest
 * version both speak. After the handshake, unknown message types and unknown enum values are
 * counted and ignored (a newer peer may send them), so a fleet upgrades one peer at a time.
 */
import { type Static, type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * The highest protocol version this code speaks. 2: sealed frames and the transcript-bound
 * handshake; version 1 (plaintext frames) is no longer spoken, since accepting it would let an
 * on-path attacker downgrade a link to plaintext.
 */
export const PROTOCOL_VERSION = 2;
/** The lowest version this code still speaks; peers with no common version are refused (4406). */
export const MIN_PROTOCOL_VERSION = 2;
/** Frames above this are refused by ws itself (close 1009). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/**
 * Before the handshake completes, a frame above this closes the socket (1009) before it is parsed:
 * a hello with the longest kill-switch reason is under 3 KiB; the rest is room for appended fields.
 */
export const MAX_HANDSHAKE_FRAME_BYTES = 8 * 1024;
/** Budget of `extra` (subsystem summaries) in a status: per subsystem and in total, as JSON bytes. */
export const MAX_EXTRA_ENTRY_BYTES = 16 * 1024;
export const MAX_EXTRA_BYTES = 64 * 1024;
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
  /** A frame after the handshake did not open: tampered, replayed, reordered, or not sealed. */
  UNSEALED: 4414,
  /** This side failed handling the link (a full disk writing the kill switch...): that link only. */
  INTERNAL_ERROR: 1011,
  /** Another live process (another bootId) uses this peerId and holds the link: PEER_ID conflict. */
  DUPLICATE_PEER_ID: 4415,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** Close codes that mean "the other side refuses us"; retried slowly, shown as refused. */
export const REFUSAL_CODES: ReadonlySet<number> = new Set([
  CLOSE.AUTH_FAILED,
  CLOSE.WRONG_CLUSTER,
  CLOSE.BAD_VERSION,
  CLOSE.REPLAYED,
]);

/** The states a link can be in, as a status summary reports them (the schema lists the same). */
export const LINK_STATES: readonly string[] = ['connecting', 'connected', 'suspect', 'down'];

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

/**
 * What changed in a status summary since the last one sent on this link (see summary-delta.ts):
 * top-level fields replaced (`set`), optional ones removed (`unset`), link entries changed or
 * removed, and the sender's uptime. `seq` follows the `seq` of the previous status or delta.
 */
export const SummaryDeltaSchema = Type.Object({
  type: Type.Literal('status-delta'),
  seq: Type.Integer({ minimum: 0 }),
  uptime: Type.Number({ minimum: 0 }),
  set: Type.Optional(
    Type.Partial(
      Type.Pick(StatusSummary, [
        'bootId',
        'version',
        'apiPort',
        'killSwitch',
        'subsystems',
        'queues',
        'extra',
      ]),
    ),
  ),
  unset: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16 })),
  links: Type.Optional(
    Type.Object({
      set: Type.Array(SummaryLink, { maxItems: MAX_SUMMARY_LINKS }),
      removed: Type.Array(Id, { maxItems: MAX_SUMMARY_LINKS }),
    }),
  ),
});

const messageSchemas = {
  hello: Type.Object({
    type: Type.Literal('hello'),
    v: Type.Integer(),
    vMin: Type.Optional(Type.Integer()),
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
    vMin: Type.Optional(Type.Integer()),
    cluster: Id,
    peerId: Id,
    bootId: Id,
    nonce: Nonce,
    killSwitch: KillSwitchWire,
    proof: Proof,
  }),
  auth: Type.Object({ type: Type.Literal('auth'), proof: Proof }),
  ready: Type.Object({ type: Type.Literal('ready') }),
  status: Type.Object({
    type: Type.Literal('status'),
    summary: StatusSummary,
    /** The sender speaks status-delta; its next delta on this link has seq + 1. */
    seq: Type.Optional(Type.Integer({ minimum: 0 })),
  }),
  killswitch: Type.Object({ type: Type.Literal('killswitch'), state: KillSwitchWire }),
  ping: Type.Object({
    type: Type.Literal('ping'),
    id: Type.Integer({ minimum: 0 }),
    t: Type.Number(),
    /** The pinger's last round-trip time on this link, so the side that only answers knows it too. */
    rttMs: Type.Optional(Type.Number({ minimum: 0 })),
  }),
  pong: Type.Object({ type: Type.Literal('pong'), id: Type.Integer({ minimum: 0 }), t: Type.Number() }),
  bye: Type.Object({ type: Type.Literal('bye'), reason: Type.String({ maxLength: 200 }) }),
  'status-delta': SummaryDeltaSchema,
  /** Asks for the whole summary (a delta came after a gap, or before any whole one). */
  'status-request': Type.Object({ type: Type.Literal('status-request') }),
  /** A watcher (watch-ring.ts) has not heard this boot of this peer for a suspicion's time. */
  suspect: Type.Object({ type: Type.Literal('suspect'), peerId: Id, bootId: Id }),
} as const;

type Schemas = typeof messageSchemas;
export type MessageType = keyof Schemas;
export type Message = { [K in MessageType]: Static<Schemas[K]> }[MessageType];
export type MessageOf<K extends MessageType> = Static<Schemas[K]>;
export type KillSwitchWireState = Static<typeof KillSwitchWire>;
export type Summary = Static<typeof StatusSummary>;
export type SummaryDelta = Static<typeof SummaryDeltaSchema>;

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
 * Parses and validates one handshake frame, strictly: an unknown type is a protocol violation here
 * (after the handshake, decodeTolerant applies).
 * @throws ProtocolError with the close code for the violation.
 */
export function decode(data: string | Buffer, byteLength = Buffer.byteLength(data)): Message {
  const parsed = parseObject(data, byteLength);
  const type = parsed.type;
  if (typeof type !== 'string' || !Object.hasOwn(validators, type)) {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, `unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  }
  return validate(type as MessageType, parsed);
}

/** The versions one peer speaks, inclusive. */
export interface VersionRange {
  min: number;
  max: number;
}

export const SUPPORTED_VERSIONS: VersionRange = { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION };

/** The range a hello or challenge announces (`vMin` absent: a peer that speaks only `v`). */
export function announcedRange(m: { v: number; vMin?: number | undefined }): VersionRange {
  return { min: Math.min(m.vMin ?? m.v, m.v), max: m.v };
}

/** The highest version both ranges hold, or undefined when they do not overlap. Pure, symmetric. */
export function negotiateVersion(a: VersionRange, b: VersionRange): number | undefined {
  const v = Math.min(a.max, b.max);
  return v >= Math.max(a.min, b.min) ? v : undefined;
}

/** What one frame after the handshake turned out to be. */
export type Decoded =
  | { kind: 'message'; msg: Message; ignored: number }
  | { kind: 'unknown-type'; type: string };

/**
 * Parses and validates one frame after the handshake, tolerating what a newer peer may send: a
 * message of an unknown type is returned as such (the caller counts and ignores it), a link state
 * this version does not know is dropped from the summary, and subsystem data over its budget is
 * dropped; `ignored` counts what was dropped. Unknown fields pass (schemas are open).
 * @throws ProtocolError for what no version of the protocol sends (not JSON, no type, a bad field).
 */
export function decodeTolerant(data: string | Buffer, byteLength = Buffer.byteLength(data)): Decoded {
  const parsed = parseObject(data, byteLength);
  const type = parsed.type;
  if (typeof type !== 'string' || type.length === 0 || type.length > 32) {
    throw new ProtocolError(CLOSE.BAD_MESSAGE, 'message has no type');
  }
  if (!Object.hasOwn(validators, type)) return { kind: 'unknown-type', type };
  let ignored = 0;
  if (type === 'status') ignored = tolerateSummary((parsed as { summary?: unknown }).summary);
  if (type === 'status-delta') ignored = tolerateDelta(parsed);
  return { kind: 'message', msg: validate(type as MessageType, parsed), ignored };
}

/** tolerateSummary for a delta: its replaced fields and its changed link entries. */
function tolerateDelta(delta: Record<string, unknown>): number {
  let dropped = tolerateSummary(delta.set);
  const links = delta.links as { set?: unknown } | undefined;
  if (typeof links === 'object' && links !== null) {
    const holder = { links: links.set };
    dropped += tolerateSummary(holder);
    links.set = holder.links;
  }
  return dropped;
}

/** Drops unknown link states and over-budget `extra` in place. @returns how many were dropped. */
function tolerateSummary(summary: unknown): number {
  if (typeof summary !== 'object' || summary === null) return 0;
  const s = summary as { links?: unknown; extra?: unknown };
  let dropped = 0;
  if (Array.isArray(s.links)) {
    const known = s.links.filter(
      (l) => typeof (l as { state?: unknown })?.state !== 'string' || LINK_STATES.includes(l.state),
    );
    dropped += s.links.length - known.length;
    s.links = known;
  }
  if (typeof s.extra === 'object' && s.extra !== null && !Array.isArray(s.extra)) {
    const fitted = fitExtra(s.extra as Record<string, unknown>);
    dropped += fitted.dropped;
    s.extra = fitted.extra;
  }
  return dropped;
}

/**
 * Keeps subsystem data within its budget: an entry over MAX_EXTRA_ENTRY_BYTES is dropped, and
 * entries are kept in order while the total stays within MAX_EXTRA_BYTES. One subsystem's bloated
 * summary thus costs only its own entry, never the status message or the link.
 */
export function fitExtra(extra: Record<string, unknown>): {
  extra: Record<string, unknown>;
  dropped: number;
} {
  const kept: Record<string, unknown> = {};
  let total = 2;
  let dropped = 0;
  for (const [name, value] of Object.entries(extra)) {
    const bytes = Buffer.byteLength(JSON.stringify(value) ?? '') + Buffer.byteLength(name) + 4;
    if (bytes > MAX_EXTRA_ENTRY_BYTES || total + bytes > MAX_EXTRA_BYTES) {
      dropped++;
      continue;
    }
    total += bytes;
    kept[name] = value;
  }
  return { extra: kept, dropped };
}

function parseObject(data: string | Buffer, byteLength: number): Record<string, unknown> {
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
  return parsed as Record<string, unknown>;
}

function validate(type: MessageType, parsed: unknown): Message {
  const repaired =
    type === 'status'
      ? repairSummary((parsed as { summary?: unknown }).summary)
      : type === 'status-delta'
        ? repairSummary((parsed as { set?: unknown }).set)
        : [];
  const validator = validators[type];
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
