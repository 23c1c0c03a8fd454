/*
 * region.c — regions from the os layer and the per-heap table that finds them (region.h).
 *
 * The table is an array sorted by address, kept in an os mapping that doubles when full;
 * a lookup is a binary search. Heaps map few regions (arena regions are megabytes and
 * grow geometrically; only BIG blocks have one each), so insertion by shifting is cheap.
 */
#include "classic/region.h"

#include <string.h>

#include "os/os.h"

static size_t round_to_page(size_t n) {
  size_t page = st__os_page_size();
  return n > SIZE_MAX - page ? 0 : st_align_up(n, page);
}

st_region_t *st__region_map(size_t data_bytes, size_t align, size_t data_offset,
                            st_region_kind kind) {
  if (data_bytes > SIZE_MAX - data_offset) return NULL;
  size_t size = round_to_page(data_offset + data_bytes);
  if (size == 0 || size > PTRDIFF_MAX) return NULL;
  st_region_t *r = st__os_map_aligned(size, align);
  if (r == NULL) return NULL;
  r->magic = ST_REGION_MAGIC;
  r->size = size;
  r->data = (char *)r + data_offset;
  r->end = (char *)r + size;
  r->used = 0;
  r->kind = kind;
  r->serial = 0;
  return r;
}

void st__region_unmap(st_region_t *r) {
  r->magic = 0;
  st__os_unmap(r, r->size);
}

/* Index of the first region whose start is above p (0..count). */
static size_t table_upper_bound(const st_region_table *t, const void *p) {
  size_t lo = 0, hi = t->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((const char *)t->items[mid] <= (const char *)p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static bool table_grow(st_region_table *t) {
  size_t cap = t->cap == 0 ? st__os_page_size() / sizeof(st_region_t *) : t->cap * 2;
  st_region_t **items = st__os_map_aligned(cap * sizeof *items, 1);
  if (items == NULL) return false;
  if (t->items != NULL) {
    memcpy(items, t->items, t->count * sizeof *items);
    st__os_unmap(t->items, t->cap * sizeof *items);
  }
  t->items = items;
  t->cap = cap;
  return true;
}

bool st__region_table_add(st_region_table *t, st_region_t *r) {
  if (t->count == t->cap && !table_grow(t)) return false;
  size_t at = table_upper_bound(t, r);
  memmove(&t->items[at + 1], &t->items[at], (t->count - at) * sizeof *t->items);
  t->items[at] = r;
  t->count++;
  r->serial = t->next_serial++;
  t->mapped_bytes += r->size;
  if (t->mapped_bytes > t->peak_mapped) t->peak_mapped = t->mapped_bytes;
  return true;
}

void st__region_table_remove(st_region_table *t, st_region_t *r) {
  size_t at = table_upper_bound(t, r);
  if (at == 0 || t->items[at - 1] != r) return;
  at--;
  memmove(&t->items[at], &t->items[at + 1], (t->count - at - 1) * sizeof *t->items);
  t->count--;
  t->mapped_bytes -= r->size;
}

st_region_t *st__region_table_find(const st_region_table *t, const void *p) {
  size_t at = table_upper_bound(t, p);
  if (at == 0) return NULL;
  st_region_t *r = t->items[at - 1];
  return (const char *)p < r->end ? r : NULL;
}

void st__region_table_release(st_region_table *t) {
  for (size_t i = 0; i < t->count; i++) st__region_unmap(t->items[i]);
  if (t->items != NULL) st__os_unmap(t->items, t->cap * sizeof *t->items);
  memset(t, 0, sizeof *t);
}
