import { runCli } from './cli-helpers.js';
import { getScenario } from '../src/scenarios/catalogue.js';
import { buildReport } from '../src/report/build-report.js';

async function runJson(scenario: string, ...args: string[]) {
  const r = await runCli('run', scenario, '--format', 'json', ...args);
  if (r.code !== 0) throw new Error(r.err);
  return JSON.parse(r.out) as {
    derived: Record<string, number>;
    counters: Record<string, number>;
    params: Record<string, string>;
    platform: string;
  };
}

const VMAP = 'vmap/lazy-flush';
const GATED = 'thread/madvise-gated';
const GUARDS = ['always', 'check', 'pt_cache'] as const;

describe('vmap/lazy-flush', () => {
  // 4 rounds × 8 vmalloc/vfree of 4 pages: 32 vunmaps; lazy_max 16 pages purges at every 5th.
  const small = [
    '--set',
    'rounds=4',
    '--set',
    'vmaps=8',
    '--set',
    'area=4',
    '--set',
    'tables=2',
    '--set',
    'lazy_max=16',
    '--set',
    'nr_cpus=8',
  ];

  it.each(['xen-pv', 'native'])(
    'on %s eager flushes once per vunmap with an IPI to each other CPU; lazy once per purge',
    async (platform) => {
      const r = await runJson(VMAP, '--platform', platform, ...small);
      const d = r.derived;
      expect(d['eager.vunmaps']).toBe(32);
      expect(d['eager.flushes']).toBe(32);
      expect(d['eager.ipis']).toBe(32 * 7);
      expect(d['eager.purges']).toBe(0);
      // 4-page areas pass 16 lazy pages at the 5th: 6 purges in 32 vunmaps, then the final drain.
      expect(d['lazy.purges']).toBe(7);
      expect(d['lazy.flushes']).toBe(7);
      expect(d['lazy.ipis']).toBe(7 * 7);
      expect(d['lazy.unmap_aliases']).toBe(0);
      expect(d['lazy.cycles']).toBeLessThan(d['eager.cycles']!);
      expect(d['eager.flush_cycles']).toBeGreaterThan(d['lazy.flush_cycles']!);
      for (const v of ['eager', 'lazy', ...GUARDS]) expect(d[`${v}.rounds_done`]).toBe(4);
      // Every variant's flushes are its purges, except eager's.
      for (const v of ['lazy', 'lazy-2008', ...GUARDS]) expect(d[`${v}.flushes`]).toBe(d[`${v}.purges`]);
    },
  );

  it("with the kernel's lazy_max_pages the only lazy flush is the final drain", async () => {
    const r = await runJson(VMAP, '--set', 'rounds=4', '--set', 'vmaps=8');
    expect(r.derived.lazy_max_pages).toBe(3 * 8192); // fls(4) × 32 MiB / 4 KiB
    expect(r.derived['lazy.flushes']).toBe(1);
    expect(r.derived['eager.flushes']).toBe(32);
  });

  it('on xen-pv, PTEs kept until the purge (lazy-2008) without a guard make Xen refuse a pin in the first round', async () => {
    const r = await runJson(VMAP, '--platform', 'xen-pv', ...small);
    const d = r.derived;
    expect(d['lazy-2008.refused']).toBeGreaterThan(0);
    expect(d['lazy-2008.alias_pins']).toBeGreaterThan(0);
    expect(d['lazy-2008.rounds_done']).toBe(0);
    // PTEs cleared at vunmap (or eagerly) leave no alias: nothing to refuse.
    for (const v of ['eager', 'lazy']) {
      expect(d[`${v}.alias_pins`]).toBe(0);
      expect(d[`${v}.refused`]).toBe(0);
    }
    // The guards: no refusal, every round done.
    for (const v of GUARDS) expect(d[`${v}.refused`]).toBe(0);
    // vm_unmap_aliases before every pin calls it at least as often as the per-page check, which
    // calls it only for a page that has an alias.
    expect(d['always.unmap_aliases']).toBeGreaterThanOrEqual(d['check.unmap_aliases']!);
    expect(d['check.unmap_aliases']).toBeGreaterThan(0);
    expect(d['check.unmap_aliases']).toBeLessThanOrEqual(d['check.alias_pins']!);
    expect(d['always.unmap_aliases']).toBeGreaterThanOrEqual(d['always.pins']! / 2);
    // The cache hands out only alias-free pages, with one vm_unmap_aliases per refill.
    expect(d['pt_cache.alias_pins']).toBe(0);
    expect(d['pt_cache.unmap_aliases']).toBe(d['pt_cache.pt_cache_refills']);
    // 16 pages, filled before the measurement and kept full by the child's freed tables: no refill.
    expect(d['pt_cache.pt_cache_refills']).toBe(0);
    expect(d['pt_cache.flushes']).toBe(d['lazy.flushes']);
  });

  it('natively nothing is pinned, so lazy-2008 completes with its aliases', async () => {
    const r = await runJson(VMAP, '--platform', 'native', ...small);
    expect(r.derived['lazy-2008.rounds_done']).toBe(4);
    expect(r.derived['lazy-2008.refused']).toBe(0);
    expect(r.derived['lazy-2008.pins']).toBe(0);
  });

  it('--check runs (strict Xen) give the same figures', async () => {
    const a = await runJson(VMAP, '--platform', 'xen-pv', ...small);
    const b = await runJson(VMAP, '--platform', 'xen-pv', '--check', ...small);
    expect(b.derived['eager.flushes']).toBe(a.derived['eager.flushes']);
    expect(b.derived['check.unmap_aliases']).toBe(a.derived['check.unmap_aliases']);
    expect(b.derived['lazy-2008.rounds_done']).toBe(0);
    expect(b.derived['lazy-2008.refused']).toBeGreaterThan(0);
  });

  it("the pt_cache key sizes the cache variant's cache", async () => {
    const r = await runJson(VMAP, '--platform', 'xen-pv', ...small, '--set', 'pt_cache=2');
    expect(r.derived['pt_cache.pt_cache_refills']).toBeGreaterThan(1);
    expect(r.derived['pt_cache.alias_pins']).toBe(0);
    expect(r.derived['pt_cache.refused']).toBe(0);
  });
});

