import fc from 'fast-check';
import { VM_READ, VM_WRITE, type Advice, type AnonPrefault, type Inode, type Syscalls, type Task } from '@pte/vm';
import { applyRangeOp, pickRangeIn } from './mm-ops.js';

/**
 * The random-operation model the property tests of the guest mm share (vm alone, and the whole
 * machine on xen-pv, kvm-shadow and kvm-tdp): mmap (file or anonymous, shared or private, random
 * sizes, top-down or MAP_FIXED at unaligned addresses and file offsets), touches (reads, writes,
 * a stray run past a VMA's end, the same pages written by two tasks), munmap, mprotect, madvise,
 * fork, exec and exit over 1-3 tasks. Selectors (`t`, `vma`, `page`, ...) are taken modulo what
 * exists when the operation runs, so every sequence is valid whatever came before.
 */
export type MmOp =
  | {
      op: 'mmap';
      t: number;
      file: number;
      shared: boolean;
      write: boolean;
      pages: number;
      fixed: number | null;
      pgoff: number;
    }
  | { op: 'touch'; t: number; vma: number; page: number; count: number; write: boolean; stray: boolean }
  | { op: 'touchBoth'; t: number; u: number; vma: number; page: number; count: number }
  | { op: 'munmap'; t: number; vma: number; off: number; len: number }
  | { op: 'mprotect'; t: number; vma: number; off: number; len: number; prot: 'r' | 'rw' | 'rx' }
  | { op: 'dontneed'; t: number; vma: number; off: number; len: number }
  | { op: 'advise'; t: number; vma: number; off: number; len: number; advice: Advice }
  | { op: 'fork'; t: number; switchFirst: boolean }
  | { op: 'exec'; t: number }
  | { op: 'exit'; t: number };

/** MAP_FIXED mappings are placed at FIXED_BASE + op.fixed (a 1 GiB-aligned page number). */
export const FIXED_BASE = 0x10000000;

/** At most this many tasks live at once. */
export const MAX_TASKS = 3;

const sel = fc.nat({ max: 1 << 20 });

export interface MmOpOptions {
  /**
   * Favour what PMD mapping needs: file 0 whole, at PMD-aligned file offsets and addresses
   * (MAP_FIXED at multiples of 512 pages, or top-down placement), mostly reads.
   */
  readonly pmd?: boolean;
  /** The madvise() advice drawn (default: every one the model has). */
  readonly advice?: readonly Advice[];
}

const ALL_ADVICE: readonly Advice[] = ['normal', 'random', 'sequential', 'willneed', 'hugepage', 'nohugepage'];

/** One random operation. */
export function mmOpArb(o: MmOpOptions = {}): fc.Arbitrary<MmOp> {
  const pmd = o.pmd ?? false;
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('mmap' as const),
        t: sel,
        // -1: anonymous (2 in 5).
        file: pmd ? fc.constantFrom(-1, 0, 0, 1) : fc.integer({ min: -2, max: 2 }).map((x) => Math.max(x, -1)),
        shared: fc.boolean(),
        write: fc.integer({ min: 0, max: 3 }).map((x) => x > 0),
        // 0: the whole file from pgoff (1024 pages for anonymous memory).
        pages: pmd
          ? fc.constantFrom(0, 0, 512, 1024, 700)
          : fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 1100 }), fc.constantFrom(0, 512, 1024)),
        fixed: pmd
          ? fc.option(
              fc.integer({ min: 0, max: 6 }).map((x) => x * 512),
              { nil: null },
            )
          : fc.option(fc.integer({ min: 0, max: 3000 }), { nil: null }),
        pgoff: pmd
          ? fc.constantFrom(0, 0, 512, 256)
          : fc.oneof(fc.constant(0), fc.constantFrom(0, 512), fc.integer({ min: 0, max: 1200 })),
      }),
    },
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant('touch' as const),
        t: sel,
        vma: sel,
        page: sel,
        count: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 600 })),
        write: pmd ? fc.integer({ min: 0, max: 3 }).map((x) => x === 0) : fc.boolean(),
        stray: fc.integer({ min: 0, max: 9 }).map((x) => x === 0),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('touchBoth' as const),
        t: sel,
        u: sel,
        vma: sel,
        page: sel,
        count: fc.integer({ min: 1, max: 64 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('munmap' as const), t: sel, vma: sel, off: sel, len: sel }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('mprotect' as const),
        t: sel,
        vma: sel,
        off: sel,
        len: sel,
        // Read-only or read-write; now and then read-exec.
        prot: fc.constantFrom('r' as const, 'rw' as const, 'r' as const, 'rw' as const, 'rx' as const),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('dontneed' as const), t: sel, vma: sel, off: sel, len: sel }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('advise' as const),
        t: sel,
        vma: sel,
        off: sel,
        len: sel,
        advice: fc.constantFrom<Advice>(...(o.advice ?? ALL_ADVICE)),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('fork' as const), t: sel, switchFirst: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('exit' as const), t: sel }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('exec' as const), t: sel }) },
  );
}

