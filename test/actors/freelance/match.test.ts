import { describe, expect, it } from 'vitest';
import { matchJob } from '../../../src/actors/freelance/match.js';

const rules = { keywords: ['typescript', 'node.js'], excludeWords: ['wordpress'], minBudget: 100 };

describe('freelance matching rules', () => {
  it('matches a keyword as a whole word, case-insensitively, in title, description or tags', () => {
    expect(matchJob({ title: 'TypeScript API', budget: 500 }, rules)).toEqual({
      matched: true,
      keyword: 'typescript',
    });
    expect(matchJob({ title: 'API', description: 'we use Node.js', budget: 500 }, rules)).toMatchObject({
      matched: true,
    });
    expect(matchJob({ title: 'API', tags: ['typescript'] }, rules)).toMatchObject({ matched: true });
    expect(matchJob({ title: 'typescriptish tool' }, rules)).toMatchObject({ matched: false });
  });

  it('skips with the reason: excluded word, low budget, no keyword', () => {
    expect(matchJob({ title: 'TypeScript WordPress plugin', budget: 500 }, rules)).toEqual({
      matched: false,
      reason: 'contains the excluded word "wordpress"',
    });
    expect(matchJob({ title: 'TypeScript fix', budget: 50 }, rules)).toEqual({
      matched: false,
      reason: 'budget 50 is below the minimum 100',
    });
    expect(matchJob({ title: 'Logo design', budget: 500 }, rules)).toEqual({
      matched: false,
      reason: 'no keyword matched (typescript, node.js)',
    });
  });

  it('without keywords every job not excluded matches; a job without a budget passes the minimum', () => {
    expect(matchJob({ title: 'anything' }, { keywords: [], excludeWords: [], minBudget: 100 })).toEqual({
      matched: true,
      keyword: null,
    });
  });
});
