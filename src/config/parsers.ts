/** Parsers of environment values. Each throws an Error whose message names the variable and the value. */
import type { Parser } from './define.js';

/** Intervals under this are almost certainly seconds written by a user of the old guide. */
export const MIN_INTERVAL_MS = 1_000;

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false };

export const bool: Parser<boolean> = (raw, name) => {
  const value = BOOLEAN_WORDS[raw.trim().toLowerCase()];
  if (value === undefined) throw new Error(`${name} must be one of true, false, 1, 0; got "${raw}"`);
  return value;
};

export const port: Parser<number> = (raw, name) => {
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n > 65_535) {
    throw new Error(`${name} must be an integer from 0 to 65535; got "${raw}"`);
  }
  return n;
};

export const integer =
  (min: number): Parser<number> =>
  (raw, name) => {
    const n = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || n < min || !Number.isSafeInteger(n)) {
      throw new Error(`${name} must be a whole number of at least ${min}; got "${raw}"`);
    }
    return n;
  };

/**
 * Milliseconds. Values under {@link MIN_INTERVAL_MS} are refused, because the old guide used seconds
 * for the same names. A value above that but under `plausibleMinMs` that reads as a round number of
 * seconds (HEALTH_CHECK_INTERVAL=3600: an hour in the old unit, 3.6 s now) starts with a warning.
 */
export const interval =
  (plausibleMinMs = MIN_INTERVAL_MS): Parser<number> =>
  (raw, name, warn) => {
    const n = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) {
      throw new Error(`${name} must be a whole number of milliseconds; got "${raw}"`);
    }
    if (n < MIN_INTERVAL_MS) {
      throw new Error(
        `${name}=${raw} looks like seconds: it is in milliseconds now, so ${n} seconds is ${n * 1000}` +
          ` (values under ${MIN_INTERVAL_MS} are refused)`,
      );
    }
    if (n < plausibleMinMs && n % 60 === 0) {
      warn(
        `${name}=${n} is ${n / 1000} s (the unit is milliseconds); if you meant ${n} seconds` +
          ` (${describeSeconds(n)}), write ${name}=${n * 1000}`,
      );
    }
    return n;
  };

function describeSeconds(s: number): string {
  if (s % 3600 === 0) return `${s / 3600} h`;
  return `${s / 60} min`;
}

export const oneOf =
  <T extends string>(...allowed: T[]): Parser<T> =>
  (raw, name) => {
    const value = raw.trim().toLowerCase() as T;
    if (!allowed.includes(value))
      throw new Error(`${name} must be one of ${allowed.join(', ')}; got "${raw}"`);
    return value;
  };

export const text: Parser<string> = (raw) => raw.trim();

export const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

export const hostPortList: Parser<string[]> = (raw, name, warn) => {
  const entries = list(raw, name, warn);
  for (const entry of entries) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d+)$/.exec(entry);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65_535) {
      throw new Error(`${name} must be a comma list of host:port; "${entry}" is not`);
    }
  }
  return entries;
};

/** A comma list whose entries must each be one of `allowed`; duplicates are dropped. */
export const setOf =
  <T extends string>(...allowed: T[]): Parser<T[]> =>
  (raw, name, warn) => {
    const entries = list(raw, name, warn).map((e) => e.toLowerCase() as T);
    if (entries.length === 0 || entries.some((e) => !allowed.includes(e))) {
      throw new Error(`${name} must be a comma list of ${allowed.join(', ')}; got "${raw}"`);
    }
    return [...new Set(entries)];
  };

export const url: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    return raw.trim().replace(/\/+$/, '');
  } catch {
    throw new Error(`${name} must be an http(s) URL; got "${raw}"`);
  }
};

export const peerIdText: Parser<string> = (raw, name) => {
  const value = raw.trim();
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    throw new Error(`${name} must be 1-64 characters of letters, digits, '.', '_' or '-'; got "${raw}"`);
  }
  return value;
};

export const token: Parser<string> = (raw, name) => {
  const value = raw.trim();
  if (value.length < 16) throw new Error(`${name} must be at least 16 characters long`);
  return value;
};

export const secretList: Parser<string[]> = (raw, name, warn) => {
  const secrets = list(raw, name, warn);
  if (secrets.some((s) => s.length < 16)) {
    throw new Error(`${name}: every secret must be at least 16 characters long`);
  }
  return secrets;
};

/** A finite number of at least `min` (decimals allowed). */
export const decimal =
  (min = 0): Parser<number> =>
  (raw, name) => {
    const n = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(n) || n < min) {
      throw new Error(`${name} must be a number of at least ${min}; got "${raw}"`);
    }
    return n;
  };

/** A percentage from 0 to 100, returned as a fraction (5 -> 0.05). */
export const percent: Parser<number> = (raw, name) => {
  const n = Number(raw.trim().replace(/%$/, ''));
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) {
    throw new Error(`${name} must be a percentage from 0 to 100; got "${raw}"`);
  }
  return n / 100;
};

export const postgresUrl: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('not postgres');
    return raw.trim();
  } catch {
    // The value may hold a password: never echo it.
    throw new Error(`${name} must be a postgres:// or postgresql:// URL`);
  }
};
