import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { PteError } from '@pte/core';
import { type RunResult } from '@pte/machine';

/**
 * The journal of a sweep with --out: one JSON line per finished point, `{"point": <key>, "result":
 * <RunResult>}`, appended as points complete, so an interrupted sweep keeps them for --resume.
 */
export function journalPath(out: string): string {
  return `${out}.partial.jsonl`;
}

interface Entry {
  readonly point: string;
  readonly result: RunResult;
}

/** The finished points of a journal by key; a torn last line (an interrupted write) is skipped. */
export function readJournal(file: string): Map<string, RunResult> {
  const done = new Map<string, RunResult>();
  if (!existsSync(file)) return done;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError(`cannot read journal ${file}`, e);
  }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let entry: Entry;
    try {
      entry = JSON.parse(line) as Entry;
    } catch {
      continue;
    }
    if (typeof entry?.point === 'string' && typeof entry.result === 'object' && entry.result !== null)
      done.set(entry.point, entry.result);
  }
  return done;
}

function ioError(what: string, e: unknown): PteError {
  const code = (e as { code?: unknown } | null)?.code;
  return new PteError('io', `${what}: ${typeof code === 'string' ? code : 'failed'}`);
}

/** An open journal: starts with `keep` (atomically rewritten), then appends each finished point. */
export class Journal {
  private fd: number | undefined;

  constructor(
    readonly file: string,
    keep: ReadonlyArray<readonly [string, RunResult]>,
  ) {
    const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
    try {
      writeFileSync(tmp, keep.map(([point, result]) => line(point, result)).join(''));
      renameSync(tmp, file);
      this.fd = openSync(file, 'a');
    } catch (e) {
      throw ioError(`cannot write journal ${file}`, e);
    }
  }

  append(point: string, result: RunResult): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, line(point, result));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Close and delete (the sweep's output is written). */
  remove(): void {
    this.close();
    try {
      unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }
}

function line(point: string, result: RunResult): string {
  return JSON.stringify({ point, result }) + '\n';
}
