import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pointKey } from '../src/sweep/points.js';
import { runCli } from './cli-helpers.js';

jest.setTimeout(120_000);

const SCENARIO = 'micro/mmap-touch';
/** 2 × 2 points, small enough to be quick. */
const SMALL = [
  '--vary',
  'fault_around=1,16',
  '--vary',
  'platform=native,xen-pv',
  '--profile',
  'linux-3.15',
  '--set',
  'size=4MiB',
];

async function sweep(...args: string[]) {
  return runCli('sweep', SCENARIO, ...args);
}

async function sweepJson(...args: string[]) {
  const r = await sweep(...args, '--format', 'json');
  if (r.code !== 0) throw new Error(r.err);
  return JSON.parse(r.out) as Array<{
    platform: string;
    profile: string;
    params: Record<string, string>;
    counters: Record<string, number>;
  }>;
}

const tmp = () => mkdtempSync(join(tmpdir(), 'pte-lab-sweep-'));

describe('pte-lab sweep', () => {
  it('runs the cartesian product in --vary order, the last --vary fastest', async () => {
    const rs = await sweepJson(...SMALL, '--jobs', '1');
    expect(rs.map((r) => [r.params.fault_around, r.platform])).toEqual([
      ['1', 'native'],
      ['1', 'xen-pv'],
      ['16', 'native'],
      ['16', 'xen-pv'],
    ]);
    expect(rs.every((r) => r.profile === 'linux-3.15' && r.params.size === '4MiB')).toBe(true);
    // fault-around off faults on every page; a 16-page window on every 16th.
    expect(rs[0]!.counters['faults.minor']).toBe(1024);
    expect(rs[2]!.counters['faults.minor']).toBe(64);

    const three = await sweepJson(
      '--vary',
      'seed=1,2,3',
      '--vary',
      'profile=linux-3.15,linux-6.18',
      '--vary',
      'fault_around=1,4,16',
      '--set',
      'size=4MiB',
      '--jobs',
      '1',
    );
    expect(three).toHaveLength(18);
    expect(three.map((r) => `${(r as any).seed}/${r.profile}/${r.params.fault_around}`).slice(0, 7)).toEqual([
      '1/linux-3.15/1',
      '1/linux-3.15/4',
      '1/linux-3.15/16',
      '1/linux-6.18/1',
      '1/linux-6.18/4',
      '1/linux-6.18/16',
      '2/linux-3.15/1',
    ]);
  });

  it('prints, for each point, exactly the JSON of the corresponding pte-lab run', async () => {
    const r = await sweep(...SMALL, '--vary', 'cost.xen.hypercall=700,9000', '--format', 'json', '--jobs', '2');
    expect(r.code).toBe(0);
    const rs = JSON.parse(r.out) as unknown[];
    expect(rs).toHaveLength(8);
    let i = 0;
    for (const fa of ['1', '16']) {
      for (const platform of ['native', 'xen-pv']) {
        for (const cost of ['700', '9000']) {
          const one = await runCli(
            'run',
            SCENARIO,
            '--platform',
            platform,
            '--profile',
            'linux-3.15',
            '--set',
            'size=4MiB',
            '--set',
            `fault_around=${fa}`,
            '--set',
            `cost.xen.hypercall=${cost}`,
            '--format',
            'json',
          );
          expect(one.code).toBe(0);
          expect(JSON.stringify(rs[i++], null, 2) + '\n').toBe(one.out);
        }
      }
    }
  });

  it('gives the same bytes with --jobs 1 and --jobs 2, in every format', async () => {
    for (const format of ['json', 'csv', 'table']) {
      const a = await sweep(...SMALL, '--format', format, '--jobs', '1');
      const b = await sweep(...SMALL, '--format', format, '--jobs', '2');
      const c = await sweep(...SMALL, '--format', format, '--jobs', '3');
      expect(a.code).toBe(0);
      expect(b.out).toBe(a.out);
      expect(c.out).toBe(a.out);
    }
  });

  it("table: one row per point, the varied keys first, then the scenario's headline figures", async () => {
    const r = await sweep(...SMALL, '--jobs', '1');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const lines = r.out.trimEnd().split('\n');
    const header = lines.findIndex((l) => l.startsWith('fault_around  platform'));
    expect(header).toBeGreaterThan(0);
    expect(lines[header]).toContain('faults (minor)');
    const rows = lines.slice(header + 2, header + 6);
    expect(rows.map((l) => l.trim().split(/\s+/).slice(0, 2))).toEqual([
      ['1', 'native'],
      ['1', 'xen-pv'],
      ['16', 'native'],
      ['16', 'xen-pv'],
    ]);
    expect(lines[header + 6]).toMatch(
      /^regenerate: pte-lab sweep micro\/mmap-touch --vary fault_around=1,16 --vary platform=native,xen-pv/,
    );
  });

  it('csv: one header and one row per point', async () => {
    const r = await sweep(...SMALL, '--format', 'csv', '--jobs', '2');
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]!.startsWith('scenario,platform,profile,seed,')).toBe(true);
    expect(lines.slice(1).map((l) => l.split(',')[1])).toEqual(['native', 'xen-pv', 'native', 'xen-pv']);
  });

  it.each([
    [['--vary', 'bogus=1,2'], /^pte-lab: unknown --vary key 'bogus' for micro\/mmap-touch/],
    [['--vary', 'fault_around=1,3'], /^pte-lab: --vary fault_around=3: .*'3' is not a power of two/],
    [['--vary', 'platform=native,sparc'], /^pte-lab: --vary platform=sparc: .*unknown platform 'sparc'/],
    [['--vary', 'profile=linux-9'], /^pte-lab: --vary profile=linux-9: unknown profile 'linux-9'/],
    [['--vary', 'seed=1,-1'], /^pte-lab: --vary seed=-1: /],
    [['--vary', 'cost.nope=1'], /^pte-lab: --vary cost.nope=1: .*unknown cost 'nope'/],
    [['--vary', 'fault_around=1,,4'], /^pte-lab: --vary fault_around: empty value/],
    [['--vary', 'fault_around=1,1'], /^pte-lab: --vary fault_around: value '1' is given twice/],
    [['--vary', 'fault_around'], /^pte-lab: --vary 'fault_around' is not key=v1,v2,\.\.\./],
    [['--vary', 'size=1MiB', '--set', 'size=4MiB'], /^pte-lab: --vary size conflicts with --set size/],
    [[], /^pte-lab: sweep needs at least one --vary/],
    [['--vary', 'fault_around=1', '--jobs', '0'], /^pte-lab: --jobs: needs at least 1/],
  ])('bad input %j: one error line, exit 2, nothing run or written', async (args, message) => {
    const dir = tmp();
    const r = await sweep(...args, '--out', join(dir, 'out.json'));
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a bad value in a later list is found before any point runs', async () => {
    const dir = tmp();
    const r = await sweep(
      '--vary',
      'platform=native,xen-pv',
      '--vary',
      'fault_around=1,16,7',
      '--out',
      join(dir, 'x.csv'),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^pte-lab: --vary fault_around=7: /);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('--resume without --out is a usage error', async () => {
    const r = await sweep(...SMALL, '--resume');
    expect(r.code).toBe(2);
    expect(r.err).toBe('pte-lab: --resume needs --out (the journal lives beside the output file)\n');
  });

  it('--out writes the output and leaves no journal', async () => {
    const dir = tmp();
    const out = join(dir, 'sweep.json');
    const r = await sweep(...SMALL, '--format', 'json', '--out', out, '--jobs', '2');
    expect(r.code).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toBe('sweep: ran 4 of 4 points on 1 job (of 2: too short to gain from worker threads)\n');
    expect(readdirSync(dir)).toEqual(['sweep.json']);
    expect(readFileSync(out, 'utf8')).toBe((await sweep(...SMALL, '--format', 'json', '--jobs', '1')).out);
  });

  it('--resume runs only the points a pre-written journal lacks', async () => {
    const dir = tmp();
    const out = join(dir, 'sweep.csv');
    const args = [
      '--vary',
      'platform=native,xen-pv,kvm-tdp',
      '--vary',
      'fault_around=1,16',
      '--set',
      'size=4MiB',
      '--format',
      'csv',
      '--out',
      out,
    ];
    // Points 0, 2 and 5 finished before the interruption, and a torn line after them.
    const lines: string[] = [];
    for (const [platform, fa] of [
      ['native', '1'],
      ['xen-pv', '1'],
      ['kvm-tdp', '16'],
    ] as const) {
      const one = await runCli(
        'run',
        SCENARIO,
        '--platform',
        platform,
        '--set',
        'size=4MiB',
        '--set',
        `fault_around=${fa}`,
        '--format',
        'json',
      );
      const key = pointKey({
        scenario: SCENARIO,
        platform,
        profile: 'linux-6.18',
        set: ['size=4MiB', `fault_around=${fa}`],
        seed: 1,
        check: false,
      });
      lines.push(JSON.stringify({ point: key, result: JSON.parse(one.out) }));
    }
    writeFileSync(`${out}.partial.jsonl`, lines.join('\n') + '\n{"point":"{\\"scenario\\":\\"micro/mm');
    const r = await sweep(...args, '--resume', '--jobs', '2');
    expect(r.code).toBe(0);
    expect(r.err).toBe('sweep: ran 3 of 6 points (3 resumed) on 1 job (of 2: too short to gain from worker threads)\n');
    expect(readdirSync(dir)).toEqual(['sweep.csv']);
    const fresh = await sweep(...args.slice(0, -2), '--jobs', '1');
    expect(readFileSync(out, 'utf8')).toBe(fresh.out);
  });

  it("--resume keys its journal on the cost file's costs: after an edit no old point is reused", async () => {
    const dir = tmp();
    const costs = join(dir, 'costs.json');
    const file = (entry: number) =>
      writeFileSync(
        costs,
        JSON.stringify({ format: 'pte-lab-costs', version: 1, costs: { 'guest.fault_entry': entry } }),
      );
    const out = join(dir, 'sweep.json');
    const args = [...SMALL, '--costs', costs, '--format', 'json'];
    // The journal of a sweep run with the old file: every point finished, keyed as that run keyed them.
    file(10000);
    const old = JSON.parse((await sweep(...args, '--jobs', '1')).out) as Array<{ platform: string; params: any }>;
    const lines = old.map((result) =>
      JSON.stringify({
        point: pointKey({
          scenario: SCENARIO,
          platform: result.platform,
          profile: 'linux-3.15',
          set: ['size=4MiB', `fault_around=${result.params.fault_around}`],
          seed: 1,
          check: false,
          costs,
        }),
        result,
      }),
    );
    writeFileSync(`${out}.partial.jsonl`, lines.join('\n') + '\n');
    // Resumed with the same file, every point is reused; edited, none is.
    const same = await sweep(...args, '--out', out, '--resume', '--jobs', '1');
    expect(same.err).toMatch(/^sweep: ran 0 of 4 points \(4 resumed\)/);
    writeFileSync(`${out}.partial.jsonl`, lines.join('\n') + '\n');
    file(20000);
    const edited = await sweep(...args, '--out', out, '--resume', '--jobs', '1');
    expect(edited.code).toBe(0);
    expect(edited.err).toMatch(/^sweep: ran 4 of 4 points/);
    for (const row of JSON.parse(readFileSync(out, 'utf8'))) expect(row.params['cost.guest.fault_entry']).toBe('20000');
  });

  it('an interrupted sweep (SIGINT) keeps its finished points; --resume completes it without repeating them', async () => {
    const cli = join(__dirname, '..', 'dist', 'cli.js');
    expect(existsSync(cli)).toBe(true); // pnpm build first
    const dir = tmp();
    const out = join(dir, 'sweep.json');
    const journal = `${out}.partial.jsonl`;
    const args = [
      '--vary',
      'platform=native,xen-pv',
      '--vary',
      'fault_around=1,4,16',
      '--set',
      'size=512MiB',
      '--format',
      'json',
      '--out',
      out,
    ];
    const child = spawn(process.execPath, [cli, 'sweep', SCENARIO, ...args, '--jobs', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => void (stderr += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Interrupt as soon as the first point is journaled.
    for (let i = 0; i < 1000; i++) {
      if (existsSync(journal) && readFileSync(journal, 'utf8').includes('\n')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(
      /^pte-lab: sweep interrupted: \d of 6 points kept in .*sweep\.json\.partial\.jsonl \(rerun with --resume\)\n$/,
    );
    const kept = Number(/interrupted: (\d)/.exec(stderr)![1]);
    expect(kept).toBeGreaterThanOrEqual(1);
    expect(kept).toBeLessThan(6);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(journal, 'utf8').trimEnd().split('\n')).toHaveLength(kept);

    const r = await sweep(...args, '--resume', '--jobs', '2');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(
      new RegExp(
        `^sweep: ran ${6 - kept} of 6 points \\(${kept} resumed\\) on \\d jobs?( \\(of 2: too short to gain from worker threads\\))?\\n$`,
      ),
    );
    expect(existsSync(journal)).toBe(false);
    const whole = JSON.parse(readFileSync(out, 'utf8')) as Array<{ platform: string; params: Record<string, string> }>;
    expect(whole.map((x) => `${x.platform}/${x.params.fault_around}`)).toEqual([
      'native/1',
      'native/4',
      'native/16',
      'xen-pv/1',
      'xen-pv/4',
      'xen-pv/16',
    ]);
  });
});
