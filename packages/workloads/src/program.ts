import { configError } from '@pte/core';
import type { PatternSpec } from './pattern.js';

/** Protection of a mapping: r, rw, rx or rwx. */
export type ProtSpec = 'r' | 'rw' | 'rx' | 'rwx';

/** A file the workload uses, and how it got into the page cache before the run. */
export interface FileSpec {
  readonly name: string;
  readonly size: number;
  readonly cache: 'cold' | 'written' | 'readback';
  /** write()/read() size that filled the cache (bytes). */
  readonly ioChunk: number;
}

/** One step of a process program. Regions are named; a forked child inherits its parent's names. */
export type ProgramOp =
  | {
      readonly op: 'mmap';
      readonly region: string;
      /** A FileSpec name, or null for anonymous memory. */
      readonly file: string | null;
      readonly size: number;
      readonly shared: boolean;
      readonly prot: ProtSpec;
      /** Byte offset into the file (a multiple of 4 KiB). */
      readonly offset?: number;
    }
  | {
      readonly op: 'touch';
      readonly region: string;
      readonly pattern: PatternSpec;
      readonly access: 'read' | 'write' | 'fetch';
      /** Accesses per page touch (default 1). */
      readonly runs?: number;
      /** Touch only pages [firstPage, firstPage + pages) of the region (default: all). */
      readonly firstPage?: number;
      readonly pages?: number;
    }
  | { readonly op: 'munmap'; readonly region: string }
  | { readonly op: 'mprotect'; readonly region: string; readonly prot: ProtSpec }
  | {
      readonly op: 'madvise';
      readonly region: string;
      readonly advice: 'normal' | 'random' | 'sequential' | 'willneed' | 'dontneed' | 'hugepage';
    }
  /** fork(); the child runs `child` to completion (it must end in exit or exec+…+exit) while the parent waits. */
  | { readonly op: 'fork'; readonly child: Program }
  /** execve(): the address space is replaced; regions are forgotten. */
  | { readonly op: 'exec' }
  | { readonly op: 'exit' };

/** A process program: what one process does, in order. */
export interface Program {
  readonly name: string;
  readonly ops: readonly ProgramOp[];
}

/** A whole workload: the files, and the first process's program. */
export interface Workload {
  readonly files: readonly FileSpec[];
  readonly main: Program;
}

/**
 * Check a workload before it runs: every region used after being mapped in the same address space,
 * every file declared, every program ends with exit, sizes positive multiples of 4 KiB. Errors name
 * the program and the step (`main/fork#2 step 3`).
 */
export function validateWorkload(w: Workload): void {
  const files = new Set(w.files.map((f) => f.name));
  for (const f of w.files) {
    if (!Number.isSafeInteger(f.size) || f.size <= 0)
      throw configError(`workload file '${f.name}': size ${f.size} is not positive`);
  }
  const walk = (p: Program, path: string, inherited: Set<string>): void => {
    let regions = new Set(inherited);
    p.ops.forEach((op, i) => {
      const where = `${path} step ${i + 1} (${op.op})`;
      switch (op.op) {
        case 'mmap':
          if (op.file !== null && !files.has(op.file)) throw configError(`${where}: unknown file '${op.file}'`);
          if (!Number.isSafeInteger(op.size) || op.size <= 0 || op.size % 4096 !== 0) {
            throw configError(`${where}: size ${op.size} is not a positive multiple of 4KiB`);
          }
          if ((op.offset ?? 0) % 4096 !== 0)
            throw configError(`${where}: offset ${op.offset} is not a multiple of 4KiB`);
          regions.add(op.region);
          break;
        case 'touch':
        case 'mprotect':
        case 'madvise':
          if (!regions.has(op.region)) throw configError(`${where}: region '${op.region}' is not mapped here`);
          break;
        case 'munmap':
          if (!regions.has(op.region)) throw configError(`${where}: region '${op.region}' is not mapped here`);
          regions.delete(op.region);
          break;
        case 'fork':
          walk(op.child, `${path}/${op.child.name}`, regions);
          break;
        case 'exec':
          regions = new Set();
          break;
        case 'exit':
          if (i !== p.ops.length - 1) throw configError(`${where}: exit must be the last step`);
          break;
      }
    });
    const last = p.ops[p.ops.length - 1];
    if (last === undefined || last.op !== 'exit') throw configError(`${path}: the program must end with exit`);
  };
  walk(w.main, w.main.name, new Set());
}
