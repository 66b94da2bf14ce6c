import { configError, formatSize } from '@pte/core';
import { type RunResult } from '@pte/machine';
import { windowDetail } from './forky-build.js';
import { type Comparison, compare } from '../findings/comparison.js';
import { findingOf } from '../findings/finding-of.js';
import { OLD_PTE_REVERT_2016, SHUTEMOV_GIT_16, SHUTEMOV_GIT_8 } from '../findings/published.js';
import {
  bucketChart,
  byPlatformWindow,
  countKey,
  cycleFigures,
  memForTree,
  pagesKey,
  runTree,
  windowChart,
  type ImageSpec,
  type TreeSpec,
} from './process-tree.js';
import type { Finding, Scenario, ScenarioContext } from './scenario.js';

interface Params {
  readonly execs: number;
  readonly binaryPages: number;
  readonly binaryTouch: number;
  readonly libcPages: number;
  readonly libcTouch: number;
  readonly libs: number;
  readonly libPages: number;
  readonly libTouch: number;
  readonly cluster: number;
  readonly heapPages: number;
  readonly parentHeapPages: number;
}

const KiB = 1024;
const MiB = 2 ** 20;

function image(name: string, textPages: number, touchPages: number): ImageSpec {
  return { name, textPages, dataPages: Math.max(1, Math.floor(textPages / 32)), touchPages };
}

/** The tree: a shell (its binary, libc, a heap) running `execs` small commands one after another. */
export function shellTree(p: Params): TreeSpec {
  const libs = Array.from({ length: p.libs }, (_, i) => image(`lib${i + 1}.so`, p.libPages, p.libTouch));
  return {
    parent: {
      images: [image('sh', 32, 16), image('libc.so.6', p.libcPages, p.libcTouch)],
      heapPages: p.parentHeapPages,
    },
    child: {
      images: [image('prog', p.binaryPages, p.binaryTouch), image('libc.so.6', p.libcPages, p.libcTouch), ...libs],
      heapPages: p.heapPages,
    },
    children: p.execs,
    cluster: p.cluster,
    stream: 'unixbench/exec-shell',
  };
}

/**
 * unixbench/exec-shell (SCENARIOS.md): Kamezawa's suggestion (seed 001) to test prefault with
 * "some kind of scripts (shell/perl etc..)" — he used "unixbench's exec/shell test" to see the
 * per-fault overhead of the memory controller. A shell with a small written heap runs `execs`
 * commands one after another: fork (dup_mmap copies the shell's anonymous PTEs, COW), execve of a
 * small binary (exec_mmap tears the copy down), mmap of the binary, libc and `libs` other libraries
 * from the page cache (cached beforehand in order-0 pages, so the run's fault_around alone decides
 * how many PTEs one fault maps), fetches of a few pages of each text in clusters of nearby pages,
 * writes to their data segments and a small heap, and exit (exit_mmap → zap_pte_range). Each
 * command touches little, so fault-around's neighbours are mostly populated only to be zapped.
 * Cycles are split as in thread/forky-build: fault, fork_copy, zap_exit, pin_unpin (Xen PV), other.
 */
