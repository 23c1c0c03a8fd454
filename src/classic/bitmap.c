/*
 * bitmap.c — the bitmap allocator: fixed 16-byte granules, one bit each (backend.h).
 *
 * Owns: the granule bitmaps of each arena region and the search for a run of free granules
 * (64 at a time: count-trailing-zeros finds where a run starts and where it ends).
 *
 *   region: [ header | bitmap_region: hint, free count, used[] and start[] bitmaps |
 *             granules ............................................................. ]
 *   block:  [ size granule: granule count, cookie ][ payload ........................ ]
 *   used:  bit g set while granule g is part of a live block (or of the metadata);
 *   start: bit g set when a live block's size granule is g.
 *
 * Each allocation stores its size (in granules) in the granule before its payload, so free
 * needs no size argument; the start bitmap proves a pointer is a live block's start.
 * The search is first-fit by address from each region's hint: every granule below the hint
 * is used. Invariants: used bits of a live block are all set; start bits only at live blocks.
 */
#include <string.h>

#include "base/check.h"
#include "base/report.h"
#include "classic/backend.h"

#define GRANULE 16
#define GRANULES (ST_REGION_ARENA_BYTES / GRANULE)
#define WORDS (GRANULES / 64)
#define NONE ((size_t)-1)
#define BITMAP_COOKIE_KEY ((uint64_t)0xc2b2ae3d27d4eb4full)

typedef struct bitmap_region {
  size_t hint;       /* every granule below is used */
  size_t free_count; /* free granules */
  uint64_t used[WORDS];
  uint64_t start[WORDS];
} bitmap_region;

typedef struct bitmap_header {
  uint64_t granules; /* the block's granules, this one included */
  uint64_t cookie;
} bitmap_header;

typedef struct bitmap_state {
  st_list_t regions; /* oldest first, linked through st_region_t.link */
} bitmap_state;

/* Granules taken by the region header and the bitmaps. */
#define METADATA_GRANULES                                                                          \
  (st_align_up(ST_REGION_DATA_ALIGN + sizeof(bitmap_region), GRANULE) / GRANULE)

ST_INLINE bitmap_region *meta(const st_region_t *r) { return (bitmap_region *)r->data; }
ST_INLINE char *granule_addr(const st_region_t *r, size_t g) { return (char *)r + g * GRANULE; }
ST_INLINE bool bit_get(const uint64_t *bits, size_t g) { return (bits[g / 64] >> (g % 64)) & 1; }
ST_INLINE uint64_t header_cookie(const bitmap_header *h, uint64_t granules) {
  return ((uint64_t)(uintptr_t)h ^ granules) * BITMAP_COOKIE_KEY;
}

/* The first granule >= g whose bit equals `want`, below `limit`; NONE if there is none. */
static size_t find_bit(const uint64_t *bits, size_t g, size_t limit, bool want) {
  while (g < limit) {
    uint64_t w = want ? bits[g / 64] : ~bits[g / 64];
    w &= ~(uint64_t)0 << (g % 64);
    if (w != 0) {
      size_t found = (g & ~(size_t)63) + st_ctz64(w);
      return found < limit ? found : NONE;
    }
    g = (g & ~(size_t)63) + 64;
  }
  return NONE;
}

/* Sets (or clears) bits [g, g + n). */
static void set_run(uint64_t *bits, size_t g, size_t n, bool value) {
  while (n > 0) {
    size_t take = 64 - g % 64 < n ? 64 - g % 64 : n;
    uint64_t mask = (take == 64 ? ~(uint64_t)0 : (((uint64_t)1 << take) - 1)) << (g % 64);
    if (value)
      bits[g / 64] |= mask;
    else
      bits[g / 64] &= ~mask;
    g += take;
    n -= take;
  }
}

/* First run of n free granules whose payload (the granule after the first) is aligned to
 * align; NONE if the region has none. */
static size_t find_run(const st_region_t *r, size_t n, size_t align) {
  const bitmap_region *m = meta(r);
  size_t step = align / GRANULE;
  for (size_t g = m->hint; g + n <= GRANULES;) {
    g = find_bit(m->used, g, GRANULES, false);
    if (g == NONE) return NONE;
    size_t payload = st_align_up(g + 1, step); /* granule indices share the region's alignment */
    if (payload - 1 != g) {
      g = payload - 1;
      if (g + n > GRANULES || bit_get(m->used, g)) continue;
    }
    if (g + n > GRANULES) return NONE;
    size_t end = find_bit(m->used, g, g + n, true);
    if (end == NONE) return g;
    g = end;
  }
  return NONE;
}

static void *bitmap_alloc(void *state, size_t size, size_t align, size_t *usable) {
  bitmap_state *s = state;
  size_t n = 1 + st_align_up(size, GRANULE) / GRANULE;
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &s->regions) {
    st_region_t *r = ST_CONTAINER_OF(pos, st_region_t, link);
    bitmap_region *m = meta(r);
    if (m->free_count < n) continue;
    size_t g = find_run(r, n, align);
    if (g == NONE) continue;
    set_run(m->used, g, n, true);
    m->start[g / 64] |= (uint64_t)1 << (g % 64);
    m->free_count -= n;
    if (g == m->hint) m->hint = g + n;
    bitmap_header *h = (bitmap_header *)granule_addr(r, g);
    h->granules = n;
    h->cookie = header_cookie(h, n);
    *usable = (n - 1) * GRANULE;
    return h + 1;
  }
  return NULL;
}

