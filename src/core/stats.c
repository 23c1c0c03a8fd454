/*
 * stats.c — gathering the core's statistics (see stats.h).
 *
 * Lock order: the registry lock (st__thread_for_each_cache) is taken and released before
 * the page heap locks, which are taken all at once in shard order (st__pageheap_lock_all).
 */
#include "core/stats.h"

#include <string.h>

#include "core/events.h"
#include "core/hugecache.h"
#include "core/page.h"
#include "core/pageheap.h"
#include "core/pagemap.h"
#include "core/thread.h"
#include "os/os.h"

_Static_assert(ST_NUM_CLASSES <= ST_STATS_MAX_CLASSES, "st_stats has room for every class");

typedef struct gather {
  st_stats *out;
  size_t class_used[ST_NUM_CLASSES]; /* `used` summed over the class's spans */
  size_t class_pins[ST_NUM_CLASSES]; /* current spans: one `used` each is a pin, not a block */
  size_t owned_free_bytes;           /* free blocks of spans some cache owns, pins included */
} gather;

static void add_events(st_stats *out, st_event_counters *ev) {
  size_t *counts[] = {
#define ST_EVENT_FIELD(name, help) &out->name,
      ST_STATS_EVENTS(ST_EVENT_FIELD)
#undef ST_EVENT_FIELD
  };
  for (unsigned e = 0; e < ST_EVENT_COUNT; e++) *counts[e] += st_load_relaxed(&ev->xcount[e]);
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++)
    out->classes[c].refills += st_load_relaxed(&ev->xclass_refills[c]);
}

static void visit_cache(st_tcache_t *tc, void *arg) {
  gather *g = arg;
  if (tc->live) add_events(g->out, &tc->events);
}

/* Reads only what the page heap locks guard (kind, pages, and the class, block size and
 * capacity, which are set under the home lock) and the atomic fields: the owners of slab
 * spans keep running meanwhile. */
static void visit_span(st_span_t *span, void *arg) {
  gather *g = arg;
  st_stats *out = g->out;
  switch ((st_span_kind)span->kind) {
  case ST_SPAN_SLAB: {
    unsigned c = span->size_class;
    size_t block = span->block_size, used = st__span_used(span);
    if (c >= ST_NUM_CLASSES || used > span->capacity + 1u) return; /* not formatted yet */
    st_stats_class *k = &out->classes[c];
    out->spans_slab++;
    k->spans++;
    k->pages += span->pages;
    k->blocks_capacity += span->capacity;
    g->class_used[c] += used;
    g->class_pins[c] += st_load_relaxed(&span->xpinned);
    size_t free_bytes = used < span->capacity ? (span->capacity - used) * block : 0;
    if (st_load_relaxed(&span->xowner) != NULL) g->owned_free_bytes += free_bytes;
    else out->abandoned_free_bytes += free_bytes;
    out->slab_tail_bytes += st__span_bytes(span) - (size_t)span->capacity * block;
    break;
  }
  case ST_SPAN_LARGE:
    out->spans_large++;
    if (st__spancache_holds(span)) { /* freed, kept by a thread (spancache.h) */
      g->owned_free_bytes += st__span_bytes(span);
      break;
    }
    out->live_blocks++;
    out->large_live_bytes += st__span_bytes(span);
    out->large_requested_bytes += st_load_relaxed(&span->xrequested);
    break;
  case ST_SPAN_HUGE:
    out->spans_huge++;
    out->live_blocks++;
    out->huge_live_bytes += span->huge_mapped;
    out->large_requested_bytes += st_load_relaxed(&span->xrequested);
    break;
  case ST_SPAN_FREE: out->spans_free++; break;
  }
}

void st__core_for_each_span(void (*fn)(st_span_t *span, void *arg), void *arg) {
  st__pageheap_lock_all();
  st__pagemap_for_each_span(fn, arg);
  st__pageheap_unlock_all();
}

