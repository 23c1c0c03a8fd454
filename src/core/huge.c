/*
 * huge.c — directly mapped blocks (see huge.h).
 *
 * The descriptor comes from the shard of the CPU that maps the block and goes back to
 * the same shard (span->xshard) whichever thread frees it.
 */
#include "core/huge.h"

#include <sched.h>

#include "core/events.h"
#include "core/pageheap.h"
#include "core/pagemap.h"
#include "os/os.h"

static st_atomic_size xhuge_count;

/* The last few huge blocks unmapped: their pagemap entries are gone, so without this a
 * second free of one could only say "not allocated by strata". Slots are overwritten
 * round-robin; a racing pair of frees may lose one record, which only weakens the message. */
#define RECENT_HUGE 16
static st_atomic_uptr xrecent_huge[RECENT_HUGE];
static st_atomic_size xrecent_next;

static st_span_t *descriptor_new(void) {
  st_pageheap_t *ph = st__pageheap_of_cpu(sched_getcpu());
  st__pageheap_lock(ph);
  st_span_t *d = st__pageheap_desc_alloc_locked(ph);
  st__pageheap_unlock(ph);
  return d;
}

static void descriptor_delete(st_span_t *d) {
  st_pageheap_t *ph = st__pageheap_home(d);
  st__pageheap_lock(ph);
  st__pageheap_desc_free_locked(ph, d);
  st__pageheap_unlock(ph);
}

void *st__huge_alloc(size_t size, size_t align) {
  size_t bytes = size == 0 ? ST_PAGE_SIZE : st_align_up(size, ST_PAGE_SIZE);
  void *p = st__os_map_aligned(bytes, align);
  if (p == NULL && st__pageheap_unmap_free() > 0) p = st__os_map_aligned(bytes, align);
  if (p == NULL) return NULL;
  st_span_t *d = st__pagemap_reserve((uintptr_t)p, 1) ? descriptor_new() : NULL;
  if (d == NULL) {
    st__os_unmap(p, bytes);
    return NULL;
  }
  d->kind = ST_SPAN_HUGE;
  d->start = (uintptr_t)p;
  d->pages = bytes >> ST_PAGE_SHIFT;
  d->huge_mapped = bytes;
  st_store_relaxed(&d->xrequested, size);
  d->zeroed = 1;
  st__pagemap_set_one(d->start, d);
  st_counter_add(&xhuge_count, 1);
  st__events_in_use_add(bytes);
  return p;
}

void st__huge_free(st_span_t *d) {
  size_t slot = st_fetch_add_relaxed(&xrecent_next, 1) % RECENT_HUGE;
  st_store_relaxed(&xrecent_huge[slot], d->start);
  st__events_in_use_sub(d->huge_mapped);
  st__pagemap_set_one(d->start, NULL);
  st__os_unmap(st__span_start(d), d->huge_mapped);
  descriptor_delete(d);
}

void *st__huge_resize(st_span_t *d, size_t size) {
  size_t bytes = st_align_up(size, ST_PAGE_SIZE);
  void *old = st__span_start(d);
  void *p = bytes == d->huge_mapped ? old : st__os_remap(old, d->huge_mapped, bytes, NULL);
  if (p == NULL) { /* no room in place: move the pages onto a registered new mapping */
    void *target = st__os_map_aligned(bytes, ST_PAGE_SIZE);
    if (target == NULL) return NULL;
    if (!st__pagemap_reserve((uintptr_t)target, 1) ||
        (p = st__os_remap(old, d->huge_mapped, bytes, target)) == NULL) {
      st__os_unmap(target, bytes);
      return NULL;
    }
    st__pagemap_set_one(d->start, NULL);
  }
  st__events_in_use_sub(d->huge_mapped);
  st__events_in_use_add(bytes);
  /* Under the home lock: statistics and the heap picture read these while holding it. */
  st_pageheap_t *home = st__pageheap_home(d);
  st__pageheap_lock(home);
  d->start = (uintptr_t)p;
  d->pages = bytes >> ST_PAGE_SHIFT;
  d->huge_mapped = bytes;
  st__pageheap_unlock(home);
  st_store_relaxed(&d->xrequested, size);
  if (p != old) st__pagemap_set_one(d->start, d);
  return p;
}

bool st__huge_recently_freed(const void *p) {
  for (size_t i = 0; i < RECENT_HUGE; i++)
    if (st_load_relaxed(&xrecent_huge[i]) == (uintptr_t)p) return true;
  return false;
}

size_t st__huge_count(void) { return st_load_relaxed(&xhuge_count); }
