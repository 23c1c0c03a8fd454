/*
 * pool.c — fixed-size object pools: st_pool_* (public API in strata.h).
 *
 * Owns: one pool's chunks, its free list, the policy that gives empty chunks back, and the
 * misuse checks of st_pool_free. Calls: special/chunk.h, special/handle.h, os/, base/.
 *
 * One free list for the whole pool, linked through word 0 of each free slot, so alloc and
 * free are a pop and a push whatever the order of frees (per-chunk lists would make the
 * allocator hop between chunks holding one free slot each once frees are scattered).
 * Word 1 of a free slot holds the pool's key: freeing a slot whose word 1 is the key is a
 * suspected double free, confirmed by a walk of the free list (a live object never keeps
 * the key there: allocation clears the word). When the list is empty, slots are carved
 * from the fresh end of the current chunk `cur`, then from a new chunk.
 * Each chunk counts its live objects (`used`); an empty chunk's slots stay on the free
 * list and are reused first (LIFO). Every POOL_CHECK_EVERY-th time a chunk empties, a check
 * reads the clock and times the chunks it finds empty (`empty_since_ms`, reset when it
 * finds one in use); those found empty again STRATA_PURGE_DELAY_MS later (the core's purge
 * delay; -1: never) are given back by a sweep that unlinks their slots from the free list.
 * One empty chunk is always kept, so a pool that drains and refills maps nothing after its
 * first round, and a pool that allocates and frees one object at a time pays nothing but
 * a counter. st_pool_trim gives back every empty chunk at once. Chunk fields used here:
 * `used`, `fresh`, `empty_since_ms`; `free` is NULL, or non-NULL while a sweep dooms it.
 * With ST_POOL_THREAD_SAFE every call takes the pool's lock (lock order: registry, pool);
 * such a pool carries its own magic (ST_MAGIC_POOL_SHARED), so the one compare of the magic
 * that every call makes also sends shared pools to the locked path.
 *
 * Fast free: `known` is a direct-mapped table (by chunk number) of this pool's chunks that
 * are fully carved. A pointer whose chunk is in it is in a live chunk of this pool, and
 * every slot of that chunk has been handed out, so the slot test needs no header and the
 * chunk index is not consulted; anything else (chunks colliding in the table, the
 * chunk still being carved, foreign pointers) takes the fully checked path.
 */
#include <errno.h>
#include <stdbool.h>

#include "base/atomics.h"
#include "base/check.h"
#include "base/lock.h"
#include "base/options.h"
#include "os/os.h"
#include "special/chunk.h"
#include "special/handle.h"
#include "strata.h"

#define POOL_MIN_SLOT (2 * sizeof(void *)) /* the free-list link and the key */
#define POOL_CHECK_EVERY 64u                /* chunk-emptied events between release checks */
#define POOL_KNOWN 32u                      /* entries of st_pool.known */

typedef struct free_slot {
  struct free_slot *next; /* word 0 */
  uintptr_t key;          /* word 1: the pool's key while the slot is free */
} free_slot;

struct st_pool {
  uint64_t magic;           /* ST_MAGIC_POOL or ST_MAGIC_POOL_SHARED while live (handle.h) */
  free_slot *free;          /* the free list; lock */
  uintptr_t key;            /* word 1 of every free slot; odd, so never a slot address; const */
  uintptr_t chunk_mask;     /* ~(chunk size - 1); const */
  size_t span;              /* capacity * slot: bytes of slots in a chunk; const */
  unsigned color_shift;     /* log2(chunk size) - log2(cache line), for the header; const */
  unsigned flags;           /* ST_POOL_THREAD_SAFE or 0; const */
  st_chunk_geometry geo;    /* const */
  uintptr_t known[POOL_KNOWN]; /* fully carved chunks by (number % POOL_KNOWN), or 0; lock */
  st_chunk_t *cur;          /* the chunk fresh slots are carved from, or NULL; lock */
  st_chunk_reserve reserve; /* where new chunks come from; lock */
  size_t object_size;       /* as created; const */
  st_list_t chunks;         /* every chunk; lock */
  size_t nchunks;           /* chunks mapped; lock */
  size_t released;          /* empty chunks unmapped so far; lock */
  unsigned emptied;         /* times a chunk emptied, modulo POOL_CHECK_EVERY; lock */
  st_lock_t lock;           /* taken by every call when ST_POOL_THREAD_SAFE */
};
_Static_assert(sizeof(struct st_pool) <= ST_HANDLE_SLOT_SIZE, "a pool fits a handle slot");

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
  p->chunk_mask = ~(uintptr_t)(geo.chunk_size - 1);
  p->span = geo.capacity * geo.slot;
  p->color_shift = geo.shift - st_log2_floor(ST_CACHE_LINE);
  p->flags = flags;
  p->geo = geo;
  p->object_size = object_size;
  st_list_init(&p->chunks);
  st_lock_init(&p->lock);
  st__handle_publish(p, flags & ST_POOL_THREAD_SAFE ? ST_MAGIC_POOL_SHARED : ST_MAGIC_POOL);
  return p;
}

