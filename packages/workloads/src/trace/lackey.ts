import { parseError } from '@pte/core';
import {
  OP_INSTR,
  OP_LOAD,
  OP_MODIFY,
  OP_STORE,
  RecordBuilder,
  TRACE_PAGE_SIZE,
  type RecordSink,
} from './trace-records.js';

/** The longest trace line accepted: `" M " + 16 hex digits + "," + a size` fits many times over. */
const MAX_LINE = 256;
/** Largest access size accepted (lackey reports at most a few hundred bytes; XSAVE areas are a few KiB). */
const MAX_SIZE = 1 << 20;

const NL = 10;
const CR = 13;
const SPACE = 32;
const COMMA = 44;

/**
 * Streaming parser of a valgrind lackey memory trace (`valgrind --tool=lackey --trace-mem=yes`,
 * lackey's `trace_instr/load/store/modify`: `"I  %08lx,%lu"`, `" L %08lx,%lu"`, `" S …"`, `" M …"`).
 *
 * Feed it bytes in chunks of any size with `push` (a line may be split across chunks anywhere) and
 * call `end` once. Each access becomes a record at page granularity (see trace-records.ts): the
 * first page `addr >> 12` and the number of pages `[addr, addr + size)` spans — an access that
 * crosses a page boundary spans 2 (a size of 0 counts as 1 byte). Identical consecutive records
 * are merged into one with a repeat count.
 *
 * Which lines are records: a line that starts with `I` or a space is a trace record and must be
 * exactly one of the four forms (a trailing `\r` is allowed); anything else is wrong and fails with
 * `<file>:<line>: malformed lackey line '<line>'`. Every other line — valgrind's `==PID==` banner and
 * summary, `--PID--` warnings, empty lines — is skipped. No string is built per line: bytes are
 * copied into one fixed line buffer and decoded in place.
 */
export class LackeyParser {
  private readonly out: RecordBuilder;
  private readonly line = new Uint8Array(MAX_LINE);
  private len = 0;
  /** The current line is a record (starts with I or space), or a skipped line. */
  private lineKind: 0 | 1 | 2 = 0; // 0: at line start, 1: record, 2: skipped
  private overlong = false;
  /** 1-based number of the line being read. */
  lineNo = 1;
  /** Lines skipped (banner, warnings, empty). */
  skipped = 0;
  /** Record lines read. */
  records = 0;

  constructor(
    sink: RecordSink,
    private readonly file = 'trace',
    chunkRecords?: number,
  ) {
    this.out = new RecordBuilder(sink, chunkRecords);
  }

  push(bytes: Uint8Array, start = 0, end = bytes.length): void {
    const line = this.line;
    let kind = this.lineKind;
    let len = this.len;
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      if (b === NL) {
        this.len = len;
        this.lineKind = kind;
        this.endLine();
        kind = 0;
        len = 0;
        continue;
      }
      if (kind === 0) kind = b === 73 /* I */ || b === SPACE ? 1 : 2;
      if (kind === 1) {
        if (len < MAX_LINE) line[len++] = b;
        else this.overlong = true;
      }
    }
    this.len = len;
    this.lineKind = kind;
  }

  /** The end of the input: a last line without a newline is parsed, then the records are flushed. */
  end(): void {
    if (this.lineKind !== 0) this.endLine();
    this.out.flush();
  }

  private endLine(): void {
    if (this.lineKind === 1) {
      this.parseRecord();
      this.records++;
    } else {
      this.skipped++;
    }
    this.lineNo++;
    this.len = 0;
    this.lineKind = 0;
  }

  private parseRecord(): void {
    const l = this.line;
    let n = this.len;
    if (n > 0 && l[n - 1] === CR) n--;
    if (this.overlong || n < 6) this.fail(n);
    let op: number;
    if (l[0] === 73 && l[1] === SPACE && l[2] === SPACE) op = OP_INSTR;
    else if (l[0] === SPACE && l[2] === SPACE) {
      const c = l[1];
      op = c === 76 ? OP_LOAD : c === 83 ? OP_STORE : c === 77 ? OP_MODIFY : -1;
      if (op < 0) this.fail(n);
    } else return this.fail(n);
    let i = 3;
    let addr = 0;
    let digits = 0;
    for (; i < n; i++) {
      const c = l[i]!;
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else break;
      addr = addr * 16 + d;
      digits++;
    }
    if (digits === 0 || digits > 16 || addr > Number.MAX_SAFE_INTEGER || i >= n || l[i] !== COMMA) this.fail(n);
    i++;
    let size = 0;
    let sdigits = 0;
    for (; i < n; i++) {
      const c = l[i]!;
      if (c < 48 || c > 57) break;
      size = size * 10 + (c - 48);
      sdigits++;
      if (size > MAX_SIZE) this.fail(n);
    }
    if (sdigits === 0 || i !== n) this.fail(n);
    const first = Math.floor(addr / TRACE_PAGE_SIZE);
    const last = Math.floor((addr + (size > 0 ? size : 1) - 1) / TRACE_PAGE_SIZE);
    this.out.add(op, first, last - first + 1, 1);
  }

  private fail(n: number): never {
    let text = '';
    const shown = Math.min(n, 80);
    for (let j = 0; j < shown; j++) text += String.fromCharCode(this.line[j]!);
    if (this.overlong || n > shown) text += '…';
    throw parseError(`${this.file}:${this.lineNo}: malformed lackey line '${text}'`);
  }
}
