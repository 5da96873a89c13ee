/**
 * The first touch of DATA_DIR and LOG_DIR: both writable, the peer's identity and its API token
 * loaded or created. Light on purpose (no SQLite, no fastify): the worker runs it before its port
 * listens, so a /health 200 still means the identity and the token file exist.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { Config } from '../config.js';
import { QbError } from '../errors.js';
import { type ApiToken, type Identity, loadApiToken, loadIdentity } from './identity.js';

export interface PreparedDataDir {
  identity: Identity;
  token: ApiToken;
}

/** Throws QB_ERR_DATA_DIR when a directory cannot be created or written. */
export function prepareDataDir(config: Readonly<Config>): PreparedDataDir {
  ensureWritable(config.dataDir, 'DATA_DIR');
  ensureWritable(config.logDir, 'LOG_DIR');
  return {
    identity: loadIdentity(config.dataDir, config.peerId),
    token: loadApiToken(config.dataDir, config.apiToken),
  };
}

function ensureWritable(dir: string, name: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new QbError(
      'QB_ERR_DATA_DIR',
      `${name} ${dir} cannot be created or written: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
