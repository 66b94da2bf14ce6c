import { compare, comparisonSentence } from '../src/findings/comparison.js';
import { type PublishedFigure } from '../src/findings/published.js';

const figure = (value: PublishedFigure['value']): PublishedFigure => ({
  who: 'Someone 2000',
  label: 'a test',
  where: 'nowhere §0',
  what: 'a test figure',
  shown: 'x → y',
  value,
});

describe('compare', () => {
  it('a published direction without a number is partly at best', () => {
    expect(compare(figure({ kind: 'direction', sign: 1 }), 1.5, '+50 %', 'x').verdict).toBe('partly');
    expect(compare(figure({ kind: 'direction', sign: 1 }), 0.9, '−10 %', 'x').verdict).toBe('contradicts');
    expect(compare(figure({ kind: 'direction', sign: 1 }), 1.01, '+1 %', 'x').verdict).toBe('contradicts');
  });

  it('values compare in their unit; the sentence names who, where, the figure, the model and why', () => {
    const c = compare(figure({ kind: 'value', value: 0.45, unit: 'µs' }), 0.9, '0.9 µs', 'cycles at 3 GHz');
    expect(c.verdict).toBe('agrees');
    expect(comparisonSentence(c)).toBe(
      'Someone 2000 (nowhere §0): a test figure, x → y; the model: 0.9 µs (cycles at 3 GHz). Agrees: same direction, magnitudes 2.0× apart (within 2×).',
    );
    const far = compare(figure({ kind: 'ratio', ratio: 1.6 }), 3.63, '×3.63', 'cycles');
    expect(comparisonSentence(far)).toMatch(/Partly: same direction, magnitudes 4\.4× apart \(more than 2×\)\.$/);
    const flat = compare({ ...figure({ kind: 'ratio', ratio: 0.998 }), unverified: true }, 1.145, '+14.5 %', 'cycles');
    expect(comparisonSentence(flat)).toMatch(
      /\(nowhere §0; UNVERIFIED there\).*Contradicts: the model's figure rises where the published one is flat\.$/,
    );
  });
});
