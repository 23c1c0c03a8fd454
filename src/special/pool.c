/*
 * pool.c — fixed-size object pools: st_pool_* (public API in strata.h).
 *
 * Owns: one pool's chunks and their free lists, the policy that gives empty chunks back,
 * and the misuse checks of st_pool_free. Calls: special/chunk.h, special/handle.h, base/.
 *
 * Each chunk (chunk.h) keeps its own free list, linked through word 0 of each free slot;
 * word 1 of a free slot holds the pool's key, so a free of a slot whose word 1 is the key
 * is a suspected double free, confirmed by a walk of that chunk's free list (a live object
 * never keeps the key there: allocation clears the word). Allocation pops from the current
 * chunk `cur`; frees push to the slot's own chunk, found by masking the address.
 * Chunk states and where they are (invariant):
 *   cur    the chunk allocations come from (may be full or empty); on no list
 *   avail  other chunks with a free slot (never with fresh slots: only cur carves them)
 *   full   other chunks with no free slot
 *   spare  at most one other empty chunk, kept so a pool that drains and refills does not
 *          map and unmap a chunk each time; further empty chunks are unmapped at once
 * With ST_POOL_THREAD_SAFE every call takes the pool's lock (lock order: registry, pool).
 */
#include <errno.h>
#include <stdbool.h>

#include "base/atomics.h"
#include "base/check.h"
#include "base/lock.h"
#include "special/chunk.h"
#include "special/handle.h"
#include "strata.h"

#define POOL_MIN_SLOT (2 * sizeof(void *)) /* the free-list link and the key */

struct st_pool {
  uint64_t magic;          /* ST_MAGIC_POOL while live (handle.h) */
  st_chunk_t *cur;         /* where allocations come from; NULL before the first; lock */
  uintptr_t key;           /* word 1 of every free slot; odd, so never a slot address; const */
  unsigned flags;          /* ST_POOL_THREAD_SAFE or 0; const */
  st_chunk_geometry geo;   /* const */
  size_t object_size;      /* as created; const */
  st_list_t avail, full;   /* chunks other than cur (see the header); lock */
  st_chunk_t *spare;       /* one empty chunk kept for reuse, or NULL; lock */
  size_t chunks;           /* chunks mapped, cur and spare included; lock */
  size_t released;         /* empty chunks unmapped so far; lock */
  st_lock_t lock;          /* taken by every call when ST_POOL_THREAD_SAFE */
};
_Static_assert(sizeof(struct st_pool) <= ST_HANDLE_SLOT_SIZE, "a pool fits a handle slot");

typedef struct free_slot {
  struct free_slot *next; /* word 0 */
  uintptr_t key;          /* word 1: the pool's key while the slot is free */
} free_slot;

static ST_COLD ST_NOINLINE _Noreturn void pool_fatal_not_live(const char *fn, const void *p) {
  st__fatal("%s(): %p is not a live pool (destroyed, or never created)", fn, p);
}

ST_INLINE void pool_check_live(st_pool_t *p, const char *fn) {
  if (ST_UNLIKELY(st__handle_magic(p) != ST_MAGIC_POOL)) pool_fatal_not_live(fn, p);
}

static uintptr_t pool_new_key(const void *p) {
  static st_atomic_size xpools_created;
  uint64_t x = (uintptr_t)p ^ ((uint64_t)st_fetch_add_relaxed(&xpools_created, 1) << 40);
  x += UINT64_C(0x9e3779b97f4a7c15); /* splitmix64 finaliser: a key unlikely in user data */
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return (uintptr_t)(x ^ (x >> 31)) | 1;
}

