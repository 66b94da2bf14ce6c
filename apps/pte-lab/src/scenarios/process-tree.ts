import { configError, formatSize, parseCount, parseSize, Prng } from '@pte/core';
import { type Machine, PGD_PIN_PHASE, type Inode, type Task, VM_EXEC, VM_READ, VM_WRITE } from '@pte/machine';
import type { ChartSpec } from './scenario.js';

/**
 * The process-tree engine behind thread/forky-build and unixbench/exec-shell: a parent (make, a
 * shell) forks children one after another; each child execs a program, maps its image and shared
 * libraries from the page cache, touches a sparse subset of their text in clusters of nearby pages,
 * writes its data segments and an anonymous heap, and exits while the parent waits
 * (kernel/fork.c dup_mmap, fs/exec.c exec_mmap, kernel/exit.c exit_mmap → zap_pte_range).
 */

/** An executable or shared library: text mapped r-x and data mapped rw private, from one cached file. */
export interface ImageSpec {
  /** File name; the same name in parent and child is the same inode (one libc in the page cache). */
  readonly name: string;
  readonly textPages: number;
  readonly dataPages: number;
  /** Text pages touched per run (instruction fetches), in clusters; the data pages are all written. */
  readonly touchPages: number;
}

export interface ProcessSpec {
  readonly images: readonly ImageSpec[];
  /** Anonymous heap pages written. */
  readonly heapPages: number;
}

export interface TreeSpec {
  readonly parent: ProcessSpec;
  readonly child: ProcessSpec;
  readonly children: number;
  /** Pages per cluster of text touches. */
  readonly cluster: number;
  /** Stream name of the scenario's PRNG (the run's seed decides the touched pages). */
  readonly stream: string;
}

/** Cycles of the measured part, by phase; they add up to RunResult.cycles.total. */
export interface TreeCycles {
  /** The children's page touches: faults, fault-around, PTE writes and their hypercalls or exits, walks. */
  fault: number;
  /** fork() minus its pin: dup_mmap copying the parent's anonymous PTEs (COW write-protect included). */
  fork_copy: number;
  /** exec()'s teardown of the forked copy and the child's exit(): zap_pte_range, page and table frees, TLB flush. */
  zap_exit: number;
  /** Inside pgd_pin / pgd_unpin (Xen PV: xen_pgd_pin at fork and exec, xen_pgd_unpin at exit_mmap; 0 elsewhere). */
  pin_unpin: number;
  /** mmap() calls and the parent's switch back after each child. */
  other: number;
}

export interface TreeOutcome {
  readonly cycles: TreeCycles;
  /** Distinct pages the children touched (text, data and heap), summed over children. */
  readonly touchedPages: number;
}

/** Run `fn` in a cycle bucket's ledger phase (its pgd_pin / pgd_unpin cycles go to pin_unpin) and return its value. */
const TREE_BUCKETS = ['fault', 'fork_copy', 'zap_exit', 'pin_unpin', 'other'] as const;

type Phase = <T>(bucket: keyof TreeCycles, fn: () => T) => T;

/** File pages of an image (text then data). */
function imagePages(i: ImageSpec): number {
  return i.textPages + i.dataPages;
}

/** Bytes of page cache the spec's files take. */
export function treeFileBytes(spec: TreeSpec): number {
  const files = new Map<string, number>();
  for (const i of [...spec.parent.images, ...spec.child.images])
    files.set(i.name, Math.max(files.get(i.name) ?? 0, imagePages(i)));
  return [...files.values()].reduce((a, b) => a + b, 0) * 4096;
}

/** Guest memory for a tree: the cached files, one parent and one child, tables and slack. */
export function memForTree(spec: TreeSpec): number {
  const anon = (spec.parent.heapPages + spec.child.heapPages) * 4096;
  return Math.max(256 * 2 ** 20, 2 * treeFileBytes(spec) + 2 * anon + 128 * 2 ** 20);
}

/**
 * Run the tree on `m`: cache the files in order-0 pages (so the fault-around window alone decides
 * how many PTEs one fault maps), start the parent and let it touch its own image and heap (setup,
 * not measured), then measure `children` × (fork, exec, map, touch, exit). The parent stays: its
 * setup's PTEs are not the children's, so every counter of the result is the children's work.
 */
