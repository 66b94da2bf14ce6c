/**
 * The verdict vocabulary of docs/findings.md (issue #14): how a figure of the model compares with
 * the published figure it is set against, and what a scenario's claim gets from its figures.
 *
 * - `agrees`: the direction matches and the magnitude is within 2× of the published one;
 * - `partly`: the direction matches and the magnitude is off by more than 2× (or none was
 *   published), or only some of a claim's figures agree;
 * - `contradicts`: the direction differs (a rise against a fall, or a change against none);
 * - `no-figure`: the claim carries no published number to compare with (a validation scenario, a
 *   suggestion), so there is no verdict.
 */
export type Verdict = 'agrees' | 'partly' | 'contradicts' | 'no-figure';

/** The verdict of one figure: a figure always has a published number or direction. */
export type FigureVerdict = Exclude<Verdict, 'no-figure'>;

/** How far the model's magnitude may be from the published one, either way, and still agree. */
export const MAGNITUDE_FACTOR = 2;

/**
 * Changes smaller than 2 % are no change. Shutemov's kernel-build times for his seven fault-around
 * windows all lie within 2 % of each other (150.9 … 153.9 s, linux-mm.md §1.5), so a published
 * change that small is run-to-run spread, not a direction; the model's own figures get the same
 * band, so that a flat published figure can be met.
 */
export const FLAT = 0.02;

/**
 * The signed size of a change given as a ratio after / before: r − 1 for a rise, −(1/r − 1) for a
 * fall, so ×3 is +2 and ÷3 is −2 (a speed-up and a slow-down of the same factor weigh the same,
 * and a 24× cut is not "within 2×" of a 2× one as r − 1 would have it). 0 inside FLAT.
 */
export function change(ratio: number): number {
  if (ratio === 0) return -Infinity;
  if (!(ratio > 0)) throw new RangeError(`change: ${ratio} is not a ratio`);
  return flat(ratio >= 1 ? ratio - 1 : -(1 / ratio - 1));
}

/** A relative figure (a change, a share of a gain) inside FLAT is none. */
export function flat(x: number): number {
  return Math.abs(x) < FLAT ? 0 : x;
}

/** max(|a|, |b|) / min(|a|, |b|): how many times the larger magnitude is the smaller one. */
export function magnitudeFactor(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  return Math.max(x, y) / Math.min(x, y);
}

/**
 * The rule for two signed effects of the same kind (two changes from `change`, or two values in
 * the same unit): `contradicts` when their signs differ (0, no change, is a direction of its own),
 * `agrees` when the magnitudes are within MAGNITUDE_FACTOR of each other (or both are 0), `partly`
 * otherwise.
 */
export function verdictFor(model: number, published: number): FigureVerdict {
  if (Number.isNaN(model) || Number.isNaN(published)) throw new RangeError('verdictFor: NaN');
  if (Math.sign(model) !== Math.sign(published)) return 'contradicts';
  if (published === 0) return 'agrees';
  return magnitudeFactor(model, published) <= MAGNITUDE_FACTOR ? 'agrees' : 'partly';
}

/** verdictFor of two ratios after / before, compared as changes. */
export function ratioVerdict(modelRatio: number, publishedRatio: number): FigureVerdict {
  return verdictFor(change(modelRatio), change(publishedRatio));
}

/**
 * A claim's verdict from the verdicts of its figures: `agrees` when all agree, `contradicts` when
 * all contradict, `partly` for any mix (only some of a multi-part claim holds), and `no-figure`
 * when there is none.
 */
export function claimVerdict(figures: readonly FigureVerdict[]): Verdict {
  if (figures.length === 0) return 'no-figure';
  if (figures.every((v) => v === 'agrees')) return 'agrees';
  if (figures.every((v) => v === 'contradicts')) return 'contradicts';
  return 'partly';
}

/** The words a verdict is shown with: the findings table, the section headings and the HTML badge. */
export function verdictLabel(v: Verdict): string {
  switch (v) {
    case 'agrees':
      return 'agrees';
    case 'partly':
      return 'partly agrees';
    case 'contradicts':
      return 'contradicts';
    case 'no-figure':
      return 'no published figure';
  }
}

/** The rule in words, for the head of docs/findings.md and the report (markdown bold: the labels). */
export const VERDICT_RULE =
  `Each verdict is computed from the runs against the published figures named in its section: **${verdictLabel('agrees')}** when the model moves the same way as a published figure and its magnitude is within ${MAGNITUDE_FACTOR}× of it ` +
  `(a change is compared as r − 1 for a rise by r, −(1/r − 1) for a fall; changes under ${FLAT * 100} % count as none); ` +
  `**${verdictLabel('partly')}** when the direction matches but the magnitude is more than ${MAGNITUDE_FACTOR}× off, or none was published, or only some of the claim’s figures agree; ` +
  `**${verdictLabel('contradicts')}** when the direction differs; **${verdictLabel('no-figure')}** when the claim carries no number to compare with (related figures are then shown as context). ` +
  'Figures marked derived are arithmetic on published numbers; UNVERIFIED is the references’ mark.';
