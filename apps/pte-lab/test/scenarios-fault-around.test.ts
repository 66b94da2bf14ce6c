import { runCli } from './cli-helpers.js';
import { runScenario } from '../src/run-scenario.js';
import { getScenario } from '../src/scenarios/catalogue.js';
import { fmt } from '../src/scenarios/report-helpers.js';
import { SHUTEMOV_PER2M_512, SHUTEMOV_SEQ_TIME_16 } from '../src/findings/published.js';
import { claimVerdict } from '../src/findings/verdict.js';

async function run(scenario: string, ...args: string[]) {
  const r = await runCli('run', scenario, '--format', 'json', ...args);
  if (r.code !== 0) throw new Error(r.err);
  return JSON.parse(r.out);
}

/** The report section of a scenario, run in-process as `pte-lab report` does. */
function reportOf(name: string) {
  const s = getScenario(name);
  const results = s.report!.runs.map((r) =>
    runScenario({
      scenario: name,
      ...(r.platform !== undefined ? { platform: r.platform } : {}),
      profile: r.profile ?? 'linux-6.18',
      set: r.set,
      seed: 1,
      check: false,
    }),
  );
  return { results, charts: s.report!.charts(results), finding: s.report!.finding(results) };
}

describe('thread/minor-fault-around', () => {
  it('linux-3.15, sequential 16 MiB at fault_around 16: 256 faults, every PTE used, window 1 faults per page', async () => {
    const r = await run('thread/minor-fault-around', '--profile', 'linux-3.15', '--set', 'fault_around=16', '--check');
    expect(r.counters['workload.touches']).toBe(4096);
    expect(r.counters['faults.total']).toBe(256);
    expect(r.counters['pte.populated']).toBe(4096);
    expect(r.counters['pte.prefaulted']).toBe(4096 - 256);
    expect(r.counters['pte.prefaulted_unused']).toBe(0);
    expect(r.derived['window1.faults']).toBe(4096);
    expect(r.derived.speedup).toBeGreaterThan(1);
    expect(r.derived.speedup).toBeCloseTo(r.derived['window1.cycles_per_touch'] / r.derived.cycles_per_touch, 9);
    expect(r.params.fault_around).toBe('16');
    expect(r.params.pattern).toBe('seq');
  });

  it('the SCENARIOS patterns: per2m maps 15 unused PTEs per touch, stride:16 faults every touch, random leaves some unused', async () => {
    const per2m = await run('thread/minor-fault-around', '--profile', 'linux-3.15', '--set', 'pattern=per2m');
    expect(per2m.counters['workload.touches']).toBe(8);
    expect(per2m.counters['faults.total']).toBe(8);
    expect(per2m.counters['pte.populated']).toBe(16 * 8);
    expect(per2m.counters['pte.prefaulted_unused']).toBe(15 * 8);
    expect(per2m.derived.speedup).toBeLessThan(1); // the worst case: fault-around only costs
    const stride = await run('thread/minor-fault-around', '--profile', 'linux-3.15', '--set', 'pattern=stride:16');
    expect(stride.counters['faults.total']).toBe(256);
    expect(stride.counters['pte.prefaulted_unused']).toBe(3840);
    const rnd = await run('thread/minor-fault-around', '--profile', 'linux-3.15', '--set', 'pattern=random:0.25');
    expect(rnd.counters['workload.touches']).toBe(1024);
    expect(rnd.counters['faults.total']).toBeLessThan(1024);
    expect(rnd.counters['pte.prefaulted_unused']).toBeGreaterThan(0);
    expect(rnd.counters['pte.populated'] - rnd.counters['pte.prefaulted_unused']).toBe(1024);
  });

  it('fault_around 1 is its own baseline: speed-up exactly 1', async () => {
    const r = await run('thread/minor-fault-around', '--set', 'fault_around=1');
    expect(r.counters['faults.total']).toBe(4096);
    expect(r.derived.speedup).toBe(1);
    expect(r.derived['window1.faults']).toBe(4096);
  });

  it('per platform: traps counted, shadow paging gains most, Xen gains only when batched, TDP takes no per-page exits', async () => {
    const at = async (platform: string, ...set: string[]) =>
      run(
        'thread/minor-fault-around',
        '--platform',
        platform,
        '--set',
        'fault_around=16',
        ...set.flatMap((s) => ['--set', s]),
      );
    const native = await at('native');
    const xen = await at('xen-pv');
    const shadow = await at('kvm-shadow');
    const tdp = await at('kvm-tdp');
    const xenBatched = await at('xen-pv', 'batch_fault_around=on');
    expect(native.derived.traps).toBe(0);
    expect(xen.derived.traps).toBe(xen.counters['xen.hypercalls']);
    expect(shadow.derived.traps).toBe(shadow.counters['kvm.exits']);
    // Unbatched fault-around writes one PTE per hypercall: as many as window 1.
    expect(xen.derived.traps).toBe(xen.derived['window1.traps']);
    expect(xenBatched.derived.traps).toBeLessThan(xen.derived.traps / 10);
    expect(xenBatched.derived.speedup).toBeGreaterThan(xen.derived.speedup);
    expect(shadow.derived.traps).toBeLessThan(shadow.derived['window1.traps'] / 4);
    expect(shadow.derived.speedup).toBeGreaterThan(native.derived.speedup);
    // The cached file's frames were EPT-mapped by the guest's write(): no exit per page read.
    expect(tdp.derived.traps).toBeLessThan(64);
    for (const r of [native, xen, shadow, tdp]) {
      expect(r.counters['faults.total']).toBe(256);
      expect(r.derived.cycles_per_touch).toBeLessThan(r.derived['window1.cycles_per_touch']);
    }
  });

  it('report: charts with data and a finding computed from the runs', () => {
    const { results, charts, finding } = reportOf('thread/minor-fault-around');
    expect(results.length).toBeGreaterThanOrEqual(8);
    expect(charts.length).toBeGreaterThanOrEqual(1);
    expect(charts[0]!.series.flatMap((s) => s.points.map((p) => p[1])).every((v) => v > 0)).toBe(true);
    expect(finding.verdict).toBe(claimVerdict(finding.comparisons.map((c) => c.verdict)));
    const native16 = results.find((r) => r.platform === 'native' && r.params.fault_around === '16')!;
    expect(finding.text).toContain(`${native16.derived.speedup!.toFixed(2)}× natively`);
    // Shutemov's sequential read, named with its number, against the model's cycles.
    const seq16 = finding.comparisons.find((c) => c.published === SHUTEMOV_SEQ_TIME_16)!;
    expect(finding.text).toContain('Shutemov 2014');
    expect(finding.text).toContain('7.25 → 5.49 s (×0.757)');
    expect(seq16.model).toBe(`×${(1 / native16.derived.speedup!).toFixed(2)}`);
    // Change the data, and the finding follows it: fault-around slower natively contradicts him.
    const doctored = results.map((r) =>
      r.platform === 'native' ? { ...r, derived: { ...r.derived, speedup: 0.5 } } : r,
    );
    const f2 = getScenario('thread/minor-fault-around').report!.finding(doctored);
    expect(f2.comparisons.find((c) => c.published === SHUTEMOV_SEQ_TIME_16)!.verdict).toBe('contradicts');
    expect(f2.verdict).not.toBe('agrees');
    expect(f2.text).not.toBe(finding.text);
  });
});

