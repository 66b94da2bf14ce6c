/**
 * x86-64 paging-structure entry bits, in one readable place (as xen/include/public/xen.h does for
 * the Xen ABI). Bit numbers follow the Intel SDM Vol. 3A §4.5 tables 4-15..4-20 and Linux
 * arch/x86/include/asm/pgtable_types.h (_PAGE_BIT_*).
 *
 * An entry is held as two unsigned 32-bit halves: `lo` = bits 0..31, `hi` = bits 32..63.
 * Constants named *_LO apply to `lo`; *_HI to `hi` (bit n of the entry is bit n-32 of `hi`).
 */

/** _PAGE_BIT_PRESENT 0 */
export const P = 1 << 0;
/** _PAGE_BIT_RW 1: writes allowed */
export const RW = 1 << 1;
/** _PAGE_BIT_USER 2: user-mode accesses allowed */
export const US = 1 << 2;
/** _PAGE_BIT_PWT 3: page write-through */
export const PWT = 1 << 3;
/** _PAGE_BIT_PCD 4: page cache disabled */
export const PCD = 1 << 4;
/** _PAGE_BIT_ACCESSED 5: set by the CPU when the entry is used for a translation */
export const A = 1 << 5;
/** _PAGE_BIT_DIRTY 6: set by the CPU in a leaf on the first write (ignored in non-leaf entries) */
export const D = 1 << 6;
/** _PAGE_BIT_PSE 7: page size, in PDPTE (1 GiB) and PDE (2 MiB); reserved in PML4E/PML5E */
export const PS = 1 << 7;
/** _PAGE_BIT_PAT 7: PAT bit of a 4 KiB PTE (same position as PS one level up) */
export const PAT_4K = 1 << 7;
/** _PAGE_BIT_GLOBAL 8: survives CR3 writes (leaf only, with CR4.PGE) */
export const G = 1 << 8;
/** _PAGE_BIT_SOFTW1..3 9..11: ignored by the CPU, available to software */
export const SW1 = 1 << 9;
export const SW2 = 1 << 10;
export const SW3 = 1 << 11;
/** Software bits 9..11 as a field. */
export const SW_LOW_SHIFT = 9;
export const SW_LOW_MASK = 0x7 << SW_LOW_SHIFT;
/** _PAGE_BIT_PAT_LARGE 12: PAT bit of a 2 MiB / 1 GiB leaf */
export const PAT_LARGE = 1 << 12;

/** Bits 52..58 (hi bits 20..26): ignored by the CPU; Linux uses 57 (SOFTW4) and 58 (SOFTW5). */
export const SW_HIGH_SHIFT_HI = 20;
export const SW_HIGH_MASK_HI = 0x7f << SW_HIGH_SHIFT_HI;
/** Bits 59..62 (hi bits 27..30): protection key of a leaf when CR4.PKE = 1 (_PAGE_BIT_PKEY_BIT0..3). */
export const PKEY_SHIFT_HI = 27;
export const PKEY_MASK_HI = 0xf << PKEY_SHIFT_HI;
/** Bit 63 (hi bit 31): execute-disable (_PAGE_BIT_NX), reserved unless IA32_EFER.NXE = 1. */
export const XD_HI = 0x80000000;

/** Paging levels, counted as the SDM does from the leaf: 1 = PTE ... 5 = PML5E. */
export const LEVEL_PTE = 1;
export const LEVEL_PDE = 2;
export const LEVEL_PDPTE = 3;
export const LEVEL_PML4E = 4;
export const LEVEL_PML5E = 5;
export const LEVEL_NAMES = ['', 'PTE', 'PDE', 'PDPTE', 'PML4E', 'PML5E'] as const;

/** Entries per paging structure (PTRS_PER_PTE etc.). */
export const ENTRIES_PER_TABLE = 512;
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;

/** Page sizes, in 4 KiB frames, of a leaf at each level. */
export const FRAMES_4K = 1;
export const FRAMES_2M = 512;
export const FRAMES_1G = 512 * 512;

/** Linux's user PTE protections always include ___A (pgtable_types.h, e.g. PAGE_READONLY). */
export const LINUX_PAGE_TABLE = P | RW | US | A | D; // _PAGE_TABLE: entries that point to a table
