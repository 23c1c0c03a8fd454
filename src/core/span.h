/*
 * span.h — the span descriptor: metadata of one run of pages, kept out of band.
 *
 * A span is a run of contiguous pages in one of four states:
 *   FREE   in a page heap's free lists (page heap lock)
 *   SLAB   blocks of one size class, owned by one thread cache (or abandoned)
 *   LARGE  one block of whole pages from a page heap
 *   HUGE   one block mapped directly from the kernel
 * Descriptors live in metadata chunks of their home shard (pageheap.c), never inside
 * the memory they describe, so a program overflowing a block cannot reach them.
 *
 * Slab layout:  start ─► | block 0 | block 1 | ... | block capacity-1 | tail < 1/8 |
 * Blocks below `carved` have been handed out at least once or sit on a free list; the
 * rest is untouched memory, carved lazily so fresh spans cost no resident memory.
 */
#ifndef ST_CORE_SPAN_H
#define ST_CORE_SPAN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/atomics.h"
#include "base/list.h"
#include "base/macros.h"
#include "core/sizeclass.h"

typedef enum st_span_kind {
  ST_SPAN_FREE = 0,
  ST_SPAN_SLAB = 1,
  ST_SPAN_LARGE = 2,
  ST_SPAN_HUGE = 3,
} st_span_kind;

/* A free slab block's first two words (every class is at least 16 bytes); the rest of the
 * block is the program's old data. `key` is the free-block mark: the address of the span
 * descriptor while the block is free (st__block_key), 0 from the moment malloc hands it
 * out. free() finding its block already marked is the cheap double-free check, and malloc
 * finding its block unmarked sees that the program wrote into a free block (see
 * docs/security.md for what this catches). A program could only forge the mark by storing
 * a descriptor address, which lives out of band where no block pointer leads. */
typedef struct st_block {
  struct st_block *next; /* as stored: see st__block_next */
  uintptr_t key;
} st_block_t;

/* The last link of every span's free list (never NULL): its mark matches no span, so the
 * malloc fast path's mark compare also finds the end of the list, with no test of its own.
 * Read-only: a write through a list that reaches it faults. Remote-free lists (xthread_free,
 * page.h) end in it too. */
ST_HIDDEN extern const st_block_t st__block_end;
#define ST_FREE_LIST_END ((st_block_t *)&st__block_end)

/* Hardened mode's per-process secret for free-list links (page.c sets it once, at init,
 * before the first span is formatted; 0 otherwise). A link is stored XORed with the secret
 * times the address that holds it, so a write into a free block cannot aim the list at a
 * chosen address without the secret, and the decoded link is checked to stay inside its
 * span (st__page_link_ok). With 0 the stored link is the plain pointer: the inline fast
 * paths (api.h, st__tcache_pop), which only the default mode runs, read and write it so. */
ST_HIDDEN extern uintptr_t st__block_link_secret;

ST_INLINE uintptr_t st__block_link_mask(const st_block_t *holder, uintptr_t secret) {
  return secret * ((uintptr_t)holder | 1);
}
/* The link of a free block; secret: st__block_link_secret, or 0 where the caller knows the
 * process is not hardened (the compiler then drops the arithmetic). */
ST_INLINE st_block_t *st__block_next_with(const st_block_t *block, uintptr_t secret) {
  return (st_block_t *)((uintptr_t)block->next ^ st__block_link_mask(block, secret));
}
ST_INLINE void st__block_set_next_with(st_block_t *block, st_block_t *next, uintptr_t secret) {
  block->next = (st_block_t *)((uintptr_t)next ^ st__block_link_mask(block, secret));
}
ST_INLINE st_block_t *st__block_next(const st_block_t *block) {
  return st__block_next_with(block, st__block_link_secret);
}
ST_INLINE void st__block_set_next(st_block_t *block, st_block_t *next) {
  st__block_set_next_with(block, next, st__block_link_secret);
}

/* The owner of slab spans (a thread cache embeds it as its first member). Remote frees
 * that find a span marked full push the span here so the owner reuses it. */
typedef struct st_span_owner {
  _Atomic(struct st_span *) xreclaim; /* atomic: any thread pushes, owner takes all */
  uintptr_t fast_thread;              /* const while it owns spans: the thread pointer
                                         (base/thread_pointer.h) of the thread that frees
                                         into its spans on the fast path; 0 for none */
} st_span_owner;

