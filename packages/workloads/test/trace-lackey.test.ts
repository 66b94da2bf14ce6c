import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LackeyParser, OP_INSTR, OP_LOAD, OP_MODIFY, OP_STORE, readTraceFile } from '../src/index.js';
import { thrownBy } from './helpers.js';
import { bytes, collector, type Rec } from './trace-helpers.js';

function parse(text: string, split: number[] = [], chunkRecords?: number): Rec[] {
  const { sink, recs } = collector();
  const p = new LackeyParser(sink, 'trace.txt', chunkRecords);
  const b = bytes(text);
  let at = 0;
  for (const s of [...split, b.length]) {
    p.push(b, at, Math.min(s, b.length));
    at = Math.min(s, b.length);
  }
  p.end();
  return recs;
}

const SAMPLE =
  [
    '==3423== Lackey, an example Valgrind tool',
    '==3423== Command: /bin/true',
    '==3423==',
    'I  0401ab70,3',
    'I  0401ab73,5',
    ' S 1fff000778,8',
    ' L 04032e40,8',
    ' M 04033e06,1',
    '--3423-- a valgrind warning',
    '',
    '==3423== Counted 0 calls to main()',
  ].join('\n') + '\n';

describe('lackey parser', () => {
  it('parses the four record forms exactly and skips banner, warning and empty lines', () => {
    expect(parse(SAMPLE)).toEqual([
      [OP_INSTR, 0x401a, 1, 2],
      [OP_STORE, 0x1fff000, 1, 1],
      [OP_LOAD, 0x4032, 1, 1],
      [OP_MODIFY, 0x4033, 1, 1],
    ]);
  });

  it('counts lines and skipped lines', () => {
    const p = new LackeyParser(() => undefined);
    p.push(bytes(SAMPLE));
    p.end();
    expect(p.records).toBe(5);
    expect(p.skipped).toBe(6);
  });

  it('an access that crosses a page boundary spans both pages; one that ends on it does not', () => {
    expect(parse('I  00000ffe,3\n L 00001ff8,8\n S 00002ff9,8\n M 00003000,4096\n L 00004000,0\n')).toEqual([
      [OP_INSTR, 0, 2, 1],
      [OP_LOAD, 1, 1, 1],
      [OP_STORE, 2, 2, 1],
      [OP_MODIFY, 3, 1, 1],
      [OP_LOAD, 4, 1, 1],
    ]);
  });

  it('accepts upper-case hex, 16-digit addresses, CRLF and a last line without a newline', () => {
    expect(parse('I  0000FFFFFFFFF000,4\r\n L 7fff0000,8')).toEqual([
      [OP_INSTR, 0xfffffffff, 1, 1],
      [OP_LOAD, 0x7fff0, 1, 1],
    ]);
  });

  it.each([
    [' X zz', 3],
    ['I 0401ab70,3', 3],
    [' L 0401ab70', 3],
    [' L ,8', 3],
    [' L 0401ab70,', 3],
    [' L 0401ab70,8 extra', 3],
    [' L 0401zb70,8', 3],
    [' L 11111111111111111,8', 3],
  ])('a malformed record line %j fails naming the file and line', (line, lineNo) => {
    const e = thrownBy(() => parse(`==1== banner\nI  0401ab70,3\n${line}\nI  0401ab70,3\n`));
    expect(e.code).toBe('parse');
    expect(e.message).toBe(`trace.txt:${lineNo}: malformed lackey line '${line}'`);
  });

  it('reports the right line number when the bad line is the 1234th', () => {
    const good = 'I  0401ab70,3\n'.repeat(1233);
    const e = thrownBy(() => parse(good + ' X zz\n', [7, 100, 4000]));
    expect(e.oneLine()).toBe("trace.txt:1234: malformed lackey line ' X zz'");
  });

  it('gives the same records however the input is split into chunks (lines split anywhere)', () => {
    const text = SAMPLE + 'I  00000ffe,3\n L 00001ff8,8\n'.repeat(20);
    const whole = parse(text);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 5 }),
        (cuts, chunk) => {
          const sorted = [...cuts].sort((a, b) => a - b);
          expect(parse(text, sorted, chunk)).toEqual(whole);
        },
      ),
    );
  });

  it('byte-at-a-time pushes give the same records', () => {
    const text = SAMPLE.repeat(3);
    expect(
      parse(
        text,
        Array.from({ length: text.length }, (_, i) => i),
      ),
    ).toEqual(parse(text));
  });

  it('readTraceFile streams a file with a tiny read buffer (lines split across reads)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pte-trace-'));
    const f = join(dir, 'trace.txt');
    writeFileSync(f, SAMPLE.repeat(10));
    const a = collector();
    readTraceFile(f, 'lackey', a.sink, { readBytes: 7, chunkRecords: 3 });
    const b = collector();
    readTraceFile(f, 'lackey', b.sink);
    expect(a.recs).toEqual(b.recs);
    expect(a.recs.length).toBe(40);
  });

  it('an unreadable file is an io error naming it', () => {
    const e = thrownBy(() => readTraceFile('/nonexistent/trace.txt', 'lackey', () => undefined));
    expect(e.code).toBe('io');
    expect(e.message).toContain('/nonexistent/trace.txt');
  });
});
