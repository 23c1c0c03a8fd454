/*
 * test_fork.c — fork() and the special allocators: a child of a threaded process can use
 * the shared pools, slab caches and arenas it inherits, and loses nothing that the threads
 * that did not survive the fork held.
 *
 * fork_while_hammering: threads hammer one ST_POOL_THREAD_SAFE pool and one slab cache
 * (batches that trade with the pool and the depot under their locks, statistics, shrink
 * and trim, which take the locks too, and a pool and an arena of their own created and
 * destroyed, which take the registry's lock) while the main thread forks again and again.
 * Each child allocates, frees and destroys on the inherited allocators and on new ones,
 * in threads of its own too. A child that deadlocks is ended by alarm(), a failed check by
 * its exit status: the parent requires each child to exit 0.
 *
 * fork_with_parked_threads: threads leave objects in their caches, magazines and the slab
 * cache's front, then wait while the main thread forks. In the child those threads do not
 * exist: their objects must be back in the allocators (no live object, no magazine left
 * after a shrink), and the child's own threads use the allocators as usual.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "special_test.h"
#include "strata.h"

enum { OBJECT = 48, HAMMERS = 3, BATCH = 80, FORKS = 16, PARKED = 2, PARKED_OBJECTS = 100 };
enum { CHILD_ALARM_S = 20 };

static st_pool_t *shared_pool;
static st_slab_cache_t *cache;
static atomic_bool stop;
/* The constructed state; churn checks nothing of it, but the cache runs both hooks. */
static void widget_ctor(void *obj) { memset(obj, 0x5a, OBJECT); }
static void widget_dtor(void *obj) { memset(obj, 0xdd, OBJECT); }

/* Allocates n objects of each allocator into pool_objs and slab_objs, fills, checks and
 * frees them; returns the failed checks. */
static long churn(uint64_t *seed, int n) {
  void *pool_objs[BATCH], *slab_objs[BATCH];
  long bad = 0;
  for (int i = 0; i < n; i++) {
    pool_objs[i] = st_pool_alloc(shared_pool);
    slab_objs[i] = st_slab_alloc(cache);
    if (pool_objs[i] == NULL || slab_objs[i] == NULL) return bad + 1;
    pattern_fill(pool_objs[i], OBJECT, (uintptr_t)pool_objs[i]);
    pattern_fill(slab_objs[i], OBJECT, (uintptr_t)slab_objs[i]);
  }
  for (int i = 0; i < n; i++) {
    int k = (int)(xorshift64(seed) % (uint64_t)(n - i)) + i; /* random order */
    void *p = pool_objs[k], *s = slab_objs[k];
    pool_objs[k] = pool_objs[i], slab_objs[k] = slab_objs[i];
    bad += !pattern_ok(p, OBJECT, (uintptr_t)p) + !pattern_ok(s, OBJECT, (uintptr_t)s);
    memset(s, 0x5a, OBJECT); /* handed back constructed */
    st_pool_free(shared_pool, p);
    st_slab_free(cache, s);
  }
  return bad;
}

static void *hammer(void *arg) {
  uint64_t seed = (uintptr_t)arg * 7919 + 1;
  long bad = 0;
  for (unsigned iter = 0; !atomic_load(&stop); iter++) {
    bad += churn(&seed, 1 + (int)(xorshift64(&seed) % BATCH));
    if (iter % 8 == 0) {
      st_pool_stats ps;
      st_slab_stats ss;
      st_pool_stats_get(shared_pool, &ps);
      st_slab_stats_get(cache, &ss);
      st_slab_shrink(cache);
      st_pool_trim(shared_pool);
    }
    if (iter % 16 == 0) { /* the registry's lock, and a pool's, on create and destroy */
      st_pool_t *own = st_pool_create(24, 0, 0);
      st_arena_t *a = st_arena_create(NULL);
      bad += own == NULL || a == NULL || st_pool_alloc(own) == NULL || st_arena_alloc(a, 40) == NULL;
      st_pool_destroy(own);
      st_arena_destroy(a);
    }
    if (iter % 4 == 0) usleep(50); /* leave the two cores to the children too */
  }
  return (void *)bad;
}

/* ---- in a child ------------------------------------------------------------------------ */

static void *child_thread(void *arg) {
  uint64_t seed = (uintptr_t)arg | 1;
  long bad = 0;
  for (int i = 0; i < 40; i++) bad += churn(&seed, BATCH);
  return (void *)bad;
}

/* Uses the inherited allocators from this thread and two new ones, then destroys them and
 * makes new ones; returns the failed checks. */
static long child_work(void) {
  uint64_t seed = 12345;
  long bad = 0;
  for (int i = 0; i < 20; i++) bad += churn(&seed, BATCH);
  pthread_t t[2];
  int started = 0;
  for (; started < 2; started++)
    if (pthread_create(&t[started], NULL, child_thread, (void *)(uintptr_t)(started + 1)) != 0) break;
  bad += started != 2;
  for (int i = 0; i < started; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad += (long)r;
  }
  st_slab_destroy(cache);
  st_pool_destroy(shared_pool);
  st_pool_t *p = st_pool_create(OBJECT, 0, ST_POOL_THREAD_SAFE);
  st_slab_cache_t *c = st_slab_create("after-fork", OBJECT, 0, NULL, NULL);
  st_arena_t *a = st_arena_create(NULL);
  void *po = p != NULL ? st_pool_alloc(p) : NULL, *so = c != NULL ? st_slab_alloc(c) : NULL;
  bad += po == NULL || so == NULL || a == NULL || st_arena_alloc(a, 100) == NULL;
  st_pool_free(p, po);
  st_slab_free(c, so);
  st_pool_destroy(p);
  st_slab_destroy(c);
  st_arena_destroy(a);
  return bad;
}

