import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { SCENARIOS } from '../src/scenarios/catalogue.js';
import { runCli } from './cli-helpers.js';

/**
 * The CI browser test: headless Chromium (Debian's `chromium`, driven by playwright-core) opens
 * the full report, finds every section's charts drawn and sees no console error. `.ci/run`
 * installs chromium when it can; without it this test is skipped with a warning.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const maybe = existsSync(CHROMIUM) ? describe : describe.skip;
if (!existsSync(CHROMIUM)) console.warn(`report browser test skipped: no ${CHROMIUM}`);

maybe('pte-lab report in headless Chromium', () => {
  it('renders every section with its charts and no console error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pte-report-browser-'));
    const out = join(dir, 'report.html');
    const r = await runCli('report', '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`file://${out}`);
      await page.waitForSelector('body[data-ready]');
      const sections = await page.$$eval('section.scenario', (ss) =>
        ss.map((s) => ({
          id: s.id,
          charts: s.querySelectorAll('svg.chart').length,
          marks: Array.from(s.querySelectorAll('svg.chart')).map((c) => c.querySelectorAll('.mark').length),
          drawn: Array.from(s.querySelectorAll('svg.chart')).every((c) => {
            const b = (c as SVGGraphicsElement).getBoundingClientRect();
            return b.width > 100 && b.height > 50;
          }),
          finding: (s.querySelector('.finding')?.textContent ?? '').length,
        })),
      );
      expect(sections.map((s) => s.id).sort()).toEqual(
        SCENARIOS.map((s) => s.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()).sort(),
      );
      for (const s of sections) {
        expect([s.id, s.charts >= 1, s.drawn, s.marks.every((n) => n > 0), s.finding > 40]).toEqual([
          s.id,
          true,
          true,
          true,
          true,
        ]);
      }
      expect(await page.getAttribute('body', 'data-ready')).toBe(String(SCENARIOS.length));
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 300_000);
});
