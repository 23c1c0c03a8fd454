/*
 * slab_cache.c — object caches in the style of Bonwick's slab allocator: st_slab_*.
 *
 * Owns: a cache's slabs (chunk.h chunks), their partial/full/empty lists, construction and
 * destruction of objects, and the cache's statistics. Calls: special/chunk.h,
 * special/handle.h, base/.
 *
 * Objects stay constructed while free: the constructor runs the first time a slot is
 * handed out, the destructor only when the slab holding the slot is given back
 * (st_slab_shrink, st_slab_destroy). So the free-list link cannot live inside the object;
 * it sits in a word after it (Bonwick's bufctl):
 *
 *   slot:  +--------------------------+---------+-----+
 *          | object (size, rounded 8) | bufctl  | pad |   bufctl = next free slot or NULL
 *          +--------------------------+---------+-----+            while free, key while live
 *
 * so st_slab_free tells a live object (bufctl == key) from a double free (a link) or a
 * write past the object's end (anything else). Slabs never carve fresh slots unless they
 * are the one allocations come from, so `fresh` bounds the constructed slots.
 * Lists (invariant): partial = some slots live and some free or fresh, full = none free or
 * fresh, empty = none live. Empty slabs are kept (their objects are constructed) until
 * st_slab_shrink. Locking: one lock per cache, released around ctor and dtor calls so they
 * may use the cache themselves; lock order: registry (handle.c), then cache.
 */
#include <errno.h>
#include <string.h>

#include "base/check.h"
#include "base/lock.h"
#include "base/report.h"
#include "special/chunk.h"
#include "special/handle.h"
#include "strata.h"

struct st_slab_cache {
  uint64_t magic;                       /* ST_MAGIC_SLAB while live (handle.h) */
  st_lock_t lock;                       /* guards everything below that is not const */
  char name[32];                        /* const */
  size_t object_size, bufctl;           /* the object's size; offset of the bufctl; const */
  uintptr_t key;                        /* bufctl of a live object: odd; const */
  st_chunk_geometry geo;                /* const */
  st_chunk_reserve reserve;             /* where new slabs come from */
  void (*ctor)(void *), (*dtor)(void *); /* const */
  st_list_t partial, full, empty;       /* slabs by state (see the header) */
  size_t nslabs[3];                     /* slabs on partial, full, empty */
  size_t live, allocs, frees, constructed, destructed;
};
_Static_assert(sizeof(struct st_slab_cache) <= ST_HANDLE_SLOT_SIZE, "a cache fits a slot");

enum slab_state { SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY };

ST_INLINE uintptr_t *slab_bufctl(st_slab_cache_t *c, void *obj) {
  return (uintptr_t *)((char *)obj + c->bufctl);
}

static st_list_t *slab_list(st_slab_cache_t *c, enum slab_state s) {
  return s == SLAB_PARTIAL ? &c->partial : s == SLAB_FULL ? &c->full : &c->empty;
}

static void slab_move_locked(st_slab_cache_t *c, st_chunk_t *slab, enum slab_state from,
                             enum slab_state to) {
  st_list_remove(&slab->link);
  st_list_push_front(slab_list(c, to), &slab->link);
  c->nslabs[from]--;
  c->nslabs[to]++;
}

