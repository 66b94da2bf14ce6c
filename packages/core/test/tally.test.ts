import fc from 'fast-check';
import { Tally, Counters, CycleLedger, diffSnapshots } from '../src/index.js';
import { thrownBy } from '@pte/test-utils';

describe('Tally.id', () => {
  it('registers names in order on first use and is stable afterwards', () => {
    const t = new Tally();
    expect(t.has('faults.minor')).toBe(false);
    const a = t.id('faults.minor');
    const b = t.id('faults.major');
    expect([a, b]).toEqual([0, 1]);
    expect(t.id('faults.minor')).toBe(a);
    expect(t.id('faults.major')).toBe(b);
    expect(t.has('faults.minor')).toBe(true);
    expect(t.snapshot()).toEqual({ 'faults.major': 0, 'faults.minor': 0 });
  });

  it.each([
    ['faults'],
    ['Faults.Minor'],
    ['faults.Minor'],
    ['a..b'],
    [''],
    ['.a'],
    ['a.'],
    ['a.b c'],
    ['a-b.c'],
    ['a.b\n'],
  ])('rejects %j as not a dotted name, with a config error', (name) => {
    const t = new Tally();
    const e = thrownBy(() => t.id(name));
    expect(e.code).toBe('config');
    expect(e.message).toBe(`'${name.replace(/\s*\n\s*/g, ' ')}' is not a dotted name like 'faults.minor'`);
    expect(t.has(name)).toBe(false);
    expect(t.snapshot()).toEqual({});
    expect(t.id('ok.name')).toBe(0);
  });

  it('accepts dotted lower-case names with digits and underscores', () => {
    const t = new Tally();
    for (const name of ['guest.pte_write', 'a.b.c', 'l4.walk_2', '0.1']) expect(() => t.id(name)).not.toThrow();
    expect(Object.keys(t.snapshot())).toHaveLength(4);
  });
});

describe('Tally values', () => {
  it('add accumulates, get reads by name, unknown names read 0', () => {
    const t = new Counters();
    const minor = t.id('faults.minor');
    t.add(minor, 1);
    t.add(minor, 2);
    t.add(t.id('tlb.miss'), 0.5);
    expect(t.get('faults.minor')).toBe(3);
    expect(t.get('tlb.miss')).toBe(0.5);
    expect(t.get('never.seen')).toBe(0);
    expect(t.get('not-even-valid')).toBe(0);
    expect(t.has('never.seen')).toBe(false);
  });

  it('snapshot has sorted keys and includes zeros', () => {
    const t = new Tally();
    t.add(t.id('z.last'), 4);
    t.id('m.middle');
    t.add(t.id('a.first'), 1);
    t.id('a.b_second');
    const snap = t.snapshot();
    expect(Object.keys(snap)).toEqual(['a.b_second', 'a.first', 'm.middle', 'z.last']);
    expect(snap).toEqual({ 'a.b_second': 0, 'a.first': 1, 'm.middle': 0, 'z.last': 4 });
  });

  it('snapshot is a copy, not a live view', () => {
    const t = new Tally();
    const id = t.id('x.y');
    t.add(id, 1);
    const snap = t.snapshot();
    t.add(id, 1);
    expect(snap['x.y']).toBe(1);
    expect(t.get('x.y')).toBe(2);
  });

  it('keeps every value when growing past 32 (and 64) names', () => {
    const t = new Tally();
    const names = Array.from({ length: 100 }, (_, i) => `c.n${String(i).padStart(3, '0')}`);
    // Charge each name as it is registered, so values written before each growth must survive it.
    names.forEach((name, i) => t.add(t.id(name), i + 1));
    names.forEach((name, i) => expect(t.id(name)).toBe(i));
    names.forEach((name, i) => t.add(t.id(name), 1000 * (i + 1)));
    names.forEach((name, i) => expect(t.get(name)).toBe(1001 * (i + 1)));
    const snap = t.snapshot();
    expect(Object.keys(snap)).toEqual(names);
    expect(Object.values(snap)).toEqual(names.map((_, i) => 1001 * (i + 1)));
  });

  it('reset zeroes values but keeps names and ids', () => {
    const t = new Tally();
    const a = t.id('a.a');
    const b = t.id('b.b');
    t.add(a, 5);
    t.add(b, 7);
    t.reset();
    expect(t.snapshot()).toEqual({ 'a.a': 0, 'b.b': 0 });
    expect(t.id('b.b')).toBe(b);
    t.add(a, 2);
    expect(t.get('a.a')).toBe(2);
  });

  it('Counters and CycleLedger instances keep separate registries', () => {
    const c = new Counters();
    const l = new CycleLedger();
    c.add(c.id('only.counter'), 1);
    expect(l.has('only.counter')).toBe(false);
    expect(l.id('only.ledger')).toBe(0);
    expect(c.snapshot()).toEqual({ 'only.counter': 1 });
    expect(c).toBeInstanceOf(Tally);
    expect(l).toBeInstanceOf(Tally);
  });
});

