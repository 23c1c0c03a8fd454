/*
 * api.c — the prefixed public API (st_*): argument checking and errno, then the backend
 * the process runs on (dispatch.h).
 *
 * Semantics follow glibc 2.36 (measured, and checked by tests/api): impossible sizes give
 * ENOMEM; memalign/aligned_alloc round a non-power-of-two alignment up and reject one
 * above SIZE_MAX/2+1 with EINVAL; posix_memalign returns its error and leaves errno
 * alone; realloc(p, 0) frees p and returns NULL; free never changes errno.
 */
#include "api/api.h"

#include <errno.h>
#include <stdint.h>

#include "api/dispatch.h"
#include "debug/debug.h"
#include "os/os.h"
#include "strata.h"

#define ST_ALIAS(target) __attribute__((alias(#target), visibility("default")))

static void *out_of_memory(void) {
  errno = ENOMEM;
  return NULL;
}

void *st__api_malloc_slow(size_t size) {
  /* Hardened mode alone keeps every thread on the sentinel, so each malloc lands here: its
   * common case goes straight to the debug layer, skipping the pop below and the dispatch
   * (both of which it would only fail or pass through). */
  if (ST_UNLIKELY(st__thread_hardened_only())) {
    void *block = st__harden_malloc_small(size);
    if (ST_LIKELY(block != NULL)) return block;
  }
  if (size <= ST_SMALL_MAX) { /* sizes above the class table still pop without a call */
    st_tcache_t *tc = st__tls_tcache;
    unsigned cls = st__size_to_class(size);
    void *block = st__tcache_pop(tc, cls);
    if (block != NULL) return block;
    /* A live cache is the core's, on the plain route (a classic strategy or a debug route
     * keeps the thread on a sentinel, which is never live): its refill needs none of the
     * layers in between (the dispatch, st__thread_cache, a second pop). */
    if (tc->live) return (block = st__tcache_alloc_slow(tc, cls)) != NULL ? block : out_of_memory();
  } else if (size <= st__pages_to_bytes(ST_SPANCACHE_MAX_PAGES)) { /* the thread's stock */
    void *block = st__core_large_stock_alloc(size);
    if (block != NULL) return block;
  }
  if (ST_UNLIKELY(size > PTRDIFF_MAX)) return out_of_memory();
  void *p = st__dispatch_malloc(size, false);
  return p != NULL ? p : out_of_memory();
}

void st__api_free_slow(void *p, st_span_t *span) {
  if (ST_UNLIKELY(st__thread_hardened_only()) && st__harden_free_small(p, span)) return;
  if (p != NULL) st__dispatch_free(p, span != &st__pagemap.none ? span : NULL, "free");
}

void *st__api_calloc(size_t count, size_t size) {
  size_t total;
  if (ST_UNLIKELY(__builtin_mul_overflow(count, size, &total) || total > PTRDIFF_MAX))
    return out_of_memory();
  void *p;
  if (total <= ST_SMALL_FAST_MAX) {
    p = st__api_malloc(total);
    if (p != NULL) __builtin_memset(p, 0, total);
    return p;
  }
  p = st__dispatch_malloc(total, true);
  return p != NULL ? p : out_of_memory();
}

void *st__api_realloc(void *p, size_t size) {
  if (p == NULL) return st__api_malloc(size);
  if (size == 0) {
    st__api_free(p);
    return NULL;
  }
  if (ST_UNLIKELY(size > PTRDIFF_MAX)) return out_of_memory();
  void *q = st__dispatch_realloc(p, size);
  return q != NULL ? q : out_of_memory();
}

void *st__api_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (ST_UNLIKELY(__builtin_mul_overflow(count, size, &total))) return out_of_memory();
  return st__api_realloc(p, total);
}

void *st__api_memalign(size_t alignment, size_t size) {
  if (alignment <= ST_MIN_ALIGN) return st__api_malloc(size);
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  alignment = st_pow2_ceil(alignment);
  if (ST_UNLIKELY(size > PTRDIFF_MAX || alignment > PTRDIFF_MAX)) return out_of_memory();
  void *p = st__dispatch_malloc_aligned(size, alignment);
  return p != NULL ? p : out_of_memory();
}

int st__api_posix_memalign(void **out, size_t alignment, size_t size) {
  if (!st_is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  int saved = errno;
  void *p = st__api_memalign(alignment, size);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

void *st__api_valloc(size_t size) { return st__api_memalign(st__os_page_size(), size); }

void *st__api_pvalloc(size_t size) {
  size_t page = st__os_page_size();
  if (size > PTRDIFF_MAX) return out_of_memory();
  return st__api_memalign(page, size == 0 ? page : st_align_up(size, page));
}

size_t st__api_usable_size(const void *p) { return st__dispatch_usable_size(p, "malloc_usable_size"); }

void st__api_free_sized(void *p, size_t size) {
  ST_UNUSED(size);
  st__api_free(p);
}

void st__api_free_aligned_sized(void *p, size_t alignment, size_t size) {
  ST_UNUSED(alignment);
  ST_UNUSED(size);
  st__api_free(p);
}

int st__api_trim(size_t pad) {
  ST_UNUSED(pad);
  return st__dispatch_trim();
}

/* ---- the public names ---------------------------------------------------------------- */

void *st_malloc(size_t size) { return st__api_malloc(size); }
void st_free(void *p) { st__api_free(p); }
void *st_calloc(size_t count, size_t size) ST_ALIAS(st__api_calloc);
void *st_realloc(void *p, size_t size) ST_ALIAS(st__api_realloc);
void *st_reallocarray(void *p, size_t count, size_t size) ST_ALIAS(st__api_reallocarray);
void st_free_sized(void *p, size_t size) ST_ALIAS(st__api_free_sized);
void st_free_aligned_sized(void *p, size_t alignment, size_t size) ST_ALIAS(st__api_free_aligned_sized);
void *st_aligned_alloc(size_t alignment, size_t size) ST_ALIAS(st__api_memalign);
void *st_memalign(size_t alignment, size_t size) ST_ALIAS(st__api_memalign);
int st_posix_memalign(void **out, size_t alignment, size_t size) ST_ALIAS(st__api_posix_memalign);
void *st_valloc(size_t size) ST_ALIAS(st__api_valloc);
void *st_pvalloc(size_t size) ST_ALIAS(st__api_pvalloc);
size_t st_usable_size(const void *p) ST_ALIAS(st__api_usable_size);
int st_trim(size_t pad) ST_ALIAS(st__api_trim);

void st_core_counters_get(st_core_counters *out) { st__core_counters(out); }

int st_heap_validate(void) { return st__dispatch_validate() ? 0 : -1; }
