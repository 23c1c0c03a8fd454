/*
 * test_pool.c — st_pool_*: sizes and alignments, reuse, chunk growth and release,
 * statistics, threads with ST_POOL_THREAD_SAFE, invalid arguments and misuse.
 * With --threads-only (the TSan tier) it runs the thread case alone.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "special_test.h"
#include "strata.h"

static void pool_sizes_and_alignments(void) {
  static const size_t sizes[] = {1, 8, 15, 16, 24, 100, 4096, 100000};
  static const size_t aligns[] = {0, 1, 8, 16, 64, 4096};
  enum { N = 300 };
  static void *objs[N];
  for (size_t si = 0; si < (sizeof sizes / sizeof sizes[0]); si++) {
    for (size_t ai = 0; ai < (sizeof aligns / sizeof aligns[0]); ai++) {
      size_t size = sizes[si], align = aligns[ai] ? aligns[ai] : alignof(max_align_t);
      st_pool_t *p = st_pool_create(size, aligns[ai], 0);
      REQUIRE(p != NULL);
      for (size_t i = 0; i < N; i++) {
        objs[i] = st_pool_alloc(p);
        REQUIRE(objs[i] != NULL);
        CHECK_ALIGNED(objs[i], align);
        pattern_fill(objs[i], size, i);
      }
      for (size_t i = 0; i < N; i++)
        CHECK_MSG(pattern_ok(objs[i], size, i), "size %zu align %zu object %zu", size, align, i);
      st_pool_stats s;
      st_pool_stats_get(p, &s);
      CHECK_EQ(s.object_size, size);
      CHECK_GE(s.slot_size, size);
      CHECK_EQ(s.live_objects, N);
      for (size_t i = 0; i < N; i++) st_pool_free(p, objs[(i * 7) % N]); /* 7 is prime to N */
      st_pool_stats_get(p, &s);
      CHECK_EQ(s.live_objects, 0);
      st_pool_destroy(p);
    }
  }
}

static void pool_reuse_lifo(void) {
  st_pool_t *p = st_pool_create(48, 0, 0);
  REQUIRE(p != NULL);
  void *a = st_pool_alloc(p), *b = st_pool_alloc(p);
  CHECK(a != b);
  st_pool_free(p, a);
  CHECK(st_pool_alloc(p) == a); /* the most recently freed slot comes back first */
  st_pool_free(p, b);
  st_pool_free(p, a);
  st_pool_free(p, NULL); /* a no-op */
  /* A freed object whose second word the program set to anything is fine to reuse. */
  uintptr_t *w = st_pool_alloc(p);
  REQUIRE(w != NULL);
  CHECK_EQ(w[1], 0);
  st_pool_free(p, w);
  st_pool_destroy(p);
  st_pool_destroy(NULL);
}

static void pool_chunks_grow_and_release(void) {
  st_pool_t *p = st_pool_create(64, 0, 0);
  REQUIRE(p != NULL);
  enum { N = 20000 }; /* 1.3 MB: about 20 chunks of 64 KiB */
  static void *objs[N];
  for (size_t i = 0; i < N; i++) REQUIRE((objs[i] = st_pool_alloc(p)) != NULL);
  st_pool_stats s;
  st_pool_stats_get(p, &s);
  CHECK_GE(s.chunks, 19);
  CHECK_EQ(s.reserved_bytes, s.chunks * 64 * 1024);
  CHECK_EQ(s.live_objects, N);
  size_t grown = s.chunks;
  for (size_t i = 0; i < N; i++) st_pool_free(p, objs[i]);
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.chunks_empty + s.chunks_released, grown); /* each kept or released */
  /* Refill: the empty chunks are reused, nothing new is mapped. */
  for (size_t i = 0; i < N; i++) REQUIRE((objs[i] = st_pool_alloc(p)) != NULL);
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks + s.chunks_released, grown); /* ... unless released after the delay */
  /* Drain in random order: every chunk is found empty again. */
  uint64_t seed = 42;
  for (size_t i = N - 1; i > 0; i--) {
    size_t j = xorshift64(&seed) % (i + 1);
    void *t = objs[i];
    objs[i] = objs[j], objs[j] = t;
  }
  for (size_t i = 0; i < N; i++) st_pool_free(p, objs[i]);
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.chunks_empty, s.chunks);
  size_t empty_bytes = (s.chunks - 1) * (s.reserved_bytes / s.chunks); /* all but cur */
  CHECK_EQ(st_pool_trim(p), empty_bytes);
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, 1);
  CHECK_EQ(s.chunks_empty, 1);
  CHECK_EQ(s.chunks_released, grown - 1);
  CHECK_EQ(st_pool_trim(p), 0);
  CHECK_EQ(st_pool_trim(NULL), 0);
  st_pool_destroy(p);
}

