import { CycleLedger, resolveCosts, type CostTable, type Counters, type RemoteClock } from '@pte/core';
import {
  A,
  D,
  DEFAULT_MODE,
  entryPfn,
  P,
  PhysMem,
  PS,
  RW,
  SimpleFrameSource,
  US,
  Walker,
  type Mmu,
  type PageTrackListener,
} from '@pte/arch-x86';
import type { GuestCpu } from '@pte/pvops';
import { KVM_COSTS, type KvmCostKey } from './costs.js';
import { exit, invlpg, newPgd, syncAccessed, zapStaleShadow } from './mmu.js';
import { trackWrite } from './page-track.js';
import { pageFault } from './paging-tmpl.js';

export { PTE_PREFETCH_NUM } from './paging-tmpl.js';
export { WRITE_FLOOD_LIMIT } from './page-track.js';

/**
 * Which KVM: `modern` has unsync leaf shadow pages (a guest write to a shadowed PTE page costs one
 * exit, then none until INVLPG or a CR3 load) and prefetch; `2008` write-protects every shadowed
 * page table, emulates each write (kvm_mmu_pte_write → update_pte installs the spte only if the new
 * gpte is P and A) until its fork detector unshadows a page written three times in a row, and has
 * no prefetch (hypervisors.md §3.3, §3.4, §3.9; 2.6.26-era mmu.c kvm_mmu_pte_write).
 */
export type ShadowEra = 'modern' | '2008';

export interface ShadowOptions {
  /** Guest-physical memory (the guest's page tables live here). */
  readonly gmem: PhysMem;
  readonly era?: ShadowEra;
  readonly ledger?: CycleLedger;
  readonly costs?: CostTable<KvmCostKey>;
  /** Host frames for shadow pages (default: a quarter of guest memory plus 4096). */
  readonly shadowFrames?: number;
  /**
   * The thread's proposal (Kivity, Fitzhardinge, seed 001): the host keeps A/D, so a present gpte
   * with A clear may still be shadowed (prefetched); the guest gets its A bits back when it enters
   * lazy MMU mode (`syncAccessed`), one hypercall per sync.
   */
  readonly deferredAD?: boolean;
  /**
   * The host backs guest memory with 2 MiB pages: a guest 2 MiB gpte is shadowed by one 2 MiB spte
   * (kvm_mmu_hugepage_adjust finds a host mapping level of 2) instead of a direct shadow page.
   */
  readonly hostHuge?: boolean;
}

/**
 * KVM's shadow MMU for one vCPU and one guest: the state (struct kvm_mmu, struct kvm_arch's
 * shadow-page hash, the vCPU's counters); the logic lives in files named after KVM's sources:
 * mmu.ts (mmu.c: the #PF exit's shadow-page cache, zap, unsync/sync, CR3 and INVLPG exits),
 * paging-tmpl.ts (paging_tmpl.h: page_fault, fetch, pte_prefetch, sync_spte), page-track.ts
 * (page_track.c and kvm_mmu_track_write: write-protection, emulated writes, write flooding) and
 * spte.ts (spte.c: make_spte).
 *
 * The CPU walks shadow page tables in `smem`; one shadow page (sp) shadows one guest page-table
 * frame at one level. A #PF on the shadow tables is a VM exit: KVM walks the guest's tables in
 * software (FNAME(walk_addr_generic), setting guest A/D), and either injects the #PF into the
 * guest (the gpte does not allow the access) or builds the missing shadow entries (FNAME(fetch))
 * and prefetches up to 7 aligned neighbours whose gptes are present and accessed
 * (FNAME(pte_prefetch)). An spte is present only if its gpte is P and A, and writable only if the
 * gpte is dirty (FNAME(protect_clean_gpte)), so the guest's A/D bits stay truthful.
 *
 * Shadowed guest page-table frames are write-protected through page-track; the guest's writes
 * reach `onTrackedWrite` (kvm_mmu_track_write). Guest frames and host frames are identical here
 * (the host backs guest memory one to one).
 *
 * It is also the guest's CPU (GuestCpu): the guest's INVLPG and CR3 writes exit to it.
 */
/**
 * What kvm_flush_remote_tlbs() costs (kvm_make_all_cpus_request: an IPI to each vCPU in guest mode,
 * which exits and flushes before it re-enters; the requester waits for the acks) and the clocks it
 * charges: the run's native IPI costs plus a VM exit on each target.
 */