st_pool_t *st_pool_create(size_t object_size, size_t align, unsigned flags) {
  if (align == 0) align = ST_MIN_ALIGN;
  if (object_size == 0 || !st_is_pow2(align) || (flags & ~(unsigned)ST_POOL_THREAD_SAFE)) {
    errno = EINVAL;
    return NULL;
  }
  if (align < sizeof(void *)) align = sizeof(void *);
  st_chunk_geometry geo;
  if (align > ST_CHUNK_MAX_SIZE || object_size > ST_CHUNK_MAX_SIZE ||
      st__chunk_geometry(&geo, st_align_up(object_size < POOL_MIN_SLOT ? POOL_MIN_SLOT
                                                                       : object_size, align),
                         align) != 0) {
    errno = ENOMEM;
    return NULL;
  }
  st_pool_t *p = st__handle_new();
  if (p == NULL) return NULL;
  p->key = pool_new_key(p);
  p->flags = flags;
  p->geo = geo;
  p->object_size = object_size;
  st_list_init(&p->avail);
  st_list_init(&p->full);
  st_lock_init(&p->lock);
  st__handle_publish(p, ST_MAGIC_POOL);
  return p;
}

/* cur has no free and no fresh slot: makes another chunk current. */
static st_chunk_t *pool_next_chunk_locked(st_pool_t *p) {
  st_chunk_t *c = p->cur;
  if (c != NULL) st_list_push_front(&p->full, &c->link);
  p->cur = NULL;
  if (!st_list_empty(&p->avail)) {
    c = ST_CONTAINER_OF(p->avail.next, st_chunk_t, link);
    st_list_remove(&c->link);
  } else if (p->spare != NULL) {
    c = p->spare;
    p->spare = NULL;
  } else {
    c = st__chunk_map(&p->geo, p);
    if (c == NULL) return NULL;
    p->chunks++;
  }
  return p->cur = c;
}

static ST_NOINLINE void *pool_alloc_slow(st_pool_t *p) {
  st_chunk_t *c = p->cur;
  if (c == NULL || (c->free == NULL && c->fresh == c->limit)) {
    c = pool_next_chunk_locked(p);
    if (c == NULL) return NULL;
  }
  free_slot *s = c->free;
  if (s != NULL) c->free = s->next;
  else s = (free_slot *)c->fresh, c->fresh += p->geo.slot;
  s->key = 0;
  c->used++;
  return s;
}

/* The fast path: a pop from the current chunk's free list. */
ST_INLINE void *pool_alloc_unlocked(st_pool_t *p) {
  st_chunk_t *c = p->cur;
  free_slot *s;
  if (ST_UNLIKELY(c == NULL || (s = c->free) == NULL)) return pool_alloc_slow(p);
  c->free = s->next;
  s->key = 0; /* a live object never shows the key (see the header) */
  c->used++;
  return s;
}

static ST_NOINLINE void *pool_alloc_locked(st_pool_t *p) {
  st_lock_acquire(&p->lock);
  void *obj = pool_alloc_unlocked(p);
  st_lock_release(&p->lock);
  return obj;
}

