import { basename } from 'node:path';
import { configError, usageError } from '@pte/core';
import {
  addChunkStats,
  formatAnonPrefault,
  getProfile,
  type Inode,
  Machine,
  type MachineOptions,
  newTraceStats,
  OP_INSTR,
  PAGES_PER_2M,
  parsePlatform,
  readTraceFile,
  type RecordChunk,
  type RunResult,
  sortedRecord,
  type Task,
  type TraceFormat,
  type TraceStats,
  VM_EXEC,
  VM_READ,
  VM_WRITE,
} from '@pte/machine';
import {
  applyPolicy,
  checkSettingsFor,
  COMMON_KEYS,
  costParams,
  hostBackedParam,
  runCosts,
  guestMemBytes,
  machineSettings,
  parseSetPairs,
  shellWord,
} from '../run-scenario.js';
import { parseMaps, writableRelro, type MapsEntry } from './maps.js';
import { ReplayLoop } from './touch-loop.js';

/** Keys of `pte-lab replay` besides the common ones. */
export const REPLAY_KEYS: Readonly<Record<string, string>> = {
  cache:
    "warm | cold: the page cache of files named in --maps before the replay (default warm: a program's libraries are usually cached)",
  coalesce: 'on | off: merge consecutive touches of a page that are TLB hits (exact; off is for checking; default on)',
};

export interface ReplayOptions {
  readonly trace: string;
  readonly format: TraceFormat;
  readonly maps?: string;
  readonly platform?: string;
  readonly profile: string;
  readonly set: readonly string[];
  readonly seed: number;
  readonly check: boolean;
  /** A cost file (--costs FILE) whose costs replace the defaults; `cost.<key>` keys override it. */
  readonly costs?: string;
}

/** What the replay's first pass learned: 2 MiB blocks touched (bit 0: fetched from) and totals. */
interface FirstPass {
  readonly blocks: Map<number, number>;
  /** With --maps: the blocks with touched pages outside every maps line (bit 0: fetched from). */
  readonly uncovered: Map<number, number>;
  readonly stats: TraceStats;
}

/** Rows of the replay table. */
export const REPLAY_ROWS: ReadonlyArray<readonly [string, string]> = [
  ['trace records (I/L/S/M)', 'counters.trace.records'],
  ['page touches', 'counters.workload.touches'],
  ['VMAs set up (maps lines or regions)', 'counters.replay.vmas'],
  ['fallback VMAs (touches outside --maps)', 'counters.replay.fallback_vmas'],
  ['faults (minor)', 'counters.faults.minor'],
  ['faults (major)', 'counters.faults.major'],
  ['faults (anon)', 'counters.faults.anon'],
  ['faults (file)', 'counters.faults.file'],
  ['faults (COW)', 'counters.faults.cow'],
  ['SIGSEGV (no VMA or no permission)', 'counters.workload.segv'],
  ['PTEs populated', 'counters.pte.populated'],
  ['PTEs prefaulted', 'counters.pte.prefaulted'],
  ['prefaulted, never used', 'counters.pte.prefaulted_unused'],
  ['TLB misses', 'counters.tlb.misses'],
  ['RSS (pages)', 'memory.rss_pages'],
  ['cycles', 'cycles.total'],
  ['cycles per touched page', 'derived.cycles_per_touch'],
];

/**
 * `pte-lab replay`: a real program's memory trace through the machine.
 *
 * Two streaming passes over the trace, each with one fixed read buffer:
 * 1. check every line and collect the set of 2 MiB blocks touched (bounded: one map entry per
 *    touched 2 MiB of address space) and the trace's totals;
 * 2. set up the address space (not measured), then replay every access as page touches and exit (measured).
 * Address space: with --maps, one VMA per maps line at its own address (MAP_FIXED); file-backed
 * lines become private (or shared) mappings of page-cache files sized to cover every mapped
 * offset; anonymous lines ([heap], [stack], unnamed) anonymous mappings; protections as printed,
 * except RELRO parts, which are writable (see writableRelro); touched pages outside every line get
 * anonymous fallback mappings (see setupFallback).
 * Without --maps, the heuristic: touched 2 MiB blocks, merged when adjacent, each run one
 * anonymous private mapping, read-write, and executable if any instruction was fetched from it.
 */
