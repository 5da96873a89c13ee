import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_TOKEN_FILE, loadApiToken, loadIdentity, PEER_ID_FILE } from '../../src/store/identity.js';
import { tempDir } from '../helpers/tmp.js';

const mode = (file: string) => statSync(file).mode & 0o777;

describe('loadIdentity', () => {
  it('generates a peer id once, persists it, and gives every start a new boot id', () => {
    const dir = tempDir();
    const first = loadIdentity(dir, undefined);
    expect(first.peerId).toMatch(/^[A-Za-z0-9-]+-[0-9a-f]{8}$/);
    expect(readFileSync(join(dir, PEER_ID_FILE), 'utf8').trim()).toBe(first.peerId);
    const second = loadIdentity(dir, undefined);
    expect(second.peerId).toBe(first.peerId);
    expect(second.bootId).not.toBe(first.bootId);
  });

  it('replaces an empty peer-id file (a first write cut short) with a new id', () => {
    const dir = tempDir();
    writeFileSync(join(dir, PEER_ID_FILE), '');
    const { peerId } = loadIdentity(dir, undefined);
    expect(peerId.length).toBeGreaterThan(0);
    expect(loadIdentity(dir, undefined).peerId).toBe(peerId);
  });

  it('uses PEER_ID when configured and writes no file', () => {
    const dir = tempDir();
    expect(loadIdentity(dir, 'my-peer').peerId).toBe('my-peer');
    expect(existsSync(join(dir, PEER_ID_FILE))).toBe(false);
  });
});

describe('loadApiToken', () => {
  it('generates a token into DATA_DIR/api-token with mode 0600 and reuses it', () => {
    const dir = tempDir();
    const file = join(dir, API_TOKEN_FILE);
    const first = loadApiToken(dir, undefined);
    expect(first).toMatchObject({ file, generated: true });
    expect(first.token.length).toBeGreaterThanOrEqual(32);
    expect(mode(file)).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(first.token);

    const second = loadApiToken(dir, undefined);
    expect(second).toEqual({ token: first.token, file, generated: false });
  });

  it('tightens a token file someone loosened back to 0600', () => {
    const dir = tempDir();
    const { file, token } = loadApiToken(dir, undefined);
    chmodSync(file as string, 0o644);
    expect(loadApiToken(dir, undefined).token).toBe(token);
    expect(mode(file as string)).toBe(0o600);
  });

  it('uses API_TOKEN when configured and writes no file', () => {
    const dir = tempDir();
    expect(loadApiToken(dir, 'a-configured-token-1234')).toEqual({
      token: 'a-configured-token-1234',
      file: undefined,
      generated: false,
    });
    expect(existsSync(join(dir, API_TOKEN_FILE))).toBe(false);
  });
});
