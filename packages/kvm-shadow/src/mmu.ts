import { A, D, entryPfn, frameHi, frameLo, isLeaf, P, RW, tableIndex, US } from '@pte/arch-x86';
import { track, untrack } from './page-track.js';
import { syncSpte } from './paging-tmpl.js';
import { FLUSH_ALL_VCPUS, FLUSH_NONE, type ShadowMmu } from './shadow-mmu.js';

/** A VM exit (vcpu_enter_guest returning to KVM). */
export function exit(s: ShadowMmu): void {
  s.exits++;
  s.ledger.charge(s.catExit, s.c['kvm.exit']);
}

// --- the shadow-page cache ------------------------------------------------------------------

/** kvm_mmu_get_shadow_page: the shadow page of guest table `gfn` at `level`, made and write-protected if new. */
export function getSp(s: ShadowMmu, gfn: number, level: number): number {
  const key = gfn * 8 + level;
  const found = s.byGfn.get(key);
  if (found !== undefined) return found;
  const sf = s.frames.allocFrame();
  s.smem.makeTable(sf);
  s.spGfn[sf] = gfn;
  s.spLevel[sf] = level;
  s.spUnsync[sf] = 0;
  s.spFlood[sf] = 0;
  s.spParent[sf] = -1;
  s.byGfn.set(key, sf);
  track(s, gfn);
  return sf;
}

/**
 * kvm_mmu_get_child_sp(..., direct = true) for a guest 2 MiB mapping whose frames the host backs
 * with 4 KiB pages: a direct shadow page of 4 KiB sptes for the 512 frames from `baseGfn`. It
 * shadows no guest table, so nothing is write-protected and it is not hashed by gfn (a guest
 * write to the PMD gpte zaps the spte that links it, and it goes with it).
 */
export function getDirectSp(s: ShadowMmu, baseGfn: number): number {
  const sf = s.frames.allocFrame();
  s.smem.makeTable(sf);
  s.spGfn[sf] = baseGfn;
  s.spLevel[sf] = 1;
  s.spDirect[sf] = 1;
  s.spUnsync[sf] = 0;
  s.spFlood[sf] = 0;
  s.spParent[sf] = -1;
  return sf;
}

/** link_shadow_page: point `parent`'s entry at `child` (full rights: the leaf carries the guest's). */
export function link(s: ShadowMmu, parent: number, idx: number, child: number): void {
  s.smem.write(parent, idx, (frameLo(child) + (P | RW | US | A)) >>> 0, frameHi(child));
  s.spParent[child] = parent;
  s.spParentIdx[child] = idx;
}

/** mmu_page_zap_pte: clear one spte; a non-leaf one takes its shadow page with it. */
export function zapSpte(s: ShadowMmu, sp: number, idx: number, level: number): void {
  const lo = s.smem.readLo(sp, idx);
  if ((lo & P) === 0) return;
  s.smem.write(sp, idx, 0, 0);
  if (level >= 2 && !isLeaf(level, lo)) {
    const child = entryPfn(level, lo, s.smem.readHi(sp, idx));
    s.spParent[child] = -1;
    zapSp(s, child);
  }
  s.pendingFlush = FLUSH_ALL_VCPUS;
}

