import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunResult } from '@pte/machine';
import { runCli } from './cli-helpers.js';

const PLATFORMS = ['native', 'xen-pv', 'kvm-shadow', 'kvm-tdp'] as const;
const dir = mkdtempSync(join(tmpdir(), 'pte-replay-'));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

async function replay(...argv: string[]): Promise<RunResult> {
  const r = await runCli('replay', ...argv, '--format', 'json');
  if (r.code !== 0) throw new Error(r.err);
  return JSON.parse(r.out) as RunResult;
}

/** What must not differ between two replays of the same accesses. */
const outcome = (r: RunResult) => ({ counters: r.counters, cycles: r.cycles, memory: r.memory });

const hex = (n: number) => n.toString(16).padStart(8, '0');

/** N sequential page writes from 0x10000000, one 8-byte store per page, with a banner. */
function seqWrites(n: number): string {
  let t = '==42== Lackey, an example Valgrind tool\n==42== Command: ./a.out\n==42==\n';
  for (let i = 0; i < n; i++) t += ` S ${hex(0x10000000 + i * 4096 + 16)},8\n`;
  return t + '==42==\n==42== Counted 1 call to main()\n';
}

/** A mixed synthetic trace: code fetches, stack and heap, crossing and modify accesses. */
function mixed(): string {
  let t = '==7== Command: ./mixed\n';
  for (let i = 0; i < 300; i++) {
    t += `I  ${hex(0x400000 + ((i * 7) % 9000))},4\n`;
    t += ` L ${hex(0x10000000 + ((i * 4099) % (64 * 4096)))},8\n`;
    if (i % 3 === 0) t += ` S ${hex(0x10000ffc + (i % 5) * 4096)},8\n`;
    if (i % 5 === 0) t += ` M ${hex(0x7ff000000 + (i % 11) * 64)},4\n`;
  }
  return t;
}

