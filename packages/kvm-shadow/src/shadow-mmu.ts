import { CycleLedger, resolveCosts, type CostTable, type Counters } from '@pte/core';
import {
  frameHi, frameLo, A, ACCESS_USER, ACCESS_WRITE, D, DEFAULT_MODE, entryPfn, isLeaf, P, PF_P, PhysMem, RW, SimpleFrameSource, tableIndex, US,
  Walker, XD_HI, type Mmu, type PageTrackListener,
} from '@pte/arch-x86';
import type { GuestCpu } from '@pte/pvops';
import { KVM_COSTS, type KvmCostKey } from './costs.js';

/** PTE_PREFETCH_NUM (arch/x86/kvm/mmu/mmu.c). */
export const PTE_PREFETCH_NUM = 8;
/** detect_write_flooding(): the third emulated write to a non-leaf shadow page zaps it. */
export const WRITE_FLOOD_LIMIT = 3;

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
}

/**
 * KVM's shadow MMU (arch/x86/kvm/mmu/mmu.c, paging_tmpl.h), for one vCPU and one guest.
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
export class ShadowMmu implements PageTrackListener, GuestCpu {
  readonly gmem: PhysMem;
  readonly smem: PhysMem;
  readonly era: ShadowEra;
  readonly deferredAD: boolean;
  private readonly frames: SimpleFrameSource;
  private readonly walker: Walker;
  private cpu: Mmu | null = null;
  // Shadow pages, by shadow frame.
  private readonly spGfn: Int32Array;
  private readonly spLevel: Uint8Array;
  private readonly spUnsync: Uint8Array;
  private readonly spFlood: Uint8Array;
  private readonly spParent: Int32Array;
  private readonly spParentIdx: Int16Array;
  /** (gfn, level) → shadow frame. */
  private readonly byGfn = new Map<number, number>();
  /** Write-protection taken per guest frame (account_shadowed). */
  private readonly tracked: Uint8Array;
  /** Unsync shadow pages. */
  private readonly unsync = new Set<number>();
  private needFlush = false;
  /**
   * 2008 kvm_mmu_pte_write's fork detector, per vCPU (vcpu->arch.last_pt_write_gfn/_count and
   * last_pte_updated): the gfn written last, the writes to it in a row, and the smem entry number
   * of the spte mmu_set_spte set last (-1: none).
   */
  private lastWriteGfn = -1;
  private lastWriteCount = 0;
  private lastSpte = -1;
  /** The guest's CR3 (guest frame) and the shadow root loaded for it. */
  root = -1;
  pcid = 0;
  private shadowRoot = -1;
  /** The guest error code of the last injected #PF. */
  injectCode = 0;

  private readonly ledger: CycleLedger;
  private readonly catExit: number;
  private readonly catFault: number;
  private readonly catPrefetch: number;
  private readonly catEmulate: number;
  private readonly c: CostTable<KvmCostKey>;

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
      if (gfn >= 0 && this.spLevel[sf] === 1) this.gmem.takeMark(this.gmem.entryIndex(gfn, e % 512));
    };
  }

  /** The real CPU, walking `smem`. */
  attachCpu(mmu: Mmu): void {
    this.cpu = mmu;
  }

  private exit(): void {
    this.exits++;
    this.ledger.charge(this.catExit, this.c['kvm.exit']);
  }

  // --- the #PF exit ---------------------------------------------------------------------------

  /**
   * A #PF on the shadow tables (kvm_mmu_page_fault → FNAME(page_fault)). Returns true when KVM
   * fixed the shadow tables (resume the guest), false when the #PF belongs to the guest
   * (`injectCode` holds its error code).
   */
  handlePageFault(hi: number, lo: number, access: number): boolean {
    const w = this.walker;
    const ok = w.walk(this.root, hi, lo, access | ACCESS_USER);
    if (!ok && this.era === '2008' && (w.errorCode & PF_P) === 0) {
      // bypass_guest_pf (VMX, 2008): a not-present guest #PF reaches the guest without an exit.
      this.bypassed++;
      this.injectCode = w.errorCode;
      return false;
    }
    this.exit();
    this.guestWalks++;
    // 2008: an injected #PF, or a fault fixed without a write to a page table, resets the fork detector.
    this.lastWriteCount = 0;
    this.ledger.charge(this.catFault, w.refs * this.c['kvm.guest_walk_ref']);
    if (!ok) {
      this.injected++;
      this.injectCode = w.errorCode;
      this.ledger.charge(this.catExit, this.c['kvm.inject']);
      return false;
    }
    if (w.level !== 1) throw new Error('guest large pages are not shadowed by this model (the guest maps 4 KiB pages under kvm-shadow)');
    this.shadowFaults++;
    this.ledger.charge(this.catFault, this.c['kvm.shadow_fault']);
    this.fetch(hi, lo, (access & ACCESS_WRITE) !== 0);
    this.flushIfNeeded();
    return true;
  }

  /** FNAME(fetch): build the shadow path for the address from the walk just done, then the leaf spte. */
  private fetch(hi: number, lo: number, write: boolean): void {
    const w = this.walker;
    this.unprotectForUserWrite(write);
    let sp = this.shadowRoot;
    this.spFlood[sp] = 0;
    for (let level = 4; level >= 2; level--) {
      const idx = tableIndex(level, hi, lo);
      const childGfn = w.tables[level - 1]!;
      const cur = this.smem.readLo(sp, idx);
      let child = -1;
      if ((cur & P) !== 0) {
        const f = entryPfn(level, cur, this.smem.readHi(sp, idx));
        if (this.spGfn[f] === childGfn && this.spLevel[f] === level - 1) child = f;
        else this.zapSpte(sp, idx, level);
      }
      if (child < 0) {
        child = this.getSp(childGfn, level - 1);
        this.link(sp, idx, child);
      }
      this.spFlood[child] = 0;
      sp = child;
    }
    const idx = tableIndex(1, hi, lo);
    const e = w.path[1]!; // the walker records the low half's index in PhysMem.ent
    const glo = this.gmem.ent[e]!;
    const ghi = this.gmem.ent[e + 1]!;
    this.setSpte(sp, idx, glo, ghi, w.rights, write, false);
    if (this.era === 'modern') this.prefetch(sp, idx, w.tables[1]!);
  }

  /**
   * A user access that maps a frame writable while KVM still shadows that frame as a page table:
   * the frame is not one any more (a page-table page the guest freed and reuses as data, whose
   * shadow outlived it). 2008 mmu_set_spte unshadows it on a user fault (mmu_unshadow); modern KVM
   * zaps its shadow pages when it retries the write it could not emulate as a page-table write
   * (retry_instruction → kvm_mmu_unprotect_page). Without this the write would fault on a
   * read-only spte forever. A table of the walk itself is left alone.
   */
  private unprotectForUserWrite(write: boolean): void {
    const w = this.walker;
    const e = w.path[1]!;
    const glo = this.gmem.ent[e]!;
    const frame = entryPfn(1, glo, this.gmem.ent[e + 1]!);
    if (this.tracked[frame] === 0) return;
    if (!(write || (this.era === '2008' && (w.rights & RW) !== 0 && (glo & D) !== 0))) return;
    for (let l = 4; l >= 1; l--) if (w.tables[l] === frame) return;
    for (let l = 1; l <= 4; l++) {
      const sf = this.byGfn.get(frame * 8 + l);
      if (sf !== undefined) this.zapSp(sf);
    }
  }

  /**
   * FNAME(pte_prefetch): the 8-aligned group around the fault; skip present sptes, stop at the
   * first gpte that is not present and accessed (FNAME(prefetch_invalid_gpte)). Prefetched sptes
   * are created old and write-protected unless the gpte is dirty. Upper levels of a Linux guest
   * grant RW|US, so each neighbour's rights are its own gpte's.
   */
  private prefetch(sp: number, idx: number, gtable: number): void {
    const base = idx - (idx % PTE_PREFETCH_NUM);
    for (let i = base; i < base + PTE_PREFETCH_NUM; i++) {
      if (i === idx || (this.smem.readLo(sp, i) & P) !== 0) continue;
      const glo = this.gmem.readLo(gtable, i);
      if ((glo & P) === 0 || ((glo & A) === 0 && !this.deferredAD)) break;
      this.setSpte(sp, i, glo, this.gmem.readHi(gtable, i), glo & (RW | US), false, true);
      this.prefetched++;
      this.ledger.charge(this.catPrefetch, this.c['kvm.prefetch']);
    }
  }

  /**
   * mmu_set_spte / make_spte for gpte (glo, ghi) with effective `rights`: present, writable only
   * if the gpte is dirty (or this is the write that dirtied it) and its frame is not a shadowed
   * page table (mmu_need_write_protect); A unless speculative.
   */
  private setSpte(sp: number, idx: number, glo: number, ghi: number, rights: number, write: boolean, speculative: boolean): void {
    const frame = entryPfn(1, glo, ghi);
    const writable = (rights & RW) !== 0 && ((glo & D) !== 0 || write) && this.tracked[frame] === 0;
    const lo = frameLo(frame) + (P | (rights & US) | (writable ? RW : 0) | (speculative ? 0 : A) | (writable && (glo & D) !== 0 ? D : 0));
    const hi = frameHi(frame) | (ghi & XD_HI);
    this.smem.write(sp, idx, lo >>> 0, hi >>> 0);
    const se = this.smem.entryIndex(sp, idx);
    this.lastSpte = se;
    this.smem.dropMark(se);
    if (this.gmem.mark[this.gmem.entryIndex(this.spGfn[sp]!, idx)] !== 0) this.smem.setMark(se);
  }

  // --- shadow pages ------------------------------------------------------------------------------

  /** kvm_mmu_get_page: the shadow page of guest table `gfn` at `level`, made and write-protected if new. */
  private getSp(gfn: number, level: number): number {
    const key = gfn * 8 + level;
    const found = this.byGfn.get(key);
    if (found !== undefined) return found;
    const sf = this.frames.allocFrame();
    this.smem.makeTable(sf);
    this.spGfn[sf] = gfn;
    this.spLevel[sf] = level;
    this.spUnsync[sf] = 0;
    this.spFlood[sf] = 0;
    this.spParent[sf] = -1;
    this.byGfn.set(key, sf);
    this.track(gfn);
    return sf;
  }

  private track(gfn: number): void {
    if (this.tracked[gfn] === 0) {
      this.tracked[gfn] = 1;
      this.gmem.trackWrites(gfn);
    }
  }

  private untrack(gfn: number): void {
    if (this.tracked[gfn] === 1) {
      this.tracked[gfn] = 0;
      this.gmem.untrackWrites(gfn);
    }
  }

  /** link_shadow_page: point `parent`'s entry at `child` (full rights: the leaf carries the guest's). */
  private link(parent: number, idx: number, child: number): void {
    this.smem.write(parent, idx, (frameLo(child) + (P | RW | US | A)) >>> 0, frameHi(child));
    this.spParent[child] = parent;
    this.spParentIdx[child] = idx;
  }

  /** mmu_page_zap_pte: clear one spte; a non-leaf one takes its shadow page with it. */
  private zapSpte(sp: number, idx: number, level: number): void {
    const lo = this.smem.readLo(sp, idx);
    if ((lo & P) === 0) return;
    this.smem.write(sp, idx, 0, 0);
    if (level >= 2) {
      const child = entryPfn(level, lo, this.smem.readHi(sp, idx));
      this.spParent[child] = -1;
      this.zapSp(child);
    }
    this.needFlush = true;
  }

  /** kvm_mmu_prepare_zap_page + commit: drop a shadow page, its children, its link and its write-protection. */
  private zapSp(sf: number): void {
    const level = this.spLevel[sf]!;
    if (level >= 2) for (let i = 0; i < 512; i++) this.zapSpte(sf, i, level);
    const parent = this.spParent[sf]!;
    if (parent >= 0) this.smem.write(parent, this.spParentIdx[sf]!, 0, 0);
    const gfn = this.spGfn[sf]!;
    this.byGfn.delete(gfn * 8 + level);
    this.unsync.delete(sf);
    let shadowedElsewhere = false;
    for (let l = 1; l <= 4; l++) if (this.byGfn.has(gfn * 8 + l)) shadowedElsewhere = true;
    if (!shadowedElsewhere) this.untrack(gfn);
    if (sf === this.shadowRoot) this.shadowRoot = -1;
    if (this.lastSpte >= 0 && Math.floor(this.lastSpte / 512) === this.smem.slotOf[sf]) this.lastSpte = -1;
    this.spGfn[sf] = -1;
    this.smem.releaseTable(sf);
    this.frames.freeFrame(sf);
    this.zappedPages++;
    this.needFlush = true;
  }

  /** The guest is about to (re)use guest frame `gfn` as a page table: forget any stale shadow of it. */
  onGuestTable(gfn: number): void {
    for (let l = 1; l <= 4; l++) {
      const sf = this.byGfn.get(gfn * 8 + l);
      if (sf !== undefined && sf !== this.shadowRoot) this.zapSp(sf);
    }
    this.flushIfNeeded();
  }

  // --- guest writes to shadowed page tables ------------------------------------------------------

  /**
   * kvm_mmu_track_write: a guest store to a write-protected page table. Modern KVM makes a shadowed
   * leaf page unsync on its first write (one exit; the page stops being write-protected until the
   * next sync). Otherwise the write is emulated: the written spte is zapped (or, in 2008,
   * update_pte installs it, old, if the new gpte is P and A). Write flooding: modern KVM zaps a
   * non-leaf page on its third emulated write without a fault through it in between
   * (detect_write_flooding); 2008 KVM zaps every shadow page of the gfn on the third write in a row
   * to it while the spte it set last was not used and no fault exited in between (the "fork
   * detector" of kvm_mmu_pte_write, leaves included), after which the guest's stores are plain.
   */
  onTrackedWrite(gfn: number, index: number, _oldLo: number, _oldHi: number, newLo: number, newHi: number): void {
    this.exit();
    const leaf = this.byGfn.get(gfn * 8 + 1);
    let upper = false;
    for (let l = 2; l <= 4; l++) if (this.byGfn.has(gfn * 8 + l)) upper = true;
    if (this.era === 'modern' && leaf !== undefined && !upper) {
      this.spUnsync[leaf] = 1;
      this.unsync.add(leaf);
      this.untrack(gfn);
      this.unsyncs++;
      this.ledger.charge(this.catExit, this.c['kvm.unsync']);
      return;
    }
    this.emulated++;
    this.ledger.charge(this.catEmulate, this.c['kvm.emulate']);
    let flooded = false;
    if (this.era === '2008') {
      if (gfn === this.lastWriteGfn && !(this.lastSpte >= 0 && (this.smem.ent[2 * this.lastSpte]! & A) !== 0)) {
        flooded = ++this.lastWriteCount >= WRITE_FLOOD_LIMIT;
      } else {
        this.lastWriteGfn = gfn;
        this.lastWriteCount = 1;
        this.lastSpte = -1;
      }
    }
    for (let l = 1; l <= 4; l++) {
      const sf = this.byGfn.get(gfn * 8 + l);
      if (sf === undefined) continue;
      if (flooded || (l >= 2 && this.era === 'modern' && ++this.spFlood[sf]! >= WRITE_FLOOD_LIMIT)) {
        this.zapSp(sf);
        continue;
      }
      if (l === 1 && this.era === '2008' && (newLo & (P | A)) === (P | A)) {
        // FNAME(update_pte) → mmu_set_spte(..., speculative): the spte is created without A.
        this.setSpte(sf, index, newLo, newHi, newLo & (RW | US), false, true);
        this.needFlush = true;
      } else {
        this.zapSpte(sf, index, l);
      }
    }
    this.flushIfNeeded();
  }

  /** kvm_sync_page: bring an unsync leaf back in line with its guest table and write-protect it again. */
  private syncPage(sf: number): void {
    const gfn = this.spGfn[sf]!;
    for (let i = 0; i < 512; i++) {
      const lo = this.smem.readLo(sf, i);
      if ((lo & P) === 0) continue;
      const glo = this.gmem.readLo(gfn, i);
      const ghi = this.gmem.readHi(gfn, i);
      if ((glo & (P | A)) !== (P | A) || entryPfn(1, glo, ghi) !== entryPfn(1, lo, this.smem.readHi(sf, i))) {
        this.smem.write(sf, i, 0, 0);
      } else {
        this.setSpte(sf, i, glo, ghi, glo & (RW | US), false, (lo & A) === 0);
      }
    }
    this.spUnsync[sf] = 0;
    this.unsync.delete(sf);
    this.track(gfn);
    this.syncs++;
    this.ledger.charge(this.catFault, this.c['kvm.sync_page']);
    this.needFlush = true;
  }

  /**
   * The proposed deferred A/D sync: copy the A (and D) bits the CPU set in leaf sptes into gptes
   * whose own bits are clear, clearing them in the spte so later accesses are seen again. One
   * hypercall per sync; KVM writes guest memory directly (no trap).
   */
  syncAccessed(): void {
    this.exit();
    this.adSyncs++;
    for (const [key, sf] of this.byGfn) {
      if (key % 8 !== 1) continue;
      const gfn = Math.floor(key / 8);
      for (let i = 0; i < 512; i++) {
        const lo = this.smem.readLo(sf, i);
        if ((lo & (P | A)) !== (P | A)) continue;
        const e = 2 * this.gmem.entryIndex(gfn, i);
        const glo = this.gmem.ent[e]!;
        if ((glo & P) === 0) continue;
        this.gmem.ent[e] = (glo | A | (lo & D)) >>> 0;
        this.smem.write(sf, i, (lo & ~A) >>> 0, this.smem.readHi(sf, i));
        this.adSynced++;
      }
    }
    this.needFlush = true;
    this.flushIfNeeded();
  }

  /**
   * kvm_mmu_sync_roots → mmu_sync_children: sync the unsync pages under the loaded root. Those of
   * other address spaces stay unsync until their root is loaded (they are out of the CPU's reach).
   */
  private syncRoot(): void {
    for (const sf of [...this.unsync]) {
      let top = sf;
      while (top >= 0 && this.spLevel[top]! < 4) top = this.spParent[top]!;
      if (top === this.shadowRoot) this.syncPage(sf);
    }
  }

  private flushIfNeeded(): void {
    if (!this.needFlush) return;
    this.needFlush = false;
    // The root in use was zapped (write flooding of the guest's top-level table): KVM marks it
    // invalid and the vCPU loads a fresh root for the same CR3 before it re-enters the guest
    // (KVM_REQ_MMU_RELOAD / kvm_mmu_load), so the CPU never walks the freed shadow page.
    if (this.shadowRoot < 0 && this.root >= 0) this.shadowRoot = this.getSp(this.root, 4);
    // kvm_flush_remote_tlbs: one vCPU here, a CR3 reload of the shadow root.
    if (this.cpu !== null && this.shadowRoot >= 0) this.cpu.writeCr3(this.shadowRoot, this.pcid);
  }

  // --- GuestCpu: the guest's INVLPG and CR3 writes exit -----------------------------------------

  /** A guest CR3 write (switch or flush): load the shadow root for it and sync its unsync pages (kvm_mmu_sync_roots). */
  writeCr3(root: number, pcid: number): void {
    this.exit();
    this.cr3Exits++;
    this.root = root;
    this.pcid = pcid;
    this.shadowRoot = this.getSp(root, 4);
    this.syncRoot();
    this.needFlush = false;
    this.cpu?.writeCr3(this.shadowRoot, pcid);
  }

  /** A guest INVLPG: resync the one spte if its page is unsync (kvm_mmu_invlpg), then flush it. */
  invlpg(hi: number, lo: number): void {
    this.exit();
    this.invlpgExits++;
    this.ledger.charge(this.catExit, this.c['kvm.invlpg']);
    let sp = this.shadowRoot;
    for (let level = 4; level >= 2 && sp >= 0; level--) {
      const e = this.smem.readLo(sp, tableIndex(level, hi, lo));
      sp = (e & P) === 0 || isLeaf(level, e) ? -1 : entryPfn(level, e, this.smem.readHi(sp, tableIndex(level, hi, lo)));
    }
    if (sp >= 0 && this.spUnsync[sp] === 1) {
      const i = tableIndex(1, hi, lo);
      const gfn = this.spGfn[sp]!;
      const glo = this.gmem.readLo(gfn, i);
      const ghi = this.gmem.readHi(gfn, i);
      const slo = this.smem.readLo(sp, i);
      // FNAME(sync_spte): drop the spte if the gpte is invalid or now names another frame; else
      // refresh its rights from the gpte.
      if ((slo & P) === 0) {
        // nothing shadowed here
      } else if ((glo & (P | A)) !== (P | A) || entryPfn(1, glo, ghi) !== entryPfn(1, slo, this.smem.readHi(sp, i))) {
        this.smem.write(sp, i, 0, 0);
      } else {
        this.setSpte(sp, i, glo, ghi, glo & (RW | US), false, false);
      }
    }
    this.cpu?.invlpg(hi, lo);
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
          if ((lo & RW) !== 0 && ((glo & RW) === 0 || (glo & D) === 0)) out.push(`${where} is writable but its gpte is not writable and dirty`);
          if ((lo & US) !== 0 && (glo & US) === 0) out.push(`${where} is user but its gpte is not`);
        } else {
          const child = entryPfn(level, lo, hi);
          if (this.spGfn[child] !== entryPfn(level, glo, ghi)) out.push(`${where} points at the shadow of another table`);
        }
      }
    }
    return out;
  }

  addCountersTo(c: Counters): void {
    const add = (name: string, v: number) => c.add(c.id(name), v);
    add('kvm.exits', this.exits);
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
  }
}