/** kvm_mmu_prepare_zap_page + commit: drop a shadow page, its children, its link and its write-protection. */
export function zapSp(s: ShadowMmu, sf: number): void {
  const level = s.spLevel[sf]!;
  if (level >= 2) for (let i = 0; i < 512; i++) zapSpte(s, sf, i, level);
  const parent = s.spParent[sf]!;
  if (parent >= 0) s.smem.write(parent, s.spParentIdx[sf]!, 0, 0);
  const gfn = s.spGfn[sf]!;
  if (s.spDirect[sf] === 0) {
    s.byGfn.delete(gfn * 8 + level);
    s.unsync.delete(sf);
    let shadowedElsewhere = false;
    for (let l = 1; l <= 4; l++) if (s.byGfn.has(gfn * 8 + l)) shadowedElsewhere = true;
    if (!shadowedElsewhere) untrack(s, gfn);
  }
  s.spDirect[sf] = 0;
  if (sf === s.shadowRoot) s.shadowRoot = -1;
  if (s.lastSpte >= 0 && Math.floor(s.lastSpte / 512) === s.smem.slotOf[sf]) s.lastSpte = -1;
  // The other vCPUs' roots and flood detectors (KVM_REQ_MMU_RELOAD makes them load a fresh root).
  for (let id = 0; id < s.vcpus.length; id++) {
    if (id === s.current) continue;
    const v = s.vcpus[id]!;
    if (v.shadowRoot === sf) v.shadowRoot = -1;
    if (v.lastSpte >= 0 && Math.floor(v.lastSpte / 512) === s.smem.slotOf[sf]) v.lastSpte = -1;
  }
  s.spGfn[sf] = -1;
  s.smem.releaseTable(sf);
  s.frames.freeFrame(sf);
  s.zappedPages++;
  s.pendingFlush = FLUSH_ALL_VCPUS;
}

/** A vCPU has `sf` loaded as its shadow root. */
function isLoadedRoot(s: ShadowMmu, sf: number): boolean {
  if (sf === s.shadowRoot) return true;
  for (let id = 0; id < s.vcpus.length; id++) if (id !== s.current && s.vcpus[id]!.shadowRoot === sf) return true;
  return false;
}

/** The guest is about to (re)use guest frame `gfn` as a page table: zap any stale shadow of it (kvm_mmu_unprotect_page). */
export function zapStaleShadow(s: ShadowMmu, gfn: number): void {
  for (let l = 1; l <= 4; l++) {
    const sf = s.byGfn.get(gfn * 8 + l);
    if (sf !== undefined && !isLoadedRoot(s, sf)) zapSp(s, sf);
  }
  flushIfNeeded(s);
}

// --- unsync / sync --------------------------------------------------------------------------

/** kvm_sync_page: bring an unsync leaf back in line with its guest table and write-protect it again. */
function syncPage(s: ShadowMmu, sf: number): void {
  const gfn = s.spGfn[sf]!;
  for (let i = 0; i < 512; i++) {
    const lo = s.smem.readLo(sf, i);
    if ((lo & P) === 0) continue;
    syncSpte(s, sf, i, (lo & A) === 0);
  }
  s.spUnsync[sf] = 0;
  s.unsync.delete(sf);
  track(s, gfn);
  s.syncs++;
  s.ledger.charge(s.catFault, s.c['kvm.sync_page']);
  s.pendingFlush = FLUSH_ALL_VCPUS;
}

/**
 * kvm_mmu_sync_roots → mmu_sync_children: sync the unsync pages under the loaded root. Those of
 * other address spaces stay unsync until their root is loaded (they are out of the CPU's reach).
 */
function syncRoot(s: ShadowMmu): void {
  for (const sf of [...s.unsync]) {
    let top = sf;
    while (top >= 0 && s.spLevel[top]! < 4) top = s.spParent[top]!;
    if (top === s.shadowRoot) syncPage(s, sf);
  }
}

/**
 * The proposed deferred A/D sync: copy the A (and D) bits the CPU set in leaf sptes into gptes
 * whose own bits are clear, clearing them in the spte so later accesses are seen again. One
 * hypercall per sync; KVM writes guest memory directly (no trap).
 */
export function syncAccessed(s: ShadowMmu): void {
  exit(s);
  s.adSyncs++;
  for (const [key, sf] of s.byGfn) {
    if (key % 8 !== 1) continue;
    const gfn = Math.floor(key / 8);
    for (let i = 0; i < 512; i++) {
      const lo = s.smem.readLo(sf, i);
      if ((lo & (P | A)) !== (P | A)) continue;
      const e = 2 * s.gmem.entryIndex(gfn, i);
      const glo = s.gmem.ent[e]!;
      if ((glo & P) === 0) continue;
      s.gmem.ent[e] = (glo | A | (lo & D)) >>> 0;
      s.smem.write(sf, i, (lo & ~A) >>> 0, s.smem.readHi(sf, i));
      s.adSynced++;
    }
  }
  s.pendingFlush = FLUSH_ALL_VCPUS;
  flushIfNeeded(s);
}