describe('pte-lab replay: synthetic traces checked exactly', () => {
  it('N sequential page writes in an anonymous region take N anonymous faults natively', async () => {
    const r = await replay(file('seq.txt', seqWrites(100)), '--trace-format', 'lackey');
    expect(r.scenario).toBe('replay');
    expect(r.counters['trace.stores']).toBe(100);
    expect(r.counters['trace.records']).toBe(100);
    expect(r.counters['workload.touches']).toBe(100);
    expect(r.counters['faults.anon']).toBe(100);
    expect(r.counters['faults.minor']).toBe(100);
    expect(r.counters['faults.file']).toBe(0);
    expect(r.counters['pte.populated']).toBe(100);
    expect(r.counters['workload.segv']).toBe(0);
    expect(r.counters['replay.vmas']).toBe(1);
    expect(r.memory.rss_pages).toBe(100);
  });

  it('an access crossing a page boundary touches both pages', async () => {
    const r = await replay(file('cross.txt', ' S 10000ffc,8\n'), '--trace-format', 'lackey');
    expect(r.counters['trace.crossing']).toBe(1);
    expect(r.counters['workload.touches']).toBe(2);
    expect(r.counters['faults.anon']).toBe(2);
  });

  it('repeated accesses to one page fault once; the rest are TLB hits', async () => {
    const r = await replay(
      file('rep.txt', ' S 10000010,8\n'.repeat(50) + ' L 10000020,8\n'.repeat(50)),
      '--trace-format',
      'lackey',
    );
    expect(r.counters['workload.touches']).toBe(100);
    expect(r.counters['faults.anon']).toBe(1);
    expect(r.counters['mmu.accesses']).toBe(101); // 100 accesses + the retry after the fault
  });

  it.each(PLATFORMS)('coalescing changes nothing (%s)', async (platform) => {
    const f = file(`mixed-${platform}.txt`, mixed());
    const on = await replay(f, '--trace-format', 'lackey', '--platform', platform, '--check');
    const off = await replay(f, '--trace-format', 'lackey', '--platform', platform, '--set', 'coalesce=off');
    expect(outcome(on)).toEqual(outcome(off));
    expect(on.counters['workload.segv']).toBe(0);
  });

  it('the binary form replays identically to the lackey source, and converting twice gives the same bytes', async () => {
    const src = file('conv.txt', mixed());
    const bin = join(dir, 'conv.bin');
    const c = await runCli('trace', 'convert', src, '--from', 'lackey', '--out', bin);
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/conv\.bin: \d+ records, \d+ bytes/);
    const a = await replay(src, '--trace-format', 'lackey');
    const b = await replay(bin, '--trace-format', 'bin');
    expect(outcome(b)).toEqual(outcome(a));
    const bin2 = join(dir, 'conv2.bin');
    await runCli('trace', 'convert', bin, '--from', 'bin', '--out', bin2);
    expect(execFileSync('cmp', [bin, bin2]).length).toBe(0);
  });

  it('takes --costs as run does, and refuses machine settings its platform cannot have', async () => {
    const t = file('costs-seq.txt', seqWrites(50));
    const costs = file(
      'costs.json',
      JSON.stringify({ format: 'pte-lab-costs', version: 1, costs: { 'guest.fault_entry': 9000 } }),
    );
    const base = await replay(t, '--trace-format', 'lackey');
    const priced = await replay(t, '--trace-format', 'lackey', '--costs', costs);
    expect(priced.params.costs).toBe(costs);
    expect(priced.params['cost.guest.fault_entry']).toBe('9000');
    expect(priced.command).toContain(`--costs ${costs}`);
    expect(priced.cycles.total).toBeGreaterThan(base.cycles.total);
    for (const [args, message] of [
      [['--set', 'host_backed=off'], /^pte-lab: --set host_backed: native has no EPT to back/],
      [['--set', 'pv_tlb_flush=on'], /^pte-lab: --set pv_tlb_flush: native is not a KVM guest/],
      [['--costs', join(dir, 'none.json')], /^pte-lab: --costs .*none\.json: cannot read it: no such file/],
    ] as const) {
      const r = await runCli('replay', t, '--trace-format', 'lackey', ...args);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(message);
    }
  });

  it('a malformed line fails with one line naming file and line, exit 2, and writes nothing', async () => {
    const f = file('bad.txt', '==1== banner\nI  0401ab70,3\n X zz\n');
    const out = join(dir, 'bad-out.json');
    const r = await runCli('replay', f, '--trace-format', 'lackey', '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toBe("pte-lab: bad.txt:3: malformed lackey line ' X zz'\n");
    expect(r.out).toBe('');
    expect(existsSync(out)).toBe(false);
    const binOut = join(dir, 'bad.bin');
    const c = await runCli('trace', 'convert', f, '--from', 'lackey', '--out', binOut);
    expect(c.code).toBe(2);
    expect(c.err).toBe("pte-lab: bad.txt:3: malformed lackey line ' X zz'\n");
    expect(readdirSync(dir).filter((n) => n.includes('bad.bin'))).toEqual([]);
  });

  it('bad flags and files are one-line errors', async () => {
    expect((await runCli('replay', file('ok.txt', 'I  00001000,1\n'), '--trace-format', 'pin')).err).toBe(
      "pte-lab: --trace-format 'pin' is not lackey or bin\n",
    );
    const missing = await runCli('replay', join(dir, 'nope.txt'), '--trace-format', 'lackey');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^pte-lab: cannot read trace .*nope\.txt: ENOENT\n$/);
    const key = await runCli('replay', join(dir, 'ok.txt'), '--trace-format', 'lackey', '--set', 'bogus=1');
    expect(key.err).toMatch(/^pte-lab: unknown --set key 'bogus' for replay/);
    const notBin = await runCli('replay', file('ok2.txt', 'I  00001000,1\n'.repeat(3)), '--trace-format', 'bin');
    expect(notBin.err).toBe("pte-lab: ok2.txt: not a PTE Lab binary trace (no 'PTETRACE' magic)\n");
  });

  it('the traced program exits at the end: prefaulted PTEs it never used are counted at the zap', async () => {
    const maps = file('one.maps', '00400000-00410000 r-xp 00000000 fe:00 99   /usr/bin/one\n');
    const r = await replay(file('one.txt', 'I  00400000,4\n'), '--trace-format', 'lackey', '--maps', maps);
    expect(r.counters['pte.prefaulted']).toBe(15); // fault-around maps the other 15 pages of 64 KiB
    expect(r.counters['pte.prefaulted_unused']).toBe(15);
    expect(r.counters['pte.zapped']).toBe(16);
    expect(r.counters['proc.exits']).toBe(1);
    expect(r.memory.rss_pages).toBe(16); // sampled before the exit
  });

  it('--maps places VMAs at the captured addresses with their protections', async () => {
    const maps = file(
      'a.maps',
      [
        '00400000-00401000 r--p 00000000 fe:00 1234   /usr/bin/prog',
        '00401000-00403000 r-xp 00001000 fe:00 1234   /usr/bin/prog',
        '00403000-00404000 r--p 00003000 fe:00 1234   /usr/bin/prog',
        '00404000-00405000 rw-p 00004000 fe:00 1234   /usr/bin/prog',
        '10000000-10100000 rw-p 00000000 00:00 0      [heap]',
        '7ff000000-7ff001000 rw-p 00000000 00:00 0    [stack]',
        'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]',
      ].join('\n') + '\n',
    );
    const t = file(
      'prog.txt',
      'I  00401000,4\nI  00402000,4\n L 00400010,8\n S 00403008,8\n S 00404010,8\n S 10000010,8\n M 7ff000010,8\n S 00401000,1\n',
    );
    const r = await replay(t, '--trace-format', 'lackey', '--maps', maps);
    expect(r.params.maps).toBe('a.maps');
    expect(r.counters['replay.vmas']).toBe(6);
    expect(r.counters['replay.relro_vmas']).toBe(1);
    // The store to the r-x text is refused: one SIGSEGV; everything else maps.
    expect(r.counters['workload.segv']).toBe(1);
    expect(r.counters['faults.file']).toBeGreaterThan(0);
    expect(r.counters['faults.cow']).toBeGreaterThanOrEqual(2); // RELRO and .data stores are COW faults
    const bad = await runCli('replay', t, '--trace-format', 'lackey', '--maps', file('b.maps', 'zzz\n'));
    expect(bad.err).toBe("pte-lab: b.maps:1: malformed maps line 'zzz'\n");
  });
});