static void pool_invalid(void) {
  errno = 0;
  CHECK(st_pool_create(0, 0, 0) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_pool_create(16, 3, 0) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_pool_create(16, 0, 2) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_pool_create(SIZE_MAX, 0, 0) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_pool_create(SIZE_MAX / 16, 0, 0) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_pool_create(16, (size_t)1 << 40, 0) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_pool_alloc(NULL) == NULL && errno == EINVAL);
  st_pool_t *p = st_pool_create((size_t)64 << 20, 0, 0); /* large objects: 8 per chunk */
  REQUIRE(p != NULL);
  char *big = st_pool_alloc(p);
  REQUIRE(big != NULL);
  big[((size_t)64 << 20) - 1] = 1;
  st_pool_free(p, big);
  st_pool_destroy(p);
}

/* The library's own st_pool_alloc and st_pool_free (the calls the compiler does not inline,
 * and those of programs built with STRATA_NO_INLINE), through pointers it cannot see into. */
static void *(*volatile lib_alloc)(st_pool_t *) = st_pool_alloc;
static void (*volatile lib_free)(st_pool_t *, void *) = st_pool_free;

/* The inline paths and the library's mix freely: same free list, same checks. */
static void pool_library_calls(void) {
  enum { N = 5000 }; /* several chunks: the known table and the carved end are exercised */
  static void *objs[N];
  st_pool_t *p = st_pool_create(24, 0, 0);
  REQUIRE(p != NULL);
  for (size_t i = 0; i < N; i++) {
    objs[i] = i % 2 ? lib_alloc(p) : st_pool_alloc(p);
    REQUIRE(objs[i] != NULL);
    pattern_fill(objs[i], 24, i);
  }
  for (size_t i = 0; i < N; i++) CHECK(pattern_ok(objs[i], 24, i));
  for (size_t i = 0; i < N; i += 3) lib_free(p, objs[i]);
  void *last = NULL;
  for (size_t i = 1; i < N; i += 3) st_pool_free(p, last = objs[i]);
  CHECK(lib_alloc(p) == last); /* LIFO across both kinds of call */
  lib_free(p, last);
  lib_free(p, NULL);
  CHECK(lib_alloc(NULL) == NULL && errno == EINVAL);
  st_pool_stats s;
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.live_objects, N / 3);
  st_pool_destroy(p);
}

static void *pool_alloc_cb(void *pool) { return st_pool_alloc(pool); }
static void pool_free_cb(void *pool, void *obj) { st_pool_free(pool, obj); }

/* Several threads share one pool; most objects are freed by another thread than their allocator. */
static void pool_threads(void) {
  st_pool_t *p = st_pool_create(40, 0, ST_POOL_THREAD_SAFE);
  REQUIRE(p != NULL);
  shared_test t = {pool_alloc_cb, pool_free_cb, NULL, p, 0, 40, 200000};
  CHECK_EQ(shared_run(&t), 0);
  st_pool_stats s;
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.live_objects, 0);
  st_pool_trim(p);
  st_pool_stats_get(p, &s);
  CHECK_LE(s.chunks, 1);
  st_pool_destroy(p);
}

