import type { ReportSection } from './build-report.js';
import { escapeXml, renderChart } from './svg-chart.js';
import { UNITS_TEXT } from './units.js';
import { ALL_COSTS } from '@pte/machine';
import type { Finding } from '../scenarios/scenario.js';
import { VERDICT_RULE, verdictLabel } from '../findings/verdict.js';

const CSS = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2.2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav ol{columns:2;font-size:.92em}.claim{color:#444;font-style:italic}
.finding{padding:.6em .9em;border-left:4px solid #999;background:#f7f7f7}
.finding.agrees{border-color:#2ca02c}.finding.contradicts{border-color:#d62728}.finding.partly{border-color:#ff7f0e}.finding.no-figure{border-color:#999}
ul.figures{font-size:.9em}ul.figures .v{font-weight:600}
.badge{font-weight:600;text-transform:uppercase;font-size:.8em;margin-right:.5em}
.charts{display:flex;flex-wrap:wrap;gap:1em}svg.chart{max-width:100%;height:auto;background:#fff}
.chart-title{font-size:14px;font-weight:600}.tick,.legend{font-size:11px;fill:#333}.axis-label{font-size:12px;fill:#333}
.grid{stroke:#e5e5e5}pre{background:#f3f3f3;padding:.5em;overflow-x:auto;font-size:.85em}
button.copy{font-size:.8em;margin-left:.5em}
table.costs{border-collapse:collapse;font-size:.85em}table.costs td,table.costs th{border-bottom:1px solid #eee;padding:.2em .5em;text-align:left;vertical-align:top}`;

/**
 * The inline script: copy buttons for the regenerate commands. The charts are static SVG and
 * need no script; the data is inlined as JSON for anyone who wants the numbers.
 */
const SCRIPT = `
document.querySelectorAll('pre.cmd').forEach(function (pre) {
  var b = document.createElement('button');
  b.className = 'copy';
  b.textContent = 'copy';
  b.addEventListener('click', function () {
    if (navigator.clipboard) navigator.clipboard.writeText(pre.textContent || '').catch(function () {});
  });
  pre.parentNode.insertBefore(b, pre);
});
document.body.setAttribute('data-ready', String(document.querySelectorAll('section.scenario').length));`;

export function slug(name: string): string {
  return name
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}

/** JSON safe inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

/** One self-contained page: a section per scenario with its claim, charts, finding and commands. */
export function renderReportHtml(
  sections: readonly ReportSection[],
  meta: { readonly version: string; readonly seed: number },
): string {
  const nav = sections
    .map(
      (s) =>
        `<li><a href="#${slug(s.scenario)}">${escapeXml(s.scenario)}</a> — ${verdictLabel(s.finding.verdict)}</li>`,
    )
    .join('');
  const body = sections
    .map((s) => {
      const charts = s.charts.map(renderChart).join('\n');
      const cmds = s.commands.map((c) => `<pre class="cmd">${escapeXml(c)}</pre>`).join('');
      return `<section class="scenario" id="${slug(s.scenario)}">
<h2>${escapeXml(s.scenario)}</h2>
<p>${escapeXml(s.description)}</p>
<p class="claim">${escapeXml(s.claim)}</p>
<div class="charts">${charts}</div>
<p class="finding ${s.finding.verdict}"><span class="badge">${verdictHeading(s.finding.verdict)}</span>${escapeXml(s.finding.text)}</p>
${figuresHtml(s.finding)}
<details><summary>regenerate (${s.commands.length} run${s.commands.length === 1 ? '' : 's'})</summary>${cmds}</details>
</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>PTE Lab report</title><style>${CSS}</style></head>
<body>
<h1>PTE Lab: populating PTEs at fault time, answered</h1>
<p>Each section turns a claim from the linux-mm threads into runs of the simulator (pte-lab ${escapeXml(meta.version)}, seed ${meta.seed}).
The finding under each chart is computed from the runs; the commands regenerate every figure.</p>
<p class="units">${escapeXml(UNITS_TEXT).replace('docs/cost-model.md', '<a href="#cost-table">the cost table at the end of this page</a> (docs/cost-model.md in the repository)')}</p>
<p class="rule">${escapeXml(VERDICT_RULE).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')}</p>
<nav><ol>${nav}</ol></nav>
${body}
${costTableHtml()}
<script type="application/json" id="report-data">${scriptJson(sections)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}

/** "model agrees", "model partly agrees", "model contradicts" or "no published figure". */
function verdictHeading(v: Finding['verdict']): string {
  return v === 'no-figure' ? verdictLabel(v) : `model ${verdictLabel(v)}`;
}

/** The published figures a finding is compared with, one line each with the model's and its verdict. */
function figuresHtml(f: Finding): string {
  if (f.comparisons.length === 0) return '';
  const items = f.comparisons
    .map(
      (c) =>
        `<li><span class="v">${escapeXml(c.context ? 'context' : verdictLabel(c.verdict))}</span>: ${escapeXml(figureCell(c))}</li>`,
    )
    .join('');
  return `<ul class="figures">${items}</ul>`;
}

/** One published figure against the model's, short: "Shutemov 2014 (1 touch per 2 MiB, window 16): 0.0399 → 0.0637 s (×1.60) vs the model's ×3.63". */
function figureCell(c: Finding['comparisons'][number]): string {
  return `${c.published.who} (${c.published.label}): ${c.published.shown} vs the model's ${c.model}`;
}

/** Every cost the runs were charged, with its source: the report's own copy of docs/cost-model.md's tables. */
function costTableHtml(): string {
  const rows = Object.entries(ALL_COSTS)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(
      ([k, e]) => `<tr><td><code>${escapeXml(k)}</code></td><td>${e.cycles}</td><td>${escapeXml(e.source)}</td></tr>`,
    )
    .join('');
  return `<details id="cost-table"><summary>The cost table these runs used (the defaults of docs/cost-model.md)</summary>
<table class="costs"><thead><tr><th>cost</th><th>cycles</th><th>source</th></tr></thead><tbody>${rows}</tbody></table></details>`;
}

function capitalise(t: string): string {
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** The findings table's cell: the claim's figures against the model's, or why there is none. */
function figuresCell(f: Finding): string {
  const own = f.comparisons.filter((c) => !c.context);
  if (own.length === 0) return `none: ${f.noFigure ?? ''}`.replace(/\|/g, '\\|');
  return own
    .map((c) => `${figureCell(c)} (${verdictLabel(c.verdict)})`)
    .join('; ')
    .replace(/\|/g, '\\|');
}

/** The anchor GitHub gives a markdown heading. */
function githubAnchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

/** docs/findings.md: per scenario, whether the model agrees with the claim, with the figures. */
export function renderFindingsMd(
  sections: readonly ReportSection[],
  meta: { readonly version: string; readonly seed: number },
): string {
  const lines = [
    '# Findings',
    '',
    `Generated by \`pte-lab report --findings docs/findings.md\` (pte-lab ${meta.version}, seed ${meta.seed}); every sentence below is computed from the runs, and each section lists the commands that regenerate its figures.`,
    '',
    UNITS_TEXT.replace('docs/cost-model.md', '[docs/cost-model.md](cost-model.md)'),
    '',
    VERDICT_RULE,
    '',
    '| scenario | verdict | published figures compared (the model’s figure, the verdict of each) |',
    '|---|---|---|',
    ...sections.map(
      (s) =>
        `| [${s.scenario}](#${githubAnchor(s.scenario)}) | ${verdictLabel(s.finding.verdict)} | ${figuresCell(s.finding)} |`,
    ),
    '',
  ];
  for (const s of sections) {
    lines.push(
      `## ${s.scenario}`,
      '',
      `Claim: ${s.claim}`,
      '',
      `**${capitalise(verdictHeading(s.finding.verdict))}.** ${s.finding.text}`,
      '',
      'Regenerate:',
      '',
      '```sh',
      ...s.commands,
      '```',
      '',
    );
  }
  return lines.join('\n');
}
