/*
 * heapdump.c — st_heap_dump: a picture of the heap as text or JSON (docs/debugging.md).
 *
 * One entry per span in address order (the pagemap walk, page heaps locked). A slab span
 * shows one character per block: '#' live, '.' free, '_' never carved; other spans show
 * one character per page: 'L' a large block, 'H' a huge one (first 4096 pages), and
 * 'd' / ' ' for free pages that may be resident / were purged (a free span knows how
 * many of its pages are dirty, not which: the dirty count is drawn first). JSON carries
 * the same map string per span; tools/strata-heap-svg draws it. The free lists of a slab
 * another running thread owns are that thread's to change: such a span is drawn from its
 * count of live blocks, live ones first, and marked inexact (st__core_slab_free_map).
 */
#include <stdio.h>
#include <string.h>

#include "core/stats.h"
#include "debug/debug.h"
#include "debug/track.h"

#define MAP_MAX 4096 /* characters per span in the picture */

/* One span as copied under the locks; printed after they are released (stdio may call
 * malloc, which may need a page heap lock). */
typedef struct dumped_span {
  uintptr_t start;
  size_t pages, block_size;
  uint32_t capacity;
  uint8_t kind, size_class, shard;
  bool exact; /* false: a slab of another running thread, drawn from its count */
  char *map;
} dumped_span;

typedef struct dump_state {
  const st_tcache_t *self; /* the calling thread's cache, whose spans are drawn exactly */
  dumped_span *spans;      /* NULL in the counting pass */
  size_t count, cap;
  char *text, *text_end; /* carving area of the maps */
  size_t text_needed;
} dump_state;

static const char *kind_name(unsigned kind) {
  static const char *const names[] = {"free", "slab", "large", "huge"};
  return kind < 4 ? names[kind] : "?";
}

static size_t map_length(const st_span_t *span) {
  size_t n = span->kind == ST_SPAN_SLAB ? span->capacity : span->pages;
  return n < MAP_MAX ? n : MAP_MAX;
}

/* Returns whether the map shows where the free blocks are (see st__core_slab_free_map). */
static bool draw_map(const st_span_t *span, const st_tcache_t *self, char *map, size_t n) {
  bool exact = true;
  if (span->kind == ST_SPAN_SLAB) {
    uint8_t is_free[MAP_MAX];
    exact = st__core_slab_free_map(span, self, is_free, (uint32_t)n);
    for (size_t i = 0; i < n; i++) map[i] = "#._"[is_free[i]];
  } else {
    char c = span->kind == ST_SPAN_LARGE ? 'L' : 'H';
    for (size_t i = 0; i < n; i++)
      map[i] = span->kind == ST_SPAN_FREE ? (i < span->dirty_pages ? 'd' : ' ') : c;
  }
  map[n] = '\0';
  return exact;
}

static void copy_span(st_span_t *span, void *arg) {
  dump_state *d = arg;
  size_t n = map_length(span);
  if (d->spans == NULL) {
    d->count++;
    d->text_needed += n + 1;
    return;
  }
  if (d->count == d->cap || d->text + n + 1 > d->text_end) return; /* grew since counting */
  dumped_span *out = &d->spans[d->count++];
  out->start = span->start;
  out->pages = span->pages;
  out->kind = span->kind;
  out->shard = st_load_relaxed(&span->xshard);
  out->size_class = span->kind == ST_SPAN_SLAB ? span->size_class : 0;
  out->block_size = span->kind == ST_SPAN_SLAB ? span->block_size : 0;
  out->capacity = span->kind == ST_SPAN_SLAB ? span->capacity : 0;
  out->map = d->text;
  out->exact = draw_map(span, d->self, d->text, n);
  d->text += n + 1;
}

static void print_span(FILE *f, st_dump_format format, const dumped_span *s, bool first) {
  if (format == ST_DUMP_TEXT) {
    fprintf(f, "%#014zx %5s %6zu pages", (size_t)s->start, kind_name(s->kind), s->pages);
    if (s->kind == ST_SPAN_SLAB) fprintf(f, " class %2u %5zu B", s->size_class, s->block_size);
    fprintf(f, " |%s|%s\n", s->map, s->exact ? "" : " ~");
    return;
  }
  fprintf(f, "%s\n  {\"start\": %zu, \"pages\": %zu, \"kind\": \"%s\", \"shard\": %u",
          first ? "" : ",", (size_t)s->start, s->pages, kind_name(s->kind), s->shard);
  if (s->kind == ST_SPAN_SLAB)
    fprintf(f, ", \"class\": %u, \"block_size\": %zu, \"capacity\": %u", s->size_class,
            s->block_size, s->capacity);
  fprintf(f, ", \"exact\": %s, \"map\": \"%s\"}", s->exact ? "true" : "false", s->map);
}

int st__debug_heap_dump(FILE *file, st_dump_format format) {
  if (file == NULL || (format != ST_DUMP_TEXT && format != ST_DUMP_JSON)) return -1;
  dump_state d = {0};
  size_t spans_bytes = 0, text_bytes = 0;
  if (st__core_initialized()) {
    /* A thread without a cache owns no span; setting one up would also take a page-heap
     * shard in the round-robin (pageheap.h) and move the other threads' shards. */
    d.self = st__thread_cache_if_any();
    st__core_for_each_span(copy_span, &d);
    d.cap = d.count + d.count / 4 + 16; /* room for spans made between the two walks */
    spans_bytes = d.cap * sizeof(dumped_span);
    text_bytes = d.text_needed + d.text_needed / 4 + (size_t)16 * (MAP_MAX + 1);
    d.spans = st__track_map(spans_bytes);
    d.text = st__track_map(text_bytes);
    if (d.spans == NULL || d.text == NULL) {
      if (d.spans != NULL) st__track_unmap(d.spans, spans_bytes);
      if (d.text != NULL) st__track_unmap(d.text, text_bytes);
      return -1;
    }
    d.text_end = d.text + text_bytes;
    char *text = d.text;
    d.count = 0;
    st__core_for_each_span(copy_span, &d);
    d.text = text;
  }
  if (format == ST_DUMP_JSON)
    fprintf(file, "{\"version\": 1, \"page_size\": %zu, \"spans\": [", ST_PAGE_SIZE);
  else
    fprintf(file, "strata heap: '#' live block, '.' free block, '_' never used, "
                  "L/H large/huge pages, d free page maybe resident, ' ' purged; "
                  "~ a running thread's slab, drawn from its count of live blocks\n");
  for (size_t i = 0; i < d.count; i++) print_span(file, format, &d.spans[i], i == 0);
  if (format == ST_DUMP_JSON) fprintf(file, "\n]}\n");
  if (d.spans != NULL) st__track_unmap(d.spans, spans_bytes);
  if (d.text != NULL) st__track_unmap(d.text, text_bytes);
  return fflush(file) == 0 && !ferror(file) ? 0 : -1;
}
