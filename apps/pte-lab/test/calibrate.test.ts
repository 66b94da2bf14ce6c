/**
 * pte-lab calibrate: bad input is refused in one line before anything is measured; on a Linux
 * machine with gcc, a one-run calibration writes a cost file that --costs loads and a residual
 * table with a row per measured phase. (Its figures are this machine's: nothing here asserts a time.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_COSTS } from '@pte/machine';
import { CALIBRATION_SUITE } from '../src/calibrate/suite.js';
import { platformFor } from '../src/calibrate/host.js';
import { runCli } from './cli-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pte-cal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hasGcc(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('calibrate: bad input', () => {
  test.each([
    [['--runs', '0'], /^pte-lab: --runs 0: must be from 1 to 50\n$/],
    [['--runs', 'many'], /^pte-lab: --runs/],
    [['--ghz', 'fast'], /^pte-lab: --ghz fast: not a clock from 0.1 to 10 GHz\n$/],
    [['--platform', 'vmware'], /^pte-lab: .*vmware/],
    [['--profile', 'linux-9'], /^pte-lab: unknown profile 'linux-9'/],
    [['--format', 'xml'], /^pte-lab: --format 'xml' is not table or json\n$/],
    [
      ['--set', 'cost.guest.fault_entry=5'],
      /^pte-lab: --set cost.guest.fault_entry=5: calibrate takes machine and policy keys only/,
    ],
    [['--set', 'size=1GiB'], /^pte-lab: --set size=1GiB: calibrate takes machine and policy keys only/],
    [
      ['--set', 'host_backed=maybe', '--platform', 'kvm-tdp'],
      /^pte-lab: --set host_backed: 'maybe' is not one of on, off/,
    ],
    [['--set', 'host_backed=off', '--platform', 'native'], /^pte-lab: --set host_backed: native has no EPT/],
    [['--out', '/no/such/dir/costs.json'], /^pte-lab: cannot write --out \/no\/such\/dir\/costs.json: no directory/],
    [['--out', tmpdir()], /^pte-lab: cannot write --out .*: it is a directory or not a regular file\n$/],
    [
      ['--out', '/tmp/x-cal.json', '--residuals', '/tmp/x-cal.json'],
      /^pte-lab: --residuals \/tmp\/x-cal.json: --out writes the same file\n$/,
    ],
    [['--set', 'noequals'], /^pte-lab: --set 'noequals' is not key=value\n$/],
    [['--dir', '/no/such/dir'], /^pte-lab: --dir \/no\/such\/dir: no such directory/],
  ])('%j is refused in one line, exit 2', async (args, re) => {
    const r = await runCli('calibrate', ...args, ...(args.includes('--out') ? [] : ['--out', join(dir, 'never.json')]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(re);
    expect(r.err.split('\n').filter((l) => l !== '' && !l.startsWith('[calibrate]'))).toHaveLength(1);
    expect(existsSync(join(dir, 'never.json'))).toBe(false);
  });

  test('the platform follows the hypervisor: native on bare metal, kvm-shadow under PVM, else kvm-tdp', () => {
    expect([platformFor(null), platformFor('PVM'), platformFor('KVM'), platformFor('a hypervisor')]).toEqual([
      'native',
      'kvm-shadow',
      'kvm-tdp',
      'kvm-tdp',
    ]);
  });
});

const maybe = process.platform === 'linux' && hasGcc() ? describe : describe.skip;
if (!(process.platform === 'linux' && hasGcc())) console.warn('calibrate end-to-end test skipped: needs Linux and gcc');

maybe('calibrate on this machine (one run)', () => {
  const out = join(dir, 'costs.json');
  const md = join(dir, 'residuals.md');
  let result: { code: number; out: string; err: string };
  beforeAll(async () => {
    result = await runCli('calibrate', '--runs', '1', '--platform', 'native', '--out', out, '--residuals', md);
  }, 120_000);

  test('writes a cost file of known keys, with the machine it was measured on', () => {
    expect(result.code).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(doc.format).toBe('pte-lab-costs');
    expect(doc.measured).toMatchObject({ platform: 'native' });
    for (const k of ['date', 'kernel', 'cpu', 'clock', 'method']) expect(typeof doc.measured[k]).toBe('string');
    const keys = Object.keys(doc.costs);
    expect(keys.length).toBeGreaterThan(5);
    for (const k of keys) {
      expect(Object.hasOwn(ALL_COSTS, k)).toBe(true);
      expect(doc.costs[k]).toBeGreaterThanOrEqual(0);
    }
    // The suite's anonymous write faults charge the fault entry: it is fitted.
    expect(keys).toContain('guest.fault_entry');
  });

  test('prints and writes a residual row per measured phase', () => {
    const phases = CALIBRATION_SUITE.reduce((n, b) => n + b.phases.length, 0);
    expect(result.out).toMatch(
      new RegExp(`within ±25%: \\d+/${phases} at the default costs, \\d+/${phases} at the fitted costs`),
    );
    expect(
      readFileSync(md, 'utf8')
        .split('\n')
        .filter((l) => /^\| [a-z0-9-]+\.(touch|retouch|fork|exit) \|/.test(l)),
    ).toHaveLength(phases);
  });

  test('--costs loads the file it wrote', async () => {
    const r = await runCli(
      'run',
      'micro/mmap-touch',
      '--set',
      'backing=anon',
      '--set',
      'size=1MiB',
      '--costs',
      out,
      '--format',
      'json',
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(JSON.parse(r.out).params['cost.guest.fault_entry']).toBe(String(doc.costs['guest.fault_entry']));
  });
});
