import { parseError } from './errors.js';

/**
 * Sizes as the kernel's memparse() reads them (lib/cmdline.c): K, M, G, T suffixes are binary
 * (2^10 ...), so `2G` is 2 GiB. The IEC forms (`KiB`, `MiB`, ...) and `KB`/`kB` mean the same.
 * A bare number is bytes; `0x` prefixes hexadecimal. Results must be exact integers < 2^53.
 */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
  p: 1024 ** 5,
  pb: 1024 ** 5,
  pib: 1024 ** 5,
};

const SIZE_RE = /^(0x[0-9a-f]+|[0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i;

/** Parse `4KiB`, `64MiB`, `2G`, `0x1000`, `4096`. `what` names the setting in the error. */
export function parseSize(text: string, what = 'size'): number {
  const s = text.trim();
  const m = SIZE_RE.exec(s);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw parseError(`${what}: '${text}' is not a size`, 'use bytes or a unit: 4096, 4KiB, 64MiB, 2G, 0x1000');
  }
  // Exact arithmetic: in doubles, a fraction like 1.00000000000000001 would round to whole bytes.
  const [int, frac = ''] = m[1]!.toLowerCase().startsWith('0x') ? [m[1]!] : m[1]!.split('.');
  const scaled = BigInt(int! + frac) * BigInt(unit);
  const scale = 10n ** BigInt(frac.length);
  if (scaled % scale !== 0n || scaled / scale > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw parseError(`${what}: '${text}' is not a whole number of bytes below 2^53`);
  }
  return Number(scaled / scale);
}

/** Parse a non-negative integer: decimal or 0x-hex. */
export function parseCount(text: string, what = 'number'): number {
  const s = text.trim();
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(s)) n = parseInt(s, 16);
  else if (/^[0-9]+$/.test(s)) n = Number(s);
  else throw parseError(`${what}: '${text}' is not a non-negative integer`);
  if (!Number.isSafeInteger(n)) throw parseError(`${what}: '${text}' is too large`);
  return n;
}

/** Format bytes with the largest binary unit that divides them exactly (65536 → "64KiB"). */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = bytes;
  while (i < units.length - 1 && v !== 0 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}` : `${v}${units[i]}`;
}
