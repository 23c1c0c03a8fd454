/*
 * chunk.c — geometry, mapping and unmapping of slot chunks (see chunk.h).
 */
#include "special/chunk.h"

#include <errno.h>

#include "base/lock.h"
#include "os/os.h"

_Atomic(st_chunk_index_word *) st__chunk_index_top[ST_CHUNK_INDEX_TOP];
static st_lock_t chunk_index_lock = ST_LOCK_INIT; /* serialises the mapping of leaves */

void st__chunk_index_fork_lock(void) { st_lock_acquire(&chunk_index_lock); }
void st__chunk_index_fork_unlock(void) { st_lock_release(&chunk_index_lock); }

#define CHUNK_LEAF_BYTES (((size_t)1 << ST_CHUNK_LEAF_SHIFT) / 8)

/* The index word and bit of base's granule, mapping its leaf if need be; NULL when the
 * kernel refuses the leaf. */
static st_chunk_index_word *chunk_index_word(uintptr_t base, uint64_t *bit) {
  uintptr_t granule = base >> ST_CHUNK_GRANULE_SHIFT;
  size_t index = granule & (((uintptr_t)1 << ST_CHUNK_LEAF_SHIFT) - 1);
  *bit = UINT64_C(1) << (index % 64);
  _Atomic(st_chunk_index_word *) *slot = &st__chunk_index_top[granule >> ST_CHUNK_LEAF_SHIFT];
  st_chunk_index_word *leaf = st_load_acquire(slot);
  if (leaf == NULL) {
    st_lock_acquire(&chunk_index_lock);
    leaf = st_load_acquire(slot);
    if (leaf == NULL && (leaf = st__os_map_aligned(CHUNK_LEAF_BYTES, 0)) != NULL)
      st_store_release(slot, leaf); /* fresh mappings are zero: every bit clear */
    st_lock_release(&chunk_index_lock);
    if (leaf == NULL) return NULL;
  }
  return &leaf[index / 64];
}

int st__chunk_geometry(st_chunk_geometry *g, size_t slot, size_t align) {
  size_t first = st_align_up((size_t)ST_CHUNK_COLORS * ST_CACHE_LINE, align);
  if (slot > (ST_CHUNK_MAX_SIZE - first) / ST_CHUNK_MIN_SLOTS) return ENOMEM;
  size_t need = first + ST_CHUNK_MIN_SLOTS * slot;
  size_t chunk_size = need <= ST_CHUNK_MIN_SIZE ? ST_CHUNK_MIN_SIZE : st_pow2_ceil(need);
  g->slot = slot;
  g->chunk_size = chunk_size;
  g->first = first;
  g->capacity = (chunk_size - first) / slot;
  g->recip = (((uint64_t)1 << 32) + slot - 1) / slot;
  g->shift = st_log2_floor(chunk_size);
  return 0;
}

/* Maps the next run of the reserve: 1, 2, 4 ... up to ST_CHUNK_BATCH chunks, fewer when
 * the kernel refuses the larger run. */
static bool chunk_reserve_refill(st_chunk_reserve *r, const st_chunk_geometry *g) {
  size_t n = r->batches < 5 ? (size_t)1 << r->batches : ST_CHUNK_BATCH;
  if (n > ST_CHUNK_BATCH || g->chunk_size > ST_CHUNK_MAX_SIZE / n) n = 1;
  for (; n >= 1; n /= 2) {
    char *run = st__os_map_aligned(n * g->chunk_size, g->chunk_size);
    if (run != NULL) {
      r->next = run;
      r->left = n;
      r->batches++;
      return true;
    }
  }
  return false;
}

st_chunk_t *st__chunk_map(const st_chunk_geometry *g, st_chunk_reserve *r, void *owner) {
  if (r->left == 0 && !chunk_reserve_refill(r, g)) {
    errno = ENOMEM;
    return NULL;
  }
  uint64_t bit; /* chunks beyond the index's reach (not on today's kernels) are refused */
  st_chunk_index_word *word = (uintptr_t)r->next >> ST_CHUNK_INDEX_BITS != 0
                                  ? NULL
                                  : chunk_index_word((uintptr_t)r->next, &bit);
  if (word == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  st_chunk_t *c = st__chunk_of(r->next, g);
  r->next += g->chunk_size;
  r->left--;
  c->magic = ST_MAGIC_CHUNK;
  c->owner = owner;
  c->free = NULL;
  c->used = 0;
  c->fresh = st__chunk_slots(c, g);
  c->limit = c->fresh + g->capacity * g->slot;
  c->link.next = c->link.prev = NULL;
  atomic_fetch_or_explicit(word, bit, memory_order_release); /* after the header is built */
  return c;
}

void st__chunk_unmap(st_chunk_t *c, const st_chunk_geometry *g) {
  uint64_t bit;
  st_chunk_index_word *word = chunk_index_word(st__chunk_base(c, g), &bit); /* leaf exists */
  atomic_fetch_and_explicit(word, ~bit, memory_order_relaxed);
  c->magic = 0; /* in case the kernel keeps the pages (a failed munmap) */
  st__os_unmap((void *)st__chunk_base(c, g), g->chunk_size);
}

void st__chunk_reserve_release(st_chunk_reserve *r, const st_chunk_geometry *g) {
  if (r->left != 0) st__os_unmap(r->next, r->left * g->chunk_size);
  r->left = 0;
}
