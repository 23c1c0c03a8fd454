/*
 * pagemap.c — leaf allocation and entry updates of the radix page map (see pagemap.h).
 *
 * Lock: leaf_lock serialises leaf creation only; entry updates are done by the span's
 * owner under the page heap or huge layer's own discipline. Leaves are published with a
 * release store after they are mapped (mapped memory is already zero).
 */
#include "core/pagemap.h"

#include "base/lock.h"
#include "os/os.h"

st_pagemap_t st__pagemap;

static st_lock_t leaf_lock = ST_LOCK_INIT;
static st_atomic_size xleaf_bytes;

static uintptr_t reference_to(const void *object) { return (uintptr_t)object - (uintptr_t)&st__pagemap; }

static bool leaf_exists(size_t root_index) { return st_load_acquire(&st__pagemap.root[root_index]) != 0; }

static st_pagemap_entry *leaf_of(uintptr_t addr) {
  uintptr_t reference = st_load_acquire(&st__pagemap.root[addr >> ST_PAGEMAP_LEAF_SHIFT]);
  return (st_pagemap_entry *)((uintptr_t)&st__pagemap + reference);
}

static bool leaf_create(size_t root_index) {
  bool ok = true;
  st_lock_acquire(&leaf_lock);
  if (!leaf_exists(root_index)) {
    size_t bytes = ST_PAGEMAP_LEAF_LEN * sizeof(st_pagemap_entry);
    st_pagemap_entry *leaf = st__os_map_aligned(bytes, ST_PAGE_SIZE);
    if (leaf != NULL) {
      st_counter_add(&xleaf_bytes, bytes);
      st_store_release(&st__pagemap.root[root_index], reference_to(leaf));
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

void st__pagemap_for_each_span(void (*fn)(struct st_span *span, void *arg), void *arg) {
  for (size_t r = 0; r < ST_PAGEMAP_ROOT_LEN; r++) {
    if (!leaf_exists(r)) continue;
    uintptr_t leaf_base = (uintptr_t)r << ST_PAGEMAP_LEAF_SHIFT;
    st_pagemap_entry *leaf = leaf_of(leaf_base);
    for (size_t i = 0; i < ST_PAGEMAP_LEAF_LEN;) {
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
}

size_t st__pagemap_bytes(void) { return st_load_relaxed(&xleaf_bytes); }

void st__pagemap_lock_for_fork(void) { st_lock_acquire(&leaf_lock); }

void st__pagemap_unlock_after_fork(void) { st_lock_release(&leaf_lock); }
