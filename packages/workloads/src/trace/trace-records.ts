/**
 * Trace records at page granularity, the common currency of the trace readers and writers.
 *
 * A record is one memory access of the traced program reduced to pages: its operation, the first
 * 4 KiB page it touches, how many consecutive pages it spans (2 when an access crosses a page
 * boundary), and how many times it repeats back to back (identical consecutive records are merged).
 * Records travel in fixed-size struct-of-arrays chunks; no allocation per record.
 */

/** Operations, as valgrind lackey names them. */
export const OP_INSTR = 0; // I: instruction fetch
export const OP_LOAD = 1; // L: data load
export const OP_STORE = 2; // S: data store
export const OP_MODIFY = 3; // M: load and store of the same bytes by one instruction
export type TraceOp = 0 | 1 | 2 | 3;
export const OP_LETTERS = ['I', 'L', 'S', 'M'] as const;

/** Page touches a record expands to (see expandRecord). */
export const TOUCH_READ = 0;
export const TOUCH_WRITE = 1;
export const TOUCH_FETCH = 2;

/** Page size of the traces (x86-64 base page). */
export const TRACE_PAGE_SHIFT = 12;
export const TRACE_PAGE_SIZE = 4096;

/** Records per chunk by default. */
export const RECORD_CHUNK = 16384;

/** A chunk of records: entries [0, length) of the arrays are valid. */
export class RecordChunk {
  readonly op: Uint8Array;
  /** First page number (virtual address >> 12), below 2^52. */
  readonly vpn: Float64Array;
  /** Pages spanned, ≥ 1. */
  readonly pages: Uint32Array;
  /** Back-to-back repetitions of the record, ≥ 1. */
  readonly repeat: Uint32Array;
  length = 0;

  constructor(readonly capacity = RECORD_CHUNK) {
    this.op = new Uint8Array(capacity);
    this.vpn = new Float64Array(capacity);
    this.pages = new Uint32Array(capacity);
    this.repeat = new Uint32Array(capacity);
  }
}

/** Receives full chunks (and the last, partial one). The chunk is reused after the call returns. */
export type RecordSink = (chunk: RecordChunk) => void;

/** Totals of a trace (what the readers saw), identical for a lackey trace and its binary form. */
export interface TraceStats {
  /** Access records by operation (I, L, S, M), repeats counted. */
  readonly byOp: [number, number, number, number];
  /** Records whose access crosses a page boundary (repeats counted). */
  crossing: number;
  /** Page touches after expansion (see expandRecord). */
  touches: number;
}

export function newTraceStats(): TraceStats {
  return { byOp: [0, 0, 0, 0], crossing: 0, touches: 0 };
}

/** Page touches of one repetition of a record of operation `op` spanning `pages` pages. */
export function touchesPerRecord(op: number, pages: number): number {
  return op === OP_MODIFY ? 2 * pages : pages;
}

/** Add a chunk's records to `stats`. */
export function addChunkStats(stats: TraceStats, c: RecordChunk): void {
  for (let i = 0; i < c.length; i++) {
    const r = c.repeat[i]!;
    const op = c.op[i]!;
    const p = c.pages[i]!;
    stats.byOp[op as TraceOp] += r;
    if (p > 1) stats.crossing += r;
    stats.touches += r * touchesPerRecord(op, p);
  }
}

/**
 * Appends records to a chunk, merging a record into the previous one when it is identical
 * (same op, first page and span): it then only bumps `repeat`. Hands full chunks to `sink`.
 */
export class RecordBuilder {
  private readonly chunk: RecordChunk;

  constructor(
    private readonly sink: RecordSink,
    capacity = RECORD_CHUNK,
  ) {
    this.chunk = new RecordChunk(capacity);
  }

  add(op: number, vpn: number, pages: number, repeat: number): void {
    const c = this.chunk;
    const n = c.length;
    if (n > 0) {
      const last = n - 1;
      if (
        c.op[last] === op &&
        c.vpn[last] === vpn &&
        c.pages[last] === pages &&
        c.repeat[last]! + repeat <= 0xffffffff
      ) {
        c.repeat[last]! += repeat;
        return;
      }
      if (n === c.capacity) {
        this.sink(c);
        c.length = 0;
      }
    }
    const i = c.length++;
    c.op[i] = op;
    c.vpn[i] = vpn;
    c.pages[i] = pages;
    c.repeat[i] = repeat;
  }

  /** Hand over what is left. */
  flush(): void {
    if (this.chunk.length > 0) this.sink(this.chunk);
    this.chunk.length = 0;
  }
}
