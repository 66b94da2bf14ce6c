/**
 * What the machine `pte-lab calibrate` (and pnpm validate) runs on says of itself: its kernel, CPU
 * and clock, hypervisor, the filesystem and block device of the test directory, its readahead,
 * and whether anonymous reads map the zero page. Linux only; each fact falls back to null when
 * it cannot be read.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';

export function tryRead(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export interface MountOf {
  readonly mnt: string;
  readonly fstype: string;
  readonly source: string;
  /** major:minor of the mounted device. */
  readonly majmin: string;
}

/** The filesystem type and block device of a directory (the longest mount point in /proc/self/mountinfo). */
export function fsOf(dir: string): MountOf | null {
  const real = realpathSync(dir);
  const info = tryRead('/proc/self/mountinfo');
  if (info === null) return null;
  let best: MountOf | null = null;
  for (const line of info.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (pre === undefined || post === undefined) continue;
    const f = pre.split(' ');
    const mnt = (f[4] ?? '').replace(/\\040/g, ' ');
    if (
      (real === mnt || real.startsWith(mnt === '/' ? '/' : mnt + '/')) &&
      (best === null || mnt.length >= best.mnt.length)
    ) {
      const [fstype, source] = post.split(' ');
      best = { mnt, fstype: fstype ?? '?', source: source ?? '?', majmin: f[2] ?? '' };
    }
  }
  return best;
}

/** /sys/block/<disk> for a mount's major:minor (a partition maps to its parent disk), or null. */
export function blockDirOf(majmin: string): string | null {
  const dev = `/sys/dev/block/${majmin}`;
  if (!existsSync(dev)) return null;
  let real = realpathSync(dev);
  if (!existsSync(join(real, 'queue')) && existsSync(join(real, '..', 'queue'))) real = realpathSync(join(real, '..'));
  return existsSync(join(real, 'queue')) ? real : null;
}

/** Filesystems whose files are not on a block device: a probe there measures no IO. */
export const MEMORY_FILESYSTEMS = ['tmpfs', 'ramfs', 'overlay'];

/**
 * A fresh directory for the probe's files on a disk filesystem: under `base` if given (refused, in
 * one line, if it is in memory), else the first of $TMPDIR, the OS temporary directory, /var/tmp
 * and `fallback` that exists and is on disk.
 */
export function makeTestDir(prefix: string, base: string | undefined, fallback: string): string {
  if (base !== undefined) {
    if (!existsSync(base)) throw new Error(`--dir ${base}: no such directory`);
    const fs = fsOf(base);
    if (fs !== null && MEMORY_FILESYSTEMS.includes(fs.fstype))
      throw new Error(`--dir ${base}: it is on ${fs.fstype}, in memory; the probe needs a disk filesystem`);
    return mkdtempSync(join(base, prefix));
  }
  for (const b of [process.env.TMPDIR, tmpdir(), '/var/tmp', fallback]) {
    if (b === undefined || b === '' || !existsSync(b)) continue;
    const fs = fsOf(b);
    if (fs === null || MEMORY_FILESYSTEMS.includes(fs.fstype)) continue;
    return mkdtempSync(join(b, prefix));
  }
  throw new Error('no directory on a disk filesystem for the probe: give one with --dir');
}

export interface HostFacts {
  readonly kernel: string;
  readonly cpu: string;
  /** The CPU clock in GHz (/proc/cpuinfo "cpu MHz"): converts real nanoseconds to cycles. */
  readonly ghz: number | null;
  /**
   * "PVM", "KVM", ... from the kernel log ("Hypervisor detected: ..."), or PVM from a pvm_ boot
   * option when the log is closed, "a hypervisor" from the CPU flag, or null on bare metal.
   */
  readonly hypervisor: string | null;
  /** false when the kernel was booted with pvm_no_zero_page=1 (an anonymous read allocates a zeroed page). */
  readonly zeroPage: boolean;
}

/** The machine's kernel, CPU model and clock, hypervisor, and zero-page behaviour. */
export function hostFacts(): HostFacts {
  const cpuinfo = tryRead('/proc/cpuinfo') ?? '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown CPU';
  const mhz = Number(/^cpu MHz\s*:\s*([0-9.]+)$/m.exec(cpuinfo)?.[1]);
  let hypervisor: string | null = null;
  try {
    const log = execFileSync('dmesg', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    hypervisor = /Hypervisor detected: (\S+)/.exec(log)?.[1] ?? null;
  } catch {
    /* the kernel log may be closed to this user */
  }
  const cmdline = tryRead('/proc/cmdline') ?? '';
  // The kernel log may be closed to this user (dmesg_restrict): a PVM guest's boot options name it too.
  if (hypervisor === null && /(^|\s)pvm_[a-z_]+=/.test(cmdline)) hypervisor = 'PVM';
  if (hypervisor === null && /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo)) hypervisor = 'a hypervisor';
  return {
    kernel: release(),
    cpu: model,
    ghz: Number.isFinite(mhz) && mhz > 0 ? mhz / 1000 : null,
    hypervisor,
    zeroPage: !cmdline.includes('pvm_no_zero_page=1'),
  };
}

/**
 * The model platform to fit a host as: native on bare metal; kvm-shadow under PVM, whose host
 * shadows the guest's page tables (measured on a PVM guest, costs/: the fitted kvm-shadow model
 * explained more of the suite's phases within ±25% than the fitted kvm-tdp model); kvm-tdp under any other
 * hypervisor (a KVM or cloud guest with EPT/NPT).
 */
export function platformFor(hypervisor: string | null): string {
  if (hypervisor === null) return 'native';
  return hypervisor === 'PVM' ? 'kvm-shadow' : 'kvm-tdp';
}

/** read_ahead_kb of the disk under `dir`, or null. */
export function readAheadKbOf(dir: string): number | null {
  const fs = fsOf(dir);
  const blk = fs === null ? null : blockDirOf(fs.majmin);
  const v = blk === null ? null : Number(tryRead(join(blk, 'queue/read_ahead_kb')));
  return v !== null && Number.isFinite(v) ? v : null;
}
