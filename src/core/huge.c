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
 *
 * Reuse (hugecache.h): a freed block's mapping may wait in the cache for the next request,
 * which takes the shortest cached mapping that holds it and gives back the tail it does not
 * need (the start keeps its 2 MiB boundary), or grows the longest one with mremap, in place
 * or moved onto a new mapping on the boundary: the old pages move without a copy and only
 * the rest faults. calloc never reuses (a cached block is not zero, and clearing it would
 * make a sparse block resident); hardened mode never caches (its guard page goes with the
 * mapping, and a freed block must fault when written).
 */
#include "core/huge.h"

#include <sched.h>

#include "base/options.h"
#include "core/events.h"
#include "core/hugecache.h"
#include "core/page.h"
#include "core/pageheap.h"
#include "core/pagemap.h"
#include "os/os.h"

static st_atomic_size xhuge_count;

/* The last few huge blocks freed (unmapped or cached): their pagemap entries are gone, so
 * without this a second free of one could only say "not allocated by strata". Slots are
 * overwritten round-robin; a racing pair of frees may lose one record, which only weakens
 * the message. */
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

/* The boundary a block of `bytes` starts on: its alignment, and the huge-page boundary
 * when it uses huge pages. */
static size_t block_align(size_t bytes, size_t align) {
  if (align < ST_PAGE_SIZE) align = ST_PAGE_SIZE;
  return use_huge_pages(bytes) && align < ST_OS_HUGE_PAGE_SIZE ? ST_OS_HUGE_PAGE_SIZE : align;
}

/* Maps a block of `bytes` (page multiple) on its boundary (block_align), advised for huge
 * pages when they are used; a refused advice leaves a working mapping of normal pages. */
static void *map_block(size_t bytes, size_t align) {
  void *p = st__os_map_aligned(bytes, block_align(bytes, align));
  if (p != NULL && use_huge_pages(bytes)) st__os_advise_huge_pages(p, bytes);
  return p;
}

/* Moves the pages of the mapping old (old_bytes) onto a new mapping of `bytes` on the
 * block's boundary, registered in the pagemap, without copying them; the moved pages keep
 * their advice, and the boundary keeps huge pages whole. NULL, old intact, on failure. */
static void *move_mapping(void *old, size_t old_bytes, size_t bytes, size_t align) {
  void *target = st__os_map_aligned(bytes, block_align(bytes, align));
  if (target == NULL) return NULL;
  void *p = NULL;
  if (!st__pagemap_reserve((uintptr_t)target, 1) ||
      (p = st__os_remap(old, old_bytes, bytes, target)) == NULL)
    st__os_unmap(target, bytes);
  return p;
}

/* A block of `bytes` on its boundary made from a cached mapping (hugecache.h), or NULL,
 * the cache then empty, when it holds none on that boundary. */
static void *reuse_cached(size_t bytes, size_t align) {
  size_t have;
  void *p = st__hugecache_take(bytes, block_align(bytes, align), &have);
  if (p == NULL || have == bytes) return p;
  if (have > bytes) {
    st__os_unmap((char *)p + bytes, have - bytes);
    return p;
  }
  /* The pages past the mapping's last huge-page boundary are 4 KiB pages, and the rest of
   * that 2 MiB would fault 4 KiB at a time once grown: given back, it faults as one huge
   * page (`large`: 8,186 -> 6,390 faults for 6 more huge-page faults, docs/memory.md). */
  size_t whole = use_huge_pages(bytes) ? have & ~(ST_OS_HUGE_PAGE_SIZE - 1) : have;
  if (whole < have && whole != 0) {
    st__os_unmap((char *)p + whole, have - whole);
    have = whole;
  }
  void *q = st__os_remap(p, have, bytes, NULL);
  if (q == NULL) q = move_mapping(p, have, bytes, align);
  if (q == NULL) st__os_unmap(p, have); /* out of memory: the caller maps afresh, or fails */
  return q;
}

void *st__huge_alloc(size_t size, size_t align, bool zero) {
  size_t bytes = size == 0 ? ST_PAGE_SIZE : st_align_up(size, ST_PAGE_SIZE);
  st__hugecache_release_due(st__os_now_ms());
  void *p = NULL;
  if (zero) st__hugecache_release_all(); /* no reuse, and nothing cached beside a new block */
  else p = reuse_cached(bytes, align);
  bool reused = p != NULL;
  if (p == NULL) p = map_block(bytes, align);
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
  d->zeroed = !reused;
  st__pagemap_set_one(d->start, d);
  st_counter_add(&xhuge_count, 1);
  st__events_in_use_add(bytes);
  return p;
}

void st__huge_free(st_span_t *d) {
  size_t slot = st_fetch_add_relaxed(&xrecent_next, 1) % RECENT_HUGE;
  st_store_relaxed(&xrecent_huge[slot], d->start);
  void *p = st__span_start(d);
  size_t bytes = d->huge_mapped;
  st__events_in_use_sub(bytes);
  st__pagemap_set_one(d->start, NULL);
  descriptor_delete(d);
  if (st__page_hardened() || !st__hugecache_put(p, bytes)) st__os_unmap(p, bytes);
}

void *st__huge_resize(st_span_t *d, size_t size) {
  size_t bytes = st_align_up(size, ST_PAGE_SIZE);
  void *old = st__span_start(d);
  if (bytes > d->huge_mapped) st__hugecache_release_all(); /* growing maps memory */
  void *p = bytes == d->huge_mapped ? old : st__os_remap(old, d->huge_mapped, bytes, NULL);
  if (p == NULL) { /* no room in place: move the pages onto a registered new mapping */
    if ((p = move_mapping(old, d->huge_mapped, bytes, ST_PAGE_SIZE)) == NULL) return NULL;
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
