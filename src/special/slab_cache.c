/*
 * slab_cache.c — object caches in the style of Bonwick's slab allocator: st_slab_*.
 *
 * Owns: a cache's slabs (chunk.h chunks), their partial/full/empty lists, the per-thread
 * magazines and the depot in front of them, construction and destruction of objects, and
 * the cache's statistics. Calls: special/chunk.h, special/handle.h, os/, base/.
 *
 * Objects stay constructed while free: the constructor runs the first time a slot is
 * handed out, the destructor only when the slab holding the slot is given back
 * (st_slab_shrink, st_slab_destroy). So the free-list link cannot live inside the object;
 * it sits in a word after it (Bonwick's bufctl):
 *
 *   slot:  +--------------------------+---------+-----+
 *          | object (size, rounded 8) | bufctl  | pad |   bufctl = the key while live;
 *          +--------------------------+---------+-----+   next free slot or NULL in a slab;
 *                                                          0 in a magazine
 *
 * so st_slab_free tells a live object (bufctl == key) from a double free (a link or 0) or
 * a write past the object's end (anything else). It finds the object's slab without the
 * chunk index or the header when the slab is in `known`, a direct-mapped table of the
 * cache's slabs by slab number (slot 0's address, one word, read without the lock): a
 * pointer within a slab's slots from a live entry is in a live slab of this cache. Slabs
 * whose entry another slab holds, and every other pointer, take the fully checked path. Slabs never carve fresh slots unless they
 * are the one allocations come from, so `fresh` bounds the constructed slots.
 * Lists (invariant): partial = some slots out and some free or fresh, full = none free or
 * fresh, empty = none out ("out" = live, or in a magazine).
 *
 * Magazines (Bonwick and Adams' second paper): each thread keeps, per cache it uses, two
 * magazines of up to SLAB_MAG constructed objects, `loaded` and `prev`. Alloc pops from
 * loaded and free pushes to it, without a lock; when loaded is empty (full) and prev is
 * full (empty) they swap; only when both are exhausted does the thread take the cache's
 * lock and exchange a magazine with the depot: full magazines for allocation, empty ones
 * for frees. An empty depot refills loaded from the slabs (up to SLAB_MAG / 2 objects of
 * one slab). A thread's magazines hang off its slab_thread (thread-local), in a direct-
 * mapped table of SLAB_WAYS bindings indexed by the cache's creation number; a binding
 * names the cache by that number (`gen`, unique for the process's life), so a binding to a
 * destroyed cache is recognised even when its descriptor slot was reused. A thread that
 * exits (pthread key destructor) or rebinds a way flushes the bound cache's magazines into
 * its depot (full ones) or its slabs (the rest). st_slab_shrink flushes the calling
 * thread's magazines and the depot into the slabs, then gives back the empty slabs; objects
 * in the magazines of other live threads stay there (they cannot be taken without a lock
 * on every call) and keep their slabs, until those threads flush them. st_slab_destroy
 * destroys every object not live wherever it sits; other threads' bindings to it are then
 * stale and dropped on their next use. Magazines and slab_threads come from internal
 * thread-safe pools.
 *
 * The front (struct st_slab_fastpath in strata.h, the head of the cache): one thread at a
 * time, named by its thread pointer, owns a magazine of SLAB_FRONT objects held in the
 * cache itself, so its st_slab_alloc and st_slab_free are inline in the program with no
 * thread-local lookup. The first thread to reach the slow paths with no owner claims it
 * (CAS); its owner is always bound to the cache and gives the front up when it unbinds
 * (at its exit, on a rebind of the way, at its own st_slab_shrink or st_slab_destroy). An
 * empty front takes the owner's magazines, else a depot magazine, else objects from the
 * slabs; a full one gives its older half (one magazine) to the depot. Only the owner
 * writes the front; st_slab_stats_get reads front_n and the counters as atomics, under the
 * lock, because every move between the front and the depot happens under it. Other
 * threads use their own magazines as before.
 * Locking: one lock per cache (slabs, lists, depot, counters), released around ctor and
 * dtor calls so they may use the cache themselves; lock order: registry (handle.c), then
 * cache, then the internal pools' locks.
 */
#define ST_SLAB_INLINE /* strata.h's inline definitions become this file's external ones */

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "base/atomics.h"
#include "base/check.h"
#include "base/lock.h"
#include "base/report.h"
#include "special/chunk.h"
#include "special/fork.h"
#include "special/handle.h"
#include "strata.h"

enum { SLAB_MAG = 32, SLAB_WAYS = 16, SLAB_KNOWN = ST_SLAB_FASTPATH_KNOWN };
/* The front moves objects by whole magazines: a refill takes one of the depot, a spill
 * gives the front's older half to one. */
