/**
 * Translate-path benchmarks (DESIGN.md "Performance targets"): 1 GiB mapped with 4K or 2M pages,
 * scanned sequentially with 64 accesses per 4 KiB page (runs batched page by page, as the design
 * allows) and touched at random 4 KiB pages (a TLB miss and a full walk nearly every time).
 */
import { ACCESS_USER, ACCESS_READ, Mmu, PageTables, PhysMem, SimpleFrameSource, P, RW, US, A, D } from '@pte/arch-x86';
import { Prng } from '@pte/core';

const GiB = 1024 ** 3;
const BASE_HI = 0x7f00; // user addresses at 0x7f00_0000_0000, like mmap's
const PAGES_4K = GiB / 4096;

function build(pageFrames) {
  const frames = 2 * PAGES_4K + 4096;
  const mem = new PhysMem(frames);
  const src = new SimpleFrameSource(frames);
  const pt = new PageTables(mem, src, 4, P | RW | US | A | D);
  // Data frames live above the first PAGES_4K frames, aligned for large pages.
  const dataBase = PAGES_4K;
  for (let p = 0; p < PAGES_4K; p += pageFrames) {
    pt.map(BASE_HI, p * 4096, dataBase + p, P | RW | US | A | D, 0, pageFrames);
  }
  const mmu = new Mmu(mem);
  mmu.writeCr3(pt.root);
  return { mmu, mem };
}

export function translateBenches() {
  const out = [];
  for (const [label, pageFrames] of [
    ['4K', 1],
    ['2M', 512],
  ]) {
    const { mmu } = build(pageFrames);
    const access = ACCESS_READ | ACCESS_USER;
    const seq = measure(() => {
      let sink = 0;
      for (let p = 0; p < PAGES_4K; p++) sink += mmu.translateRun(BASE_HI, p * 4096, access, 64);
      if (sink < 0) throw new Error('fault in benchmark');
      return PAGES_4K * 64;
    });
    out.push({
      name: `translate.seq_1GiB_${label}`,
      unit: 'accesses/s',
      value: seq.rate,
      target: 100e6,
      rates: seq.rates,
    });

    const rng = new Prng(42, 'bench.random');
    const N = 4_000_000;
    const pages = new Uint32Array(N);
    for (let i = 0; i < N; i++) pages[i] = rng.nextInt(PAGES_4K);
    const rnd = measure(() => {
      let sink = 0;
      for (let i = 0; i < N; i++) sink += mmu.translate(BASE_HI, pages[i] * 4096, access);
      if (sink < 0) throw new Error('fault in benchmark');
      return N;
    });
    out.push({
      name: `translate.random_1GiB_${label}`,
      unit: 'accesses/s',
      value: rnd.rate,
      target: 10e6,
      rates: rnd.rates,
    });
    // Host memory of the tables per mapped 4 KiB page.
  }
  return out;
}

import { measure } from './harness.mjs';
