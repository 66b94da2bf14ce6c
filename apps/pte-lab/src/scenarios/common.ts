import { configError, formatSize, parseSize } from '@pte/core';
import {
  formatPattern,
  type Inode,
  type Machine,
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