static void add_shards(st_stats *out) {
  size_t free_pages = 0, dirty_pages = 0;
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *ph = st__pageheap_of_cpu((int)i);
    st__pageheap_lock(ph);
    free_pages += ph->free_pages;
    dirty_pages += ph->dirty_pages;
    out->reserved_bytes += ph->reserved_bytes;
    out->metadata_bytes += ph->metadata_bytes;
    out->spans_allocated += ph->spans_allocated;
    st__pageheap_unlock(ph);
  }
  out->free_dirty_bytes = st__pages_to_bytes(dirty_pages);
  out->free_purged_bytes = st__pages_to_bytes(free_pages - dirty_pages);
}

/* Blocks per class from the used counts, less the pins of current spans. */
static void finish_classes(gather *g) {
  st_stats *out = g->out;
  size_t pinned_bytes = 0;
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    st_stats_class *k = &out->classes[c];
    size_t pins = g->class_pins[c] < g->class_used[c] ? g->class_pins[c] : g->class_used[c];
    k->blocks_live = g->class_used[c] - pins;
    pinned_bytes += pins * k->block_size;
    out->live_blocks += k->blocks_live;
    out->refills += k->refills;
    out->small_live_bytes += k->blocks_live * k->block_size;
  }
  out->thread_cached_bytes = g->owned_free_bytes + pinned_bytes;
}

void st__core_stats(st_stats *out) {
  memset(out, 0, sizeof *out);
  out->version = ST_STATS_VERSION;
  out->class_count = ST_NUM_CLASSES;
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) out->classes[c].block_size = st__class_size[c];
  out->mapped_bytes = st_load_relaxed(&st__os_counters.xmapped);
  out->peak_mapped_bytes = st_load_relaxed(&st__os_counters.xpeak_mapped);
  out->purged_total_bytes = st_load_relaxed(&st__os_counters.xpurged);
  out->map_calls = st_load_relaxed(&st__os_counters.xmap_calls);
  out->peak_in_use_bytes = st__events_peak_in_use();
  out->huge_cached_bytes = st__hugecache_bytes();
  add_events(out, &st__events_shared);
  if (st__core_initialized()) {
    gather g = {.out = out};
    st__thread_for_each_cache(visit_cache, &g);
    st__core_for_each_span(visit_span, &g);
    finish_classes(&g);
    add_shards(out);
    out->metadata_bytes += st__pagemap_bytes() + st__thread_metadata_bytes();
    out->threads_live = st__thread_live_count();
  }
  out->live_bytes = out->small_live_bytes + out->large_live_bytes + out->huge_live_bytes;
  size_t purged = out->free_purged_bytes;
  out->committed_bytes = out->mapped_bytes > purged ? out->mapped_bytes - purged : 0;
  out->fragmentation = out->committed_bytes == 0 || out->live_bytes >= out->committed_bytes
                           ? 0.0
                           : 1.0 - (double)out->live_bytes / (double)out->committed_bytes;
}

/* Marks the blocks of one free list; stops at the first link that leaves the span, misses
 * a block boundary or repeats a block. */
static void mark_list(const st_span_t *span, const st_block_t *block, uint8_t *is_free, uint32_t cap) {
  for (uint32_t steps = 0; block != NULL && block != ST_FREE_LIST_END && steps < cap; steps++) {
    if (!st__page_is_block_start(span, block)) return;
    size_t index = ((uintptr_t)block - span->start) / span->block_size;
    if (index >= cap || is_free[index] != 0) return;
    is_free[index] = 1;
    block = st__block_next(block);
  }
}

bool st__core_slab_free_map(const st_span_t *span, const st_tcache_t *self, uint8_t *is_free,
                            uint32_t cap) {
  const st_span_owner *owner = st_load_acquire(&span->xowner);
  if (owner != NULL && (self == NULL || owner != &self->owner)) {
    /* Another thread's: its lists and blocks are its own to change; the count is atomic. */
    uint32_t used = st__span_used(span) - st_load_relaxed(&span->xpinned);
    for (uint32_t i = 0; i < cap; i++) is_free[i] = i < used ? 0 : 1;
    return false;
  }
  memset(is_free, 0, cap);
  for (uint32_t i = span->carved; i < cap; i++) is_free[i] = 2;
  mark_list(span, span->free, is_free, cap);
  mark_list(span, st__page_remote_list(st_load_acquire(&span->xthread_free)), is_free, cap);
  return true;
}
