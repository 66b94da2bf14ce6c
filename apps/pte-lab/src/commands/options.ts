import { PROFILES } from '@pte/machine';

/** Commander accumulator for repeatable options (--set, --vary). */
export function collect(value: string, prev: string[]): string[] {
  return [...prev, value];
}

/** Help text shared by the commands that take these options. */
export const PROFILE_HELP = `kernel profile: ${Object.keys(PROFILES).join(' | ')}`;
export const FORMAT_HELP = 'table | json | csv';