export function replayTrace(o: ReplayOptions): RunResult {
  const platform = parsePlatform(o.platform ?? 'native');
  const profile = getProfile(o.profile);
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw usageError(`--seed ${o.seed} is not a non-negative integer`);
  const set = parseSetPairs(o.set);
  const costSet: Record<string, string> = {};
  for (const [key, value] of Object.entries(set)) {
    if (key.startsWith('cost.')) costSet[key.slice(5)] = value;
    else if (!(key in COMMON_KEYS) && !(key in REPLAY_KEYS)) {
      throw configError(
        `unknown --set key '${key}' for replay`,
        `keys: ${[...Object.keys(REPLAY_KEYS), ...Object.keys(COMMON_KEYS)].join(', ')}`,
      );
    }
  }
  const cache = onOff('cache', set.cache ?? 'warm', ['warm', 'cold']);
  const coalesce = onOff('coalesce', set.coalesce ?? 'on', ['on', 'off']) === 'on';
  const policy = applyPolicy(profile.policy, set);
  const { costs, costFile } = runCosts(o.costs, costSet, profile.name);
  const settings = machineSettings(set);
  checkSettingsFor(settings, platform, profile);
  const maps = o.maps !== undefined ? parseMaps(o.maps) : null;
  const relro = maps !== null ? writableRelro(maps) : 0;

  // Pass 1: validate the whole trace (nothing runs if a line is malformed) and collect blocks.
  const first = firstPass(o.trace, o.format, maps);
  const fileBytes = maps === null ? 0 : fileSizes(maps).total;
  const memBytes = guestMemBytes(set, defaultMem(first.blocks.size, fileBytes));

  const options: MachineOptions = {
    platform,
    profile,
    policy,
    memBytes,
    seed: o.seed,
    costs,
    check: o.check,
    ...settings,
  };
  const m = new Machine(options);
  const task = m.spawn();
  const vmas = maps !== null ? setupFromMaps(m, task, maps, cache === 'cold') : setupHeuristic(m, task, first.blocks);
  const fallback = maps !== null ? setupFallback(m, task, maps, first.uncovered) : 0;
  m.verify('after replay setup');

  // Pass 2: the replay, measured.
  m.startMeasurement();
  const loop = new ReplayLoop(m, task, coalesce);
  let chunks = 0;
  readTraceFile(o.trace, o.format, (c: RecordChunk) => {
    loop.records(c);
    if (o.check && (++chunks & 15) === 0) m.verify('during replay');
  });
  loop.flush();
  m.noteRss();
  m.verify('after replay');
  // The traced program ran to its end: its exit is part of the run (exit_mmap → zap_pte_range),
  // and the zap is where a prefaulted PTE never used is counted (pte.prefaulted_unused).
  m.exit(task);
  m.verify('after replay exit');

  const cycles = sortedRecord(m.measuredCycles());
  let total = 0;
  for (const v of Object.values(cycles) as number[]) total += v;
  const s = first.stats;
  const counters = sortedRecord({
    ...m.measuredCounters(),
    'trace.records': s.byOp[0] + s.byOp[1] + s.byOp[2] + s.byOp[3],
    'trace.instr': s.byOp[0],
    'trace.loads': s.byOp[1],
    'trace.stores': s.byOp[2],
    'trace.modifies': s.byOp[3],
    'trace.crossing': s.crossing,
    'trace.touches': s.touches,
    'replay.vmas': vmas,
    'replay.relro_vmas': relro,
    'replay.fallback_vmas': fallback,
    'replay.blocks_2m': first.blocks.size,
  });
  const touches = counters['workload.touches'] ?? 0;
  const params: Record<string, string> = {
    trace: basename(o.trace),
    trace_format: o.format,
    maps: o.maps !== undefined ? basename(o.maps) : 'heuristic',
    cache,
    coalesce: coalesce ? 'on' : 'off',
    fault_around: String(policy.faultAround),
    prefault_pte: policy.prefaultOld ? 'old' : 'young',
    anon_prefault: formatAnonPrefault(policy.anonPrefault),
    mem: String(memBytes),
  };
  for (const key of Object.keys(COMMON_KEYS))
    if (set[key] !== undefined && params[key] === undefined) params[key] = set[key]!;
  Object.assign(params, hostBackedParam(platform, settings.hostBacked), costParams(costFile, costSet));
  return {
    scenario: 'replay',
    platform,
    profile: profile.name,
    seed: o.seed,
    params: sortedRecord(params),
    counters,
    cycles: { total, by_category: cycles },
    memory: { rss_pages: m.rssPages, peak_rss_pages: m.peakRssPages },
    derived: sortedRecord({ cycles_per_touch: touches > 0 ? total / touches : 0 }),
    command: replayCommand(o, platform),
  };
}

function onOff<T extends string>(key: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value))
    throw configError(`--set ${key}: '${value}' is not one of ${choices.join(', ')}`);
  return value as T;
}

function firstPass(trace: string, format: TraceFormat, maps: readonly MapsEntry[] | null): FirstPass {
  const blocks = new Map<number, number>();
  const uncovered = new Map<number, number>();
  const stats = newTraceStats();
  let hint = 0;
  /** Is page `vpn` inside a maps line? (binary search, with the last hit tried first) */
  const covered = (vpn: number): boolean => {
    if (maps === null) return true;
    const h = maps[hint];
    if (h !== undefined && vpn >= h.startVpn && vpn < h.endVpn) return true;
    let lo = 0;
    let hi = maps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = maps[mid]!;
      if (vpn < e.startVpn) hi = mid - 1;
      else if (vpn >= e.endVpn) lo = mid + 1;
      else {
        hint = mid;
        return true;
      }
    }
    return false;
  };
  readTraceFile(trace, format, (c) => {
    addChunkStats(stats, c);
    for (let i = 0; i < c.length; i++) {
      const fetch = c.op[i] === OP_INSTR ? 1 : 0;
      const v0 = c.vpn[i]!;
      const v1 = v0 + c.pages[i]! - 1;
      for (let b = Math.floor(v0 / PAGES_PER_2M); b <= Math.floor(v1 / PAGES_PER_2M); b++)
        blocks.set(b, (blocks.get(b) ?? 0) | fetch);
      for (let v = v0; v <= v1; v++) {
        if (!covered(v)) {
          const b = Math.floor(v / PAGES_PER_2M);
          uncovered.set(b, (uncovered.get(b) ?? 0) | fetch);
        }
      }
    }
  });
  return { blocks, uncovered, stats };
}

