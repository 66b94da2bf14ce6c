import { parseError } from '@pte/core';

/**
 * Linear addresses as two unsigned 32-bit halves (hi = bits 32..63, lo = bits 0..31), so the hot
 * path never touches BigInt. Index extraction follows SDM Vol. 3A §4.5: PML5 bits 56:48,
 * PML4 47:39, PDPT 38:30, PD 29:21, PT 20:12.
 */

/** Index into the paging structure at `level` (1 = PT ... 5 = PML5) for the address. */
export function tableIndex(level: number, hi: number, lo: number): number {
  switch (level) {
    case 1:
      return (lo >>> 12) & 511;
    case 2:
      return (lo >>> 21) & 511;
    case 3:
      return ((lo >>> 30) | ((hi & 0x7f) << 2)) & 511;
    case 4:
      return (hi >>> 7) & 511;
    default:
      return (hi >>> 16) & 511;
  }
}

/**
 * Canonical check (SDM §3.3.7.1): with 4-level paging bits 63:47 all equal bit 47; with 5-level
 * (CR4.LA57) bits 63:56 all equal bit 56.
 */
export function isCanonical(hi: number, levels: number): boolean {
  if (levels === 5) {
    const top = hi >>> 24; // bits 63..56
    return top === 0 || top === 0xff;
  }
  const top = hi >>> 15; // bits 63..47
  return top === 0 || top === 0x1ffff;
}

/** Virtual page number (va >> 12) as a double (exact: at most 52 bits). */
export function vpnOf(hi: number, lo: number): number {
  return (hi >>> 0) * 1048576 + (lo >>> 12);
}

/** Split a number or bigint address into halves; numbers must be exact integers below 2^53. */
export function splitAddress(va: number | bigint): { hi: number; lo: number } {
  if (typeof va === 'bigint') {
    const v = BigInt.asUintN(64, va);
    return { hi: Number(v >> 32n), lo: Number(v & 0xffffffffn) };
  }
  if (!Number.isSafeInteger(va) || va < 0) throw parseError(`address ${va} is not an integer in 0..2^53-1`);
  return { hi: Math.floor(va / 4294967296), lo: va % 4294967296 };
}

/** Join halves into a number (exact for addresses below 2^53). */
export function joinAddress(hi: number, lo: number): number {
  return (hi >>> 0) * 4294967296 + (lo >>> 0);
}

/** Parse `0x7ffd1fded688` or decimal into halves. */
export function parseAddress(text: string): { hi: number; lo: number } {
  const s = text.trim();
  if (!/^(0x[0-9a-f]{1,16}|[0-9]{1,20})$/i.test(s)) throw parseError(`'${text}' is not an address`);
  const v = BigInt(s);
  if (v >= 1n << 64n) throw parseError(`'${text}' does not fit in 64 bits`);
  return splitAddress(v);
}

export function formatAddress(hi: number, lo: number): string {
  return `0x${(hi >>> 0).toString(16)}${(lo >>> 0).toString(16).padStart(8, '0')}`.replace(/^0x0+(?=[0-9a-f])/, '0x');
}
