#!/usr/bin/env node
// Writes .env.example from src/config.ts's ENV_VARS (through the build), so the documented
// variables cannot drift from the ones the program reads. `npm run gen:env-example` after a change;
// test/config.test.ts fails while the file is stale.
import { writeFileSync } from 'node:fs';
import { ENV_VARS } from '../dist/config.js';

export function renderEnvExample(vars) {
  const lines = [
    '# quantum-bot environment. Copy to .env (read at start; variables of the real environment win).',
    '# Generated from src/config.ts by `npm run gen:env-example`: edit there, not here.',
    '# Durations are milliseconds. Booleans: true/false/1/0.',
    '',
  ];
  for (const v of vars) {
    lines.push(`# ${v.description}${v.secret ? ' (secret: never logged)' : ''}`);
    lines.push(v.default === undefined ? `# ${v.name}=` : `${v.name}=${v.default}`);
    lines.push('');
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../.env.example', import.meta.url), renderEnvExample(ENV_VARS));
  console.log(`.env.example: ${ENV_VARS.length} variables`);
}
