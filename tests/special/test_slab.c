/*
 * test_slab.c — st_slab_*: constructor and destructor discipline, slab lists, shrink,
 * statistics and st_slab_foreach, threads, invalid arguments and misuse.
 * With --threads-only (the TSan tier) it runs the thread case alone.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "special_test.h"
#include "strata.h"

/* An object that knows whether it is constructed. */
typedef struct widget {
  uint64_t state; /* WIDGET_READY after ctor, until dtor */
  struct widget *self;
  char payload[100];
} widget;
#define WIDGET_READY UINT64_C(0x5245414459)

static atomic_long ctor_calls, dtor_calls;

static void widget_ctor(void *obj) {
  widget *w = obj;
  w->state = WIDGET_READY;
  w->self = w;
  atomic_fetch_add(&ctor_calls, 1);
}

static void widget_dtor(void *obj) {
  widget *w = obj;
  if (w->state != WIDGET_READY || w->self != w) abort(); /* destroyed twice or never built */
  w->state = 0;
  atomic_fetch_add(&dtor_calls, 1);
}

static void reset_calls(void) { atomic_store(&ctor_calls, 0), atomic_store(&dtor_calls, 0); }

static void slab_ctor_once_per_object(void) {
  reset_calls();
  st_slab_cache_t *c = st_slab_create("widget", sizeof(widget), 0, widget_ctor, widget_dtor);
  REQUIRE(c != NULL);
  enum { N = 3000 };
  static widget *objs[N];
  long built[3];
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < N; i++) {
      objs[i] = st_slab_alloc(c);
      REQUIRE(objs[i] != NULL);
      CHECK_ALIGNED(objs[i], alignof(max_align_t));
      CHECK_MSG(objs[i]->state == WIDGET_READY && objs[i]->self == objs[i], "object %zu", i);
      pattern_fill(objs[i]->payload, sizeof objs[i]->payload, i);
    }
    for (size_t i = 0; i < N; i++) {
      CHECK(pattern_ok(objs[i]->payload, sizeof objs[i]->payload, i));
      st_slab_free(c, objs[i]); /* returned constructed: state and self untouched */
    }
    built[round] = atomic_load(&ctor_calls);
  }
  /* Once per object, not per allocation: the first round builds N; the second may build
   * the never-used rest of the slab it finishes in; the third reuses only. */
  st_slab_stats s;
  st_slab_stats_get(c, &s);
  size_t per_slab = s.slab_bytes / s.slot_size;
  CHECK_EQ(built[0], N);
  CHECK_LE(built[1], N + (long)per_slab);
  CHECK_EQ(built[2], built[1]);
  CHECK_EQ(atomic_load(&dtor_calls), 0);
  st_slab_stats_get(c, &s);
  CHECK(strcmp(s.name, "widget") == 0);
  CHECK_EQ(s.allocs, 3 * N);
  CHECK_EQ(s.frees, 3 * N);
  CHECK_EQ(s.constructed, built[2]);
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.cached_objects, built[2]);
  CHECK_EQ(s.magazine_objects, N); /* the freed objects wait in magazines, not in slabs */
  /* Shrink returns the magazines to the slabs, then every slab. */
  CHECK_EQ(st_slab_shrink(c), s.reserved_bytes);
  CHECK_EQ(atomic_load(&dtor_calls), built[2]); /* every constructed object destroyed once */
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.reserved_bytes, 0);
  CHECK_EQ(s.cached_objects, 0);
  CHECK_EQ(s.destructed, built[2]);
  CHECK_EQ(st_slab_shrink(c), 0);
  st_slab_destroy(c);
}

