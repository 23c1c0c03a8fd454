/*
 * stats.h — the core's figures for the statistics (st_stats, include/strata.h).
 *
 * Owns: gathering a snapshot on demand: the event counters of every thread merged with the
 * process-wide set, and the live, cached and free memory computed from span metadata
 * (used counts, capacities, page heap lists), so nothing is added to the fast paths.
 * Does not own: requests of small blocks (known to the debug layer only when it tracks
 * blocks) and the reports (debug/stats_report.c).
 *
 * Exactness: event counts and page-heap figures are exact at the moment their lock is
 * held. A slab span's `used` counts blocks that other threads freed until its owner
 * collects them, so live_blocks and small_live_bytes may run ahead of the program's view
 * by the frees still in flight between threads; used counts of spans owned by running
 * threads are read (atomically, one span at a time) while their owners run: a snapshot,
 * not an atomic one.
 */
#ifndef ST_CORE_STATS_H
#define ST_CORE_STATS_H

#include "core/span.h"
#include "core/tcache.h"
#include "strata.h"

/* Fills *out completely (small_requested_bytes and requests_tracked stay 0). Takes the
 * registry lock, then every page heap lock: refills of other threads wait meanwhile. */
ST_HIDDEN void st__core_stats(st_stats *out);

/* Calls fn on every span with every page heap locked (see st__pagemap_for_each_span). */
ST_HIDDEN void st__core_for_each_span(void (*fn)(st_span_t *span, void *arg), void *arg);

/* For the heap picture: is_free[i] = 1 when block i of the slab is on a free list, 2 when
 * it was never carved, else 0 (live); cap = min(capacity, room in is_free); every page heap
 * lock held. Exact (true) for the spans of `self` (the calling thread's cache, or NULL)
 * and for spans no thread owns, which rest under the locks. The lists and blocks of a
 * span another running thread owns are that thread's to change, so only its count is
 * read: the first blocks show live, as many as it holds, the rest free (false). */
ST_HIDDEN bool st__core_slab_free_map(const st_span_t *span, const st_tcache_t *self, uint8_t *is_free,
                                      uint32_t cap);

#endif
