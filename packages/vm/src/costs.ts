import type { CostDefaults, CostTable } from '@pte/core';

export type VmCostKey =
  | 'guest.fault_entry'
  | 'guest.pt_alloc'
  | 'guest.pt_free'
  | 'guest.page_alloc'
  | 'guest.page_free'
  | 'guest.page_zero'
  | 'guest.page_copy'
  | 'guest.filemap_lookup'
  | 'guest.map_page'
  | 'guest.fork_pte'
  | 'guest.fork_folio'
  | 'guest.map_folio'
  | 'guest.page_mkwrite'
  | 'guest.zap_pte'
  | 'guest.zap_folio'
  | 'guest.flush_tlb_call'
  | 'guest.ipi'
  | 'guest.reclaim_scan'
  | 'guest.mmap_call'
  | 'guest.vmap_area'
  | 'smp.line_transfer'
  | 'smp.ipi_latency'
  | 'smp.ipi_handler'
  | 'smp.wakeup'
  | 'smp.rwsem_spin'
  | 'io.request'
  | 'io.page';

/**
 * Guest-kernel costs in cycles; each default's source is in docs/cost-model.md. Conversions of
 * published times use the publishing machine's clock: 3.0 GHz for Kirill Shutemov's 2014 Ivy Bridge
 * (linux-mm.md §1.5), 2.4 GHz for the Xeon Silver 4210R of the 2024 fork/zap figures (§4.4).
 */
