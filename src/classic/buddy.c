/*
 * buddy.c — the binary buddy system (backend.h).
 *
 * Owns: blocks of 2^k bytes (k = BUDDY_MIN_ORDER .. BUDDY_MAX_ORDER) inside arena regions,
 * one free list per order, splitting on allocation and merging by address on free.
 *
 *   region (4 MiB, aligned to 4 MiB):
 *   [ header | order map: one byte per 32-byte unit | blocks of 2^k at offsets that are
 *     multiples of 2^k ...................................................................]
 *   The buddy of the block at offset o of order k is at o ^ 2^k: a free block merges with
 *   its buddy when the map says the buddy is free and of the same order.
 *   map[o / 32] = 0 (not a block start, or metadata), BUDDY_FREE | k, or BUDDY_LIVE | k.
 *
 * A block of order k is aligned to 2^k (the region is), so an aligned request is a request
 * of order >= log2(alignment). Metadata is out of band, so the whole block is usable: the
 * price is internal waste up to half the block for sizes just above a power of two.
 * Invariants: every free block is on the list of its order and marked BUDDY_FREE in the
 * map; two free buddies of the same order never coexist (they merge at once).
 */
#include <string.h>

#include "base/check.h"
#include "base/report.h"
#include "classic/backend.h"

#define BUDDY_MIN_ORDER 5 /* 32 bytes: holds the two list links */
#define BUDDY_REGION_ORDER 22
#define BUDDY_MAX_ORDER (BUDDY_REGION_ORDER - 1)
#define BUDDY_UNITS ((size_t)1 << (BUDDY_REGION_ORDER - BUDDY_MIN_ORDER))
#define BUDDY_FREE 0x40
#define BUDDY_LIVE 0x80
#define BUDDY_ORDER_MASK 0x1f
/* Header and map, rounded to whole minimum blocks: never handed out. */
#define BUDDY_RESERVED st_align_up(ST_REGION_DATA_ALIGN + BUDDY_UNITS, (size_t)1 << BUDDY_MIN_ORDER)

_Static_assert(ST_REGION_ARENA_BYTES == (size_t)1 << BUDDY_REGION_ORDER, "one region, one tree");

typedef struct buddy_block {
  struct buddy_block *next, *prev;
} buddy_block;

typedef struct buddy_state {
  buddy_block lists[BUDDY_MAX_ORDER + 1]; /* sentinels; orders below the minimum unused */
  uint32_t nonempty;                      /* bit k: lists[k] holds a block */
} buddy_state;

_Static_assert(sizeof(buddy_state) <= ST_BACKEND_STATE_BYTES, "buddy state fits the heap");

ST_INLINE uint8_t *order_map(const st_region_t *r) { return (uint8_t *)r + ST_REGION_DATA_ALIGN; }
ST_INLINE size_t unit_of(const st_region_t *r, const void *p) {
  return (size_t)((const char *)p - (const char *)r) >> BUDDY_MIN_ORDER;
}
/* The region of a block: arena regions are aligned to their size. */
ST_INLINE st_region_t *region_of(const void *p) {
  return (st_region_t *)st_align_down_ptr((uintptr_t)p, ST_REGION_ARENA_BYTES);
}

static unsigned order_for(size_t size, size_t align) {
  size_t n = size > align ? size : align;
  unsigned k = st_log2_floor(st_pow2_ceil(n));
  return k < BUDDY_MIN_ORDER ? BUDDY_MIN_ORDER : k;
}

static void list_push(buddy_state *s, buddy_block *b, unsigned k) {
  buddy_block *head = &s->lists[k];
  b->next = head->next;
  b->prev = head;
  head->next->prev = b;
  head->next = b;
  s->nonempty |= 1u << k;
  order_map(region_of(b))[unit_of(region_of(b), b)] = (uint8_t)(BUDDY_FREE | k);
}

static void list_remove(buddy_state *s, buddy_block *b, unsigned k) {
  b->prev->next = b->next;
  b->next->prev = b->prev;
  if (s->lists[k].next == &s->lists[k]) s->nonempty &= ~(1u << k);
  order_map(region_of(b))[unit_of(region_of(b), b)] = 0;
}

static void *buddy_alloc(void *state, size_t size, size_t align, size_t *usable) {
  buddy_state *s = state;
  unsigned k = order_for(size, align);
  uint32_t candidates = s->nonempty & ~((1u << k) - 1);
  if (k > BUDDY_MAX_ORDER || candidates == 0) return NULL;
  unsigned j = st_ctz64(candidates);
  buddy_block *b = s->lists[j].next;
  list_remove(s, b, j);
  while (j > k) { /* split: keep the lower half, free the upper */
    j--;
    list_push(s, (buddy_block *)((char *)b + ((size_t)1 << j)), j);
  }
  st_region_t *r = region_of(b);
  order_map(r)[unit_of(r, b)] = (uint8_t)(BUDDY_LIVE | k);
  *usable = (size_t)1 << k;
  return b;
}

/* The order of the live block starting at p, or a diagnostic. */
static unsigned live_order(const st_region_t *r, const void *p, const char *fn) {
  ST_CHECK((uintptr_t)p % ((size_t)1 << BUDDY_MIN_ORDER) == 0 &&
               (const char *)p >= (const char *)r + BUDDY_RESERVED,
           "%s(): invalid pointer %p (not the start of a block)", fn, p);
  uint8_t m = order_map(r)[unit_of(r, p)];
  if (m & BUDDY_FREE)
    st__fatal("%s(): double free of %p (block of %zu bytes already free)", fn, p,
              (size_t)1 << (m & BUDDY_ORDER_MASK));
  ST_CHECK(m & BUDDY_LIVE, "%s(): invalid pointer %p (not the start of a live block)", fn, p);
  return m & BUDDY_ORDER_MASK;
}

