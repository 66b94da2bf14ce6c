import { type RunResult } from '@pte/machine';
import { valueAt } from '../output.js';
import { formatTable } from '../table.js';
import type { SweepPoint } from './points.js';

/**
 * A sweep as a terminal table: one row per point, the varied keys first, then the scenario's
 * headline figures (its tableRows).
 */
export function formatSweepTable(
  points: readonly SweepPoint[],
  results: readonly RunResult[],
  rows: ReadonlyArray<readonly [string, string]>,
  head: string,
): string {
  const varyKeys = points[0]?.vary.map(([k]) => k) ?? [];
  const body = points.map((p, i) => {
    const r = results[i]!;
    return [
      ...p.vary.map(([, v]) => v),
      ...rows.map(([, path]) => {
        const v = valueAt(r, path);
        return typeof v === 'number' ? v : String(v ?? 0);
      }),
    ];
  });
  // Varied values that are all plain integers are a numeric (right-aligned) column.
  const isInt = (c: string | number) => typeof c === 'string' && /^(0|[1-9][0-9]{0,14})$/.test(c);
  const cells = body.map((row) =>
    row.map((c, j) => (j < varyKeys.length && body.every((r) => isInt(r[j]!)) ? Number(c) : c)),
  );
  return `${head}\n\n${formatTable([...varyKeys, ...rows.map(([label]) => label)], cells)}`;
}
