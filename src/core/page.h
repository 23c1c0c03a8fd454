/*
 * page.h — slab spans: blocks of one size class carved from a span and recycled.
 *
 * Owns: formatting a span as a slab, carving untouched blocks lazily, the cross-thread
 * free list and its hand-over to the owner. Every operation except st__page_free_mt runs
 * on the owner thread (or under the home shard's lock for an abandoned span).
 *
 * Cross-thread free is one CAS on span->xthread_free, the remote word: the first block of
 * the remote list shifted up by ST_REMOTE_LIST_SHIFT, the number of blocks on the list in
 * the bits below (ST_REMOTE_COUNT_ONE), and a tag in the low two bits:
 *   NORMAL  remote frees push onto the list; the owner collects it when it runs dry.
 *   NOTIFY  the owner parked the span on its full list (it stopped looking at it). The
 *           first remote free flips the tag to BUSY in the same CAS, pushes the span onto
 *           the owner's reclaim stack, then flips BUSY back to NORMAL.
 *   BUSY    that hand-over is in progress; the owner must not abandon or release the
 *           span, nor park it again, until it ends.
 * A span sits on its owner's reclaim stack at most once: the owner empties the stack
 * after BUSY ends and before parking a span again (st__tcache_* does this).
 */
#ifndef ST_CORE_PAGE_H
#define ST_CORE_PAGE_H

#include <stdbool.h>

#include "core/sizeclass.h"
#include "core/span.h"

#define ST_REMOTE_NORMAL ((uintptr_t)0)
#define ST_REMOTE_NOTIFY ((uintptr_t)1)
#define ST_REMOTE_BUSY ((uintptr_t)2)
#define ST_REMOTE_TAG_MASK ((uintptr_t)3)

/* The count lets the owner take the remote list without walking it: the list ends in
 * ST_FREE_LIST_END like a free list, so when the span's own free list is empty (the usual
 * time to collect) the remote list becomes it as it stands. A walk would read every block
 * that other threads just wrote, one cache miss after another with nothing to overlap
 * them. Blocks lie below 2^47 (the page map covers no more), so the shifted pointer fits;
 * a span holds at most ST_REMOTE_MAX_BLOCKS blocks (st__page_format checks), so the count
 * never carries into it. The masks fit in 32-bit immediates, which keeps the remote free
 * short enough to need no stack frame. */
#define ST_REMOTE_LIST_SHIFT 16
#define ST_REMOTE_COUNT_ONE ((uintptr_t)4)
#define ST_REMOTE_COUNT_MASK ((((uintptr_t)1 << ST_REMOTE_LIST_SHIFT) - 1) & ~ST_REMOTE_TAG_MASK)
#define ST_REMOTE_MAX_BLOCKS ((uint32_t)(ST_REMOTE_COUNT_MASK / ST_REMOTE_COUNT_ONE))

ST_INLINE st_block_t *st__page_remote_list(uintptr_t word) {
  return (st_block_t *)(word >> ST_REMOTE_LIST_SHIFT);
}
ST_INLINE uint32_t st__page_remote_count(uintptr_t word) {
  return (uint32_t)((word & ST_REMOTE_COUNT_MASK) / ST_REMOTE_COUNT_ONE);
}
/* The word of an empty list with the given tag. */
ST_INLINE uintptr_t st__page_remote_empty(uintptr_t tag) {
  return ((uintptr_t)ST_FREE_LIST_END << ST_REMOTE_LIST_SHIFT) | tag;
}

/* Nonzero in hardened mode (set once at init, with st__block_link_secret): carving
 * shuffles each batch of blocks, links are encoded, and each slab span ends in a guard page. */
ST_HIDDEN extern uint64_t st__page_shuffle_seed;
ST_INLINE bool st__page_hardened(void) { return st__page_shuffle_seed != 0; }
/* Hardened mode on: called once by the core's initialisation, before any span exists. */
ST_HIDDEN void st__page_harden(uint64_t shuffle_seed, uintptr_t link_secret);

