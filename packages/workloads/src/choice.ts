import { configError } from '@pte/core';

/**
 * One of a fixed set of words (internal helper for `--set` values). Surrounding whitespace is
 * ignored; anything else is a config error naming `where`, the text and the choices.
 */
export function parseChoice<T extends string>(text: string, choices: readonly T[], where: string): T {
  const s = text.trim();
  if ((choices as readonly string[]).includes(s)) return s as T;
  throw configError(`${where}: '${text}' is not one of ${choices.join(', ')}`);
}