/* A thread that allocates and frees on a shared pool, then waits: its frees stay in its
 * cache until it exits. */
typedef struct cache_holder {
  st_pool_t *pool;
  sem_t ready, go;
} cache_holder;

static void *cache_holder_thread(void *arg) {
  cache_holder *h = arg;
  void *objs[10];
  for (int i = 0; i < 10; i++) objs[i] = st_pool_alloc(h->pool);
  for (int i = 0; i < 10; i++) st_pool_free(h->pool, objs[i]);
  sem_post(&h->ready);
  sem_wait(&h->go);
  return NULL;
}

/* Starts a cache_holder thread on h->pool and waits until it has filled its cache. */
static int cache_holder_start(cache_holder *h, pthread_t *thread) {
  sem_init(&h->ready, 0, 0);
  sem_init(&h->go, 0, 0);
  if (pthread_create(thread, NULL, cache_holder_thread, h) != 0) return -1;
  sem_wait(&h->ready);
  return 0;
}

/* Another live thread's cache counts as live objects and keeps its chunk; its exit gives
 * the cache back, and the chunk can go. */
static void pool_thread_caches(void) {
  cache_holder h = {.pool = st_pool_create(48, 0, ST_POOL_THREAD_SAFE)};
  pthread_t thread;
  REQUIRE(h.pool != NULL && cache_holder_start(&h, &thread) == 0);
  st_pool_stats s;
  st_pool_stats_get(h.pool, &s);
  CHECK(s.live_objects >= 10); /* the cache took a batch: at least the 10 freed */
  CHECK_EQ(s.chunks, 1);
  CHECK_EQ(st_pool_trim(h.pool), 0);
  sem_post(&h.go);
  pthread_join(thread, NULL);
  st_pool_stats_get(h.pool, &s);
  CHECK_EQ(s.live_objects, 0);
  /* the caller's own cache is given back by its statistics call */
  void *a = st_pool_alloc(h.pool);
  st_pool_free(h.pool, a);
  st_pool_stats_get(h.pool, &s);
  CHECK_EQ(s.live_objects, 0);
  st_pool_destroy(h.pool);
}

/* Each new pool's cache may take the way of the destroyed pool's binding. */
static void *stale_cache_thread(void *arg) {
  cache_holder *h = arg;
  cache_holder_thread(h); /* returns once the pool is destroyed */
  for (int i = 0; i < 16; i++) {
    st_pool_t *q = st_pool_create(32, 0, ST_POOL_THREAD_SAFE);
    if (q == NULL) return (void *)1;
    st_pool_free(q, st_pool_alloc(q));
    st_pool_destroy(q);
  }
  return NULL;
}

/* A pool destroyed while another thread holds a cache of it: the thread's binding is
 * stale, dropped without touching the objects (unmapped with the pool) when the thread
 * rebinds the way or exits. */
static void pool_destroyed_with_caches(void) {
  for (int rebind = 0; rebind < 2; rebind++) {
    cache_holder h = {.pool = st_pool_create(48, 0, ST_POOL_THREAD_SAFE)};
    REQUIRE(h.pool != NULL);
    sem_init(&h.ready, 0, 0);
    sem_init(&h.go, 0, 0);
    pthread_t thread;
    REQUIRE(pthread_create(&thread, NULL, rebind ? stale_cache_thread : cache_holder_thread,
                           &h) == 0);
    sem_wait(&h.ready);
    st_pool_destroy(h.pool);
    sem_post(&h.go);
    void *r;
    pthread_join(thread, &r);
    CHECK(r == NULL);
  }
  st_pool_t *p = st_pool_create(48, 0, ST_POOL_THREAD_SAFE); /* the process goes on */
  REQUIRE(p != NULL);
  st_pool_free(p, st_pool_alloc(p));
  st_pool_destroy(p);
}