st_slab_cache_t *st_slab_create(const char *name, size_t size, size_t align,
                                void (*ctor)(void *obj), void (*dtor)(void *obj)) {
  if (align == 0) align = ST_MIN_ALIGN;
  if (size == 0 || !st_is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  if (align < sizeof(uintptr_t)) align = sizeof(uintptr_t);
  st_chunk_geometry geo;
  size_t bufctl = st_align_up(size, sizeof(uintptr_t));
  if (size > ST_CHUNK_MAX_SIZE || align > ST_CHUNK_MAX_SIZE ||
      st__chunk_geometry(&geo, st_align_up(bufctl + sizeof(uintptr_t), align), align) != 0) {
    errno = ENOMEM;
    return NULL;
  }
  st_slab_cache_t *c = st__handle_new();
  if (c == NULL) return NULL;
  st_lock_init(&c->lock);
  if (name != NULL) strncpy(c->name, name, sizeof c->name - 1);
  c->object_size = size;
  c->bufctl = bufctl;
  c->key = ((uintptr_t)c * UINT64_C(0x9e3779b97f4a7c15)) | 1;
  c->geo = geo;
  c->ctor = ctor;
  c->dtor = dtor;
  st_list_init(&c->partial);
  st_list_init(&c->full);
  st_list_init(&c->empty);
  st__handle_publish(c, ST_MAGIC_SLAB);
  return c;
}

/* The slab the next object comes from, on the partial list; NULL when out of memory. */
static st_chunk_t *slab_for_alloc_locked(st_slab_cache_t *c) {
  if (!st_list_empty(&c->partial)) return ST_CONTAINER_OF(c->partial.next, st_chunk_t, link);
  st_chunk_t *slab;
  if (!st_list_empty(&c->empty)) {
    slab = ST_CONTAINER_OF(c->empty.next, st_chunk_t, link);
    slab_move_locked(c, slab, SLAB_EMPTY, SLAB_PARTIAL);
    return slab;
  }
  slab = st__chunk_map(&c->geo, &c->reserve, c);
  if (slab == NULL) return NULL;
  st_list_push_front(&c->partial, &slab->link);
  c->nslabs[SLAB_PARTIAL]++;
  return slab;
}

void *st_slab_alloc(st_slab_cache_t *c) {
  if (ST_UNLIKELY(c == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_alloc");
  st_lock_acquire(&c->lock);
  st_chunk_t *slab = slab_for_alloc_locked(c);
  if (slab == NULL) {
    st_lock_release(&c->lock);
    return NULL;
  }
  char *obj = slab->free;
  bool fresh = obj == NULL;
  if (fresh) obj = slab->fresh, slab->fresh += c->geo.slot, c->constructed++;
  else slab->free = (void *)*slab_bufctl(c, obj);
  *slab_bufctl(c, obj) = c->key;
  slab->used++;
  c->live++;
  c->allocs++;
  if (slab->free == NULL && slab->fresh == slab->limit)
    slab_move_locked(c, slab, SLAB_PARTIAL, SLAB_FULL);
  st_lock_release(&c->lock);
  if (fresh && c->ctor != NULL) c->ctor(obj); /* the slot is ours: no lock needed */
  return obj;
}

static ST_COLD ST_NOINLINE _Noreturn void slab_fatal_bufctl(st_slab_cache_t *c, void *obj,
                                                           st_chunk_t *slab, uintptr_t word) {
  if (word == 0 || (word >= (uintptr_t)st__chunk_slots(slab, &c->geo) &&
                    word < (uintptr_t)slab->limit))
    st__fatal("st_slab_free(): double free of %p (cache \"%s\" %p)", obj, c->name, (void *)c);
  st__fatal("st_slab_free(): the word after object %p was overwritten: a write past its "
            "%zu bytes? (cache \"%s\" %p)",
            obj, c->object_size, c->name, (void *)c);
}

static ST_COLD ST_NOINLINE _Noreturn void slab_fatal_misfit(st_slab_cache_t *c, void *obj,
                                                           const char *why) {
  st__fatal("st_slab_free(): %p is %s slab cache \"%s\" %p", obj, why, c->name, (void *)c);
}

void st_slab_free(st_slab_cache_t *c, void *obj) {
  if (ST_UNLIKELY(obj == NULL)) return;
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_free");
  st_lock_acquire(&c->lock);
  const char *why = st__chunk_misfit(obj, c, &c->geo);
  if (ST_UNLIKELY(why != NULL)) slab_fatal_misfit(c, obj, why);
  st_chunk_t *slab = st__chunk_of(obj, &c->geo);
  uintptr_t *bufctl = slab_bufctl(c, obj);
  if (ST_UNLIKELY(*bufctl != c->key)) slab_fatal_bufctl(c, obj, slab, *bufctl);
  bool was_full = slab->free == NULL && slab->fresh == slab->limit;
  *bufctl = (uintptr_t)slab->free;
  slab->free = obj;
  slab->used--;
  c->live--;
  c->frees++;
  if (slab->used == 0) slab_move_locked(c, slab, was_full ? SLAB_FULL : SLAB_PARTIAL, SLAB_EMPTY);
  else if (was_full) slab_move_locked(c, slab, SLAB_FULL, SLAB_PARTIAL);
  st_lock_release(&c->lock);
}

/* Runs dtor on every constructed free object of slab (those whose bufctl is not the key),
 * then unmaps it. Called without the lock: the slab is on no list any more. */
static size_t slab_give_back(st_slab_cache_t *c, st_chunk_t *slab) {
  size_t destructed = 0;
  for (char *obj = st__chunk_slots(slab, &c->geo); obj < slab->fresh; obj += c->geo.slot) {
    if (*slab_bufctl(c, obj) == c->key) continue; /* live: the caller's business */
    if (c->dtor != NULL) c->dtor(obj);
    destructed++;
  }
  st__chunk_unmap(slab, &c->geo);
  return destructed;
}

/* Gives back every slab on the lists in states [first, last]; returns the slabs. */
static size_t slab_give_back_lists(st_slab_cache_t *c, enum slab_state first,
                                   enum slab_state last) {
  st_list_t doomed;
  st_list_init(&doomed);
  st_lock_acquire(&c->lock);
  for (int s = first; s <= (int)last; s++) {
    st_list_t *head = slab_list(c, (enum slab_state)s), *pos, *tmp;
    st_list_for_each_safe(pos, tmp, head) {
      st_list_remove(pos);
      st_list_push_back(&doomed, pos);
    }
    c->nslabs[s] = 0;
  }
  st_lock_release(&c->lock);
  size_t slabs = 0, destructed = 0;
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &doomed) {
    destructed += slab_give_back(c, ST_CONTAINER_OF(pos, st_chunk_t, link));
    slabs++;
  }
  st_lock_acquire(&c->lock);
  c->destructed += destructed;
  st_lock_release(&c->lock);
  return slabs;
}

size_t st_slab_shrink(st_slab_cache_t *c) {
  if (c == NULL) return 0;
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_shrink");
  return slab_give_back_lists(c, SLAB_EMPTY, SLAB_EMPTY) * c->geo.chunk_size;
}

void st_slab_destroy(st_slab_cache_t *c) {
  if (c == NULL) return;
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_destroy");
  if (c->live != 0)
    st__report("st_slab_destroy(): cache \"%s\" %p destroyed with %zu objects still allocated",
               c->name, (void *)c, c->live);
  slab_give_back_lists(c, SLAB_PARTIAL, SLAB_EMPTY);
  st__chunk_reserve_release(&c->reserve, &c->geo);
  st__handle_retire(c);
}

void st_slab_stats_get(st_slab_cache_t *c, st_slab_stats *out) {
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_stats_get");
  st_lock_acquire(&c->lock);
  size_t slabs = c->nslabs[SLAB_PARTIAL] + c->nslabs[SLAB_FULL] + c->nslabs[SLAB_EMPTY];
  *out = (st_slab_stats){
      .object_size = c->object_size,
      .slot_size = c->geo.slot,
      .live_objects = c->live,
      .cached_objects = c->constructed - c->destructed - c->live,
      .slabs_full = c->nslabs[SLAB_FULL],
      .slabs_partial = c->nslabs[SLAB_PARTIAL],
      .slabs_empty = c->nslabs[SLAB_EMPTY],
      .slab_bytes = c->geo.chunk_size,
      .reserved_bytes = slabs * c->geo.chunk_size,
      .allocs = c->allocs,
      .frees = c->frees,
      .constructed = c->constructed,
      .destructed = c->destructed,
  };
  memcpy(out->name, c->name, sizeof out->name);
  st_lock_release(&c->lock);
}

typedef struct slab_visit {
  void (*visit)(const st_slab_stats *stats, void *arg);
  void *arg;
} slab_visit;

static void slab_visit_one(void *h, void *arg) {
  slab_visit *v = arg;
  st_slab_stats stats;
  st_slab_stats_get(h, &stats);
  v->visit(&stats, v->arg);
}

void st_slab_foreach(void (*visit)(const st_slab_stats *stats, void *arg), void *arg) {
  if (visit == NULL) return;
  slab_visit v = {visit, arg};
  st__handle_foreach(ST_MAGIC_SLAB, slab_visit_one, &v);
}
