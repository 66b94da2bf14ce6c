import { InvalidArgumentError } from 'commander';
import { PROFILES } from '@pte/machine';

/** Commander accumulator for repeatable options (--set, --vary). */
export function collect(value: string, prev: string[]): string[] {
  return [...prev, value];
}

/**
 * Commander parser for an option that may be given once (--costs): a second one is refused rather
 * than silently winning.
 */
export function once(name: string): (value: string, prev: string | undefined) => string {
  return (value, prev) => {
    if (prev !== undefined) throw new InvalidArgumentError(`${name} is given twice ('${prev}', '${value}')`);
    return value;
  };
}

/** Help text shared by the commands that take these options. */
export const PROFILE_HELP = `kernel profile: ${Object.keys(PROFILES).join(' | ')}`;
export const FORMAT_HELP = 'table | json | csv';

/** The --costs option's help, the same on every command that takes it. */
export const COSTS_HELP = 'a cost file (JSON, docs/costs.schema.json) whose costs replace the defaults';
