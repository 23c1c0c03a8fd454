/*
 * heap.h — a classic heap: one lock, its regions, and the backend that formats them.
 *
 * Owns: what every classic strategy shares, so a backend only lays out blocks: the lock,
 * the region table (finding the region of any pointer, diagnosing pointers in none), BIG
 * blocks mapped on their own, growth by whole arena regions and their return when empty
 * (one empty region is kept as a spare against map/unmap churn), realloc by move when the
 * backend cannot resize in place, statistics, validation and visits, and fork safety.
 * Callers (api/) check arguments and set errno: these return NULL without touching it.
 *
 * Lock order: the registry lock, then each heap's lock (fork takes them all in this order).
 */
#ifndef ST_CLASSIC_HEAP_H
#define ST_CLASSIC_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/list.h"
#include "base/lock.h"
#include "classic/backend.h"
#include "classic/region.h"
#include "strata.h"

typedef struct st_classic_heap {
  st_lock_t lock;
  const st_backend *backend; /* const after init */
  st_strategy strategy;      /* const after init */
  size_t limit_bytes;        /* const after init: 0 is no limit */
  const char *owner_name;    /* const after init: names the heap in diagnostics */
  st_region_table regions;   /* lock */
  st_region_t *spare;        /* lock: an empty arena region kept for the next growth */
  size_t live_bytes, peak_live_bytes, live_blocks, allocations; /* lock */
  st_list_t registry_link; /* registry lock: every registered heap, for fork */
  _Alignas(16) unsigned char state[ST_BACKEND_STATE_BYTES]; /* lock: the backend's */
} st_classic_heap_t;

/* The backend of a classic strategy; NULL for ST_STRATEGY_DEFAULT or out of range. */
ST_HIDDEN const st_backend *st__classic_backend_of(st_strategy strategy);

ST_HIDDEN void st__classic_init(st_classic_heap_t *h, st_strategy strategy, size_t limit_bytes,
                                const char *owner_name);
/* Puts h in the registry whose heaps the fork handlers lock (st__classic_fork_handlers_once).
 * A heap whose owner locks it around fork itself (the process heap: api/dispatch.c) stays
 * out of it. */
ST_HIDDEN void st__classic_register(st_classic_heap_t *h);
/* Unmaps every region (the heap's blocks die with it) and unregisters h (registered). */
ST_HIDDEN void st__classic_destroy(st_classic_heap_t *h);

/* size <= PTRDIFF_MAX; align a power of two. NULL when out of memory or over the limit. */
ST_HIDDEN void *st__classic_malloc(st_classic_heap_t *h, size_t size, size_t align, bool zero);
/* fn names the public function in diagnostics. p may be NULL (no-op); errno is kept. */
ST_HIDDEN void st__classic_free(st_classic_heap_t *h, void *p, const char *fn);
/* p != NULL, 0 < size <= PTRDIFF_MAX; NULL (p untouched) when out of memory. */
ST_HIDDEN void *st__classic_realloc(st_classic_heap_t *h, void *p, size_t size);
ST_HIDDEN size_t st__classic_usable_size(st_classic_heap_t *h, const void *p, const char *fn);
/* Whether p lies in one of h's regions (no diagnostic). */
ST_HIDDEN bool st__classic_owns(st_classic_heap_t *h, const void *p);
/* Gives the spare region back; true if memory was returned. */
ST_HIDDEN bool st__classic_trim(st_classic_heap_t *h);
ST_HIDDEN bool st__classic_validate(st_classic_heap_t *h);
ST_HIDDEN void st__classic_visit(st_classic_heap_t *h, st_heap_visitor fn, void *arg);
ST_HIDDEN void st__classic_stats(st_classic_heap_t *h, st_heap_stats *out);

/* Registers the fork handlers (once per process; may allocate, so call it unlocked). */
ST_HIDDEN void st__classic_fork_handlers_once(void);

#endif
