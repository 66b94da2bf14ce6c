import { readFileSync } from 'node:fs';
import { configError } from '@pte/core';
import { ALL_COSTS } from '@pte/machine';

/** The largest cost a file may give: 10^9 cycles, a third of a second at 3 GHz for one step. */
export const MAX_FILE_COST = 1e9;

/** The `format` a cost file declares (docs/costs.schema.json). */
export const COST_FILE_FORMAT = 'pte-lab-costs';
export const COST_FILE_VERSION = 1;

/** What a cost file says of the machine it was measured on: all strings, all optional. */
export const MEASURED_KEYS = [
  'date',
  'kernel',
  'cpu',
  'machine',
  'hypervisor',
  'platform',
  'clock',
  'settings',
  'method',
] as const;
const TOP_KEYS = ['$schema', 'format', 'version', 'measured', 'costs'] as const;

/** A cost file (`--costs FILE`): costs in cycles, measured on a machine, replacing the defaults. */
export interface CostFile {
  readonly path: string;
  readonly measured: Readonly<Record<string, string>>;
  readonly costs: Readonly<Record<string, number>>;
}

/**
 * Read and check a cost file: a JSON object with `format` "pte-lab-costs", `version` 1, an
 * optional `measured` object of strings (date, kernel, cpu, machine, hypervisor, method) and
 * `costs`, an object of cost keys (docs/cost-model.md) to non-negative numbers of cycles. Every
 * key is checked; any problem is one error naming the file and the key.
 */
export function readCostFile(path: string): CostFile {
  const where = `--costs ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw configError(`${where}: cannot read it${code === 'ENOENT' ? ': no such file' : code ? ` (${code})` : ''}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, '')); // an editor's byte-order mark is not JSON, but harmless
  } catch (e) {
    throw configError(`${where}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw configError(`${where}: not a JSON object`);
  for (const key of Object.keys(doc))
    if (!(TOP_KEYS as readonly string[]).includes(key))
      throw configError(`${where}: unknown key '${key}'`, `a cost file has ${TOP_KEYS.join(', ')}`);
  if (doc.$schema !== undefined && typeof doc.$schema !== 'string')
    throw configError(`${where}: '$schema' is not a string`);
  if (doc.format !== COST_FILE_FORMAT)
    throw configError(
      doc.format === undefined
        ? `${where}: 'format' is missing (it is "${COST_FILE_FORMAT}")`
        : `${where}: 'format' is ${JSON.stringify(doc.format)}, not "${COST_FILE_FORMAT}"`,
    );
  if (doc.version !== COST_FILE_VERSION)
    throw configError(
      doc.version === undefined
        ? `${where}: 'version' is missing (it is ${COST_FILE_VERSION})`
        : `${where}: 'version' is ${JSON.stringify(doc.version)}, not ${COST_FILE_VERSION}`,
    );
  const measured: Record<string, string> = {};
  if (doc.measured !== undefined) {
    if (!isObject(doc.measured)) throw configError(`${where}: 'measured' is not an object`);
    for (const [k, v] of Object.entries(doc.measured)) {
      if (!(MEASURED_KEYS as readonly string[]).includes(k))
        throw configError(`${where}: unknown key 'measured.${k}'`, `'measured' has ${MEASURED_KEYS.join(', ')}`);
      if (typeof v !== 'string') throw configError(`${where}: 'measured.${k}' is not a string`);
      measured[k] = v;
    }
  }
  if (!isObject(doc.costs)) throw configError(`${where}: 'costs' is missing or not an object`);
  const costs: Record<string, number> = {};
  for (const [k, v] of Object.entries(doc.costs)) {
    if (!Object.hasOwn(ALL_COSTS, k))
      throw configError(`${where}: 'costs.${k}' is not a cost`, 'docs/cost-model.md lists the keys');
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_FILE_COST)
      throw configError(
        `${where}: 'costs.${k}' is ${typeof v === 'number' ? String(v) : JSON.stringify(v)}, not a number of cycles from 0 to ${MAX_FILE_COST.toExponential()}`,
      );
    costs[k] = v;
  }
  return { path, measured, costs };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