static size_t buddy_free(void *state, st_region_t *r, void *p, const char *fn) {
  buddy_state *s = state;
  unsigned k = live_order(r, p, fn);
  size_t freed = (size_t)1 << k;
  uintptr_t base = (uintptr_t)r, offset = (uintptr_t)p - base;
  order_map(r)[offset >> BUDDY_MIN_ORDER] = 0;
  for (; k < BUDDY_MAX_ORDER; k++) { /* merge while the buddy is free and whole */
    uintptr_t buddy = offset ^ ((uintptr_t)1 << k);
    if (order_map(r)[buddy >> BUDDY_MIN_ORDER] != (BUDDY_FREE | k)) break;
    list_remove(s, (buddy_block *)(base + buddy), k);
    offset &= ~((uintptr_t)1 << k);
  }
  list_push(s, (buddy_block *)(base + offset), k);
  return freed;
}

static size_t buddy_usable(const void *state, const st_region_t *r, const void *p, const char *fn) {
  ST_UNUSED(state);
  return (size_t)1 << live_order(r, p, fn);
}

/* In place only while the block already holds size bytes (a buddy allocator cannot move
 * its block's boundaries without changing its order). */
static bool buddy_resize(void *state, st_region_t *r, void *p, size_t size, size_t *usable) {
  ST_UNUSED(state);
  size_t have = (size_t)1 << live_order(r, p, "realloc");
  *usable = have;
  return size <= have && (size > have / 2 || have == ((size_t)1 << BUDDY_MIN_ORDER));
}

/* Cuts [BUDDY_RESERVED, region end) into the largest aligned blocks and frees them. */
static void buddy_add_region(void *state, st_region_t *r) {
  size_t offset = BUDDY_RESERVED;
  while (offset < ST_REGION_ARENA_BYTES) {
    unsigned k = st_ctz64(offset);
    if (k > BUDDY_MAX_ORDER) k = BUDDY_MAX_ORDER;
    list_push(state, (buddy_block *)((char *)r + offset), k);
    offset += (size_t)1 << k;
  }
}

static void buddy_remove_region(void *state, st_region_t *r) {
  for (size_t offset = BUDDY_RESERVED; offset < ST_REGION_ARENA_BYTES;) {
    uint8_t m = order_map(r)[offset >> BUDDY_MIN_ORDER];
    ST_CHECK(m & BUDDY_FREE, "buddy: removing region %p, which is not empty", (void *)r);
    list_remove(state, (buddy_block *)((char *)r + offset), m & BUDDY_ORDER_MASK);
    offset += (size_t)1 << (m & BUDDY_ORDER_MASK);
  }
}

static bool buddy_validate(const void *state, const st_region_t *r) {
  ST_UNUSED(state);
  size_t live = 0;
  for (size_t offset = BUDDY_RESERVED; offset < ST_REGION_ARENA_BYTES;) {
    uint8_t m = order_map(r)[offset >> BUDDY_MIN_ORDER];
    unsigned k = m & BUDDY_ORDER_MASK;
    if (!(m & (BUDDY_FREE | BUDDY_LIVE)) || k < BUDDY_MIN_ORDER || offset % ((size_t)1 << k) != 0) {
      st__report("buddy: region %p offset %zu: bad map entry %x", (void *)r, offset, (unsigned)m);
      return false;
    }
    uintptr_t buddy = offset ^ ((uintptr_t)1 << k);
    if ((m & BUDDY_FREE) && k < BUDDY_MAX_ORDER && buddy >= BUDDY_RESERVED &&
        order_map(r)[buddy >> BUDDY_MIN_ORDER] == (BUDDY_FREE | k)) {
      st__report("buddy: region %p: free buddies of order %u at %zu not merged", (void *)r, k,
                 offset);
      return false;
    }
    if (m & BUDDY_LIVE) live += (size_t)1 << k;
    offset += (size_t)1 << k;
  }
  if (live != r->used) {
    st__report("buddy: region %p: live %zu, expected %zu", (void *)r, live, r->used);
    return false;
  }
  return true;
}

static void buddy_visit(const void *state, const st_region_t *r, st_heap_visitor fn, void *arg) {
  ST_UNUSED(state);
  for (size_t offset = BUDDY_RESERVED; offset < ST_REGION_ARENA_BYTES;) {
    uint8_t m = order_map(r)[offset >> BUDDY_MIN_ORDER];
    size_t size = (size_t)1 << (m & BUDDY_ORDER_MASK);
    if (m & BUDDY_LIVE) fn((const char *)r + offset, size, arg);
    offset += size;
  }
}

static void buddy_init(void *state) {
  buddy_state *s = state;
  memset(s, 0, sizeof *s);
  for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
    s->lists[k].next = s->lists[k].prev = &s->lists[k];
}

const st_backend st__backend_buddy = {.name = "buddy",
                                      .init = buddy_init,
                                      .add_region = buddy_add_region,
                                      .remove_region = buddy_remove_region,
                                      .alloc = buddy_alloc,
                                      .free = buddy_free,
                                      .usable = buddy_usable,
                                      .resize = buddy_resize,
                                      .validate = buddy_validate,
                                      .visit = buddy_visit};
