import { Prng, configError } from '@pte/core';
import type { PatternSpec } from './pattern.js';

/** Pages of 4 KiB in one 2 MiB PMD-sized block. */
export const PAGES_PER_2M = 512;

const K_SEQ = 0;
const K_REVERSE = 1;
const K_STRIDE = 2; // stride:N and per2m (stride 512)
const K_SAMPLE = 3; // random:F (one pass) and hotset:F:R (R passes)
const K_SPARSE = 4; // sparse:F
const K_ORDER = 5; // order:FILE (a given order)

/**
 * The page touches of a pattern over a region of `pages` pages, produced in chunks: `fill(out)`
 * writes the next page indices (0..pages−1, relative to the region) into `out` and returns how
 * many it wrote, 0 once the stream is finished (or when `out` is empty). No allocation per touch.
 *
 * - `seq`: 0, 1, ..., pages−1. `reverse`: pages−1 down to 0. Total `pages`.
 * - `stride:N`: 0, N, 2N, ... while < pages. Total ⌈pages/N⌉.
 * - `per2m`: one touch per 2 MiB: 0, 512, 1024, ... while < pages. Total ⌈pages/512⌉.
 * - `random:F`: k = max(1, round(F·pages)) distinct pages chosen uniformly, in random order — a
 *   partial Fisher–Yates shuffle run lazily as the chunks are filled. Total k.
 * - `sparse:F`: k = max(1, round(F·pages)) distinct pages chosen uniformly, touched in ascending
 *   address order (selection sampling, Knuth's Algorithm S: streamed, no array). Total k.
 * - `hotset:F:R`: a hot set of k = max(1, round(F·pages)) distinct uniformly chosen pages, touched
 *   in R passes, each pass in a fresh random order. The first pass is the partial Fisher–Yates
 *   that picks the set (so it both chooses the set and orders it); later passes reshuffle the set
 *   in place. Total k·R.
 * A region of 0 pages yields no touches for any pattern.
 *
 * Memory: `seq`, `reverse`, `stride` and `per2m` are counters and allocate nothing that grows
 * with the region, so a 64 GiB region (16M pages) costs nothing. `random` and `hotset` allocate
 * one `Uint32Array(pages)` (4 bytes per page of the region) on the first `fill`; it stores
 * index + 1 with 0 meaning "untouched, holds its own index", so it starts zeroed and only the
 * slots the shuffle visits are written.
 *
 * Randomness: the constructor draws exactly two numbers from `prng` whatever the pattern (so
 * another consumer of the same `prng` sees the same numbers for every pattern) and seeds the
 * stream's own generator with them. `reset()` rewinds to the first touch and the stream then
 * replays exactly the same touches.
 */
export class AccessStream {
  readonly spec: PatternSpec;
  readonly pages: number;
  private readonly kind: number;
  private readonly step: number;
  private readonly hot: number;
  private readonly count: number;
  private readonly seed: number;
  private prng: Prng;
  private perm: Uint32Array | null = null;
  /** K_ORDER: the given order. */
  private readonly order: Uint32Array | null = null;
  private emitted = 0;
  /** K_SAMPLE: position within the current pass, and the pass number. */
  private pos = 0;
  private pass = 0;
  /** K_SPARSE: next candidate page. */
  private cursor = 0;

