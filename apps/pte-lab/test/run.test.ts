import { readFileSync, mkdtempSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runCli } from './cli-helpers.js';

const schema = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'docs', 'run-result.schema.json'), 'utf8'));

/** A validator for the subset of JSON Schema the RunResult schema uses. */
function validate(s: any, v: unknown, path = '$'): string[] {
  const errs: string[] = [];
  const t = s.type;
  const isInt = typeof v === 'number' && Number.isInteger(v);
  if (t === 'object' && (typeof v !== 'object' || v === null || Array.isArray(v))) return [`${path}: not an object`];
  if (t === 'string' && typeof v !== 'string') return [`${path}: not a string`];
  if (t === 'number' && typeof v !== 'number') return [`${path}: not a number`];
  if (t === 'integer' && !isInt) return [`${path}: not an integer`];
  if (s.enum && !s.enum.includes(v)) errs.push(`${path}: ${String(v)} not in enum`);
  if (s.minimum !== undefined && typeof v === 'number' && v < s.minimum) errs.push(`${path}: below minimum`);
  if (t === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) errs.push(`${path}.${r}: missing`);
    for (const [k, val] of Object.entries(o)) {
      if (s.properties?.[k]) errs.push(...validate(s.properties[k], val, `${path}.${k}`));
      else if (s.additionalProperties === false) errs.push(`${path}.${k}: not allowed`);
      else if (typeof s.additionalProperties === 'object')
        errs.push(...validate(s.additionalProperties, val, `${path}.${k}`));
    }
  }
  return errs;
}

async function runJson(...args: string[]) {
  const r = await runCli('run', 'micro/mmap-touch', '--format', 'json', ...args);
  if (r.code !== 0) throw new Error(r.err);
  return JSON.parse(r.out);
}