export interface ShadowSmp {
  readonly ipiSend: number;
  readonly ipiLatency: number;
  readonly lineTransfer: number;
  readonly clocks: RemoteClock;
}

/** One vCPU's part of the shadow MMU's state, saved while another vCPU runs. */
export class ShadowVcpu {
  root = -1;
  pcid = 0;
  shadowRoot = -1;
  lastWriteGfn = -1;
  lastWriteCount = 0;
  lastSpte = -1;
  injectCode = 0;
  constructor(readonly cpu: Mmu) {}

  save(s: ShadowMmu): void {
    this.root = s.root;
    this.pcid = s.pcid;
    this.shadowRoot = s.shadowRoot;
    this.lastWriteGfn = s.lastWriteGfn;
    this.lastWriteCount = s.lastWriteCount;
    this.lastSpte = s.lastSpte;
    this.injectCode = s.injectCode;
  }

  load(s: ShadowMmu): void {
    s.cpu = this.cpu;
    s.root = this.root;
    s.pcid = this.pcid;
    s.shadowRoot = this.shadowRoot;
    s.lastWriteGfn = this.lastWriteGfn;
    s.lastWriteCount = this.lastWriteCount;
    s.lastSpte = this.lastSpte;
    s.injectCode = this.injectCode;
  }
}

/** ShadowMmu.pendingFlush: nothing to flush. */
export const FLUSH_NONE = 0;
/** This vCPU's TLB only. */
export const FLUSH_THIS_VCPU = 1;
/** Every vCPU that has run (kvm_flush_remote_tlbs). */
export const FLUSH_ALL_VCPUS = 2;

export class ShadowMmu implements PageTrackListener, GuestCpu {
  readonly gmem: PhysMem;
  readonly smem: PhysMem;
  readonly era: ShadowEra;
  readonly deferredAD: boolean;
  readonly hostHuge: boolean;
  /** 2 MiB sptes made for guest 2 MiB gptes (hostHuge). */
  hugeSptes = 0;
  /** @internal */ readonly frames: SimpleFrameSource;
  /** @internal */ readonly walker: Walker;
  /** @internal The running vCPU's CPU. */
  cpu: Mmu | null = null;
  /** @internal Every vCPU's saved state, by id (the running one's is in the fields below). */
  vcpus: ShadowVcpu[] = [];
  /** @internal The running vCPU. */
  current = 0;
  /** @internal What flushing the other vCPUs costs (attachCpus). */
  smp: ShadowSmp | null = null;
  /** kvm_flush_remote_tlbs() calls that reached other vCPUs, and the IPIs they sent. */
  remoteFlushes = 0;
  remoteFlushIpis = 0;
  // Shadow pages, by shadow frame (struct kvm_mmu_page).
  /** @internal */ readonly spGfn: Int32Array;
  /** @internal */ readonly spLevel: Uint8Array;
  /** @internal */ readonly spUnsync: Uint8Array;
  /** @internal */ readonly spFlood: Uint8Array;
  /** @internal */ readonly spParent: Int32Array;
  /** @internal */ readonly spParentIdx: Int16Array;
  /**
   * 1: a direct shadow page (role.direct): the 4 KiB sptes of a guest 2 MiB mapping, spGfn its
   * first guest frame; it shadows no guest table, so it is neither in byGfn nor write-protected.
   * @internal
   */
  readonly spDirect: Uint8Array;
  /** (gfn, level) → shadow frame (mmu_page_hash). @internal */
  readonly byGfn = new Map<number, number>();
  /** Write-protection taken per guest frame (account_shadowed). @internal */
  readonly tracked: Uint8Array;
  /** Unsync shadow pages. @internal */
  readonly unsync = new Set<number>();
  /**
   * The flush pending (flushIfNeeded): none, this vCPU's TLB only (kvm_mmu_flush_tlb: a 2008 pte
   * write filling a non-present spte), or every vCPU's (kvm_flush_remote_tlbs: zaps, syncs). A
   * wider request never gives way to a narrower one. @internal
   */
  pendingFlush = FLUSH_NONE;
  /**
   * 2008 kvm_mmu_pte_write's fork detector, per vCPU (vcpu->arch.last_pt_write_gfn/_count and
   * last_pte_updated): the gfn written last, the writes to it in a row, and the smem entry number
   * of the spte mmu_set_spte set last (-1: none). @internal
   */
  lastWriteGfn = -1;
  /** @internal */ lastWriteCount = 0;
  /** @internal */ lastSpte = -1;
  /** The guest's CR3 (guest frame) and the shadow root loaded for it. */
  root = -1;
  pcid = 0;
  /** @internal */ shadowRoot = -1;
  /** The guest error code of the last injected #PF. */
  injectCode = 0;

