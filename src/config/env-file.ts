/**
 * The `.env` file: read with Node's own parser (the same rules as `node --env-file`), plus the
 * checks that parser does not make: a line that is not NAME=value is ignored by it without a word
 * (`PORT 9100` would leave the port at 9000), so it is reported here with its line number.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';

export interface EnvFile {
  /** Absolute path of the file that was read, or undefined when there is none. */
  path: string | undefined;
  values: Record<string, string>;
  /** One message per line that is neither NAME=value, a comment nor blank. */
  malformed: string[];
}

const ASSIGNMENT = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=(.*)$/;

export function readEnvFile(cwd: string): EnvFile {
  const path = resolve(cwd, '.env');
  if (!existsSync(path)) return { path: undefined, values: {}, malformed: [] };
  const content = readFileSync(path, 'utf8');
  return {
    path,
    values: parseEnv(content) as Record<string, string>,
    malformed: malformedLines(content, path),
  };
}

/** Lines that no NAME=value assignment covers. A quoted value may span lines: those are skipped. */
export function malformedLines(content: string, path: string): string[] {
  const problems: string[] = [];
  const lines = content.split(/\r?\n/);
  let openQuote: string | undefined;
  lines.forEach((line, i) => {
    if (openQuote) {
      if (line.includes(openQuote)) openQuote = undefined;
      return;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const m = ASSIGNMENT.exec(line);
    if (!m) {
      problems.push(`${path}:${i + 1} is not NAME=value and is ignored: "${truncate(trimmed)}"`);
      return;
    }
    const value = (m[1] ?? '').trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'" || quote === '`') && !value.slice(1).includes(quote)) {
      openQuote = quote;
    }
  });
  return problems;
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