describe('pte-lab run micro/mmap-touch', () => {
  it('prints a RunResult that matches docs/run-result.schema.json', async () => {
    const r = await runJson('--set', 'size=4MiB');
    expect(validate(schema, r)).toEqual([]);
    expect(r.cycles.total).toBeCloseTo(
      Object.values(r.cycles.by_category as Record<string, number>).reduce((a, b) => a + b, 0),
      6,
    );
    expect(r.command).toBe(
      'pte-lab run micro/mmap-touch --platform native --profile linux-6.18 --seed 1 --set size=4MiB',
    );
  });

  it('is deterministic: the same inputs give the same JSON bytes', async () => {
    const args = [
      'run',
      'micro/mmap-touch',
      '--format',
      'json',
      '--set',
      'size=8MiB',
      '--set',
      'pattern=random:0.5',
      '--seed',
      '7',
    ];
    const a = await runCli(...args);
    const b = await runCli(...args);
    expect(a.out).toBe(b.out);
    const c = await runCli(...args.slice(0, -1), '8');
    expect(c.out).not.toBe(a.out);
  });

  it('linux-3.15, 64 MiB cached file, sequential reads: 1024 minor faults and no unused prefault', async () => {
    const r = await runJson('--profile', 'linux-3.15', '--check');
    expect(r.counters['workload.touches']).toBe(16384);
    expect(r.counters['faults.minor']).toBe(1024);
    expect(r.counters['faults.major']).toBe(0);
    expect(r.counters['pte.populated']).toBe(16384);
    expect(r.counters['pte.prefaulted']).toBe(16384 - 1024);
    expect(r.counters['pte.prefaulted_unused']).toBe(0);
    expect(r.memory.rss_pages).toBe(16384);
  });

  it('linux-3.15: stride:17 faults on every touch; per2m maps 16 PTEs per touch; window 1 faults per page', async () => {
    const stride = await runJson('--profile', 'linux-3.15', '--set', 'pattern=stride:17');
    expect(stride.counters['faults.minor']).toBe(Math.ceil(16384 / 17));
    expect(stride.counters['faults.minor']).toBe(stride.counters['workload.touches']);
    const per2m = await runJson('--profile', 'linux-3.15', '--set', 'pattern=per2m');
    expect(per2m.counters['workload.touches']).toBe(32);
    expect(per2m.counters['faults.minor']).toBe(32);
    expect(per2m.counters['pte.populated']).toBe(16 * 32);
    expect(per2m.counters['pte.prefaulted_unused']).toBe(15 * 32);
    const w1 = await runJson('--profile', 'linux-3.15', '--set', 'fault_around=1');
    expect(w1.counters['faults.minor']).toBe(16384);
    expect(w1.counters['pte.prefaulted']).toBe(0);
  });

  it('linux-6.18 maps whole large folios written in 1 MiB chunks: one fault per folio, 16 for the one ending at EOF', async () => {
    const r = await runJson('--check');
    expect(r.params.io_chunk).toBe('1MiB');
    // 64 folios; the last ends exactly at EOF, so fault-around maps it window by window (the real
    // 6.18.44 kernel: 79 faults, docs/validation.md w-seq-64m).
    expect(r.counters['faults.minor']).toBe(16384 / 256 - 1 + 256 / 16);
  });

  it('MADV_HUGEPAGE anonymous writes: one PMD-mapped THP per 2 MiB on linux-6.18 (native, kvm-tdp), 4 KiB pages with thp=never or under Xen PV', async () => {
    const args = [
      '--set',
      'backing=anon',
      '--set',
      'access=write',
      '--set',
      'advice=hugepage',
      '--set',
      'size=16MiB',
      '--check',
    ];
    for (const platform of ['native', 'kvm-tdp']) {
      const r = await runJson(...args, '--platform', platform);
      expect([
        r.counters['faults.minor'],
        r.counters['thp.fault_alloc'],
        r.counters['pmd.mapped'],
        r.memory.rss_pages,
      ]).toEqual([8, 8, 8, 4096]);
    }
    const never = await runJson(...args, '--set', 'thp=never');
    expect([never.counters['faults.minor'], never.counters['thp.fault_alloc'], never.params.thp]).toEqual([
      4096,
      0,
      'never',
    ]);
    const xen = await runJson(...args, '--platform', 'xen-pv');
    expect(xen.counters['thp.fault_alloc']).toBe(0);
  });

  it('writes --out atomically and leaves nothing behind on failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pte-lab-'));
    const file = join(dir, 'r.json');
    const ok = await runCli('run', 'micro/mmap-touch', '--set', 'size=1MiB', '--format', 'json', '--out', file);
    expect(ok.code).toBe(0);
    expect(ok.out).toBe('');
    expect(JSON.parse(readFileSync(file, 'utf8')).scenario).toBe('micro/mmap-touch');
    const bad = await runCli('run', 'micro/mmap-touch', '--set', 'size=1MiB', '--out', join(dir, 'missing', 'r.txt'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^pte-lab: cannot write --out .*missing\/r\.txt: no directory .*missing\n$/);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
    expect(readdirSync(dir)).toEqual(['r.json']);
  });

  it('prints CSV with one header and one row', async () => {
    const r = await runCli('run', 'micro/mmap-touch', '--set', 'size=1MiB', '--format', 'csv');
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(2);
    const cols = lines[0]!.split(',');
    const vals = lines[1]!.split(',');
    expect(cols.length).toBe(vals.length);
    expect(vals[cols.indexOf('counters.workload.touches')]).toBe('256');
  });

  it('prints the scenario table by default', async () => {
    const r = await runCli('run', 'micro/mmap-touch', '--set', 'size=1MiB', '--profile', 'linux-3.15');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^micro\/mmap-touch  platform=native  profile=linux-3.15  seed=1\n/);
    expect(r.out).toMatch(/faults \(minor\)\s+16\n/);
    expect(r.out).toMatch(
      /regenerate: pte-lab run micro\/mmap-touch --platform native --profile linux-3.15 --seed 1 --set size=1MiB/,
    );
  });
});