describe('CycleLedger', () => {
  it('charge accumulates and total() is the sum of the categories', () => {
    const l = new CycleLedger();
    expect(l.total()).toBe(0);
    const fault = l.id('guest.fault');
    const walk = l.id('tlb.walk');
    l.charge(fault, 1000);
    l.charge(walk, 30);
    l.charge(fault, 250);
    expect(l.get('guest.fault')).toBe(1250);
    expect(l.get('tlb.walk')).toBe(30);
    expect(l.total()).toBe(1280);
    l.add(walk, 5);
    expect(l.total()).toBe(1285);
    l.reset();
    expect(l.total()).toBe(0);
  });

  it('total() equals the sum of the snapshot, across growth', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 79 }), fc.integer({ min: 0, max: 1_000_000 })), { maxLength: 300 }),
        (charges) => {
          const l = new CycleLedger();
          const expected = new Map<string, number>();
          for (const [k, cycles] of charges) {
            const name = `cat.k${k}`;
            l.charge(l.id(name), cycles);
            expected.set(name, (expected.get(name) ?? 0) + cycles);
          }
          const snap = l.snapshot();
          expect(snap).toEqual(Object.fromEntries(expected));
          const sum = Object.values(snap).reduce((a, b) => a + b, 0);
          expect(l.total()).toBe(sum);
          expect(l.total()).toBe(charges.reduce((a, [, c]) => a + c, 0));
        },
      ),
    );
  });
});

describe('CycleLedger phases', () => {
  it('tally the cycles charged while each phase was current, nested and restored', () => {
    const l = new CycleLedger();
    const a = l.id('guest.fault');
    const pin = l.definePhase('pgd_pin');
    const fork = l.definePhase('fork_copy');
    expect(l.definePhase('pgd_pin')).toBe(pin);
    l.charge(a, 100); // none
    const outer = l.enterPhase(fork);
    l.charge(a, 40);
    const inner = l.enterPhase(pin);
    l.charge(a, 7);
    expect(l.phaseTotal(pin)).toBe(7); // the current phase includes what is charged so far
    l.enterPhase(inner);
    l.charge(a, 3);
    l.enterPhase(outer);
    l.charge(a, 1000);
    expect([l.phaseTotal(0), l.phaseTotal(fork), l.phaseTotal(pin)]).toEqual([1100, 43, 7]);
    expect(l.phaseTotal(0) + l.phaseTotal(fork) + l.phaseTotal(pin)).toBe(l.total());
    l.reset();
    expect([l.phaseTotal(0), l.phaseTotal(fork), l.phaseTotal(pin)]).toEqual([0, 0, 0]);
  });

  it('inPhase returns to the phase that was current, also when its function throws', () => {
    const l = new CycleLedger();
    const a = l.id('guest.fault');
    const p = l.definePhase('p');
    expect(l.inPhase(p, () => (l.charge(a, 5), 42))).toBe(42);
    expect(() =>
      l.inPhase(p, () => {
        l.charge(a, 2);
        throw new Error('refused');
      }),
    ).toThrow('refused');
    l.charge(a, 100);
    expect([l.phaseTotal(0), l.phaseTotal(p)]).toEqual([100, 7]);
  });

  it('phases always sum to the total, whatever the sequence', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 1_000_000 })), { maxLength: 200 }),
        (steps) => {
          const l = new CycleLedger();
          const c = l.id('x.y');
          const phases = Array.from({ length: 12 }, (_, i) => l.definePhase(`p${i}`));
          const want = new Map<number, number>();
          let cur = 0;
          for (const [p, cycles] of steps) {
            if (p < 12) cur = phases[p]!;
            else cur = 0;
            l.enterPhase(cur);
            l.charge(c, cycles);
            want.set(cur, (want.get(cur) ?? 0) + cycles);
          }
          for (const p of [0, ...phases]) expect(l.phaseTotal(p)).toBe(want.get(p) ?? 0);
        },
      ),
      { seed: 5 },
    );
  });
});

describe('diffSnapshots', () => {
  it('is after - before over the union of names, sorted, zeros kept', () => {
    const before = { 'b.b': 2, 'a.a': 1, 'same.same': 4 };
    const after = { 'c.c': 3, 'b.b': 5, 'same.same': 4 };
    const d = diffSnapshots(before, after);
    expect(Object.keys(d)).toEqual(['a.a', 'b.b', 'c.c', 'same.same']);
    expect(d).toEqual({ 'a.a': -1, 'b.b': 3, 'c.c': 3, 'same.same': 0 });
    expect(diffSnapshots({}, {})).toEqual({});
  });

  it('works on real snapshots taken around some work', () => {
    const t = new Counters();
    t.add(t.id('faults.minor'), 10);
    const before = t.snapshot();
    t.add(t.id('faults.minor'), 3);
    t.add(t.id('pte.prefaulted'), 16);
    expect(diffSnapshots(before, t.snapshot())).toEqual({ 'faults.minor': 3, 'pte.prefaulted': 16 });
  });
});