export const execShell: Scenario<Params> = {
  name: 'unixbench/exec-shell',
  description:
    'a shell loop of fork + exec of small programs mapping libc and a few libraries: cost per exec vs fault-around',
  claim:
    'Kamezawa (seed 001): shell and exec loops ("unixbench\'s exec/shell test") as the benchmark for page-population overhead of short-lived processes.',
  platforms: ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'],
  keys: {
    execs: 'commands the shell runs (fork + exec + exit each), 1 to 100000 (default 200)',
    binary: "text of the command's binary with unit (default 32KiB; data 1/32 of it, at least a page)",
    binary_pages: "pages of the binary's text it fetches (default 4)",
    libc: "libc's text with unit (default 2MiB)",
    libc_pages: "pages of libc's text a command fetches: loader relocation and startup (default 32)",
    libs: 'other shared libraries each command maps, 0 to 64 (default 2)',
    lib_size: 'text of each other library with unit (default 192KiB)',
    lib_pages: "pages of each other library's text a command fetches (default 8)",
    cluster: 'pages per cluster of nearby text touches, 1 to 512 (default 4)',
    heap: 'anonymous heap each command writes, with unit, 0 for none (default 64KiB)',
    parent_heap: "the shell's written heap, copied (COW) at every fork, with unit, 0 for none (default 256KiB)",
  },
  resolve(set) {
    const binaryPages = pagesKey(set, 'binary', 32 * KiB, 256 * MiB);
    const libcPages = pagesKey(set, 'libc', 2 * MiB, 256 * MiB);
    const libPages = pagesKey(set, 'lib_size', 192 * KiB, 256 * MiB);
    const touch = (key: string, def: number, of: number, what: string): number => {
      const n = countKey(set, key, Math.min(def, of), 2 ** 20, 0);
      if (n > of) throw configError(`--set ${key}: ${n} is more than the ${of} pages of ${what}`);
      return n;
    };
    const p: Params = {
      execs: countKey(set, 'execs', 200, 100000),
      binaryPages,
      binaryTouch: touch('binary_pages', 4, binaryPages, "the binary's text"),
      libcPages,
      libcTouch: touch('libc_pages', 32, libcPages, "libc's text"),
      libs: countKey(set, 'libs', 2, 64, 0),
      libPages,
      libTouch: touch('lib_pages', 8, libPages, "a library's text"),
      cluster: countKey(set, 'cluster', 4, 512),
      heapPages: pagesKey(set, 'heap', 64 * KiB, 1024 * MiB, true),
      parentHeapPages: pagesKey(set, 'parent_heap', 256 * KiB, 1024 * MiB, true),
    };
    return {
      parsed: p,
      text: {
        execs: String(p.execs),
        binary: formatSize(p.binaryPages * 4096),
        binary_pages: String(p.binaryTouch),
        libc: formatSize(p.libcPages * 4096),
        libc_pages: String(p.libcTouch),
        libs: String(p.libs),
        lib_size: formatSize(p.libPages * 4096),
        lib_pages: String(p.libTouch),
        cluster: String(p.cluster),
        heap: formatSize(p.heapPages * 4096),
        parent_heap: formatSize(p.parentHeapPages * 4096),
      },
    };
  },
  defaultMemBytes: (p) => memForTree(shellTree(p)),
  tableRows: [
    ['forks', 'counters.proc.forks'],
    ['execs', 'counters.proc.execs'],
    ['faults', 'counters.faults.total'],
    ['faults per exec', 'derived.faults_per_exec'],
    ['pages touched per exec', 'derived.touched_per_exec'],
    ['PTEs populated per exec', 'derived.populated_per_exec'],
    ['PTEs populated, never used', 'counters.pte.prefaulted_unused'],
    ['never used per exec', 'derived.unused_per_exec'],
    ['PTEs copied at fork', 'counters.pte.copied'],
    ['PTEs zapped', 'counters.pte.zapped'],
    ['Xen hypercalls per exec', 'derived.hypercalls_per_exec'],
    ['KVM exits per exec', 'derived.exits_per_exec'],
    ['cycles: fault per exec', 'derived.cycles_fault_per_exec'],
    ['cycles: fork copy per exec', 'derived.cycles_fork_copy_per_exec'],
    ['cycles: zap/exit per exec', 'derived.cycles_zap_exit_per_exec'],
    ['cycles: pin/unpin per exec', 'derived.cycles_pin_unpin_per_exec'],
    ['cycles: other per exec', 'derived.cycles_other_per_exec'],
    ['cycles', 'cycles.total'],
    ['cycles per exec', 'derived.cycles_per_exec'],
  ],
  run(ctx: ScenarioContext, p: Params) {
    const m = ctx.machine();
    const out = runTree(m, shellTree(p));
    const c = m.measuredCounters();
    const total = Object.values(out.cycles).reduce((a, b) => a + b, 0);
    const n = p.execs;
    return {
      machine: m,
      derived: {
        ...cycleFigures(out.cycles, n, 'exec'),
        cycles_per_exec: total / n,
        faults_per_exec: (c['faults.total'] ?? 0) / n,
        touched_per_exec: out.touchedPages / n,
        populated_per_exec: (c['pte.populated'] ?? 0) / n,
        unused_per_exec: (c['pte.prefaulted_unused'] ?? 0) / n,
        hypercalls_per_exec: (c['xen.hypercalls'] ?? 0) / n,
        exits_per_exec: (c['kvm.exits'] ?? 0) / n,
      },
    };
  },
  report: {
    runs: [
      ...['native', 'xen-pv'].flatMap((platform) =>
        [1, 4, 8, 16, 64].map((w) => ({ platform, set: ['execs=50', `fault_around=${w}`] })),
      ),
      // The 2016 revert of old prefaulted PTEs was for unixbench on x86: window 16, A clear.
      { platform: 'native', set: ['execs=50', 'fault_around=16', 'prefault_pte=old'] },
    ],
    charts: (all) => {
      const results = youngOnly(all);
      return [
        windowChart(results, 'cycles_per_exec', 'Shell loop: cycles per fork + exec + exit', 'cycles per exec'),
        bucketChart(results, 'exec', "Where a command's page-table cycles go"),
        windowChart(results, 'faults_per_exec', 'Faults per exec', 'faults per exec'),
        windowChart(results, 'unused_per_exec', 'PTEs populated and never used per exec', 'PTEs per exec'),
      ];
    },
    finding: (results) => shellFinding(results),
  },
};