describe('thread/madvise-gated', () => {
  // 2 sequential + 1 WILLNEED + 2 random mappings of 1 MiB (256 pages) each.
  const small = ['--set', 'size=1MiB'];

  it.each(['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'])(
    'on %s: off faults on every touch; always maps a window per fault',
    async (platform) => {
      const r = await runJson(GATED, '--platform', platform, ...small);
      const d = r.derived;
      expect(d.window).toBe(16);
      for (const cl of ['seq', 'willneed', 'random']) {
        expect(d[`off.${cl}.faults`]).toBe(d[`off.${cl}.touches`]);
        expect(d[`off.${cl}.populated`]).toBe(d[`off.${cl}.touches`]);
        expect(d[`off.${cl}.prefaulted_unused`]).toBe(0);
        // Every populated PTE was either touched or counted unused at munmap.
        expect(d[`always.${cl}.populated`]).toBe(d[`always.${cl}.touches`]! + d[`always.${cl}.prefaulted_unused`]!);
        expect(d[`always.${cl}.touches`]).toBe(d[`off.${cl}.touches`]);
      }
      expect(d['off.seq.touches']).toBe(512);
      expect(d['always.seq.faults']).toBe(512 / 16);
      expect(d['always.willneed.faults']).toBe(256 / 16);
      expect(d['always.seq.prefaulted_unused']).toBe(0);
      expect(d['always.random.faults']).toBeLessThan(d['off.random.faults']!);
      expect(d['always.random.prefaulted_unused']).toBeGreaterThan(0);
      for (const v of ['always', 'off']) {
        expect(d[`${v}.faults`]).toBe(d[`${v}.seq.faults`]! + d[`${v}.willneed.faults`]! + d[`${v}.random.faults`]!);
        expect(d[`${v}.cycles`]).toBeCloseTo(
          d[`${v}.seq.cycles`]! + d[`${v}.willneed.cycles`]! + d[`${v}.random.cycles`]!,
          3,
        );
      }
      if (platform === 'xen-pv') expect(d['off.traps']).toBeGreaterThan(0);
      // Gated: the advised classes fault like always-on, the unadvised one like off.
      for (const cl of ['seq', 'willneed']) {
        expect(d[`gated.${cl}.faults`]).toBe(d[`always.${cl}.faults`]);
        expect(d[`gated.${cl}.prefaulted_unused`]).toBe(d[`always.${cl}.prefaulted_unused`]);
      }
      expect(d['gated.random.faults']).toBe(d['off.random.faults']);
      expect(d['gated.random.prefaulted_unused']).toBe(0);
    },
  );

  it("window sets the always-on variant's fault-around; WILLNEED reads are counted outside the measurement", async () => {
    const r = await runJson(GATED, ...small, '--set', 'window=64', '--set', 'rand_maps=0');
    expect(r.derived['always.seq.faults']).toBe(512 / 64);
    expect(r.derived['off.random.touches']).toBe(0);
    expect(r.counters['faults.major'] ?? 0).toBe(0);
    expect(r.counters['io.requests'] ?? 0).toBe(0);
  });
});

