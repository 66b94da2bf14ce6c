import fc from 'fast-check';
import * as abi from '../src/abi.js';
import {
  DOMID_SELF,
  HYPERCALL_NAMES,
  HYPERVISOR,
  MC_ARGS,
  MC_BATCH,
  MMUEXT_NAMES,
  MMUEXT_OPS_PER_MULTICALL,
  MMU_UPDATES_PER_MULTICALL,
  MMU_UPDATE_CMD_NAMES,
  MMU_UPDATE_SIZE,
  PGT_NAMES,
  decodeForeigndom,
  encodeForeigndom,
  hypercallName,
  mcArgItemsPerFlush,
  mmuUpdateCmd,
  mmuUpdateMachineAddress,
  mmuUpdateMachineAddressLo,
  mmuUpdatePtr,
  mmuUpdatePtrLo,
  mmuextPinCmd,
  pgtPageTable,
  type HypercallName,
  type MmuUpdateCmd,
} from '../src/abi.js';

/*
 * Values copied from the headers, as read (see src/abi.ts for the same list):
 *  - xen-project/xen xen/include/public/xen.h @936f34c2175ff27c7f9f63c4bbd7fdf2c736c05f.
 *    That stored copy predates MMU_PT_UPDATE_NO_TRANSLATE, VMASST_TYPE_architectural_iopl,
 *    VMASST_TYPE_runstate_update_flag, __HYPERVISOR_dm_op / hypfs_op, and still calls 39
 *    `xc_reserved_op`; those rows are taken from the diffs to the same file in
 *    <20200806234933.16448-12-sstabellini@kernel.org> and <20200402154616.16927-5-jgross@suse.com>,
 *    and from torvalds/linux include/xen/interface/xen.h @bf9cf038f78e.
 *  - xen-project/xen xen/include/public/features.h @374b5bdff61140244c661aecc7d9170992c9cf11
 *  - xen-project/xen xen/arch/x86/include/asm/mm.h @06fd6818eae5878397e36d542251e1ad17805262
 *    (PGT_* are PG_mask(n, 3) = n << 61; the table holds n)
 *  - torvalds/linux arch/x86/xen/multicalls.c @7e66eaf14e19c032433be7c4df3c892fa2a5282f
 */

/** `#define __HYPERVISOR_<name> <nr>` */
const HYPERCALLS_FROM_HEADER: [string, number][] = [
  ['set_trap_table', 0],
  ['mmu_update', 1],
  ['set_gdt', 2],
  ['stack_switch', 3],
  ['set_callbacks', 4],
  ['fpu_taskswitch', 5],
  ['sched_op_compat', 6],
  ['platform_op', 7],
  ['set_debugreg', 8],
  ['get_debugreg', 9],
  ['update_descriptor', 10],
  ['memory_op', 12],
  ['multicall', 13],
  ['update_va_mapping', 14],
  ['set_timer_op', 15],
  ['event_channel_op_compat', 16],
  ['xen_version', 17],
  ['console_io', 18],
  ['physdev_op_compat', 19],
  ['grant_table_op', 20],
  ['vm_assist', 21],
  ['update_va_mapping_otherdomain', 22],
  ['iret', 23],
  ['vcpu_op', 24],
  ['set_segment_base', 25],
  ['mmuext_op', 26],
  ['xsm_op', 27],
  ['nmi_op', 28],
  ['sched_op', 29],
  ['callback_op', 30],
  ['xenoprof_op', 31],
  ['event_channel_op', 32],
  ['physdev_op', 33],
  ['hvm_op', 34],
  ['sysctl', 35],
  ['domctl', 36],
  ['kexec_op', 37],
  ['tmem_op', 38],
  ['argo_op', 39],
  ['xenpmu_op', 40],
  ['dm_op', 41],
  ['hypfs_op', 42],
  ['arch_0', 48],
  ['arch_1', 49],
  ['arch_2', 50],
  ['arch_3', 51],
  ['arch_4', 52],
  ['arch_5', 53],
  ['arch_6', 54],
  ['arch_7', 55],
];

