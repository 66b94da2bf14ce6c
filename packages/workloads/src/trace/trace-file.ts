import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { PteError, usageError } from '@pte/core';
import { BinTraceReader } from './binary-trace.js';
import { LackeyParser } from './lackey.js';
import type { RecordSink } from './trace-records.js';

export type TraceFormat = 'lackey' | 'bin';
export const TRACE_FORMATS: readonly TraceFormat[] = ['lackey', 'bin'];

export function parseTraceFormat(text: string, where = '--trace-format'): TraceFormat {
  if (text !== 'lackey' && text !== 'bin') throw usageError(`${where} '${text}' is not lackey or bin`);
  return text;
}

/** Bytes read from the file per read(2): the reader's whole buffer, whatever the trace's size. */
export const TRACE_READ_BYTES = 1 << 20;

export interface TraceReadOptions {
  /** The name errors use (default: the file's base name). */
  readonly name?: string;
  /** Read buffer size (tests use tiny ones to split lines across reads). */
  readonly readBytes?: number;
  /** Records per chunk handed to the sink. */
  readonly chunkRecords?: number;
}

/**
 * Stream a trace file through `sink` in record chunks, reading it with one fixed buffer: memory
 * does not grow with the trace. A malformed line or record throws a parse PteError naming the file
 * and the line (lackey) or byte offset (bin); an unreadable file an io PteError.
 */
export function readTraceFile(path: string, format: TraceFormat, sink: RecordSink, o: TraceReadOptions = {}): void {
  const name = o.name ?? basename(path);
  const reader =
    format === 'lackey' ? new LackeyParser(sink, name, o.chunkRecords) : new BinTraceReader(sink, name, o.chunkRecords);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw ioError(path, e);
  }
  try {
    const buf = new Uint8Array(o.readBytes ?? TRACE_READ_BYTES);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        throw ioError(path, e);
      }
      if (n === 0) break;
      reader.push(buf, 0, n);
    }
    reader.end();
  } finally {
    closeSync(fd);
  }
}

function ioError(path: string, e: unknown): PteError {
  const code = (e as { code?: unknown } | null)?.code;
  return new PteError('io', `cannot read trace ${path}: ${typeof code === 'string' ? code : 'read failed'}`);
}
