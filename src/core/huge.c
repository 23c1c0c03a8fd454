/*
 * huge.c — directly mapped blocks (see huge.h).
 *
 * The descriptor comes from the shard of the CPU that maps the block and goes back to
 * the same shard (span->xshard) whichever thread frees it.
 *
 * Transparent huge pages (STRATA_HUGE_PAGES): a block is mapped on a 2 MiB boundary and
 * advised MADV_HUGEPAGE, so writing it faults 2 MiB at a time (a 256 MiB block: 128
 * faults instead of 65,536). The mapping is not rounded up: the part of the block past its
 * last 2 MiB boundary keeps normal pages, so no block is resident beyond its own pages.
 * The page heap's regions are not advised: their free spans are purged 4 KiB-granular,
 * which splits huge pages, and khugepaged (max_ptes_none 511 by default) would fill a
 * partly purged 2 MiB range back in, making purged memory resident again.
 */
#include "core/huge.h"

#include <sched.h>

#include "base/options.h"
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

static bool use_huge_pages(size_t bytes) {
  return st_option(ST_OPTION_HUGE_PAGES) != 0 && bytes >= ST_OS_HUGE_PAGE_SIZE;
}

/* Maps a block of `bytes` (page multiple) on an `align` boundary, on a huge-page boundary
 * and advised for huge pages when they are used; a refused advice leaves a working
 * mapping of normal pages. */
static void *map_block(size_t bytes, size_t align) {
  bool huge_pages = use_huge_pages(bytes);
  if (huge_pages && align < ST_OS_HUGE_PAGE_SIZE) align = ST_OS_HUGE_PAGE_SIZE;
  void *p = st__os_map_aligned(bytes, align);
  if (p != NULL && huge_pages) st__os_advise_huge_pages(p, bytes);
  return p;
}

void *st__huge_alloc(size_t size, size_t align) {
  size_t bytes = size == 0 ? ST_PAGE_SIZE : st_align_up(size, ST_PAGE_SIZE);
  void *p = map_block(bytes, align);
  if (p == NULL && st__pageheap_unmap_free() > 0) p = map_block(bytes, align);
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
    /* The moved pages keep the block's advice; the target's boundary keeps its huge
     * pages whole (a target off the boundary would split them). */
    void *target = st__os_map_aligned(bytes, use_huge_pages(bytes) ? ST_OS_HUGE_PAGE_SIZE
                                                                   : ST_PAGE_SIZE);
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
