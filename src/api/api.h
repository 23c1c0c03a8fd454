/*
 * api.h — the malloc and free fast paths, inlined into both the st_* functions (api.c)
 * and the libc names (override.c), plus the argument-checking entry points they share.
 *
 * Owns: argument checking and errno for the whole malloc family. The fast paths below are
 * the core's thread-cache pop and push (see core/tcache.h for why they need no init check);
 * everything else goes to the backend the process runs on (dispatch.h).
 */
#ifndef ST_API_API_H
#define ST_API_API_H

#include <stddef.h>

#include "base/macros.h"
#include "base/thread_pointer.h"
#include "core/pagemap.h"
#include "core/thread.h"

ST_HIDDEN ST_NOINLINE void *st__api_malloc_slow(size_t size);
/* span: the lookup's answer, &st__pagemap.none included. */
ST_HIDDEN ST_NOINLINE void st__api_free_slow(void *p, st_span_t *span);
ST_HIDDEN void *st__api_calloc(size_t count, size_t size);
ST_HIDDEN void *st__api_realloc(void *p, size_t size);
ST_HIDDEN void *st__api_reallocarray(void *p, size_t count, size_t size);
ST_HIDDEN void *st__api_memalign(size_t alignment, size_t size);
ST_HIDDEN int st__api_posix_memalign(void **out, size_t alignment, size_t size);
ST_HIDDEN void *st__api_valloc(size_t size);
ST_HIDDEN void *st__api_pvalloc(size_t size);
ST_HIDDEN size_t st__api_usable_size(const void *p);
ST_HIDDEN void st__api_free_sized(void *p, size_t size);
ST_HIDDEN void st__api_free_aligned_sized(void *p, size_t alignment, size_t size);
ST_HIDDEN int st__api_trim(size_t pad);

/* Pop from the current span of the size's class. */
ST_INLINE void *st__api_malloc(size_t size) {
  if (ST_LIKELY(size <= ST_SMALL_FAST_MAX)) {
    st_tcache_t *tc = st__tls_tcache;
    void *block = st__tcache_pop(tc, st__tcache_small_class(tc, size));
    if (ST_LIKELY(block != NULL)) return block;
  }
  return st__api_malloc_slow(size);
}

/* Push onto the span's free list when the calling thread may free into the span without
 * the slow path (span.h: xfast_thread), p starts one of its blocks and the block does not
 * carry the free mark; the first two tests are one compare (st__span_fast_thread_for).
 * Everything else takes the slow path: foreign pointers and NULL (no thread owns
 * st__pagemap.none, the lookup's answer for them), interior pointers, and a marked block
 * (told apart from a program that stored the mark's value, span.h). */
ST_INLINE void st__api_free(void *p) {
  st_span_t *span = st__pagemap_lookup_or_none(p);
  st_block_t *block = p;
  if (ST_LIKELY(st_is_thread_pointer(st__span_fast_thread_for(span, (uintptr_t)p)) &&
                block->key != st__block_key(span))) {
    block->key = st__block_key(span);
    block->next = span->free;
    span->free = block;
    if (ST_UNLIKELY(st__span_release_one(span))) st__tcache_retire(st__tls_tcache, span);
    return;
  }
  st__api_free_slow(p, span);
}

#endif