export function runTree(m: Machine, spec: TreeSpec): TreeOutcome {
  const files = new Map<string, Inode>();
  for (const i of [...spec.parent.images, ...spec.child.images]) {
    if (files.has(i.name)) continue;
    const f = m.createFile(i.name, imagePages(i) * 4096);
    m.writeFile(f, 256, 0);
    files.set(i.name, f);
  }
  const prng = new Prng(m.opts.seed, spec.stream);
  const parent = m.spawn();
  mapAndTouch(m, parent, spec.parent, files, prng, spec.cluster, null);
  m.verify('after parent setup');

  // Cycles by ledger phase: each step opens its bucket's phase; the pvops backend charges
  // pgd_pin / pgd_unpin to PGD_PIN_PHASE inside it.
  const ledger = m.ledger;
  const ids = {
    fault: ledger.definePhase('tree.fault'),
    fork_copy: ledger.definePhase('tree.fork_copy'),
    zap_exit: ledger.definePhase('tree.zap_exit'),
    pin_unpin: ledger.definePhase(PGD_PIN_PHASE),
    other: ledger.definePhase('tree.other'),
  };
  const base = { fault: 0, fork_copy: 0, zap_exit: 0, pin_unpin: 0, other: 0 };
  for (const b of TREE_BUCKETS) base[b] = ledger.phaseTotal(ids[b]);
  const phase: Phase = (bucket, fn) => ledger.inPhase(ids[bucket], fn);
  const cycles: TreeCycles = { fault: 0, fork_copy: 0, zap_exit: 0, pin_unpin: 0, other: 0 };
  let touchedPages = 0;
  try {
    m.startMeasurement();
    for (let n = 0; n < spec.children; n++) {
      phase('other', () => m.switchTo(parent));
      const c = phase('fork_copy', () => m.fork(parent));
      m.verify(`after fork #${n + 1}`);
      phase('zap_exit', () => m.exec(c));
      m.verify(`after exec #${n + 1}`);
      touchedPages += mapAndTouch(m, c, spec.child, files, prng, spec.cluster, phase);
      phase('zap_exit', () => {
        m.noteRss();
        m.exit(c);
      });
      m.verify(`after exit #${n + 1}`);
    }
  } finally {
    for (const b of TREE_BUCKETS) cycles[b] = ledger.phaseTotal(ids[b]) - base[b];
  }
  return { cycles, touchedPages };
}

/**
 * Map a process's images (text r-x from file page 0, data rw private after it) and heap, then
 * touch: each text in clusters of `cluster` pages at random places (in random order, each cluster
 * sequential, as code runs), every data page written (COW), the heap written in order. Returns the
 * distinct pages touched.
 */
function mapAndTouch(
  m: Machine,
  task: Task,
  p: ProcessSpec,
  files: ReadonlyMap<string, Inode>,
  prng: Prng,
  cluster: number,
  phase: Phase | null,
): number {
  const run: Phase = phase ?? ((_bucket, fn) => fn());
  let touched = 0;
  for (const img of p.images) {
    const file = files.get(img.name)!;
    const { text, data } = run('other', () => ({
      text: m.mmap(task, { pages: img.textPages, prot: VM_READ | VM_EXEC, shared: false, file }),
      data:
        img.dataPages > 0
          ? m.mmap(task, {
              pages: img.dataPages,
              prot: VM_READ | VM_WRITE,
              shared: false,
              file,
              pgoff: img.textPages,
            })
          : null,
    }));
    const pages = clusterPages(img.textPages, img.touchPages, cluster, prng);
    touched += pages.distinct;
    run('fault', () => {
      for (const [first, len] of pages.clusters)
        m.touch(task, { start: text.start + first, pages: len }, { kind: 'seq' }, 'fetch', 1);
      if (data !== null) m.touch(task, data, { kind: 'seq' }, 'write', 1);
    });
    touched += img.dataPages;
  }
  if (p.heapPages > 0) {
    const heap = run('other', () =>
      m.mmap(task, { pages: p.heapPages, prot: VM_READ | VM_WRITE, shared: false, file: null }),
    );
    run('fault', () => m.touch(task, heap, { kind: 'seq' }, 'write', 1));
    touched += p.heapPages;
  }
  return touched;
}

/**
 * About `want` pages of a region of `pages` in clusters of `cluster` nearby pages: ⌈want/cluster⌉
 * distinct slots of `cluster` pages chosen uniformly (partial Fisher–Yates, so in random order),
 * each cluster starting at a random offset inside its slot (clipped at the region's end; clusters
 * of neighbouring slots may overlap). Returns the clusters as [first page, length] and the distinct
 * pages they cover.
 */
export function clusterPages(
  pages: number,
  want: number,
  cluster: number,
  prng: Prng,
): { clusters: Array<readonly [number, number]>; distinct: number } {
  if (want <= 0 || pages <= 0) return { clusters: [], distinct: 0 };
  const slots = Math.ceil(pages / cluster);
  const k = Math.min(slots, Math.ceil(want / cluster));
  const perm = new Uint32Array(slots);
  for (let i = 0; i < slots; i++) perm[i] = i;
  const seen = new Uint8Array(pages);
  const clusters: Array<readonly [number, number]> = [];
  let distinct = 0;
  for (let i = 0; i < k; i++) {
    const j = i + prng.nextInt(slots - i);
    const s = perm[j]!;
    perm[j] = perm[i]!;
    perm[i] = s;
    const first = Math.min(s * cluster + prng.nextInt(cluster), pages - 1);
    const len = Math.min(cluster, pages - first);
    clusters.push([first, len]);
    for (let q = first; q < first + len; q++) if (seen[q] === 0) ((seen[q] = 1), distinct++);
  }
  return { clusters, distinct };
}

