/**
 * The least-squares fit of `pte-lab calibrate` (calibrate/fit.ts): it recovers costs that explain
 * the rows exactly, keeps costs positive, and moves costs no row tells apart by one factor.
 */
import fc from 'fast-check';
import { fitCosts, gaussSolve, roundCycles, type FitRow } from '../src/calibrate/fit.js';
import { median } from '../src/calibrate/stats.js';

const DEFAULTS = { 'a.x': 1000, 'a.y': 100, 'a.z': 50, 'a.w': 10 };

function rowsFor(truth: Record<string, number>, counts: Record<string, number>[]): FitRow[] {
  return counts.map((c, i) => ({
    id: `r${i}`,
    realCycles: Object.entries(c).reduce((s, [k, n]) => s + n * truth[k]!, 0),
    fixedCycles: 0,
    counts: c,
  }));
}

describe('fitCosts', () => {
  test('recovers the costs that generated well-separated rows (within 2%: the prior pulls a little)', () => {
    const truth = { 'a.x': 5000, 'a.y': 30, 'a.z': 200 };
    const rows = rowsFor(truth, [
      { 'a.x': 100, 'a.y': 1600 },
      { 'a.x': 100, 'a.y': 100 },
      { 'a.y': 4096 },
      { 'a.z': 4096 },
      { 'a.x': 10, 'a.z': 10 },
    ]);
    const { costs } = fitCosts(rows, DEFAULTS);
    for (const [k, v] of Object.entries(truth)) expect(Math.abs(costs[k]! / v - 1)).toBeLessThan(0.02);
    expect(costs['a.w']).toBeUndefined(); // no row counts it: not fitted
  });

  test('costs only seen together both move toward what the rows need, neither to zero, and explain the rows', () => {
    const rows = rowsFor({ 'a.x': 3000, 'a.y': 100 }, [
      { 'a.x': 10, 'a.y': 10 },
      { 'a.x': 20, 'a.y': 20 },
    ]);
    const { costs } = fitCosts(rows, DEFAULTS);
    const predicted = 10 * costs['a.x']! + 10 * costs['a.y']!;
    expect(Math.abs(predicted / 31000 - 1)).toBeLessThan(0.01);
    expect(costs['a.x']).toBeGreaterThan(1000); // both rise from their defaults (1000, 100)
    expect(costs['a.y']).toBeGreaterThan(100);
  });

  test('a cost the data would push below zero stays positive and small', () => {
    // Row 2 alone needs a.x = 1000; row 1 then asks a.y to be negative.
    const rows: FitRow[] = [
      { id: 'r1', realCycles: 500, fixedCycles: 0, counts: { 'a.x': 1, 'a.y': 10 } },
      { id: 'r2', realCycles: 1000, fixedCycles: 0, counts: { 'a.x': 1 } },
    ];
    const { costs } = fitCosts(rows, DEFAULTS);
    expect(costs['a.y']).toBeGreaterThan(0);
    expect(costs['a.y']).toBeLessThan(10);
    expect(costs['a.x']).toBeGreaterThan(400);
  });

  test('fixed cycles are taken off a row before the fit', () => {
    const rows: FitRow[] = [{ id: 'r', realCycles: 10000, fixedCycles: 5000, counts: { 'a.x': 1 } }];
    expect(Math.abs(fitCosts(rows, DEFAULTS, { prior: 1e-9 }).costs['a.x']! - 5000)).toBeLessThan(5);
  });

  test('property: costs are always positive and rows with no real time are left out', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            real: fc.integer({ min: 0, max: 1e7 }),
            x: fc.integer({ min: 0, max: 1000 }),
            y: fc.integer({ min: 0, max: 1000 }),
            z: fc.integer({ min: 0, max: 1000 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (rs) => {
          const rows = rs.map((r, i) => ({
            id: `r${i}`,
            realCycles: r.real,
            fixedCycles: 0,
            counts: { 'a.x': r.x, 'a.y': r.y, 'a.z': r.z },
          }));
          const { costs } = fitCosts(rows, DEFAULTS);
          for (const v of Object.values(costs)) expect(v).toBeGreaterThan(0);
          if (rows.every((r) => r.realCycles === 0))
            for (const k of Object.keys(costs))
              expect(costs[k]).toBe(roundCycles(DEFAULTS[k as keyof typeof DEFAULTS]));
        },
      ),
    );
  });

  test('a count for a key with no default is a programming error', () => {
    expect(() => fitCosts([{ id: 'r', realCycles: 1, fixedCycles: 0, counts: { 'b.q': 1 } }], DEFAULTS)).toThrow(
      /no default for 'b.q'/,
    );
  });
});

describe('helpers', () => {
  test('gaussSolve solves a system that needs pivoting', () => {
    const m = [Float64Array.from([0, 2, 1]), Float64Array.from([1, 1, 0]), Float64Array.from([2, 0, 3])];
    const x = gaussSolve(m, Float64Array.from([7, 3, 11]));
    expect(x.map((v) => Math.round(v * 1e9) / 1e9)).toEqual([1, 2, 3]);
  });

  test('roundCycles keeps 3 significant figures', () => {
    expect([
      roundCycles(0),
      roundCycles(-5),
      roundCycles(0.12345),
      roundCycles(7.414),
      roundCycles(123.6),
      roundCycles(19543),
    ]).toEqual([0, 0, 0.123, 7.41, 124, 19500]);
  });

  test('median of odd and even counts; none is an error', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow();
  });
});