static void slab_lists(void) {
  st_slab_cache_t *c = st_slab_create("lists", 1000, 0, NULL, NULL);
  REQUIRE(c != NULL);
  st_slab_stats s;
  st_slab_stats_get(c, &s);
  size_t per_slab = s.slab_bytes / s.slot_size; /* an upper bound: the header takes a little */
  enum { MAX = 512 };
  static void *objs[MAX];
  size_t n = 0;
  do {
    REQUIRE(n < MAX);
    objs[n++] = st_slab_alloc(c);
    st_slab_stats_get(c, &s);
  } while (s.slabs_full == 0); /* fill exactly one slab */
  CHECK_LE(n, per_slab);
  CHECK_EQ(s.slabs_partial, 0);
  void *extra = st_slab_alloc(c);
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.slabs_full, 1);
  CHECK_EQ(s.slabs_partial, 1);
  st_slab_free(c, objs[0]); /* to the thread's magazine: the slab stays full */
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.slabs_full, 1);
  CHECK_EQ(s.magazine_objects, 1);
  CHECK(st_slab_alloc(c) == objs[0]); /* and comes back first */
  st_slab_free(c, extra);
  for (size_t i = 0; i < n; i++) st_slab_free(c, objs[i]);
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.magazine_objects, n + 1);
  CHECK_EQ(s.slabs_empty, 0); /* the slabs do not see objects in magazines */
  /* Shrink flushes the magazines: both slabs empty, then given back. */
  CHECK_EQ(st_slab_shrink(c), 2 * s.slab_bytes);
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.slabs_full + s.slabs_partial + s.slabs_empty, 0);
  CHECK_EQ(s.magazine_objects, 0);
  /* Without magazines in between (a shrink after each free), the lists follow the frees. */
  for (size_t i = 0; i < 2; i++) objs[i] = st_slab_alloc(c);
  st_slab_free(c, objs[0]);
  (void)st_slab_shrink(c);
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.slabs_partial, 1);
  CHECK_EQ(s.live_objects, 1);
  st_slab_free(c, objs[1]);
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.slabs_partial, 1); /* objs[1] sits in the magazine */
  CHECK_EQ(st_slab_shrink(c), s.slab_bytes);
  st_slab_destroy(c);
}

/* The first thread to use a cache owns its front (the inline paths of strata.h); its exit
 * gives the front's objects back and lets the next thread take the front over. */
static void *use_front_and_exit(void *cache) {
  enum { N = 40 }; /* more than a front holds: one spill to the depot */
  void *objs[N];
  for (size_t i = 0; i < N; i++) objs[i] = st_slab_alloc(cache);
  for (size_t i = 0; i < N; i++) st_slab_free(cache, objs[i]);
  return NULL;
}

static void slab_front_handover(void) {
  reset_calls();
  st_slab_cache_t *c = st_slab_create("front", sizeof(widget), 0, widget_ctor, widget_dtor);
  REQUIRE(c != NULL);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, use_front_and_exit, c) == 0);
  pthread_join(t, NULL);
  st_slab_stats s;
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.allocs, 40);
  CHECK_EQ(s.frees, 40);
  CHECK_EQ(s.cached_objects, 40);
  enum { N = 100 };
  static widget *w[N];
  for (size_t i = 0; i < N; i++) {
    w[i] = st_slab_alloc(c);
    REQUIRE(w[i] != NULL);
    CHECK(w[i]->state == WIDGET_READY && w[i]->self == w[i]);
  }
  CHECK_EQ(atomic_load(&ctor_calls), N); /* the thread's 40, reused, and 60 more */
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.live_objects, N);
  CHECK_EQ(s.allocs, 40 + N);
  for (size_t i = 0; i < N; i++) st_slab_free(c, w[i]);
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.frees, 40 + N);
  CHECK_EQ(s.cached_objects, N);
  CHECK_EQ(st_slab_shrink(c), s.reserved_bytes); /* the front too: every slab is empty */
  CHECK_EQ(atomic_load(&dtor_calls), N);
  st_slab_destroy(c);
}

/* Magazines of a thread that exited go to the depot; shrink then returns everything. */
static void *use_and_exit(void *cache) {
  enum { N = 1000 };
  static void *objs[N];
  for (size_t i = 0; i < N; i++) objs[i] = st_slab_alloc(cache);
  for (size_t i = 0; i < N; i++) st_slab_free(cache, objs[i]);
  return NULL;
}

/* A live thread's magazines are its own: shrink leaves them (and their slab) alone. */
typedef struct holder {
  st_slab_cache_t *cache;
  atomic_int stage; /* 1: objects freed into the magazine; 2: may exit */
} holder;

static void *free_and_wait(void *arg) {
  holder *h = arg;
  void *objs[10];
  for (size_t i = 0; i < 10; i++) objs[i] = st_slab_alloc(h->cache);
  for (size_t i = 0; i < 10; i++) st_slab_free(h->cache, objs[i]);
  atomic_store(&h->stage, 1);
  while (atomic_load(&h->stage) != 2) sched_yield();
  return NULL;
}

static void slab_live_thread_magazines(void) {
  reset_calls();
  holder h = {st_slab_create("held", sizeof(widget), 0, widget_ctor, widget_dtor), 0};
  REQUIRE(h.cache != NULL);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, free_and_wait, &h) == 0);
  while (atomic_load(&h.stage) != 1) sched_yield();
  CHECK_EQ(st_slab_shrink(h.cache), 0); /* the slab holds the thread's objects */
  st_slab_stats s;
  st_slab_stats_get(h.cache, &s);
  /* the thread, first to use the cache, owns its front, which every thread can count */
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.magazine_objects, 10);
  CHECK_EQ(atomic_load(&dtor_calls), 0);
  atomic_store(&h.stage, 2);
  pthread_join(t, NULL);
  CHECK_EQ(st_slab_shrink(h.cache), s.reserved_bytes); /* flushed at its exit */
  CHECK_EQ(atomic_load(&dtor_calls), 10);
  st_slab_destroy(h.cache);
}