  /** @internal */ readonly ledger: CycleLedger;
  /** @internal */ readonly catExit: number;
  /** @internal */ readonly catFault: number;
  /** @internal */ readonly catPrefetch: number;
  /** @internal */ readonly catEmulate: number;
  /** @internal */ readonly c: CostTable<KvmCostKey>;

  // Statistics (kvm.*).
  exits = 0;
  shadowFaults = 0;
  injected = 0;
  prefetched = 0;
  emulated = 0;
  unsyncs = 0;
  syncs = 0;
  invlpgExits = 0;
  cr3Exits = 0;
  zappedPages = 0;
  guestWalks = 0;
  bypassed = 0;
  adSyncs = 0;
  adSynced = 0;

  constructor(o: ShadowOptions) {
    this.gmem = o.gmem;
    this.era = o.era ?? 'modern';
    this.deferredAD = o.deferredAD ?? false;
    this.hostHuge = o.hostHuge ?? false;
    const n = o.shadowFrames ?? Math.floor(o.gmem.frames / 4) + 4096;
    this.smem = new PhysMem(n);
    this.frames = new SimpleFrameSource(n, 1);
    this.walker = new Walker(o.gmem, DEFAULT_MODE);
    this.spGfn = new Int32Array(n).fill(-1);
    this.spLevel = new Uint8Array(n);
    this.spUnsync = new Uint8Array(n);
    this.spFlood = new Uint8Array(n);
    this.spParent = new Int32Array(n).fill(-1);
    this.spParentIdx = new Int16Array(n);
    this.spDirect = new Uint8Array(n);
    this.tracked = new Uint8Array(o.gmem.frames);
    this.ledger = o.ledger ?? new CycleLedger();
    this.catExit = this.ledger.id('kvm.exit');
    this.catFault = this.ledger.id('kvm.shadow_fault');
    this.catPrefetch = this.ledger.id('kvm.prefetch');
    this.catEmulate = this.ledger.id('kvm.emulate');
    this.c = o.costs ?? resolveCosts(KVM_COSTS);
    o.gmem.setTrackListener(this);
    // A prefetched spte carries its gpte's prefault mark; the CPU's first use of the spte is the
    // guest page's first use (how pte.prefaulted_unused stays truthful under shadow paging).
    this.smem.markTaken = (e) => {
      const sf = this.smem.frameOfSlot[Math.floor(e / 512)]!;
      const gfn = this.spGfn[sf]!;
      if (gfn >= 0 && this.spLevel[sf] === 1 && this.spDirect[sf] === 0)
        this.gmem.takeMark(this.gmem.entryIndex(gfn, e % 512));
    };
  }

  /** The real CPU, walking `smem` (a one-vCPU VM). */
  attachCpu(mmu: Mmu): void {
    this.attachCpus([mmu], null);
  }

  /**
   * The VM's vCPUs, by id: each has its own CR3, shadow root, write-flood detector and injected
   * error code (struct kvm_vcpu's arch.mmu and last_pt_write_*); the shadow pages are the VM's.
   * `smp` prices kvm_flush_remote_tlbs() to the other vCPUs (needed with several).
   */
  attachCpus(mmus: readonly Mmu[], smp: ShadowSmp | null): void {
    if (mmus.length > 1 && smp === null) throw new Error('several vCPUs need the cost of flushing each other');
    this.vcpus = mmus.map((cpu) => new ShadowVcpu(cpu));
    this.smp = smp;
    this.current = 0;
    this.cpu = mmus[0] ?? null;
  }

