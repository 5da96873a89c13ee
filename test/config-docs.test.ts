import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENV_VARS } from '../src/config.js';
import { renderEnvExample, withEnvTable } from '../src/config-docs.js';

const read = (name: string) => readFileSync(new URL(`../${name}`, import.meta.url), 'utf8');

describe('generated environment docs (npm run gen:docs)', () => {
  it('.env.example is what src/config.ts says', () => {
    expect(read('.env.example')).toBe(renderEnvExample(ENV_VARS));
  });

  it("the README's table is what src/config.ts says", () => {
    const readme = read('README.md');
    expect(readme).toBe(withEnvTable(readme, ENV_VARS));
  });
});