describe('map-pages/2mb-window', () => {
  it('sequential: faults halve with each doubling of the window, none unused, 512 cheapest', async () => {
    const r = await run('map-pages/2mb-window', '--profile', 'linux-3.15', '--set', 'pattern=seq', '--check');
    const faults = [1, 16, 32, 64, 128, 256, 512].map((w) => r.derived[`w${w}.faults`]);
    expect(faults).toEqual([4096, 256, 128, 64, 32, 16, 8]);
    for (const w of [1, 16, 512]) expect(r.derived[`w${w}.prefaulted_unused`]).toBe(0);
    expect(r.derived['w16.cycles_vs_w16']).toBe(1);
    expect(r.derived['w512.cycles_vs_w16']).toBeLessThan(1);
    expect(r.derived['w1.cycles_vs_w16']).toBeGreaterThan(1);
    expect(r.counters['faults.total']).toBe(8); // the RunResult is window 512's
  });

  it('one touch per 2 MiB: the same 8 faults at every window, window 512 maps 511 unused PTEs per touch and loses', async () => {
    const r = await run('map-pages/2mb-window', '--profile', 'linux-3.15');
    expect(r.params.pattern).toBe('per2m');
    for (const w of [1, 16, 32, 64, 128, 256, 512]) {
      expect(r.derived[`w${w}.faults`]).toBe(8);
      expect(r.derived[`w${w}.prefaulted_unused`]).toBe((w - 1) * 8);
      expect(r.derived[`w${w}.populated`]).toBe(w * 8);
    }
    expect(r.derived['w512.cycles_vs_w16']).toBeGreaterThan(r.derived['w64.cycles_vs_w16']);
    expect(r.derived['w64.cycles_vs_w16']).toBeGreaterThan(1);
  });

  it('runs on every platform; Xen traps grow with the unused PTEs', async () => {
    const r = await run('map-pages/2mb-window', '--platform', 'xen-pv');
    expect(r.derived['w512.traps']).toBeGreaterThan(r.derived['w16.traps']);
    const s = await run(
      'map-pages/2mb-window',
      '--platform',
      'kvm-shadow',
      '--set',
      'pattern=stride:64',
      '--set',
      'size=4MiB',
    );
    expect(s.counters['workload.touches']).toBe(16);
  });

  it('report: one line per workload, and a finding naming where window 512 wins and loses', () => {
    const { results, charts, finding } = reportOf('map-pages/2mb-window');
    expect(charts[0]!.series).toHaveLength(results.length);
    expect(charts[0]!.series.every((s) => s.points.length === 7)).toBe(true);
    const seq = results.find((r) => r.params.pattern === 'seq')!;
    expect(finding.text).toContain(`cycles ×${seq.derived['w512.cycles_vs_w16']!.toFixed(2)}`);
    // Shutemov's worst case, one touch per 2 MiB: ×1.6 at window 16, ×13.6 at 512.
    const per2m = results.find((r) => r.params.pattern === 'per2m')!;
    const at512 = finding.comparisons.find((c) => c.published === SHUTEMOV_PER2M_512)!;
    expect(at512.model).toBe(`×${fmt(per2m.derived['w512.cycles']! / per2m.derived['w1.cycles']!)}`);
    expect(finding.text).toContain('0.0399 → 0.541 s (×13.6)');
    expect(finding.verdict).toBe(claimVerdict(finding.comparisons.filter((c) => !c.context).map((c) => c.verdict)));
  });
});

