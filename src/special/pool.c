/*
 * pool.c — fixed-size object pools: st_pool_* (public API in strata.h).
 *
 * Owns: one pool's chunks, its free list, the policy that gives empty chunks back, and the
 * misuse checks of st_pool_free. Calls: special/chunk.h, special/handle.h, os/, base/.
 *
 * The common cases of st_pool_alloc and st_pool_free are inline in strata.h and read the
 * pool's head, struct st_pool_fastpath (this file defines ST_POOL_INLINE empty so that the
 * header's text also gives the library's own definitions of the two functions). Everything
 * else comes here through st_pool_alloc_slow and st_pool_free_slow. The inline code reads
 * no magic: `fast.free` NULL sends an alloc here, `fast.divisible` 0 a free (its slot test
 * fails), so a shared pool keeps both so for its life and st_pool_destroy sets both; every
 * call that comes here checks the magic first.
 *
 * One free list for the whole pool, linked through word 0 of each free slot, so alloc and
 * free are a pop and a push whatever the order of frees. Word 1 of a free slot holds the
 * pool's key: freeing a slot whose word 1 is the key is a suspected double free, confirmed
 * by a walk of the free list (a live object never keeps the key there: allocation clears
 * the word). When the list is empty, slots are carved from the fresh end of the current
 * chunk `cur`, then from a new chunk.
 *
 * Fast free: `known` is a direct-mapped table (by 64 KiB granule; a larger chunk takes
 * the free entries of its granules) of this pool's chunks, each with the end of its slots
 * handed out so far (`known_end`, which follows `fresh`). A
 * pointer whose chunk is in it is in a live chunk of this pool, so the slot test (offset
 * below the end, a multiple of the slot size by one multiplication) needs no header and no
 * chunk index; anything else (chunks colliding in the table, foreign pointers, NULL) takes
 * the fully checked path: chunk index, header magic and owner, slot below `fresh`.
 *
 * Release of empty chunks, kept off the fast paths: nothing counts objects per operation.
 * A release check runs when `checks_due` frees have been made since the last one (at least
 * POOL_CHECK_EVERY, and at least POOL_CHECK_SPREAD times as many as there were free slots,
 * so the check's walk of the free list costs O(1) per free, a quarter of a step). It
 * recounts each chunk's live objects (`used`: carved slots minus the free ones found on
 * the list), times the empty chunks it finds
 * (`empty_since_ms`, reset when it finds one in use), and gives back those found empty
 * again STRATA_PURGE_DELAY_MS later (the core's purge delay; -1: never), unlinking their
 * slots from the free list in one sweep. One empty chunk is always kept, so a pool that
 * drains and refills maps nothing after its first round. st_pool_trim gives back every
 * empty chunk at once. Chunk fields used here: `used` (as of the last recount), `fresh`,
 * `empty_since_ms`; `free` is NULL, or non-NULL while a sweep dooms the chunk.
 *
 * ST_POOL_THREAD_SAFE: such a pool carries its own magic (ST_MAGIC_POOL_SHARED) and keeps
 * the inline paths closed (above): its free list is `shared_free`, its table of chunks
 * `shared_slot0`; those, the chunks and the counters are guarded by the pool's lock (lock
 * order: registry, pool). Each thread keeps, per
 * shared pool it uses, a cache of up to POOL_CACHE_MAX free objects (linked through word 0,
 * the key in word 1, exactly as on the pool's list): alloc pops from it and free pushes to
 * it without the lock; an empty cache takes POOL_CACHE_BATCH objects from the pool under
 * the lock, a full one gives POOL_CACHE_BATCH back. A free is checked without the lock
 * (chunk index, header, slot boundary below the chunk's limit, the key: a free object
 * showing it in another thread's cache cannot be looked for, so a shared pool reports the
 * key as a double free without the confirming walk); that the slot was ever handed out
 * (`fresh`, which changes under the lock) is checked when the cache gives it back. A
 * thread finds its caches through one thread-local pointer and a POOL_WAYS-way table
 * indexed by the pool's creation number (`gen`, unique for the process's life, so a
 * binding to a destroyed pool is recognised even when its descriptor slot was reused). A
 * thread that exits (pthread key destructor) or rebinds a way gives its cache back to the
 * pool if the pool is still live; st_pool_stats_get and st_pool_trim give back the calling
 * thread's cache first; other live threads' caches count as live objects. st_pool_destroy
 * unmaps every object, cached ones included; other threads' bindings to it are then stale
 * and dropped, without touching their objects, at their next use of that way or exit.
 */