/* The size granule of the live block whose payload is p, or a diagnostic. */
static size_t live_granule(const st_region_t *r, const void *p, const char *fn) {
  size_t offset = (size_t)((const char *)p - (const char *)r);
  ST_CHECK(offset % GRANULE == 0 && offset / GRANULE > METADATA_GRANULES,
           "%s(): invalid pointer %p (not the start of a block)", fn, p);
  size_t g = offset / GRANULE - 1;
  const bitmap_region *m = meta(r);
  const bitmap_header *h = (const bitmap_header *)granule_addr(r, g);
  if (!bit_get(m->start, g) && !bit_get(m->used, g) && !bit_get(m->used, g + 1))
    st__fatal("%s(): double free or invalid pointer %p (its granules are free)", fn, p);
  ST_CHECK(bit_get(m->start, g) && h->cookie == header_cookie(h, h->granules),
           "%s(): invalid pointer %p (not the start of a live block)", fn, p);
  return g;
}

static size_t bitmap_free(void *state, st_region_t *r, void *p, const char *fn) {
  ST_UNUSED(state);
  size_t g = live_granule(r, p, fn);
  bitmap_region *m = meta(r);
  bitmap_header *h = (bitmap_header *)granule_addr(r, g);
  size_t n = h->granules;
  h->cookie = 0;
  set_run(m->used, g, n, false);
  m->start[g / 64] &= ~((uint64_t)1 << (g % 64));
  m->free_count += n;
  if (g < m->hint) m->hint = g;
  return (n - 1) * GRANULE;
}

static size_t bitmap_usable(const void *state, const st_region_t *r, const void *p,
                            const char *fn) {
  ST_UNUSED(state);
  const bitmap_header *h = (const bitmap_header *)granule_addr(r, live_granule(r, p, fn));
  return (h->granules - 1) * GRANULE;
}

/* Shrinks by clearing the tail's bits; grows while the granules after the block are free. */
static bool bitmap_resize(void *state, st_region_t *r, void *p, size_t size, size_t *usable) {
  ST_UNUSED(state);
  size_t g = live_granule(r, p, "realloc");
  bitmap_region *m = meta(r);
  bitmap_header *h = (bitmap_header *)granule_addr(r, g);
  size_t have = h->granules, want = 1 + st_align_up(size, GRANULE) / GRANULE;
  if (want > have) {
    if (g + want > GRANULES || find_bit(m->used, g + have, g + want, true) != NONE) return false;
    set_run(m->used, g + have, want - have, true);
    m->free_count -= want - have;
    if (m->hint >= g + have && m->hint < g + want) m->hint = g + want;
  } else {
    set_run(m->used, g + want, have - want, false);
    m->free_count += have - want;
    if (g + want < m->hint) m->hint = g + want;
  }
  h->granules = want;
  h->cookie = header_cookie(h, want);
  *usable = (want - 1) * GRANULE;
  return true;
}

static void bitmap_add_region(void *state, st_region_t *r) {
  bitmap_state *s = state;
  bitmap_region *m = meta(r);
  memset(m, 0, sizeof *m); /* fresh mappings are zero; this documents the starting state */
  set_run(m->used, 0, METADATA_GRANULES, true);
  m->hint = METADATA_GRANULES;
  m->free_count = GRANULES - METADATA_GRANULES;
  st_list_push_back(&s->regions, &r->link);
}

static void bitmap_remove_region(void *state, st_region_t *r) {
  ST_UNUSED(state);
  ST_CHECK(meta(r)->free_count == GRANULES - METADATA_GRANULES,
           "bitmap: removing region %p, which is not empty", (void *)r);
  st_list_remove(&r->link);
}

static bool bitmap_validate(const void *state, const st_region_t *r) {
  ST_UNUSED(state);
  const bitmap_region *m = meta(r);
  size_t used = 0, live = 0;
  for (size_t g = METADATA_GRANULES; g < GRANULES; g++) {
    if (!bit_get(m->used, g)) {
      if (g < m->hint) {
        st__report("bitmap: region %p: granule %zu free below the hint %zu", (void *)r, g, m->hint);
        return false;
      }
      continue;
    }
    const bitmap_header *h = (const bitmap_header *)granule_addr(r, g);
    if (!bit_get(m->start, g) || h->cookie != header_cookie(h, h->granules) ||
        g + h->granules > GRANULES || find_bit(m->used, g, g + h->granules, false) != NONE) {
      st__report("bitmap: region %p: granule %zu is not a well-formed live block", (void *)r, g);
      return false;
    }
    used += h->granules;
    live += (h->granules - 1) * GRANULE;
    g += h->granules - 1;
  }
  if (used + m->free_count != GRANULES - METADATA_GRANULES || live != r->used) {
    st__report("bitmap: region %p: counts disagree (used %zu free %zu live %zu)", (void *)r, used,
               m->free_count, live);
    return false;
  }
  return true;
}

static void bitmap_visit(const void *state, const st_region_t *r, st_heap_visitor fn, void *arg) {
  ST_UNUSED(state);
  const bitmap_region *m = meta(r);
  for (size_t g = find_bit(m->start, 0, GRANULES, true); g != NONE;
       g = find_bit(m->start, g + 1, GRANULES, true)) {
    const bitmap_header *h = (const bitmap_header *)granule_addr(r, g);
    fn(h + 1, (h->granules - 1) * GRANULE, arg);
  }
}

static void bitmap_init(void *state) {
  bitmap_state *s = state;
  st_list_init(&s->regions);
}

const st_backend st__backend_bitmap = {.name = "bitmap",
                                       .init = bitmap_init,
                                       .add_region = bitmap_add_region,
                                       .remove_region = bitmap_remove_region,
                                       .alloc = bitmap_alloc,
                                       .free = bitmap_free,
                                       .usable = bitmap_usable,
                                       .resize = bitmap_resize,
                                       .validate = bitmap_validate,
                                       .visit = bitmap_visit};