  constructor(spec: PatternSpec, pages: number, prng: Prng) {
    if (!Number.isInteger(pages) || pages < 0 || pages > 0xffffffff) {
      throw configError(`access stream: ${pages} is not a page count from 0 to 2^32 − 1`);
    }
    this.spec = spec;
    this.pages = pages;
    const lo = prng.nextU32();
    const hi = prng.nextU32() & 0x1fffff;
    this.seed = hi * 0x100000000 + lo;
    this.prng = new Prng(this.seed, 'access-stream');
    let kind = K_SEQ;
    let step = 1;
    let hot = 0;
    let count = pages;
    switch (spec.kind) {
      case 'seq':
        break;
      case 'reverse':
        kind = K_REVERSE;
        break;
      case 'stride':
      case 'per2m':
        kind = K_STRIDE;
        step = spec.kind === 'stride' ? spec.stride : PAGES_PER_2M;
        count = Math.ceil(pages / step);
        break;
      case 'sparse':
        kind = K_SPARSE;
        count = pages === 0 ? 0 : Math.max(1, Math.min(pages, Math.round(spec.fraction * pages)));
        break;
      case 'order': {
        kind = K_ORDER;
        count = spec.order.length;
        this.order = spec.order;
        const bad = spec.order.findIndex((v) => v >= pages);
        if (bad >= 0)
          throw configError(
            `pattern order:${spec.file}: page ${spec.order[bad]} (entry ${bad}) is outside the region of ${pages} pages`,
          );
        break;
      }
      case 'random':
      case 'hotset': {
        kind = K_SAMPLE;
        const repeats = spec.kind === 'hotset' ? spec.repeats : 1;
        hot = pages === 0 ? 0 : Math.max(1, Math.min(pages, Math.round(spec.fraction * pages)));
        count = hot * repeats;
        if (!Number.isSafeInteger(count)) {
          throw configError(`access stream: ${hot} hot pages × ${repeats} repeats is more than 2^53 touches`);
        }
        break;
      }
    }
    this.kind = kind;
    this.step = step;
    this.hot = hot;
    this.count = count;
  }

  /** The exact number of touches the whole stream produces. */
  get total(): number {
    return this.count;
  }

  /** Touches produced so far. */
  get produced(): number {
    return this.emitted;
  }

  /** Write up to `out.length` next page indices into `out`; returns how many (0 when finished). */
  fill(out: Uint32Array): number {
    const n = Math.min(out.length, this.count - this.emitted);
    if (n <= 0) return 0;
    switch (this.kind) {
      case K_SEQ: {
        const base = this.emitted;
        for (let i = 0; i < n; i++) out[i] = base + i;
        break;
      }
      case K_REVERSE: {
        const base = this.pages - 1 - this.emitted;
        for (let i = 0; i < n; i++) out[i] = base - i;
        break;
      }
      case K_STRIDE: {
        const step = this.step;
        let page = this.emitted * step;
        for (let i = 0; i < n; i++) {
          out[i] = page;
          page += step;
        }
        break;
      }
      case K_SPARSE:
        this.fillSparse(out, n);
        break;
      case K_ORDER:
        out.set(this.order!.subarray(this.emitted, this.emitted + n));
        break;
      default:
        this.fillSample(out, n);
    }
    this.emitted += n;
    return n;
  }

  /** Rewind to the first touch; the same touches follow again. O(pages) for random and hotset. */
  reset(): void {
    this.emitted = 0;
    this.pos = 0;
    this.pass = 0;
    this.cursor = 0;
    this.prng = new Prng(this.seed, 'access-stream');
    this.perm?.fill(0);
  }

  /** Selection sampling: page c is taken with probability (still needed) / (pages left). */
  private fillSparse(out: Uint32Array, n: number): void {
    const prng = this.prng;
    const pages = this.pages;
    let c = this.cursor;
    let needed = this.count - this.emitted;
    for (let i = 0; i < n; c++) {
      if (prng.nextInt(pages - c) < needed) {
        out[i++] = c;
        needed--;
      }
    }
    this.cursor = c;
  }

  /** Lazy Fisher–Yates: pass 0 draws from all pages (choosing the set), later passes from the set. */
  private fillSample(out: Uint32Array, n: number): void {
    const a = (this.perm ??= new Uint32Array(this.pages));
    const prng = this.prng;
    const hot = this.hot;
    let pos = this.pos;
    let pass = this.pass;
    let range = pass === 0 ? this.pages : hot;
    for (let i = 0; i < n; i++) {
      if (pos === hot) {
        pos = 0;
        pass++;
        range = hot;
      }
      const j = pos + prng.nextInt(range - pos);
      const vi = a[pos]!;
      const vj = a[j]!;
      const pj = vj === 0 ? j : vj - 1;
      a[j] = vi === 0 ? pos + 1 : vi;
      a[pos] = pj + 1;
      out[i] = pj;
      pos++;
    }
    this.pos = pos;
    this.pass = pass;
  }
}