typedef struct st_span {
  /* Hot: the fast paths of malloc and free touch only this cache line. */
  st_block_t *free;                      /* owner only: blocks ready to hand out,
                                            ending in ST_FREE_LIST_END */
  _Atomic(uint32_t) xused;               /* atomic: blocks out, remote frees uncollected; one
                                            writer (the owner, or the page heap lock holder while
                                            abandoned), read relaxed by statistics */
  uint32_t block_size;                   /* const while SLAB */
  st_atomic_uptr xfast_thread;           /* atomic: the owner's fast_thread while that thread
                                            may free here without the slow path (owned,
                                            parked or not); else 0 */
  _Atomic(st_span_owner *) xowner;       /* atomic: owning cache; NULL if abandoned/not SLAB */
  st_atomic_uptr xthread_free;           /* atomic: remotely freed blocks | ST_REMOTE_* tag */
  uintptr_t start;                       /* page heap lock: first byte of the span */
  uint64_t block_multiplier;             /* const while SLAB: tells block starts from other
                                            addresses (st__span_is_block) */
  uint64_t block_check_mask;             /* const while SLAB: ST_BLOCK_CHECK_MASK, read from
                                            here so that the free fast path masks with one
                                            instruction (a 64-bit constant takes two) */
  /* Cold. */
  size_t pages;                          /* page heap lock: length in pages */
  uint32_t capacity;                     /* const while SLAB: blocks that fit */
  uint32_t carved;                       /* owner only: blocks carved from the untouched part */
  _Atomic(uint32_t) xused_bias;          /* atomic, one writer as `xused`: blocks out that
                                            `xused` leaves out while the span is parked (see
                                            st__span_used) */
  uint8_t kind;                          /* st_span_kind; page heap lock */
  uint8_t size_class;                    /* const while SLAB */
  _Atomic(uint8_t) xshard;               /* atomic: shard whose heap and metadata own it; set
                                            when the descriptor is first mapped, never again,
                                            so other shards may read it while coalescing */
  _Atomic(uint8_t) xcached;              /* atomic: LARGE: 1 while freed into a thread's span
                                            cache (spancache.h); owner writes, others read */
  _Atomic(uint8_t) xpinned;              /* atomic: 1 while current in its owner's cache, so
                                            `xused` holds a pin; owner writes, statistics read */
  uint8_t in_full : 1;                   /* owner only: on the owner's full list */
  uint8_t zeroed : 1;                    /* LARGE/HUGE: memory known to read as zero */
  uint8_t on_dirty_list : 1;             /* FREE: linked on the heap's purge list */
  uint8_t lazily_purged : 1;             /* FREE: purged with MADV_FREE: not known zero */
  uint8_t guarded : 1;                   /* its last page is a PROT_NONE guard (hardened mode:
                                            SLAB page.c, LARGE debug/harden.c); kept while
                                            FREE (pageheap.c); owner or page heap lock */
  size_t dirty_pages;                    /* FREE: bound on its resident pages; page heap lock */
  uint64_t freed_at_ms;                  /* FREE: when it last became dirty */
  size_t huge_mapped;                    /* HUGE: bytes of the mapping */
  const st_span_owner *large_owner;      /* LARGE: cache of the thread that allocated it, if
                                            any (written before the block is handed out) */
  st_atomic_size xrequested;             /* atomic: LARGE/HUGE: bytes the program asked for
                                            (written by the block's user, read by statistics) */
  struct st_span *reclaim_next;          /* link on an owner's reclaim stack */
  st_list_t link;                        /* owner's lists (SLAB) or free lists (FREE) */
  st_list_t dirty_link;                  /* FREE: the page heap's purge list, oldest first */
} st_span_t;

_Static_assert(offsetof(st_span_t, block_check_mask) + sizeof(uint64_t) <= ST_CACHE_LINE,
               "fields of the fast paths must share one cache line");

/* Block starts by one multiply, answered in the bits at and above ST_BLOCK_CHECK_BIT. For
 * block size d and capacity n, M = ceil((2^64 + ceil(2^47 / n)) / d), so M * d = 2^64 + e
 * with 2^47 / n <= e < 2^47 / n + d. An offset o = m * d + r (r < d) into the span gives
 * o * M = m * e + r * M modulo 2^64, with no wrap inside a span (64 KiB: (m + 1) * e stays
 * below 2^48, far below M >= 2^64 / 8 KiB). So o * M < 2^47, the high bits all clear,
 * exactly when r = 0 and m < n: r > 0 gives at least M > 2^47, m >= n at least n * e >=
 * 2^47 (the tail past the last block), and m < n at most (n - 1) * e < 2^47 (e exceeds
 * 2^47 / n by less than d, and (n - 1) * d < 2^47 / n). tests/unit/test_block_start.c
 * checks every offset of every class, with and without the hardened guard page. */
