/**
 * "Did you mean PORT?" for misspelt variables. A variable of `.env` that we do not know is always
 * worth a word (the file exists for us). The process environment is full of variables that are not
 * ours (HOME, PATH...), so there only a near miss of one edit, or a name in one of our prefixes, is.
 */

const OUR_PREFIXES = [
  'MESH_',
  'AI_',
  'FREELANCE_',
  'TRADING_',
  'EXCHANGE_',
  'SUBSYSTEM_',
  'WORKER_',
  'MDNS_',
];

/** Names the supervisor sets for its worker, and other variables read outside the table. */
const ALSO_KNOWN = new Set(['QB_ROLE', 'QB_WORKER_RESPAWNS', 'QB_TOKEN_HINT', 'NODE_ENV', 'NODE_OPTIONS']);

export function unknownVariableWarnings(
  known: readonly string[],
  fromFile: readonly string[],
  fromEnvironment: readonly string[],
  envFilePath: string | undefined,
): string[] {
  const knownSet = new Set(known);
  const warnings: string[] = [];
  for (const name of fromFile) {
    if (knownSet.has(name) || ALSO_KNOWN.has(name)) continue;
    const near = closest(name, known, 2);
    warnings.push(
      `${envFilePath ?? '.env'}: unknown variable ${name}${near ? `; did you mean ${near}?` : ' (ignored)'}`,
    );
  }
  const inFile = new Set(fromFile);
  for (const name of fromEnvironment) {
    if (knownSet.has(name) || ALSO_KNOWN.has(name) || inFile.has(name)) continue;
    const ours = OUR_PREFIXES.some((p) => name.startsWith(p));
    const near = closest(name, known, ours ? 3 : 1);
    if (near) warnings.push(`environment: unknown variable ${name}; did you mean ${near}?`);
    else if (ours) warnings.push(`environment: unknown variable ${name} (ignored)`);
  }
  return warnings;
}

/** The known name within `maxDistance` edits of `name` (case-insensitive), the nearest first. */
export function closest(name: string, known: readonly string[], maxDistance: number): string | undefined {
  let best: string | undefined;
  let bestDistance = maxDistance + 1;
  const upper = name.toUpperCase();
  for (const candidate of known) {
    // Short names are too easily near each other (HOME and HOST): allow fewer edits for them.
    const allowed = Math.min(maxDistance, Math.max(1, Math.floor(candidate.length / 3)));
    const d = editDistance(upper, candidate);
    if (d <= allowed && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, with an adjacent swap counting as one edit (PROT for PORT). */
export function editDistance(a: string, b: string): number {
  const cols = b.length + 1;
  // One flat row-major table: d[i * cols + j] is the distance of a's first i and b's first j letters.
  const d = new Uint16Array((a.length + 1) * cols);
  const at = (i: number, j: number) => d[i * cols + j] ?? 0;
  for (let i = 0; i <= a.length; i++) d[i * cols] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
}
