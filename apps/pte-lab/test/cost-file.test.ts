/**
 * --costs FILE: a measured cost table replacing the defaults (cost-file.ts, docs/costs.schema.json).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_COSTS } from '@pte/machine';
import { runCli } from './cli-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pte-costs-'));
function costFile(name: string, doc: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
}
const RUN = ['run', 'micro/mmap-touch', '--set', 'backing=anon', '--set', 'size=1MiB', '--format', 'json'];

describe('--costs FILE fitted for another platform', () => {
  const fitted = costFile('fitted.json', {
    format: 'pte-lab-costs',
    version: 1,
    measured: { platform: 'kvm-shadow' },
    costs: { 'guest.fault_entry': 5000 },
  });

  it('loads, and says on stderr (one note line) when the run is on another platform', async () => {
    const other = await runCli(...RUN, '--costs', fitted);
    expect(other.code).toBe(0);
    expect(other.err).toBe(`pte-lab: note: ${fitted} was fitted as kvm-shadow; this run is native\n`);
    expect(JSON.parse(other.out).params['cost.guest.fault_entry']).toBe('5000');
    const same = await runCli(...RUN, '--platform', 'kvm-shadow', '--costs', fitted);
    expect(same.err).toBe('');
  });
});

describe('--costs FILE', () => {
  const good = costFile('good.json', {
    format: 'pte-lab-costs',
    version: 1,
    measured: { date: '2026-12-03', kernel: '6.18.44', cpu: 'AMD EPYC' },
    costs: { 'guest.fault_entry': 5000 },
  });

  it('replaces the defaults it names, and --set cost.<key> overrides it in turn', async () => {
    const base = JSON.parse((await runCli(...RUN)).out);
    const r = await runCli(...RUN, '--costs', good);
    expect(r.err).toBe('');
    const measured = JSON.parse(r.out);
    expect(measured.params.costs).toBe(good);
    expect(measured.command).toContain(`--costs ${good}`);
    const faults = measured.counters['faults.total'];
    const entry = ALL_COSTS['guest.fault_entry'].cycles;
    expect(measured.cycles.total - base.cycles.total).toBeCloseTo(faults * (5000 - entry), 0);
    const over = JSON.parse((await runCli(...RUN, '--costs', good, '--set', `cost.guest.fault_entry=${entry}`)).out);
    expect(over.cycles.total).toBe(base.cycles.total);
  });

  it('sweep takes it for every point', async () => {
    const r = await runCli(
      'sweep',
      'micro/mmap-touch',
      '--set',
      'size=1MiB',
      '--vary',
      'fault_around=1,16',
      '--costs',
      good,
      '--format',
      'json',
    );
    expect(r.code).toBe(0);
    for (const row of JSON.parse(r.out)) expect(row.params.costs).toBe(good);
  });

  it.each([
    ['missing.json', null, /: cannot read it: no such file$/],
    ['broken.json', '{"format": ', /: not JSON \(/],
    ['array.json', [], /: not a JSON object$/],
    ['extra.json', { format: 'pte-lab-costs', version: 1, costs: {}, note: 'x' }, /: unknown key 'note'/],
    ['format.json', { format: 'costs', version: 1, costs: {} }, /: 'format' is "costs", not "pte-lab-costs"$/],
    ['version.json', { format: 'pte-lab-costs', version: 2, costs: {} }, /: 'version' is 2, not 1$/],
    ['nocosts.json', { format: 'pte-lab-costs', version: 1 }, /: 'costs' is missing or not an object$/],
    [
      'unknown.json',
      { format: 'pte-lab-costs', version: 1, costs: { 'guest.nope': 1 } },
      /: 'costs\.guest\.nope' is not a cost/,
    ],
    [
      'negative.json',
      { format: 'pte-lab-costs', version: 1, costs: { 'kvm.exit': -1 } },
      /: 'costs\.kvm\.exit' is -1, not a number of cycles from 0 to 1e\+9$/,
    ],
    [
      'text.json',
      { format: 'pte-lab-costs', version: 1, costs: { 'kvm.exit': '900' } },
      /: 'costs\.kvm\.exit' is "900"/,
    ],
    [
      'measured.json',
      { format: 'pte-lab-costs', version: 1, measured: { ghz: '3' }, costs: {} },
      /: unknown key 'measured\.ghz'/,
    ],
  ])('%s: one line naming the file and the key, exit 2, nothing written', async (name, doc, message) => {
    const path = doc === null ? join(dir, name) : costFile(name, doc);
    const out = join(dir, `${name}.out`);
    const r = await runCli(...RUN, '--costs', path, '--out', out);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(new RegExp(`^pte-lab: --costs ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    expect(r.err.trim()).toMatch(message);
    expect(() => readFileSync(out)).toThrow();
  });

  it('a second --costs is refused, not silently preferred', async () => {
    const r = await runCli(...RUN, '--costs', good, '--costs', good);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/--costs is given twice/);
  });

  it('docs/costs.schema.json lists exactly the cost keys (node scripts/costs-schema.mjs regenerates it)', () => {
    const schema = JSON.parse(readFileSync(join(__dirname, '../../../docs/costs.schema.json'), 'utf8'));
    expect(Object.keys(schema.properties.costs.properties).sort()).toEqual(Object.keys(ALL_COSTS).sort());
    expect(schema.properties.costs.additionalProperties).toBe(false);
  });
});