static void slab_exited_thread_magazines(void) {
  reset_calls();
  st_slab_cache_t *c = st_slab_create("exited", sizeof(widget), 0, widget_ctor, widget_dtor);
  REQUIRE(c != NULL);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, use_and_exit, c) == 0);
  pthread_join(t, NULL);
  st_slab_stats s;
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.live_objects, 0); /* the thread's magazines were flushed at its exit */
  CHECK_EQ(s.allocs, 1000);
  CHECK_EQ(s.frees, 1000);
  CHECK_GT(s.reserved_bytes, 0);
  CHECK_EQ(st_slab_shrink(c), s.reserved_bytes);
  CHECK_EQ(atomic_load(&dtor_calls), atomic_load(&ctor_calls));
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.reserved_bytes, 0);
  CHECK_EQ(s.cached_objects, 0);
  st_slab_destroy(c);
}

/* A constructor may allocate from the cache it builds for (no lock is held). */
static st_slab_cache_t *nested_cache;
typedef struct node {
  struct node *child;
  int depth;
} node;
static void node_ctor(void *obj) {
  node *n = obj;
  static int depth;
  n->depth = depth;
  n->child = NULL;
  if (depth < 3) {
    depth++;
    n->child = st_slab_alloc(nested_cache);
    depth--;
  }
}

static void slab_reentrant_ctor(void) {
  nested_cache = st_slab_create("node", sizeof(node), 0, node_ctor, NULL);
  REQUIRE(nested_cache != NULL);
  node *n = st_slab_alloc(nested_cache);
  REQUIRE(n != NULL);
  CHECK(n->child && n->child->child && n->child->child->child);
  st_slab_stats s;
  st_slab_stats_get(nested_cache, &s);
  CHECK_EQ(s.live_objects, 4);
  st_slab_destroy(nested_cache); /* warns: 4 objects still allocated */
}

typedef struct seen {
  int widget, other;
} seen;
static void count_caches(const st_slab_stats *s, void *arg) {
  seen *w = arg;
  if (strcmp(s->name, "visit-a") == 0) w->widget += (int)s->live_objects;
  else if (strcmp(s->name, "visit-b") == 0) w->other++;
}

static void slab_foreach(void) {
  st_slab_cache_t *a = st_slab_create("visit-a", 24, 0, NULL, NULL);
  st_slab_cache_t *b = st_slab_create("visit-b", 24, 0, NULL, NULL);
  REQUIRE(a != NULL && b != NULL);
  void *x = st_slab_alloc(a), *y = st_slab_alloc(a);
  seen w = {0, 0};
  st_slab_foreach(count_caches, &w);
  CHECK_EQ(w.widget, 2);
  CHECK_EQ(w.other, 1);
  st_slab_free(a, x);
  st_slab_free(a, y);
  st_slab_destroy(b);
  w = (seen){0, 0};
  st_slab_foreach(count_caches, &w);
  CHECK_EQ(w.widget, 0);
  CHECK_EQ(w.other, 0); /* destroyed caches are not visited */
  st_slab_destroy(a);
  st_slab_foreach(NULL, NULL);
}

static void slab_invalid(void) {
  errno = 0;
  CHECK(st_slab_create("x", 0, 0, NULL, NULL) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_slab_create("x", 8, 12, NULL, NULL) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_slab_create("x", SIZE_MAX, 0, NULL, NULL) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_slab_alloc(NULL) == NULL && errno == EINVAL);
  st_slab_cache_t *c = st_slab_create(NULL, 1, 4096, NULL, NULL); /* no name, page aligned */
  REQUIRE(c != NULL);
  void *p = st_slab_alloc(c);
  CHECK_ALIGNED(p, 4096);
  st_slab_free(c, p);
  st_slab_free(c, NULL);
  CHECK_EQ(st_slab_shrink(NULL), 0);
  st_slab_destroy(c);
  st_slab_destroy(NULL);
}

static void *slab_alloc_cb(void *cache) { return st_slab_alloc(cache); }
static void slab_free_cb(void *cache, void *obj) { st_slab_free(cache, obj); }
static int widget_ready(const void *obj) { return ((const widget *)obj)->state == WIDGET_READY; }

/* Threads share a cache while st_slab_shrink runs destructors beside them and the
 * statistics read the front its owner is using. */
static void *shrinker(void *cache) {
  for (int i = 0; i < 20; i++) {
    st_slab_stats s;
    (void)st_slab_shrink(cache);
    st_slab_stats_get(cache, &s);
    CHECK(s.magazine_objects <= s.cached_objects + s.live_objects);
    sched_yield();
  }
  return NULL;
}

