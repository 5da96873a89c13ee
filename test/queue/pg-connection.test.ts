import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { isConnectionError, PgConnection } from '../../src/queue/pg-connection.js';

describe('isConnectionError', () => {
  it('tells a lost or refused server from a bad statement', () => {
    expect(isConnectionError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('admin shutdown'), { code: '57P01' }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('starting up'), { code: '57P03' }))).toBe(true);
    expect(
      isConnectionError(new AggregateError([Object.assign(new Error(), { code: 'ECONNREFUSED' })])),
    ).toBe(true);
    expect(isConnectionError(Object.assign(new Error('syntax'), { code: '42601' }))).toBe(false);
    expect(isConnectionError(Object.assign(new Error('password'), { code: '28P01' }))).toBe(false);
    expect(isConnectionError(new Error('lease lost'))).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });
});

describe('PgConnection', () => {
  it('goes reconnecting on a connection error, probes with backoff, and logs the outage once each way', async () => {
    let up = false;
    let probes = 0;
    const log = { warn: vi.fn(), info: vi.fn(), debug: vi.fn() };
    const conn = new PgConnection({
      probe: async () => {
        probes++;
        if (!up) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
      clock: { now: () => Date.now() },
      log,
      initialDelayMs: 5,
      maxDelayMs: 20,
    });
    onTestFinished(() => conn.close());
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect((conn.translate(refused) as { code: string }).code).toBe('QB_ERR_STORE_UNAVAILABLE');
    expect(conn.translate(new Error('syntax error'))).toBeInstanceOf(Error);
    expect(conn.view()).toMatchObject({
      kind: 'postgres',
      state: 'reconnecting',
      lastError: 'connect ECONNREFUSED',
    });
    // Further losses while reconnecting add nothing to the log.
    conn.translate(refused);
    await vi.waitFor(() => expect(probes).toBeGreaterThanOrEqual(3));
    expect(conn.connected).toBe(false);
    expect(await conn.whenConnected(1)).toBe(false);
    const back = conn.whenConnected(5_000);
    up = true;
    expect(await back).toBe(true);
    expect(conn.view().state).toBe('connected');
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.info).toHaveBeenCalledTimes(1);
    expect(log.debug.mock.calls.length).toBeGreaterThanOrEqual(2);
    // Flapping: lost and back twice more within the minute, and the log has no more warnings.
    for (let i = 0; i < 2; i++) {
      up = false;
      conn.translate(refused);
      expect(conn.connected).toBe(false);
      up = true;
      expect(await conn.whenConnected(5_000)).toBe(true);
    }
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.info).toHaveBeenCalledTimes(1);
  });
});
