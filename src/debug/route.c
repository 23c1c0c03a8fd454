/*
 * route.c — allocation and free in the debug routes (see debug.h).
 *
 * Order matters for Valgrind: a block is announced (MALLOCLIKE) only after the core has
 * finished writing into it, and withdrawn (FREELIKE) before the core writes its free-list
 * link into the first word, which is then made addressable again so the core's own list
 * operations are not reported. A program reading a freed block past its first word, or a
 * live block past its requested size (within the block's slack), is reported by memcheck;
 * reads into a neighbouring free block's first word are not.
 */
#include <string.h>

#include "base/valgrind.h"
#include "core/heap.h"
#include "core/pagemap.h"
#include "debug/debug.h"

void *st__debug_malloc(size_t size, size_t align, bool zero) {
  void *p = align == 0 ? st__core_malloc(size, false) : st__core_malloc_aligned(size, align);
  if (p == NULL) return NULL;
  if (zero) memset(p, 0, size);
  if (st__track_busy()) return p; /* the unwinder's own memory: neither recorded nor shown */
  ST_VG_MALLOCLIKE(p, size, zero);
  /* The block's slack past the request: only the core writes there (the free-list link
   * in the first word, which a block of size >= 8 covers). */
  size_t usable = st__core_usable_size(p, "malloc");
  if (usable > size && size >= sizeof(void *)) ST_VG_NOACCESS((char *)p + size, usable - size);
  st__track_add(p, size);
  return p;
}

void st__debug_free(void *p, st_span_t *span, const char *fn) {
  size_t size;
  if (st__track_remove(p, &size)) {
    ST_VG_FREELIKE(p);
    ST_VG_DEFINED(p, sizeof(void *));
  }
  st__core_free(p, span, fn);
}

void *st__debug_realloc(void *p, size_t size) {
  size_t old;
  if (!st__track_size(p, &old)) old = st__core_usable_size(p, "realloc");
  void *q = st__debug_malloc(size, 0, false);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  st__debug_free(p, st__pagemap_lookup(p), "realloc");
  return q;
}