#define ST_POOL_INLINE /* strata.h's inline definitions become this file's external ones */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "base/atomics.h"
#include "base/check.h"
#include "base/lock.h"
#include "base/options.h"
#include "os/os.h"
#include "special/chunk.h"
#include "special/fork.h"
#include "special/handle.h"
#include "strata.h"

#define POOL_MIN_SLOT (2 * sizeof(void *)) /* the free-list link and the key */
#define POOL_CHECK_EVERY 1024u              /* the fewest frees between release checks */
#define POOL_CHECK_SPREAD 4u /* frees between checks per free slot or chunk the walk visits */
#define POOL_UNCACHED 0x80000000u /* flags: a shared pool without per-thread caches (internal) */

enum { POOL_WAYS = 8, POOL_CACHE_MAX = 64, POOL_CACHE_BATCH = 32 };

typedef struct free_slot {
  struct free_slot *next; /* word 0 */
  uintptr_t key;          /* word 1: the pool's key while the slot is free */
} free_slot;

struct st_pool {
  struct st_pool_fastpath fast; /* magic (handle.h), free list and the inline paths' checks:
                                   free, checks_due and known change under the lock (or the
                                   owning thread), key and divisible are const while live;
                                   a shared pool keeps free NULL and divisible 0 (strata.h) */
  void *shared_free;        /* a shared pool's free list (`fast.free` closes its inline
                               alloc); lock */
  uint64_t divisible;       /* the slot test's multiplier (fast.divisible is 0 while the
                               inline free must not run); const */
  /* A shared pool's table of chunks, as fast.known_slot0 (which stays empty, so that the
   * inline free never reads what its threads write); written under the lock, read lock
   * free (pool_free_known). */
  uintptr_t shared_slot0[ST_POOL_FASTPATH_KNOWN];
  unsigned flags;           /* ST_POOL_THREAD_SAFE or 0; const */
  st_chunk_geometry geo;    /* const */
  st_chunk_t *cur;          /* the chunk fresh slots are carved from, or NULL; lock */
  st_chunk_reserve reserve; /* where new chunks come from; lock */
  size_t object_size;       /* as created; const */
  st_list_t chunks;         /* every chunk; lock */
  size_t nchunks;           /* chunks mapped; lock */
  size_t released;          /* empty chunks unmapped so far; lock */
  st_lock_t lock;           /* guards a shared pool's free list, chunks and counters */
  uint64_t gen;             /* creation number, from 1 (shared pools' bindings); const */
};

/* One thread's cache of one shared pool's free objects. */
typedef struct pool_binding {
  uint64_t gen;     /* the bound pool's creation number, or 0: unbound */
  st_pool_t *pool;  /* the bound pool (dead once its gen stops matching) */
  free_slot *head;  /* n free objects, linked through word 0, the key in word 1 */
  unsigned n;
} pool_binding;

typedef struct pool_thread {
  pool_binding way[POOL_WAYS]; /* by the pool's gen % POOL_WAYS */
  st_list_t link;              /* on pool_threads; pool_threads_lock */
} pool_thread;

static __thread pool_thread *tls_pool_thread __attribute__((tls_model("initial-exec")));
/* The state of a thread after its exit destructor: no caches, every call takes the lock. */
static pool_thread pool_thread_exited;
/* Every thread's pool_thread, so that a forked child can give back the caches of the
 * threads that did not survive the fork (pool_fork_child). A leaf lock. */
