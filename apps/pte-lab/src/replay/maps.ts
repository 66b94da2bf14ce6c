import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { PteError, parseError } from '@pte/core';
import { VM_EXEC, VM_READ, VM_WRITE } from '@pte/machine';

/** One line of a captured /proc/PID/maps (proc(5)): `start-end perms offset dev inode [path]`. */
export interface MapsEntry {
  readonly startVpn: number;
  readonly endVpn: number;
  /** VM_READ | VM_WRITE | VM_EXEC from the perms column. */
  readonly prot: number;
  /** `s` in the perms column (MAP_SHARED). */
  readonly shared: boolean;
  /** File offset in pages. */
  readonly pgoff: number;
  /** The backing file's path, or null for anonymous memory ([heap], [stack], [anon:…], no path, …). */
  readonly file: string | null;
  /** The path column as printed ('' when empty). */
  readonly name: string;
}

/** Pages at or above this are not user space (x86-64 with 4-level paging: 2^47 bytes). */
const USER_TOP_VPN = 2 ** 35;

const LINE = /^([0-9a-f]+)-([0-9a-f]+)\s+([r-][w-][x-][ps])\s+([0-9a-f]+)\s+([0-9a-f]+:[0-9a-f]+)\s+(\d+)\s*(.*)$/i;

/**
 * Parse a captured /proc/PID/maps. Lines above user space ([vsyscall]) are dropped; empty lines are
 * skipped; anything else that is not a maps line fails with `<file>:<line>: malformed maps line`.
 */
export function parseMaps(path: string): MapsEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    const code = (e as { code?: unknown } | null)?.code;
    throw new PteError('io', `cannot read --maps ${path}: ${typeof code === 'string' ? code : 'read failed'}`);
  }
  const name = basename(path);
  const out: MapsEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const m = LINE.exec(line);
    if (m === null) throw parseError(`${name}:${i + 1}: malformed maps line '${line.slice(0, 100)}'`);
    const start = parseInt(m[1]!, 16);
    const end = parseInt(m[2]!, 16);
    if (start / 4096 >= USER_TOP_VPN) continue; // [vsyscall]: kernel address space
    if (!(end > start) || start % 4096 !== 0 || end % 4096 !== 0 || end > Number.MAX_SAFE_INTEGER) {
      throw parseError(`${name}:${i + 1}: bad address range '${m[1]}-${m[2]}'`);
    }
    const startVpn = start / 4096;
    const endVpn = end / 4096;
    const perms = m[3]!;
    const prot =
      (perms[0] === 'r' ? VM_READ : 0) | (perms[1] === 'w' ? VM_WRITE : 0) | (perms[2] === 'x' ? VM_EXEC : 0);
    const offset = parseInt(m[4]!, 16);
    const inode = Number(m[6]);
    const pathCol = m[7]!.trim();
    const anon = inode === 0 || pathCol === '' || pathCol.startsWith('[');
    if (offset % 4096 !== 0) throw parseError(`${name}:${i + 1}: file offset 0x${m[4]} is not page aligned`);
    out.push({
      startVpn,
      endVpn: Math.min(endVpn, USER_TOP_VPN),
      prot,
      shared: perms[3] === 's',
      pgoff: anon ? 0 : offset / 4096,
      file: anon ? null : pathCol,
      name: pathCol,
    });
  }
  out.sort((a, b) => a.startVpn - b.startVpn);
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.startVpn < out[i - 1]!.endVpn)
      throw parseError(`${name}: mappings '${out[i - 1]!.name}' and '${out[i]!.name}' overlap`);
  }
  return out;
}

/**
 * The maps show protections at exit. A private file mapping printed `r--p` and followed directly by
 * an `rw-p` mapping of the same file is its PT_GNU_RELRO part: ld.so wrote it (relocations) before
 * `mprotect(PROT_READ)` (elf/dl-reloc.c _dl_protect_relro), so a trace writes it. Give such
 * mappings write permission, as they had while the writes happened. Returns how many it changed.
 */
export function writableRelro(maps: MapsEntry[]): number {
  let n = 0;
  for (let i = 0; i + 1 < maps.length; i++) {
    const e = maps[i]!;
    const next = maps[i + 1]!;
    if (
      e.file !== null &&
      !e.shared &&
      e.prot === VM_READ &&
      next.file === e.file &&
      next.startVpn === e.endVpn &&
      !next.shared &&
      (next.prot & VM_WRITE) !== 0
    ) {
      maps[i] = { ...e, prot: VM_READ | VM_WRITE };
      n++;
    }
  }
  return n;
}