describe('thread/anon-prefault', () => {
  it('sequential writes: exact fault counts per policy, nothing wasted', async () => {
    const r = await run('thread/anon-prefault', '--check');
    const d = r.derived;
    expect(d['seq.off.faults']).toBe(4096);
    expect(d['seq.fixed.faults']).toBe(512);
    expect(d['seq.adaptive.faults']).toBe(515); // runs of 1, 2, 4, then 8 pages
    expect(d['seq.mthp16k.faults']).toBe(1024);
    expect(d['seq.mthp32k.faults']).toBe(512);
    expect(d['seq.mthp64k.faults']).toBe(256);
    expect(d['seq.thp.faults']).toBe(8); // one PMD-mapped THP per 2 MiB (MADV_HUGEPAGE, linux-6.18)
    for (const v of ['off', 'fixed', 'adaptive', 'mthp16k', 'mthp32k', 'mthp64k', 'thp']) {
      expect(d[`seq.${v}.pages_allocated`]).toBe(4096);
      expect(d[`seq.${v}.allocated_untouched`]).toBe(0);
      expect(d[`seq.${v}.peak_rss_pages`]).toBe(4096);
      if (v !== 'off') expect(d[`seq.${v}.cycles`]).toBeLessThan(d['seq.off.cycles']);
    }
  });

  it('random writes: fixed, mTHP and THP allocate pages never touched, adaptive does not; all but THP cost more cycles', async () => {
    const r = await run('thread/anon-prefault');
    const d = r.derived;
    expect(d['random.off.pages_allocated']).toBe(1024);
    expect(d['random.off.allocated_untouched']).toBe(0);
    expect(d['random.adaptive.allocated_untouched']).toBe(0);
    expect(d['random.thp.pages_allocated']).toBe(4096); // every 2 MiB got a write: the whole region
    for (const v of ['fixed', 'mthp16k', 'mthp32k', 'mthp64k', 'thp']) {
      expect(d[`random.${v}.allocated_untouched`]).toBeGreaterThan(0);
      expect(d[`random.${v}.pages_allocated`] - d[`random.${v}.allocated_untouched`]).toBe(1024);
      expect(d[`random.${v}.peak_rss_pages`]).toBe(d[`random.${v}.pages_allocated`]);
      // THP zeroes 4× the pages touched but takes 8 faults for 1,024 writes and frees each 2 MiB
      // folio in one call: at 25% density it is not dearer in the model; the smaller orders are.
      if (v !== 'thp') expect(d[`random.${v}.cycles`]).toBeGreaterThan(d['random.off.cycles']);
    }
    expect(d['random.mthp64k.allocated_untouched']).toBeGreaterThan(d['random.mthp16k.allocated_untouched']);
  });

  it("the RunResult is the run's own anon_prefault on random writes (sweepable)", async () => {
    const off = await run('thread/anon-prefault');
    expect(off.params.anon_prefault).toBe('off');
    expect(off.counters['faults.total']).toBe(1024);
    expect(off.memory.peak_rss_pages).toBe(1024);
    const fixed = await run('thread/anon-prefault', '--set', 'anon_prefault=fixed:8');
    expect(fixed.counters['faults.total']).toBe(fixed.derived['random.fixed.faults']);
    expect(fixed.counters['pte.prefaulted_unused']).toBe(fixed.derived['random.fixed.allocated_untouched']);
    const fixed4 = await run(
      'thread/anon-prefault',
      '--set',
      'fixed_pages=4',
      '--set',
      'size=4MiB',
      '--set',
      'fraction=1',
    );
    expect(fixed4.derived['seq.fixed.faults']).toBe(256);
    expect(fixed4.derived['random.off.pages_allocated']).toBe(1024);
  });

  it('report: charts and a finding quoting the data', () => {
    const { results, charts, finding } = reportOf('thread/anon-prefault');
    expect(charts.length).toBeGreaterThanOrEqual(1);
    expect(charts[0]!.series.flatMap((s) => s.points.map((p) => p[1])).every((v) => v > 0)).toBe(true);
    const native = results.find((r) => r.platform === 'native')!;
    expect(finding.text).toContain(
      `allocates ${native.derived['random.fixed.allocated_untouched']} never-touched pages`,
    );
    // Lameter's ia64 fault rates, 1 and 8 threads, against the linux-2.6.27 runs.
    expect(finding.text).toContain('88,859 → 94,101');
    expect(finding.text).toContain('172,405 → 223,921');
    expect(finding.comparisons.map((c) => c.published.who)).toEqual(['Lameter 2004', 'Lameter 2004', 'Lameter 2004']);
    expect(finding.verdict).toBe(claimVerdict(finding.comparisons.map((c) => c.verdict)));
  });
});