/** Flat `#define NAME value` lines from the headers. */
const CONSTANTS_FROM_HEADERS: [string, number][] = [
  // xen.h: MMU-UPDATE REQUESTS
  ['MMU_NORMAL_PT_UPDATE', 0],
  ['MMU_MACHPHYS_UPDATE', 1],
  ['MMU_PT_UPDATE_PRESERVE_AD', 2],
  ['MMU_PT_UPDATE_NO_TRANSLATE', 3],
  // xen.h: enum mmuext_cmd
  ['MMUEXT_PIN_L1_TABLE', 0],
  ['MMUEXT_PIN_L2_TABLE', 1],
  ['MMUEXT_PIN_L3_TABLE', 2],
  ['MMUEXT_PIN_L4_TABLE', 3],
  ['MMUEXT_UNPIN_TABLE', 4],
  ['MMUEXT_NEW_BASEPTR', 5],
  ['MMUEXT_TLB_FLUSH_LOCAL', 6],
  ['MMUEXT_INVLPG_LOCAL', 7],
  ['MMUEXT_TLB_FLUSH_MULTI', 8],
  ['MMUEXT_INVLPG_MULTI', 9],
  ['MMUEXT_TLB_FLUSH_ALL', 10],
  ['MMUEXT_INVLPG_ALL', 11],
  ['MMUEXT_FLUSH_CACHE', 12],
  ['MMUEXT_SET_LDT', 13],
  ['MMUEXT_NEW_USER_BASEPTR', 15],
  ['MMUEXT_CLEAR_PAGE', 16],
  ['MMUEXT_COPY_PAGE', 17],
  ['MMUEXT_FLUSH_CACHE_GLOBAL', 18],
  ['MMUEXT_MARK_SUPER', 19],
  ['MMUEXT_UNMARK_SUPER', 20],
  // xen.h: enum uvm_flags
  ['UVMF_NONE', 0 << 0],
  ['UVMF_TLB_FLUSH', 1 << 0],
  ['UVMF_INVLPG', 2 << 0],
  ['UVMF_FLUSHTYPE_MASK', 3 << 0],
  ['UVMF_MULTI', 0 << 2],
  ['UVMF_LOCAL', 0 << 2],
  ['UVMF_ALL', 1 << 2],
  // xen.h: Commands to HYPERVISOR_vm_assist()
  ['VMASST_CMD_enable', 0],
  ['VMASST_CMD_disable', 1],
  ['VMASST_TYPE_4gb_segments', 0],
  ['VMASST_TYPE_4gb_segments_notify', 1],
  ['VMASST_TYPE_writable_pagetables', 2],
  ['VMASST_TYPE_pae_extended_cr3', 3],
  ['VMASST_TYPE_architectural_iopl', 4],
  ['VMASST_TYPE_runstate_update_flag', 5],
  ['VMASST_TYPE_m2p_strict', 32],
  // xen.h: domain ids
  ['DOMID_FIRST_RESERVED', 0x7ff0],
  ['DOMID_SELF', 0x7ff0],
  ['DOMID_IO', 0x7ff1],
  ['DOMID_XEN', 0x7ff2],
  ['DOMID_COW', 0x7ff3],
  ['DOMID_INVALID', 0x7ff4],
  ['DOMID_IDLE', 0x7fff],
  // features.h
  ['XENFEAT_mmu_pt_update_preserve_ad', 5],
  // asm/mm.h: PG_mask(n, 3) → n
  ['PGT_none', 0],
  ['PGT_l1_page_table', 1],
  ['PGT_l2_page_table', 2],
  ['PGT_l3_page_table', 3],
  ['PGT_l4_page_table', 4],
  ['PGT_seg_desc_page', 5],
  ['PGT_shared_page', 6],
  ['PGT_writable_page', 7],
  ['PGT_type_mask', 7],
  // asm/mm.h: PG_shift(idx) = BITS_PER_LONG - idx
  ['PGT_TYPE_SHIFT', 64 - 3],
  ['_PGT_locked', 64 - 4],
  ['_PGT_pinned', 64 - 5],
  ['_PGT_validated', 64 - 6],
  ['_PGT_pae_xen_l2', 64 - 7],
  ['_PGT_partial', 64 - 8],
  ['_PGT_non_coherent', 64 - 9],
  ['PGT_count_width', 64 - 9],
  // multicalls.c
  ['MC_BATCH', 32],
  ['MC_ARGS', 32 * 16],
  // struct sizes on x86-64 (8-byte unsigned long / xen_ulong_t / xen_pfn_t)
  ['MMU_UPDATE_SIZE', 2 * 8], // uint64_t ptr, val
  ['MMUEXT_OP_SIZE', 4 + 4 + 8 + 8], // unsigned int cmd, padding, union arg1, union arg2
  ['MULTICALL_ENTRY_SIZE', (2 + 6) * 8], // xen_ulong_t op, result, args[6]
  ['MULTICALL_ENTRY_ARGS', 6],
  ['MULTICALL_ARGS_SUPPORTED', 5], // "Only 5 arguments are supported in reality."
  ['PTE_SIZE', 8], // sizeof(l1_pgentry_t)
  ['MMU_UPDATE_CMD_MASK', 8 - 1], // do_mmu_update(): cmd = req.ptr & (sizeof(l1_pgentry_t)-1)
];