enum { SLAB_FRONT = ST_SLAB_FASTPATH_FRONT, SLAB_FRONT_BATCH = SLAB_FRONT / 2 };
_Static_assert((unsigned)SLAB_FRONT_BATCH == (unsigned)SLAB_MAG, "a magazine is half a front");
_Static_assert(ST_MAGIC_SLAB == ST_SLAB_FASTPATH_MAGIC, "strata.h names the slab magic");

typedef struct magazine {
  struct magazine *next; /* on a depot list */
  unsigned n;            /* objects in obj[0 .. n) */
  void *obj[SLAB_MAG];
} magazine;

/* One thread's magazines for one cache. Both magazines are non-NULL while gen != 0 (the
 * NOLINT marks below: static analysis cannot follow this invariant). */
typedef struct slab_binding {
  uint64_t gen;             /* the bound cache's creation number, or 0: unbound */
  st_slab_cache_t *cache;   /* the bound cache (dead once its gen stops matching) */
  magazine *loaded, *prev;
  size_t allocs, frees;     /* not yet added to the cache's counters */
} slab_binding;

typedef struct slab_thread {
  slab_binding way[SLAB_WAYS]; /* by the cache's gen % SLAB_WAYS */
  st_list_t link;              /* on slab_threads; slab_threads_lock */
} slab_thread;

/* fast: magic (ST_MAGIC_SLAB while live, handle.h), key, bufctl, span, divisible, shift:
 * const. known: set when a slab is mapped and its entry is free, cleared (under the lock)
 * before the slab is given back; read without the lock by st_slab_free. The front: see
 * "front" above. */
struct st_slab_cache {
  struct st_slab_fastpath fast;         /* first: the inline paths read it (strata.h) */
  uint64_t gen;                         /* creation number, from 1; const */
  st_chunk_geometry geo;                /* const */
  st_lock_t lock;                       /* guards everything below that is not const */
  char name[32];                        /* const */
  size_t object_size;                   /* const */
  st_chunk_reserve reserve;             /* where new slabs come from */
  void (*ctor)(void *), (*dtor)(void *); /* const */
  st_list_t partial, full, empty;       /* slabs by state (see the header) */
  size_t nslabs[3];                     /* slabs on partial, full, empty */
  magazine *depot_full, *depot_empty;   /* the depot's magazines */
  size_t depot_objects;                 /* objects in depot_full */
  size_t out, allocs, frees, constructed, destructed; /* out: slots out of the slabs */
};
_Static_assert(sizeof(struct st_slab_cache) <= ST_HANDLE_SLOT_SIZE, "a cache fits a slot");

enum slab_state { SLAB_PARTIAL, SLAB_FULL, SLAB_EMPTY };

static __thread slab_thread *tls_slab_thread __attribute__((tls_model("initial-exec")));
/* The state of a thread after its exit destructor: no magazines, every call goes to the
 * slabs under the lock. */
static slab_thread slab_thread_exited;
/* Every thread's slab_thread, so that a forked child can flush the magazines of the threads
 * that did not survive the fork (slab_fork_child). A leaf lock. */
static st_lock_t slab_threads_lock = ST_LOCK_INIT;
static st_list_t slab_threads = {&slab_threads, &slab_threads};

static pthread_once_t slab_once = PTHREAD_ONCE_INIT;
static pthread_key_t slab_exit_key;
static st_pool_t *magazine_pool, *thread_pool; /* written once, under slab_once */
static st_atomic_size xslab_caches_created;

