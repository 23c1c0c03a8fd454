/*
 * pageheap.h — the shared layer that hands out and takes back runs of pages.
 *
 * Owns: shards (as many as CPUs by default), each a page heap of free spans over regions
 * reserved from the os layer, with best-fit allocation, immediate coalescing with both
 * neighbours, delayed purging of free memory, the lists of abandoned slab spans, and the
 * span descriptors. A thread cache is given a shard round-robin when it is created and
 * keeps it, so threads spread evenly over the shards and a thread that migrates between
 * CPUs keeps reusing the memory it freed (per-CPU shards split such a thread's free memory
 * between heaps, and its footprint grew by up to 60% under load). A span always returns to
 * its home shard (span->xshard), so memory freed by another thread finds its way back.
 * A shard with no dirty free span that fits a request borrows one from another shard before
 * it takes clean pages, so that the shards' holes do not add up (docs/memory.md, "Shards").
 *
 * Lock order: a shard lock is a leaf except for the pagemap's leaf lock below it; no code
 * holds two shard locks. Functions ending in _locked need the shard's lock.
 */
#ifndef ST_CORE_PAGEHEAP_H
#define ST_CORE_PAGEHEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/list.h"
#include "base/lock.h"
#include "core/sizeclass.h"
#include "core/span.h"

#define ST_MAX_SHARDS 64
#define ST_FREE_EXACT_PAGES 256             /* free spans up to this length have own lists */
#define ST_REGION_BYTES ((size_t)64 << 20)  /* address space reserved per region */
#define ST_REGION_ALIGN ((size_t)2 << 20)   /* keeps regions transparent-huge-page friendly */

typedef struct st_pageheap {
  st_lock_t lock;
  bool initialized;                            /* lock: lists set up */
  uint8_t index;                               /* const: shard number */
  uint64_t nonempty[ST_FREE_EXACT_PAGES / 64]; /* lock: bit i set iff free_exact[i] non-empty */
  _Atomic(uint64_t) xdirty_first[ST_FREE_EXACT_PAGES / 64 + 1]; /* written under lock, read
                                                  without (other shards, to borrow): bit i set
                                                  iff free_exact[i] starts with a dirty span;
                                                  the last word counts the dirty spans
                                                  on free_large */
  st_list_t free_exact[ST_FREE_EXACT_PAGES];   /* lock: free spans of i + 1 pages, dirty first */
  st_list_t free_large;                        /* lock: longer free spans, unordered */
  st_list_t dirty;                             /* lock: dirty free spans, oldest first */
  st_list_t abandoned[ST_NUM_CLASSES];         /* lock: slab spans whose owner exited */
  st_atomic_size xabandoned_count;             /* written under lock, read without: spans on
                                                  the abandoned lists */
  uint64_t next_sweep_ms;                      /* lock: when abandoned spans are next checked */
  uint64_t next_purge_ms;                      /* lock: earliest time a purge is due */
  st_span_t *desc_free;                        /* lock: recycled descriptors */
  char *desc_cursor, *desc_end;                /* lock: descriptor carving area */
  size_t free_pages;                           /* lock: pages in free spans */
  size_t dirty_pages;                          /* lock: of which possibly resident */
  size_t reserved_bytes;                       /* lock: regions mapped */
  size_t metadata_bytes;                       /* lock: descriptor chunks mapped */
  size_t spans_allocated;                      /* lock: spans ever handed out */
} ST_CACHE_ALIGNED st_pageheap_t;

/* The shard of a CPU (any int; folded into the shard count): for threads without a cache. */
ST_HIDDEN st_pageheap_t *st__pageheap_of_cpu(int cpu);
/* The next shard round-robin, for a thread cache being created. */
ST_HIDDEN st_pageheap_t *st__pageheap_for_new_cache(void);
ST_HIDDEN st_pageheap_t *st__pageheap_home(const st_span_t *span);
ST_HIDDEN void st__pageheap_init(void);
ST_HIDDEN unsigned st__pageheap_shard_count(void);

ST_INLINE void st__pageheap_lock(st_pageheap_t *ph) { st_lock_acquire(&ph->lock); }
ST_INLINE void st__pageheap_unlock(st_pageheap_t *ph) { st_lock_release(&ph->lock); }