/** kvm_mmu_flush_or_zap / kvm_flush_remote_tlbs when something was zapped or synced. */
export function flushIfNeeded(s: ShadowMmu): void {
  const pending = s.pendingFlush;
  if (pending === FLUSH_NONE) return;
  s.pendingFlush = FLUSH_NONE;
  // The root in use was zapped (write flooding of the guest's top-level table): KVM marks it
  // invalid and the vCPU loads a fresh root for the same CR3 before it re-enters the guest
  // (KVM_REQ_MMU_RELOAD / kvm_mmu_load), so the CPU never walks the freed shadow page.
  if (s.shadowRoot < 0 && s.root >= 0) s.shadowRoot = getSp(s, s.root, 4);
  // kvm_flush_remote_tlbs: this vCPU by a CR3 reload of its shadow root, the others below.
  if (s.cpu !== null && s.shadowRoot >= 0) s.cpu.writeCr3(s.shadowRoot, s.pcid);
  if (s.vcpus.length > 1 && pending === FLUSH_ALL_VCPUS) flushRemoteVcpus(s);
}

/**
 * kvm_flush_remote_tlbs → kvm_make_all_cpus_request(KVM_REQ_TLB_FLUSH): every other vCPU that has
 * run is kicked by an IPI, exits, flushes (loading a fresh root if its own was zapped) and
 * re-enters, on its own clock; the requester waits for the acks.
 */
function flushRemoteVcpus(s: ShadowMmu): void {
  const smp = s.smp!;
  let targets = 0;
  let slowest = 0;
  for (let id = 0; id < s.vcpus.length; id++) {
    const v = s.vcpus[id]!;
    if (id === s.current || v.root < 0) continue;
    targets++;
    const t0 = s.ledger.total();
    exit(s); // the target's exit on the kick
    if (v.shadowRoot < 0) v.shadowRoot = getSp(s, v.root, 4);
    v.cpu.writeCr3(v.shadowRoot, v.pcid);
    const work = s.ledger.total() - t0;
    smp.clocks.charge(id, work);
    if (work > slowest) slowest = work;
  }
  if (targets === 0) return;
  s.remoteFlushes++;
  s.remoteFlushIpis += targets;
  s.ledger.charge(s.ledger.id('smp.ipi'), smp.ipiSend * targets + smp.ipiLatency + slowest + smp.lineTransfer);
}

// --- the guest's CR3 writes and INVLPG --------------------------------------------------------

/** kvm_mmu_new_pgd: a guest CR3 write loads the shadow root for it and syncs its unsync pages (kvm_mmu_sync_roots). */
export function newPgd(s: ShadowMmu, root: number, pcid: number): void {
  exit(s);
  s.cr3Exits++;
  s.root = root;
  s.pcid = pcid;
  s.shadowRoot = getSp(s, root, 4);
  syncRoot(s);
  s.pendingFlush = FLUSH_NONE;
  s.cpu?.writeCr3(s.shadowRoot, pcid);
}

/** kvm_mmu_invlpg: resync the one spte if its page is unsync (FNAME(sync_spte)), then flush it. */
export function invlpg(s: ShadowMmu, hi: number, lo: number): void {
  exit(s);
  s.invlpgExits++;
  s.ledger.charge(s.catExit, s.c['kvm.invlpg']);
  let sp = s.shadowRoot;
  for (let level = 4; level >= 2 && sp >= 0; level--) {
    const e = s.smem.readLo(sp, tableIndex(level, hi, lo));
    sp = (e & P) === 0 || isLeaf(level, e) ? -1 : entryPfn(level, e, s.smem.readHi(sp, tableIndex(level, hi, lo)));
  }
  if (sp >= 0 && s.spUnsync[sp] === 1) {
    const i = tableIndex(1, hi, lo);
    if ((s.smem.readLo(sp, i) & P) !== 0) syncSpte(s, sp, i, false);
  }
  s.cpu?.invlpg(hi, lo);
}