/**
 * With --maps: the trace touched pages outside every maps line (a mapping the program removed
 * before the maps were captured at exit, such as ld.so's mapping of /etc/ld.so.cache). Fill the
 * gaps of each such 2 MiB block with anonymous private mappings, read-write (and executable if
 * fetched from), as the heuristic layout would. Returns how many mappings it made.
 */
function setupFallback(
  m: Machine,
  task: Task,
  maps: readonly MapsEntry[],
  uncovered: ReadonlyMap<number, number>,
): number {
  let n = 0;
  for (const b of [...uncovered.keys()].sort((x, y) => x - y)) {
    const prot = VM_READ | VM_WRITE | (uncovered.get(b)! !== 0 ? VM_EXEC : 0);
    let at = b * PAGES_PER_2M;
    const end = at + PAGES_PER_2M;
    for (const e of maps) {
      if (e.endVpn <= at || e.startVpn >= end) continue;
      if (e.startVpn > at) {
        m.mmap(task, { pages: e.startVpn - at, prot, shared: false, file: null, fixedVpn: at });
        n++;
      }
      at = Math.max(at, e.endVpn);
    }
    if (at < end) {
      m.mmap(task, { pages: end - at, prot, shared: false, file: null, fixedVpn: at });
      n++;
    }
  }
  return n;
}

/** Default guest memory: every touched 2 MiB block twice over (data and page tables, with room), the mapped files, and 64 MiB. */
function defaultMem(blocks: number, fileBytes: number): number {
  const bytes = 64 * 2 ** 20 + 2 * blocks * 2 ** 21 + fileBytes;
  return Math.ceil(bytes / 2 ** 21) * 2 ** 21;
}

function fileSizes(maps: readonly MapsEntry[]): { sizes: Map<string, number>; total: number } {
  const sizes = new Map<string, number>();
  for (const e of maps) {
    if (e.file === null) continue;
    const end = (e.pgoff + e.endVpn - e.startVpn) * 4096;
    sizes.set(e.file, Math.max(sizes.get(e.file) ?? 0, end));
  }
  let total = 0;
  for (const v of sizes.values()) total += v;
  return { sizes, total };
}

/** One VMA per maps line, at its address; files in the page cache (read in first unless cold). */
function setupFromMaps(m: Machine, task: Task, maps: readonly MapsEntry[], cold: boolean): number {
  const files = new Map<string, Inode>();
  for (const [path, size] of fileSizes(maps).sizes) {
    const inode = m.createFile(path, size);
    if (!cold) m.readFile(inode, 32); // read() in 128 KiB calls
    files.set(path, inode);
  }
  for (const e of maps) {
    m.mmap(task, {
      pages: e.endVpn - e.startVpn,
      prot: e.prot,
      shared: e.shared,
      file: e.file === null ? null : files.get(e.file)!,
      pgoff: e.pgoff,
      fixedVpn: e.startVpn,
    });
  }
  return maps.length;
}

/** The heuristic layout: runs of adjacent touched 2 MiB blocks, one anonymous mapping each. */
function setupHeuristic(m: Machine, task: Task, blocks: ReadonlyMap<number, number>): number {
  const ids = [...blocks.keys()].sort((a, b) => a - b);
  let n = 0;
  for (let i = 0; i < ids.length;) {
    let j = i;
    let fetched = blocks.get(ids[i]!)!;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) fetched |= blocks.get(ids[++j]!)!;
    const start = ids[i]! * PAGES_PER_2M;
    const pages = (ids[j]! - ids[i]! + 1) * PAGES_PER_2M;
    m.mmap(task, {
      pages,
      prot: VM_READ | VM_WRITE | (fetched !== 0 ? VM_EXEC : 0),
      shared: false,
      file: null,
      fixedVpn: start,
    });
    n++;
    i = j + 1;
  }
  return n;
}

/** The command that regenerates a replay. */
export function replayCommand(o: ReplayOptions, platform: string): string {
  const sets = o.set.map((s) => ` --set ${s}`).join('');
  const maps = o.maps !== undefined ? ` --maps ${o.maps}` : '';
  const costs = o.costs !== undefined ? ` --costs ${shellWord(o.costs)}` : '';
  return `pte-lab replay ${o.trace} --trace-format ${o.format}${maps} --platform ${platform} --profile ${o.profile} --seed ${o.seed}${costs}${sets}${o.check ? ' --check' : ''}`;
}
