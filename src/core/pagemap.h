/*
 * pagemap.h — from any address to the span that owns it, in O(1) without a lock.
 *
 * Owns: a two-level radix tree over the 47-bit user address space at page granularity.
 *
 *   address bits:  46 ........ 30 | 29 ........ 12 | 11 .. 0
 *                  root index     | leaf index     | offset in page
 *   root: static array of 2^17 leaf pointers (1 MiB of .bss, touched sparsely);
 *   leaf: 2^18 span pointers (2 MiB mapped on first use, never freed).
 *
 * Invariants: a slab span maps every one of its pages; a large or huge span maps its
 * first page; a free span maps its first and last page; every other entry is NULL.
 * Writers are the page heap and huge layers (under their locks); readers are any thread.
 * A pointer the program legitimately holds was published to it through some other
 * synchronisation, so readers use relaxed loads.
 */
#ifndef ST_CORE_PAGEMAP_H
#define ST_CORE_PAGEMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/atomics.h"
#include "base/macros.h"
#include "core/sizeclass.h"

struct st_span;

#define ST_PAGEMAP_LEAF_SHIFT 30
#define ST_PAGEMAP_ROOT_LEN ((size_t)1 << (47 - ST_PAGEMAP_LEAF_SHIFT))
#define ST_PAGEMAP_LEAF_LEN ((size_t)1 << (ST_PAGEMAP_LEAF_SHIFT - ST_PAGE_SHIFT))

typedef _Atomic(struct st_span *) st_pagemap_entry;

ST_HIDDEN extern _Atomic(st_pagemap_entry *) st__pagemap_root[ST_PAGEMAP_ROOT_LEN];

/* The span owning addr's page, or NULL (not strata's, interior of a large block, ...). */
ST_INLINE struct st_span *st__pagemap_lookup(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  uintptr_t root_index = a >> ST_PAGEMAP_LEAF_SHIFT;
  if (ST_UNLIKELY(root_index >= ST_PAGEMAP_ROOT_LEN)) return NULL;
  st_pagemap_entry *leaf = st_load_relaxed(&st__pagemap_root[root_index]);
  if (ST_UNLIKELY(leaf == NULL)) return NULL;
  return st_load_relaxed(&leaf[(a >> ST_PAGE_SHIFT) & (ST_PAGEMAP_LEAF_LEN - 1)]);
}

/* Makes sure the leaves covering [addr, addr + pages) exist; false when out of memory. */
ST_HIDDEN bool st__pagemap_reserve(uintptr_t addr, size_t pages);
/* Sets the entries of pages [addr, addr + pages) to span; the leaves must be reserved. */
ST_HIDDEN void st__pagemap_set(uintptr_t addr, size_t pages, struct st_span *span);
/* Sets one page's entry; the leaf must be reserved. */
ST_HIDDEN void st__pagemap_set_one(uintptr_t addr, struct st_span *span);
/* Bytes of leaves mapped so far (metadata accounting). */
ST_HIDDEN size_t st__pagemap_bytes(void);
/* Fork support: the leaf lock. */
ST_HIDDEN void st__pagemap_lock_for_fork(void);
ST_HIDDEN void st__pagemap_unlock_after_fork(bool child);

#endif