const hasValgrind = spawnSync('valgrind', ['--version']).status === 0;

describe('pte-lab replay: a real program traced with valgrind lackey', () => {
  const trace = join(dir, 'true.lackey');
  const out = join(dir, 'cap');
  beforeAll(() => {
    if (!hasValgrind) {
      console.warn('valgrind is not installed: skipping the real-program replay tests');
      return;
    }
    execFileSync('valgrind', ['--tool=lackey', '--trace-mem=yes', `--log-file=${trace}`, '/bin/true']);
    execFileSync(resolve(__dirname, '../../../scripts/capture-trace.sh'), [out, '--', '/bin/true'], { stdio: 'pipe' });
  }, 60_000);

  const maybe = hasValgrind ? it : it.skip;

  maybe.each(PLATFORMS)(
    '/bin/true replays on %s (heuristic layout and captured maps)',
    async (platform) => {
      const h = await replay(trace, '--trace-format', 'lackey', '--platform', platform);
      expect(h.counters['trace.records']).toBeGreaterThan(100_000);
      expect(h.counters['workload.touches']).toBeGreaterThanOrEqual(h.counters['trace.records']!);
      expect(h.counters['workload.segv']).toBe(0);
      expect(h.counters['faults.anon']).toBeGreaterThan(10);
      const m = await replay(
        `${out}.lackey`,
        '--trace-format',
        'lackey',
        '--maps',
        `${out}.maps`,
        '--platform',
        platform,
        '--check',
      );
      expect(m.counters['workload.segv']).toBe(0);
      expect(m.counters['faults.file']).toBeGreaterThan(0);
      expect(m.counters['replay.vmas']).toBeGreaterThan(10);
    },
    60_000,
  );

  maybe(
    'the real trace replays the same coalesced or not, and from its binary form',
    async () => {
      const bin = join(dir, 'true.bin');
      expect((await runCli('trace', 'convert', trace, '--from', 'lackey', '--out', bin)).code).toBe(0);
      const a = await replay(trace, '--trace-format', 'lackey', '--platform', 'kvm-shadow');
      const b = await replay(bin, '--trace-format', 'bin', '--platform', 'kvm-shadow');
      const c = await replay(trace, '--trace-format', 'lackey', '--platform', 'kvm-shadow', '--set', 'coalesce=off');
      expect(outcome(b)).toEqual(outcome(a));
      expect(outcome(c)).toEqual(outcome(a));
    },
    60_000,
  );
});