/* Every call but alloc and free: a live pool of either kind, or a diagnostic naming fn. */
static void pool_check(const st_pool_t *p, const char *fn) {
  if (ST_UNLIKELY(p->magic != ST_MAGIC_POOL_SHARED)) st__handle_check(p, ST_MAGIC_POOL, fn);
}

ST_INLINE uintptr_t *pool_known_entry(st_pool_t *p, uintptr_t base) {
  return &p->known[(base >> p->geo.shift) % POOL_KNOWN];
}

/* The header of the chunk at base (chunk.h's st__chunk_of, with the shift precomputed). */
ST_INLINE st_chunk_t *pool_header(const st_pool_t *p, uintptr_t base) {
  return (st_chunk_t *)(base + ((base >> p->color_shift) & ((ST_CHUNK_COLORS - 1) * ST_CACHE_LINE)));
}

/* c has no fresh slot left: it joins `known` unless its entry is taken. */
static void pool_know(st_pool_t *p, st_chunk_t *c) {
  uintptr_t *entry = pool_known_entry(p, st__chunk_base(c, &p->geo));
  if (*entry == 0) *entry = st__chunk_base(c, &p->geo);
}

static void pool_unmap(st_pool_t *p, st_chunk_t *c) {
  uintptr_t *entry = pool_known_entry(p, st__chunk_base(c, &p->geo));
  if (*entry == st__chunk_base(c, &p->geo)) *entry = 0;
  st__chunk_unmap(c, &p->geo);
}

/* The free list is empty: carve a fresh slot from cur, or from a new chunk. */
static ST_NOINLINE void *pool_alloc_slow(st_pool_t *p) {
  st_chunk_t *c = p->cur;
  if (c == NULL || c->fresh == c->limit) {
    if (c != NULL) pool_know(p, c);
    c = st__chunk_map(&p->geo, &p->reserve, p);
    if (c == NULL) return NULL;
    st_list_push_front(&p->chunks, &c->link);
    p->nchunks++;
    p->cur = c;
  }
  void *s = c->fresh; /* fresh memory: its key word is already zero */
  c->fresh += p->geo.slot;
  c->used++; /* cur is not empty here: its freed slots would be on the free list */
  if (c->fresh == c->limit) pool_know(p, c);
  return s;
}

/* The fast path: a pop from the free list. */
ST_INLINE void *pool_alloc_unlocked(st_pool_t *p) {
  free_slot *s = p->free;
  if (ST_UNLIKELY(s == NULL)) return pool_alloc_slow(p);
  p->free = s->next;
  s->key = 0; /* a live object never shows the key (see the header) */
  pool_header(p, (uintptr_t)s & p->chunk_mask)->used++;
  return s;
}

/* Not an unshared live pool: NULL, a shared pool, or a dead handle. */
static ST_NOINLINE void *pool_alloc_checked(st_pool_t *p) {
  if (p == NULL) {
    errno = EINVAL;
    return NULL;
  }
  pool_check(p, "st_pool_alloc");
  st_lock_acquire(&p->lock);
  void *obj = pool_alloc_unlocked(p);
  st_lock_release(&p->lock);
  return obj;
}

void *st_pool_alloc(st_pool_t *p) {
  if (ST_UNLIKELY(p == NULL || p->magic != ST_MAGIC_POOL)) return pool_alloc_checked(p);
  return pool_alloc_unlocked(p);
}

/* Unlinks the free slots of doomed chunks (chunk->free != NULL), then unmaps those chunks. */
static void pool_sweep_doomed(st_pool_t *p, size_t doomed) {
  for (free_slot **link = &p->free; *link != NULL;) {
    if (st__chunk_of(*link, &p->geo)->free != NULL) *link = (*link)->next;
    else link = &(*link)->next;
  }
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &p->chunks) {
    st_chunk_t *c = ST_CONTAINER_OF(pos, st_chunk_t, link);
    if (c->free == NULL) continue;
    st_list_remove(&c->link);
    pool_unmap(p, c);
  }
  p->nchunks -= doomed;
  p->released += doomed;
}

/* Times the empty chunks not yet timed (and forgets the time of chunks in use), then gives
 * back the empty ones, but cur, timed before `cutoff`, keeping at least `keep` empty chunks
 * (cur included). */
static void pool_release_empty(st_pool_t *p, uint64_t now, uint64_t cutoff, size_t keep) {
  size_t doomed = 0, kept = 0;
  st_list_t *pos;
  for (pos = p->chunks.next; pos != &p->chunks; pos = pos->next) {
    st_chunk_t *c = ST_CONTAINER_OF(pos, st_chunk_t, link);
    if (c->used != 0) {
      c->empty_since_ms = 0;
      continue;
    }
    if (c->empty_since_ms == 0) c->empty_since_ms = now;
    kept += c == p->cur || c->empty_since_ms > cutoff;
  }
  for (pos = p->chunks.next; pos != &p->chunks; pos = pos->next) {
    st_chunk_t *c = ST_CONTAINER_OF(pos, st_chunk_t, link);
    if (c->used != 0 || c == p->cur || c->empty_since_ms > cutoff) continue;
    if (kept < keep) {
      kept++;
      continue;
    }
    c->free = c; /* doomed: any non-NULL value */
    doomed++;
  }
  if (doomed != 0) pool_sweep_doomed(p, doomed);
}

