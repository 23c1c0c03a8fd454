/*
 * pagemap.c — leaf allocation and entry updates of the radix page map (see pagemap.h).
 *
 * Lock: leaf_lock serialises leaf creation only; entry updates are done by the span's
 * owner under the page heap or huge layer's own discipline. Leaves are published with a
 * release store after they are mapped (mapped memory is already zero).
 *
 * Each leaf is followed by its summary: one bit per page of the leaf (512 entries, 2 MiB
 * of address space), set when st__pagemap_reserve covers any of it. Only reserved ranges
 * ever hold entries, so the walk over all spans reads only those pages of a leaf: reading
 * the rest of an 8 MiB leaf, never written, made all of it resident (statistics at exit
 * grew a 24 MiB program by 2.8 MiB).
 */
#include "core/pagemap.h"

#include "base/lock.h"
#include "os/os.h"

st_pagemap_t st__pagemap;

static st_lock_t leaf_lock = ST_LOCK_INIT;
static st_atomic_size xleaf_bytes;
/* One bit per root entry, set when its leaf is created: the walk reads these 4 KiB
 * instead of the whole 256 KiB root, which reading made resident. */
static st_atomic_size xleaves_created[ST_PAGEMAP_ROOT_LEN / 64];

static uintptr_t reference_to(const void *object) { return (uintptr_t)object - (uintptr_t)&st__pagemap; }

#define ENTRIES_PER_LEAF_PAGE (ST_PAGE_SIZE / sizeof(st_pagemap_entry))
#define LEAF_PAGES (ST_PAGEMAP_LEAF_LEN / ENTRIES_PER_LEAF_PAGE)
#define LEAF_ENTRY_BYTES (ST_PAGEMAP_LEAF_LEN * sizeof(st_pagemap_entry))
#define LEAF_SUMMARY_WORDS (LEAF_PAGES / 64)
_Static_assert(LEAF_PAGES % 64 == 0 && LEAF_SUMMARY_WORDS * sizeof(st_atomic_size) <= ST_PAGE_SIZE,
               "a leaf's summary fits in the page that follows it");

static st_atomic_size *leaf_summary(st_pagemap_entry *leaf) {
  return (st_atomic_size *)(void *)(leaf + ST_PAGEMAP_LEAF_LEN);
}

static bool leaf_exists(size_t root_index) { return st_load_acquire(&st__pagemap.root[root_index]) != 0; }

static st_pagemap_entry *leaf_of(uintptr_t addr) {
  uintptr_t reference = st_load_acquire(&st__pagemap.root[addr >> ST_PAGEMAP_LEAF_SHIFT]);
  return (st_pagemap_entry *)((uintptr_t)&st__pagemap + reference);
}

static bool leaf_create(size_t root_index) {
  bool ok = true;
  st_lock_acquire(&leaf_lock);
  if (!leaf_exists(root_index)) {
    size_t bytes = LEAF_ENTRY_BYTES + ST_PAGE_SIZE; /* the entries, then the summary */
    st_pagemap_entry *leaf = st__os_map_aligned(bytes, ST_PAGE_SIZE);
    if (leaf != NULL) {
      st_counter_add(&xleaf_bytes, bytes);
      st_store_release(&st__pagemap.root[root_index], reference_to(leaf));
      (void)st_fetch_or_relaxed(&xleaves_created[root_index / 64], (size_t)1 << (root_index % 64));
    } else {
      ok = false;
    }
  }
  st_lock_release(&leaf_lock);
  return ok;
}

