/**
 * The matching rules, a pure function: which jobs are worth a proposal. Words match whole words,
 * case-insensitively, in the title, description and tags.
 */
export interface MatchRules {
  /** A job matches when its text holds one of them; empty: every job. */
  keywords: readonly string[];
  /** A job holding one of them is skipped. */
  excludeWords: readonly string[];
  /** A job whose stated budget is lower is skipped; a job without a budget passes. */
  minBudget: number | undefined;
}

export interface MatchInput {
  title: string;
  description?: string | null;
  tags?: readonly string[];
  budget?: number | null;
}

export type MatchResult = { matched: true; keyword: string | null } | { matched: false; reason: string };

export function matchJob(job: MatchInput, rules: MatchRules): MatchResult {
  const text = [job.title, job.description ?? '', ...(job.tags ?? [])].join(' \n ');
  const excluded = rules.excludeWords.find((w) => holdsWord(text, w));
  if (excluded) return { matched: false, reason: `contains the excluded word "${excluded}"` };
  if (
    rules.minBudget !== undefined &&
    job.budget !== undefined &&
    job.budget !== null &&
    job.budget < rules.minBudget
  ) {
    return { matched: false, reason: `budget ${job.budget} is below the minimum ${rules.minBudget}` };
  }
  if (rules.keywords.length === 0) return { matched: true, keyword: null };
  const keyword = rules.keywords.find((w) => holdsWord(text, w));
  if (!keyword) return { matched: false, reason: `no keyword matched (${rules.keywords.join(', ')})` };
  return { matched: true, keyword };
}

function holdsWord(text: string, word: string): boolean {
  const escaped = word.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (!escaped) return false;
  return new RegExp(`(^|[^\\p{L}\\p{N}])${escaped}($|[^\\p{L}\\p{N}])`, 'iu').test(text);
}
