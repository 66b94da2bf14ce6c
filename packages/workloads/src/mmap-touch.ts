import { configError, parseCount, parseSize } from '@pte/core';
import { parseChoice } from './choice.js';
import { parsePattern, type PatternSpec } from './pattern.js';
import {
  parseAnonPrefault,
  parseFaultAround,
  parsePrefaultPte,
  type AnonPrefaultSpec,
  type PrefaultPte,
} from './policy-keys.js';

/** Bytes in a base page. */
const PAGE_SIZE = 4096;

export type Backing = 'file' | 'anon';
export type Share = 'shared' | 'private';
/** How the file got into the page cache before the touches (`warm` is read as `written`). */
export type CacheState = 'cold' | 'written' | 'readback';
/** madvise() advice applied to the mapping before the touches. */
export type Advice = 'normal' | 'random' | 'sequential' | 'willneed' | 'hugepage';
export type AccessKind = 'read' | 'write';

/** The parameters of `micro/mmap-touch` (SCENARIOS.md), defaults filled in. */
export interface MmapTouchParams {
  readonly backing: Backing;
  readonly share: Share;
  /** Region size in bytes, a positive multiple of 4096. */
  readonly size: number;
  /** size / 4096. */
  readonly pages: number;
  readonly cache: CacheState;
  /** The write()/read() size in bytes that filled the page cache; 0 when cache=cold. */
  readonly ioChunk: number;
  /** The backing device's readahead in KiB. */
  readonly readAheadKb: number;
  readonly advice: Advice;
  readonly pattern: PatternSpec;
  readonly access: AccessKind;
  /** Accesses per page touch (≥ 1). */
  readonly runs: number;
  /** Times the whole pattern is touched (≥ 1); passes after the first find the pages mapped (TLB misses, not faults). */
  readonly passes: number;
  /** Fork after the touches: a child that exits at once (copy_page_range, then the child's zap). */
  readonly fork: boolean;
  /** How the mapping goes at the end: with the process (exit_mmap), or by munmap(2) first. */
  readonly teardown: 'exit' | 'munmap';
  /** Policy keys: undefined when not set, so the kernel profile's default applies. */
  readonly faultAround: number | undefined;
  readonly prefaultPte: PrefaultPte | undefined;
  readonly anonPrefault: AnonPrefaultSpec | undefined;
}

/** Every `--set` key of micro/mmap-touch, with a one-line description and its default. */
export const MMAP_TOUCH_KEYS: Readonly<Record<string, string>> = Object.freeze({
  backing: 'file | anon: what the mapping is backed by (default file)',
  share: 'shared | private: MAP_SHARED or MAP_PRIVATE (default private)',
  size: 'region size with unit, a multiple of 4KiB (default 64MiB)',
  cache: 'cold | written | readback (warm = written): how the file got into the page cache (default written)',
  io_chunk:
    'write()/read() size that filled the cache, a multiple of 4KiB (default 1MiB for written, 128KiB for readback; ignored for cold)',
  read_ahead_kb: "the backing device's readahead in KiB (default 128)",
  advice: 'normal | random | sequential | willneed | hugepage: madvise() on the mapping (default normal)',
  pattern:
    'seq | reverse | stride:N | random:FRACTION | sparse:FRACTION | hotset:FRACTION:REPEATS | per2m | order:FILE (little-endian 32-bit page indices, e.g. the order_out of apps/pte-lab/native/probe.c): page touch order (default seq)',
  access: 'read | write: the kind of each access (default read)',
  runs: 'accesses per page touch, ≥ 1 (default 1)',
  passes:
    'times the whole pattern is touched, ≥ 1; passes after the first are timed apart (phase mmap_touch.retouch: TLB misses, no faults) (default 1)',
  teardown:
    'exit | munmap: the mapping goes with the process (exit_mmap: no TLB flush) or by munmap(2) first (the zap, the TLB flush of the range, the page tables), as the real-kernel probe times it (default exit)',
  fork: "on | off: after the touches, fork a child that exits at once (phase mmap_touch.fork: copy_page_range and the child's zap) (default off)",
  fault_around: 'fault-around window in pages, a power of two from 1 to 512 (default from the kernel profile)',
  prefault_pte: 'young | old: Accessed bit of prefaulted PTEs (default from the kernel profile)',
  anon_prefault:
    'off | fixed:<pages> | adaptive | mthp:<sizes joined by +>: anonymous prefault (default from the kernel profile)',
});

