/*
 * heaps.c — first-class heaps (st_heap_*): argument checking and errno over classic heaps.
 *
 * Owns: the public heap object. A heap is one classic heap (classic/heap.h) in a mapping of
 * its own, so creating one allocates nothing from the process's malloc. Its blocks follow
 * the malloc family's rules (api.c): impossible sizes give ENOMEM, bad alignments EINVAL,
 * realloc(p, 0) frees p and returns NULL.
 */
#include <errno.h>
#include <stdint.h>

#include "api/dispatch.h"
#include "base/check.h"
#include "os/os.h"
#include "strata.h"

#define HEAP_MAGIC 0x5354484541503031ull /* "STHEAP01" */

struct st_heap {
  uint64_t magic;            /* const: HEAP_MAGIC while the heap lives */
  st_classic_heap_t classic; /* its own lock */
};

static size_t heap_bytes(void) { return st_align_up(sizeof(struct st_heap), st__os_page_size()); }

static void *fail(int error) {
  errno = error;
  return NULL;
}

static st_classic_heap_t *classic_of(st_heap_t *heap, const char *fn) {
  ST_CHECK(heap != NULL && heap->magic == HEAP_MAGIC, "%s(): invalid heap %p", fn, (void *)heap);
  return &heap->classic;
}

st_heap_t *st_heap_new(const st_heap_options *options) {
  st_heap_options o = {ST_HEAP_OPTIONS_VERSION, ST_STRATEGY_SEGREGATED, 0};
  if (options != NULL) {
    if (options->version != ST_HEAP_OPTIONS_VERSION || st_strategy_name(options->strategy) == NULL)
      return fail(EINVAL);
    o = *options;
    if (o.strategy == ST_STRATEGY_DEFAULT) o.strategy = ST_STRATEGY_SEGREGATED;
  }
  st_heap_t *heap = st__os_map_aligned(heap_bytes(), 1);
  if (heap == NULL) return fail(ENOMEM);
  heap->magic = HEAP_MAGIC;
  st__classic_init(&heap->classic, o.strategy, o.limit_bytes, "this heap");
  st__classic_register(&heap->classic);
  st__classic_fork_handlers_once();
  return heap;
}

void st_heap_destroy(st_heap_t *heap) {
  if (heap == NULL) return;
  st__classic_destroy(classic_of(heap, "st_heap_destroy"));
  heap->magic = 0;
  st__os_unmap(heap, heap_bytes());
}

static void *heap_alloc(st_heap_t *heap, size_t size, size_t align, bool zero, const char *fn) {
  st_classic_heap_t *h = classic_of(heap, fn);
  if (size > PTRDIFF_MAX) return fail(ENOMEM);
  void *p = st__classic_malloc(h, size, align, zero);
  return p != NULL ? p : fail(ENOMEM);
}

void *st_heap_malloc(st_heap_t *heap, size_t size) {
  return heap_alloc(heap, size, ST_MIN_ALIGN, false, "st_heap_malloc");
}

void *st_heap_calloc(st_heap_t *heap, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return fail(ENOMEM);
  return heap_alloc(heap, total, ST_MIN_ALIGN, true, "st_heap_calloc");
}

void *st_heap_aligned_alloc(st_heap_t *heap, size_t alignment, size_t size) {
  if (!st_is_pow2(alignment)) return fail(EINVAL);
  if (alignment > PTRDIFF_MAX) return fail(ENOMEM);
  return heap_alloc(heap, size, alignment, false, "st_heap_aligned_alloc");
}

void *st_heap_realloc(st_heap_t *heap, void *ptr, size_t size) {
  st_classic_heap_t *h = classic_of(heap, "st_heap_realloc");
  if (ptr == NULL) return st_heap_malloc(heap, size);
  if (size == 0) {
    st__classic_free(h, ptr, "st_heap_realloc");
    return NULL;
  }
  if (size > PTRDIFF_MAX) return fail(ENOMEM);
  void *q = st__classic_realloc(h, ptr, size);
  return q != NULL ? q : fail(ENOMEM);
}

void st_heap_free(st_heap_t *heap, void *ptr) {
  st__classic_free(classic_of(heap, "st_heap_free"), ptr, "st_heap_free");
}

size_t st_heap_usable_size(st_heap_t *heap, const void *ptr) {
  return st__classic_usable_size(classic_of(heap, "st_heap_usable_size"), ptr,
                                 "st_heap_usable_size");
}

void st_heap_visit(st_heap_t *heap, st_heap_visitor fn, void *arg) {
  st__classic_visit(classic_of(heap, "st_heap_visit"), fn, arg);
}

void st_heap_stats_get(st_heap_t *heap, st_heap_stats *out) {
  if (heap == NULL)
    st__dispatch_process_stats(out);
  else
    st__classic_stats(classic_of(heap, "st_heap_stats_get"), out);
}

int st_heap_check(st_heap_t *heap) {
  return st__classic_validate(classic_of(heap, "st_heap_check")) ? 0 : -1;
}