const exported = abi as unknown as Record<string, unknown>;

describe('constants equal the header values', () => {
  it.each(HYPERCALLS_FROM_HEADER)('__HYPERVISOR_%s = %d', (name, nr) => {
    expect(HYPERVISOR[name as HypercallName]).toBe(nr);
  });

  it('HYPERVISOR holds exactly the header hypercalls', () => {
    expect(Object.entries(HYPERVISOR)).toEqual(HYPERCALLS_FROM_HEADER);
  });

  it.each(CONSTANTS_FROM_HEADERS)('%s = %d', (name, value) => {
    expect(exported[name]).toBe(value);
  });

  it('every exported number is in the header table (nothing unchecked)', () => {
    const checked = new Set(CONSTANTS_FROM_HEADERS.map(([n]) => n));
    const derived = new Set(['MMU_UPDATES_PER_MULTICALL', 'MMUEXT_OPS_PER_MULTICALL']);
    const numbers = Object.entries(exported)
      .filter(([, v]) => typeof v === 'number')
      .map(([n]) => n);
    expect(numbers.filter((n) => !checked.has(n) && !derived.has(n))).toEqual([]);
  });
});

describe('reverse maps', () => {
  it('number → name round-trips for every hypercall', () => {
    for (const [name, nr] of HYPERCALLS_FROM_HEADER) {
      expect(HYPERCALL_NAMES.get(nr)).toBe(name);
      expect(hypercallName(nr)).toBe(name);
      expect(HYPERVISOR[HYPERCALL_NAMES.get(nr)!]).toBe(nr);
    }
    expect(HYPERCALL_NAMES.size).toBe(HYPERCALLS_FROM_HEADER.length);
  });

  it('unassigned numbers have no name', () => {
    for (const nr of [11, 43, 44, 45, 46, 47, 56, -1]) {
      expect(HYPERCALL_NAMES.has(nr)).toBe(false);
      expect(hypercallName(nr)).toBe(`hypercall#${nr}`);
    }
  });

  it('MMU_UPDATE_CMD_NAMES, MMUEXT_NAMES and PGT_NAMES index by value', () => {
    MMU_UPDATE_CMD_NAMES.forEach((name, cmd) => expect(exported[name]).toBe(cmd));
    expect(MMU_UPDATE_CMD_NAMES).toHaveLength(4);
    MMUEXT_NAMES.forEach((name, cmd) => {
      if (name !== undefined) expect(exported[name]).toBe(cmd);
    });
    expect(MMUEXT_NAMES[14]).toBeUndefined();
    expect(MMUEXT_NAMES.filter((n) => n !== undefined)).toHaveLength(20);
    PGT_NAMES.forEach((name, type) => expect(exported[name]).toBe(type));
  });

  it('pin commands and page-table types line up with the level', () => {
    expect([1, 2, 3, 4].map((l) => mmuextPinCmd(l as 1 | 2 | 3 | 4))).toEqual([
      abi.MMUEXT_PIN_L1_TABLE,
      abi.MMUEXT_PIN_L2_TABLE,
      abi.MMUEXT_PIN_L3_TABLE,
      abi.MMUEXT_PIN_L4_TABLE,
    ]);
    expect([1, 2, 3, 4].map((l) => pgtPageTable(l as 1 | 2 | 3 | 4))).toEqual([
      abi.PGT_l1_page_table,
      abi.PGT_l2_page_table,
      abi.PGT_l3_page_table,
      abi.PGT_l4_page_table,
    ]);
  });
});

