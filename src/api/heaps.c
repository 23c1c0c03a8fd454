/*
 * heaps.c — first-class heaps (st_heap_*): argument checking and errno over classic heaps
 * and default-strategy heaps.
 *
 * Owns: the public heap object, in a mapping of its own, so creating one allocates nothing
 * from the process's malloc. A heap is either one classic heap (classic/heap.h) or, for
 * ST_STRATEGY_DEFAULT, a tracked heap (api/tracked_heap.h) whose blocks the process's own
 * allocator serves. Its blocks follow the malloc family's rules (api.c): impossible sizes
 * give ENOMEM, bad alignments EINVAL, realloc(p, 0) frees p and returns NULL.
 */
#include <errno.h>
#include <stdint.h>

#include "api/dispatch.h"
#include "api/tracked_heap.h"
#include "base/check.h"
#include "os/os.h"
#include "strata.h"

#define HEAP_MAGIC 0x5354484541503031ull /* "STHEAP01" */

struct st_heap {
  uint64_t magic;            /* const: HEAP_MAGIC while the heap lives */
  bool tracked;              /* const: the default strategy (tracked), else classic */
  st_tracked_heap_t tracked_heap; /* its own lock */
  st_classic_heap_t classic;      /* its own lock */
};

static size_t heap_bytes(void) { return st_align_up(sizeof(struct st_heap), st__os_page_size()); }

static void *fail(int error) {
  errno = error;
  return NULL;
}

static st_heap_t *checked(st_heap_t *heap, const char *fn) {
  ST_CHECK(heap != NULL && heap->magic == HEAP_MAGIC, "%s(): invalid heap %p", fn, (void *)heap);
  return heap;
}

st_heap_t *st_heap_new(const st_heap_options *options) {
  st_heap_options o = {ST_HEAP_OPTIONS_VERSION, ST_STRATEGY_DEFAULT, 0};
  if (options != NULL) {
    if (options->version != ST_HEAP_OPTIONS_VERSION || st_strategy_name(options->strategy) == NULL)
      return fail(EINVAL);
    o = *options;
  }
  st_heap_t *heap = st__os_map_aligned(heap_bytes(), 1);
  if (heap == NULL) return fail(ENOMEM);
  heap->magic = HEAP_MAGIC;
  heap->tracked = o.strategy == ST_STRATEGY_DEFAULT;
  if (heap->tracked) {
    st__tracked_init(&heap->tracked_heap, o.limit_bytes);
    return heap;
  }
  st__classic_init(&heap->classic, o.strategy, o.limit_bytes, "this heap");
  st__classic_register(&heap->classic);
  st__classic_fork_handlers_once();
  return heap;
}

void st_heap_destroy(st_heap_t *heap) {
  if (heap == NULL) return;
  if (checked(heap, "st_heap_destroy")->tracked)
    st__tracked_destroy(&heap->tracked_heap);
  else
    st__classic_destroy(&heap->classic);
  heap->magic = 0;
  st__os_unmap(heap, heap_bytes());
}

static void *heap_alloc(st_heap_t *heap, size_t size, size_t align, bool zero, const char *fn) {
  checked(heap, fn);
  if (size > PTRDIFF_MAX) return fail(ENOMEM);
  void *p = heap->tracked ? st__tracked_malloc(&heap->tracked_heap, size, align, zero)
                          : st__classic_malloc(&heap->classic, size, align, zero);
  return p != NULL ? p : fail(ENOMEM);
}

static void heap_free(st_heap_t *heap, void *ptr, const char *fn) {
  if (checked(heap, fn)->tracked)
    st__tracked_free(&heap->tracked_heap, ptr, fn);
  else
    st__classic_free(&heap->classic, ptr, fn);
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
  checked(heap, "st_heap_realloc");
  if (ptr == NULL) return st_heap_malloc(heap, size);
  if (size == 0) {
    heap_free(heap, ptr, "st_heap_realloc");
    return NULL;
  }
  if (size > PTRDIFF_MAX) return fail(ENOMEM);
  void *q = heap->tracked ? st__tracked_realloc(&heap->tracked_heap, ptr, size)
                          : st__classic_realloc(&heap->classic, ptr, size);
  return q != NULL ? q : fail(ENOMEM);
}

void st_heap_free(st_heap_t *heap, void *ptr) { heap_free(heap, ptr, "st_heap_free"); }

size_t st_heap_usable_size(st_heap_t *heap, const void *ptr) {
  const char *fn = "st_heap_usable_size";
  return checked(heap, fn)->tracked ? st__tracked_usable_size(&heap->tracked_heap, ptr, fn)
                                    : st__classic_usable_size(&heap->classic, ptr, fn);
}

void st_heap_visit(st_heap_t *heap, st_heap_visitor fn, void *arg) {
  if (checked(heap, "st_heap_visit")->tracked)
    st__tracked_visit(&heap->tracked_heap, fn, arg);
  else
    st__classic_visit(&heap->classic, fn, arg);
}

void st_heap_stats_get(st_heap_t *heap, st_heap_stats *out) {
  if (heap == NULL)
    st__dispatch_process_stats(out);
  else if (checked(heap, "st_heap_stats_get")->tracked)
    st__tracked_stats(&heap->tracked_heap, out);
  else
    st__classic_stats(&heap->classic, out);
}

int st_heap_check(st_heap_t *heap) {
  bool ok = checked(heap, "st_heap_check")->tracked ? st__tracked_validate(&heap->tracked_heap)
                                                    : st__classic_validate(&heap->classic);
  return ok ? 0 : -1;
}
