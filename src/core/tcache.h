/*
 * tcache.h — per-thread caches of slab spans: the allocator's fast paths.
 *
 * Owns: each thread's current span per size class, its partial and full spans, the
 * refill (slow) path, local frees that need bookkeeping, and the hand-over of a thread's
 * spans when it exits (abandon) or when another thread picks them up (adopt).
 *
 * Fast path (STYLE.md §4, §6): st__tls_tcache starts at a static empty sentinel whose
 * current spans have no free blocks, so a thread's first malloc falls into the slow path,
 * which sets the thread up: there is no init check on the fast path. A malloc is a TLS
 * load, a class-table load, a span load and a list pop; a free of a block of a span the
 * thread owns is a pagemap lookup, one compare (owner and block start, span.h), the free
 * mark's compare and a list push. No atomics, no locks.
 *
 * Invariants: current[c] is &st__span_empty or a SLAB span of class c owned by this cache
 * and on no list; spans on partial[c] are owned, not parked; spans on full[c] are parked
 * (in_full, tag NOTIFY until a remote free hands them back, `xused_bias` holding all but
 * an eighth of the count); a parked span may hold local free blocks, fewer than an eighth
 * of it: the owner frees into it on the fast path (span_bias_used in tcache.c).
 */
#ifndef ST_CORE_TCACHE_H
#define ST_CORE_TCACHE_H

#include <stdbool.h>

#include "base/list.h"
#include "core/events.h"
#include "core/page.h"
#include "core/pageheap.h"
#include "core/span.h"
#include "core/spancache.h"

typedef struct st_tcache {
  st_span_owner owner;                /* first member: spans point at it; any thread pushes */
  st_span_t *current[ST_NUM_CLASSES]; /* owner only: never NULL */
  uint8_t class_of_small[ST_SMALL_FAST_MAX + 1]; /* const after init: st__class_of_small,
                                                   or 0s in sentinels (see below) */
  st_list_t partial[ST_NUM_CLASSES];  /* owner only */
  st_list_t full[ST_NUM_CLASSES];     /* owner only */
  st_spancache_t spans;               /* owner only: freed LARGE spans of a few pages */
  bool took_span[ST_NUM_CLASSES];     /* owner only: a span of the class came from the page
                                         heap before (see tcache_prepare_span) */
  uint64_t idle_classes;              /* owner only: bit c set when current[c] was empty at the
                                         thread's last new span (tcache_release_idle) */
  uint64_t released_classes;          /* owner only: bit c set while class c's span went back
                                         idle and the class has not taken one since */
  uint64_t kept_classes;              /* owner only: bit c set when class c came back after
                                         such a release: its empty span is kept */
  uint32_t spans_since_forget;        /* owner only: new spans since kept_classes was cleared */
  st_pageheap_t *heap;                /* const after init: this cache's shard; NULL in sentinels */
  st_list_t registry_link;            /* registry lock (thread.c) */
  bool live;                          /* registry lock: belongs to a running thread */
  st_event_counters events;           /* owner writes; readers under the registry lock */
} st_tcache_t;

_Static_assert(ST_NUM_CLASSES <= 64, "the class masks hold a bit per class");
_Static_assert(offsetof(st_tcache_t, owner) == 0, "spans compare owners with the cache address");

ST_HIDDEN extern st_span_t st__span_empty;
/* The cache of a thread that has not allocated yet: every current span is empty. */
ST_HIDDEN extern st_tcache_t st__tcache_empty;

ST_HIDDEN void st__tcache_init(st_tcache_t *tc);
/* Refills class cls and returns a block, or NULL when out of memory. */
ST_HIDDEN void *st__tcache_alloc_slow(st_tcache_t *tc, unsigned cls);
/* A free by the owner that the fast path could not finish (the block carried the free mark
 * but is on no free list, or the debug route freed it). */