static st_lock_t pool_threads_lock = ST_LOCK_INIT;
static st_list_t pool_threads = {&pool_threads, &pool_threads};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_key_t pool_exit_key;
static st_pool_t *pool_thread_pool; /* where pool_threads come from (uncached); once */
static st_atomic_size xpools_created;
_Static_assert(sizeof(struct st_pool) <= ST_HANDLE_SLOT_SIZE, "a pool fits a handle slot");
_Static_assert(offsetof(struct st_pool, fast) == 0, "the magic is the descriptor's first word");
_Static_assert(ST_CHUNK_MIN_SIZE == (size_t)1 << ST_POOL_FASTPATH_SHIFT,
               "known is indexed by the smallest chunk (strata.h)");
_Static_assert(offsetof(free_slot, key) == sizeof(uintptr_t), "the key is word 1 (strata.h)");

static uintptr_t pool_new_key(const void *p, uint64_t gen) {
  uint64_t x = (uintptr_t)p ^ (gen << 40);
  x += UINT64_C(0x9e3779b97f4a7c15); /* splitmix64 finaliser: a key unlikely in user data */
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return (uintptr_t)(x ^ (x >> 31)) | 1;
}

static const st_special_fork_kind pool_fork_kind;
static void pool_init_once(void);

static st_pool_t *pool_create(size_t object_size, size_t align, unsigned flags) {
  st__special_fork_register(ST_SPECIAL_FORK_POOL, &pool_fork_kind);
  /* The per-thread caches' own pool, made now rather than at a first alloc that may come
   * with a slab cache's lock held (it takes the registry lock: fork.h's order). */
  if ((flags & ST_POOL_THREAD_SAFE) && !(flags & POOL_UNCACHED))
    pthread_once(&pool_once, pool_init_once);
  if (align < sizeof(void *)) align = sizeof(void *);
  st_chunk_geometry geo;
  if (align > ST_CHUNK_MAX_SIZE || object_size > ST_CHUNK_MAX_SIZE ||
      st__chunk_geometry(&geo, st_align_up(object_size < POOL_MIN_SLOT ? POOL_MIN_SLOT
                                                                       : object_size, align),
                         align) != 0) {
    errno = ENOMEM;
    return NULL;
  }
  uint64_t magic = flags & ST_POOL_THREAD_SAFE ? ST_MAGIC_POOL_SHARED : ST_MAGIC_POOL;
  st_pool_t *p = st__handle_new(magic);
  if (p == NULL) return NULL;
  p->gen = st_fetch_add_relaxed(&xpools_created, 1) + 1;
  p->fast.key = pool_new_key(p, p->gen);
  p->divisible = UINT64_MAX / geo.slot + 1; /* exact for offsets below 2^32 */
  /* 0 keeps a shared pool's frees out of the inline path (its known is read lock free) */
  p->fast.divisible = flags & ST_POOL_THREAD_SAFE ? 0 : p->divisible;
  p->fast.checks_due = POOL_CHECK_EVERY;
  p->flags = flags;
  p->geo = geo;
  p->object_size = object_size;
  st_list_init(&p->chunks);
  st_lock_init(&p->lock);
  st__handle_publish(p, magic);
  return p;
}

st_pool_t *st_pool_create(size_t object_size, size_t align, unsigned flags) {
  if (align == 0) align = ST_MIN_ALIGN;
  if (object_size == 0 || !st_is_pow2(align) || (flags & ~(unsigned)ST_POOL_THREAD_SAFE)) {
    errno = EINVAL;
    return NULL;
  }
  return pool_create(object_size, align, flags);
}

/* Every call but the inline ones: a live pool of either kind, or a diagnostic naming fn. */
static void pool_check(const st_pool_t *p, const char *fn) {
  if (ST_UNLIKELY(p == NULL || p->fast.magic != ST_MAGIC_POOL_SHARED))
    st__handle_check(p, ST_MAGIC_POOL, fn);
}

