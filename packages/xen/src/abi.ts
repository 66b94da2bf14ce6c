/**
 * The Xen PV MMU ABI as PTE Lab uses it: hypercall numbers, mmu_update / mmuext_op commands,
 * update_va_mapping flags, vm_assist types, domain ids, one feature bit, Xen's page types, and the
 * Linux guest's multicall batching limits. Laid out like xen.h: one group per header section, every
 * name the header's own so `grep MMUEXT_PIN_L1_TABLE` finds both.
 *
 * Where the values come from:
 *  - xen-project/xen  xen/include/public/xen.h      @936f34c2175f (stored copy, Xen 4.6 era).
 *    Names and numbers added after that copy was taken were checked in diffs against the same file
 *    posted to xen-devel:
 *      <20200402154616.16927-5-jgross@suse.com>    (adds hypfs_op 42 after argo_op 39, dm_op 41)
 *      <20200806234933.16448-12-sstabellini@kernel.org> (context: MMU_PT_UPDATE_NO_TRANSLATE 3,
 *        VMASST_TYPE_architectural_iopl 4, VMASST_TYPE_runstate_update_flag 5, hypercalls 0..42)
 *    and in Linux's copy, torvalds/linux include/xen/interface/xen.h @bf9cf038f78e.
 *  - xen-project/xen  xen/include/public/features.h @374b5bdff611
 *  - xen-project/xen  xen/arch/x86/include/asm/mm.h @06fd6818eae5
 *  - xen-project/xen  xen/arch/x86/mm.c do_mmu_update() (how Xen decodes mmu_update.ptr)
 *  - torvalds/linux   arch/x86/xen/multicalls.c @7e66eaf14e19 (and a current copy that
 *    includes "xen-ops.h": same MC_BATCH / MC_ARGS / __xen_mc_entry / xen_mc_extend_args)
 *  - torvalds/linux   arch/x86/xen/mmu_pv.c xen_extend_mmu_update()
 *
 * Sizes are for x86-64 guests (unsigned long = xen_ulong_t = xen_pfn_t = 8 bytes,
 * xen/include/public/arch-x86/xen.h).
 *
 * The module has no imports: it is data plus a few pure helpers.
 */

// ---------------------------------------------------------------------------------------------
// HYPERCALLS — xen/include/public/xen.h, "enum hypercall_num { // __HYPERVISOR_* => HYPERVISOR_*()"
// `HYPERVISOR.mmu_update` is `__HYPERVISOR_mmu_update`. 11 and 43..47 are unassigned.
// ---------------------------------------------------------------------------------------------

export const HYPERVISOR = Object.freeze({
  set_trap_table: 0,
  mmu_update: 1,
  set_gdt: 2,
  stack_switch: 3,
  set_callbacks: 4,
  fpu_taskswitch: 5,
  sched_op_compat: 6, // compat since 0x00030101
  platform_op: 7, // `dom0_op` before interface 0x00030204
  set_debugreg: 8,
  get_debugreg: 9,
  update_descriptor: 10,
  memory_op: 12,
  multicall: 13,
  update_va_mapping: 14,
  set_timer_op: 15,
  event_channel_op_compat: 16, // compat since 0x00030202
  xen_version: 17,
  console_io: 18,
  physdev_op_compat: 19, // compat since 0x00030202
  grant_table_op: 20,
  vm_assist: 21,
  update_va_mapping_otherdomain: 22,
  iret: 23, // x86 only
  vcpu_op: 24,
  set_segment_base: 25, // x86/64 only
  mmuext_op: 26,
  xsm_op: 27,
  nmi_op: 28,
  sched_op: 29,
  callback_op: 30,
  xenoprof_op: 31,
  event_channel_op: 32,
  physdev_op: 33,
  hvm_op: 34,
  sysctl: 35,
  domctl: 36,
  kexec_op: 37,
  tmem_op: 38,
  argo_op: 39, // `xc_reserved_op` ("reserved for XenClient") in older headers
  xenpmu_op: 40,
  dm_op: 41,
  hypfs_op: 42,
  /* Architecture-specific hypercall definitions. */
  arch_0: 48,
  arch_1: 49,
  arch_2: 50,
  arch_3: 51,
  arch_4: 52,
  arch_5: 53,
  arch_6: 54,
  arch_7: 55,
} as const);