/* A chunk emptied POOL_CHECK_EVERY times since the last check. */
static ST_NOINLINE void pool_check_release(st_pool_t *p) {
  long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
  if (delay < 0 || p->nchunks < 2) return;
  uint64_t now = st__os_now_ms();
  pool_release_empty(p, now, now >= (uint64_t)delay ? now - (uint64_t)delay : 0, 1);
}

/* word 1 of obj held the key: aborts if obj is on the free list. */
static ST_COLD ST_NOINLINE void pool_check_double_free(st_pool_t *p, void *obj) {
  for (free_slot *s = p->free; s != NULL; s = s->next)
    if (s == (free_slot *)obj) st__fatal("st_pool_free(): double free of %p (pool %p)", obj, p);
}

static ST_COLD ST_NOINLINE _Noreturn void pool_fatal_misfit(st_pool_t *p, void *obj,
                                                           const char *why) {
  st__fatal("st_pool_free(): %p is %s pool %p", obj, why, (void *)p);
}

/* Pushes obj, a live slot of chunk c, on the free list. */
ST_INLINE void pool_push(st_pool_t *p, free_slot *obj, st_chunk_t *c) {
  obj->next = p->free;
  obj->key = p->key;
  p->free = obj;
  if (ST_UNLIKELY(--c->used == 0) && ST_UNLIKELY(++p->emptied % POOL_CHECK_EVERY == 0))
    pool_check_release(p);
}

/* Every check: the chunk index, the header, the slot boundary, the double-free key. */
static void pool_free_checked_unlocked(st_pool_t *p, void *obj) {
  const char *why = st__chunk_misfit(obj, p, &p->geo); /* reads c->fresh: under the lock */
  if (ST_UNLIKELY(why != NULL)) pool_fatal_misfit(p, obj, why);
  free_slot *s = obj;
  if (ST_UNLIKELY(s->key == p->key)) pool_check_double_free(p, obj);
  pool_push(p, s, st__chunk_of(obj, &p->geo));
}

/* Not the fast path's case: a shared pool, a dead handle, or a slot not in `known`. */
static ST_NOINLINE void pool_free_checked(st_pool_t *p, void *obj) {
  if (p->magic == ST_MAGIC_POOL) {
    pool_free_checked_unlocked(p, obj);
    return;
  }
  pool_check(p, "st_pool_free");
  st_lock_acquire(&p->lock);
  pool_free_checked_unlocked(p, obj);
  st_lock_release(&p->lock);
}

void st_pool_free(st_pool_t *p, void *obj) {
  if (ST_UNLIKELY(obj == NULL)) return; /* before p is read: st_pool_free(NULL, NULL) is fine */
  uintptr_t addr = (uintptr_t)obj, base = addr & p->chunk_mask;
  uintptr_t offset = addr - base - p->geo.first;
  free_slot *s = obj;
  /* A known chunk is live, this pool's and carved to its end: a pointer into it is a slot
   * if it is on a slot boundary within the span (the product test of chunk.h). */
  if (ST_UNLIKELY(p->magic != ST_MAGIC_POOL || *pool_known_entry(p, base) != base ||
                  offset >= p->span || ((offset * p->geo.recip) >> 32) * p->geo.slot != offset ||
                  s->key == p->key)) {
    pool_free_checked(p, obj);
    return;
  }
  pool_push(p, s, pool_header(p, base));
}

void st_pool_destroy(st_pool_t *p) {
  if (p == NULL) return;
  pool_check(p, "st_pool_destroy");
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &p->chunks)
      st__chunk_unmap(ST_CONTAINER_OF(pos, st_chunk_t, link), &p->geo);
  st__chunk_reserve_release(&p->reserve, &p->geo);
  st__handle_retire(p);
}

void st_pool_stats_get(st_pool_t *p, st_pool_stats *out) {
  pool_check(p, "st_pool_stats_get");
  *out = (st_pool_stats){.object_size = p->object_size, .slot_size = p->geo.slot};
  st_lock_acquire(&p->lock);
  st_list_t *pos;
  for (pos = p->chunks.next; pos != &p->chunks; pos = pos->next) {
    size_t used = ST_CONTAINER_OF(pos, st_chunk_t, link)->used;
    out->live_objects += used;
    out->chunks_empty += used == 0;
  }
  out->free_objects = p->nchunks * p->geo.capacity - out->live_objects;
  out->chunks = p->nchunks;
  out->reserved_bytes = p->nchunks * p->geo.chunk_size;
  out->chunks_released = p->released;
  st_lock_release(&p->lock);
}

size_t st_pool_trim(st_pool_t *p) {
  if (p == NULL) return 0;
  pool_check(p, "st_pool_trim");
  st_lock_acquire(&p->lock);
  size_t before = p->released;
  pool_release_empty(p, st__os_now_ms(), UINT64_MAX, 0);
  size_t released = p->released - before;
  st_lock_release(&p->lock);
  return released * p->geo.chunk_size;
}
