/** @pte/vm: the guest kernel's memory manager. */
export * from './page-flags.js';
export { FrameTable, NO_OWNER } from './frames.js';
export { Inode, PageCache } from './page-cache.js';
export { BlockDevice } from './block-device.js';
export * from './vma.js';
export { Mm, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from './mm.js';
export { Task } from './task.js';
export { Kernel, type KernelHooks } from './kernel.js';
export { VmCosts } from './costs.js';
export type { KernelOptions } from './kernel.js';
export { VM_COSTS } from './costs.js';
export type { VmCostKey } from './costs.js';
export { PROFILES, DEFAULT_PROFILE, getProfile } from './profiles.js';
export type { KernelProfile, VmPolicy, AnonPrefault } from './profiles.js';
export { VmStats } from './stats.js';
export { handleMmFault, FAULT_RETRY, FAULT_SIGSEGV, FAULT_SIGBUS } from './fault.js';
export { faultAroundWindow } from './fault-around.js';
export type { Window } from './fault-around.js';
export { populateByWrite, populateByRead, readFolio, filemapFault, filemapMapPages } from './filemap.js';
export { Syscalls, MMAP_BASE_VPN } from './syscalls.js';
export { doMmap, doMunmap, exitMmap } from './mmap.js';
export { BRK_BASE_VPN, doBrk, heapVma } from './brk.js';
export { mprotect } from './mprotect.js';
export { madvise } from './madvise.js';
export type { MmapRequest, Advice, Prot } from './syscalls.js';
export { PT_NONE, PT_HUGE, pteTableFor, vpnHi, vpnLo, vpnIndex, PTE_SPECIAL, ptePfn } from './pgtable.js';
export { checkInvariants, assertInvariants } from './invariants.js';
export { folioMarkAccessed } from './zap.js';
export { Vmalloc, VMALLOC_START_VPN, lazyMaxPages, fls } from './vmalloc.js';
export type { VmapPolicy } from './vmalloc.js';
export {
  RaState,
  MMAP_LOTSAMISS,
  getInitRaSize,
  getNextRaSize,
  pageCacheSyncRa,
  pageCacheAsyncRa,
  syncMmapReadahead,
  forceReadahead,
  readWindow,
  fadvise,
} from './readahead.js';
export type { FileAdvice } from './readahead.js';
export { SwapDevice, SWP_MARK, isSwapPte, swpLo, swpHi, swpSlot } from './swap.js';
export { VmFault, FAULT_FLAG_WRITE, FAULT_FLAG_USER, FAULT_FLAG_INSTRUCTION } from './vm-fault.js';
export { Cpu } from './cpu.js';
export { mapCompletedRead } from './map-on-io.js';
export { RwSem, RWSEM_READ, RWSEM_WRITE } from './rwsem.js';
export type { RwsemKind, RwsemWaiter, Granted } from './rwsem.js';
export {
  TLB_SINGLE_PAGE_FLUSH_CEILING,
  MAX_CPUS,
  MmTlbState,
  CpuTlbState,
  flushTlbMmRange,
  switchMmTlb,
  enterLazyTlb,
  leaveLazyTlb,
  FlushTlbInfo,
  FLUSH_NONE,
  FLUSH_RANGE,
  FLUSH_FULL,
  FLUSH_LEAVE_MASK,
  FLUSH_LAZY_SWITCH,
} from './tlb-flush.js';
export type { FlushEnv } from './tlb-flush.js';
export { MmLockSeq, VmaLock, VMA_READ_LOCKED, VMA_READ_ABORT, VMA_READ_MISS } from './vma-lock.js';
export { MmapLock } from './mmap-lock.js';
export { SharedLine } from './cache-line.js';
export { SmpStats } from './smp-stats.js';
export {
  FAULT_LOCKS,
  FaultLock,
  HELD_MMAP,
  HELD_SPECULATIVE,
  HELD_VMA,
  QUEUED_MMAP,
  lockFault,
  mmapReadLock,
  mmapReadUnlock,
  mmapWriteDowngrade,
  mmapWriteLock,
  mmapWriteUnlock,
  parseFaultLock,
  ptlLockUnlock,
  unlockFault,
  vmaLockOf,
} from './fault-lock.js';
export type { FaultLockPolicy } from './fault-lock.js';
export { spinLock, spinUnlock } from './spinlock.js';
export { flushTlbKernelAll } from './tlb-gather.js';
