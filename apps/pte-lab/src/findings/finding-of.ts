import type { Finding } from '../scenarios/scenario.js';
import { type Comparison, comparisonSentence } from './comparison.js';
import { claimVerdict } from './verdict.js';

/**
 * A scenario's finding from its comparisons: the verdict is claimVerdict of the claim's own
 * figures (not the context ones); the text names every published figure with the model's and the
 * verdict, then `detail`, the scenario's account of its runs. A claim with no published number
 * passes `noFigure`, the reason: its verdict is `no-figure` whatever its context figures say.
 */
export function findingOf(comparisons: readonly Comparison[], detail: string, noFigure?: string): Finding {
  const own = comparisons.filter((c) => !c.context);
  const context = comparisons.filter((c) => c.context);
  if (noFigure === undefined && own.length === 0) throw new Error('findingOf: no published figure and no reason');
  if (noFigure !== undefined && own.length > 0) throw new Error('findingOf: a claim without a figure has figures');
  const head =
    noFigure !== undefined
      ? `None to compare with: ${noFigure}`
      : `Compared with ${own.length === 1 ? 'one published figure' : `${own.length} published figures`}. ${own.map(comparisonSentence).join(' ')}`;
  const tail =
    context.length > 0
      ? ` Related published figures (context: not the claim's, they set no verdict): ${context.map(comparisonSentence).join(' ')}`
      : '';
  return {
    verdict: noFigure !== undefined ? 'no-figure' : claimVerdict(own.map((c) => c.verdict)),
    text: `${head} ${detail}${tail}`,
    comparisons,
    ...(noFigure !== undefined ? { noFigure } : {}),
  };
}
