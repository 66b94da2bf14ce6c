import { configError } from '@pte/core';
import { NO_OWNER, type FrameTable } from './frames.js';
import { PG_LOCKED, PG_PAGECACHE, PG_READAHEAD, PG_UPTODATE } from './page-flags.js';
import { RaState } from './readahead.js';
import { LRU_INACTIVE_FILE, type Lru } from './lru.js';

/**
 * A file: its inode and its page cache (`struct address_space`). The cache maps each file page
 * index to the frame holding it (-1 when absent); a large folio of 2^order pages occupies 2^order
 * consecutive indices and frames, naturally aligned in both (as the kernel requires of folios).
 * One Int32Array per file: 4 bytes per file page.
 */
export class Inode {
  /** Page index → frame, or -1. */
  readonly cache: Int32Array;
  /** Pages currently cached. */
  nrPages = 0;
  /** Readahead state (file->f_ra; one opener per file in the model). */
  readonly ra = new RaState();
  /** Shadow entries of evicted pages (index → eviction counter), for refault detection. */
  readonly shadow = new Map<number, number>();

  constructor(
    readonly id: number,
    readonly name: string,
    /** i_size in bytes. */
    readonly size: number,
    /** Backed by shmem (MAP_SHARED|MAP_ANONYMOUS, tmpfs): no block device, may map PMD across EOF. */
    readonly shmem = false,
  ) {
    if (id >= NO_OWNER) throw configError(`too many files (${id})`);
    this.cache = new Int32Array(Math.ceil(size / 4096)).fill(-1);
  }

  /** Pages of the file: DIV_ROUND_UP(i_size, PAGE_SIZE). */
  get pages(): number {
    return this.cache.length;
  }
}

/**
 * Page-cache operations on frames (mm/filemap.c): insert a folio (filemap_add_folio), look one up
 * (filemap_get_folio), drop one (filemap_remove_folio). Folio state lives in the frame table.
 */
export class PageCache {
  private nextId = 0;
  readonly files: Inode[] = [];
  /** The file LRU lists, when reclaim is on: a folio joins the inactive list when it is added. */
  lru: Lru | null = null;

  constructor(private readonly frames: FrameTable) {}

  createFile(name: string, size: number, shmem = false): Inode {
    const inode = new Inode(this.nextId++, name, size, shmem);
    this.files.push(inode);
    return inode;
  }

  /** Frame of file page `index`, or -1. */
  lookup(inode: Inode, index: number): number {
    return index < inode.cache.length ? inode.cache[index]! : -1;
  }

  /**
   * Insert the folio at `pfn` (2^order frames, allocated by the caller) at `index` (aligned to the
   * order). Its frames get the page-cache reference, owner, index and `flags`.
   */
  insert(inode: Inode, index: number, pfn: number, order: number, flags: number): void {
    const n = 1 << order;
    if (index % n !== 0) throw new Error(`folio of order ${order} at unaligned index ${index}`);
    const f = this.frames;
    for (let i = 0; i < n; i++) {
      const idx = index + i;
      if (idx < inode.cache.length && inode.cache[idx] !== -1)
        throw new Error(`page ${idx} of ${inode.name} is already cached`);
      f.flags[pfn + i] = f.flags[pfn + i]! | PG_PAGECACHE | flags;
      f.owner[pfn + i] = inode.id;
      f.index[pfn + i] = idx;
      if (idx < inode.cache.length) inode.cache[idx] = pfn + i;
    }
    f.refcount[pfn] = f.refcount[pfn]! + n; // the page cache holds one reference per page, on the head
    this.lru?.add(pfn, LRU_INACTIVE_FILE, n);
    inode.nrPages += Math.min(n, inode.cache.length - index);
  }

  /**
   * Remove the folio containing frame `pfn` from its file (filemap_remove_folio). The caller drops
   * the cache's references (folioPut of the folio's pages) and frees the folio when they were the last.
   */
  remove(inode: Inode, pfn: number): void {
    const f = this.frames;
    const order = f.order[pfn]!;
    const n = 1 << order;
    const head = pfn - (pfn % n);
    const index = f.index[head]!;
    this.lru?.remove(head, n);
    for (let i = 0; i < n; i++) {
      if (index + i < inode.cache.length) inode.cache[index + i] = -1;
      f.flags[head + i] = f.flags[head + i]! & ~(PG_PAGECACHE | PG_UPTODATE | PG_READAHEAD | PG_LOCKED);
      f.owner[head + i] = NO_OWNER;
    }
    inode.nrPages -= Math.min(n, inode.cache.length - index);
  }
}

/** Folio helpers on frames: head frame and number of frames of the folio containing `pfn`. */
export function folioHead(frames: FrameTable, pfn: number): number {
  const n = 1 << frames.order[pfn]!;
  return pfn - (pfn % n);
}
