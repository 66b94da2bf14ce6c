import type { Mm } from './mm.js';

/** A process (`struct task_struct`), as far as memory goes: its pid, parent and address space. */
export class Task {
  exited = false;
  constructor(
    readonly pid: number,
    public mm: Mm,
    readonly parent: Task | null,
  ) {}
}