#define ST_BLOCK_CHECK_BIT 47
#define ST_BLOCK_CHECK_MASK (~(((uint64_t)1 << ST_BLOCK_CHECK_BIT) - 1))
ST_INLINE void st__span_set_block_size(st_span_t *span, uint32_t block_size, uint32_t capacity) {
  const uint64_t limit = (uint64_t)1 << ST_BLOCK_CHECK_BIT;
  uint64_t e_min = (limit + capacity - 1) / capacity;
  /* ceil((2^64 + e_min) / d) in 64-bit arithmetic: 2^64 = q * d + rem. */
  uint64_t q = UINT64_MAX / block_size, rem = UINT64_MAX % block_size + 1;
  if (rem == block_size) q++, rem = 0;
  span->block_size = block_size;
  span->capacity = capacity;
  span->block_multiplier = q + (rem + e_min + block_size - 1) / block_size;
  span->block_check_mask = ST_BLOCK_CHECK_MASK;
}
/* Whether p, an address inside the slab span, starts one of its blocks. */
ST_INLINE bool st__span_is_block(const st_span_t *span, uintptr_t p) {
  return (((p - span->start) * span->block_multiplier) & ST_BLOCK_CHECK_MASK) == 0;
}
/* The owner's free fast path in one compare: the span's fast thread when p starts
 * one of its blocks, else the fast thread with high bits set. Thread pointers lie below
 * 2^ST_BLOCK_CHECK_BIT (thread.c gives no fast identity to one that does not), so the
 * result equals the calling thread's pointer exactly when that thread is the fast thread
 * and p starts a block: a block check of four instructions (copy, subtract, multiply,
 * mask) merged into the owner compare, which needs the load of xfast_thread anyway. Any
 * descriptor but a slab's has no fast thread (0), and never equals a thread pointer.
 * p must lie in one of the span's pages (the pagemap lookup's answer for p). */
ST_INLINE uintptr_t st__span_fast_thread_for(const st_span_t *span, uintptr_t p) {
  uintptr_t check = ((p - span->start) * span->block_multiplier) & span->block_check_mask;
  return st_xor_load_relaxed_word(check, &span->xfast_thread);
}

/* Bytes a descriptor takes in its metadata chunk: a cache line multiple, so two threads'
 * spans never share a line. */
#define ST_SPAN_DESC_STRIDE ((sizeof(st_span_t) + ST_CACHE_LINE - 1) & ~(size_t)(ST_CACHE_LINE - 1))

/* `xused` has one writer at a time (st_single_writer_*); statistics read it while the
 * owner runs. While a span is parked as full, its owner moves part of the count into
 * `xused_bias`, so that the free fast path's "last block" test (`xused` reaching 0) also
 * fires when enough blocks are free to unpark it, at no cost to the fast path (tcache.c).
 * The owner stores so that a reader between its two stores sees the count low by the
 * bias, never above the capacity. */
ST_INLINE uint32_t st__span_used(const st_span_t *span) {
  return st_load_relaxed(&span->xused) + st_load_relaxed(&span->xused_bias);
}
ST_INLINE void st__span_set_used(st_span_t *span, uint32_t used) { st_store_relaxed(&span->xused, used); }
ST_INLINE void st__span_add_used(st_span_t *span, int32_t delta) {
  st_single_writer_add_u32(&span->xused, (uint32_t)delta);
}
/* One block fewer; returns whether none is left. */
ST_INLINE bool st__span_release_one(st_span_t *span) { return st_single_writer_dec_u32_is_zero(&span->xused); }
/* The mark of a free block of span (see st_block_t). */
ST_INLINE uintptr_t st__block_key(const st_span_t *span) { return (uintptr_t)span; }

ST_INLINE void *st__span_start(const st_span_t *span) { return (void *)span->start; }
ST_INLINE size_t st__span_bytes(const st_span_t *span) { return st__pages_to_bytes(span->pages); }
ST_INLINE uintptr_t st__span_end(const st_span_t *span) { return span->start + st__span_bytes(span); }

#endif