bool st__pagemap_reserve(uintptr_t addr, size_t pages) {
  uintptr_t end = addr + st__pages_to_bytes(pages);
  if (end > ((uintptr_t)ST_PAGEMAP_ROOT_LEN << ST_PAGEMAP_LEAF_SHIFT)) return false;
  for (size_t i = addr >> ST_PAGEMAP_LEAF_SHIFT; i <= (end - 1) >> ST_PAGEMAP_LEAF_SHIFT; i++) {
    if (!leaf_exists(i) && !leaf_create(i)) return false;
  }
  /* Mark the leaf pages whose entries the range may write (see the summary above). */
  size_t first = addr >> ST_PAGE_SHIFT, last = (end - 1) >> ST_PAGE_SHIFT;
  for (size_t page = first / ENTRIES_PER_LEAF_PAGE; page <= last / ENTRIES_PER_LEAF_PAGE; page++) {
    st_atomic_size *summary = leaf_summary(leaf_of((uintptr_t)page * ENTRIES_PER_LEAF_PAGE << ST_PAGE_SHIFT));
    size_t bit = page % LEAF_PAGES;
    size_t mask = (size_t)1 << (bit % 64);
    if ((st_load_relaxed(&summary[bit / 64]) & mask) == 0)
      (void)st_fetch_or_relaxed(&summary[bit / 64], mask);
  }
  return true;
}

void st__pagemap_set_one(uintptr_t addr, struct st_span *span) {
  st_pagemap_entry *leaf = leaf_of(addr);
  uintptr_t reference = span != NULL ? reference_to(span) : 0;
  st_store_release(&leaf[(addr >> ST_PAGE_SHIFT) & (ST_PAGEMAP_LEAF_LEN - 1)], reference);
}

void st__pagemap_set(uintptr_t addr, size_t pages, struct st_span *span) {
  for (size_t i = 0; i < pages; i++) st__pagemap_set_one(addr + st__pages_to_bytes(i), span);
}

/* Calls fn on the spans whose first page lies in leaf r, reading only the leaf pages its
 * summary marks. */
static void walk_leaf(size_t r, void (*fn)(struct st_span *span, void *arg), void *arg) {
  uintptr_t leaf_base = (uintptr_t)r << ST_PAGEMAP_LEAF_SHIFT;
  st_pagemap_entry *leaf = leaf_of(leaf_base);
  st_atomic_size *summary = leaf_summary(leaf);
  for (size_t i = 0; i < ST_PAGEMAP_LEAF_LEN;) {
    size_t page = i / ENTRIES_PER_LEAF_PAGE;
    if ((st_load_relaxed(&summary[page / 64]) >> (page % 64) & 1) == 0) {
      i = (page + 1) * ENTRIES_PER_LEAF_PAGE; /* never reserved: no entries, never read */
      continue;
    }
    uintptr_t reference = st_load_acquire(&leaf[i]); /* a huge block is filled in, then set */
    uintptr_t addr = leaf_base + (i << ST_PAGE_SHIFT);
    struct st_span *span = (struct st_span *)((uintptr_t)&st__pagemap + reference);
    /* Interior pages of slab spans and a free span's last page refer to a span that
     * starts elsewhere: only the first page counts, then the walk skips the span. */
    if (reference == 0 || span->start != addr) {
      i++;
      continue;
    }
    size_t pages = span->pages;
    fn(span, arg);
    i += pages == 0 || pages > ST_PAGEMAP_LEAF_LEN ? 1 : pages;
  }
}

void st__pagemap_for_each_span(void (*fn)(struct st_span *span, void *arg), void *arg) {
  for (size_t w = 0; w < ST_ARRAY_LEN(xleaves_created); w++) {
    for (uint64_t bits = st_load_relaxed(&xleaves_created[w]); bits != 0; bits &= bits - 1) {
      size_t r = w * 64 + st_ctz64(bits);
      if (leaf_exists(r)) walk_leaf(r, fn, arg);
    }
  }
}

size_t st__pagemap_bytes(void) { return st_load_relaxed(&xleaf_bytes); }

void st__pagemap_lock_for_fork(void) { st_lock_acquire(&leaf_lock); }

void st__pagemap_unlock_after_fork(void) { st_lock_release(&leaf_lock); }
