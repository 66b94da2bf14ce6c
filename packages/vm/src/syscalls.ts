import { doBrk } from './brk.js';
import { dupMmap } from './fork.js';
import type { Kernel } from './kernel.js';
import { madvise, type Advice } from './madvise.js';
import { doMmap, doMunmap, exitMmap, type MmapRequest } from './mmap.js';
import { mprotect, type Prot } from './mprotect.js';
import { Task } from './task.js';
import { type Vma, VM_EXEC, VM_READ, VM_WRITE } from './vma.js';

export { MMAP_BASE_VPN, type MmapRequest } from './mmap.js';
export type { Prot } from './mprotect.js';
export type { Advice } from './madvise.js';

/**
 * The memory system calls of a task: a thin facade over mm/mmap.c (mmap.ts, brk.ts), mm/mprotect.c
 * (mprotect.ts), mm/madvise.c (madvise.ts) and kernel/fork.c / kernel/exit.c / fs/exec.c.
 */
export class Syscalls {
  private nextPid = 1;

  constructor(private readonly k: Kernel) {}

  /** A new process with an empty address space (the machine's init). */
  spawn(): Task {
    const mm = this.k.newMm();
    this.k.pv.pgdPin(mm.root);
    return new Task(this.nextPid++, mm, null);
  }

  mmap(task: Task, req: MmapRequest): Vma {
    return doMmap(this.k, task, req);
  }

  munmap(task: Task, start: number, pages: number): void {
    doMunmap(this.k, task.mm, start, pages);
  }

  mprotect(task: Task, start: number, pages: number, prot: Prot): void {
    mprotect(this.k, task.mm, start, pages, prot);
  }

  madvise(task: Task, start: number, pages: number, advice: Advice): void {
    madvise(this.k, task.mm, start, pages, advice);
  }

  /** brk(2) to page `newBrk`; returns the break (unchanged if refused). */
  brk(task: Task, newBrk: number): number {
    return doBrk(this.k, task.mm, newBrk);
  }

  /** clone(CLONE_VM): a thread of `task`, sharing its address space (mmget: mm_users + 1). */
  spawnThread(task: Task): Task {
    if (task.exited) throw new Error(`task ${task.pid} has exited`);
    task.mm.users++;
    return new Task(this.nextPid++, task.mm, task);
  }

  /** fork(): a child with a copy of the address space (dup_mmap), pinned for the platform. */
  fork(parent: Task): Task {
    const k = this.k;
    const mm = k.newMm();
    dupMmap(k, parent.mm, mm);
    k.pv.pgdPin(mm.root); // xen_dup_mmap pins the child's tables after they are filled
    return new Task(this.nextPid++, mm, parent);
  }

  /** execve(): a fresh address space replaces the old one, which is torn down. */
  exec(task: Task): void {
    const k = this.k;
    const old = task.mm;
    // de_thread() would kill the other threads first: not modelled.
    if (old.users > 1) throw new Error(`exec of task ${task.pid} while ${old.users - 1} other thread(s) share its mm`);
    const mm = k.newMm();
    k.pv.pgdPin(mm.root); // xen_activate_mm
    task.mm = mm;
    if (k.cpu.mm === old) k.switchMm(mm);
    exitMmap(k, old);
    k.stats.execs++;
  }

  /** exit(): mmput: the last task of an address space tears it down (exit_mmap); a thread just leaves. */
  exit(task: Task): void {
    if (task.exited) throw new Error(`task ${task.pid} exited twice`);
    if (--task.mm.users === 0) exitMmap(this.k, task.mm);
    task.exited = true;
    this.k.stats.exits++;
  }
}

export { VM_READ, VM_WRITE, VM_EXEC };