export const VM_COSTS: CostDefaults<VmCostKey> = {
  'guest.fault_entry': {
    cycles: 1500,
    source:
      'derived: DESIGN.md measures the real kernel cheapest fault (zero-page read) at 0.8-1 us on these machines; entry, handle_mm_fault and VMA lookup are most of it',
  },
  'guest.pt_alloc': { cycles: 900, source: 'estimate: pte_alloc_one = page allocation (300) + clearing 4 KiB (600)' },
  'guest.pt_free': { cycles: 300, source: 'estimate: pte_free / free_pgtables per table page' },
  'guest.page_alloc': { cycles: 300, source: 'estimate: buddy allocator per-cpu fast path' },
  'guest.page_free': {
    cycles: 300,
    source:
      'derived: linux-mm.md §4.4 munmap ~222 ns per 4K PTE including the free, at 2.4 GHz = 533 cycles, split zap 233 + free 300',
  },
  'guest.page_zero': { cycles: 600, source: 'estimate: clear_page() of 4 KiB at about 20 GB/s' },
  'guest.page_copy': { cycles: 1000, source: 'estimate: copy_page() of 4 KiB (read + write streams)' },
  'guest.filemap_lookup': {
    cycles: 150,
    source:
      'derived: linux-mm.md §1.5/§9 fault-around costs 0.12-0.20 us per extra page attempted (3.0 GHz: 360-600 cycles), split lookup 150 + map 300',
  },
  'guest.map_page': {
    cycles: 200,
    source:
      "derived: the per-PTE part (the page's _mapcount) of the 300 cycles of a mapped page-cache page (same source as guest.filemap_lookup), split 2:1 against guest.map_folio as Hildenbrand's batched fork splits its per-PTE cost (linux-mm.md §4.4: 37 of 55 ns stay per PTE with 2 MiB folios); the split is an estimate",
  },
  'guest.map_folio': {
    cycles: 100,
    source:
      'derived: the per-folio part (folio reference, large mapcount, RSS counter) of a mapped page-cache page, 300 less guest.map_page; charged once per set_pte_range() run of one folio (filemap_map_folio_range batches runs since 617c28ecab22, 2023; earlier kernels map a page at a time, so once per page)',
  },
  'guest.page_mkwrite': {
    cycles: 150,
    source:
      "estimate: block_page_mkwrite()/block_commit_write() marking one 4 KiB block of a folio dirty in a disk filesystem's ->page_mkwrite (ext4_page_mkwrite), about 50 ns; no published figure",
  },
  'guest.fork_pte': {
    cycles: 89,
    source:
      'derived: linux-mm.md §4.4 fork with 2 MiB folios, batched (6.9+), copies a PTE in 37 ns at 2.4 GHz = 89 cycles',
  },
  'guest.fork_folio': {
    cycles: 43,
    source:
      'derived: linux-mm.md §4.4 fork copies ~55 ns per 4K PTE unbatched at 2.4 GHz = 132 cycles, less guest.fork_pte: the rmap duplicate and reference of the folio, once per batch (copy_present_ptes, folio_pte_batch, linux-6.18) or per PTE (earlier kernels)',
  },
  'guest.zap_pte': {
    cycles: 95,
    source:
      'derived: linux-mm.md §4.4 munmap with batched zap (6.9+) takes 9.910 ms per GiB of 2 MiB folios, 37.8 ns per PTE at 2.4 GHz = 91 cycles, of which the per-folio part is 1/512: the PTE clear and TLB gather, taken as 95 so that zap_pte + zap_folio keeps the 233 of the unbatched 4K figure',
  },
  'guest.zap_folio': {
    cycles: 138,
    source:
      'derived: linux-mm.md §4.4 munmap of 4 KiB folios, 222 ns per PTE at 2.4 GHz = 533 cycles, less guest.page_free (300) and guest.zap_pte (95): the rmap, reference and RSS work charged once per folio batch (zap_present_ptes) or per PTE before 6.9',
  },
  'guest.flush_tlb_call': {
    cycles: 1016,
    source:
      'derived: linux-mm.md §9 flush_tlb_mm_range averages 1276 cycles for one page (Dave Hansen), less INVLPG 260',
  },
  'guest.ipi': {
    cycles: 2000,
    source:
      'estimate: a TLB-shootdown IPI to one other CPU, send, interrupt and acknowledge (linux-mm.md §9: "Cross-CPU flushes are expensive", no figure)',
  },
  'guest.reclaim_scan': {
    cycles: 500,
    source:
      'estimate: isolating one folio from the LRU and its rmap walk in shrink_folio_list, before the per-PTE work charged apart',
  },
  'guest.mmap_call': {
    cycles: 3000,
    source:
      'estimate: the fixed part of mmap(2) or munmap(2) (entry, get_unmapped_area or the VMA split, vm_area_struct allocation, maple-tree update), about 1 us; charged only by the several-CPU writer threads',
  },
  'guest.vmap_area': {
    cycles: 900,
    source:
      "estimate: finding and inserting, or removing, one vmap area (the 2008 vmlist walk, the rewrite's rbtree or per-CPU block bitmap), about 0.3 us; no primary figure; charged only by the several-CPU vmap threads",
  },
  'smp.line_transfer': {
    cycles: 84,
    source:
      'derived: J. McCalpin (TACC), Intel forum "Core-to-Core Communication Latency in Skylake/Kaby Lake" (~2016): a modified line moves L2 to L2 in 40.3-42.3 ns on a Xeon E5-2660 v4 (Intel MLC), at its 2.0 GHz nominal clock 81-85 cycles',
  },
  'smp.ipi_latency': {
    cycles: 1200,
    source:
      'derived: N. Amit, "[RFC PATCH 0/6] x86/mm: Flush remote and local TLBs concurrently", LKML 2019-05-25: a one-page shootdown costs 661 ns locally and 1436 ns with one remote CPU (Haswell), so the first remote CPU adds 775 ns = 2325 cycles at an assumed 3.0 GHz (the part is not named); less the remote INVLPG (260), the ack line (84) and smp.ipi_handler, the rest is delivery (the split is an estimate)',
  },
  'smp.ipi_handler': {
    cycles: 780,
    source:
      'estimate: the target side of a flush IPI (interrupt entry and exit, flush_smp_call_function_queue, the csd unlock) within the 2325 cycles of Amit 2019 (see smp.ipi_latency); taken as a third of it',
  },
  'smp.wakeup': {
    cycles: 13200,
    source:
      'derived: A. Vagin, "[PATCH] sched: consider WF_SYNC to find idle siblings", LKML 2022-10 (quoted 2022-10-31): perf bench sched pipe takes 8.8 us per round trip with cross-CPU wake-ups, two wake-ups each, so 4.4 us from try_to_wake_up to the woken task running, 13200 cycles at an assumed 3.0 GHz (the host is not named)',
  },
  'smp.rwsem_spin': {
    cycles: 75000,
    source:
      'derived: a writer spins for an rwsem before it sleeps; on reader owners for rwsem_rspin_threshold = (20 + min(readers, 30)) * 1000 / 2 ns, at most 25 us (kernel/locking/rwsem.c; docs/smp-notes.md 1.1), at an assumed 3.0 GHz; on a running writer owner it spins as long as the owner runs, taken as the same bound',
  },
  'io.request': {
    cycles: 300000,
    source: 'estimate: 100 us per block request at 3 GHz (no primary major-fault cost: linux-mm.md §9 UNVERIFIED)',
  },
  'io.page': { cycles: 6000, source: 'estimate: 4 KiB transferred at about 2 GB/s' },
};

