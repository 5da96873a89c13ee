import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createLogger, ERROR_LOG_FILE } from '../src/logger.js';
import { tempDir } from './helpers/tmp.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { stream, lines };
}

describe('logger', () => {
  it('writes JSON lines to its stream and errors also to LOG_DIR/bot-errors.log', async () => {
    const logDir = tempDir();
    const out = capture();
    const log = createLogger({ level: 'info', logDir, stream: out.stream, pretty: false });
    log.child({ component: 'test' }).info('all is well');
    log.error({ err: new Error('boom') }, 'it broke');
    log.flush();
    await vi.waitFor(() => expect(out.lines).toHaveLength(2));
    const info = JSON.parse(out.lines[0] as string);
    expect(info).toMatchObject({ level: 30, component: 'test', msg: 'all is well' });
    const errors = readFileSync(join(logDir, ERROR_LOG_FILE), 'utf8').trim().split('\n');
    expect(errors).toHaveLength(1);
    expect(JSON.parse(errors[0] as string)).toMatchObject({
      level: 50,
      msg: 'it broke',
      err: { type: 'Error', message: 'boom', stack: expect.stringContaining('boom') },
    });
  });

  it('redacts secrets wherever they are bound', async () => {
    const out = capture();
    const log = createLogger({ level: 'info', stream: out.stream, pretty: false });
    const secret = 'super-secret-value-0123456789';
    log.info({ apiToken: secret }, 'a');
    log.info({ config: { mesh: { secrets: [secret] }, ai: { apiKey: secret }, apiToken: secret } }, 'b');
    log.info({ req: { headers: { authorization: `Bearer ${secret}` } } }, 'c');
    log.info({ peer: { secret, token: secret } }, 'd');
    await vi.waitFor(() => expect(out.lines).toHaveLength(4));
    for (const line of out.lines) {
      expect(line).not.toContain(secret);
      expect(line).toContain('[redacted]');
    }
  });
});