describe('pte-lab run micro/mmap-touch: anonymous prefault (16 MiB of writes, seed 1)', () => {
  const anon = (pattern: string, policy: string) =>
    runJson(
      '--set',
      'backing=anon',
      '--set',
      'access=write',
      '--set',
      'size=16MiB',
      '--set',
      `pattern=${pattern}`,
      '--set',
      `anon_prefault=${policy}`,
      '--check',
    );

  it('adaptive takes about 8x fewer faults than off on a sequential write stream', async () => {
    const off = await anon('seq', 'off');
    const adaptive = await anon('seq', 'adaptive');
    expect(off.counters['faults.total']).toBe(4096);
    expect(adaptive.counters['faults.total']).toBe(515);
    expect(adaptive.counters['pte.prefaulted_unused']).toBe(0);
  });

  it('on 25 % of the pages in random order adaptive never predicts, so it wastes no more than off; fixed:8 does', async () => {
    const off = await anon('random:0.25', 'off');
    const adaptive = await anon('random:0.25', 'adaptive');
    const fixed = await anon('random:0.25', 'fixed:8');
    expect([off, adaptive, fixed].map((r) => r.counters['pte.prefaulted_unused'])).toEqual([0, 0, 2156]);
    expect(fixed.memory.peak_rss_pages).toBe(3180);
  });

  it('on 25 % of the pages in address order adaptive allocates pages that are never touched', async () => {
    const off = await anon('sparse:0.25', 'off');
    const adaptive = await anon('sparse:0.25', 'adaptive');
    expect(off.counters['pte.prefaulted_unused']).toBe(0);
    expect(adaptive.counters['pte.prefaulted_unused']).toBe(298);
    expect(adaptive.counters['pages.allocated']).toBe(1024 + 298);
    expect(adaptive.memory.peak_rss_pages).toBeGreaterThan(off.memory.peak_rss_pages);
  });
});

describe('pte-lab run micro/mmap-touch: 64 MiB of anonymous writes in a 32 MiB guest', () => {
  const anon = (...extra: string[]) =>
    runJson(
      '--set',
      'backing=anon',
      '--set',
      'access=write',
      '--set',
      'size=64MiB',
      '--set',
      'mem=32MiB',
      '--set',
      'reclaim=on',
      '--check',
      ...extra,
    );

  it('runs out of memory without swap, with one clear line', async () => {
    const r = await runCli(
      'run',
      'micro/mmap-touch',
      '--set',
      'backing=anon',
      '--set',
      'access=write',
      '--set',
      'size=64MiB',
      '--set',
      'mem=32MiB',
      '--set',
      'reclaim=on',
    );
    expect(r.code).not.toBe(0);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/guest out of memory: .*not reclaimable without swap/);
  });

  it('with swap, pages go out and the touches complete; a second pass over the region swaps them back in', async () => {
    const once = await anon('--set', 'swap=64MiB');
    expect(once.counters['workload.touches']).toBe(16384);
    expect(once.counters['swap.writes']).toBeGreaterThan(16384 - 8192);
    expect(once.counters['faults.swap'] ?? 0).toBe(0);
    expect(once.memory.peak_rss_pages).toBeLessThanOrEqual(8192);
    const twice = await anon('--set', 'swap=64MiB', '--set', 'pattern=hotset:1:2');
    expect(twice.counters['faults.swap']).toBeGreaterThan(0);
    expect(twice.counters['faults.swap']).toBe(twice.counters['swap.reads']);
    expect(twice.cycles.by_category['io.wait']).toBeGreaterThan(once.cycles.by_category['io.wait'] ?? 0);
  });

  it('a swap device too small for the overflow still runs out of memory', async () => {
    const r = await runCli(
      'run',
      'micro/mmap-touch',
      '--set',
      'backing=anon',
      '--set',
      'access=write',
      '--set',
      'size=64MiB',
      '--set',
      'mem=32MiB',
      '--set',
      'reclaim=on',
      '--set',
      'swap=4MiB',
    );
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/guest out of memory: .*0 swap slots free/);
  });
});

describe('pte-lab run micro/mmap-touch on a cold file (linux-3.15, 64 MiB, read-around 32 pages)', () => {
  const cold = (pattern: string, advice = 'normal') =>
    runJson(
      '--profile',
      'linux-3.15',
      '--set',
      'cache=cold',
      '--set',
      `pattern=${pattern}`,
      '--set',
      `advice=${advice}`,
      '--check',
    );

  it('sequential: one major fault, then the async windows keep ahead — 16384 / 32 = 512 reads', async () => {
    const r = await cold('seq');
    expect(r.counters['faults.major']).toBe(1);
    expect(r.counters['io.requests']).toBe(512);
    expect(r.counters['io.pages']).toBe(16384);
  });

  it('reverse: each major fault at page p reads p-16..p (the pages above are cached): ceil(16384 / 17) = 964', async () => {
    const r = await cold('reverse');
    expect(r.counters['faults.major']).toBe(964);
    expect(r.counters['io.requests']).toBe(964);
    expect(r.counters['io.pages']).toBe(16384);
  });

  it('random: MADV_RANDOM reads one page per major fault; read-around reads more pages than it was asked for', async () => {
    const rnd = await cold('random:0.25', 'random');
    expect(rnd.counters['faults.major']).toBe(4096);
    expect(rnd.counters['io.requests']).toBe(4096);
    expect(rnd.counters['io.pages']).toBe(4096);
    const around = await cold('random:0.25');
    expect(around.counters['faults.major']).toBeLessThan(4096);
    expect(around.counters['io.requests']).toBeGreaterThanOrEqual(around.counters['faults.major']);
    expect(around.counters['io.pages']).toBeGreaterThan(4096);
  });
});

