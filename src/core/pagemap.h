/*
 * pagemap.h — from any address to the span that owns it, in O(1) without a lock.
 *
 * Owns: a two-level radix tree over the 47-bit user address space at page granularity.
 *
 *   address bits:  46 ........ 32 | 31 ........ 12 | 11 .. 0
 *                  root index     | leaf index     | offset in page
 *   root: static array of 2^15 leaf references (256 KiB of .bss, touched sparsely);
 *   leaf: 2^20 span references (8 MiB mapped on first use, never freed; only the entries
 *   of pages in use are ever written, so only they become resident), then a page whose
 *   first 256 bytes say which of the leaf's pages may hold entries.
 * A leaf index is the low half of the address shifted: one 32-bit move and a shift on the
 * free fast path, with no mask.
 *
 * References are offsets from st__pagemap itself, so that 0, the value of every entry
 * never written, refers to something readable: in the root, the empty leaf (a .bss leaf
 * never written, whose entries are all 0), and in a leaf, st__pagemap.none (a span whose
 * fields are all zero, so no thread owns it). A lookup is then two loads and two adds
 * with no test for absent levels, which keeps two branches off the free fast path.
 *
 * Invariants: a slab span maps every one of its pages; a large or huge span maps its
 * first page; a free span maps its first and last page; every other entry is 0 (none).
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

#include "core/span.h"

#define ST_PAGEMAP_LEAF_SHIFT 32
#define ST_PAGEMAP_ROOT_LEN ((size_t)1 << (47 - ST_PAGEMAP_LEAF_SHIFT))
#define ST_PAGEMAP_LEAF_LEN ((size_t)1 << (ST_PAGEMAP_LEAF_SHIFT - ST_PAGE_SHIFT))

/* An entry: the referenced object's address minus &st__pagemap (unsigned, may wrap). */
typedef st_atomic_uptr st_pagemap_entry;

/* Invariant: none and empty_leaf are never written, so both read as zero. */
typedef struct st_pagemap {
  union {
    struct st_span none;
    st_pagemap_entry empty_leaf[ST_PAGEMAP_LEAF_LEN];
  };
  st_pagemap_entry root[ST_PAGEMAP_ROOT_LEN];
} st_pagemap_t;

ST_HIDDEN extern st_pagemap_t st__pagemap;

_Static_assert(ST_PAGEMAP_LEAF_SHIFT == 32, "a leaf index is the low 32 bits shifted");

/* The span owning addr's page, or &st__pagemap.none when there is none (not strata's,
 * interior of a large block, past the user address space, ...). No thread owns none, so
 * the free fast path needs no other test before it compares the owner. The root index is
 * compared, not masked: a masked lookup would fold addresses past the user space onto
 * spans, and the free fast path's block check cannot see every fold (for 16-byte blocks
 * M * 2^47 is 0 modulo 2^64: tests/unit/test_block_start.c). */
ST_INLINE struct st_span *st__pagemap_lookup_or_none(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  uintptr_t root_index = a >> ST_PAGEMAP_LEAF_SHIFT;
  if (ST_UNLIKELY(root_index >= ST_PAGEMAP_ROOT_LEN)) return &st__pagemap.none;
  uintptr_t base = (uintptr_t)&st__pagemap;
  st_pagemap_entry *leaf = (st_pagemap_entry *)(base + st_load_relaxed_word(&st__pagemap.root[root_index]));
  return (struct st_span *)(base + st_load_relaxed_word(&leaf[(uint32_t)a >> ST_PAGE_SHIFT]));
}

/* The same with acquire loads, for readers that hold no pointer into the span and so were
 * not handed it through other synchronisation: the page heap looking at a neighbour,
 * which may be another shard's span created a moment ago. NULL when there is none. */
ST_INLINE struct st_span *st__pagemap_lookup_acquire(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  uintptr_t root_index = a >> ST_PAGEMAP_LEAF_SHIFT;
  if (ST_UNLIKELY(root_index >= ST_PAGEMAP_ROOT_LEN)) return NULL;
  uintptr_t base = (uintptr_t)&st__pagemap;
  st_pagemap_entry *leaf =
      (st_pagemap_entry *)(base + st_load_acquire(&st__pagemap.root[root_index]));
  uintptr_t entry = st_load_acquire(&leaf[(a >> ST_PAGE_SHIFT) & (ST_PAGEMAP_LEAF_LEN - 1)]);
  return entry != 0 ? (struct st_span *)(base + entry) : NULL;
}

/* The span owning addr's page, or NULL. */
ST_INLINE struct st_span *st__pagemap_lookup(const void *addr) {
  struct st_span *span = st__pagemap_lookup_or_none(addr);
  return span != &st__pagemap.none ? span : NULL;
}

/* Makes sure the leaves covering [addr, addr + pages) exist; false when out of memory. */
ST_HIDDEN bool st__pagemap_reserve(uintptr_t addr, size_t pages);
/* Sets the entries of pages [addr, addr + pages) to span; the leaves must be reserved. */
ST_HIDDEN void st__pagemap_set(uintptr_t addr, size_t pages, struct st_span *span);
/* Sets one page's entry; the leaf must be reserved. */
ST_HIDDEN void st__pagemap_set_one(uintptr_t addr, struct st_span *span);
/* Calls fn once on every span whose first page is mapped (each SLAB, LARGE, HUGE and FREE
 * span), in address order. Entries change under the callers' locks, not this walk's: a
 * caller that needs a stable picture holds every page heap lock (huge blocks may still
 * come and go; their descriptors stay readable). */
ST_HIDDEN void st__pagemap_for_each_span(void (*fn)(struct st_span *span, void *arg), void *arg);
/* Bytes of leaves mapped so far (metadata accounting). */
ST_HIDDEN size_t st__pagemap_bytes(void);
/* Fork support: the leaf lock. */
ST_HIDDEN void st__pagemap_lock_for_fork(void);
ST_HIDDEN void st__pagemap_unlock_after_fork(void);

#endif