void *st_pool_alloc(st_pool_t *p) {
  if (ST_UNLIKELY(p == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  pool_check_live(p, "st_pool_alloc");
  return ST_UNLIKELY(p->flags & ST_POOL_THREAD_SAFE) ? pool_alloc_locked(p)
                                                      : pool_alloc_unlocked(p);
}

/* A free slot's word 1 held the key: aborts if obj is on its chunk's free list. The walk
 * is bounded by the chunk's capacity, so a corrupted list cannot loop for ever. */
static ST_COLD ST_NOINLINE void pool_check_double_free(st_pool_t *p, st_chunk_t *c, void *obj) {
  size_t steps = 0;
  for (free_slot *s = c->free; s != NULL && steps < p->geo.capacity; s = s->next, steps++)
    if (s == (free_slot *)obj) st__fatal("st_pool_free(): double free of %p (pool %p)", obj, p);
}

/* c became empty or stopped being full (see the header for the states). */
static ST_NOINLINE void pool_chunk_changed(st_pool_t *p, st_chunk_t *c, bool was_full) {
  if (c == p->cur) return;
  if (was_full) {
    st_list_remove(&c->link);
    st_list_push_front(&p->avail, &c->link);
  }
  if (c->used != 0) return;
  st_list_remove(&c->link);
  if (p->spare == NULL) {
    p->spare = c;
    return;
  }
  st__chunk_unmap(c, &p->geo);
  p->chunks--;
  p->released++;
}

static ST_COLD ST_NOINLINE _Noreturn void pool_fatal_misfit(st_pool_t *p, void *obj, const char *why) {
  st__fatal("st_pool_free(): %p is %s pool %p", obj, why, (void *)p);
}

ST_INLINE void pool_free_unlocked(st_pool_t *p, void *obj) {
  const char *why = st__chunk_misfit(obj, p, &p->geo); /* reads c->fresh: under the lock */
  if (ST_UNLIKELY(why != NULL)) pool_fatal_misfit(p, obj, why);
  st_chunk_t *c = st__chunk_of(obj, &p->geo);
  free_slot *s = obj;
  if (ST_UNLIKELY(s->key == p->key)) pool_check_double_free(p, c, obj);
  free_slot *next = c->free;
  s->next = next;
  s->key = p->key;
  c->free = s;
  size_t used = --c->used;
  if (ST_UNLIKELY(next == NULL || used == 0)) pool_chunk_changed(p, c, next == NULL);
}

static ST_NOINLINE void pool_free_locked(st_pool_t *p, void *obj) {
  st_lock_acquire(&p->lock);
  pool_free_unlocked(p, obj);
  st_lock_release(&p->lock);
}

void st_pool_free(st_pool_t *p, void *obj) {
  if (ST_UNLIKELY(obj == NULL)) return;
  pool_check_live(p, "st_pool_free");
  if (ST_UNLIKELY(p->flags & ST_POOL_THREAD_SAFE)) pool_free_locked(p, obj);
  else pool_free_unlocked(p, obj);
}

/* Calls fn on every mapped chunk: cur, spare, avail and full. fn may unmap the chunk. */
static void pool_for_each_chunk(st_pool_t *p, void (*fn)(st_pool_t *p, st_chunk_t *c, void *arg),
                                void *arg) {
  st_list_t *lists[] = {&p->avail, &p->full};
  for (size_t i = 0; i < ST_ARRAY_LEN(lists); i++) {
    st_list_t *pos, *tmp;
    st_list_for_each_safe(pos, tmp, lists[i]) fn(p, ST_CONTAINER_OF(pos, st_chunk_t, link), arg);
  }
  if (p->cur != NULL) fn(p, p->cur, arg);
  if (p->spare != NULL) fn(p, p->spare, arg);
}

static void pool_unmap_chunk(st_pool_t *p, st_chunk_t *c, void *arg) {
  ST_UNUSED(arg);
  st__chunk_unmap(c, &p->geo);
}

void st_pool_destroy(st_pool_t *p) {
  if (p == NULL) return;
  pool_check_live(p, "st_pool_destroy");
  pool_for_each_chunk(p, pool_unmap_chunk, NULL);
  st__handle_retire(p);
}

static void pool_count_chunk(st_pool_t *p, st_chunk_t *c, void *arg) {
  st_pool_stats *out = arg;
  out->live_objects += c->used;
  out->free_objects += p->geo.capacity - c->used;
}

void st_pool_stats_get(st_pool_t *p, st_pool_stats *out) {
  pool_check_live(p, "st_pool_stats_get");
  *out = (st_pool_stats){.object_size = p->object_size, .slot_size = p->geo.slot};
  st_lock_acquire(&p->lock);
  pool_for_each_chunk(p, pool_count_chunk, out);
  out->chunks = p->chunks;
  out->reserved_bytes = p->chunks * p->geo.chunk_size;
  out->chunks_released = p->released;
  st_lock_release(&p->lock);
}
