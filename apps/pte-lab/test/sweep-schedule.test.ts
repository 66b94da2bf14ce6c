/**
 * The sweep scheduler (pickPoint): a worker stays on the platform it ran last, so its isolate's
 * optimised code stays specialised; a new worker, or one whose platform is done, takes the platform
 * with the most points left that no other worker is on.
 */
import fc from 'fast-check';
import type { SweepPoint } from '../src/sweep/points.js';
import { pickPoint } from '../src/sweep/schedule.js';

function pt(index: number, platform: string | undefined): SweepPoint {
  return {
    index,
    vary: [],
    key: String(index),
    options: {
      scenario: 's',
      profile: 'p',
      set: [],
      seed: 1,
      check: false,
      ...(platform === undefined ? {} : { platform }),
    },
  };
}

/** 5 fault-around windows × 4 platforms, platform fastest: the sweep. */
const SWEEP = Array.from({ length: 20 }, (_, i) => pt(i, ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'][i % 4]));

/** Run the scheduler to the end with `workers` workers finishing in turn; the order each ran. */
function schedule(points: readonly SweepPoint[], workers: number): number[][] {
  const left = [...points];
  const on: (string | undefined)[] = Array.from({ length: workers }, () => undefined);
  const ran: number[][] = Array.from({ length: workers }, () => []);
  for (let turn = 0; left.length > 0; turn++) {
    const i = turn % workers;
    const k = pickPoint(
      left,
      on[i],
      on.filter((x, j): x is string => j !== i && x !== undefined),
    );
    const [p] = left.splice(k, 1);
    on[i] = p!.options.platform ?? '';
    ran[i]!.push(p!.index);
  }
  return ran;
}

describe('pickPoint', () => {
  test('an empty list gives -1', () => {
    expect(pickPoint([], 'native', [])).toBe(-1);
  });

  test('two workers on the 20-point sweep: each keeps one platform until it is done, then takes an untouched one', () => {
    const [a, b] = schedule(SWEEP, 2);
    // Worker 0 starts on native (first of the platforms with the most points), worker 1 on xen-pv
    // (native is taken); both then move to platforms nobody is on.
    expect(a).toEqual([0, 4, 8, 12, 16, 2, 6, 10, 14, 18]);
    expect(b).toEqual([1, 5, 9, 13, 17, 3, 7, 11, 15, 19]);
  });

  test('a worker whose platform is done takes the platform with the most points left', () => {
    const left = [pt(0, 'xen-pv'), pt(1, 'kvm-tdp'), pt(2, 'kvm-tdp'), pt(3, 'kvm-shadow'), pt(4, 'kvm-tdp')];
    expect(pickPoint(left, 'native', [])).toBe(1);
    // ... unless another worker is on it.
    expect(pickPoint(left, 'native', ['kvm-tdp'])).toBe(0);
    // Every platform busy: the first point left.
    expect(pickPoint(left, 'native', ['kvm-tdp', 'xen-pv', 'kvm-shadow'])).toBe(0);
  });

  test('points without a platform form one group', () => {
    const left = [pt(0, undefined), pt(1, 'xen-pv'), pt(2, undefined)];
    expect(pickPoint(left, '', [])).toBe(0);
    expect(pickPoint(left, 'xen-pv', [])).toBe(1);
  });

  test('any sweep, any number of workers: every point runs exactly once, and each worker runs its platform in product order', () => {
    const platforms = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'];
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        (plats, workers) => {
          const points = plats.map((x, i) => pt(i, platforms[x]));
          const ran = schedule(points, workers);
          expect(ran.flat().sort((x, y) => x - y)).toEqual(points.map((p) => p.index));
          for (const r of ran) {
            for (const platform of platforms) {
              const mine = r.filter((i) => points[i]!.options.platform === platform);
              expect(mine).toEqual([...mine].sort((x, y) => x - y));
            }
          }
        },
      ),
    );
  });
});
