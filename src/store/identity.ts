/**
 * Files that make a peer itself across restarts: its peerId and its generated API token, both in
 * DATA_DIR. The token file is created with mode 0600 and only its path is ever logged.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const PEER_ID_FILE = 'peer-id';
export const API_TOKEN_FILE = 'api-token';

export interface Identity {
  peerId: string;
  /** New on every start: lets peers tell a restarted process from a lingering link. */
  bootId: string;
}

export function loadIdentity(dataDir: string, configuredPeerId: string | undefined): Identity {
  const bootId = randomUUID();
  if (configuredPeerId) return { peerId: configuredPeerId, bootId };
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, PEER_ID_FILE);
  const exists = existsSync(file);
  if (exists) {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored) return { peerId: stored, bootId };
  }
  const host = hostname()
    .replace(/[^A-Za-z0-9-]/g, '-')
    .slice(0, 32);
  const peerId = `${host}-${randomBytes(4).toString('hex')}`;
  // 'wx' refuses to overwrite an id another process just wrote; an empty file (a write cut short)
  // is replaced, or the peer could never start again.
  writeFileSync(file, `${peerId}\n`, { flag: exists ? 'w' : 'wx' });
  return { peerId, bootId };
}

export interface ApiToken {
  token: string;
  /** Where a generated token was written; undefined when it came from API_TOKEN. */
  file: string | undefined;
  generated: boolean;
}

export function loadApiToken(dataDir: string, configured: string | undefined): ApiToken {
  if (configured) return { token: configured, file: undefined, generated: false };
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, API_TOKEN_FILE);
  if (existsSync(file)) {
    // Tighten a token file someone loosened: it grants control of the peer.
    chmodSync(file, 0o600);
    const stored = readFileSync(file, 'utf8').trim();
    if (stored) return { token: stored, file, generated: false };
  }
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, file, generated: true };
}