export type HypercallName = keyof typeof HYPERVISOR;
export type HypercallNumber = (typeof HYPERVISOR)[HypercallName];

/** Number → name, for logs and traces. Every number above appears exactly once. */
export const HYPERCALL_NAMES: ReadonlyMap<number, HypercallName> = new Map(
  (Object.keys(HYPERVISOR) as HypercallName[]).map((name) => [HYPERVISOR[name], name] as const),
);

/** `"mmu_update"` for 1; `"hypercall#11"` for a number the header does not assign. */
export function hypercallName(nr: number): string {
  return HYPERCALL_NAMES.get(nr) ?? `hypercall#${nr}`;
}

// ---------------------------------------------------------------------------------------------
// MMU-UPDATE REQUESTS — xen/include/public/xen.h
//   HYPERVISOR_mmu_update(const struct mmu_update reqs[], unsigned count, unsigned *done_out,
//                         unsigned foreigndom)
//   struct mmu_update { uint64_t ptr; /* Machine address of PTE. */ uint64_t val; /* New contents */ }
// "ptr[1:0] specifies the appropriate MMU_* command"; ptr[:2] is the machine address.
// ---------------------------------------------------------------------------------------------

export const MMU_NORMAL_PT_UPDATE = 0; // checked '*ptr = val'. ptr is MA.
export const MMU_MACHPHYS_UPDATE = 1; // ptr = MA of frame to modify entry for
export const MMU_PT_UPDATE_PRESERVE_AD = 2; // atomically: *ptr = val | (*ptr&(A|D))
export const MMU_PT_UPDATE_NO_TRANSLATE = 3; // checked '*ptr = val'; val never translated

export type MmuUpdateCmd =
  | typeof MMU_NORMAL_PT_UPDATE
  | typeof MMU_MACHPHYS_UPDATE
  | typeof MMU_PT_UPDATE_PRESERVE_AD
  | typeof MMU_PT_UPDATE_NO_TRANSLATE;

/** Index = command. */
export const MMU_UPDATE_CMD_NAMES: readonly string[] = [
  'MMU_NORMAL_PT_UPDATE',
  'MMU_MACHPHYS_UPDATE',
  'MMU_PT_UPDATE_PRESERVE_AD',
  'MMU_PT_UPDATE_NO_TRANSLATE',
];

/** sizeof(struct mmu_update): two uint64_t. */
export const MMU_UPDATE_SIZE = 16;

/** sizeof(l1_pgentry_t) on x86-64 (and PAE): page-table entries are 8 bytes. */
export const PTE_SIZE = 8;

/**
 * Bits of `ptr` Xen reads as the command. The header documents ptr[1:0], but do_mmu_update() in
 * xen/arch/x86/mm.c decodes `cmd = req.ptr & (sizeof(l1_pgentry_t)-1)` and then `req.ptr -= cmd`:
 * three bits. A PTE's machine address is 8-byte aligned, so both readings agree for well-formed
 * requests; a ptr with bit 2 set decodes as a command 4..7, which Xen does not define.
 */
export const MMU_UPDATE_CMD_MASK = PTE_SIZE - 1;

