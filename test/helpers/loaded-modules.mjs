// A preload for tests (`node --import`): records the URL of every module the process loads, ES
// modules and require()d CommonJS alike (Node's synchronous module hooks see both), and writes the
// list to LOADED_MODULES_OUT, one a line, when the process exits.
import { writeFileSync } from 'node:fs';
import module from 'node:module';

const out = process.env.LOADED_MODULES_OUT;
const seen = new Set();
module.registerHooks({
  load(url, context, next) {
    seen.add(url);
    return next(url, context);
  },
});
process.on('exit', () => {
  if (out) writeFileSync(out, [...seen].join('\n'));
});
