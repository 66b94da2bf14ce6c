import { compare } from '../src/findings/comparison.js';
import { findingOf } from '../src/findings/finding-of.js';
import { type PublishedFigure } from '../src/findings/published.js';

const figure = (value: PublishedFigure['value']): PublishedFigure => ({
  who: 'Someone 2000',
  label: 'a test',
  where: 'nowhere §0',
  what: 'a test figure',
  shown: 'x → y',
  value,
});

describe('findingOf', () => {
  it("the verdict comes from the claim's own figures; context ones never set it", () => {
    const agree = compare(figure({ kind: 'ratio', ratio: 2 }), 2.5, '×2.5', 'x');
    const against = compare(figure({ kind: 'ratio', ratio: 2 }), 0.5, '×0.5', 'x', { context: true });
    const f = findingOf([agree, against], 'Detail.');
    expect(f.verdict).toBe('agrees');
    expect(f.text).toMatch(
      /^Compared with one published figure\. Someone 2000 .* Detail\. Related published figures \(context/,
    );
    const none = findingOf([against], 'Detail.', 'the claim gives no number.');
    expect(none.verdict).toBe('no-figure');
    expect(none.noFigure).toBe('the claim gives no number.');
    expect(none.text).toMatch(/^None to compare with: the claim gives no number\. Detail\./);
    expect(() => findingOf([], 'Detail.')).toThrow(/no published figure/);
    expect(() => findingOf([agree], 'Detail.', 'none')).toThrow();
  });
});
