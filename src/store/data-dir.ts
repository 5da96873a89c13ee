/**
 * The first touch of DATA_DIR and LOG_DIR: both writable, the peer's identity and its API token
 * loaded or created. Light on purpose (no SQLite, no fastify): the worker runs it before its port
 * listens, so a /health 200 still means the identity and the token file exist.
 */
import type { Config } from '../config.js';
import { ensureWritableDir } from './dirs.js';
import { type ApiToken, type Identity, loadApiToken, loadIdentity } from './identity.js';

export interface PreparedDataDir {
  identity: Identity;
  token: ApiToken;
}

/** Throws QB_ERR_DATA_DIR when a directory cannot be created or written. */
export function prepareDataDir(config: Readonly<Config>): PreparedDataDir {
  ensureWritableDir(config.dataDir, 'DATA_DIR');
  ensureWritableDir(config.logDir, 'LOG_DIR');
  return {
    identity: loadIdentity(config.dataDir, config.peerId),
    token: loadApiToken(config.dataDir, config.apiToken),
  };
}
