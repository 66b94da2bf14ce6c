import fc from 'fast-check';
import { SharedLine } from '../src/index.js';

describe('SharedLine: a contended cache line in virtual time', () => {
  it('costs nothing on the CPU that holds it; a move costs one transfer; moves queue', () => {
    const l = new SharedLine();
    expect(l.rmw(0, 0, 84)).toBe(0); // the first writer takes it
    expect(l.rmw(0, 5, 84)).toBe(0);
    expect(l.rmw(1, 10, 84)).toBe(84); // moves: done at 94
    expect(l.rmw(2, 20, 84)).toBe(158); // waits for the move to CPU 1 (94), then its own: 178
    expect(l.rmw(2, 30, 84)).toBe(0);
    expect(l.rmw(0, 1000, 84)).toBe(84); // idle line: just the transfer
    expect(l.transfers).toBe(3);
  });

  it('never hands the line over before the previous move is done, and never charges the holder', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ cpu: fc.integer({ min: 0, max: 3 }), gap: fc.integer({ min: 0, max: 200 }) }), {
          maxLength: 60,
        }),
        (ops) => {
          const l = new SharedLine();
          let now = 0;
          let lastDone = 0;
          for (const { cpu, gap } of ops) {
            now += gap;
            const holder = l.owner;
            const w = l.rmw(cpu, now, 84);
            if (holder === cpu || holder < 0) expect(w).toBe(0);
            else {
              expect(w).toBeGreaterThanOrEqual(84);
              expect(now + w).toBe(Math.max(now, lastDone) + 84);
              lastDone = now + w;
            }
            expect(l.owner).toBe(cpu);
          }
        },
      ),
    );
  });
});
