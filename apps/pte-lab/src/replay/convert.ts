import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PteError } from '@pte/core';
import { BinTraceWriter, readTraceFile, type TraceFormat } from '@pte/machine';

export interface ConvertSummary {
  readonly records: number;
  readonly bytes: number;
}

/**
 * Convert a trace to the binary format, streaming: records go from the reader's chunks straight
 * into the writer's 64 KiB blocks and to a temporary file beside `out`, renamed over `out` only
 * when the whole input converted; on any error the temporary file is removed and `out` untouched.
 */
export function convertTrace(input: string, from: TraceFormat, out: string): ConvertSummary {
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw ioError(out, e);
  }
  let bytes = 0;
  let ok = false;
  try {
    const w = new BinTraceWriter((b) => {
      try {
        let off = 0;
        while (off < b.length) off += writeSync(fd, b, off, b.length - off);
      } catch (e) {
        throw ioError(out, e);
      }
      bytes += b.length;
    });
    readTraceFile(input, from, w.write);
    w.end();
    closeSync(fd);
    renameSync(tmp, out);
    ok = true;
    return { records: w.records, bytes };
  } finally {
    if (!ok) {
      try {
        closeSync(fd);
      } catch {
        /* already closed */
      }
      try {
        unlinkSync(tmp);
      } catch {
        /* nothing to clean */
      }
    }
  }
}

function ioError(out: string, e: unknown): PteError {
  const code = (e as { code?: unknown } | null)?.code;
  return new PteError('io', `cannot write --out ${out}: ${typeof code === 'string' ? code : 'write failed'}`);
}