/** The keys of `MMAP_TOUCH_KEYS`, for the caller that rejects unknown keys. */
export const KNOWN_MMAP_TOUCH_KEYS: readonly string[] = Object.freeze(Object.keys(MMAP_TOUCH_KEYS));

const DEFAULT_IO_CHUNK: Readonly<Record<CacheState, number>> = { cold: 0, written: 1024 * 1024, readback: 128 * 1024 };

/**
 * Read micro/mmap-touch's parameters from `--set` strings, filling defaults. Keys it does not
 * know are ignored (the caller merges several key sets and rejects the rest). A bad value is a
 * one-line PteError naming the key, e.g. "--set size: '12Q' is not a size (use bytes or a unit:
 * ...)". `io_chunk` is checked even with cache=cold, where it is then ignored (ioChunk = 0).
 */
export function parseMmapTouch(set: Readonly<Record<string, string>>): MmapTouchParams {
  const get = (key: string): string | undefined => (Object.hasOwn(set, key) ? set[key] : undefined);
  const where = (key: string) => `--set ${key}`;
  const choice = <T extends string>(key: string, choices: readonly T[], dflt: T): T => {
    const text = get(key);
    return text === undefined ? dflt : parseChoice(text, choices, where(key));
  };

  const backing = choice<Backing>('backing', ['file', 'anon'], 'file');
  const share = choice<Share>('share', ['shared', 'private'], 'private');
  const sizeText = get('size');
  const size = sizeText === undefined ? 64 * 1024 * 1024 : pageMultiple(sizeText, where('size'));
  if (size / PAGE_SIZE > 0xffffffff) {
    throw configError(`${where('size')}: '${sizeText}' is too large: a region holds at most 2^32 − 1 pages`);
  }
  const cacheWord = choice<CacheState | 'warm'>('cache', ['cold', 'written', 'readback', 'warm'], 'written');
  const cache: CacheState = cacheWord === 'warm' ? 'written' : cacheWord;
  const ioChunkText = get('io_chunk');
  const ioChunkSet = ioChunkText === undefined ? undefined : pageMultiple(ioChunkText, where('io_chunk'));
  const ioChunk = cache === 'cold' ? 0 : (ioChunkSet ?? DEFAULT_IO_CHUNK[cache]);
  const raText = get('read_ahead_kb');
  const readAheadKb = raText === undefined ? 128 : parseCount(raText, where('read_ahead_kb'));
  const advice = choice<Advice>('advice', ['normal', 'random', 'sequential', 'willneed', 'hugepage'], 'normal');
  const patternText = get('pattern');
  const pattern: PatternSpec =
    patternText === undefined ? { kind: 'seq' } : parsePattern(patternText, where('pattern'));
  const access = choice<AccessKind>('access', ['read', 'write'], 'read');
  const runsText = get('runs');
  const runs = runsText === undefined ? 1 : parseCount(runsText, where('runs'));
  if (runs < 1) throw configError(`${where('runs')}: '${runsText}' must be at least 1`);
  const passesText = get('passes');
  const passes = passesText === undefined ? 1 : parseCount(passesText, where('passes'));
  if (passes < 1 || passes > 1000) throw configError(`${where('passes')}: '${passesText}' must be from 1 to 1000`);
  const fork = choice<'on' | 'off'>('fork', ['on', 'off'], 'off') === 'on';
  const teardown = choice<'exit' | 'munmap'>('teardown', ['exit', 'munmap'], 'exit');

  const fa = get('fault_around');
  const pp = get('prefault_pte');
  const ap = get('anon_prefault');
  return {
    backing,
    share,
    size,
    pages: size / PAGE_SIZE,
    cache,
    ioChunk,
    readAheadKb,
    advice,
    pattern,
    access,
    runs,
    passes,
    fork,
    teardown,
    faultAround: fa === undefined ? undefined : parseFaultAround(fa, where('fault_around')),
    prefaultPte: pp === undefined ? undefined : parsePrefaultPte(pp, where('prefault_pte')),
    anonPrefault: ap === undefined ? undefined : parseAnonPrefault(ap, where('anon_prefault')),
  };
}

/** A size (any `parseSize` spelling) that is a positive multiple of 4096 bytes. */
function pageMultiple(text: string, where: string): number {
  const bytes = parseSize(text, where);
  if (bytes <= 0 || bytes % PAGE_SIZE !== 0)
    throw configError(`${where}: '${text}' is not a positive multiple of 4KiB`);
  return bytes;
}
