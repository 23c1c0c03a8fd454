/*
 * override.c — binds the libc malloc family to strata. Nothing else lives here.
 *
 * malloc and free expand the inline fast paths of api.h (no extra call); the rest call
 * the hidden st__api_* functions directly, never through the PLT. Linked into
 * libstrata.so and libstrata.a only; the prefixed API works without this file.
 */
#include <malloc.h>
#include <stdlib.h>

#include "api/api.h"
#include "strata.h"

#define ST_LIBC ST_EXPORT

/* C23 names that glibc 2.36's headers do not declare yet. */
ST_LIBC void free_sized(void *p, size_t size);
ST_LIBC void free_aligned_sized(void *p, size_t alignment, size_t size);

ST_LIBC void *malloc(size_t size) { return st__api_malloc(size); }
ST_LIBC void free(void *p) { st__api_free(p); }
ST_LIBC void *calloc(size_t count, size_t size) { return st__api_calloc(count, size); }
ST_LIBC void *realloc(void *p, size_t size) { return st__api_realloc(p, size); }
ST_LIBC void *reallocarray(void *p, size_t count, size_t size) {
  return st__api_reallocarray(p, count, size);
}
ST_LIBC int posix_memalign(void **out, size_t alignment, size_t size) {
  return st__api_posix_memalign(out, alignment, size);
}
ST_LIBC void *aligned_alloc(size_t alignment, size_t size) { return st__api_memalign(alignment, size); }
ST_LIBC void *memalign(size_t alignment, size_t size) { return st__api_memalign(alignment, size); }
ST_LIBC void *valloc(size_t size) { return st__api_valloc(size); }
ST_LIBC void *pvalloc(size_t size) { return st__api_pvalloc(size); }
ST_LIBC size_t malloc_usable_size(void *p) { return st__api_usable_size(p); }
ST_LIBC int malloc_trim(size_t pad) { return st__api_trim(pad); }
ST_LIBC void free_sized(void *p, size_t size) { st__api_free_sized(p, size); }
ST_LIBC void free_aligned_sized(void *p, size_t alignment, size_t size) {
  st__api_free_aligned_sized(p, alignment, size);
}

/* glibc's summaries, answered from st_stats (docs/stats.md maps each field). */
ST_LIBC struct mallinfo2 mallinfo2(void) {
  st_stats s;
  st_stats_get(&s, sizeof s);
  struct mallinfo2 m = {0};
  m.arena = s.mapped_bytes - s.huge_live_bytes;
  m.ordblks = s.spans_free;
  m.hblks = s.spans_huge;
  m.hblkhd = s.huge_live_bytes;
  m.usmblks = s.peak_in_use_bytes;
  m.uordblks = s.small_live_bytes + s.large_live_bytes;
  m.fordblks =
      s.thread_cached_bytes + s.abandoned_free_bytes + s.free_dirty_bytes + s.huge_cached_bytes;
  m.keepcost = s.free_dirty_bytes + s.huge_cached_bytes;
  return m;
}

ST_LIBC void malloc_stats(void) { st_stats_print(stderr, ST_STATS_TEXT); }