describe('fault-around scenarios: bad --set values give one clear line and exit code 2', () => {
  it.each([
    [
      ['run', 'thread/minor-fault-around', '--set', 'fault_around=3'],
      /^pte-lab: --set fault_around: '3' is not a power of two from 1 to 512/,
    ],
    [
      ['run', 'thread/minor-fault-around', '--set', 'pattern=stride:0'],
      /^pte-lab: --set pattern: 'stride:0' needs a stride ≥ 1/,
    ],
    [
      ['run', 'thread/minor-fault-around', '--set', 'size=5000'],
      /^pte-lab: --set size: '5000' is not a positive multiple of 4KiB/,
    ],
    [
      ['run', 'thread/minor-fault-around', '--set', 'window=16'],
      /^pte-lab: unknown --set key 'window' for thread\/minor-fault-around/,
    ],
    [
      ['run', 'map-pages/2mb-window', '--set', 'pattern=diagonal'],
      /^pte-lab: --set pattern: 'diagonal' is not a pattern/,
    ],
    [
      ['run', 'thread/anon-prefault', '--set', 'fraction=2'],
      /^pte-lab: --set fraction: '2' is not a fraction in \(0, 1\]/,
    ],
    [
      ['run', 'thread/anon-prefault', '--set', 'fraction=lots'],
      /^pte-lab: --set fraction: 'lots' is not a fraction in \(0, 1\]/,
    ],
    [
      ['run', 'thread/anon-prefault', '--set', 'fixed_pages=1'],
      /^pte-lab: --set fixed_pages: 1 is not a page count from 2 to 512/,
    ],
    [
      ['run', 'thread/anon-prefault', '--set', 'anon_prefault=mthp:3K'],
      /^pte-lab: --set anon_prefault: 'mthp:3K' lists '3K', which is not an mTHP size/,
    ],
  ])('%j', async (args, msg) => {
    const r = await runCli(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});