describe('costs per era (ERA_COSTS)', () => {
  const run = async (...set: string[]) =>
    JSON.parse(
      (
        await runCli(
          'run',
          'micro/mmap-touch',
          '--platform',
          'kvm-shadow',
          '--profile',
          'linux-2.6.27',
          '--set',
          'size=4MiB',
          ...set.flatMap((x) => ['--set', x]),
          '--format',
          'json',
        )
      ).out,
    );

  it('linux-2.6.27 prices a VM exit at 2008 Core 2 cost (1800 cycles); --set cost.kvm.exit still wins', async () => {
    const era = await run();
    const same = await run('cost.kvm.exit=1800');
    const modern = await run('cost.kvm.exit=1100');
    expect(era.cycles.total).toBe(same.cycles.total);
    const exits = era.counters['kvm.exits'];
    expect(exits).toBeGreaterThan(0);
    expect(era.cycles.total - modern.cycles.total).toBe(exits * 700);
  });
});

describe('thread scenarios', () => {
  const run = async (...args: string[]) => {
    const r = await runCli('run', ...args, '--format', 'json', '--check');
    if (r.code !== 0) throw new Error(r.err);
    return JSON.parse(r.out);
  };

  it('thread/xen-batching: one update_va_mapping per fault vs 16 mmu_updates per fault-around vs one batched', async () => {
    const r = await run('thread/xen-batching', '--set', 'size=4MiB');
    expect(r.platform).toBe('xen-pv');
    const d = r.derived;
    expect(d['uva.faults']).toBe(1024);
    expect(d['unbatched.faults']).toBe(64);
    expect(d['batched.faults']).toBe(64);
    // Populating 1024 PTEs: one hypercall per PTE unbatched, one mmu_update of 16 per fault batched;
    // batched also folds the table allocations inside fault-around into the same multicalls.
    expect(d['unbatched.hypercalls'] - d['batched.hypercalls']).toBeGreaterThanOrEqual(1024 - 64);
    expect(d['unbatched.hypercalls_per_fault']).toBeGreaterThanOrEqual(16);
    expect(d['batched.hypercalls_per_fault']).toBeLessThan(1.1);
    expect(d['batched.cycles_per_pte']).toBeLessThan(d['unbatched.cycles_per_pte']);
    expect(d['unbatched.cycles_per_pte']).toBeLessThan(d['uva.cycles_per_pte']);
  });

  it('thread/kvm-accessed-bit: young prefault lies about untouched pages, old costs exits, deferred A/D does neither', async () => {
    const r = await run('thread/kvm-accessed-bit');
    const d = r.derived;
    expect(d['young.young_untouched']).toBe(3072); // stride:4 over 4096 pages: 3 of every 4 prefaulted, never touched
    expect(d['old.young_untouched']).toBe(0);
    expect(d['deferred.young_untouched']).toBe(0);
    expect(d['old.exits']).toBeGreaterThan(d['young.exits']);
    expect(d['deferred.exits'] - d['young.exits']).toBe(1); // the one A/D sync hypercall
    // Under memory pressure reclaim can tell cold from hot only when the A bits are truthful.
    expect(d['young.reclaim_precision']).toBeLessThan(1);
    expect(d['young.evicted_hot']).toBeGreaterThan(0);
    expect(d['old.reclaim_precision']).toBe(1);
    expect(d['deferred.reclaim_precision']).toBe(1);
    expect(d['deferred.refaults']).toBeLessThan(d['young.refaults']);
  });

  it('thread/major-fault-readahead: read-around clusters sequential IO and over-reads random', async () => {
    const r = await run('thread/major-fault-readahead', '--profile', 'linux-3.15', '--set', 'size=4MiB');
    const d = r.derived;
    expect(d['seq.readaround.major_faults']).toBe(1);
    expect(d['seq.readaround.io_requests']).toBe(1024 / 32);
    expect(d['seq.off.io_requests']).toBe(1024);
    expect(d['random.random.io_pages']).toBe(256);
    expect(d['random.readaround.read_unused']).toBeGreaterThan(0);
  });
});

