import { type RunResult } from '@pte/machine';

/** A derived figure of a result (0 when absent). */
export function derivedOf(r: RunResult, key: string): number {
  return r.derived[key] ?? 0;
}

/** A counter of a result (0 when absent). */
export function counterOf(r: RunResult, key: string): number {
  return r.counters[key] ?? 0;
}

/** A figure with up to 3 significant digits, for finding sentences. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(+v.toPrecision(3));
}

/** `a / b` as "3.1×" (or "n/a" when b is 0). */
export function ratio(a: number, b: number): string {
  return b === 0 ? 'n/a' : `${fmt(a / b)}×`;
}

/** A ratio after / before as "×1.6", as the published figures are shown. */
export function times(r: number): string {
  return `×${fmt(r)}`;
}

/** A ratio after / before as a rise "×3.6" or a fall "÷8" (a ratio of 0 is "÷∞"). */
export function riseOrFall(r: number): string {
  if (r === 0) return '÷∞';
  return r >= 1 ? `×${fmt(r)}` : `÷${fmt(1 / r)}`;
}