/** The anonymous-prefault policies the property tests draw. */
export const anonPrefaultArb: fc.Arbitrary<AnonPrefault> = fc.constantFrom<AnonPrefault>(
  { kind: 'off' },
  { kind: 'fixed', pages: 8 },
  { kind: 'adaptive', maxOrder: 3 },
  { kind: 'mthp', orders: [4, 2] },
);

/** File sizes in bytes (not always page multiples) of files 0-2, and the write() chunk / readahead window in pages. */
export const mmFilesArb = fc.tuple(
  fc.integer({ min: 1, max: 1500 * 4096 }),
  fc.integer({ min: 1, max: 1500 * 4096 }),
  fc.integer({ min: 1, max: 300 * 4096 }),
  fc.constantFrom(16, 64, 512, 512),
);

/** What a test plugs into the model: its system calls, files, tasks, and how it touches pages. */
export interface MmWorld {
  readonly sys: Syscalls;
  /** Files 0-2 (op.file indexes them; -1 is anonymous memory). */
  readonly files: readonly Inode[];
  /** The live tasks; the model forks into and exits out of this array. */
  readonly tasks: Task[];
  /** Touch pages [first, last) of `task` (the test checks what the access reached). */
  touch(task: Task, first: number, last: number, write: boolean): void;
  /** Before a fork with switchFirst: load the parent's address space, as Machine.runProgram forks. */
  switchTo?(task: Task): void;
}

/** Run one operation in `w`. */
export function applyMmOp(w: MmWorld, op: MmOp): void {
  const tasks = w.tasks;
  const task = tasks[op.t % tasks.length]!;
  switch (op.op) {
    case 'mmap': {
      const file = op.file < 0 ? null : w.files[op.file % w.files.length]!;
      // File mappings mostly stay inside the file; up to 4 pages may reach past EOF (SIGBUS).
      const pgoff = file === null ? 0 : op.pgoff % file.pages;
      const pages =
        file === null
          ? op.pages || 1024
          : op.pages === 0
            ? file.pages - pgoff
            : 1 + (op.pages % (file.pages - pgoff + 4));
      w.sys.mmap(task, {
        pages,
        prot: VM_READ | (op.write ? VM_WRITE : 0),
        shared: op.shared,
        file,
        pgoff,
        ...(op.fixed !== null ? { fixedVpn: FIXED_BASE + op.fixed } : {}),
      });
      return;
    }
    case 'touch': {
      const vmas = task.mm.vmas.all();
      if (vmas.length === 0) return;
      const v = vmas[op.vma % vmas.length]!;
      // A stray run starts just past the VMA's end (a hole, or the next VMA).
      const first = op.stray ? v.end + (op.page % 4) : v.start + (op.page % v.pages);
      const last = op.stray ? first + Math.min(op.count, 4) : Math.min(first + op.count, v.end);
      w.touch(task, first, last, op.write);
      return;
    }
    case 'touchBoth': {
      // Writes by one task, then by another to the same addresses (after a fork: COW, then reuse).
      const other = tasks[(op.t + 1 + op.u) % tasks.length]!;
      const vmas = task.mm.vmas.all();
      if (vmas.length === 0) return;
      const v = vmas[op.vma % vmas.length]!;
      const first = v.start + (op.page % v.pages);
      const last = Math.min(first + op.count, v.end);
      for (const t of [task, other]) w.touch(t, first, last, true);
      return;
    }
    case 'munmap':
    case 'mprotect':
    case 'dontneed':
    case 'advise': {
      const r = pickRangeIn(task.mm.vmas.all(), op.vma, op.off, op.len);
      if (r !== null) applyRangeOp(w.sys, task, op, r);
      return;
    }
    case 'fork':
      if (tasks.length < MAX_TASKS) {
        if (op.switchFirst) w.switchTo?.(task);
        tasks.push(w.sys.fork(task));
      }
      return;
    case 'exec':
      w.sys.exec(task);
      return;
    case 'exit':
      if (tasks.length > 1) {
        w.sys.exit(task);
        tasks.splice(tasks.indexOf(task), 1);
      }
      return;
  }
}
