/*
 * route.c — allocation and free in the debug routes (see debug.h).
 *
 * Order matters for Valgrind: a block is announced (MALLOCLIKE) only after the core has
 * finished writing into it, and withdrawn (FREELIKE) before the core writes its free-list
 * link and free mark into the first two words (span.h), which are then made addressable
 * again so the core's own list operations are not reported. A program reading a freed
 * block past its first two words, or a live block past its requested size (within the
 * block's slack), is reported by memcheck; reads into a neighbouring free block's first
 * two words are not.
 */
#include <string.h>

#include "base/valgrind.h"
#include "core/heap.h"
#include "core/pagemap.h"
#include "debug/debug.h"

/* Hardened blocks carry their checks (and are zeroed there); the others come plain from
 * the core and are zeroed once announced: before MALLOCLIKE, memcheck would report the
 * zeroing of bytes an earlier, smaller block left unaddressable. */
void *st__debug_malloc(size_t size, size_t align, bool zero) {
  if (st__thread_hardened_only()) return st__harden_malloc(size, align, zero); /* no record */
  bool hardened = st__harden_enabled();
  void *p = hardened      ? st__harden_malloc(size, align, zero)
            : align == 0 ? st__core_malloc(size, false)
                         : st__core_malloc_aligned(size, align);
  if (p == NULL) return NULL;
  bool shown = !st__track_busy(); /* the unwinder's own memory is neither recorded nor shown */
  if (shown) ST_VG_MALLOCLIKE(p, size, zero);
  if (zero && !hardened) memset(p, 0, size);
  if (!shown) return p;
  /* The block's slack past the request: only the core writes there (the free-list link
   * in the first word, which a block of size >= 8 covers; the free mark in the second
   * word is written only while the block is free). */
  size_t usable = st__core_usable_size(p, "malloc");
  if (usable > size && size >= sizeof(void *)) ST_VG_NOACCESS((char *)p + size, usable - size);
  st__track_add(p, size);
  return p;
}

void st__debug_free(void *p, st_span_t *span, const char *fn) {
  if (st__thread_hardened_only()) {
    st__harden_free(p, span, fn);
    return;
  }
  size_t size;
  if (st__track_remove(p, &size)) {
    ST_VG_FREELIKE(p);
    ST_VG_DEFINED(p, sizeof(st_block_t));
  }
  if (st__harden_enabled()) st__harden_free(p, span, fn);
  else st__core_free(p, span, fn);
}

size_t st__debug_usable_size(const void *p, const char *fn) {
  return st__harden_enabled() ? st__harden_size(p, fn) : st__core_usable_size(p, fn);
}

void *st__debug_realloc(void *p, size_t size) {
  size_t old;
  if (!st__track_size(p, &old)) old = st__debug_usable_size(p, "realloc");
  void *q = st__debug_malloc(size, 0, false);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  st__debug_free(p, st__pagemap_lookup(p), "realloc");
  return q;
}
