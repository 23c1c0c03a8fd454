/*
 * debug.h — the debug layer between the api and the core (docs/debugging.md).
 *
 * Owns: the routes every allocation takes when STRATA_LEAKS=1, STRATA_HARDENED=1 or the
 * process runs under Valgrind's memcheck (decided once, at init: st__thread_slow_paths_only). Each thread then stays on
 * the empty sentinel cache, so the inline fast paths always fall into the api's slow
 * paths, which call the functions below: they record or forget the block (with its call
 * stack for leak reports) and tell Valgrind about it. When neither is on, the api never
 * calls them and the debug layer costs one load and branch on slow paths only.
 * Also owns the statistics reports, the heap picture and the reports at exit.
 */
#ifndef ST_DEBUG_DEBUG_H
#define ST_DEBUG_DEBUG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include "base/macros.h"
#include "core/span.h"
#include "core/thread.h"
#include "strata.h"

/* Whether the api must route through the functions below. One load: the allocations made
 * before the core's initialisation (the very first one) take the plain route. */
ST_INLINE bool st__debug_routing(void) { return st__thread_slow_paths_only(); }

/* align: 0 for malloc's alignment; zero: calloc. NULL when out of memory. */
ST_HIDDEN void *st__debug_malloc(size_t size, size_t align, bool zero);
/* p != NULL; span: the pagemap's answer or NULL. */
ST_HIDDEN void st__debug_free(void *p, st_span_t *span, const char *fn);
/* p != NULL, size != 0: always moves the block, so Valgrind and the record see a new one. */
ST_HIDDEN void *st__debug_realloc(void *p, size_t size);

/* The size the program may use of block p: its request in hardened mode. */
ST_HIDDEN size_t st__debug_usable_size(const void *p, const char *fn);

/* Hardened mode (harden.c): on with STRATA_HARDENED=1, off under memcheck (whose own
 * checks need the blocks as the program asked for them). Fixed at init. */
ST_HIDDEN bool st__harden_enabled(void);
/* A block with its canary, size word and (above ST_SMALL_MAX) guard page; NULL when out
 * of memory. align: 0 for malloc's. */
ST_HIDDEN void *st__harden_malloc(size_t size, size_t align, bool zero);
/* Checks the block (invalid pointer, double free, overflow), fills it and quarantines it. */
ST_HIDDEN void st__harden_free(void *p, st_span_t *span, const char *fn);
/* The common cases of the two above, which the api's slow paths try first when
 * st__thread_hardened_only() (one branch, no dispatch): a slab block or a LARGE block of
 * up to 256 KiB for a thread that has its cache, or NULL (also when out of memory); the
 * free of a slab or LARGE block into the thread's quarantine, or false (span: the
 * pagemap's answer, &st__pagemap.none included; p may be NULL). Either declines, having
 * changed nothing, every case the general entry points above must see: the caller then
 * takes the full route (which also reports a malloc that failed here). */
ST_HIDDEN void *st__harden_malloc_small(size_t size);
ST_HIDDEN bool st__harden_free_small(void *p, st_span_t *span);
/* The requested size of live block p, after the same checks as free. */
ST_HIDDEN size_t st__harden_size(const void *p, const char *fn);
/* p != NULL, 0 < size <= PTRDIFF_MAX: the checks of free, then in place when the block
 * allows (its canary and size word moved) or moved, the old block freed as by free. */
ST_HIDDEN void *st__harden_realloc(void *p, size_t size);

/* What the api calls when st__debug_routing(): hardened mode alone (no records to keep)
 * goes straight to harden.c, a call less per malloc and per free than through route.c. */
ST_INLINE void *st__debug_route_malloc(size_t size, size_t align, bool zero) {
  return st__thread_hardened_only() ? st__harden_malloc(size, align, zero)
                                    : st__debug_malloc(size, align, zero);
}

ST_INLINE void st__debug_route_free(void *p, st_span_t *span, const char *fn) {
  if (st__thread_hardened_only()) st__harden_free(p, span, fn);
  else st__debug_free(p, span, fn);
}

ST_INLINE void *st__debug_route_realloc(void *p, size_t size) {
  return st__thread_hardened_only() ? st__harden_realloc(p, size) : st__debug_realloc(p, size);
}

/* Block records (track.c). */
ST_HIDDEN bool st__track_enabled(void);
/* Records a block with the calling thread's stack (when leaks are on). */
ST_HIDDEN void st__track_add(void *p, size_t size);
/* Forgets a block; returns its requested size, or false when it was not recorded. */
ST_HIDDEN bool st__track_remove(void *p, size_t *size);
ST_HIDDEN bool st__track_size(const void *p, size_t *size);
/* Requested bytes of live slab blocks (<= ST_SMALL_MAX) and whether every block is recorded. */
ST_HIDDEN void st__track_requests(size_t *small_requested, size_t *tracked);
/* Whether the calling thread is inside the debug layer (nested allocations by the unwinder
 * or symbolizer go through the plain core and are not recorded). */
ST_HIDDEN bool st__track_busy(void);

/* st_heap_dump of the core's heap (heapdump.c; api/dispatch.c routes st_heap_dump). */
ST_HIDDEN int st__debug_heap_dump(FILE *file, st_dump_format format);

/* Statistics snapshot: the core's figures plus the tracked requests (stats_report.c). */
ST_HIDDEN void st__debug_stats(st_stats *out);

#endif