describe('bad --set values: one clear error line, exit 2', () => {
  it.each([
    [VMAP, 'rounds=0', /--set rounds: 0 is not from 1 to 4096/],
    [VMAP, 'area=x', /--set area/],
    [VMAP, 'lazy_max=0', /--set lazy_max/],
    [VMAP, 'vmap=sometimes', /--set vmap: 'sometimes' is not one of eager, lazy, lazy-2008/],
    [GATED, 'window=3', /--set window: 3 is not a power of two/],
    [GATED, 'pattern=zigzag', /--set pattern: 'zigzag' is not a pattern/],
    [GATED, 'size=5000', /--set size/],
    [GATED, 'seq_maps=65', /--set seq_maps/],
  ])('%s --set %s', async (scenario, set, message) => {
    const r = await runCli('run', scenario, '--set', set);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
  });

  it('madvise-gated without any mapping', async () => {
    const r = await runCli('run', GATED, '--set', 'seq_maps=0', '--set', 'willneed_maps=0', '--set', 'rand_maps=0');
    expect(r.code).toBe(2);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('report sections', () => {
  it('are registered with runs, charts from real data and computed findings', () => {
    for (const name of [VMAP, GATED]) expect(getScenario(name).report?.runs.length).toBeGreaterThan(0);
    const [vmap, gated] = buildReport({ only: [VMAP, GATED] });
    // Piggin's 11.8 µs per eager vunmap (derived from 14.7 → 2.9 µs) against the 8-CPU native run.
    expect(vmap!.finding.comparisons.map((c) => c.published.who)).toEqual(['Piggin 2008']);
    expect(vmap!.finding.text).toContain('14.7 − 2.9 = 11.8 µs');
    expect(vmap!.finding.text).toMatch(/eager vunmap makes 1,024 flush\(es\) \/ 3,072 IPIs/);
    expect(vmap!.finding.text).toMatch(/Xen refuses [1-9]/);
    const flushes = vmap!.charts[0]!.series.find((s) => s.name === 'flushes')!;
    expect(flushes.points).toContainEqual(['eager', 1024]);
    // Snook's gate has no published figure; with advice that predicts the pattern it is the cheapest
    // of the three, and with unadvised sequential readers it loses to always-on.
    expect(gated!.finding.verdict).toBe('no-figure');
    expect(gated!.finding.text).toMatch(/2 MADV_SEQUENTIAL, 1 MADV_WILLNEED and 2 unadvised random:0\.1 mappings/);
    expect(gated!.finding.text).toMatch(/the gate loses: .* gated costs [0-9.]+× the cycles of always-on/);
    expect(gated!.finding.text).toMatch(
      /native: gated [0-9.,]+ cycles per touch vs always-on [0-9.,]+ and off [0-9.,]+/,
    );
    expect(gated!.charts[0]!.series[0]!.points.map(([p]) => p)).toEqual(['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp']);
    expect(gated!.charts[0]!.series.every((s) => s.points.every(([, y]) => y > 0))).toBe(true);
  });
});
