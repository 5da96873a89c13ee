/**
 * The folders a peer writes (DATA_DIR, LOG_DIR). One that cannot be created or written is a
 * configuration problem, the same for both: QB_ERR_DATA_DIR, which the program turns into one line
 * and exit 78 instead of a stack trace that a process manager would retry in a loop.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { QbError } from '../errors.js';

/** Creates `dir` if needed and checks it is writable; `name` is the variable that set it. */
export function ensureWritableDir(dir: string, name: 'DATA_DIR' | 'LOG_DIR'): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new QbError(
      'QB_ERR_DATA_DIR',
      `${name} ${dir} cannot be created or written: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