function checkCmd(cmd: number): void {
  if (cmd !== 0 && cmd !== 1 && cmd !== 2 && cmd !== 3) {
    throw new RangeError(`mmu_update: ${String(cmd)} is not an MMU_* command (0..3)`);
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * `ptr` for an mmu_update request: the PTE's machine address with the command in its low bits.
 * The address is a whole number below 2^53 and must be PTE-aligned (a multiple of 8).
 */
export function mmuUpdatePtr(machineAddress: number, cmd: MmuUpdateCmd): number {
  if (!Number.isSafeInteger(machineAddress) || machineAddress < 0) {
    throw new RangeError(`mmu_update: machine address ${String(machineAddress)} is not a whole number below 2^53`);
  }
  if (machineAddress % PTE_SIZE !== 0) {
    throw new RangeError(`mmu_update: machine address ${hex(machineAddress)} is not ${PTE_SIZE}-byte aligned`);
  }
  checkCmd(cmd);
  return machineAddress + cmd;
}

/**
 * The low 32 bits of `ptr` from the low 32 bits of the machine address (the high half is
 * unchanged: the command lives entirely in bits 2:0).
 */
export function mmuUpdatePtrLo(machineAddressLo: number, cmd: MmuUpdateCmd): number {
  if (!Number.isInteger(machineAddressLo) || machineAddressLo < 0 || machineAddressLo > 0xffffffff) {
    throw new RangeError(`mmu_update: ${String(machineAddressLo)} is not an unsigned 32-bit half`);
  }
  if ((machineAddressLo & MMU_UPDATE_CMD_MASK) !== 0) {
    throw new RangeError(
      `mmu_update: machine address low half ${hex(machineAddressLo)} is not ${PTE_SIZE}-byte aligned`,
    );
  }
  checkCmd(cmd);
  return (machineAddressLo | cmd) >>> 0;
}

/**
 * The command Xen decodes from `ptr` (`ptr & 7`). Takes either the low 32-bit half or the whole
 * value as a number below 2^53: the low three bits are the same in both.
 */
export function mmuUpdateCmd(ptrLo: number): number {
  if (!Number.isSafeInteger(ptrLo) || ptrLo < 0) {
    throw new RangeError(`mmu_update: ptr ${String(ptrLo)} is not a whole number below 2^53`);
  }
  return ptrLo & MMU_UPDATE_CMD_MASK; // ToInt32 keeps the exact low 32 bits of a safe integer
}

/** The machine address Xen uses (`req.ptr -= cmd`), for a whole `ptr` below 2^53. */
export function mmuUpdateMachineAddress(ptr: number): number {
  return ptr - mmuUpdateCmd(ptr);
}

/** The low 32 bits of that machine address, from the low 32 bits of `ptr`. */
export function mmuUpdateMachineAddressLo(ptrLo: number): number {
  return (ptrLo - mmuUpdateCmd(ptrLo)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// foreigndom — xen/include/public/xen.h, HYPERVISOR_mmu_update / HYPERVISOR_mmuext_op
//   @foreigndom[15:0]:  FD, the expected owner of data pages referenced in this call (or DOMID_SELF)
//   @foreigndom[31:16]: PFD, owner of the page-table pages: x == 0 => PFD == DOMID_SELF,
//                                                           x != 0 => PFD == x - 1
// ---------------------------------------------------------------------------------------------

/** domid_t is uint16_t. Domain ids >= DOMID_FIRST_RESERVED cannot be used for ordinary domains. */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0; // refers to oneself
export const DOMID_IO = 0x7ff1; // restrict page-table updates to mapping I/O memory
export const DOMID_XEN = 0x7ff2; // privileged mapping of Xen's heap (e.g. the M2P)
export const DOMID_COW = 0x7ff3; // owner of sharable pages
export const DOMID_INVALID = 0x7ff4; // pages with unknown owner
export const DOMID_IDLE = 0x7fff; // idle domain

function checkDomid(what: string, domid: number): void {
  if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
    throw new RangeError(`foreigndom: ${what} ${String(domid)} is not a domid_t (0..0xffff)`);
  }
}

/** The `foreigndom` argument; `pfd` omitted or DOMID_SELF encodes as 0 in bits 31:16. */
export function encodeForeigndom(fd: number = DOMID_SELF, pfd: number = DOMID_SELF): number {
  checkDomid('FD', fd);
  checkDomid('PFD', pfd);
  if (pfd !== DOMID_SELF && pfd + 1 > 0xffff) {
    throw new RangeError(`foreigndom: PFD ${hex(pfd)} + 1 does not fit in 16 bits`);
  }
  const x = pfd === DOMID_SELF ? 0 : pfd + 1;
  return ((x << 16) | fd) >>> 0;
}

export function decodeForeigndom(foreigndom: number): { fd: number; pfd: number } {
  const x = foreigndom >>> 16;
  return { fd: foreigndom & 0xffff, pfd: x === 0 ? DOMID_SELF : x - 1 };
}

// ---------------------------------------------------------------------------------------------
// MMU EXTENDED OPERATIONS — xen/include/public/xen.h, "enum mmuext_cmd"
//   HYPERVISOR_mmuext_op(mmuext_op_t uops[], unsigned int count, unsigned int *pdone,
//                        unsigned int foreigndom)
//   struct mmuext_op { unsigned int cmd;
//                      union { xen_pfn_t mfn; unsigned long linear_addr; } arg1;
//                      union { unsigned int nr_ents; XEN_GUEST_HANDLE(const_void) vcpumask;
//                              xen_pfn_t src_mfn; } arg2; };
// 14 is unassigned.
// ---------------------------------------------------------------------------------------------

export const MMUEXT_PIN_L1_TABLE = 0; // mfn: pin as an L1 (PTE) page
export const MMUEXT_PIN_L2_TABLE = 1;
export const MMUEXT_PIN_L3_TABLE = 2;
export const MMUEXT_PIN_L4_TABLE = 3;
export const MMUEXT_UNPIN_TABLE = 4; // mfn: unpin, any level
export const MMUEXT_NEW_BASEPTR = 5; // mfn: new page-table base (CR3)
export const MMUEXT_TLB_FLUSH_LOCAL = 6;
export const MMUEXT_INVLPG_LOCAL = 7; // linear_addr
export const MMUEXT_TLB_FLUSH_MULTI = 8; // vcpumask
export const MMUEXT_INVLPG_MULTI = 9; // linear_addr, vcpumask
export const MMUEXT_TLB_FLUSH_ALL = 10;
export const MMUEXT_INVLPG_ALL = 11; // linear_addr
export const MMUEXT_FLUSH_CACHE = 12;
export const MMUEXT_SET_LDT = 13; // linear_addr, nr_ents
export const MMUEXT_NEW_USER_BASEPTR = 15; // x86/64: base used in user mode
export const MMUEXT_CLEAR_PAGE = 16; // mfn
export const MMUEXT_COPY_PAGE = 17; // mfn, src_mfn
export const MMUEXT_FLUSH_CACHE_GLOBAL = 18;
export const MMUEXT_MARK_SUPER = 19; // mfn: head of superpage
export const MMUEXT_UNMARK_SUPER = 20;

/** Index = command; `undefined` at 14. */
export const MMUEXT_NAMES: readonly (string | undefined)[] = [
  'MMUEXT_PIN_L1_TABLE',
  'MMUEXT_PIN_L2_TABLE',
  'MMUEXT_PIN_L3_TABLE',
  'MMUEXT_PIN_L4_TABLE',
  'MMUEXT_UNPIN_TABLE',
  'MMUEXT_NEW_BASEPTR',
  'MMUEXT_TLB_FLUSH_LOCAL',
  'MMUEXT_INVLPG_LOCAL',
  'MMUEXT_TLB_FLUSH_MULTI',
  'MMUEXT_INVLPG_MULTI',
  'MMUEXT_TLB_FLUSH_ALL',
  'MMUEXT_INVLPG_ALL',
  'MMUEXT_FLUSH_CACHE',
  'MMUEXT_SET_LDT',
  undefined,
  'MMUEXT_NEW_USER_BASEPTR',
  'MMUEXT_CLEAR_PAGE',
  'MMUEXT_COPY_PAGE',
  'MMUEXT_FLUSH_CACHE_GLOBAL',
  'MMUEXT_MARK_SUPER',
  'MMUEXT_UNMARK_SUPER',
];

/** MMUEXT_PIN_L<level>_TABLE: the pin commands are numbered level - 1. */
export function mmuextPinCmd(level: 1 | 2 | 3 | 4): number {
  return MMUEXT_PIN_L1_TABLE + level - 1;
}

/** sizeof(struct mmuext_op) on x86-64: cmd (4) + padding (4) + arg1 (8) + arg2 (8). */
export const MMUEXT_OP_SIZE = 24;

// ---------------------------------------------------------------------------------------------
// update_va_mapping flags — xen/include/public/xen.h, "enum uvm_flags"
//   HYPERVISOR_update_va_mapping(unsigned long va, u64 val, enum uvm_flags flags)
//   HYPERVISOR_update_va_mapping_otherdomain(unsigned long va, u64 val, enum uvm_flags flags,
//                                            domid_t domid)
// "They can be ORed. When specifying UVMF_MULTI, also OR in a pointer to a CPU bitmap.
//  UVMF_LOCAL is merely UVMF_MULTI with a NULL bitmap pointer."
// ---------------------------------------------------------------------------------------------

export const UVMF_NONE = 0; // (0UL<<0) No flushing at all.
export const UVMF_TLB_FLUSH = 1; // (1UL<<0) Flush entire TLB(s).
export const UVMF_INVLPG = 2; // (2UL<<0) Flush only one entry.
export const UVMF_FLUSHTYPE_MASK = 3; // (3UL<<0)
export const UVMF_MULTI = 0; // (0UL<<2) Flush subset of TLBs.
export const UVMF_LOCAL = 0; // (0UL<<2) Flush local TLB.
export const UVMF_ALL = 4; // (1UL<<2) Flush all TLBs.

// ---------------------------------------------------------------------------------------------
// vm_assist — xen/include/public/xen.h, "Commands to HYPERVISOR_vm_assist()"
// ---------------------------------------------------------------------------------------------

export const VMASST_CMD_enable = 0;
export const VMASST_CMD_disable = 1;

export const VMASST_TYPE_4gb_segments = 0; // x86/32: simulate full 4GB segment limits
export const VMASST_TYPE_4gb_segments_notify = 1; // x86/32: trap (vector 15) when it is used
/** x86: "support writes to bottom-level PTEs. NB1. Page-directory entries cannot be written.
 *  NB2. Guest must continue to remove all writable mappings of PTEs." (trap-and-emulate today) */
export const VMASST_TYPE_writable_pagetables = 2;
export const VMASST_TYPE_pae_extended_cr3 = 3; // x86/PAE: PDPTs above 4GB
export const VMASST_TYPE_architectural_iopl = 4; // x86: sane virtual iopl
export const VMASST_TYPE_runstate_update_flag = 5; // XEN_RUNSTATE_UPDATE in vcpu_runstate_info
export const VMASST_TYPE_m2p_strict = 32; // x86/64: strictly hide M2P from user mode

// ---------------------------------------------------------------------------------------------
// multicall — xen/include/public/xen.h
//   HYPERVISOR_multicall(multicall_entry_t call_list[], uint32_t nr_calls)
//   struct multicall_entry { xen_ulong_t op, result; xen_ulong_t args[6]; };
// Inside Xen (#ifdef __XEN__) the same 64 bytes are `args[5], unused`: "Only 5 arguments are
// supported in reality."
// ---------------------------------------------------------------------------------------------

/** Argument slots declared in the guest's struct multicall_entry. */
export const MULTICALL_ENTRY_ARGS = 6;
/** Arguments Xen actually passes on. */
export const MULTICALL_ARGS_SUPPORTED = 5;
/** sizeof(struct multicall_entry) on x86-64: (2 + 6) × 8. */
export const MULTICALL_ENTRY_SIZE = 64;

// ---------------------------------------------------------------------------------------------
// Feature flags — xen/include/public/features.h (reported by XENVER_get_features)
// ---------------------------------------------------------------------------------------------

/** "x86: Does this Xen host support the MMU_PT_UPDATE_PRESERVE_AD hypercall?" */
export const XENFEAT_mmu_pt_update_preserve_ad = 5;

// ---------------------------------------------------------------------------------------------
// Page types — xen/arch/x86/include/asm/mm.h (Xen-internal, not guest ABI; validation uses them)
// The header stores them shifted into the top of page_info.u.inuse.type_info:
//   #define PG_shift(idx)   (BITS_PER_LONG - (idx))
//   #define PG_mask(x, idx) (x ## UL << PG_shift(idx))
//   #define PGT_l1_page_table PG_mask(1, 3)   =>  1 << 61 ... PGT_type_mask PG_mask(7, 3): bits 61-63
// Exported here are the small type numbers (the value >> PGT_TYPE_SHIFT); the simulator keeps the
// type in its own field rather than packing a 64-bit type_info.
// ---------------------------------------------------------------------------------------------

// The following page types are MUTUALLY EXCLUSIVE.
export const PGT_none = 0; // no special uses of this page
export const PGT_l1_page_table = 1; // using as an L1 page table?
export const PGT_l2_page_table = 2; // using as an L2 page table?
export const PGT_l3_page_table = 3; // using as an L3 page table?
export const PGT_l4_page_table = 4; // using as an L4 page table?
export const PGT_seg_desc_page = 5; // using this page in a GDT/LDT?
export const PGT_shared_page = 6; // CoW sharable page
export const PGT_writable_page = 7; // has writable mappings?
export const PGT_type_mask = 7;

export type PageType = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** Index = type number. */
export const PGT_NAMES: readonly string[] = [
  'PGT_none',
  'PGT_l1_page_table',
  'PGT_l2_page_table',
  'PGT_l3_page_table',
  'PGT_l4_page_table',
  'PGT_seg_desc_page',
  'PGT_shared_page',
  'PGT_writable_page',
];

/** PGT_l<level>_page_table: the page-table types are numbered by level. */
export function pgtPageTable(level: 1 | 2 | 3 | 4): PageType {
  return level;
}

/** Bit position of the type field in type_info: PG_shift(3) = 64 - 3. */
export const PGT_TYPE_SHIFT = 61;
/** Flag bit positions in type_info (the header's `_PGT_*` names are these positions). */
export const _PGT_locked = 60; // PG_shift(4): page is locked?
export const _PGT_pinned = 59; // PG_shift(5): owning guest has pinned this page to its type?
export const _PGT_validated = 58; // PG_shift(6): validated for use as its current type?
export const _PGT_pae_xen_l2 = 57; // PG_shift(7): CONFIG_PV32 only
export const _PGT_partial = 56; // PG_shift(8): *partially* validated?
export const _PGT_non_coherent = 55; // PG_shift(9): mapped writeable with non-coherent memory type
/** PG_shift(9): the type count occupies bits 0..54. */
export const PGT_count_width = 55;

// ---------------------------------------------------------------------------------------------
// Linux guest batching — torvalds/linux arch/x86/xen/multicalls.c
//   #define MC_BATCH  32
//   #define MC_ARGS   (MC_BATCH * 16)
//   struct mc_buffer { unsigned mcidx, argidx, cbidx; struct multicall_entry entries[MC_BATCH];
//                      unsigned char args[MC_ARGS]; struct callback callbacks[MC_BATCH]; };
// ---------------------------------------------------------------------------------------------

/** Multicall entries (and callbacks) per batch. */
export const MC_BATCH = 32;
/** Bytes of per-CPU argument space per batch: 512. */
export const MC_ARGS = MC_BATCH * 16;

/**
 * How many `itemBytes`-sized argument items fit in one batch when they start from an empty argument
 * area — the limit for a run of same-op items that xen_mc_extend_args() folds into one entry.
 *
 * Both allocators refuse to fill the area completely:
 *   __xen_mc_entry(args):          flush if (mcidx == MC_BATCH || (argidx + args) >= MC_ARGS)
 *   xen_mc_extend_args(op, size):  fail  if ((argidx + size) >= MC_ARGS)   [caller then calls
 *                                  __xen_mc_entry, which flushes]
 * and both keep the invariant BUG_ON(argidx >= MC_ARGS). With k items queued argidx = k * size, so
 * item k + 1 is accepted iff k*size + size < MC_ARGS, i.e. n items fit iff n * size <= MC_ARGS - 1:
 *   n = floor((MC_ARGS - 1) / size).
 * (__xen_mc_entry rounds argidx up to 8 bytes; 16- and 24-byte items never need padding.)
 */
export function mcArgItemsPerFlush(itemBytes: number): number {
  if (!Number.isInteger(itemBytes) || itemBytes <= 0) {
    throw new RangeError(`multicall: item size ${String(itemBytes)} is not a positive whole number`);
  }
  return Math.floor((MC_ARGS - 1) / itemBytes);
}

/**
 * struct mmu_update items per flush: floor(511 / 16) = 31 (31 × 16 = 496 < 512; a 32nd would make
 * argidx 512, which the strict `>=` tests refuse). xen_extend_mmu_update() (arch/x86/xen/mmu_pv.c)
 * appends to the previous mmu_update entry with `mcs.mc->args[1]++` (args[1] is the count), so a
 * run of PTE writes in lazy MMU mode is one entry holding up to 31 updates; xen_mc_flush() issues a
 * lone entry directly (xen_single_call), i.e. one mmu_update hypercall with count <= 31.
 */
export const MMU_UPDATES_PER_MULTICALL = mcArgItemsPerFlush(MMU_UPDATE_SIZE);

/** struct mmuext_op items per flush by the same rule (xen_extend_mmuext_op): floor(511 / 24) = 21. */
export const MMUEXT_OPS_PER_MULTICALL = mcArgItemsPerFlush(MMUEXT_OP_SIZE);
