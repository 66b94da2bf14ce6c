import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderChart, shortNumber } from '../src/report/svg-chart.js';
import { SCENARIOS } from '../src/scenarios/catalogue.js';
import { runCli } from './cli-helpers.js';

describe('report charts (inline SVG)', () => {
  it('draws one mark per point, a tooltip each, and escapes labels', () => {
    const svg = renderChart({
      title: 'a <b> & c',
      kind: 'bar',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 's1',
          points: [
            ['1', 10],
            ['4', 5],
            ['16', 2],
          ],
        },
        {
          name: 's2',
          points: [
            ['1', 8],
            ['4', 0],
          ],
        },
      ],
    });
    expect(svg.match(/class="mark"/g)).toHaveLength(5);
    expect(svg.match(/<title>/g)).toHaveLength(5);
    expect(svg).toContain('a &lt;b&gt; &amp; c');
    expect(svg).not.toContain('NaN');
  });

  it('line charts on a log axis stay finite for zero values', () => {
    const svg = renderChart({
      title: 't',
      kind: 'line',
      xLabel: 'x',
      yLabel: 'y',
      logY: true,
      series: [
        {
          name: 's',
          points: [
            ['a', 0],
            ['b', 1000],
            ['c', 3],
          ],
        },
      ],
    });
    expect(svg.match(/class="mark"/g)).toHaveLength(3);
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  it('short numbers', () => {
    expect(shortNumber(0)).toBe('0');
    expect(shortNumber(1234)).toBe('1234');
    expect(shortNumber(12345)).toBe('12.3k');
    expect(shortNumber(2.5e6)).toBe('2.5M');
    expect(shortNumber(0.1234)).toBe('0.123');
  });
});

describe('pte-lab report', () => {
  it('every SCENARIOS.md scenario in the catalogue has a report section', () => {
    expect(SCENARIOS.filter((s) => s.report === undefined).map((s) => s.name)).toEqual([]);
  });

  it('writes one section per scenario asked for, with a computed finding and the regenerate commands; findings markdown too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pte-report-'));
    const out = join(dir, 'r.html');
    const md = join(dir, 'f.md');
    const r = await runCli('report', '--only', 'thread/xen-batching', '--out', out, '--findings', md);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html.match(/<section class="scenario"/g)).toHaveLength(1);
    expect(html.match(/<svg /g)!.length).toBeGreaterThanOrEqual(2);
    expect(html).toContain('pte-lab run thread/xen-batching --platform xen-pv');
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // self-contained: no network references
    const findings = readFileSync(md, 'utf8');
    expect(findings).toMatch(/## thread\/xen-batching/);
    expect(findings).toMatch(/hypercalls per fault/);
    // Both say what a cycle is, convert at a stated clock and point at the cost model.
    expect(html).toContain('3,000 cycles are 1 µs');
    expect(html).toContain('<a href="#cost-table">the cost table at the end of this page</a>');
    expect(html).toMatch(/<details id="cost-table">[\s\S]*<code>guest\.fault_entry<\/code><\/td><td>\d+<\/td>/);
    expect(html).toMatch(/class="axis-label">[^<]*cycles[^<]*\(3,000 = 1 µs\)</);
    expect(html).not.toMatch(/class="axis-label">[^<]*\/[^<]*1 µs\)</); // a ratio of cycles has no unit
    expect(findings).toContain('At 3.0 GHz');
    expect(findings).toContain('[docs/cost-model.md](cost-model.md)');
    // The verdict vocabulary and its rule; Fitzhardinge's batching claim has no published figure.
    expect(findings).toContain('**agrees** when the model moves the same way as a published figure');
    expect(findings).toMatch(
      /\| \[thread\/xen-batching\]\(#threadxen-batching\) \| no published figure \| none: Fitzhardinge gave no number/,
    );
    expect(findings).toContain('**No published figure.** None to compare with:');
    expect(html).toContain('<p class="finding no-figure"><span class="badge">no published figure</span>');
    expect(html).toContain('<p class="rule">Each verdict is computed');
    expect(html).toContain('thread/xen-batching</a> — no published figure</li>');
    expect(readdirSync(dir).sort()).toEqual(['f.md', 'r.html']);
  });

  it('the same inputs give the same page', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pte-report-'));
    await runCli('report', '--only', 'thread/xen-batching', '--out', join(dir, 'a.html'));
    await runCli('report', '--only', 'thread/xen-batching', '--out', join(dir, 'b.html'));
    expect(readFileSync(join(dir, 'a.html'), 'utf8')).toBe(readFileSync(join(dir, 'b.html'), 'utf8'));
  });

  it.each([
    [['report', '--only', 'no/such'], /^pte-lab: unknown scenario 'no\/such'/],
    [['report', '--seed', 'x'], /^pte-lab: --seed: 'x' is not a non-negative integer/],
  ])('%j: one clear line, exit 2, nothing written', async (args, msg) => {
    const dir = mkdtempSync(join(tmpdir(), 'pte-report-'));
    const r = await runCli(...args, '--out', join(dir, 'r.html'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(dir, 'r.html'))).toBe(false);
  });
});

describe('report output files', () => {
  it('a --findings file that cannot be written names --findings and leaves no --out file behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pte-report-'));
    const out = join(dir, 'r.html');
    const r = await runCli(
      'report',
      '--only',
      'micro/mmap-touch',
      '--out',
      out,
      '--findings',
      join(dir, 'no-such-dir', 'f.md'),
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^pte-lab: cannot write --findings .*f\.md: no directory .*no-such-dir\n$/);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });
});