  /** vCPU `id` runs from now on: its state becomes the MMU's current one. */
  runOn(id: number): void {
    if (id === this.current) return;
    const next = this.vcpus[id];
    if (next === undefined) throw new Error(`no vCPU ${id}`);
    this.vcpus[this.current]!.save(this);
    next.load(this);
    this.current = id;
  }

  /** Run `fn` as vCPU `id` (a flush IPI's handler on its target), then return to the current one. */
  asVcpu(id: number, fn: () => void): void {
    const back = this.current;
    this.runOn(id);
    try {
      fn();
    } finally {
      this.runOn(back);
    }
  }

  /** The GuestCpu of vCPU `id`: its INVLPG and CR3 writes exit as that vCPU's. */
  guestCpu(id: number): GuestCpu {
    const s = this;
    return {
      get root() {
        return s.current === id ? s.root : s.vcpus[id]!.root;
      },
      get pcid() {
        return s.current === id ? s.pcid : s.vcpus[id]!.pcid;
      },
      invlpg: (hi, lo) => (s.current === id ? s.invlpg(hi, lo) : s.asVcpu(id, () => s.invlpg(hi, lo))),
      writeCr3: (root, pcid) =>
        s.current === id ? s.writeCr3(root, pcid) : s.asVcpu(id, () => s.writeCr3(root, pcid)),
    };
  }

  // --- the #PF exit ---------------------------------------------------------------------------

  /**
   * A #PF on the shadow tables (kvm_mmu_page_fault → FNAME(page_fault)). Returns true when KVM
   * fixed the shadow tables (resume the guest), false when the #PF belongs to the guest
   * (`injectCode` holds its error code).
   */
  handlePageFault(hi: number, lo: number, access: number): boolean {
    return pageFault(this, hi, lo, access);
  }

  /** The guest is about to (re)use guest frame `gfn` as a page table: forget any stale shadow of it. */
  onGuestTable(gfn: number): void {
    zapStaleShadow(this, gfn);
  }

  /** kvm_mmu_track_write: a guest store to a write-protected page table (page-track.ts). */
  onTrackedWrite(gfn: number, index: number, _oldLo: number, _oldHi: number, newLo: number, newHi: number): void {
    trackWrite(this, gfn, index, newLo, newHi);
  }

  /** Block requests the guest kicked (ioKick). */
  ioKicks = 0;

  /**
   * A virtio-blk request: the kick is a write to the queue's notify register (virtqueue_notify →
   * vp_notify), a VM exit; the completion is an interrupt KVM injects.
   */
  ioKick(): void {
    exit(this);
    this.ioKicks++;
    this.ledger.charge(this.catExit, this.c['kvm.inject']);
  }

  /** The proposed deferred A/D sync: one hypercall copies the CPU's A/D bits into the gptes (mmu.ts). */
  syncAccessed(): void {
    syncAccessed(this);
  }

  // --- GuestCpu: the guest's INVLPG and CR3 writes exit -----------------------------------------

  /** A guest CR3 write (switch or flush): load the shadow root for it and sync its unsync pages (kvm_mmu_sync_roots). */
  writeCr3(root: number, pcid: number): void {
    newPgd(this, root, pcid);
  }

  /** A guest INVLPG: resync the one spte if its page is unsync (kvm_mmu_invlpg), then flush it. */
  invlpg(hi: number, lo: number): void {
    invlpg(this, hi, lo);
  }

  // --- checks and counters -----------------------------------------------------------------------

