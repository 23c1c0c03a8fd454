/*
 * heap.h — the production allocator as one backend: every request the fast paths in
 * api/ could not finish ends here.
 *
 * Owns: routing by size (small slab classes, large page-heap spans, huge mappings),
 * aligned allocation, realloc in place, usable size, trim, counters and validation of
 * the whole core. Diagnoses misused pointers (one line naming the function, then abort).
 * Returns NULL on failure and leaves errno to the api layer.
 */
#ifndef ST_CORE_HEAP_H
#define ST_CORE_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/span.h"
#include "core/thread.h"
#include "strata.h"

/* size <= PTRDIFF_MAX; zero: the block must read as zero. */
ST_HIDDEN void *st__core_malloc(size_t size, bool zero);
/* align a power of two > ST_MIN_ALIGN. */
ST_HIDDEN void *st__core_malloc_aligned(size_t size, size_t align);
/* fn names the public function for diagnostics ("free", "realloc", ...). */
ST_HIDDEN void st__core_free(void *p, st_span_t *span, const char *fn);
ST_HIDDEN void *st__core_realloc(void *p, size_t size);
/* A block of slab class cls from the calling thread's cache; NULL when out of memory. */
ST_HIDDEN void *st__core_small_alloc(unsigned cls);
/* Slab block p of span carries the free mark: aborts with "double free" when it is free
 * (confirmed on the lists when the calling thread owns the span), else returns. */
ST_HIDDEN void st__core_small_check_not_free(const void *p, st_span_t *span, const char *fn);
/* Hardened mode (debug/harden.c, which has checked p): frees slab block p of span into the
 * calling thread's cache, or as a remote free, with encoded links (span.h). */
ST_HIDDEN void st__core_small_free_checked(void *p, st_span_t *span);
/* Hardened mode's realloc (debug/harden.c): grows the LARGE block of span, whose last page
 * is a guard, in place to `size` bytes (guard included), the guard moving to the new last
 * page; false, the block unchanged, when it must move. */
ST_HIDDEN bool st__core_large_grow_guarded(st_span_t *span, size_t size);
/* Hardened mode's realloc resized the LARGE or HUGE block of span in place: it now holds
 * `size` bytes of the program's (statistics: large_requested_bytes). */
ST_HIDDEN void st__core_set_requested(st_span_t *span, size_t size);
/* Hardened mode's realloc counts itself as the core's does (reallocs, reallocs_in_place). */
ST_HIDDEN void st__core_count_realloc(bool in_place);

/* Hardened mode's slab malloc and free (debug/harden.c), the common case inline: a pop from
 * the current span of the thread's cache, a push onto a span it owns, both with encoded
 * links; everything else in the two functions above. In hardened mode every thread has its
 * cache in st__tls_hidden_tcache (slow-paths-only mode). */
ST_INLINE void *st__core_small_alloc_hardened(unsigned cls) {
  st_tcache_t *tc = st__tls_hidden_tcache;
  if (ST_LIKELY(tc != NULL)) {
    st_span_t *span = tc->current[cls];
    if (ST_LIKELY(span->free != ST_FREE_LIST_END)) return st__tcache_pop_encoded(span);
  }
  return st__core_small_alloc(cls);
}

ST_INLINE void st__core_small_free_hardened(void *p, st_span_t *span) {
  st_tcache_t *tc = st__tls_hidden_tcache;
  st_block_t *block = p;
  if (ST_LIKELY(tc != NULL && st__tcache_owns(tc, span) && block->key != st__block_key(span))) {
    block->key = st__block_key(span);
    st__block_set_next(block, span->free);
    span->free = block;
    if (ST_UNLIKELY(st__span_release_one(span))) st__tcache_retire(tc, span);
    return;
  }
  st__core_small_free_checked(p, span);
}

/* A LARGE block from the calling thread's span stock (spancache.h), taken by the api's
 * malloc slow path before the backend dispatch: under random sizes a malloc of 16-32 KiB
 * finds its page count there about 5 times in 6 (threads-1), and the layers in between
 * cost about as much as the hit itself (docs/benchmarks.md §9). `size` is above
 * ST_SMALL_MAX and at most ST_SPANCACHE_MAX_PAGES pages; NULL when the stock holds no span
 * of that length. No mode check is needed, for the reason the small fast path needs none:
 * threads of a classic strategy or of a debug route (leak records, memcheck, hardened
 * mode) keep a sentinel cache, whose stock stays empty because a span names a cache as
 * its large_owner only when the cache is live (large_alloc, large_free_to_stock). */
ST_INLINE void *st__core_large_stock_alloc(size_t size) {
  st_tcache_t *tc = st__tls_tcache;
  st_span_t *span = st__spancache_take(&tc->spans, st__bytes_to_pages(size));
  if (span == NULL) return NULL;
  st__tcache_count(tc, ST_EVENT_large_allocs);
  st_store_relaxed(&span->xrequested, size);
  return st__span_start(span);
}

ST_HIDDEN size_t st__core_usable_size(const void *p, const char *fn);
/* st__core_usable_size of non-NULL p whose pagemap entry the caller has just looked up
 * (span, NULL for none): hardened mode's LARGE paths save the second lookup. */
ST_HIDDEN size_t st__core_usable_size_of(const void *p, st_span_t *span, const char *fn);
ST_HIDDEN int st__core_trim(void);
ST_HIDDEN void st__core_counters(st_core_counters *out);
ST_HIDDEN bool st__core_validate(void);
ST_HIDDEN size_t st__core_huge_threshold(void);

#endif