/** Costs the guest kernel charges, resolved once into fields (no map lookups on the hot path). */
export class VmCosts {
  readonly faultEntry: number;
  readonly ptAlloc: number;
  readonly ptFree: number;
  readonly pageAlloc: number;
  readonly pageFree: number;
  readonly pageZero: number;
  readonly pageCopy: number;
  readonly filemapLookup: number;
  readonly mapPage: number;
  readonly forkPte: number;
  readonly forkFolio: number;
  readonly mapFolio: number;
  readonly pageMkwrite: number;
  readonly zapPte: number;
  readonly zapFolio: number;
  readonly flushTlbCall: number;
  readonly ipi: number;
  readonly reclaimScan: number;
  readonly mmapCall: number;
  readonly vmapArea: number;
  readonly lineTransfer: number;
  readonly ipiLatency: number;
  readonly ipiHandler: number;
  readonly wakeup: number;
  readonly rwsemSpin: number;
  readonly ioRequest: number;
  readonly ioPage: number;

  constructor(t: CostTable<VmCostKey>) {
    this.faultEntry = t['guest.fault_entry'];
    this.ptAlloc = t['guest.pt_alloc'];
    this.ptFree = t['guest.pt_free'];
    this.pageAlloc = t['guest.page_alloc'];
    this.pageFree = t['guest.page_free'];
    this.pageZero = t['guest.page_zero'];
    this.pageCopy = t['guest.page_copy'];
    this.filemapLookup = t['guest.filemap_lookup'];
    this.mapPage = t['guest.map_page'];
    this.forkPte = t['guest.fork_pte'];
    this.forkFolio = t['guest.fork_folio'];
    this.mapFolio = t['guest.map_folio'];
    this.pageMkwrite = t['guest.page_mkwrite'];
    this.zapPte = t['guest.zap_pte'];
    this.zapFolio = t['guest.zap_folio'];
    this.flushTlbCall = t['guest.flush_tlb_call'];
    this.ipi = t['guest.ipi'];
    this.reclaimScan = t['guest.reclaim_scan'];
    this.mmapCall = t['guest.mmap_call'];
    this.vmapArea = t['guest.vmap_area'];
    this.lineTransfer = t['smp.line_transfer'];
    this.ipiLatency = t['smp.ipi_latency'];
    this.ipiHandler = t['smp.ipi_handler'];
    this.wakeup = t['smp.wakeup'];
    this.rwsemSpin = t['smp.rwsem_spin'];
    this.ioRequest = t['io.request'];
    this.ioPage = t['io.page'];
  }
}