/* Turns a fresh SLAB span into an empty slab of class cls owned by owner. */
ST_HIDDEN void st__page_format(st_span_t *span, unsigned cls, st_span_owner *owner);
/* Carves a batch of untouched blocks onto span->free; false when none are left. */
ST_HIDDEN bool st__page_extend(st_span_t *span);
/* For a freshly formatted span (nothing carved yet) whose pages may be resident (reused
 * from the page heap, not known zero): gives back to the kernel the pages past the first
 * carve, so that a span of which only a few blocks will ever be carved does not keep the
 * rest of a freed neighbour's memory resident. Carving later faults fresh zero pages in. */
ST_HIDDEN void st__page_release_uncarved(st_span_t *span);
/* Moves remotely freed blocks onto span->free; returns how many. */
ST_HIDDEN uint32_t st__page_collect(st_span_t *span);
/* Frees a block from a thread that does not own the span (any thread). The _encoded
 * variant is hardened mode's (st__block_link_secret): the plain one, the default mode's,
 * stores the link as it is and pays nothing for the encoding. */
ST_HIDDEN void st__page_free_mt(st_span_t *span, st_block_t *block);
ST_HIDDEN void st__page_free_mt_encoded(st_span_t *span, st_block_t *block);
/* Waits until no remote free is handing the span over (tag not BUSY). */
ST_HIDDEN void st__page_wait_not_busy(st_span_t *span);
/* NORMAL with an empty remote list -> NOTIFY; false if remote frees are pending. */
ST_HIDDEN bool st__page_try_park(st_span_t *span);
/* NOTIFY -> NORMAL, waiting out BUSY; after it no remote free will push the span. */
ST_HIDDEN void st__page_unpark(st_span_t *span);
/* Forked child: no other thread exists, so a BUSY left by one can be dropped. */
ST_HIDDEN void st__page_unpark_forced(st_span_t *span);
/* Takes the owner's whole reclaim stack (linked by reclaim_next). */
ST_HIDDEN st_span_t *st__page_take_reclaimed(st_span_owner *owner);
/* malloc found a free block whose mark is gone (written after free): reports and aborts. */
ST_HIDDEN ST_COLD ST_NOINLINE _Noreturn void st__page_corrupt_block(const st_span_t *span,
                                                                     const st_block_t *block);
/* A free block's decoded link left its span: its link was overwritten. Reports, aborts. */
ST_HIDDEN ST_COLD ST_NOINLINE _Noreturn void st__page_corrupt_link(const st_span_t *span,
                                                                    const st_block_t *block);
/* free of a block that carries the free mark: aborts with "double free" when the block is
 * on one of span's free lists, returns when the program only happened to store the mark.
 * Owner only (it walks the owner's list); others call st__page_double_free. */
ST_HIDDEN ST_COLD ST_NOINLINE void st__page_check_double_free(const st_span_t *span,
                                                               const st_block_t *block,
                                                               const char *fn);
ST_HIDDEN ST_COLD ST_NOINLINE _Noreturn void st__page_double_free(const st_span_t *span,
                                                                   const void *p, const char *fn);
/* Whether any address p (a link read from a list may point anywhere) starts a block of the
 * slab. */
ST_INLINE bool st__page_is_block_start(const st_span_t *span, const void *p) {
  return (uintptr_t)p - span->start < st__span_bytes(span) && st__span_is_block(span, (uintptr_t)p);
}
/* In a forked child, for a span of a thread that did not survive: that thread may have
 * stopped between two steps of a lock-free path (a pop before its count, a carve before
 * `carved`, a collect before its count), so the counts are set again from the free list.
 * A block that was off the list and not yet handed out stays counted as out: the dead
 * thread's, like every block it held. */
ST_HIDDEN void st__page_recount(st_span_t *span);

/* Whether next, a decoded link of span's free list or remote list, may follow: the end of
 * either list or a block of the span. */
ST_INLINE bool st__page_link_ok(const st_span_t *span, const st_block_t *next) {
  return next == NULL || next == ST_FREE_LIST_END || st__page_is_block_start(span, next);
}
/* Checks counts and lists of a slab the caller owns (or holds under the shard lock);
 * pins: extra counts in `used` held by the owner (1 for a current span). */
ST_HIDDEN bool st__page_validate(const st_span_t *span, uint32_t pins);

ST_INLINE bool st__page_all_free(const st_span_t *span) { return st__span_used(span) == 0; }
ST_INLINE bool st__page_can_alloc(const st_span_t *span) {
  return span->free != ST_FREE_LIST_END || span->carved < span->capacity;
}

#endif