/** A whole-number key from `min` to `max` (default `def`). */
export function countKey(
  set: Readonly<Record<string, string>>,
  key: string,
  def: number,
  max: number,
  min = 1,
): number {
  if (set[key] === undefined) return def;
  const n = parseCount(set[key]!, `--set ${key}`);
  if (n < min || n > max) throw configError(`--set ${key}: ${n} is not from ${min} to ${max}`);
  return n;
}

/** A size key: a positive multiple of 4 KiB up to `max` bytes; returns pages. */
export function pagesKey(
  set: Readonly<Record<string, string>>,
  key: string,
  def: number,
  max: number,
  allowZero = false,
): number {
  if (set[key] === undefined) return def / 4096;
  const bytes = parseSize(set[key]!, `--set ${key}`);
  if ((bytes <= 0 && !(allowZero && bytes === 0)) || bytes % 4096 !== 0) {
    throw configError(
      `--set ${key}: '${set[key]}' is not a ${allowZero ? 'non-negative' : 'positive'} multiple of 4KiB`,
    );
  }
  if (bytes > max) throw configError(`--set ${key}: '${set[key]}' is more than ${formatSize(max)}`);
  return bytes / 4096;
}

/** A fraction key in (0, 1]. */
export function fractionKey(set: Readonly<Record<string, string>>, key: string, def: number): number {
  if (set[key] === undefined) return def;
  const t = set[key]!.trim();
  const f = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(t) ? Number(t) : NaN;
  if (!(f > 0 && f <= 1)) throw configError(`--set ${key}: '${set[key]}' is not a fraction in (0, 1]`);
  return f;
}

/** The cycle buckets as derived figures `cycles_<bucket>` and `cycles_<bucket>_per_<unit>`. */
export function cycleFigures(c: TreeCycles, per: number, unit: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [b, v] of Object.entries(c)) {
    out[`cycles_${b}`] = v;
    out[`cycles_${b}_per_${unit}`] = per > 0 ? v / per : 0;
  }
  return out;
}

export const BUCKETS = ['fault', 'fork_copy', 'zap_exit', 'pin_unpin'] as const;

/** Results of a report, grouped: platform → (fault-around window → result), windows ascending. */
export function byPlatformWindow<R extends { platform: string; params: Readonly<Record<string, string>> }>(
  results: readonly R[],
): Map<string, Array<readonly [number, R]>> {
  const out = new Map<string, Array<readonly [number, R]>>();
  for (const r of results) {
    const w = Number(r.params.fault_around);
    const list = out.get(r.platform) ?? [];
    list.push([w, r]);
    out.set(r.platform, list);
  }
  for (const list of out.values()) list.sort((a, b) => a[0] - b[0]);
  return out;
}

/** A line chart of one derived figure against the fault-around window, one series per platform. */
export function windowChart(
  results: ReadonlyArray<{
    platform: string;
    params: Readonly<Record<string, string>>;
    derived: Readonly<Record<string, number>>;
  }>,
  figure: string,
  title: string,
  yLabel: string,
  logY = false,
): ChartSpec {
  const series = [...byPlatformWindow(results)].map(([platform, list]) => ({
    name: platform,
    points: list.map(([w, r]) => [String(w), r.derived[figure] ?? 0] as const),
  }));
  return { title, kind: 'line', xLabel: 'fault-around window (pages)', yLabel, ...(logY ? { logY } : {}), series };
}

/** A bar chart of the cycle buckets per unit, one bar group per platform × window. */
export function bucketChart(
  results: ReadonlyArray<{
    platform: string;
    params: Readonly<Record<string, string>>;
    derived: Readonly<Record<string, number>>;
  }>,
  unit: string,
  title: string,
): ChartSpec {
  const groups = [...byPlatformWindow(results)].flatMap(([platform, list]) =>
    list.map(([w, r]) => [`${platform} fa=${w}`, r] as const),
  );
  return {
    title,
    kind: 'bar',
    xLabel: 'platform, fault-around window',
    yLabel: `cycles per ${unit}`,
    series: BUCKETS.map((b) => ({
      name: b.replace('_', '/'),
      points: groups.map(([x, r]) => [x, r.derived[`cycles_${b}_per_${unit}`] ?? 0] as const),
    })),
  };
}
