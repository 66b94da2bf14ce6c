import { configError, parseSize } from '@pte/core';
import { parseChoice } from './choice.js';

/**
 * The policy keys every scenario takes (SCENARIOS.md): `fault_around`, `prefault_pte` and
 * `anon_prefault`. These parsers only check the syntax; the kernel profile supplies the defaults
 * and `@pte/vm` gives the values their meaning.
 */

/** Largest fault-around window: one page-table page, PTRS_PER_PTE = 512 entries. */
export const MAX_FAULT_AROUND_PAGES = 512;

/**
 * `fault_around=<pages>`: the mm/memory.c fault_around_bytes window in pages, a power of two from
 * 1 (no fault-around) to 512 (one whole PTE table). The default kernel value is 16 (64 KiB).
 */
export function parseFaultAround(text: string, where = '--set fault_around'): number {
  const s = text.trim();
  const n = /^[0-9]+$/.test(s) ? Number(s) : NaN;
  if (!(n >= 1 && n <= MAX_FAULT_AROUND_PAGES && (n & (n - 1)) === 0)) {
    throw configError(
      `${where}: '${text}' is not a power of two from 1 to 512`,
      'pages, e.g. 16 for 64KiB; 1 turns fault-around off',
    );
  }
  return n;
}

/** Whether prefaulted (fault-around) PTEs are installed with the Accessed bit set. */
export type PrefaultPte = 'young' | 'old';

/** `prefault_pte=young|old`. */
export function parsePrefaultPte(text: string, where = '--set prefault_pte'): PrefaultPte {
  return parseChoice(text, ['young', 'old'] as const, where);
}

/**
 * How an anonymous fault populates more than one PTE:
 * - `off`: one page per fault (order 0);
 * - `fixed`: Lameter-style prefault of `pages` pages per fault;
 * - `adaptive`: Lameter-style prefault whose order grows by one per correct (sequential)
 *   prediction, up to order `maxOrder` = 3 (8 pages);
 * - `mthp`: multi-size THP, allocating the largest enabled order that fits (`orders` sorted
 *   descending, order = log2(size / 4096): 8K = 1 ... 2M = 9).
 */
export type AnonPrefaultSpec =
  | { readonly kind: 'off' }
  | { readonly kind: 'fixed'; readonly pages: number }
  | { readonly kind: 'adaptive'; readonly maxOrder: number }
  | { readonly kind: 'mthp'; readonly orders: readonly number[] };

/** The mTHP sizes Linux offers for anonymous memory on x86-64 (order 1 to 9). */
const MTHP_SIZES = ['8K', '16K', '32K', '64K', '128K', '256K', '512K', '1M', '2M'] as const;
const ANON_GRAMMAR = 'off, fixed:<pages>, adaptive or mthp:<sizes>';

/**
 * `anon_prefault=off | fixed:<pages ≥ 1> | adaptive | mthp:<sizes>`, where sizes are taken from
 * 8K, 16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M (any spelling `parseSize` reads, e.g. 64KiB),
 * separated by '+' (comma-free, so it survives `--vary key=a,b`) or ','. Repeated sizes count once.
 */
export function parseAnonPrefault(text: string, where = '--set anon_prefault'): AnonPrefaultSpec {
  const s = text.trim();
  const bad = (what: string, hint?: string) => configError(`${where}: '${text}' ${what}`, hint);
  if (s === 'off') return { kind: 'off' };
  if (s === 'adaptive') return { kind: 'adaptive', maxOrder: 3 };
  if (s.startsWith('fixed:')) {
    const arg = s.slice('fixed:'.length);
    const n = /^[0-9]+$/.test(arg) ? Number(arg) : NaN;
    if (!(n >= 1 && Number.isSafeInteger(n))) throw bad('needs a whole number of pages ≥ 1: fixed:<pages>');
    return { kind: 'fixed', pages: n };
  }
  if (s.startsWith('mthp:')) {
    const items = s.slice('mthp:'.length).split(/[+,]/);
    const orders = new Set<number>();
    for (const raw of items) {
      const item = raw.trim();
      if (item === '')
        throw bad('needs sizes separated by + or ,', `e.g. mthp:2M+64K; sizes: ${MTHP_SIZES.join(', ')}`);
      const order = mthpOrder(item);
      if (order < 0) throw bad(`lists '${item}', which is not an mTHP size`, `sizes: ${MTHP_SIZES.join(', ')}`);
      orders.add(order);
    }
    return { kind: 'mthp', orders: [...orders].sort((x, y) => y - x) };
  }
  throw bad(`is not ${ANON_GRAMMAR}`);
}

/** The canonical text of an anon prefault spec (mTHP sizes joined by '+', largest first). */
export function formatAnonPrefault(spec: AnonPrefaultSpec): string {
  switch (spec.kind) {
    case 'off':
    case 'adaptive':
      return spec.kind;
    case 'fixed':
      return `fixed:${spec.pages}`;
    case 'mthp':
      return `mthp:${spec.orders.map((o) => MTHP_SIZES[o - 1]).join('+')}`;
  }
}

/** Order 1..9 of an mTHP size, or −1 when `item` is not one. */
function mthpOrder(item: string): number {
  let bytes: number;
  try {
    bytes = parseSize(item);
  } catch {
    return -1;
  }
  for (let order = 1; order <= MTHP_SIZES.length; order++) if (bytes === 4096 * 2 ** order) return order;
  return -1;
}
