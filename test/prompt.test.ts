import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { HealthMonitor } from '../src/actors/health.js';
import { subsystemRegistrations } from '../src/actors/registry.js';
import { testConfig } from '../src/config.js';
import type { MeshNode } from '../src/mesh/node.js';
import { autonomousPrompt } from '../src/prompt.js';
import { silentLogger } from './helpers/logger.js';

function config(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'qb-prompt-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return testConfig(dir, env);
}

/** The registry's registrations; `withMesh` stands a placeholder in for the node it only hands on. */
function registry(c: ReturnType<typeof config>, withMesh = false) {
  const healthMonitor = new HealthMonitor({ countConnections: () => ({ http: 0, mesh: 0 }) });
  onTestFinished(() => healthMonitor.close());
  const meshNode = withMesh ? ({} as MeshNode) : undefined;
  return subsystemRegistrations({ config: c, logger: silentLogger(), healthMonitor, meshNode });
}

describe('autonomousPrompt', () => {
  it('promises only the work of registered subsystems, and names the switches that do nothing yet', () => {
    // The defaults switch trading, freelance and AI on, but this build registers none of them.
    const c = config();
    const prompt = autonomousPrompt(c, registry(c));
    expect(prompt).not.toMatch(/trading paper|freelance with approval|AI tasks on/);
    expect(prompt).toContain('Work: health checks every 1000 ms.');
    expect(prompt).toContain('Off: mesh (MESH_SECRET is not set: this peer runs alone).');
    expect(prompt).toContain(
      'Not in this build yet (BOT_ENABLED, FREELANCE_ENABLED, AI_ENABLED change nothing): trading, freelance, AI tasks.',
    );
  });

  it('takes a subsystem built later from its registration, with no change here', () => {
    const c = config({ AUTO_START: 'false' });
    const prompt = autonomousPrompt(c, [
      ...registry(c),
      { name: 'trading', enabled: true, describe: 'trading paper on sim (BTC/USDT)' },
      { name: 'ai', enabled: false, describe: 'AI tasks (AI_ENABLED=false)' },
    ]);
    expect(prompt).toContain('Work: health checks every 1000 ms; trading paper on sim (BTC/USDT).');
    expect(prompt).toContain(
      'Off: mesh (MESH_SECRET is not set: this peer runs alone); AI tasks (AI_ENABLED=false).',
    );
    expect(prompt).toContain('Not in this build yet (FREELANCE_ENABLED change nothing): freelance.');
    expect(prompt).toContain('AUTO_START=false');
  });

  it('describes the mesh when it runs', () => {
    const c = config({
      MESH_SECRET: 'a-secret-of-enough-length',
      MESH_CLUSTER: 'blue',
      AUTO_RECONNECT: 'false',
    });
    const prompt = autonomousPrompt(c, registry(c, true));
    expect(prompt).toContain(
      'Work: health checks every 1000 ms; mesh cluster "blue" via static, auto-reconnect off.',
    );
    expect(prompt).not.toContain('Off:');
  });
});
