import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { testConfig } from '../src/config.js';
import { createPeer } from '../src/peer.js';
import { DB_FILE } from '../src/store/db.js';
import { API_TOKEN_FILE, PEER_ID_FILE } from '../src/store/identity.js';
import { lifecycleContract } from './helpers/lifecycle-contract.js';
import { silentLogger } from './helpers/logger.js';
import { tempDir } from './helpers/tmp.js';

/** Listening TCP servers of this process: what a started peer holds open. */
const listeningServers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;

lifecycleContract('createPeer', () => {
  const baseline = listeningServers();
  const peer = createPeer(testConfig(tempDir()), silentLogger());
  return {
    start: () => peer.start(),
    stop: () => peer.stop(),
    running: () => listeningServers() - baseline,
    expectedRunning: 1,
  };
});

describe('createPeer', () => {
  it('binds port 0 to a free port, keeps its identity in DATA_DIR and frees the port on stop', async () => {
    const dataDir = tempDir();
    const peer = createPeer(testConfig(dataDir), silentLogger());
    onTestFinished(() => peer.stop());
    expect(peer.port()).toBeUndefined();
    await peer.start();
    expect(peer.port()).toBeGreaterThan(0);
    expect(peer.identity()?.peerId).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(existsSync(join(dataDir, PEER_ID_FILE))).toBe(true);
    expect(existsSync(join(dataDir, DB_FILE))).toBe(true);
    expect(statSync(join(dataDir, API_TOKEN_FILE)).mode & 0o777).toBe(0o600);
    await peer.stop();
    expect(peer.port()).toBeUndefined();
  });

  it('stop during start waits for the start and leaves nothing listening', async () => {
    const baseline = listeningServers();
    const peer = createPeer(testConfig(tempDir()), silentLogger());
    onTestFinished(() => peer.stop());
    const starting = peer.start();
    await peer.stop();
    await starting;
    await vi.waitFor(() => expect(listeningServers()).toBe(baseline));
    await peer.start();
    expect(listeningServers()).toBe(baseline);
    expect(peer.port()).toBeUndefined();
  });

  it('refuses to start with QB_ERR_DATA_DIR when DATA_DIR cannot be created', async () => {
    const dir = tempDir();
    // A path below a regular file cannot be a directory, even for root.
    writeFileSync(join(dir, 'a-file'), 'not a directory\n');
    const peer = createPeer(testConfig(join(dir, 'a-file', 'data')), silentLogger());
    onTestFinished(() => peer.stop());
    await expect(peer.start()).rejects.toMatchObject({ code: 'QB_ERR_DATA_DIR' });
  });
});
