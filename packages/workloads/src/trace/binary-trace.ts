import { parseError } from '@pte/core';
import { RecordBuilder, RecordChunk, TRACE_PAGE_SHIFT, type RecordSink } from './trace-records.js';

/**
 * The compact binary trace format (docs/trace-format.md), version 1:
 *
 * header (16 bytes): magic `PTETRACE` (8 ASCII bytes), u16 LE version = 1, u8 page shift = 12,
 * u8 flags = 0, u32 LE reserved = 0.
 *
 * records, each: a tag byte — bits 0–1 the operation (0 I, 1 L, 2 S, 3 M), bit 2 "span follows",
 * bit 3 "repeat follows", bits 4–7 zero — then the first page as a zigzag LEB128 varint delta from
 * the previous record's first page (from 0 for the first record), then the span in pages (varint,
 * ≥ 2) if bit 2, then the repeat count (varint, ≥ 2) if bit 3. Absent fields mean 1.
 *
 * end: tag 0xFF, then the number of access records (repeats counted) as a varint, and nothing after.
 * A file without the end record is truncated and is refused.
 *
 * A record is at most 1 + 9 + 5 + 5 = 20 bytes; a typical one (same or nearby page) is 2.
 */
export const BIN_MAGIC = 'PTETRACE';
export const BIN_VERSION = 1;
export const BIN_HEADER_BYTES = 16;
const TAG_SPAN = 4;
const TAG_REPEAT = 8;
const TAG_END = 0xff;
const MAX_RECORD = 24;

/** The 16-byte header. */
export function binHeader(): Uint8Array {
  const h = new Uint8Array(BIN_HEADER_BYTES);
  for (let i = 0; i < 8; i++) h[i] = BIN_MAGIC.charCodeAt(i);
  h[8] = BIN_VERSION & 0xff;
  h[9] = BIN_VERSION >>> 8;
  h[10] = TRACE_PAGE_SHIFT;
  return h;
}

/** Encodes record chunks; hands encoded bytes to `out` in blocks (copy them if kept: the block is reused). */
export class BinTraceWriter {
  private readonly buf: Uint8Array;
  private pos = 0;
  private prevVpn = 0;
  /** Access records written (repeats counted). */
  records = 0;
  private ended = false;

  constructor(
    private readonly out: (bytes: Uint8Array) => void,
    blockBytes = 1 << 16,
  ) {
    this.buf = new Uint8Array(Math.max(blockBytes, 64));
    this.buf.set(binHeader());
    this.pos = BIN_HEADER_BYTES;
  }

  /** A RecordSink: write every record of the chunk. */
  readonly write: RecordSink = (c: RecordChunk): void => {
    for (let i = 0; i < c.length; i++) this.record(c.op[i]!, c.vpn[i]!, c.pages[i]!, c.repeat[i]!);
  };

  record(op: number, vpn: number, pages: number, repeat: number): void {
    if (this.pos + MAX_RECORD > this.buf.length) this.drain();
    const b = this.buf;
    b[this.pos++] = op | (pages > 1 ? TAG_SPAN : 0) | (repeat > 1 ? TAG_REPEAT : 0);
    const d = vpn - this.prevVpn;
    this.varint(d >= 0 ? 2 * d : -2 * d - 1);
    if (pages > 1) this.varint(pages);
    if (repeat > 1) this.varint(repeat);
    this.prevVpn = vpn;
    this.records += repeat;
  }

  /** Write the end record and hand over the last block. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.pos + MAX_RECORD > this.buf.length) this.drain();
    this.buf[this.pos++] = TAG_END;
    this.varint(this.records);
    this.drain();
  }

  private varint(v: number): void {
    const b = this.buf;
    let p = this.pos;
    while (v >= 128) {
      b[p++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    b[p++] = v;
    this.pos = p;
  }

  private drain(): void {
    if (this.pos > 0) this.out(this.buf.subarray(0, this.pos));
    this.pos = 0;
  }
}

/**
 * Streaming reader of the binary format: `push` bytes in chunks of any size (a record may be
 * split anywhere), then `end`. Emits the same records the writer was given (consecutive
 * identical records may come merged, which changes no page touch).
 */
export class BinTraceReader {
  private readonly outB: RecordBuilder;
  private readonly header = new Uint8Array(BIN_HEADER_BYTES);
  private headerLen = 0;
  private readonly carry = new Uint8Array(2 * MAX_RECORD);
  private carryLen = 0;
  /** Absolute offset of the start of the bytes being decoded (for error messages). */
  private base = 0;
  private prevVpn = 0;
  private endSeen = false;
  /** Access records read (repeats counted). */
  records = 0;
  // Decoder outputs.
  private dPos = 0;

  constructor(
    sink: RecordSink,
    private readonly file = 'trace',
    chunkRecords?: number,
  ) {
    this.outB = new RecordBuilder(sink, chunkRecords);
  }