static void double_free(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  void *a = st_pool_alloc(p), *b = st_pool_alloc(p);
  st_pool_free(p, a);
  st_pool_free(p, b);
  st_pool_free(p, a);
}

static void double_free_thread_safe(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(8, 0, ST_POOL_THREAD_SAFE);
  void *a = st_pool_alloc(p);
  st_pool_free(p, a);
  st_pool_free(p, a);
}

static void *free_in_thread(void *arg) {
  void **pool_and_obj = arg;
  st_pool_free(pool_and_obj[0], pool_and_obj[1]);
  return NULL;
}

/* The object sits in the main thread's cache when another thread frees it. */
static void double_free_other_thread(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(24, 0, ST_POOL_THREAD_SAFE);
  void *a = st_pool_alloc(p);
  st_pool_free(p, a);
  void *pool_and_obj[2] = {p, a};
  pthread_t t;
  if (pthread_create(&t, NULL, free_in_thread, pool_and_obj) == 0) pthread_join(t, NULL);
}

/* Caught when the cache gives the slot back: here, at the statistics call. */
static void never_allocated_shared(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, ST_POOL_THREAD_SAFE);
  char *a = st_pool_alloc(p);
  st_pool_free(p, a + 64 * 32); /* past the slots the first batch handed out */
  st_pool_stats st;
  st_pool_stats_get(p, &st);
}

static void wrong_pool_shared(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, ST_POOL_THREAD_SAFE),
            *q = st_pool_create(32, 0, ST_POOL_THREAD_SAFE);
  st_pool_free(p, st_pool_alloc(q));
}

static void double_free_library(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  void *a = lib_alloc(p);
  lib_free(p, a);
  lib_free(p, a);
}

static void free_to_null_pool(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  st_pool_free(NULL, NULL); /* a no-op, like free(NULL) */
  st_pool_free(NULL, st_pool_alloc(p));
}

static void stats_of_null_pool(void *arg) {
  (void)arg;
  st_pool_stats s;
  st_pool_stats_get(NULL, &s);
}

/* Two pools whose chunks share entries of the known table (more than 32 chunks each): a
 * free to the wrong one is still caught. */
static void wrong_pool_colliding(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(4000, 0, 0), *q = st_pool_create(4000, 0, 0);
  void *last = NULL;
  for (int i = 0; i < 16 * 40; i++) {
    CHECK(st_pool_alloc(p) != NULL);
    last = st_pool_alloc(q);
  }
  st_pool_free(p, last);
}

static void wrong_pool(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0), *q = st_pool_create(32, 0, 0);
  st_pool_free(q, st_pool_alloc(p));
}

static void interior_pointer(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  char *a = st_pool_alloc(p);
  st_pool_free(p, a + 8);
}

static void never_allocated(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  char *a = st_pool_alloc(p);
  st_pool_free(p, a + 64 * 32); /* a slot past the ones handed out */
}

static void slab_object_to_pool(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  st_slab_cache_t *c = st_slab_create("other", 32, 0, NULL, NULL);
  st_pool_free(p, st_slab_alloc(c));
}

/* Pointers into no chunk at all: the free must report them, not fault on a header. */
static void stack_pointer(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  char on_stack[32];
  st_pool_free(p, on_stack);
}

static void malloc_pointer(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  CHECK(st_pool_alloc(p) != NULL);
  st_pool_free(p, malloc(32));
}

static void wild_pointer(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  st_pool_free(p, (void *)(uintptr_t)0x7ff123450010u);
  st_pool_free(p, (void *)~(uintptr_t)0xf);
}

static void freed_chunk_pointer(void *arg) { /* a pointer into a chunk given back */
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0), *q = st_pool_create(32, 0, 0);
  void *a = st_pool_alloc(q);
  st_pool_destroy(q);
  st_pool_free(p, a);
}

static void use_after_destroy(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  st_pool_destroy(p);
  CHECK(st_pool_alloc(p) != NULL);
}

