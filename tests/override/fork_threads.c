/*
 * fork_threads.c — fork() while other threads allocate (DESIGN.md: "fork() from a threaded
 * process leaves a working allocator in the child").
 *
 * Four threads hammer malloc/free and keep publishing blocks in a shared "gift" table.
 * The main thread forks repeatedly. Each child frees every gift (blocks other parent threads
 * allocated before the fork, whose owner threads do not exist in the child), allocates and
 * frees small, medium and huge blocks, and every fourth child starts threads of its own
 * that free each other's blocks. A child that deadlocks is killed by alarm(); the parent
 * requires every child to exit 0.
 * The gift table's mutex is taken around fork() (pthread_atfork), as any program must do
 * for its own locks; the allocator's locks are strata's business.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "override_util.h"

enum { HAMMERS = 4, GIFTS = 64, FORKS = 24, CHILD_OPS = 4000, CHILD_THREADS = 4 };

typedef struct gift {
  void *p;
  size_t size;
  uint32_t seed;
} gift;

static pthread_mutex_t gift_lock = PTHREAD_MUTEX_INITIALIZER;
static gift gifts[GIFTS]; /* guarded by gift_lock */
static atomic_bool stop;

static void lock_gifts(void) { pthread_mutex_lock(&gift_lock); }
static void unlock_gifts(void) { pthread_mutex_unlock(&gift_lock); }

static uint32_t next_rand(uint32_t *s) { return *s = *s * 1103515245u + 12345u; }

static size_t random_size(uint32_t *s) {
  uint32_t r = next_rand(s) >> 8;
  if (r % 100 < 85) return 1 + r % 1024;
  if (r % 100 < 99) return 1024 + r % (256 * 1024);
  return (1 + r % 6) << 20;
}

static void *hammer(void *arg) {
  uint32_t seed = (uint32_t)(uintptr_t)arg * 7919u + 1;
  void *local[32] = {0};
  for (unsigned iter = 1; !atomic_load(&stop); iter++) {
    if (iter % 16 == 0) usleep(100); /* busy, but leave the two cores to the children */
    unsigned i = next_rand(&seed) >> 8 & 31;
    free(local[i]);
    local[i] = escape(malloc(random_size(&seed)));
    if (local[i] == NULL) abort();
    size_t n = 1 + (next_rand(&seed) >> 8) % 4000;
    gift g = {malloc(n), n, next_rand(&seed)};
    if (g.p == NULL) abort();
    pattern_fill(g.p, n, g.seed);
    lock_gifts();
    gift old = gifts[g.seed % GIFTS];
    gifts[g.seed % GIFTS] = g;
    unlock_gifts();
    if (old.p && !pattern_ok(old.p, old.size, old.seed)) abort();
    free(old.p);
  }
  for (unsigned i = 0; i < 32; i++) free(local[i]);
  return NULL;
}

/* ---- in the child ---------------------------------------------------------------------- */

static void *child_thread(void *arg) {
  void **pass = arg; /* each child thread frees the blocks of the previous one */
  uint32_t seed = (uint32_t)(uintptr_t)pass;
  for (int i = 0; i < 1000; i++) {
    size_t n = random_size(&seed);
    void *p = malloc(n);
    if (p == NULL) return (void *)1;
    pattern_fill(p, n, (uint32_t)n);
    if (!pattern_ok(p, n, (uint32_t)n)) return (void *)1;
    free(i % 2 ? p : __atomic_exchange_n(&pass[i % 16], p, __ATOMIC_ACQ_REL));
  }
  return NULL;
}

static int child_main(int round) {
  alarm(60); /* a deadlock after fork becomes SIGALRM instead of a hung test */
  int bad = 0;
  for (int i = 0; i < GIFTS; i++) { /* blocks from parent threads that no longer exist */
    if (gifts[i].p && !pattern_ok(gifts[i].p, gifts[i].size, gifts[i].seed)) bad++;
    free(gifts[i].p);
    gifts[i].p = NULL;
  }
  uint32_t seed = (uint32_t)round + 77;
  void *keep[64] = {0};
  for (int i = 0; i < CHILD_OPS; i++) {
    unsigned k = next_rand(&seed) >> 8 & 63;
    free(keep[k]);
    size_t n = random_size(&seed);
    keep[k] = i % 3 ? malloc(n) : calloc(1, n);
    if (keep[k] == NULL) return 2;
    pattern_fill(keep[k], n < 64 ? n : 64, (uint32_t)i);
    if (!pattern_ok(keep[k], n < 64 ? n : 64, (uint32_t)i)) bad++;
  }
  for (int i = 0; i < 64; i++) free(keep[i]);
  if (round % 4 == 0) {
    static void *pass[16];
    pthread_t t[CHILD_THREADS];
    for (int i = 0; i < CHILD_THREADS; i++)
      if (pthread_create(&t[i], NULL, child_thread, pass) != 0) return 3;
    for (int i = 0; i < CHILD_THREADS; i++) {
      void *ret;
      pthread_join(t[i], &ret);
      if (ret != NULL) bad++;
    }
    for (int i = 0; i < 16; i++) free(pass[i]);
  }
  if (strata_validate() != 0) return 4;
  return bad ? 1 : 0;
}

/* ---- in the parent --------------------------------------------------------------------- */

static void case_fork_while_threads_allocate(void) {
  pthread_atfork(lock_gifts, unlock_gifts, unlock_gifts);
  pthread_t t[HAMMERS];
  for (uintptr_t i = 0; i < HAMMERS; i++)
    REQUIRE(pthread_create(&t[i], NULL, hammer, (void *)i) == 0);
  usleep(20000);
  for (int round = 0; round < FORKS; round++) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) exit(child_main(round)); /* exit(), so strata's exit path runs too */
    REQUIRE(pid > 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child %d: status %#x (exit %d, signal %d)", round, (unsigned)status,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < HAMMERS; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < GIFTS; i++) {
    if (gifts[i].p) CHECK(pattern_ok(gifts[i].p, gifts[i].size, gifts[i].seed));
    free(gifts[i].p);
  }
  CHECK_EQ(strata_validate(), 0);
}

int main(void) {
  alarm(240); /* a hang in the parent (a lock left held by fork) fails with SIGALRM */
  RUN_CASE(case_fork_while_threads_allocate);
  return check_summary();
}