/** The window sweep's runs: those with prefaulted PTEs as the profile makes them (young on x86). */
function youngOnly(results: readonly RunResult[]): RunResult[] {
  return results.filter((r) => r.params.prefault_pte !== 'old');
}

/**
 * Kamezawa suggested the benchmark and gave no figure, so the claim has no verdict. The account:
 * how much the loop's cycles per exec move across the windows, then the per-window detail of
 * windowDetail; and, as context, the published timings of such loads: Shutemov's git test suite
 * (thousands of short-lived processes) and the 2016 revert of old prefaulted PTEs (unixbench).
 */
function shellFinding(all: readonly RunResult[]): Finding {
  const results = youngOnly(all);
  const groups = byPlatformWindow(results);
  const spreads: string[] = [];
  for (const [platform, list] of groups) {
    const v = list.map(([w, r]) => [w, r.derived.cycles_per_exec ?? 0] as const);
    const lo = v.reduce((a, b) => (b[1] < a[1] ? b : a));
    const hi = v.reduce((a, b) => (b[1] > a[1] ? b : a));
    const spread = lo[1] > 0 ? (hi[1] / lo[1] - 1) * 100 : 0;
    spreads.push(
      `${platform} ${spread.toFixed(1)} % (window ${lo[0]}: ${lo[1].toFixed(0)}, window ${hi[0]}: ${hi[1].toFixed(0)} cycles per exec)`,
    );
  }
  const native = groups.get('native') ?? [];
  const at = (w: number) => native.find(([x]) => x === w)?.[1].derived.cycles_per_exec;
  const pct = (r: number) => `${r >= 1 ? '+' : '−'}${Math.abs((r - 1) * 100).toFixed(1)} %`;
  const context: Comparison[] = [];
  const one = at(1);
  for (const [w, fig] of [
    [8, SHUTEMOV_GIT_8],
    [16, SHUTEMOV_GIT_16],
  ] as const) {
    const x = at(w);
    if (one !== undefined && x !== undefined)
      context.push(
        compare(fig, x / one, pct(x / one), `cycles per exec of the shell loop, native, window ${w} against 1`, {
          context: true,
        }),
      );
  }
  const old = all.find((r) => r.platform === 'native' && r.params.prefault_pte === 'old');
  const young = at(Number(old?.params.fault_around));
  if (old !== undefined && young !== undefined) {
    const x = (old.derived.cycles_per_exec ?? 0) / young;
    context.push(
      compare(
        OLD_PTE_REVERT_2016,
        x,
        pct(x),
        `cycles per exec of the shell loop, native, window ${old.params.fault_around}, old against young: the model charges an old PTE's first use one walker A-bit write (tlb.ad_write)`,
        { context: true },
      ),
    );
  }
  return findingOf(
    context,
    `Spread of cycles per exec across fault-around windows: ${spreads.join('; ')}. ${windowDetail(results, 'exec', 'exec')}`,
    'Kamezawa proposed the benchmark ("unixbench\'s exec/shell test") and gave no figure for it.',
  );
}