describe('mmu_update ptr encoding', () => {
  const cmdArb = fc.constantFrom<MmuUpdateCmd>(0, 1, 2, 3);
  /** PTE-aligned machine addresses below 2^53. */
  const maArb = fc.integer({ min: 0, max: Math.floor(Number.MAX_SAFE_INTEGER / 8) }).map((q) => q * 8);
  const TWO32 = 2 ** 32;

  it('round-trips address and command (whole number)', () => {
    fc.assert(
      fc.property(maArb, cmdArb, (ma, cmd) => {
        const ptr = mmuUpdatePtr(ma, cmd);
        expect(mmuUpdateCmd(ptr)).toBe(cmd);
        expect(mmuUpdateMachineAddress(ptr)).toBe(ma);
        expect(Number.isSafeInteger(ptr)).toBe(true);
      }),
    );
  });

  it('round-trips on split 32-bit halves and agrees with the whole-number form', () => {
    fc.assert(
      fc.property(maArb, cmdArb, (ma, cmd) => {
        const hi = Math.floor(ma / TWO32);
        const lo = ma % TWO32;
        const ptrLo = mmuUpdatePtrLo(lo, cmd);
        expect(ptrLo).toBeGreaterThanOrEqual(0);
        expect(ptrLo).toBeLessThan(TWO32);
        expect(mmuUpdateCmd(ptrLo)).toBe(cmd);
        expect(mmuUpdateMachineAddressLo(ptrLo)).toBe(lo);
        expect(hi * TWO32 + ptrLo).toBe(mmuUpdatePtr(ma, cmd));
      }),
    );
  });

  it('works at the top of both halves', () => {
    expect(mmuUpdatePtrLo(0xfffffff8, 3)).toBe(0xfffffffb);
    expect(mmuUpdateMachineAddressLo(0xfffffffb)).toBe(0xfffffff8);
    const top = Number.MAX_SAFE_INTEGER - 7; // 2^53 - 8
    expect(mmuUpdatePtr(top, abi.MMU_PT_UPDATE_PRESERVE_AD)).toBe(top + 2);
    expect(mmuUpdateCmd(top + 2)).toBe(abi.MMU_PT_UPDATE_PRESERVE_AD);
  });

  it('rejects a machine address that is not PTE-aligned', () => {
    fc.assert(
      fc.property(maArb, fc.integer({ min: 1, max: 7 }), cmdArb, (ma, off, cmd) => {
        fc.pre(ma + off <= Number.MAX_SAFE_INTEGER);
        expect(() => mmuUpdatePtr(ma + off, cmd)).toThrow(RangeError);
        expect(() => mmuUpdatePtrLo((ma + off) % TWO32, cmd)).toThrow(RangeError);
      }),
    );
    // Bit 2 alone: the header's ptr[1:0] would allow it, but Xen would decode command 4.
    expect(() => mmuUpdatePtr(0x1004, abi.MMU_NORMAL_PT_UPDATE)).toThrow(/not 8-byte aligned/);
  });

  it('rejects bad commands and non-addresses', () => {
    expect(() => mmuUpdatePtr(0x1000, 4 as MmuUpdateCmd)).toThrow(RangeError);
    expect(() => mmuUpdatePtr(-8, 0)).toThrow(RangeError);
    expect(() => mmuUpdatePtr(2 ** 53, 0)).toThrow(RangeError);
    expect(() => mmuUpdatePtr(8.5, 0)).toThrow(RangeError);
    expect(() => mmuUpdatePtrLo(TWO32, 0)).toThrow(RangeError);
    expect(() => mmuUpdateCmd(-1)).toThrow(RangeError);
  });

  it('decodes the command from the low three bits, as do_mmu_update() does', () => {
    expect(mmuUpdateCmd(0x1234567 * 8 + 5)).toBe(5); // not an MMU_* command: Xen defines none
  });
});

