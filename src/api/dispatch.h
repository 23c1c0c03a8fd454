/*
 * dispatch.h — the run-time choice of the backend behind the malloc family.
 *
 * Owns: which strategy serves the process (STRATA_STRATEGY, decided once, at the first
 * request that reaches a slow path) and the routing of every slow-path request to the core
 * or to the process's classic heap. The inline fast paths in api.h never see this: while a
 * classic strategy runs, no thread gets a cache (threads keep the empty sentinel, so every
 * malloc falls through to st__api_malloc_slow) and no block is in the pagemap (so every
 * free reaches st__api_free_slow). The core pays one load and one predictable branch per
 * slow-path call. With the core, a debug mode (STRATA_LEAKS, memcheck: src/debug/) puts its
 * wrappers in front of it the same way; the classic strategies run without them (leak
 * tracking applies to the default strategy).
 */
#ifndef ST_API_DISPATCH_H
#define ST_API_DISPATCH_H

#include "base/atomics.h"
#include "classic/heap.h"
#include "core/heap.h"
#include "debug/debug.h"

enum { ST_DISPATCH_UNDECIDED, ST_DISPATCH_CORE, ST_DISPATCH_CLASSIC };

ST_HIDDEN extern st_atomic_int st__dispatch_xmode;

/* Decides (once) and returns the process's classic heap, or NULL when the core serves. */
ST_HIDDEN ST_NOINLINE st_classic_heap_t *st__dispatch_classic_slow(void);

/* True when p is known to lie outside the memory the process's allocator manages. A classic
 * heap knows all of its regions; the core's pagemap knows only some pages of a large span,
 * so with the core this is true only for a pointer on no span's page. Never diagnoses. */
ST_HIDDEN bool st__dispatch_foreign(const void *p);

/* The process heap's statistics; all zero but the strategy when the core serves. */
ST_HIDDEN void st__dispatch_process_stats(st_heap_stats *out);

/* Acquire: a thread that reads CORE then reads the core's debug flags, set before it. */
ST_INLINE st_classic_heap_t *st__dispatch_classic(void) {
  if (ST_LIKELY(st_load_acquire(&st__dispatch_xmode) == ST_DISPATCH_CORE)) return NULL;
  return st__dispatch_classic_slow();
}

ST_INLINE void *st__dispatch_malloc(size_t size, bool zero) {
  st_classic_heap_t *h = st__dispatch_classic();
  if (h != NULL) return st__classic_malloc(h, size, ST_MIN_ALIGN, zero);
  return ST_UNLIKELY(st__debug_routing()) ? st__debug_route_malloc(size, 0, zero)
                                          : st__core_malloc(size, zero);
}

ST_INLINE void *st__dispatch_malloc_aligned(size_t size, size_t align) {
  st_classic_heap_t *h = st__dispatch_classic();
  if (h != NULL) return st__classic_malloc(h, size, align, false);
  return ST_UNLIKELY(st__debug_routing()) ? st__debug_route_malloc(size, align, false)
                                          : st__core_malloc_aligned(size, align);
}

ST_INLINE void st__dispatch_free(void *p, st_span_t *span, const char *fn) {
  st_classic_heap_t *h = st__dispatch_classic();
  if (h != NULL)
    st__classic_free(h, p, fn);
  else if (ST_UNLIKELY(st__debug_routing()))
    st__debug_route_free(p, span, fn);
  else
    st__core_free(p, span, fn);
}

ST_INLINE void *st__dispatch_realloc(void *p, size_t size) {
  st_classic_heap_t *h = st__dispatch_classic();
  if (h != NULL) return st__classic_realloc(h, p, size);
  return ST_UNLIKELY(st__debug_routing()) ? st__debug_route_realloc(p, size) : st__core_realloc(p, size);
}

ST_INLINE size_t st__dispatch_usable_size(const void *p, const char *fn) {
  st_classic_heap_t *h = st__dispatch_classic();
  if (h != NULL) return st__classic_usable_size(h, p, fn);
  return ST_UNLIKELY(st__debug_routing()) ? st__debug_usable_size(p, fn) : st__core_usable_size(p, fn);
}

ST_INLINE int st__dispatch_trim(void) {
  st_classic_heap_t *h = st__dispatch_classic();
  return h != NULL ? st__classic_trim(h) : st__core_trim();
}

ST_INLINE bool st__dispatch_validate(void) {
  st_classic_heap_t *h = st__dispatch_classic();
  return h != NULL ? st__classic_validate(h) : st__core_validate();
}

#endif