  push(bytes: Uint8Array, start = 0, end = bytes.length): void {
    let s = start;
    if (this.headerLen < BIN_HEADER_BYTES) {
      const t = Math.min(BIN_HEADER_BYTES - this.headerLen, end - s);
      this.header.set(bytes.subarray(s, s + t), this.headerLen);
      this.headerLen += t;
      s += t;
      this.base += t;
      if (this.headerLen < BIN_HEADER_BYTES) return;
      this.checkHeader();
    }
    if (this.carryLen > 0) {
      const old = this.carryLen;
      const t = Math.min(this.carry.length - old, end - s);
      this.carry.set(bytes.subarray(s, s + t), old);
      const avail = old + t;
      let p = 0;
      while (p < old) {
        const q = this.decode(this.carry, p, avail);
        if (q < 0) break;
        this.base += q - p;
        p = q;
      }
      if (p < old) {
        // Still incomplete: every new byte is in the carry now.
        this.carry.copyWithin(0, p, avail);
        this.carryLen = avail - p;
        return;
      }
      this.carryLen = 0;
      s += p - old;
    }
    let p = s;
    while (p < end) {
      const q = this.decode(bytes, p, end);
      if (q < 0) break;
      this.base += q - p;
      p = q;
    }
    if (p < end) {
      this.carry.set(bytes.subarray(p, end), 0);
      this.carryLen = end - p;
    }
  }

  end(): void {
    if (this.headerLen < BIN_HEADER_BYTES)
      throw parseError(`${this.file}: not a PTE Lab binary trace (${this.headerLen} bytes, shorter than the header)`);
    if (this.carryLen > 0 || !this.endSeen)
      throw parseError(`${this.file}: truncated binary trace (no end record after byte ${this.base})`);
    this.outB.flush();
  }

  private checkHeader(): void {
    const h = this.header;
    for (let i = 0; i < 8; i++) {
      if (h[i] !== BIN_MAGIC.charCodeAt(i))
        throw parseError(`${this.file}: not a PTE Lab binary trace (no '${BIN_MAGIC}' magic)`);
    }
    const version = h[8]! | (h[9]! << 8);
    if (version !== BIN_VERSION)
      throw parseError(
        `${this.file}: binary trace version ${version} is not supported (this build reads version ${BIN_VERSION})`,
      );
    if (h[10] !== TRACE_PAGE_SHIFT)
      throw parseError(`${this.file}: binary trace page shift ${h[10]} is not ${TRACE_PAGE_SHIFT}`);
  }

  /** Decode one record at `p` (bound `e`): the position after it, or −1 if it is incomplete. */
  private decode(b: Uint8Array, p: number, e: number): number {
    const at = this.base;
    if (this.endSeen) throw parseError(`${this.file}: byte ${at}: data after the end record`);
    const tag = b[p]!;
    if (tag === TAG_END) {
      if (this.varint(b, p + 1, e, at) < 0) return -1;
      const v = this.dValue;
      if (v !== this.records)
        throw parseError(`${this.file}: byte ${at}: end record counts ${v} records, the trace has ${this.records}`);
      this.endSeen = true;
      return this.dPos;
    }
    if ((tag & 0xf0) !== 0) throw parseError(`${this.file}: byte ${at}: bad record tag 0x${tag.toString(16)}`);
    if (this.varint(b, p + 1, e, at) < 0) return -1;
    const z = this.dValue;
    let q = this.dPos;
    let pages = 1;
    let repeat = 1;
    if ((tag & TAG_SPAN) !== 0) {
      if (this.varint(b, q, e, at) < 0) return -1;
      pages = this.dValue;
      q = this.dPos;
      if (pages < 2 || pages > 0xffffffff) throw parseError(`${this.file}: byte ${at}: bad span ${pages}`);
    }
    if ((tag & TAG_REPEAT) !== 0) {
      if (this.varint(b, q, e, at) < 0) return -1;
      repeat = this.dValue;
      q = this.dPos;
      if (repeat < 2 || repeat > 0xffffffff) throw parseError(`${this.file}: byte ${at}: bad repeat ${repeat}`);
    }
    const vpn = this.prevVpn + (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
    if (vpn < 0 || vpn >= 2 ** 52)
      throw parseError(`${this.file}: byte ${at}: page 0x${vpn.toString(16)} out of range`);
    this.prevVpn = vpn;
    this.records += repeat;
    this.outB.add(tag & 3, vpn, pages, repeat);
    return q;
  }

  private dValue = 0;

  /** LEB128 at `p`: sets dValue and dPos; −1 if incomplete. */
  private varint(b: Uint8Array, p: number, e: number, at: number): number {
    let v = 0;
    let mul = 1;
    for (let k = 0; k < 9; k++) {
      if (p >= e) return -1;
      const x = b[p++]!;
      v += (x & 127) * mul;
      mul *= 128;
      if (x < 128) {
        if (v > Number.MAX_SAFE_INTEGER) break;
        this.dValue = v;
        this.dPos = p;
        return 0;
      }
    }
    throw parseError(`${this.file}: byte ${at}: bad varint`);
  }
}
