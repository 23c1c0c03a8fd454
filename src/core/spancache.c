/*
 * spancache.c — emptying a thread's stock of freed LARGE spans (see spancache.h).
 */
#include "core/spancache.h"

#include "core/pageheap.h"

st_span_t *st__spancache_take_aligned(st_spancache_t *sc, size_t pages, size_t align) {
  size_t k = pages - ST_SPANCACHE_MIN_PAGES;
  if (k >= ST_SPANCACHE_KINDS) return NULL;
  for (unsigned i = sc->count[k]; i-- > 0;)
    if ((sc->spans[k][i]->start & (align - 1)) == 0) return st__spancache_remove(sc, k, i);
  return NULL;
}

void st__spancache_flush(st_spancache_t *sc) {
  for (size_t k = 0; k < ST_SPANCACHE_KINDS; k++) {
    while (sc->count[k] > 0) {
      st_span_t *span = sc->spans[k][--sc->count[k]];
      st_store_relaxed(&span->xcached, 0);
      st__pageheap_free(span);
    }
  }
  sc->held_pages = 0;
}