static void free_after_destroy(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  void *a = st_pool_alloc(p);
  st_pool_destroy(p);
  st_pool_free(p, a);
}

/* Other kinds created and destroyed past the handle quarantine never take the dead pool's
 * slot, whose fields the inline paths trust: the stale handle still reads as dead. */
static void use_after_destroy_and_reuse(void *arg) {
  (void)arg;
  st_pool_t *p = st_pool_create(32, 0, 0);
  st_pool_destroy(p);
  for (int i = 0; i < 256; i++) { /* four times the quarantine of src/special/handle.h */
    st_arena_t *a = st_arena_create(NULL);
    st_slab_cache_t *c = st_slab_create("reuse", 32, 0, NULL, NULL);
    if (a == NULL || c == NULL || (void *)a == (void *)p || (void *)c == (void *)p)
      exit(0); /* not the death the case expects */
    if (i % 2 == 0) { /* half stay live, half go through the quarantine */
      st_arena_destroy(a);
      st_slab_destroy(c);
    }
  }
  CHECK(st_pool_alloc(p) != NULL);
}

static void pool_misuse(void) {
  static const death_case cases[] = {
      DEATH_CASE(double_free, "st_pool_free(): double free of 0x"),
      DEATH_CASE(double_free_thread_safe, "st_pool_free(): double free of 0x"),
      DEATH_CASE(double_free_library, "st_pool_free(): double free of 0x"),
      DEATH_CASE(double_free_other_thread, "st_pool_free(): double free of 0x"),
      DEATH_CASE(never_allocated_shared, "st_pool_free(): 0x"),
      DEATH_CASE(never_allocated_shared, "is not the start of an object of pool"),
      DEATH_CASE(wrong_pool_shared, "allocated by another allocator than pool 0x"),
      DEATH_CASE(free_to_null_pool, "st_pool_free(): 0x"),
      DEATH_CASE(free_to_null_pool, "freed to a NULL pool"),
      DEATH_CASE(stats_of_null_pool, "st_pool_stats_get(): the pool is NULL"),
      DEATH_CASE(wrong_pool, "allocated by another allocator than pool 0x"),
      DEATH_CASE(wrong_pool_colliding, "allocated by another allocator than pool 0x"),
      DEATH_CASE(interior_pointer, "is not the start of an object of pool"),
      DEATH_CASE(never_allocated, "is not the start of an object of pool"),
      DEATH_CASE(slab_object_to_pool, "allocated by another allocator than pool"),
      DEATH_CASE(stack_pointer, "strata: st_pool_free(): 0x"),
      DEATH_CASE(stack_pointer, "is not allocated by pool 0x"),
      DEATH_CASE(malloc_pointer, "is not allocated by pool 0x"),
      DEATH_CASE(wild_pointer, "st_pool_free(): 0x7ff123450010 is not allocated by pool 0x"),
      DEATH_CASE(freed_chunk_pointer, "is not allocated by pool 0x"),
      DEATH_CASE(use_after_destroy, "st_pool_alloc(): 0x"),
      DEATH_CASE(use_after_destroy, "is not a live pool"),
      DEATH_CASE(free_after_destroy, "st_pool_free(): 0x"),
      DEATH_CASE(use_after_destroy_and_reuse, "is not a live pool"),
  };
  expect_deaths(cases, sizeof cases / sizeof cases[0]);
}

int main(int argc, char **argv) {
  if (!threads_only(argc, argv)) {
    RUN_CASE(pool_sizes_and_alignments);
    RUN_CASE(pool_reuse_lifo);
    RUN_CASE(pool_library_calls);
    RUN_CASE(pool_chunks_grow_and_release);
    RUN_CASE(pool_invalid);
    RUN_CASE(pool_misuse);
  }
  RUN_CASE(pool_threads);
  RUN_CASE(pool_thread_caches);
  RUN_CASE(pool_destroyed_with_caches);
  return check_summary();
}
