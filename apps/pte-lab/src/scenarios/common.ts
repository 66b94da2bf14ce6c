import { configError, formatSize, parseCount, parseSize } from '@pte/core';
import {
  formatPattern,
  type AccessKind,
  type FaultLockPolicy,
  type Inode,
  type Machine,
  type MachineOptions,
  MAX_CPUS,
  parsePattern,
  type PatternSpec,
  type Task,
  VM_READ,
  type Vma,
} from '@pte/machine';

/** `--set size` (a positive multiple of 4 KiB, default 16 MiB) and `--set pattern`, as the thread scenarios take them. */
export function resolveSizePattern(
  set: Readonly<Record<string, string>>,
  defaultPattern: string,
): { size: number; pattern: PatternSpec; text: { size: string; pattern: string } } {
  const size = set.size !== undefined ? parseSize(set.size, '--set size') : 16 * 2 ** 20;
  if (size <= 0 || size % 4096 !== 0) throw configError(`--set size: '${set.size}' is not a positive multiple of 4KiB`);
  const pattern = parsePattern(set.pattern ?? defaultPattern, '--set pattern');
  return { size, pattern, text: { size: formatSize(size), pattern: formatPattern(pattern) } };
}

/** Guest memory for a scenario around a file of `size` bytes: the file, a copy, tables and slack. */
export function memForFile(size: number): number {
  return Math.max(256 * 2 ** 20, 2 * size + 128 * 2 ** 20);
}

/** Table rows `variant: figure` → `derived.<variant>.<figure>` of a comparison scenario. */
export function variantRows(
  variants: readonly { readonly name: string }[],
  figures: readonly string[],
): Array<readonly [string, string]> {
  return variants.flatMap((v) =>
    figures.map((f) => [`${v.name}: ${f.replace(/_/g, ' ')}`, `derived.${v.name}.${f}`] as const),
  );
}

/** One process with a file of `size` bytes cached by write() in order-0 pages, mapped private read-only. */
export function cachedFileMapping(m: Machine, size: number): { task: Task; file: Inode; vma: Vma } {
  const task = m.spawn();
  const file = m.createFile('data', size);
  m.writeFile(file, 256, 0);
  const vma = m.mmap(task, { pages: size / 4096, prot: VM_READ, shared: false, file });
  return { task, file, vma };
}

/** Cycles since the machine started measuring. */
export function measuredTotal(m: Machine): number {
  return Object.values(m.measuredCycles()).reduce((a, b) => a + b, 0);
}

/** `--set threads` of the thread/* scenarios: 1 (the default, and then absent from the params) to MAX_CPUS. */
export function resolveThreads(set: Readonly<Record<string, string>>): {
  threads: number;
  text: Record<string, string>;
} {
  if (set.threads === undefined) return { threads: 1, text: {} };
  const threads = parseCount(set.threads, '--set threads');
  if (threads < 1 || threads > MAX_CPUS)
    throw configError(`--set threads: ${threads} is outside 1..${MAX_CPUS}`, 'one thread per CPU');
  return { threads, text: { threads: String(threads) } };
}

/** The description of the thread/* scenarios' `threads` key. */
export const THREADS_KEY = `threads of the process, one per CPU, each touching its own slice of the region, 1 to ${MAX_CPUS} (default 1)`;

/** The wall time of a runThreads: the last of the first `threads` CPUs' clocks (the rest run writers or nothing). */
export function makespanOf(clocks: Float64Array, threads: number): number {
  let makespan = 0;
  for (let i = 0; i < threads; i++) makespan = Math.max(makespan, clocks[i]!);
  return makespan;
}

/**
 * The measured part of the thread/* scenarios: `task` (and, with several threads, its threads,
 * each on its slice) touches `range` in `pattern`, then every task exits. Returns the wall time
 * with several threads (the last thread's clock plus the exit, which runs on one CPU), else 0.
 */
export function touchAndExit(
  m: Machine,
  task: Task,
  range: { readonly start: number; readonly pages: number },
  pattern: PatternSpec,
  kind: AccessKind,
  threads: number,
): number {
  let wall = 0;
  const threadTasks: Task[] = [];
  if (threads === 1) {
    m.touch(task, range, pattern, kind, 1);
  } else {
    // Each thread its contiguous slice, on CPUs 0.. (the run's machine has that many).
    const tasks = [task];
    for (let i = 1; i < threads; i++) tasks.push(m.spawnThread(task));
    const per = Math.floor(range.pages / threads);
    const clocks = m.runThreads(
      tasks.map((t, i) => ({
        task: t,
        cpu: i,
        range: { start: range.start + i * per, pages: i === threads - 1 ? range.pages - i * per : per },
        pattern,
        kind,
      })),
    );
    wall = makespanOf(clocks, threads);
    threadTasks.push(...tasks.slice(1));
  }
  for (const t of threadTasks) m.exit(t);
  const beforeExit = measuredTotal(m);
  m.exit(task);
  return threads > 1 ? wall + measuredTotal(m) - beforeExit : 0;
}

/** The run's fault lock (`--set fault_lock`, else the profile's first), refused if the profile lacks it. */
export function profileFaultLock(
  ctx: { readonly options: MachineOptions },
  asked: FaultLockPolicy | null,
): FaultLockPolicy {
  const profile = ctx.options.profile;
  const lock = asked ?? profile.faultLocks[0]!;
  if (!profile.faultLocks.includes(lock)) {
    throw configError(
      `--set fault_lock: ${profile.name} has no ${lock}`,
      `it has ${profile.faultLocks.join(', ')}: per-VMA locks came in 6.4, and speculative faults are modelled on linux-6.18 only`,
    );
  }
  return lock;
}

/** One thread per CPU: `--set cpus`, when given, must hold the scenario's `threads` (and `extra`, e.g. the writer). */
export function checkThreadsFit(
  ctx: { readonly options: MachineOptions },
  threads: number,
  extra: { readonly count: number; readonly what: string } = { count: 0, what: '' },
): void {
  const needed = threads + extra.count;
  const cpus = ctx.options.cpus;
  if (cpus !== undefined && cpus < needed) {
    throw configError(
      `--set threads: ${threads} threads${extra.count > 0 ? ` and ${extra.what}` : ''} need ${needed} CPUs, --set cpus is ${cpus}`,
      'one thread per CPU: the model does not time-slice',
    );
  }
}
