/*
 * hugecache.h — freed huge mappings kept for the next huge request.
 *
 * Owns: a few mappings that freed huge blocks left behind (start, length, when freed). The
 * huge layer serves its next request from one of them instead of a fresh mapping, whose
 * every page (every 2 MiB with transparent huge pages) costs a fault and the kernel's
 * zeroing. Raw mappings only: the huge layer drops a block's descriptor and pagemap entry
 * when it frees it and makes new ones when it reuses the mapping. Calls the os layer only.
 *
 * The rule that bounds it: cached memory never coexists with fresh memory. A layer about to
 * map memory (a huge block the cache cannot serve, a page-heap region) or to hand out pages
 * that are not resident (a clean page-heap span) first releases the whole cache, so strata
 * is never more resident than it would be had each huge block been unmapped at its free.
 * Besides: a mapping longer than STRATA_HUGE_CACHE_KB is unmapped at free, the cache holds
 * at most that much in all in ST_HUGECACHE_SLOTS mappings (the oldest leave first), each
 * leaves STRATA_PURGE_DELAY_MS after its free (checked whenever the page heaps or the huge
 * layer are used: there is no background thread), and st_trim releases everything.
 *
 * Lock: one leaf lock (callers may hold a shard lock); munmap runs after it is released.
 * A free racing another thread's mapping may leave both resident for that moment.
 */
#ifndef ST_CORE_HUGECACHE_H
#define ST_CORE_HUGECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

#define ST_HUGECACHE_SLOTS 4

/* Keeps the freed mapping [p, p + bytes), releasing the oldest ones to make room; false,
 * nothing kept, when the cache is off (STRATA_HUGE_CACHE_KB=0, STRATA_PURGE_DELAY_MS=0)
 * or the mapping is longer than it may hold. */
ST_HIDDEN bool st__hugecache_put(void *p, size_t bytes);
/* For a huge request of `bytes` on an `align` boundary: a cached mapping that starts on
 * the boundary, out of the cache, its length in *have: the shortest of at least `bytes`,
 * else the longest (the caller grows it), every other mapping being released then. NULL,
 * with the whole cache released, when no mapping starts on the boundary: the caller maps. */
ST_HIDDEN void *st__hugecache_take(size_t bytes, size_t align, size_t *have);
/* Unmaps every cached mapping; returns the bytes released. An atomic load when empty. */
ST_HIDDEN size_t st__hugecache_release_all(void);
/* Unmaps the mappings freed longer than the purge delay before `now` (st__os_now_ms). An
 * atomic load when none is due. */
ST_HIDDEN void st__hugecache_release_due(uint64_t now);
/* Bytes cached now (statistics). */
ST_HIDDEN size_t st__hugecache_bytes(void);
/* Whether a cached mapping starts at p: a free of p is a double free (diagnostics). */
ST_HIDDEN bool st__hugecache_holds(const void *p);
/* Fork support: the child keeps the cache (it inherits the mappings). */
ST_HIDDEN void st__hugecache_lock_for_fork(void);
ST_HIDDEN void st__hugecache_unlock_after_fork(void);

#endif
