/**
 * The chaos run's closing report: one PASS or FAIL line per invariant (the CI test reads them), the
 * figures (faults injected by kind, time to a full mesh after the heal, RSS per peer), and the seed
 * with the command that replays it. `--report FILE` also writes it all as JSON.
 */
import { writeFileSync } from 'node:fs';

export function replayCommand({ peers, minutes, seed, store, loopback }) {
  return `npm run chaos -- --peers ${peers} --minutes ${minutes} --seed ${seed} --store ${store}${loopback ? ' --loopback' : ''}`;
}

export function printReport({ args, results, figures, injector, mode, file }) {
  const out = [];
  out.push('', '== chaos run: invariants ==');
  for (const r of results) {
    out.push(`${r.pass ? 'PASS' : 'FAIL'} ${r.name}: ${r.detail}`);
    for (const n of r.notes ?? []) out.push(`     ${n}`);
  }
  const kinds = Object.entries(injector.counts)
    .sort()
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  out.push('', '== figures ==');
  out.push(`network: ${mode}`);
  const total = Object.values(injector.counts).reduce((s, n) => s + n, 0);
  out.push(`faults injected: ${total} (${kinds}); skipped ${injector.skipped} (target busy)`);
  for (const [k, v] of Object.entries(figures)) out.push(`${k}: ${v}`);
  const failed = results.filter((r) => !r.pass);
  out.push('');
  out.push(
    failed.length === 0
      ? `chaos: ALL ${results.length} INVARIANTS PASS`
      : `chaos: ${failed.length} of ${results.length} invariant(s) FAIL`,
  );
  out.push(`seed ${args.seed}; replay: ${replayCommand(args)}`);
  console.log(out.join('\n'));
  if (file) {
    writeFileSync(
      file,
      `${JSON.stringify({ args, mode, results, figures, faults: injector.counts, events: injector.events }, null, 2)}\n`,
    );
  }
  return failed.length === 0;
}