/* Forks; the child runs body under an alarm and exits with its verdict. Returns whether
 * the child exited 0. */
static int fork_and_check(long (*body)(void)) {
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    alarm(CHILD_ALARM_S); /* a deadlock ends the child with SIGALRM: a failure, not a hang */
    _exit(body() == 0 ? 0 : 1);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) return 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "fork child: %s %d\n", WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return 0;
  }
  return 1;
}

static void make_allocators(void) {
  shared_pool = st_pool_create(OBJECT, 0, ST_POOL_THREAD_SAFE);
  cache = st_slab_create("forked", OBJECT, 0, widget_ctor, widget_dtor);
  REQUIRE(shared_pool != NULL && cache != NULL);
}

static void fork_while_hammering(void) {
  make_allocators();
  atomic_store(&stop, false);
  pthread_t t[HAMMERS];
  for (int i = 0; i < HAMMERS; i++)
    REQUIRE(pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)(i + 1)) == 0);
  int ok = 0;
  for (int i = 0; i < FORKS; i++) {
    usleep(2000);
    ok += fork_and_check(child_work);
  }
  atomic_store(&stop, true);
  long bad = 0;
  for (int i = 0; i < HAMMERS; i++) {
    void *r;
    pthread_join(t[i], &r);
    bad += (long)r;
  }
  CHECK_EQ(ok, FORKS);
  CHECK_EQ(bad, 0);
  st_slab_destroy(cache);
  st_pool_destroy(shared_pool);
}

/* ---- threads that do not survive the fork ------------------------------------------------ */

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static int parked;
static bool released;

/* Allocates and frees objects so that they sit in this thread's pool cache and slab
 * magazines (and in the front, for the first thread to use the cache), then waits. */
static void *park(void *arg) {
  (void)arg;
  void *p[PARKED_OBJECTS], *s[PARKED_OBJECTS];
  for (int i = 0; i < PARKED_OBJECTS; i++) {
    p[i] = st_pool_alloc(shared_pool);
    s[i] = st_slab_alloc(cache);
  }
  for (int i = 0; i < PARKED_OBJECTS; i++) {
    st_pool_free(shared_pool, p[i]);
    st_slab_free(cache, s[i]);
  }
  pthread_mutex_lock(&park_lock);
  parked++;
  pthread_cond_broadcast(&park_cond);
  while (!released) pthread_cond_wait(&park_cond, &park_lock);
  pthread_mutex_unlock(&park_lock);
  return NULL;
}

/* In the child: nothing is live, and once the child's own magazines and the depot are
 * flushed (shrink), nothing is cached but in the slabs: the parked threads' caches,
 * magazines and front came back. */
static long child_after_park(void) {
  long bad = 0;
  st_pool_stats ps;
  st_pool_stats_get(shared_pool, &ps);
  bad += !CHECK_EQ(ps.live_objects, 0);
  st_slab_shrink(cache);
  st_slab_stats ss;
  st_slab_stats_get(cache, &ss);
  bad += !CHECK_EQ(ss.live_objects, 0);
  bad += !CHECK_EQ(ss.magazine_objects, 0);
  bad += !CHECK_EQ(ss.slabs_full + ss.slabs_partial + ss.slabs_empty, 0);
  bad += !CHECK_EQ(ss.constructed, ss.destructed);
  return bad + child_work();
}

static void fork_with_parked_threads(void) {
  make_allocators();
  parked = 0;
  released = false;
  pthread_t t[PARKED];
  for (int i = 0; i < PARKED; i++) {
    REQUIRE(pthread_create(&t[i], NULL, park, NULL) == 0);
    pthread_mutex_lock(&park_lock); /* one after the other: the first owns the front */
    while (parked <= i) pthread_cond_wait(&park_cond, &park_lock);
    pthread_mutex_unlock(&park_lock);
  }
  CHECK(fork_and_check(child_after_park));
  pthread_mutex_lock(&park_lock);
  released = true;
  pthread_cond_broadcast(&park_cond);
  pthread_mutex_unlock(&park_lock);
  for (int i = 0; i < PARKED; i++) pthread_join(t[i], NULL);
  /* In the parent nothing changed: the threads gave their objects back at their exit. */
  st_slab_shrink(cache);
  st_slab_stats ss;
  st_slab_stats_get(cache, &ss);
  CHECK_EQ(ss.live_objects, 0);
  CHECK_EQ(ss.magazine_objects, 0);
  st_slab_destroy(cache);
  st_pool_destroy(shared_pool);
}

int main(void) {
  RUN_CASE(fork_with_parked_threads);
  RUN_CASE(fork_while_hammering);
  return check_summary();
}