static void slab_threads(void) {
  reset_calls();
  st_slab_cache_t *c = st_slab_create("threads", sizeof(widget), 0, widget_ctor, widget_dtor);
  REQUIRE(c != NULL);
  pthread_t shrink;
  REQUIRE(pthread_create(&shrink, NULL, shrinker, c) == 0);
  shared_test t = {slab_alloc_cb, slab_free_cb, widget_ready, c, offsetof(widget, payload), 16,
                   100000};
  CHECK_EQ(shared_run(&t), 0);
  pthread_join(shrink, NULL);
  st_slab_stats s;
  st_slab_stats_get(c, &s);
  CHECK_EQ(s.live_objects, 0);
  CHECK_EQ(s.allocs, s.frees);
  st_slab_destroy(c);
  CHECK_EQ(atomic_load(&ctor_calls), atomic_load(&dtor_calls)); /* all built, all destroyed */
}

static void double_free(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("df", 40, 0, NULL, NULL);
  void *a = st_slab_alloc(c), *b = st_slab_alloc(c);
  st_slab_free(c, a);
  st_slab_free(c, b);
  st_slab_free(c, a);
}

static void overrun(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("overrun", 40, 0, NULL, NULL);
  char *a = st_slab_alloc(c);
  memset(a, 'x', 48); /* 8 bytes too many */
  st_slab_free(c, a);
}

static void wrong_cache(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("one", 40, 0, NULL, NULL);
  st_slab_cache_t *d = st_slab_create("two", 40, 0, NULL, NULL);
  st_slab_free(d, st_slab_alloc(c));
}

static void stack_pointer(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("stack", 40, 0, NULL, NULL);
  char on_stack[40];
  st_slab_free(c, on_stack);
}

static void malloc_pointer(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("heap", 40, 0, NULL, NULL);
  CHECK(st_slab_alloc(c) != NULL);
  st_slab_free(c, malloc(40));
}

static void interior_pointer(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("interior", 40, 0, NULL, NULL);
  char *a = st_slab_alloc(c);
  st_slab_free(c, a + 8);
}

static void pool_object_to_cache(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("pooled", 40, 0, NULL, NULL);
  st_pool_t *p = st_pool_create(40, 0, 0);
  st_slab_free(c, st_pool_alloc(p));
}

static void free_to_null_cache(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("null", 32, 0, NULL, NULL);
  st_slab_free(NULL, NULL); /* a no-op, like free(NULL) */
  st_slab_free(NULL, st_slab_alloc(c));
}

static void use_after_destroy(void *arg) {
  (void)arg;
  st_slab_cache_t *c = st_slab_create("gone", 40, 0, NULL, NULL);
  st_slab_destroy(c);
  (void)st_slab_alloc(c);
}

static void slab_misuse(void) {
  static const death_case cases[] = {
      DEATH_CASE(double_free, "st_slab_free(): double free of 0x"),
      DEATH_CASE(overrun, "st_slab_free(): the word after object 0x"),
      DEATH_CASE(wrong_cache, "allocated by another allocator than slab cache \"two\""),
      DEATH_CASE(stack_pointer, "strata: st_slab_free(): 0x"),
      DEATH_CASE(stack_pointer, "is not allocated by slab cache \"stack\" 0x"),
      DEATH_CASE(malloc_pointer, "is not allocated by slab cache \"heap\""),
      DEATH_CASE(interior_pointer, "is not the start of an object of slab cache \"interior\""),
      DEATH_CASE(pool_object_to_cache, "allocated by another allocator than slab cache"),
      DEATH_CASE(free_to_null_cache, "st_slab_free(): 0x"),
      DEATH_CASE(free_to_null_cache, "freed to a NULL slab cache"),
      DEATH_CASE(use_after_destroy, "st_slab_alloc(): 0x"),
      DEATH_CASE(use_after_destroy, "is not a live slab cache"),
  };
  expect_deaths(cases, sizeof cases / sizeof cases[0]);
}

int main(int argc, char **argv) {
  if (!threads_only(argc, argv)) {
    RUN_CASE(slab_ctor_once_per_object);
    RUN_CASE(slab_lists);
    RUN_CASE(slab_exited_thread_magazines);
    RUN_CASE(slab_live_thread_magazines);
    RUN_CASE(slab_front_handover);
    RUN_CASE(slab_reentrant_ctor);
    RUN_CASE(slab_foreach);
    RUN_CASE(slab_invalid);
    RUN_CASE(slab_misuse);
  }
  RUN_CASE(slab_threads);
  return check_summary();
}