/* The entries of `known` that c's granules map to: c's granules from the first, at most
 * ST_POOL_FASTPATH_KNOWN of them (every entry, for a chunk of that many granules or more). */
#define POOL_FOR_EACH_ENTRY(p, c, i)                                                            \
  for (size_t i##_g = st__chunk_base(c, &(p)->geo) >> ST_POOL_FASTPATH_SHIFT, i##_n = 0, i;     \
       i##_n < (p)->geo.chunk_size >> ST_POOL_FASTPATH_SHIFT && i##_n < ST_POOL_FASTPATH_KNOWN && \
       (i = (i##_g + i##_n) % ST_POOL_FASTPATH_KNOWN, true);                                    \
       i##_n++)

/* The slot-0 column of the pool's table of chunks: the inline paths' for an unshared
 * pool, a private one for a shared pool (whose known_end stays 0). */
ST_INLINE uintptr_t *pool_known_slot0(st_pool_t *p) {
  return p->flags & ST_POOL_THREAD_SAFE ? p->shared_slot0 : p->fast.known_slot0;
}

/* c was mapped: it takes those of its entries of `known` that are free. */
static void pool_know(st_pool_t *p, st_chunk_t *c) {
  uintptr_t slot0 = (uintptr_t)st__chunk_slots(c, &p->geo), *known = pool_known_slot0(p);
  POOL_FOR_EACH_ENTRY(p, c, i) {
    if (known[i] != 0) continue;
    /* atomic: a shared pool's frees read it without the lock (pool_free_known) */
    __atomic_store_n(&known[i], slot0, __ATOMIC_RELEASE);
  }
}

/* c handed out a fresh slot: the ends of its entries follow (an unshared pool's). */
static void pool_know_fresh(st_pool_t *p, st_chunk_t *c) {
  uintptr_t slot0 = (uintptr_t)st__chunk_slots(c, &p->geo);
  if (p->flags & ST_POOL_THREAD_SAFE) return;
  POOL_FOR_EACH_ENTRY(p, c, i)
    if (p->fast.known_slot0[i] == slot0) p->fast.known_end[i] = (uintptr_t)c->fresh - slot0;
}

static void pool_unmap(st_pool_t *p, st_chunk_t *c) {
  uintptr_t slot0 = (uintptr_t)st__chunk_slots(c, &p->geo), *known = pool_known_slot0(p);
  POOL_FOR_EACH_ENTRY(p, c, i) {
    if (known[i] != slot0) continue;
    p->fast.known_end[i] = 0; /* first: the inline free tests the end first */
    __atomic_store_n(&known[i], 0, __ATOMIC_RELAXED);
  }
  st__chunk_unmap(c, &p->geo);
}

/* The free list: `fast.free` for an unshared pool, where the inline paths find it;
 * `shared_free` for a shared one, whose fast.free stays NULL. */
ST_INLINE void **pool_list(st_pool_t *p) {
  return p->flags & ST_POOL_THREAD_SAFE ? &p->shared_free : &p->fast.free;
}

/* A slot: from the free list, else carved from cur or a new chunk. The caller holds the
 * lock or owns the pool. */
static void *pool_alloc_owned(st_pool_t *p) {
  void **list = pool_list(p);
  free_slot *s = *list;
  if (s != NULL) {
    *list = s->next;
    s->key = 0;
    return s;
  }
  st_chunk_t *c = p->cur;
  if (c == NULL || c->fresh == c->limit) {
    c = st__chunk_map(&p->geo, &p->reserve, p);
    if (c == NULL) return NULL;
    st_list_push_front(&p->chunks, &c->link);
    p->nchunks++;
    p->cur = c;
    pool_know(p, c);
  }
  void *fresh = c->fresh; /* fresh memory: its key word is already zero */
  c->fresh += p->geo.slot;
  pool_know_fresh(p, c);
  return fresh;
}


/* Sets each chunk's `used` to its live objects: carved slots minus those on the free list.
 * Returns the free slots counted. */
static size_t pool_recount(st_pool_t *p) {
  st_list_t *pos;
  for (pos = p->chunks.next; pos != &p->chunks; pos = pos->next) {
    st_chunk_t *c = ST_CONTAINER_OF(pos, st_chunk_t, link);
    c->used = (uint32_t)((size_t)(c->fresh - st__chunk_slots(c, &p->geo)) / p->geo.slot);
  }
  size_t free_slots = 0;
  for (free_slot *s = *pool_list(p); s != NULL; s = s->next, free_slots++)
    st__chunk_of(s, &p->geo)->used--;
  return free_slots;
}

/* Unlinks the free slots of doomed chunks (chunk->free != NULL), then unmaps those chunks. */
static void pool_sweep_doomed(st_pool_t *p, size_t doomed) {
  for (void **link = pool_list(p); *link != NULL;) {
    free_slot *s = *link;
    if (st__chunk_of(s, &p->geo)->free != NULL) *link = s->next;
    else link = (void **)&s->next;
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

/* Recounts, times the empty chunks not yet timed (and forgets the time of chunks in use),
 * then gives back the empty ones, but cur, timed before `cutoff`, keeping at least `keep`
 * empty chunks (cur included). Returns the free slots left. */
static size_t pool_release_empty(st_pool_t *p, uint64_t now, uint64_t cutoff, size_t keep) {
  size_t free_slots = pool_recount(p), doomed = 0, kept = 0;
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
    free_slots -= (size_t)(c->fresh - st__chunk_slots(c, &p->geo)) / p->geo.slot;
  }
  if (doomed != 0) pool_sweep_doomed(p, doomed);
  return free_slots;
}

/* checks_due frees were made since the last check: check again, and schedule the next one
 * after at least POOL_CHECK_SPREAD times as many frees as there are free slots and chunks
 * (the walk's cost, spread). */
static ST_NOINLINE void pool_check_release(st_pool_t *p) {
  size_t free_slots = 0;
  long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
  if (delay >= 0 && p->nchunks >= 2) {
    uint64_t now = st__os_now_ms();
    free_slots = pool_release_empty(p, now, now >= (uint64_t)delay ? now - (uint64_t)delay : 0, 1);
  }
  size_t next = POOL_CHECK_SPREAD * (free_slots + p->nchunks);
  p->fast.checks_due = next < POOL_CHECK_EVERY ? POOL_CHECK_EVERY
                       : next > UINT32_MAX    ? UINT32_MAX
                                              : (unsigned)next;
}

/* word 1 of obj held the key: aborts if obj is on the free list. */
static ST_COLD ST_NOINLINE void pool_check_double_free(st_pool_t *p, void *obj) {
  for (free_slot *s = *pool_list(p); s != NULL; s = s->next)
    if (s == (free_slot *)obj) st__fatal("st_pool_free(): double free of %p (pool %p)", obj, p);
}

static ST_COLD ST_NOINLINE _Noreturn void pool_fatal_misfit(st_pool_t *p, void *obj,
                                                           const char *why) {
  st__fatal("st_pool_free(): %p is %s pool %p", obj, why, (void *)p);
}

/* Every check (the chunk index, the header, the slot boundary, the double-free key), the
 * push, and the release check when it is due. The caller holds the lock or owns the pool. */
static void pool_free_owned(st_pool_t *p, void *obj) {
  const char *why = st__chunk_misfit(obj, p, &p->geo); /* reads c->fresh: under the lock */
  if (ST_UNLIKELY(why != NULL)) pool_fatal_misfit(p, obj, why);
  free_slot *s = obj;
  void **list = pool_list(p);
  if (ST_UNLIKELY(s->key == p->fast.key)) pool_check_double_free(p, obj);
  s->next = *list;
  s->key = p->fast.key;
  *list = s;
  /* 0 when the inline path counted this free down to the check */
  if (p->fast.checks_due == 0 || --p->fast.checks_due == 0) pool_check_release(p);
}

/* ---- shared pools: the per-thread caches ---------------------------------------------- */

/* Gives count objects from the head of b's cache back to the pool (the lock held), after
 * the check the free could not make without the lock (the others it made): the slot was
 * handed out, i.e. it is below its chunk's `fresh`. */
static void pool_cache_drain_locked(st_pool_t *p, pool_binding *b, unsigned count) {
  for (unsigned i = 0; i < count; i++) {
    free_slot *s = b->head;
    if (ST_UNLIKELY((char *)s >= st__chunk_of(s, &p->geo)->fresh))
      pool_fatal_misfit(p, s, "not the start of an object of");
    b->head = s->next;
    s->next = p->shared_free;
    p->shared_free = s;
  }
  b->n -= count;
  if (p->fast.checks_due <= count) pool_check_release(p);
  else p->fast.checks_due -= count;
}

/* Gives b's cache back to its pool, if the pool is still live; then b is unbound. */
static void pool_unbind(pool_binding *b) {
  st_pool_t *p = b->pool;
  if (b->n != 0 && st__handle_magic(p) == ST_MAGIC_POOL_SHARED && p->gen == b->gen) {
    st_lock_acquire(&p->lock);
    pool_cache_drain_locked(p, b, b->n);
    st_lock_release(&p->lock);
  }
  *b = (pool_binding){0};
}

/* Gives back t's caches and t itself, a thread's that exits or did not survive a fork. */
static void pool_thread_retire(pool_thread *t) {
  for (int i = 0; i < POOL_WAYS; i++) pool_unbind(&t->way[i]);
  st_pool_free(pool_thread_pool, t);
}

static void pool_thread_exit(void *arg) {
  pool_thread *t = arg;
  tls_pool_thread = &pool_thread_exited;
  st_lock_acquire(&pool_threads_lock);
  st_list_remove(&t->link);
  st_lock_release(&pool_threads_lock);
  pool_thread_retire(t);
}

static void pool_init_once(void) {
  pool_thread_pool = pool_create(sizeof(pool_thread), 0, ST_POOL_THREAD_SAFE | POOL_UNCACHED);
  if (pthread_key_create(&pool_exit_key, pool_thread_exit) != 0) pool_thread_pool = NULL;
}

/* The calling thread's pool_thread, made on first use; &pool_thread_exited when it has none
 * (exited, or no memory). */
static pool_thread *pool_thread_get(void) {
  pool_thread *t = tls_pool_thread;
  if (ST_LIKELY(t != NULL)) return t;
  pthread_once(&pool_once, pool_init_once);
  t = pool_thread_pool != NULL ? st_pool_alloc(pool_thread_pool) : NULL;
  if (t == NULL || pthread_setspecific(pool_exit_key, t) != 0) {
    if (t != NULL) st_pool_free(pool_thread_pool, t);
    return &pool_thread_exited;
  }
  *t = (pool_thread){0};
  st_lock_acquire(&pool_threads_lock);
  st_list_push_front(&pool_threads, &t->link);
  st_lock_release(&pool_threads_lock);
  return tls_pool_thread = t;
}

/* pool_bind when the thread has no binding to p on its way yet. */
static ST_NOINLINE pool_binding *pool_bind_new(st_pool_t *p) {
  if (p->flags & POOL_UNCACHED) return NULL;
  pool_thread *t = pool_thread_get();
  if (t == &pool_thread_exited) return NULL;
  pool_binding *b = &t->way[p->gen % POOL_WAYS];
  if (b->gen != 0) pool_unbind(b);
  *b = (pool_binding){.gen = p->gen, .pool = p};
  return b;
}

/* The calling thread's cache of shared pool p, bound now if need be; NULL when p has no
 * caches or the thread cannot have one (exited, or no memory). */
ST_INLINE pool_binding *pool_bind(st_pool_t *p) {
  pool_thread *t = tls_pool_thread;
  if (ST_LIKELY(t != NULL) && ST_LIKELY(t->way[p->gen % POOL_WAYS].gen == p->gen))
    return &t->way[p->gen % POOL_WAYS];
  return pool_bind_new(p);
}

/* The calling thread's binding to p, or NULL when it has none. */
static pool_binding *pool_own_binding(const st_pool_t *p) {
  pool_thread *t = tls_pool_thread; /* &pool_thread_exited has no bindings */
  if (t == NULL || t->way[p->gen % POOL_WAYS].gen != p->gen) return NULL;
  return &t->way[p->gen % POOL_WAYS];
}

/* The calling thread's cache of p, if it has one, given back to p. */
static void pool_unbind_own(st_pool_t *p) {
  pool_binding *b = pool_own_binding(p);
  if (b != NULL) pool_unbind(b);
}

static void *pool_alloc_shared(st_pool_t *p) {
  pool_binding *b = pool_bind(p);
  void *obj;
  if (b == NULL || b->n == 0) {
    st_lock_acquire(&p->lock);
    obj = pool_alloc_owned(p);
    /* the cache takes a batch more for the next calls (from the list, carved, mapped) */
    for (unsigned i = 1; b != NULL && obj != NULL && i < POOL_CACHE_BATCH; i++) {
      free_slot *s = pool_alloc_owned(p);
      if (s == NULL) break;
      s->key = p->fast.key;
      s->next = b->head;
      b->head = s;
      b->n++;
    }
    st_lock_release(&p->lock);
    return obj;
  }
  free_slot *s = b->head;
  b->head = s->next;
  b->n--;
  s->key = 0; /* a live object never shows the key */
  return s;
}

static ST_COLD ST_NOINLINE _Noreturn void pool_fatal_double_free(st_pool_t *p, void *obj) {
  st__fatal("st_pool_free(): double free of %p (pool %p)", obj, (void *)p);
}

/* True when obj is a slot of a chunk of p's `known` table, handed out or not (known_end
 * changes under the lock: pool_cache_drain_locked checks it later). Lock free. */
ST_INLINE bool pool_free_known(const st_pool_t *p, const void *obj) {
  unsigned i = (unsigned)(((uintptr_t)obj >> ST_POOL_FASTPATH_SHIFT) % ST_POOL_FASTPATH_KNOWN);
  uintptr_t slot0 = __atomic_load_n(&p->shared_slot0[i], __ATOMIC_RELAXED);
  uintptr_t offset = (uintptr_t)obj - slot0;
  return slot0 != 0 && offset < p->geo.capacity * p->geo.slot &&
         offset * p->divisible < p->divisible;
}

static void pool_free_shared(st_pool_t *p, void *obj) {
  const char *why = NULL;
  if (ST_UNLIKELY(!pool_free_known(p, obj)) &&
      ST_UNLIKELY((why = st__chunk_misfit_in(obj, p, &p->geo, false)) != NULL))
    pool_fatal_misfit(p, obj, why);
  pool_binding *b = pool_bind(p);
  if (b == NULL) {
    st_lock_acquire(&p->lock);
    pool_free_owned(p, obj);
    st_lock_release(&p->lock);
    return;
  }
  free_slot *s = obj;
  if (ST_UNLIKELY(s->key == p->fast.key)) pool_fatal_double_free(p, obj);
  if (b->n == POOL_CACHE_MAX) {
    st_lock_acquire(&p->lock);
    pool_cache_drain_locked(p, b, POOL_CACHE_BATCH);
    st_lock_release(&p->lock);
  }
  s->next = b->head;
  s->key = p->fast.key;
  b->head = s;
  b->n++;
}

/* ---- the library's paths ------------------------------------------------------------- */

/* NULL, a shared pool, a dead handle, or an empty free list. */
void *st_pool_alloc_slow(st_pool_t *p) {
  if (p == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (p->fast.magic == ST_MAGIC_POOL) return pool_alloc_owned(p);
  pool_check(p, "st_pool_alloc");
  return pool_alloc_shared(p);
}

/* NULL, a shared pool, a dead handle, a pointer not in `known`, a suspected double free,
 * or a release check due. */
void st_pool_free_slow(st_pool_t *p, void *obj) {
  if (obj == NULL) return; /* before p is read: st_pool_free(NULL, NULL) is fine */
  if (ST_UNLIKELY(p == NULL)) st__fatal("st_pool_free(): %p freed to a NULL pool", obj);
  if (p->fast.magic == ST_MAGIC_POOL) {
    pool_free_owned(p, obj);
    return;
  }
  pool_check(p, "st_pool_free");
  pool_free_shared(p, obj);
}

void st_pool_destroy(st_pool_t *p) {
  if (p == NULL) return;
  pool_check(p, "st_pool_destroy");
  pool_binding *own = pool_own_binding(p); /* its objects go with the chunks */
  if (own != NULL) *own = (pool_binding){0};
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &p->chunks)
      st__chunk_unmap(ST_CONTAINER_OF(pos, st_chunk_t, link), &p->geo);
  st__chunk_reserve_release(&p->reserve, &p->geo);
  p->fast.free = NULL; /* the inline paths call the library, which finds the pool dead */
  p->fast.divisible = 0;
  st__handle_retire(p);
}

void st_pool_stats_get(st_pool_t *p, st_pool_stats *out) {
  pool_check(p, "st_pool_stats_get");
  if (p->fast.magic == ST_MAGIC_POOL_SHARED) pool_unbind_own(p);
  *out = (st_pool_stats){.object_size = p->object_size, .slot_size = p->geo.slot};
  st_lock_acquire(&p->lock);
  pool_recount(p);
  st_list_t *pos;
  for (pos = p->chunks.next; pos != &p->chunks; pos = pos->next) {
    st_chunk_t *c = ST_CONTAINER_OF(pos, st_chunk_t, link);
    out->live_objects += c->used;
    out->chunks_empty += c->used == 0;
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
  if (p->fast.magic == ST_MAGIC_POOL_SHARED) pool_unbind_own(p);
  st_lock_acquire(&p->lock);
  size_t before = p->released;
  pool_release_empty(p, st__os_now_ms(), UINT64_MAX, 0);
  size_t released = p->released - before;
  st_lock_release(&p->lock);
  return released * p->geo.chunk_size;
}

/* ---- fork (fork.h) ----------------------------------------------------------------------- */

static void pool_fork_lock(void *h) { st_lock_acquire(&((st_pool_t *)h)->lock); }
static void pool_fork_unlock(void *h) { st_lock_release(&((st_pool_t *)h)->lock); }
static void pool_fork_lock_threads(void) { st_lock_acquire(&pool_threads_lock); }
static void pool_fork_unlock_threads(void) { st_lock_release(&pool_threads_lock); }

/* In a forked child: the caches of the threads that did not survive the fork (every
 * pool_thread but the forking thread's) go back to their pools, as at those threads' exit. */
static void pool_fork_child(void) {
  pool_thread *self = tls_pool_thread;
  st_list_t dead;
  st_list_init(&dead);
  st_lock_acquire(&pool_threads_lock);
  st_list_move_all_but(&pool_threads, &dead, self != NULL ? &self->link : NULL);
  st_lock_release(&pool_threads_lock);
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &dead) pool_thread_retire(ST_CONTAINER_OF(pos, pool_thread, link));
}

static const st_special_fork_kind pool_fork_kind = {
    .magic = {ST_MAGIC_POOL, ST_MAGIC_POOL_SHARED},
    .lock = pool_fork_lock,
    .unlock = pool_fork_unlock,
    .lock_globals = pool_fork_lock_threads,
    .unlock_globals = pool_fork_unlock_threads,
    .child = pool_fork_child,
};
