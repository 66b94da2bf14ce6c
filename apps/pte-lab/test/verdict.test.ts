import { change, claimVerdict, FLAT, ratioVerdict, verdictFor } from '../src/findings/verdict.js';

describe('verdictFor: the rule of issue #14', () => {
  it('agrees at exactly 2× either way, partly just beyond', () => {
    expect(verdictFor(4, 2)).toBe('agrees');
    expect(verdictFor(1, 2)).toBe('agrees');
    expect(verdictFor(4.02, 2)).toBe('partly');
    expect(verdictFor(0.995, 2)).toBe('partly');
    expect(verdictFor(-4, -2)).toBe('agrees');
    expect(verdictFor(-4.02, -2)).toBe('partly');
  });

  it('contradicts on opposite signs, and when one side is no change', () => {
    expect(verdictFor(-1, 1)).toBe('contradicts');
    expect(verdictFor(1e-9, -1)).toBe('contradicts');
    expect(verdictFor(0, 0.75)).toBe('contradicts');
    expect(verdictFor(0.3, 0)).toBe('contradicts');
    expect(verdictFor(0, 0)).toBe('agrees');
  });

  it('ratios compare as changes: ×3 and ×5 agree (+2, +4), ×5.02 is 2.01× off, ÷3 against ×3 contradicts', () => {
    expect(change(3)).toBe(2);
    expect(change(1 / 3)).toBeCloseTo(-2, 12);
    expect(ratioVerdict(5, 3)).toBe('agrees');
    expect(ratioVerdict(5.02, 3)).toBe('partly');
    expect(ratioVerdict(1 / 5, 1 / 3)).toBe('agrees');
    expect(ratioVerdict(1 / 3, 3)).toBe('contradicts');
    // A 1.06× gain is not within 2× of a 1.8× one, nor a ÷2 cut of a ÷24 one.
    expect(ratioVerdict(1.8, 1.06)).toBe('partly');
    expect(ratioVerdict(1 / 2, 1 / 24)).toBe('partly');
  });

  it('changes under FLAT are none: flat meets flat, a 2 % change is a direction', () => {
    expect(FLAT).toBe(0.02);
    expect(change(1.0199)).toBe(0);
    expect(change(0.99)).toBe(0);
    expect(change(1.02)).toBeCloseTo(0.02, 12);
    expect(ratioVerdict(1.01, 0.998)).toBe('agrees');
    expect(ratioVerdict(1.145, 0.998)).toBe('contradicts');
    expect(ratioVerdict(1.01, 2)).toBe('contradicts');
    expect(change(0)).toBe(-Infinity);
    expect(ratioVerdict(0, 0.5)).toBe('partly');
    expect(() => change(-1)).toThrow(RangeError);
  });

  it("a claim's verdict: all agree, all contradict, or partly; none is no-figure", () => {
    expect(claimVerdict(['agrees', 'agrees'])).toBe('agrees');
    expect(claimVerdict(['contradicts'])).toBe('contradicts');
    expect(claimVerdict(['agrees', 'contradicts'])).toBe('partly');
    expect(claimVerdict(['partly', 'partly'])).toBe('partly');
    expect(claimVerdict([])).toBe('no-figure');
  });
});