/* A span of `pages` pages whose start is aligned to `align` bytes (a power of two, at
 * least ST_PAGE_SIZE), in state `kind` (SLAB or LARGE) with its pagemap entries set.
 * NULL when the kernel refuses memory. */
ST_HIDDEN st_span_t *st__pageheap_alloc_locked(st_pageheap_t *ph, size_t pages, size_t align,
                                               st_span_kind kind);
/* The same, taking the lock; when the shard holds no dirty span that fits but another shard
 * does, that shard lends it (the span stays its home's); when the kernel refuses the shard
 * memory, falls back to the free spans of other shards and then to unmapping all free spans
 * and growing again. */
ST_HIDDEN st_span_t *st__pageheap_alloc(st_pageheap_t *ph, size_t pages, size_t align,
                                        st_span_kind kind);
/* Locks the span's home shard and frees it there; if the heap as a whole collapsed (see
 * pageheap.c), also purges the other shards' dirty memory beyond the budget. */
ST_HIDDEN void st__pageheap_free(st_span_t *span);
/* When a shard has seen memory in use collapse, purges every shard's dirty memory beyond
 * the budget (callers that free spans with st__pageheap_free_locked call it after
 * unlocking). */
ST_HIDDEN void st__pageheap_purge_after_collapse(void);
/* The same whether or not a slab span's release saw the collapse: for a thread's exit, after
 * which a program that shrank may not call the allocator again, and whose last frees may all
 * have been large blocks (a hardened thread's quarantine empties in random order). */
ST_HIDDEN void st__pageheap_purge_if_collapsed(void);
/* Unmaps the free spans of every shard (out of address space); returns bytes released. */
ST_HIDDEN size_t st__pageheap_unmap_free(void);
/* Returns a SLAB or LARGE span to the free lists, coalescing it with free neighbours (a
 * span with a guard page keeps it: a free span below may join it, none above it, until
 * purged). */
ST_HIDDEN void st__pageheap_free_locked(st_pageheap_t *ph, st_span_t *span);
/* Hardened mode: makes span's last page a PROT_NONE guard (on) or lifts it, unless it is so
 * already; false when the kernel refuses a guard. A SLAB or LARGE span's owner calls it
 * on every span it takes: alloc hands a span out with a guard when it goes out whole (a
 * span carved from a guarded one has none: the guard stays with the rest). */
ST_HIDDEN bool st__pageheap_guard(st_span_t *span, bool on);
/* Gives back the tail of a LARGE span beyond `keep_pages` (shrink in place; not guarded). */
ST_HIDDEN void st__pageheap_shrink_locked(st_pageheap_t *ph, st_span_t *span, size_t keep_pages);
/* Grows a LARGE span in place to `pages` by taking a free right neighbour; false if not
 * possible. */
ST_HIDDEN bool st__pageheap_grow_locked(st_pageheap_t *ph, st_span_t *span, size_t pages);
/* Hardened mode: the same for a LARGE span whose last page is a guard; the guard moves to
 * the new last page. False, span unchanged and every free span's guard in place, when the
 * pages are not free, no descriptor can be had or the kernel refuses the new guard. */
ST_HIDDEN bool st__pageheap_grow_guarded_locked(st_pageheap_t *ph, st_span_t *span, size_t pages);

/* Descriptors (also used by the huge layer for its blocks). */
ST_HIDDEN st_span_t *st__pageheap_desc_alloc_locked(st_pageheap_t *ph);
ST_HIDDEN void st__pageheap_desc_free_locked(st_pageheap_t *ph, st_span_t *span);

/* Purges dirty free spans older than the purge delay (all of them when `all`); returns
 * the bytes given back. */
ST_HIDDEN size_t st__pageheap_purge_locked(st_pageheap_t *ph, bool all);

/* Checks the shard's lists and pagemap entries; returns false after reporting. */
ST_HIDDEN bool st__pageheap_validate_locked(st_pageheap_t *ph);

/* Fork support: takes / releases every shard lock (in the child too: its only thread is
 * the one that took them). */
ST_HIDDEN void st__pageheap_lock_all(void);
ST_HIDDEN void st__pageheap_unlock_all(void);

#endif