ST_INLINE uintptr_t *slab_bufctl(const st_slab_cache_t *c, void *obj) {
  return (uintptr_t *)((char *)obj + c->fast.bufctl);
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

static void slab_thread_exit(void *arg);
static const st_special_fork_kind slab_fork_kind;

static void slab_init_once(void) {
  magazine_pool = st_pool_create(sizeof(magazine), 0, ST_POOL_THREAD_SAFE);
  thread_pool = st_pool_create(sizeof(slab_thread), 0, ST_POOL_THREAD_SAFE);
  if (pthread_key_create(&slab_exit_key, slab_thread_exit) != 0) thread_pool = NULL;
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
  st__special_fork_register(ST_SPECIAL_FORK_SLAB, &slab_fork_kind);
  pthread_once(&slab_once, slab_init_once);
  st_slab_cache_t *c = st__handle_new(ST_MAGIC_SLAB);
  if (c == NULL) return NULL;
  st_lock_init(&c->lock);
  if (name != NULL) strncpy(c->name, name, sizeof c->name - 1);
  c->gen = st_fetch_add_relaxed(&xslab_caches_created, 1) + 1;
  c->object_size = size;
  c->fast.bufctl = bufctl;
  c->fast.key = ((uintptr_t)c * UINT64_C(0x9e3779b97f4a7c15)) | 1;
  c->geo = geo;
  c->fast.shift = geo.shift;
  c->fast.span = geo.capacity * geo.slot;
  c->fast.divisible = UINT64_MAX / geo.slot + 1; /* exact for offsets below 2^32 */
  c->ctor = ctor;
  c->dtor = dtor;
  st_list_init(&c->partial);
  st_list_init(&c->full);
  st_list_init(&c->empty);
  st__handle_publish(c, ST_MAGIC_SLAB);
  return c;
}

/* ---- the slab layer (the cache's lock held) ----------------------------------------- */

/* The entry of `known` for the slab holding (or starting at) addr (atomic: read with
 * __atomic builtins, as strata.h does). */
ST_INLINE uintptr_t *slab_known_entry(st_slab_cache_t *c, const void *addr) {
  return &c->fast.known[(st__chunk_base(addr, &c->geo) >> c->geo.shift) % SLAB_KNOWN];
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
  uintptr_t *known = slab_known_entry(c, slab);
  if (__atomic_load_n(known, __ATOMIC_RELAXED) == 0)
    __atomic_store_n(known, (uintptr_t)st__chunk_slots(slab, &c->geo), __ATOMIC_RELEASE);
  st_list_push_front(&c->partial, &slab->link);
  c->nslabs[SLAB_PARTIAL]++;
  return slab;
}

/* Takes into objs (bufctl 0) up to max constructed free slots of one slab, or when it has
 * none, one fresh slot (*fresh = 1: the caller constructs it; objects are built on demand
 * only, never ahead). Returns how many, 0 when out of memory. */
static unsigned slab_take_locked(st_slab_cache_t *c, void **objs, unsigned max,
                                 unsigned *fresh) {
  st_chunk_t *slab = slab_for_alloc_locked(c);
  unsigned n = 0;
  *fresh = 0;
  if (slab == NULL) return 0;
  while (n < max && slab->free != NULL) {
    char *obj = slab->free;
    slab->free = (void *)*slab_bufctl(c, obj);
    *slab_bufctl(c, obj) = 0;
    objs[n++] = obj;
  }
  if (n == 0) { /* the partial slab has fresh slots: it is not full */
    objs[n++] = slab->fresh;
    slab->fresh += c->geo.slot;
    *fresh = 1;
  }
  slab->used += n;
  c->out += n;
  c->constructed += *fresh;
  if (slab->free == NULL && slab->fresh == slab->limit)
    slab_move_locked(c, slab, SLAB_PARTIAL, SLAB_FULL);
  return n;
}

/* Returns obj, out of the slabs and not live, to its slab. */
static void slab_put_locked(st_slab_cache_t *c, void *obj) {
  st_chunk_t *slab = st__chunk_of(obj, &c->geo);
  bool was_full = slab->free == NULL && slab->fresh == slab->limit;
  *slab_bufctl(c, obj) = (uintptr_t)slab->free;
  slab->free = obj;
  slab->used--;
  c->out--;
  if (slab->used == 0) slab_move_locked(c, slab, was_full ? SLAB_FULL : SLAB_PARTIAL, SLAB_EMPTY);
  else if (was_full) slab_move_locked(c, slab, SLAB_FULL, SLAB_PARTIAL);
}

static void slab_put_magazine_locked(st_slab_cache_t *c, magazine *m) {
  while (m->n > 0) slab_put_locked(c, m->obj[--m->n]);
}

/* Empties the depot into the slabs; returns its magazines, chained, for freeing. */
static magazine *slab_drain_depot_locked(st_slab_cache_t *c) {
  magazine *all = c->depot_empty;
  while (c->depot_full != NULL) {
    magazine *m = c->depot_full;
    c->depot_full = m->next;
    slab_put_magazine_locked(c, m);
    m->next = all;
    all = m;
  }
  c->depot_empty = NULL;
  c->depot_objects = 0;
  return all;
}

static void slab_free_magazines(magazine *m) {
  while (m != NULL) {
    magazine *next = m->next;
    st_pool_free(magazine_pool, m);
    m = next;
  }
}

/* ---- bindings ----------------------------------------------------------------------- */

ST_INLINE slab_binding *slab_binding_of(slab_thread *t, const st_slab_cache_t *c) {
  return &t->way[c->gen % SLAB_WAYS];
}

/* ---- the front ---------------------------------------------------------------------- */

ST_INLINE bool slab_front_mine(const st_slab_cache_t *c) {
  return __atomic_load_n(&c->fast.front_owner, __ATOMIC_RELAXED) == ST_SLAB_THREAD_SELF();
}

/* Makes the calling thread the front's owner if it has none; the acquire pairs with the
 * release of slab_front_release, so the new owner sees the front as its last owner left it. */
static bool slab_front_claim(st_slab_cache_t *c) {
  void *none = NULL;
  return __atomic_compare_exchange_n(&c->fast.front_owner, &none, ST_SLAB_THREAD_SELF(), false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* The owner gives its front's objects back to the slabs and its counts to the cache, and
 * gives up the front. The lock held. */
static void slab_front_release_locked(st_slab_cache_t *c) {
  for (unsigned i = 0; i < c->fast.front_n; i++) slab_put_locked(c, c->fast.front[i]);
  c->allocs += c->fast.front_allocs;
  c->frees += c->fast.front_frees;
  __atomic_store_n(&c->fast.front_n, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&c->fast.front_allocs, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&c->fast.front_frees, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&c->fast.front_owner, NULL, __ATOMIC_RELEASE);
}

/* Flushes b into its cache (if that is still live): full magazines to the depot, other
 * objects to the slabs, counters added, the front given up if the caller owns it and b is
 * its own (`own`: false for a binding of a thread that did not survive a fork); then b is
 * unbound. */
static void slab_unbind_as(slab_binding *b, bool own) {
  if (b->gen == 0) return;
  st_slab_cache_t *c = b->cache;
  magazine *spare = NULL;
  if (st__handle_magic(c) == ST_MAGIC_SLAB && c->gen == b->gen) {
    st_lock_acquire(&c->lock);
    if (own && slab_front_mine(c)) slab_front_release_locked(c);
    magazine *mags[2] = {b->loaded, b->prev};
    for (int i = 0; i < 2; i++) {
      magazine *m = mags[i];
      if (m->n == SLAB_MAG) { // NOLINT(clang-analyzer-core.NullDereference)
        m->next = c->depot_full, c->depot_full = m, c->depot_objects += m->n;
        continue;
      }
      slab_put_magazine_locked(c, m);
      m->next = spare, spare = m;
    }
    c->allocs += b->allocs;
    c->frees += b->frees;
    st_lock_release(&c->lock);
  } else { /* destroyed: its objects went with it */
    b->loaded->next = b->prev, b->prev->next = NULL, spare = b->loaded; // NOLINT(clang-analyzer-core.NullDereference)
  }
  slab_free_magazines(spare);
  *b = (slab_binding){0};
}

/* slab_unbind_as for the calling thread's own binding b. */
static void slab_unbind(slab_binding *b) { slab_unbind_as(b, true); }

/* The calling thread's slab_thread, made on first use; &slab_thread_exited when it has
 * none (exited, or no memory). */
static slab_thread *slab_thread_get(void) {
  slab_thread *t = tls_slab_thread;
  if (ST_LIKELY(t != NULL)) return t;
  t = thread_pool != NULL ? st_pool_alloc(thread_pool) : NULL;
  if (t == NULL || pthread_setspecific(slab_exit_key, t) != 0) {
    if (t != NULL) st_pool_free(thread_pool, t);
    return &slab_thread_exited;
  }
  *t = (slab_thread){0};
  st_lock_acquire(&slab_threads_lock);
  st_list_push_front(&slab_threads, &t->link);
  st_lock_release(&slab_threads_lock);
  return tls_slab_thread = t;
}

static void slab_thread_exit(void *arg) {
  slab_thread *t = arg;
  tls_slab_thread = &slab_thread_exited;
  st_lock_acquire(&slab_threads_lock);
  st_list_remove(&t->link);
  st_lock_release(&slab_threads_lock);
  for (int i = 0; i < SLAB_WAYS; i++) slab_unbind(&t->way[i]);
  st_pool_free(thread_pool, t);
}

/* The calling thread's binding to c, bound now if need be; NULL when the thread cannot
 * have magazines (exited, or no memory). */
static slab_binding *slab_bind(st_slab_cache_t *c) {
  slab_thread *t = slab_thread_get();
  if (t == &slab_thread_exited) return NULL;
  slab_binding *b = slab_binding_of(t, c);
  /* a binding to c has both magazines (gen is never 0); the test of loaded says so to
   * static analysis, which cannot know it */
  if (b->gen == c->gen && b->loaded != NULL) return b;
  slab_unbind(b);
  magazine *loaded = st_pool_alloc(magazine_pool), *prev = st_pool_alloc(magazine_pool);
  if (loaded == NULL || prev == NULL) {
    st_pool_free(magazine_pool, loaded);
    st_pool_free(magazine_pool, prev);
    return NULL;
  }
  loaded->n = prev->n = 0;
  *b = (slab_binding){.gen = c->gen, .cache = c, .loaded = loaded, .prev = prev};
  return b;
}

/* ---- alloc -------------------------------------------------------------------------- */

/* Runs the constructor on obj if slab_take_locked said it is fresh (the lock not held). */
static void slab_construct(st_slab_cache_t *c, void *obj, unsigned fresh) {
  if (fresh && c->ctor != NULL) c->ctor(obj);
}

/* No magazine to allocate from: straight from the slabs, one object. */
static void *slab_alloc_direct(st_slab_cache_t *c) {
  void *obj;
  unsigned fresh;
  st_lock_acquire(&c->lock);
  unsigned n = slab_take_locked(c, &obj, 1, &fresh);
  if (n != 0) c->allocs++;
  st_lock_release(&c->lock);
  if (n == 0) return NULL;
  slab_construct(c, obj, fresh);
  *slab_bufctl(c, obj) = c->fast.key;
  return obj;
}

/* One allocation for the statistics: on b, unless a nested call (in a ctor) rebound b's
 * way, then on the cache. */
static void slab_count_alloc(st_slab_cache_t *c, slab_binding *b) {
  if (b->gen == c->gen) {
    b->allocs++;
    return;
  }
  st_lock_acquire(&c->lock);
  c->allocs++;
  st_lock_release(&c->lock);
}

/* loaded is empty: swap with a full prev, exchange with the depot, or refill from the
 * slabs. Returns the object to hand out, live, or NULL when out of memory. */
static ST_NOINLINE void *slab_alloc_slow(st_slab_cache_t *c) {
  slab_binding *b = slab_bind(c);
  if (b == NULL) return slab_alloc_direct(c);
  if (b->loaded->n == 0 && b->prev->n > 0) {
    magazine *m = b->loaded;
    b->loaded = b->prev, b->prev = m;
  }
  if (b->loaded->n == 0) {
    st_lock_acquire(&c->lock);
    if (c->depot_full != NULL) { /* prev (empty) goes to the depot, a full one comes */
      magazine *full = c->depot_full;
      c->depot_full = full->next;
      c->depot_objects -= full->n;
      b->prev->next = c->depot_empty, c->depot_empty = b->prev;
      b->prev = b->loaded, b->loaded = full;
      st_lock_release(&c->lock);
    } else {
      unsigned fresh, n = slab_take_locked(c, b->loaded->obj, SLAB_MAG / 2, &fresh);
      st_lock_release(&c->lock);
      if (n == 0) return NULL;
      if (fresh) { /* built now, handed out at once: the ctor may use the cache (and b) */
        void *obj = b->loaded->obj[0];
        slab_construct(c, obj, fresh);
        *slab_bufctl(c, obj) = c->fast.key;
        slab_count_alloc(c, b);
        return obj;
      }
      b->loaded->n = n;
    }
  }
  void *obj = b->loaded->obj[--b->loaded->n];
  *slab_bufctl(c, obj) = c->fast.key;
  b->allocs++;
  return obj;
}

/* The calling thread owns c's front, claimed now if it had no owner. The owner is bound
 * to c (so its unbind, at the latest at its exit, gives the front up): checked here too,
 * because a thread can find itself the owner without having claimed the front: in a forked
 * child, a new thread may get the thread pointer of an owner that did not survive the
 * fork. An owner that cannot bind (exited, no memory) gives the front up. */
static bool slab_front_ours(st_slab_cache_t *c) {
  void *owner = __atomic_load_n(&c->fast.front_owner, __ATOMIC_RELAXED);
  if (owner != NULL && owner != ST_SLAB_THREAD_SELF()) return false;
  if (slab_bind(c) == NULL) {
    if (owner != NULL) {
      st_lock_acquire(&c->lock);
      slab_front_release_locked(c);
      st_lock_release(&c->lock);
    }
    return false;
  }
  return owner != NULL || slab_front_claim(c);
}

/* The owner takes the last object of its non-empty front, live. */
static void *slab_front_pop(st_slab_cache_t *c) {
  struct st_slab_fastpath *f = &c->fast;
  unsigned n = f->front_n - 1;
  void *obj = f->front[n];
  __atomic_store_n(&f->front_n, n, __ATOMIC_RELAXED);
  *slab_bufctl(c, obj) = f->key;
  __atomic_store_n(&f->front_allocs, f->front_allocs + 1, __ATOMIC_RELAXED);
  return obj;
}

/* The owner's front is empty: refilled from the owner's magazines, else with a magazine of
 * the depot, else from the slabs. Returns the object to hand out, live, or NULL when out
 * of memory. */
static void *slab_front_refill(st_slab_cache_t *c) {
  struct st_slab_fastpath *f = &c->fast;
  slab_binding *b = slab_binding_of(tls_slab_thread, c);
  magazine *mags[2] = {b->loaded, b->prev};
  unsigned n = 0;
  for (int i = 0; i < 2; i++)
    while (n < SLAB_FRONT_BATCH && mags[i]->n > 0) f->front[n++] = mags[i]->obj[--mags[i]->n];
  if (n > 0) {
    __atomic_store_n(&f->front_n, n, __ATOMIC_RELAXED);
    return slab_front_pop(c);
  }
  /* front_n changes under the lock from here, with the depot: the stats count each once */
  unsigned fresh = 0;
  st_lock_acquire(&c->lock);
  magazine *full = c->depot_full;
  if (full != NULL) {
    c->depot_full = full->next;
    c->depot_objects -= full->n;
    n = full->n;
    memcpy(f->front, full->obj, n * sizeof *f->front);
    full->n = 0;
    full->next = c->depot_empty, c->depot_empty = full;
  } else {
    n = slab_take_locked(c, f->front, SLAB_FRONT_BATCH, &fresh);
  }
  if (!fresh) __atomic_store_n(&f->front_n, n, __ATOMIC_RELAXED);
  st_lock_release(&c->lock);
  if (n == 0) return NULL;
  if (!fresh) return slab_front_pop(c);
  /* built now, handed out at once: the ctor may use the cache (the front is empty and
   * consistent) */
  void *obj = f->front[0];
  slab_construct(c, obj, fresh);
  *slab_bufctl(c, obj) = f->key;
  if (slab_front_mine(c)) { /* the ctor may have made this thread give it up */
    __atomic_store_n(&f->front_allocs, f->front_allocs + 1, __ATOMIC_RELAXED);
  } else {
    st_lock_acquire(&c->lock);
    c->allocs++;
    st_lock_release(&c->lock);
  }
  return obj;
}

/* The owner's front is full: its older half goes to the depot as a magazine (straight to
 * the slabs when no magazine can be had). */
static void slab_front_spill(st_slab_cache_t *c) {
  struct st_slab_fastpath *f = &c->fast;
  st_lock_acquire(&c->lock);
  magazine *m = c->depot_empty;
  if (m != NULL) c->depot_empty = m->next;
  else m = st_pool_alloc(magazine_pool);
  if (m != NULL) {
    memcpy(m->obj, f->front, SLAB_FRONT_BATCH * sizeof *m->obj);
    m->n = SLAB_FRONT_BATCH;
    m->next = c->depot_full, c->depot_full = m;
    c->depot_objects += m->n;
  } else {
    for (unsigned i = 0; i < SLAB_FRONT_BATCH; i++) slab_put_locked(c, f->front[i]);
  }
  memmove(f->front, f->front + SLAB_FRONT_BATCH,
          (SLAB_FRONT - SLAB_FRONT_BATCH) * sizeof *f->front);
  __atomic_store_n(&f->front_n, SLAB_FRONT - SLAB_FRONT_BATCH, __ATOMIC_RELAXED);
  st_lock_release(&c->lock); /* front_n moved with the depot, for the stats */
}

/* Everything the inline st_slab_alloc (strata.h) does not do: the checks, the front's
 * refill and claim, and the magazines of every thread but the front's owner. */
void *st_slab_alloc_slow(st_slab_cache_t *c) {
  if (ST_UNLIKELY(c == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_alloc");
  if (slab_front_ours(c)) return c->fast.front_n > 0 ? slab_front_pop(c) : slab_front_refill(c);
  slab_thread *t = tls_slab_thread;
  if (ST_LIKELY(t != NULL)) {
    slab_binding *b = slab_binding_of(t, c);
    if (ST_LIKELY(b->gen == c->gen) && ST_LIKELY(b->loaded->n > 0)) { // NOLINT(clang-analyzer-core.NullDereference)
      void *obj = b->loaded->obj[--b->loaded->n];
      *slab_bufctl(c, obj) = c->fast.key;
      b->allocs++;
      return obj;
    }
  }
  return slab_alloc_slow(c);
}

/* ---- free --------------------------------------------------------------------------- */

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

/* The common case of a correct free, without the chunk index and header: obj's slab is
 * in `known` (so it is a live slab of c), obj is on a slot boundary and it is live. A
 * slot never handed out reads bufctl 0. False sends the free to slab_free_plausible. */
ST_INLINE bool slab_free_known(st_slab_cache_t *c, void *obj) {
  uintptr_t slot0 = __atomic_load_n(slab_known_entry(c, obj), __ATOMIC_RELAXED);
  uintptr_t offset = (uintptr_t)obj - slot0;
  return slot0 != 0 && offset < c->fast.span && offset * c->fast.divisible < c->fast.divisible &&
         *slab_bufctl(c, obj) == c->fast.key;
}

/* The checks that need no lock: obj is in a live slab of c (chunk index, header), on a
 * slot boundary below the slab's limit, and live (bufctl == key). A slot past `fresh`
 * (never handed out) reads bufctl 0 and fails the last test. */
ST_INLINE bool slab_free_plausible(st_slab_cache_t *c, void *obj) {
  if (ST_UNLIKELY(!st__chunk_index_has(st__chunk_base(obj, &c->geo)))) return false;
  st_chunk_t *slab = st__chunk_of(obj, &c->geo);
  if (ST_UNLIKELY(slab->magic != ST_MAGIC_CHUNK || slab->owner != c)) return false;
  uintptr_t offset = (uintptr_t)obj - (uintptr_t)st__chunk_slots(slab, &c->geo);
  if (ST_UNLIKELY(offset >= (uintptr_t)(slab->limit - st__chunk_slots(slab, &c->geo))))
    return false;
  if (ST_UNLIKELY(((offset * c->geo.recip) >> 32) * c->geo.slot != offset)) return false;
  return *slab_bufctl(c, obj) == c->fast.key;
}

/* A free that failed a check of slab_free_plausible: diagnosed precisely, under the lock
 * (the slot test reads `fresh`). Does not return. */
static ST_COLD ST_NOINLINE _Noreturn void slab_free_bad(st_slab_cache_t *c, void *obj) {
  st_lock_acquire(&c->lock);
  const char *why = st__chunk_misfit(obj, c, &c->geo);
  if (why != NULL) slab_fatal_misfit(c, obj, why);
  slab_fatal_bufctl(c, obj, st__chunk_of(obj, &c->geo), *slab_bufctl(c, obj));
}

/* loaded is full: swap with an empty prev, or give prev (full) to the depot for an empty
 * magazine; without magazines, straight to the slab. */
static ST_NOINLINE void slab_free_slow(st_slab_cache_t *c, void *obj) {
  slab_binding *b = slab_bind(c);
  if (b != NULL && b->loaded->n == SLAB_MAG && b->prev->n == 0) {
    magazine *m = b->loaded;
    b->loaded = b->prev, b->prev = m;
  }
  if (b != NULL && b->loaded->n == SLAB_MAG) {
    st_lock_acquire(&c->lock);
    magazine *empty = c->depot_empty;
    if (empty != NULL) c->depot_empty = empty->next;
    else if ((empty = st_pool_alloc(magazine_pool)) != NULL) empty->n = 0;
    if (empty != NULL) {
      b->prev->next = c->depot_full, c->depot_full = b->prev;
      c->depot_objects += b->prev->n;
      b->prev = b->loaded, b->loaded = empty;
    }
    st_lock_release(&c->lock);
  }
  if (b == NULL || b->loaded->n == SLAB_MAG) {
    st_lock_acquire(&c->lock);
    slab_put_locked(c, obj);
    c->frees++;
    st_lock_release(&c->lock);
    return;
  }
  *slab_bufctl(c, obj) = 0;
  b->loaded->obj[b->loaded->n++] = obj;
  b->frees++;
}

/* Everything the inline st_slab_free (strata.h) does not do: NULL and misuse, slabs
 * missing from `known`, the front's spill and claim, and the magazines of every thread but
 * the front's owner. */
void st_slab_free_slow(st_slab_cache_t *c, void *obj) {
  if (ST_UNLIKELY(obj == NULL)) return; /* before c is read: st_slab_free(NULL, NULL) is fine */
  if (ST_UNLIKELY(c == NULL)) st__fatal("st_slab_free(): %p freed to a NULL slab cache", obj);
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_free");
  if (ST_UNLIKELY(!slab_free_known(c, obj)) && ST_UNLIKELY(!slab_free_plausible(c, obj)))
    slab_free_bad(c, obj);
  if (slab_front_ours(c)) {
    struct st_slab_fastpath *f = &c->fast;
    if (f->front_n == SLAB_FRONT) slab_front_spill(c);
    *slab_bufctl(c, obj) = 0;
    f->front[f->front_n] = obj;
    __atomic_store_n(&f->front_n, f->front_n + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&f->front_frees, f->front_frees + 1, __ATOMIC_RELAXED);
    return;
  }
  slab_thread *t = tls_slab_thread;
  if (ST_LIKELY(t != NULL)) {
    slab_binding *b = slab_binding_of(t, c);
    if (ST_LIKELY(b->gen == c->gen) && ST_LIKELY(b->loaded->n < SLAB_MAG)) { // NOLINT(clang-analyzer-core.NullDereference)
      *slab_bufctl(c, obj) = 0;
      b->loaded->obj[b->loaded->n++] = obj;
      b->frees++;
      return;
    }
  }
  slab_free_slow(c, obj);
}

/* Runs dtor on every constructed free object of slab (those whose bufctl is not the key),
 * then unmaps it. Called without the lock: the slab is on no list any more. */
static size_t slab_give_back(st_slab_cache_t *c, st_chunk_t *slab) {
  size_t destructed = 0;
  for (char *obj = st__chunk_slots(slab, &c->geo); obj < slab->fresh; obj += c->geo.slot) {
    if (*slab_bufctl(c, obj) == c->fast.key) continue; /* live: the caller's business */
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
      st_chunk_t *slab = ST_CONTAINER_OF(pos, st_chunk_t, link);
      uintptr_t *known = slab_known_entry(c, slab);
      if (__atomic_load_n(known, __ATOMIC_RELAXED) == (uintptr_t)st__chunk_slots(slab, &c->geo))
        __atomic_store_n(known, 0, __ATOMIC_RELAXED);
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

/* The calling thread's binding to c if it has one: flushed into the cache, unbound. */
static void slab_unbind_own(st_slab_cache_t *c) {
  slab_thread *t = tls_slab_thread;
  if (t != NULL && slab_binding_of(t, c)->gen == c->gen) slab_unbind(slab_binding_of(t, c));
}

/* The calling thread's magazines and the depot go back to the slabs. */
static void slab_flush(st_slab_cache_t *c) {
  slab_unbind_own(c);
  st_lock_acquire(&c->lock);
  magazine *mags = slab_drain_depot_locked(c);
  st_lock_release(&c->lock);
  slab_free_magazines(mags);
}

size_t st_slab_shrink(st_slab_cache_t *c) {
  if (c == NULL) return 0;
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_shrink");
  slab_flush(c);
  return slab_give_back_lists(c, SLAB_EMPTY, SLAB_EMPTY) * c->geo.chunk_size;
}

void st_slab_destroy(st_slab_cache_t *c) {
  if (c == NULL) return;
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_destroy");
  slab_flush(c);
  if (c->out != 0)
    st__report("st_slab_destroy(): cache \"%s\" %p destroyed with %zu objects still allocated "
               "(or cached by other threads)",
               c->name, (void *)c, c->out);
  slab_give_back_lists(c, SLAB_PARTIAL, SLAB_EMPTY);
  st__chunk_reserve_release(&c->reserve, &c->geo);
  st__handle_retire(c);
}

void st_slab_stats_get(st_slab_cache_t *c, st_slab_stats *out) {
  st__handle_check(c, ST_MAGIC_SLAB, "st_slab_stats_get");
  slab_binding own = {0};
  slab_thread *t = tls_slab_thread;
  if (t != NULL && slab_binding_of(t, c)->gen == c->gen) own = *slab_binding_of(t, c);
  size_t own_objects = own.gen != 0 ? own.loaded->n + own.prev->n : 0;
  st_lock_acquire(&c->lock);
  /* The front, whoever owns it: a snapshot, read under the lock so that objects moving
   * between the front and the depot (which happens under it) are counted once. */
  own_objects += __atomic_load_n(&c->fast.front_n, __ATOMIC_RELAXED);
  own.allocs += __atomic_load_n(&c->fast.front_allocs, __ATOMIC_RELAXED);
  own.frees += __atomic_load_n(&c->fast.front_frees, __ATOMIC_RELAXED);
  size_t slabs = c->nslabs[SLAB_PARTIAL] + c->nslabs[SLAB_FULL] + c->nslabs[SLAB_EMPTY];
  size_t cached = c->depot_objects + own_objects;
  *out = (st_slab_stats){
      .object_size = c->object_size,
      .slot_size = c->geo.slot,
      .live_objects = c->out - cached,
      .cached_objects = c->constructed - c->destructed - (c->out - cached),
      .magazine_objects = cached,
      .slabs_full = c->nslabs[SLAB_FULL],
      .slabs_partial = c->nslabs[SLAB_PARTIAL],
      .slabs_empty = c->nslabs[SLAB_EMPTY],
      .slab_bytes = c->geo.chunk_size,
      .reserved_bytes = slabs * c->geo.chunk_size,
      .allocs = c->allocs + own.allocs,
      .frees = c->frees + own.frees,
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

/* ---- fork (fork.h) ----------------------------------------------------------------------- */

static void slab_fork_lock(void *h) { st_lock_acquire(&((st_slab_cache_t *)h)->lock); }
static void slab_fork_unlock(void *h) { st_lock_release(&((st_slab_cache_t *)h)->lock); }
static void slab_fork_lock_threads(void) { st_lock_acquire(&slab_threads_lock); }
static void slab_fork_unlock_threads(void) { st_lock_release(&slab_threads_lock); }

/* A front whose owner did not survive the fork goes back to the slabs, so that no thread
 * of the child that gets the same thread pointer finds it its own. */
static void slab_fork_release_front(void *h, void *arg) {
  st_slab_cache_t *c = h;
  (void)arg;
  st_lock_acquire(&c->lock);
  void *owner = __atomic_load_n(&c->fast.front_owner, __ATOMIC_RELAXED);
  if (owner != NULL && owner != ST_SLAB_THREAD_SELF()) slab_front_release_locked(c);
  st_lock_release(&c->lock);
}

/* In a forked child: the fronts and magazines of the threads that did not survive the fork
 * (every slab_thread but the forking thread's) go back to their caches, as at those
 * threads' exit. */
static void slab_fork_child(void) {
  st__handle_foreach(ST_MAGIC_SLAB, slab_fork_release_front, NULL);
  slab_thread *self = tls_slab_thread;
  st_list_t dead;
  st_list_init(&dead);
  st_lock_acquire(&slab_threads_lock);
  st_list_move_all_but(&slab_threads, &dead, self != NULL ? &self->link : NULL);
  st_lock_release(&slab_threads_lock);
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &dead) {
    slab_thread *t = ST_CONTAINER_OF(pos, slab_thread, link);
    for (int i = 0; i < SLAB_WAYS; i++) slab_unbind_as(&t->way[i], false);
    st_pool_free(thread_pool, t);
  }
}

static const st_special_fork_kind slab_fork_kind = {
    .magic = {ST_MAGIC_SLAB, 0},
    .lock = slab_fork_lock,
    .unlock = slab_fork_unlock,
    .lock_globals = slab_fork_lock_threads,
    .unlock_globals = slab_fork_unlock_threads,
    .child = slab_fork_child,
};
