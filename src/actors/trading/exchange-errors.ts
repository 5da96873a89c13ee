/**
 * What an exchange error means for the bot, decided from ccxt's error classes by name (walking the
 * prototype chain), so this module needs no ccxt import and the sim path never loads ccxt:
 * - network trouble and an unavailable exchange: retry with backoff, shown as `reconnecting`;
 * - rate limiting (429, 418, DDoSProtection): slow down;
 * - authentication and permission errors: stop trading with a clear reason (retrying cannot fix them);
 * - anything else: an exchange failure that counts toward the breaker.
 */
export type ErrorKind = 'network' | 'rate-limit' | 'auth' | 'other';

const BY_CLASS: Record<string, ErrorKind> = {
  RateLimitExceeded: 'rate-limit',
  DDoSProtection: 'rate-limit',
  AuthenticationError: 'auth',
  PermissionDenied: 'auth',
  AccountSuspended: 'auth',
  NetworkError: 'network',
  ExchangeNotAvailable: 'network',
  RequestTimeout: 'network',
  OnMaintenance: 'network',
};

/** True when `err` is (or derives from) the ccxt error class `name`. */
export function isErrorClass(err: unknown, name: string): boolean {
  for (
    let proto = err && typeof err === 'object' ? Object.getPrototypeOf(err) : null;
    proto;
    proto = Object.getPrototypeOf(proto)
  ) {
    if (proto.constructor?.name === name) return true;
  }
  return false;
}

export function classifyExchangeError(err: unknown): ErrorKind {
  for (
    let proto = err && typeof err === 'object' ? Object.getPrototypeOf(err) : null;
    proto;
    proto = Object.getPrototypeOf(proto)
  ) {
    const kind = BY_CLASS[proto.constructor?.name as string];
    if (kind) return kind;
  }
  const code = (err as { code?: string } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'ENOTFOUND')
    return 'network';
  return 'other';
}

/**
 * ccxt puts signed request URLs (with the API key and signature in the query) into error messages.
 * Scrub anything that looks like a credential before the message reaches a log, /status or an answer.
 */
export function scrubSecrets(message: string, secrets: readonly (string | undefined)[] = []): string {
  let out = message.replace(
    /([?&](?:signature|apiKey|api_key|key|secret|token|passphrase|timestamp|recvWindow)=)[^&\s"']+/gi,
    '$1<redacted>',
  );
  out = out.replace(
    /(X-MBX-APIKEY|apikey|api-key|authorization)(["']?\s*[:=]\s*["']?)[^\s"',}]+/gi,
    '$1$2<redacted>',
  );
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('<redacted>');
  return out;
}
