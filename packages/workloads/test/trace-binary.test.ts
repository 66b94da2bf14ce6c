import fc from 'fast-check';
import { BIN_HEADER_BYTES, BinTraceReader, BinTraceWriter, LackeyParser, RecordChunk } from '../src/index.js';
import { thrownBy } from './helpers.js';
import { bytes, collector, type Rec } from './trace-helpers.js';

function encode(recs: readonly Rec[], block = 64): Uint8Array {
  const parts: number[] = [];
  const w = new BinTraceWriter((b) => parts.push(...b), block);
  const c = new RecordChunk(recs.length + 1);
  recs.forEach(([op, vpn, pages, rep], i) => {
    c.op[i] = op;
    c.vpn[i] = vpn;
    c.pages[i] = pages;
    c.repeat[i] = rep;
  });
  c.length = recs.length;
  w.write(c);
  w.end();
  return Uint8Array.from(parts);
}

function decode(b: Uint8Array, cuts: number[] = [], chunkRecords?: number): Rec[] {
  const { sink, recs } = collector();
  const r = new BinTraceReader(sink, 'trace.bin', chunkRecords);
  let at = 0;
  for (const s of [...cuts, b.length]) {
    const e = Math.min(Math.max(s, at), b.length);
    r.push(b, at, e);
    at = e;
  }
  r.end();
  return recs;
}

/** Merge identical neighbours, as the readers may. */
function canon(recs: readonly Rec[]): Rec[] {
  const out: Rec[] = [];
  for (const r of recs) {
    const l = out[out.length - 1];
    if (l !== undefined && l[0] === r[0] && l[1] === r[1] && l[2] === r[2]) l[3] += r[3];
    else out.push([...r]);
  }
  return out;
}

const rec = fc.tuple(
  fc.integer({ min: 0, max: 3 }),
  fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: 2 ** 36 }), fc.constant(2 ** 52 - 1)),
  fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 300 })),
  fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 2 ** 32 - 1 })),
) as fc.Arbitrary<Rec>;

describe('binary trace format', () => {
  it('round-trips any records, whatever the read split', () => {
    fc.assert(
      fc.property(
        fc.array(rec, { maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 20 }),
        (recs, cuts) => {
          const b = encode(recs);
          expect(
            decode(
              b,
              [...cuts].sort((x, y) => x - y),
              4,
            ),
          ).toEqual(canon(recs));
        },
      ),
    );
  });

  it('byte-at-a-time pushes decode the same', () => {
    const recs: Rec[] = [
      [0, 0x401a, 1, 7],
      [2, 0x1fff000, 2, 1],
      [3, 2 ** 52 - 1, 1, 3],
      [1, 5, 1, 1],
    ];
    const b = encode(recs);
    expect(
      decode(
        b,
        Array.from({ length: b.length }, (_, i) => i),
      ),
    ).toEqual(recs);
  });

  it('a lackey trace and its binary form give the same records', () => {
    const text = '==1== x\nI  0401ab70,3\nI  0401ab73,5\n S 1fff000ffc,8\n M 04033e06,1\n L 00000000,1\n'.repeat(50);
    const a = collector();
    const p = new LackeyParser(a.sink, 't', 5);
    p.push(bytes(text));
    p.end();
    expect(decode(encode(a.recs))).toEqual(a.recs);
    // Small: two bytes for a record on the same or a nearby page.
    expect(encode(a.recs).length).toBeLessThan(BIN_HEADER_BYTES + 12 * a.recs.length);
  });

  it('the header is the magic, version 1 and page shift 12', () => {
    const b = encode([]);
    expect(new TextDecoder().decode(b.subarray(0, 8))).toBe('PTETRACE');
    expect([...b.subarray(8, 16)]).toEqual([1, 0, 12, 0, 0, 0, 0, 0]);
    expect([...b.subarray(16)]).toEqual([0xff, 0]);
  });

  it('refuses a wrong magic, a truncated file, a bad tag and data after the end', () => {
    const good = encode([
      [0, 1, 1, 1],
      [1, 2, 1, 1],
    ]);
    const bad = Uint8Array.from(good);
    bad[0] = 0x41;
    expect(thrownBy(() => decode(bad)).message).toContain('not a PTE Lab binary trace');
    expect(thrownBy(() => decode(good.subarray(0, good.length - 2))).message).toMatch(
      /^trace\.bin: truncated binary trace/,
    );
    expect(thrownBy(() => decode(good.subarray(0, 10))).message).toContain('shorter than the header');
    const tag = Uint8Array.from(good);
    tag[BIN_HEADER_BYTES] = 0x30;
    expect(thrownBy(() => decode(tag)).message).toBe('trace.bin: byte 16: bad record tag 0x30');
    const extra = Uint8Array.from([...good, 0]);
    expect(thrownBy(() => decode(extra)).message).toContain('data after the end record');
    const wrongCount = Uint8Array.from(good);
    wrongCount[wrongCount.length - 1] = 5;
    expect(thrownBy(() => decode(wrongCount)).message).toContain('end record counts 5 records, the trace has 2');
  });
});
