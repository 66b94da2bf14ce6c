import { readFileSync } from 'node:fs';
import { configError } from '@pte/core';

/**
 * An access pattern over a region, as the `pattern=` key of SCENARIOS.md spells it:
 * `seq | reverse | stride:N | random:FRACTION | sparse:FRACTION | hotset:FRACTION:REPEATS | per2m`.
 * `AccessStream` turns a spec into page touches.
 */
export type PatternSpec =
  | { readonly kind: 'seq' }
  | { readonly kind: 'reverse' }
  | { readonly kind: 'stride'; readonly stride: number }
  | { readonly kind: 'random'; readonly fraction: number }
  | { readonly kind: 'sparse'; readonly fraction: number }
  | { readonly kind: 'hotset'; readonly fraction: number; readonly repeats: number }
  | { readonly kind: 'per2m' }
  /**
   * A given order: the page indices read from `file` (raw little-endian 32-bit words, as
   * apps/pte-lab/native/probe.c writes the order it touched), so the model touches exactly those pages.
   */
  | { readonly kind: 'order'; readonly file: string; readonly order: Uint32Array };

export type PatternKind = PatternSpec['kind'];

/** Largest stride or repeat count accepted: page indices are Uint32. */
const MAX_U32 = 0xffffffff;
const INT_RE = /^[0-9]+$/;
const FRACTION_RE = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?$/i;
const GRAMMAR =
  'one of seq, reverse, stride:N, random:FRACTION, sparse:FRACTION, hotset:FRACTION:REPEATS, per2m, order:FILE';

/**
 * Parse a pattern. Fractions are decimals in (0, 1]; stride and repeats are whole numbers from 1
 * to 2^32 − 1. Surrounding whitespace is ignored; names are lower case. A bad pattern is a config
 * PteError of one line naming `where` and the text, e.g. "pattern: 'stride:0' needs a stride ≥ 1".
 */
export function parsePattern(text: string, where = 'pattern'): PatternSpec {
  const trimmed = text.trim();
  if (trimmed.startsWith('order:')) return { kind: 'order', ...readOrder(trimmed.slice(6), where) };
  const parts = trimmed.split(':');
  const name = parts[0]!;
  const args = parts.length - 1;
  const bad = (what: string, hint?: string) => configError(`${where}: '${text}' ${what}`, hint);
  switch (name) {
    case 'seq':
    case 'reverse':
    case 'per2m':
      if (args !== 0) throw bad('takes no argument');
      return { kind: name };
    case 'stride':
      if (args !== 1) throw bad('needs one argument: stride:N');
      return { kind: 'stride', stride: wholeNumber(parts[1]!, 'a stride', 'a whole-number stride', bad) };
    case 'random':
    case 'sparse':
      if (args !== 1) throw bad(`needs one argument: ${name}:FRACTION`);
      return { kind: name, fraction: fraction(parts[1]!, bad) };
    case 'hotset':
      if (args !== 2) throw bad('needs two arguments: hotset:FRACTION:REPEATS');
      return {
        kind: 'hotset',
        fraction: fraction(parts[1]!, bad),
        repeats: wholeNumber(parts[2]!, 'repeats', 'a whole number of repeats', bad),
      };
    default:
      throw bad('is not a pattern', GRAMMAR);
  }
}

/** The canonical text of a spec; `parsePattern(formatPattern(s))` equals `s`. */
export function formatPattern(spec: PatternSpec): string {
  switch (spec.kind) {
    case 'seq':
    case 'reverse':
    case 'per2m':
      return spec.kind;
    case 'stride':
      return `stride:${spec.stride}`;
    case 'random':
    case 'sparse':
      return `${spec.kind}:${spec.fraction}`;
    case 'hotset':
      return `hotset:${spec.fraction}:${spec.repeats}`;
    case 'order':
      return `order:${spec.file}`;
  }
}

/** The page order of an `order:FILE` pattern: the file's little-endian 32-bit words. */
function readOrder(file: string, where: string): { file: string; order: Uint32Array } {
  if (file === '') throw configError(`${where}: 'order:' needs a file of page indices`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw configError(
      `${where}: order:${file}: cannot read it${code === 'ENOENT' ? ': no such file' : code ? ` (${code})` : ''}`,
    );
  }
  if (bytes.length % 4 !== 0)
    throw configError(`${where}: order:${file}: ${bytes.length} bytes is not a whole number of 32-bit page indices`);
  const order = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < order.length; i++) order[i] = bytes.readUInt32LE(4 * i);
  return { file, order };
}

function wholeNumber(s: string, noun: string, wholeNoun: string, bad: (what: string) => Error): number {
  if (!INT_RE.test(s)) throw bad(`needs ${wholeNoun} ≥ 1`);
  const n = Number(s);
  if (n < 1) throw bad(`needs ${noun} ≥ 1`);
  if (n > MAX_U32) throw bad(`needs ${noun} below 2^32`);
  return n;
}

function fraction(s: string, bad: (what: string) => Error): number {
  const f = FRACTION_RE.test(s) ? Number(s) : NaN;
  if (!(f > 0 && f <= 1)) throw bad('needs a fraction in (0, 1]');
  return f;
}