describe('pte-lab run: bad input gives one clear line and exit code 2', () => {
  it.each([
    [['run', 'no/such'], /^pte-lab: unknown scenario 'no\/such' \(scenarios: micro\/mmap-touch/],
    [
      ['run', 'micro/mmap-touch', '--set', 'bogus=1'],
      /^pte-lab: unknown --set key 'bogus' for micro\/mmap-touch \(keys: backing, /,
    ],
    [['run', 'micro/mmap-touch', '--set', 'size=12Q'], /^pte-lab: --set size: '12Q' is not a size/],
    [['run', 'micro/mmap-touch', '--set', 'mem=lots'], /^pte-lab: --set mem: 'lots' is not a size/],
    [['run', 'micro/mmap-touch', '--set', 'size'], /^pte-lab: --set 'size' is not key=value/],
    [['run', 'micro/mmap-touch', '--set', 'fault_around=3'], /fault_around/],
    [['run', 'micro/mmap-touch', '--set', 'cost.tlb.bogus=1'], /unknown cost 'tlb\.bogus'/],
    [
      ['run', 'micro/mmap-touch', '--set', 'cost.guest.fault=x'],
      /^pte-lab: --set cost\.guest\.fault: unknown cost 'guest\.fault'/,
    ],
    [
      ['run', 'micro/mmap-touch', '--set', 'cost.tlb.invlpg=fast'],
      /--set cost\.tlb\.invlpg: 'fast' is not a number of cycles/,
    ],
    [
      ['run', 'micro/mmap-touch', '--profile', 'linux-9'],
      /^pte-lab: unknown profile 'linux-9' \(profiles are linux-2\.6\.27, linux-3\.15, linux-6\.18\)/,
    ],
    [['run', 'micro/mmap-touch', '--platform', 'vax'], /^pte-lab: --platform: unknown platform 'vax'/],
    [['run', 'micro/mmap-touch', '--seed', 'x'], /^pte-lab: --seed: 'x' is not a non-negative integer/],
    [['run', 'micro/mmap-touch', '--format', 'xml'], /^pte-lab: --format 'xml' is not table, json or csv/],
    [['run', 'micro/mmap-touch', '--set', 'swap=64MiB'], /^pte-lab: --set swap: needs --set reclaim=on/],
    [['run', 'micro/mmap-touch', '--set', 'thp=always'], /^pte-lab: --set thp: 'always' is not one of never, madvise/],
    [
      ['run', 'micro/mmap-touch', '--profile', 'linux-2.6.27', '--set', 'thp=madvise'],
      /^pte-lab: --set thp: linux-2\.6\.27 has no transparent huge pages/,
    ],
    [
      ['run', 'micro/mmap-touch', '--set', 'reclaim=on', '--set', 'swap=6000'],
      /^pte-lab: --set swap: 6000 bytes is not a positive multiple of 4KiB/,
    ],
    [
      ['run', 'micro/mmap-touch', '--set', 'reclaim=on', '--set', 'swap=much'],
      /^pte-lab: --set swap: 'much' is not a size/,
    ],
  ])('%j', async (args, msg) => {
    const r = await runCli(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('a cost override changes the charged cycles', async () => {
    const base = await runJson('--set', 'size=1MiB');
    const dearer = await runJson('--set', 'size=1MiB', '--set', 'cost.guest.fault_entry=3000');
    const faults = base.counters['faults.total'];
    expect(dearer.cycles.by_category['guest.fault'] - base.cycles.by_category['guest.fault']).toBe(1500 * faults);
    expect(dearer.params['cost.guest.fault_entry']).toBe('3000');
  });
});

describe('pte-lab list', () => {
  it('lists micro/mmap-touch with its platforms, and its keys with --keys', async () => {
    const r = await runCli('list', '--keys');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/micro\/mmap-touch\s+native,xen-pv,kvm-shadow,kvm-tdp\s+map a file/);
    expect(r.out).toMatch(/anon_prefault\s+off \| fixed/);
  });
});
