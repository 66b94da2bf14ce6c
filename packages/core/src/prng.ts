/**
 * Seeded PRNG: xoshiro128** (Blackman & Vigna) on four Uint32 words, no allocation per draw.
 * Independent streams are derived from (seed, stream name) with splitmix32, so adding a new
 * consumer of randomness never shifts the numbers another consumer sees. No Math.random anywhere.
 */
export class Prng {
  private readonly s = new Uint32Array(4);

  constructor(seed: number, stream = '') {
    let x = (seed >>> 0) ^ Math.imul(hashString(stream), 0x9e3779b9);
    // Fold the high part of seeds above 2^32 in, so large seeds stay distinct. It is scrambled
    // first (splitmix32(0) = 0, so seeds below 2^32 are unchanged): a plain XOR made seed 2^32 + k
    // replay seed k ^ 1.
    x = (x ^ splitmix32(Math.floor(seed / 0x100000000))) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      this.s[i] = splitmix32(x);
    }
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  /** A new independent generator for a named stream, derived from this one's seed material. */
  static stream(seed: number, name: string): Prng {
    return new Prng(seed, name);
  }

  /** Next uniform uint32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n) for 0 < n ≤ 2^32, without modulo bias (Lemire's method). */
  nextInt(n: number): number {
    if (n <= 1) return 0;
    if (n > 4294967296) return Math.floor(this.nextFloat() * n);
    const threshold = (4294967296 - n) % n;
    // r·n reaches 2^64, past a double's 53 bits, so multiply by n's 16-bit halves (every partial
    // product is exact) and carry into the high and low 32-bit words of the 64-bit product.
    const nHi = Math.floor(n / 65536);
    const nLo = n % 65536;
    for (;;) {
      const r = this.nextU32();
      const a = r * nHi; // < 2^48
      const b = (a % 65536) * 65536 + r * nLo; // < 2^49
      const lo = b % 4294967296;
      if (lo >= threshold) return Math.floor(a / 65536) + Math.floor(b / 4294967296);
    }
  }

  /** Fisher–Yates shuffle in place of a typed or plain array. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function splitmix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over UTF-16 code units. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
