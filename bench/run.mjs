/**
 * `pnpm bench`: runs every benchmark, prints each figure with its ratio to the DESIGN.md target,
 * and writes bench/results.json. Figures are medians of several runs on this machine.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { translateBenches } from './translate.mjs';
import { faultBenches } from './faults.mjs';
import { sweepBenches } from './sweep.mjs';
import { smpBenches } from './smp.mjs';
import { fmtRate } from './harness.mjs';

const only = process.argv[2];
const results = [
  ...(only === undefined || only === 'translate' ? translateBenches() : []),
  ...(only === undefined || only === 'faults' ? faultBenches() : []),
  ...(only === undefined || only === 'sweep' ? sweepBenches() : []),
  ...(only === undefined || only === 'smp' ? smpBenches() : []),
];

const rows = results.map((r) => [
  r.name,
  r.unit.endsWith('/s') ? fmtRate(r.value) : `${r.value.toFixed(1)} ${r.unit}`,
  r.target,
  r.lowerIsBetter ? r.target / r.value : r.value / r.target,
]);
const w = [Math.max(...rows.map((r) => r[0].length)), 12];
console.log(`${'benchmark'.padEnd(w[0])}  ${'median'.padStart(w[1])}  ${'target'.padStart(10)}  ratio`);
for (const [name, value, target, ratio] of rows) {
  const t = target >= 1e6 ? `${target / 1e6} M/s` : `${target}`;
  console.log(
    `${name.padEnd(w[0])}  ${value.padStart(w[1])}  ${t.padStart(10)}  ${ratio.toFixed(2)}x${ratio >= 1 ? '' : '  (below target)'}`,
  );
}
const file = new URL('./results.json', import.meta.url);
const fresh = results.map((r) => ({ ...r, ratio: r.lowerIsBetter ? r.target / r.value : r.value / r.target }));
// `run.mjs <group>` re-runs one group: keep the other figures already recorded, replace its own.
let recorded = [];
if (only !== undefined && existsSync(file)) {
  try {
    recorded = JSON.parse(readFileSync(file, 'utf8')).results ?? [];
  } catch {
    recorded = [];
  }
}
const merged = [
  ...recorded.map((r) => fresh.find((f) => f.name === r.name) ?? r),
  ...fresh.filter((f) => !recorded.some((r) => r.name === f.name)),
];
writeFileSync(
  file,
  JSON.stringify(
    { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, results: merged },
    null,
    2,
  ) + '\n',
);
console.log(`\nwrote ${file.pathname}`);