describe('foreigndom', () => {
  it('DOMID_SELF for both owners is DOMID_SELF in [15:0] and 0 in [31:16]', () => {
    expect(encodeForeigndom()).toBe(DOMID_SELF);
    expect(decodeForeigndom(DOMID_SELF)).toEqual({ fd: DOMID_SELF, pfd: DOMID_SELF });
  });

  it('encodes PFD as PFD + 1 and round-trips', () => {
    expect(encodeForeigndom(DOMID_SELF, 0)).toBe((1 << 16) | DOMID_SELF);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xfffe }), (fd, pfd) => {
        expect(decodeForeigndom(encodeForeigndom(fd, pfd))).toEqual({ fd, pfd });
      }),
    );
  });

  it('rejects ids outside domid_t', () => {
    expect(() => encodeForeigndom(0x10000)).toThrow(RangeError);
    expect(() => encodeForeigndom(0, 0xffff)).toThrow(RangeError);
  });
});

describe('Linux multicall batching (arch/x86/xen/multicalls.c)', () => {
  /**
   * Replays __xen_mc_entry() / xen_mc_extend_args() / xen_extend_mmu_update() for `n` consecutive
   * same-op items of `size` bytes and returns the item count of each flushed batch.
   */
  function simulate(n: number, size: number): number[] {
    const flushed: number[] = [];
    let mcidx = 0;
    let argidx = 0;
    let items = 0; // args[1] of the one entry
    const flush = (): void => {
      if (mcidx > 0) flushed.push(items);
      mcidx = 0;
      argidx = 0;
      items = 0;
    };
    for (let i = 0; i < n; i++) {
      // xen_mc_extend_args(op, size)
      if (mcidx !== 0 && !(argidx + size >= MC_ARGS)) {
        argidx += size;
        items++;
      } else {
        // __xen_mc_entry(size)
        let a = Math.ceil(argidx / 8) * 8;
        if (mcidx === MC_BATCH || a + size >= MC_ARGS) {
          flush();
          a = 0;
        }
        mcidx++;
        argidx = a + size;
        items = 1;
      }
      expect(argidx).toBeLessThan(MC_ARGS); // BUG_ON(b->argidx >= MC_ARGS)
    }
    flush();
    return flushed;
  }

  it('MMU_UPDATES_PER_MULTICALL = floor((MC_ARGS - 1) / 16) = 31', () => {
    expect(MMU_UPDATES_PER_MULTICALL).toBe(31);
    expect(MMU_UPDATES_PER_MULTICALL * MMU_UPDATE_SIZE).toBeLessThan(MC_ARGS);
    expect((MMU_UPDATES_PER_MULTICALL + 1) * MMU_UPDATE_SIZE).toBe(MC_ARGS); // refused by `>=`
  });

  it('replaying the kernel code gives batches of 31 mmu_updates', () => {
    expect(simulate(100, MMU_UPDATE_SIZE)).toEqual([31, 31, 31, 7]);
    expect(simulate(31, MMU_UPDATE_SIZE)).toEqual([31]);
    expect(simulate(32, MMU_UPDATE_SIZE)).toEqual([31, 1]);
  });

  it('mmuext_op batches hold 21 (24-byte items)', () => {
    expect(MMUEXT_OPS_PER_MULTICALL).toBe(21);
    expect(simulate(50, abi.MMUEXT_OP_SIZE)).toEqual([21, 21, 8]);
  });

  it('mcArgItemsPerFlush matches the replay for any item size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MC_ARGS - 1 }), (size) => {
        const per = mcArgItemsPerFlush(size);
        expect(simulate(per + 1, size)[0]).toBe(per);
      }),
      { numRuns: 50 },
    );
    expect(() => mcArgItemsPerFlush(0)).toThrow(RangeError);
  });
});
