import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeError, ERRORS, type ErrorSpec, QbError } from '../src/errors.js';

interface DocRow {
  status: string;
  closeCode: string;
  description: string;
}

/** The rows of the table in docs/errors.md, by code. */
function documentedCodes(): Map<string, DocRow> {
  const text = readFileSync(fileURLToPath(new URL('../docs/errors.md', import.meta.url)), 'utf8');
  const rows = new Map<string, DocRow>();
  for (const line of text.split('\n')) {
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const code = /^`(QB_ERR_[A-Z0-9_]+)`$/.exec(cells[0] ?? '')?.[1];
    if (!code) continue;
    expect(rows.has(code), `${code} is documented twice`).toBe(false);
    rows.set(code, { status: cells[1] ?? '', closeCode: cells[2] ?? '', description: cells[3] ?? '' });
  }
  return rows;
}

const catalogue = Object.entries(ERRORS) as Array<[string, ErrorSpec]>;

describe('docs/errors.md', () => {
  const documented = documentedCodes();

  it.each(catalogue)('documents %s with its status, close code and description', (code, spec) => {
    const row = documented.get(code);
    expect(row, `${code} is missing from docs/errors.md`).toBeDefined();
    expect(row?.status).toBe(String(spec.status));
    expect(row?.closeCode).toBe(spec.closeCode === undefined ? '-' : String(spec.closeCode));
    expect(row?.description).toBe(spec.description);
  });

  it('documents no code that the catalogue lacks', () => {
    expect([...documented.keys()].filter((code) => !(code in ERRORS))).toEqual([]);
  });
});

describe('the error catalogue', () => {
  it('names every code QB_ERR_* and gives it a 4xx/5xx status', () => {
    for (const [code, spec] of catalogue) {
      expect(code).toMatch(/^QB_ERR_[A-Z0-9_]+$/);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
      // A WebSocket close code an application may send: 1000-1014 (RFC 6455) or 4000-4999 (private).
      if (spec.closeCode !== undefined)
        expect(spec.closeCode).toSatisfy((n: number) => n < 1015 || n >= 4000);
    }
  });

  it('QbError carries the code and the status of its catalogue entry', () => {
    const err = new QbError('QB_ERR_UNKNOWN_SUBSYSTEM', 'no subsystem named "x"');
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('QB_ERR_UNKNOWN_SUBSYSTEM');
    expect(err.status).toBe(404);
  });

  it('describeError keeps a code when there is one and falls back to QB_ERR_INTERNAL', () => {
    expect(describeError(new QbError('QB_ERR_INJECTED_FAULT', 'boom'))).toEqual({
      code: 'QB_ERR_INJECTED_FAULT',
      message: 'boom',
    });
    const coded = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    expect(describeError(coded)).toEqual({ code: 'ECONNREFUSED', message: 'refused' });
    expect(describeError(new Error('plain'))).toEqual({ code: 'QB_ERR_INTERNAL', message: 'plain' });
    expect(describeError('a string')).toEqual({ code: 'QB_ERR_INTERNAL', message: 'a string' });
  });
});
