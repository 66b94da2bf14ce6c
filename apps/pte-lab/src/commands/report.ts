import { parseCount } from '@pte/core';
import type { Command } from 'commander';
import type { CliIo } from '../io.js';
import { checkOutputs, writeOutputs } from '../output.js';
import { buildReport, reportScenarios } from '../report/build-report.js';
import { renderFindingsMd, renderReportHtml } from '../report/html.js';
import { DEFAULT_SEED } from '../run-scenario.js';

interface ReportFlags {
  out: string;
  findings?: string;
  only?: string;
  seed: string;
}

/**
 * `pte-lab report`: run every scenario's report section and write one self-contained HTML page
 * (and, with --findings, the markdown findings). Progress goes to stderr on a TTY.
 */
export function registerReport(program: Command, io: CliIo, version: string): void {
  program
    .command('report')
    .description(
      "run the thread's experiments and write one self-contained HTML page with charts, findings and commands",
    )
    .option('--out <file>', 'the HTML page', 'report.html')
    .option('--findings <file>', 'also write the findings as markdown (docs/findings.md)')
    .option('--only <scenarios>', 'comma-separated scenarios (default: all)')
    .option('--seed <n>', 'PRNG seed', String(DEFAULT_SEED))
    .action((f: ReportFlags) => {
      const seed = parseCount(f.seed, '--seed');
      const only = f.only
        ?.split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      reportScenarios(only); // bad names fail before any run
      checkOutputs([
        { file: f.out, flag: '--out' },
        ...(f.findings !== undefined ? [{ file: f.findings, flag: '--findings' }] : []),
      ]);
      const tty = process.stderr.isTTY === true;
      const sections = buildReport({
        ...(only !== undefined ? { only } : {}),
        seed,
        onScenario: (name, i, n) => {
          if (tty) io.err(`\r[${i + 1}/${n}] ${name}\x1b[K`);
        },
      });
      if (tty) io.err('\r\x1b[K');
      const meta = { version, seed };
      writeOutputs([
        { file: f.out, text: renderReportHtml(sections, meta), flag: '--out' },
        ...(f.findings !== undefined
          ? [{ file: f.findings, text: renderFindingsMd(sections, meta), flag: '--findings' }]
          : []),
      ]);
      io.out(`wrote ${f.out} (${sections.length} sections)${f.findings !== undefined ? ` and ${f.findings}` : ''}\n`);
    });
}
