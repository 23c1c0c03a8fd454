/*
 * spancache.c — emptying a thread's stock of freed LARGE spans (see spancache.h).
 */
#include "core/spancache.h"

#include "core/pageheap.h"

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
