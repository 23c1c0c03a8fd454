/*
 * picture.c — st_heap_dump for a classic heap: one row per region, one character per page
 * (docs/debugging.md; the core's picture is debug/heapdump.c).
 *
 * Owns: turning a heap's regions and live blocks into the dump's text and JSON forms. An
 * arena region's page shows how much of it live blocks cover: ' ' none, '1'..'9' tenths
 * (rounded up), '#' all; a BIG region (one block mapped on its own) shows 'B' per page.
 * The rows are copied under the heap's lock into a mapping of their own and printed after
 * it is released: stdio may call malloc, which may be this very heap.
 * tools/strata-heap-svg draws the JSON form ("region" and "big" kinds).
 */
#include "classic/picture.h"

#include <string.h>

#include "os/os.h"

#define PAGE 4096
#define REGION_PAGES (ST_REGION_ARENA_BYTES / PAGE)
#define MAP_MAX 4096 /* characters per row */

typedef struct picture_row {
  uintptr_t start;
  size_t pages;
  bool big;
  char map[MAP_MAX + 1];
} picture_row;

/* Live bytes per page of the region being visited. */
typedef struct page_fill {
  uintptr_t start;
  uint32_t live[REGION_PAGES];
} page_fill;

static void add_block(const void *block, size_t usable, void *arg) {
  page_fill *f = arg;
  uintptr_t lo = (uintptr_t)block, hi = lo + usable;
  while (lo < hi) {
    size_t page = (lo - f->start) / PAGE;
    uintptr_t page_end = f->start + (page + 1) * PAGE;
    uintptr_t end = hi < page_end ? hi : page_end;
    if (page < REGION_PAGES) f->live[page] += (uint32_t)(end - lo);
    lo = end;
  }
}

static void draw_region_locked(st_classic_heap_t *h, st_region_t *r, picture_row *row,
                               page_fill *fill) {
  row->start = (uintptr_t)r;
  row->pages = r->size / PAGE;
  row->big = r->kind == ST_REGION_BIG;
  size_t n = row->pages < MAP_MAX ? row->pages : MAP_MAX;
  if (row->big) {
    memset(row->map, 'B', n);
  } else {
    memset(fill, 0, sizeof *fill);
    fill->start = (uintptr_t)r;
    h->backend->visit(h->state, r, add_block, fill);
    for (size_t i = 0; i < n; i++) {
      uint32_t live = fill->live[i];
      row->map[i] = live == 0 ? ' ' : live >= PAGE ? '#' : (char)('1' + (live * 9 - 1) / PAGE);
    }
  }
  row->map[n] = '\0';
}

static void print_row(FILE *f, st_dump_format format, const picture_row *row, bool first) {
  const char *kind = row->big ? "big" : "region";
  if (format == ST_DUMP_TEXT)
    fprintf(f, "%#014zx %6s %6zu pages |%s|\n", (size_t)row->start, kind, row->pages, row->map);
  else
    fprintf(f, "%s\n  {\"start\": %zu, \"pages\": %zu, \"kind\": \"%s\", \"map\": \"%s\"}",
            first ? "" : ",", (size_t)row->start, row->pages, kind, row->map);
}

int st__classic_dump(st_classic_heap_t *h, FILE *file, st_dump_format format) {
  if (file == NULL || (format != ST_DUMP_TEXT && format != ST_DUMP_JSON)) return -1;
  st_lock_acquire(&h->lock);
  size_t count = h->regions.count;
  size_t bytes = st_align_up(count * sizeof(picture_row) + sizeof(page_fill), st__os_page_size());
  char *area = st__os_map_aligned(bytes, st__os_page_size());
  if (area != NULL) {
    page_fill *fill = (page_fill *)area;
    picture_row *rows = (picture_row *)(area + sizeof(page_fill));
    for (size_t i = 0; i < count; i++) draw_region_locked(h, h->regions.items[i], &rows[i], fill);
  }
  st_lock_release(&h->lock);
  if (area == NULL) return -1;
  const picture_row *rows = (const picture_row *)(area + sizeof(page_fill));
  if (format == ST_DUMP_JSON)
    fprintf(file, "{\"version\": 1, \"page_size\": %d, \"strategy\": \"%s\", \"spans\": [", PAGE,
            h->backend->name);
  else
    fprintf(file, "strata heap (%s): per page of each region, ' ' no live block, 1-9 tenths "
                  "live, '#' all live, B a block mapped on its own\n",
            h->backend->name);
  for (size_t i = 0; i < count; i++) print_row(file, format, &rows[i], i == 0);
  if (format == ST_DUMP_JSON) fprintf(file, "\n]}\n");
  st__os_unmap(area, bytes);
  return fflush(file) == 0 && !ferror(file) ? 0 : -1;
}
