#!/usr/bin/env node
// Regenerates .env.example and the README's environment table from src/config.ts (via the build).
import { readFileSync, writeFileSync } from 'node:fs';
import { ENV_VARS } from '../dist/config.js';
import { renderEnvExample, withEnvTable } from '../dist/config-docs.js';

const root = new URL('../', import.meta.url);
writeFileSync(new URL('.env.example', root), renderEnvExample(ENV_VARS));
const readme = new URL('README.md', root);
writeFileSync(readme, withEnvTable(readFileSync(readme, 'utf8'), ENV_VARS));
console.log(`.env.example and README.md: ${ENV_VARS.length} variables`);