ST_HIDDEN void st__tcache_free_local_slow(st_tcache_t *tc, st_span_t *span, st_block_t *block);
/* The fast path freed the last used block of span (used == 0). */
ST_HIDDEN void st__tcache_retire(st_tcache_t *tc, st_span_t *span);
/* Hands every span to its home shard: empty ones are freed, the rest abandoned for
 * adoption. `forced` is for a forked child, where the other threads are gone. */
ST_HIDDEN void st__tcache_abandon(st_tcache_t *tc, bool forced);
/* Gives empty current spans and the span cache back to the page heap (st_trim). */
ST_HIDDEN void st__tcache_release_empty(st_tcache_t *tc);
ST_HIDDEN bool st__tcache_validate(st_tcache_t *tc);
/* Frees abandoned spans of a shard that became empty through remote frees. */
ST_HIDDEN void st__tcache_sweep_abandoned_locked(st_pageheap_t *ph);

/* The allocation fast path: pop a block of class cls from the current span, or NULL when
 * it has none (always so for the empty sentinel, which sends a new thread to the slow path).
 * One compare checks both the free mark and the end of the list, which carries no mark. A
 * block without its mark was written after it was freed: its link cannot be trusted, so
 * the program ends before the link is followed. */
ST_INLINE void *st__tcache_pop(st_tcache_t *tc, unsigned cls) {
  st_span_t *span = tc->current[cls];
  st_block_t *block = span->free;
  ST_IN_RETURN_REGISTER(block);
  if (ST_UNLIKELY(block->key != st__block_key(span))) {
    if (block != ST_FREE_LIST_END) st__page_corrupt_block(span, block);
    return NULL;
  }
  span->free = block->next;
  block->key = 0;
  st__span_add_used(span, 1);
  return block;
}

/* The class of size <= ST_SMALL_FAST_MAX for the malloc fast path: the cache's copy of
 * st__class_of_small sits at a fixed offset from the cache pointer malloc loads anyway, so
 * the lookup needs no table address (one instruction of position-independent code). */
ST_INLINE unsigned st__tcache_small_class(const st_tcache_t *tc, size_t size) { return tc->class_of_small[size]; }

/* Hardened mode's pop (its lists hold encoded links, span.h): the link is decoded and must
 * lead to a block of the span before it is followed. span->free != ST_FREE_LIST_END. */
ST_INLINE void *st__tcache_pop_encoded(st_span_t *span) {
  st_block_t *block = span->free;
  if (ST_UNLIKELY(block->key != st__block_key(span))) st__page_corrupt_block(span, block);
  st_block_t *next = st__block_next(block);
  if (ST_UNLIKELY(!st__page_link_ok(span, next))) st__page_corrupt_link(span, block);
  block->key = 0;
  span->free = next;
  st__span_add_used(span, 1);
  return block;
}

/* Hardened mode's allocation (the inline pop above reads plain links): pops a block of class
 * cls from tc, decoding and checking its link, or refills; NULL when out of memory. */
ST_HIDDEN void *st__tcache_pop_checked(st_tcache_t *tc, unsigned cls);

/* Counts n events of the calling thread, whose cache (or sentinel) is tc. */
ST_INLINE void st__tcache_count_n(st_tcache_t *tc, st_event event, size_t n) {
  if (!ST_EVENTS_ENABLED) return;
  if (tc->live) st__events_add_own(&tc->events.xcount[event], n);
  else st_counter_add(&st__events_shared.xcount[event], n);
}
ST_INLINE void st__tcache_count(st_tcache_t *tc, st_event event) { st__tcache_count_n(tc, event, 1); }
ST_INLINE void st__tcache_count_refill(st_tcache_t *tc, unsigned cls) {
  if (!ST_EVENTS_ENABLED) return;
  if (tc->live) st__events_add_own(&tc->events.xclass_refills[cls], 1);
  else st_counter_add(&st__events_shared.xclass_refills[cls], 1);
}

ST_INLINE bool st__tcache_owns(const st_tcache_t *tc, const st_span_t *span) {
  return st_load_relaxed(&span->xowner) == &tc->owner;
}

#endif