  /**
   * The --check invariant: every present leaf spte of a page in sync agrees with its gpte under the
   * rules (gpte P and A, same frame, writable only if the gpte is writable and dirty, user only if
   * the gpte is), and every non-leaf spte points at the shadow page of the gpte's table.
   */
  checkInvariants(): string[] {
    const out: string[] = [];
    for (const [key, sf] of this.byGfn) {
      const gfn = Math.floor(key / 8);
      const level = key % 8;
      if (this.spUnsync[sf] === 1) continue;
      for (let i = 0; i < 512; i++) {
        const lo = this.smem.readLo(sf, i);
        if ((lo & P) === 0) continue;
        const hi = this.smem.readHi(sf, i);
        const glo = this.gmem.readLo(gfn, i);
        const ghi = this.gmem.readHi(gfn, i);
        const where = `spte ${i} of the level-${level} shadow of gfn 0x${gfn.toString(16)}`;
        if ((glo & P) === 0) {
          out.push(`${where} is present but its gpte is not`);
          continue;
        }
        if (level === 1) {
          if ((glo & A) === 0 && !this.deferredAD) out.push(`${where} is present but its gpte is not accessed`);
          if (entryPfn(1, lo, hi) !== entryPfn(1, glo, ghi)) out.push(`${where} maps another frame than its gpte`);
          if ((lo & RW) !== 0 && ((glo & RW) === 0 || (glo & D) === 0))
            out.push(`${where} is writable but its gpte is not writable and dirty`);
          if ((lo & US) !== 0 && (glo & US) === 0) out.push(`${where} is user but its gpte is not`);
        } else if (level === 2 && (glo & PS) !== 0 && (lo & PS) !== 0) {
          if (entryPfn(2, lo, hi) !== entryPfn(2, glo, ghi)) out.push(`${where} maps another 2 MiB than its gpte`);
          if ((lo & RW) !== 0 && ((glo & RW) === 0 || (glo & D) === 0))
            out.push(`${where} is writable but its gpte is not writable and dirty`);
          if ((lo & US) !== 0 && (glo & US) === 0) out.push(`${where} is user but its gpte is not`);
        } else if (level === 2 && (glo & PS) !== 0) {
          const child = entryPfn(level, lo, hi);
          if (this.spDirect[child] !== 1 || this.spGfn[child] !== entryPfn(2, glo, ghi))
            out.push(`${where} shadows a 2 MiB gpte but is not its direct shadow page`);
          else this.checkDirect(child, glo, ghi, where, out);
        } else {
          const child = entryPfn(level, lo, hi);
          if (this.spGfn[child] !== entryPfn(level, glo, ghi))
            out.push(`${where} points at the shadow of another table`);
        }
      }
    }
    return out;
  }

  /** The 4 KiB sptes of direct page `sf` against the 2 MiB gpte (glo, ghi) they shadow. */
  private checkDirect(sf: number, glo: number, ghi: number, where: string, out: string[]): void {
    const base = this.spGfn[sf]!;
    for (let j = 0; j < 512; j++) {
      const lo = this.smem.readLo(sf, j);
      if ((lo & P) === 0) continue;
      const at = `${where}, direct spte ${j}`;
      if ((glo & A) === 0 && !this.deferredAD) out.push(`${at} is present but its gpte is not accessed`);
      if (entryPfn(1, lo, this.smem.readHi(sf, j)) !== base + j) out.push(`${at} maps another frame than its gpte`);
      if ((lo & RW) !== 0 && ((glo & RW) === 0 || (glo & D) === 0))
        out.push(`${at} is writable but its gpte is not writable and dirty`);
      if ((lo & US) !== 0 && (glo & US) === 0) out.push(`${at} is user but its gpte is not`);
    }
    void ghi;
  }

  addCountersTo(c: Counters): void {
    const add = (name: string, v: number) => c.add(c.id(name), v);
    add('kvm.exits', this.exits);
    if (this.vcpus.length > 1) {
      add('kvm.remote_flushes', this.remoteFlushes);
      add('kvm.remote_flush_ipis', this.remoteFlushIpis);
    }
    // KVM's software walk is the first use of a prefaulted gpte it faults on (it takes the mark,
    // so the CPU's later walk of the spte does not see one): that use counts with the CPU's.
    add('pte.prefaulted_used', this.walker.markedUses);
    add('kvm.shadow_faults', this.shadowFaults);
    add('kvm.injected_pf', this.injected);
    add('kvm.bypassed_pf', this.bypassed);
    add('kvm.ad_syncs', this.adSyncs);
    add('kvm.ad_synced_bits', this.adSynced);
    add('kvm.prefetched', this.prefetched);
    add('kvm.emulated_writes', this.emulated);
    add('kvm.unsyncs', this.unsyncs);
    add('kvm.syncs', this.syncs);
    add('kvm.invlpg_exits', this.invlpgExits);
    add('kvm.cr3_exits', this.cr3Exits);
    add('kvm.zapped_pages', this.zappedPages);
    add('kvm.shadow_pages', this.byGfn.size);
    if (this.hostHuge) add('kvm.huge_sptes', this.hugeSptes);
    if (this.ioKicks > 0) add('kvm.io_kicks', this.ioKicks);
  }
}
