import type { PublishedFigure } from './published.js';
import { change, type FigureVerdict, magnitudeFactor, verdictFor } from './verdict.js';

/** A figure of the model set against the published figure it corresponds to. */
export interface Comparison {
  readonly published: PublishedFigure;
  /** The model's figure as shown, short: '×0.375'. */
  readonly model: string;
  /** What the model's figure is of: the runs it comes from and what they count. */
  readonly about: string;
  readonly verdict: FigureVerdict;
  /** How many times the larger magnitude is the smaller (null: a direction only, or opposite directions). */
  readonly factor: number | null;
  /** The directions compared: the sign of each change (ratios) or value. */
  readonly modelSign: number;
  readonly publishedSign: number;
  /** Related but not the claim's figure: shown, never part of the scenario's verdict. */
  readonly context: boolean;
}

/**
 * Compare the model's `figure` (a ratio after / before when the published figure is a ratio or a
 * direction, a value in its unit when it is a value) with `published`, by the rule of verdict.ts.
 * A published direction without a number can be matched in direction only: `partly` at best.
 */
export function compare(
  published: PublishedFigure,
  figure: number,
  model: string,
  about: string,
  opts: { readonly context?: boolean } = {},
): Comparison {
  const v = published.value;
  const m = v.kind === 'value' ? figure : change(figure);
  let verdict: FigureVerdict;
  let factor: number | null = null;
  let p: number;
  if (v.kind === 'direction') {
    p = v.sign;
    verdict = Math.sign(m) === v.sign ? 'partly' : 'contradicts';
  } else {
    p = v.kind === 'ratio' ? change(v.ratio) : v.value;
    verdict = verdictFor(m, p);
    if (verdict !== 'contradicts' && p !== 0) factor = magnitudeFactor(m, p);
  }
  return {
    published,
    model,
    about,
    verdict,
    factor,
    modelSign: Math.sign(m),
    publishedSign: Math.sign(p),
    context: opts.context === true,
  };
}

/** One sentence: who, where, what and the published figure; the model's; the verdict and why. */
export function comparisonSentence(c: Comparison): string {
  const p = c.published;
  const tags = [p.where, p.derived === true ? 'derived' : '', p.unverified === true ? 'UNVERIFIED there' : '']
    .filter((t) => t !== '')
    .join('; ');
  return `${p.who} (${tags}): ${p.what}, ${p.shown}; the model: ${c.model} (${c.about}). ${verdictReason(c)}.`;
}

/** The verdict of one figure and its reason, e.g. "Partly: same direction, the magnitude 5.2× off". */
export function verdictReason(c: Comparison): string {
  switch (c.verdict) {
    case 'agrees':
      return c.factor === null
        ? 'Agrees: both flat'
        : `Agrees: same direction, magnitudes ${shortFactor(c.factor)} apart (within 2×)`;
    case 'partly':
      return c.factor === null
        ? 'Partly: same direction; no magnitude was published'
        : `Partly: same direction, magnitudes ${shortFactor(c.factor)} apart (more than 2×)`;
    case 'contradicts':
      return `Contradicts: the model's figure ${direction(c, c.modelSign)} where the published one ${direction(c, c.publishedSign)}`;
  }
}

/** A direction in words: a ratio rises, falls or is flat (within FLAT); a value is above, at or below 0. */
function direction(c: Comparison, sign: number): string {
  if (c.published.value.kind === 'value') return sign > 0 ? 'is positive' : sign < 0 ? 'is negative' : 'is 0';
  return sign > 0 ? 'rises' : sign < 0 ? 'falls' : 'is flat';
}

/** A factor between magnitudes: "1.3×", "13×", "∞×" (one of them 0 against a finite other cannot be: that is a direction). */
function shortFactor(f: number): string {
  if (!Number.isFinite(f)) return '∞×';
  return f < 10 ? `${f.toFixed(1)}×` : `${Math.round(f)}×`;
}
