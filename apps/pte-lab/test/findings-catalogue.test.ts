import { buildReport, type ReportSection } from '../src/report/build-report.js';
import { renderFindingsMd } from '../src/report/html.js';
import { SCENARIOS } from '../src/scenarios/catalogue.js';
import { claimVerdict } from '../src/findings/verdict.js';

/**
 * Issue #14, item 5: every finding names the published figure it is compared with, or says there
 * is none, and its verdict is the rule's. The whole report runs once (a few seconds).
 */
let sections: ReportSection[] = [];
beforeAll(() => {
  sections = buildReport();
}, 120_000);

describe('every finding of the catalogue', () => {
  it('covers every scenario', () => {
    expect(sections.map((s) => s.scenario)).toEqual(SCENARIOS.map((s) => s.name));
  });

  it('names each published figure it is compared with (who, where, the number) and the model’s, or says there is none', () => {
    for (const s of sections) {
      const f = s.finding;
      const own = f.comparisons.filter((c) => !c.context);
      if (f.verdict === 'no-figure') {
        expect([s.scenario, own.length, f.noFigure !== undefined]).toEqual([s.scenario, 0, true]);
        expect(f.text.startsWith(`None to compare with: ${f.noFigure}`)).toBe(true);
      } else {
        expect([s.scenario, own.length > 0]).toEqual([s.scenario, true]);
        expect([s.scenario, f.verdict]).toEqual([s.scenario, claimVerdict(own.map((c) => c.verdict))]);
      }
      for (const c of f.comparisons) {
        for (const part of [c.published.who, c.published.where, c.published.shown, c.model])
          expect([s.scenario, f.text.includes(part), part]).toEqual([s.scenario, true, part]);
        expect([s.scenario, c.published.where]).toEqual([
          s.scenario,
          expect.stringMatching(/linux-mm\.md|hypervisors\.md|seed 00\d/),
        ]);
      }
    }
  });

  it('the audit’s too-generous verdicts are gone', () => {
    const v = (name: string) => sections.find((s) => s.scenario === name)!.finding.verdict;
    expect(v('unixbench/exec-shell')).toBe('no-figure');
    expect(v('thread/madvise-gated')).toBe('no-figure');
    expect(v('micro/mmap-touch')).toBe('no-figure');
    // Bligh's own setting is window 4: cheaper than none in the model, so it contradicts him.
    const forky = sections.find((s) => s.scenario === 'thread/forky-build')!.finding;
    expect(forky.comparisons[0]!.published.label).toBe('kernel compile, next 3 pages');
    expect(forky.comparisons[0]!.verdict).toBe(forky.comparisons[0]!.modelSign > 0 ? 'partly' : 'contradicts');
  });

  it('the findings table has a verdict and the figures per scenario', () => {
    const md = renderFindingsMd(sections, { version: 't', seed: 1 });
    expect(md).toContain('| scenario | verdict | published figures compared');
    for (const s of sections)
      expect(md).toMatch(
        new RegExp(
          `\\| \\[${s.scenario.replace('/', '\\/')}\\]\\(#[^)]+\\) \\| (agrees|partly agrees|contradicts|no published figure) \\| .+ \\|`,
        ),
      );
  });
});
