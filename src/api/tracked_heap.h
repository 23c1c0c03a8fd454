/*
 * tracked_heap.h — the heaps st_heap_new makes for ST_STRATEGY_DEFAULT: blocks of the
 * process's own allocator (the production allocator, or the classic strategy the process
 * runs on), each linked into its heap's list so the heap can visit them and free them all
 * at destruction (docs/design.md, "First-class heaps").
 *
 * Owns: the per-block header and the list. Not the memory: every block is one allocation
 * of the malloc family (api.h), so it takes the production allocator's fast paths and
 * thread caches and is seen by the debug layer (leak reports, statistics).
 *
 *   allocation: [ padding | tracked_block header (48 bytes) | payload ........ ]
 *               ^ base      offset bytes from base to payload ^ (what the caller gets)
 *
 * Lock: each heap's lock guards its list and counters only; it is never held across a call
 * into the allocator, so it nests inside nothing and nothing nests inside it.
 */
#ifndef ST_API_TRACKED_HEAP_H
#define ST_API_TRACKED_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/list.h"
#include "base/lock.h"
#include "strata.h"

typedef struct st_tracked_heap {
  st_lock_t lock;
  size_t limit_bytes;  /* const after init: most live bytes (headers included); 0 no limit */
  st_list_t blocks;    /* lock: live blocks, newest first */
  size_t live_bytes, peak_live_bytes, live_blocks, allocations; /* lock: usable bytes */
  size_t held_bytes, peak_held_bytes; /* lock: bytes of the allocations, headers included */
  st_list_t registry_link; /* registry lock (tracked_heap.c): every heap, for fork */
} st_tracked_heap_t;

ST_HIDDEN void st__tracked_init(st_tracked_heap_t *h, size_t limit_bytes);
/* Frees every live block. */
ST_HIDDEN void st__tracked_destroy(st_tracked_heap_t *h);
/* size <= PTRDIFF_MAX, align a power of two; NULL (errno untouched by contract: the caller
 * sets it) when out of memory or over the limit. */
ST_HIDDEN void *st__tracked_malloc(st_tracked_heap_t *h, size_t size, size_t align, bool zero);
/* fn names the public function in diagnostics; p NULL is a no-op; errno is kept. */
ST_HIDDEN void st__tracked_free(st_tracked_heap_t *h, void *p, const char *fn);
/* p != NULL, 0 < size <= PTRDIFF_MAX; NULL (p untouched) when out of memory. */
ST_HIDDEN void *st__tracked_realloc(st_tracked_heap_t *h, void *p, size_t size);
ST_HIDDEN size_t st__tracked_usable_size(st_tracked_heap_t *h, const void *p, const char *fn);
ST_HIDDEN void st__tracked_visit(st_tracked_heap_t *h, st_heap_visitor fn, void *arg);
ST_HIDDEN void st__tracked_stats(st_tracked_heap_t *h, st_heap_stats *out);
ST_HIDDEN bool st__tracked_validate(st_tracked_heap_t *h);

#endif
