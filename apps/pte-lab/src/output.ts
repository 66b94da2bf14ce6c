import { accessSync, constants, existsSync, renameSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import { dirname, basename, join, resolve } from 'node:path';
import { PteError, usageError } from '@pte/core';
import { type RunResult } from '@pte/machine';
import { formatNumber, formatTable } from './table.js';

export type Format = 'table' | 'json' | 'csv';

export function parseFormat(text: string): Format {
  if (text !== 'table' && text !== 'json' && text !== 'csv')
    throw usageError(`--format '${text}' is not table, json or csv`);
  return text;
}

/** Value at a dotted path such as `counters.faults.minor` (counter names contain dots). */
export function valueAt(r: RunResult, path: string): number | string | undefined {
  const [section, ...rest] = path.split('.');
  const key = rest.join('.');
  const obj = (r as unknown as Record<string, unknown>)[section!];
  if (obj === undefined || obj === null) return undefined;
  if (key === '') return obj as number | string;
  const rec = obj as Record<string, unknown>;
  if (key in rec) return rec[key] as number | string;
  // nested (cycles.by_category.x)
  const [sub, ...tail] = rest;
  const inner = rec[sub!] as Record<string, unknown> | undefined;
  return inner === undefined ? undefined : (inner[tail.join('.')] as number | string);
}

/** A scenario result as the terminal table: the scenario's rows, then cycles by category. */
export function formatRunTable(r: RunResult, rows: ReadonlyArray<readonly [string, string]>): string {
  const head =
    `${r.scenario}  platform=${r.platform}  profile=${r.profile}  seed=${r.seed}\n` +
    `params: ${Object.entries(r.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}\n\n`;
  const main = formatTable(
    ['metric', 'value'],
    rows.map(([label, path]) => {
      const v = valueAt(r, path);
      return [label, typeof v === 'number' ? formatNumber(v) : String(v ?? 0)];
    }),
  );
  const total = r.cycles.total;
  const cats = Object.entries(r.cycles.by_category)
    .filter(([, v]) => v !== 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => [k, v, total > 0 ? `${((100 * v) / total).toFixed(1)}%` : '-']);
  const byCat = formatTable(['cycles by category', 'cycles', 'share'], cats as Array<[string, number, string]>);
  return `${head}${main}\n${byCat}\nregenerate: ${r.command}\n`;
}

/** Flatten a result to `section.key` columns (params, counters, cycles, memory, derived). */
export function flattenResult(r: RunResult): Record<string, string | number> {
  const out: Record<string, string | number> = {
    scenario: r.scenario,
    platform: r.platform,
    profile: r.profile,
    seed: r.seed,
  };
  for (const [k, v] of Object.entries(r.params)) out[`params.${k}`] = v;
  for (const [k, v] of Object.entries(r.counters)) out[`counters.${k}`] = v;
  out['cycles.total'] = r.cycles.total;
  for (const [k, v] of Object.entries(r.cycles.by_category)) out[`cycles.by_category.${k}`] = v;
  out['memory.rss_pages'] = r.memory.rss_pages;
  out['memory.peak_rss_pages'] = r.memory.peak_rss_pages;
  for (const [k, v] of Object.entries(r.derived)) out[`derived.${k}`] = v;
  return out;
}

/** CSV with one header line and one row per result (the union of columns, in first-seen order). */
export function formatCsv(results: readonly RunResult[]): string {
  const rows = results.map(flattenResult);
  const cols: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) for (const c of Object.keys(row)) if (!seen.has(c)) (seen.add(c), cols.push(c));
  const cell = (v: string | number | undefined) => {
    if (v === undefined) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(','), ...rows.map((row) => cols.map((c) => cell(row[c])).join(','))].join('\n') + '\n';
}

/** One RunResult in `format`: the table with `rows`, the JSON document, or CSV (header + row). */
export function formatRunResult(r: RunResult, format: Format, rows: ReadonlyArray<readonly [string, string]>): string {
  if (format === 'json') return JSON.stringify(r, null, 2) + '\n';
  return format === 'csv' ? formatCsv([r]) : formatRunTable(r, rows);
}

/** Print `text`, or write it atomically to `out` when given (--out). */
export function emit(io: { out(text: string): void }, text: string, out: string | undefined): void {
  if (out !== undefined) writeOutput(out, text);
  else io.out(text);
}

/**
 * Write `text` to `file` atomically: a temporary file beside it, then a rename, so an error
 * never leaves a half-written output.
 */
export function writeOutput(file: string, text: string, flag = '--out'): void {
  writeOutputs([{ file, text, flag }]);
}

/**
 * Check, before any work, that the files a command will write can be written: each names a file
 * (not a directory, nor a file the command writes twice) in an existing directory this process
 * may write to, and an existing file there is a regular one it may replace. One line naming the
 * flag otherwise.
 */
export function checkOutputs(files: readonly { file: string; flag: string }[]): void {
  const seen = new Map<string, string>();
  for (const { file, flag } of files) {
    const full = resolve(file);
    const other = seen.get(full);
    if (other !== undefined) throw new PteError('io', `${flag} ${file}: ${other} writes the same file`);
    seen.set(full, flag);
    const dir = dirname(full);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new PteError('io', `cannot write ${flag} ${file}: no directory ${dir}`);
    if (existsSync(full) && !statSync(full).isFile())
      throw new PteError('io', `cannot write ${flag} ${file}: it is a directory or not a regular file`);
    try {
      accessSync(dir, constants.W_OK);
      if (existsSync(full)) accessSync(full, constants.W_OK);
    } catch {
      throw new PteError('io', `cannot write ${flag} ${file}: permission denied`);
    }
  }
}

/**
 * Write several files as one: each goes to a temporary file beside it first, and only when every
 * one is written are they renamed into place. A failure leaves none of them and names the option
 * (`--out`, `--findings`) whose file could not be written.
 */
export function writeOutputs(files: readonly { file: string; text: string; flag: string }[]): void {
  checkOutputs(files);
  const tmps: string[] = [];
  const clean = () => {
    for (const t of tmps) {
      try {
        unlinkSync(t);
      } catch {
        /* nothing to clean */
      }
    }
  };
  const reasonOf = (e: unknown) => {
    const code = (e as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : 'write failed';
  };
  for (const { file, text, flag } of files) {
    const tmp = join(dirname(resolve(file)), `.${basename(file)}.${process.pid}.tmp`);
    try {
      tmps.push(tmp);
      writeFileSync(tmp, text);
    } catch (e) {
      clean();
      throw new PteError('io', `cannot write ${flag} ${file}: ${reasonOf(e)}`);
    }
  }
  for (let i = 0; i < files.length; i++) {
    try {
      renameSync(tmps[i]!, files[i]!.file);
    } catch (e) {
      clean(); // what is renamed already stays: each is whole
      throw new PteError('io', `cannot write ${files[i]!.flag} ${files[i]!.file}: ${reasonOf(e)}`);
    }
  }
}
