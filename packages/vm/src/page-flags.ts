/**
 * Per-frame flags, after include/linux/page-flags.h (PG_*). Kept in one Uint16 per frame.
 * Folio flags live on every frame of a folio (the model writes them to all), so a lookup by any
 * frame sees them without finding the head first.
 */
export const PG_LOCKED = 1 << 0; // PG_locked: IO in flight or someone holds the folio lock
export const PG_UPTODATE = 1 << 1; // PG_uptodate: contents valid
export const PG_DIRTY = 1 << 2; // PG_dirty
export const PG_LRU = 1 << 3; // PG_lru: on an LRU list
export const PG_ACTIVE = 1 << 4; // PG_active
export const PG_REFERENCED = 1 << 5; // PG_referenced
export const PG_READAHEAD = 1 << 6; // PG_readahead (PG_reclaim's alias): async readahead marker
export const PG_ANON = 1 << 7; // PageAnon (folio->mapping low bit in Linux)
export const PG_PAGECACHE = 1 << 8; // in a file's page cache (folio->mapping is an address_space)
export const PG_PAGETABLE = 1 << 9; // PG_table: a page-table page
export const PG_ZERO = 1 << 10; // the shared zero page (my_zero_pfn)
export const PG_WORKINGSET = 1 << 11; // PG_workingset
export const PG_ALLOCATED = 1 << 12; // owned by someone (not free in the buddy allocator)
export const PG_EXCLUSIVE = 1 << 13; // PageAnonExclusive: anon page mapped by one process only
export const PG_PTCACHE = 1 << 15; // held in the alias-free page-table page cache (pt_cache policy)
export const PG_VMALLOC = 1 << 14; // a vmalloc()ed kernel page (mapped in init_mm only, no rmap)
