/*
 * spancache.h — each thread's stock of freed LARGE spans of a few pages.
 *
 * Owns: the LARGE spans of ST_SPANCACHE_MIN_PAGES..ST_SPANCACHE_MAX_PAGES pages (blocks
 * up to 32 KiB) that a thread freed, handed out again by its next malloc of the same page
 * count without the page heap's lock and best-fit search. Blocks just above ST_SMALL_MAX
 * are whole pages rather than slab blocks because a slab span holds only 8 of them per
 * class and thread: their free blocks pinned most of the resident memory of multi-threaded
 * programs (docs/memory.md). The stock keeps their malloc/free about as cheap as a slab
 * refill. Spans of 1..2 pages are blocks of at most ST_SMALL_MAX bytes aligned beyond a
 * page (memalign): they serve later requests of that page count whose boundary their start
 * happens to lie on (a span aligned to 64 KiB serves every alignment up to 64 KiB).
 *
 * Bounds: at most ST_SPANCACHE_DEPTH spans per page count and ST_SPANCACHE_BUDGET_PAGES
 * pages per thread; a free past them goes to the page heap. The bounds were raised from 16
 * spans and 128 pages when blocks of 8..16 KiB became pages: with the old ones a quarter of
 * their frees missed the stock, and the page heap's lock and search cost `threads 20 1`
 * 5.7% more instructions in all (docs/memory.md). A malloc whose page count the stock lacks
 * takes a span one page longer, whole (the block's usable size is the span's): under random
 * sizes each page count's stock runs dry on its own while the next one holds spans, and a
 * page-heap round trip costs some 750 instructions. The longer blocks hold a page more at
 * the peak, which the budget gives back: 224 pages rather than 256 (docs/benchmarks.md
 * section 9). The stock goes back to the page heap at
 * st_trim (the calling thread's), when its thread exits, and in a forked child for every
 * thread that did not survive the fork; the child's own thread keeps its stock.
 *
 * A cached span stays LARGE with its pagemap entries (the page heap counts it in use);
 * `xcached` marks it free, so free/realloc/malloc_usable_size of it report a double free
 * and statistics count it as cached in threads. Only the owning thread touches the stock.
 */
#ifndef ST_CORE_SPANCACHE_H
#define ST_CORE_SPANCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/sizeclass.h"
#include "core/span.h"

#define ST_SPANCACHE_MIN_PAGES ((size_t)1)
#define ST_SPANCACHE_MAX_PAGES ((size_t)8)
#define ST_SPANCACHE_KINDS (ST_SPANCACHE_MAX_PAGES - ST_SPANCACHE_MIN_PAGES + 1)
#define ST_SPANCACHE_DEPTH 32
#define ST_SPANCACHE_BUDGET_PAGES 224 /* 896 KiB per thread */

_Static_assert(ST_SPANCACHE_MAX_PAGES > ST_SMALL_MAX / ST_PAGE_SIZE, "plain malloc uses the stock");

typedef struct st_spancache {
  uint32_t held_pages;                                      /* pages of the spans below */
  uint8_t count[ST_SPANCACHE_KINDS];                        /* spans per page count */
  st_span_t *spans[ST_SPANCACHE_KINDS][ST_SPANCACHE_DEPTH]; /* LIFO per page count */
} st_spancache_t;

ST_INLINE bool st__spancache_holds(const st_span_t *span) {
  return st_load_relaxed(&span->xcached) != 0;
}

/* Takes the span at index i of the stock of page count index k; the top of that stock
 * moves into its place. */
ST_INLINE st_span_t *st__spancache_remove(st_spancache_t *sc, size_t k, unsigned i) {
  st_span_t *span = sc->spans[k][i];
  sc->spans[k][i] = sc->spans[k][--sc->count[k]];
  sc->held_pages -= (uint32_t)span->pages;
  st_store_relaxed(&span->xcached, 0);
  return span;
}

/* A cached span of `pages` pages, else of pages + 1 (pages >= 1), or NULL. */
ST_INLINE st_span_t *st__spancache_take(st_spancache_t *sc, size_t pages) {
  size_t k = pages - ST_SPANCACHE_MIN_PAGES;
  if (k >= ST_SPANCACHE_KINDS) return NULL;
  if (sc->count[k] == 0 && (++k == ST_SPANCACHE_KINDS || sc->count[k] == 0)) return NULL;
  return st__spancache_remove(sc, k, sc->count[k] - 1u);
}

/* A cached span of exactly `pages` pages that starts on an `align` boundary (a power of
 * two above a page), the most recently cached first, or NULL. */
ST_HIDDEN st_span_t *st__spancache_take_aligned(st_spancache_t *sc, size_t pages, size_t align);

/* Keeps a freed LARGE span; false when it is not of a cached length or the stock is full. */
ST_INLINE bool st__spancache_put(st_spancache_t *sc, st_span_t *span) {
  size_t k = span->pages - ST_SPANCACHE_MIN_PAGES;
  if (k >= ST_SPANCACHE_KINDS || sc->count[k] == ST_SPANCACHE_DEPTH ||
      sc->held_pages + span->pages > ST_SPANCACHE_BUDGET_PAGES)
    return false;
  st_store_relaxed(&span->xcached, 1);
  span->zeroed = 0;
  st_store_relaxed(&span->xrequested, 0);
  sc->spans[k][sc->count[k]++] = span;
  sc->held_pages += (uint32_t)span->pages;
  return true;
}

/* Gives every cached span back to its home page heap. */
ST_HIDDEN void st__spancache_flush(st_spancache_t *sc);

#endif
