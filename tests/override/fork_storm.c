/*
 * fork_storm.c — several threads fork at once while others allocate, and children fork
 * again (docs/testing.md, "Faults"). fork_threads.c forks from one thread; here the forks
 * race each other and the allocating threads, so the allocator's fork handlers run
 * concurrently with its own locks held by every kind of thread.
 *
 * Each child checks the parent's blocks it inherited, allocates and frees a mix of sizes,
 * forks a grandchild that does the same, validates the heap and exits; a deadlock ends in
 * SIGALRM. The parent requires every child to exit 0.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "override_util.h"

enum { ALLOCATORS = 3, FORKERS = 3, FORKS_EACH = 12, CHILD_OPS = 2000, KEPT = 32 };

static atomic_bool stop;
static atomic_int failures;

static uint32_t next_rand(uint32_t *s) { return *s = *s * 1103515245u + 12345u; }

static size_t random_size(uint32_t *s) {
  uint32_t r = next_rand(s) >> 8;
  return r % 10 ? 1 + r % 2048 : 2048 + r % (512 * 1024);
}

/* Allocates and frees CHILD_OPS blocks with checked contents; 0 when all went well. */
static int churn(uint32_t seed) {
  void *kept[KEPT] = {0};
  size_t sizes[KEPT] = {0};
  int bad = 0;
  for (int i = 0; i < CHILD_OPS; i++) {
    unsigned k = next_rand(&seed) >> 8 & (KEPT - 1);
    if (kept[k] && !pattern_ok(kept[k], sizes[k], k)) bad++;
    free(kept[k]);
    sizes[k] = random_size(&seed);
    kept[k] = malloc(sizes[k]);
    if (kept[k] == NULL) return 1;
    pattern_fill(kept[k], sizes[k], k);
  }
  for (int k = 0; k < KEPT; k++) free(kept[k]);
  return bad;
}

static void *allocator(void *arg) {
  uint32_t seed = (uint32_t)(uintptr_t)arg + 11;
  while (!atomic_load(&stop))
    if (churn(next_rand(&seed)) != 0) atomic_fetch_add(&failures, 1);
  return NULL;
}

static int wait_ok(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int child_main(uint32_t seed) {
  alarm(60);
  if (churn(seed) != 0) return 1;
  pid_t grandchild = fork();
  if (grandchild == 0) exit(churn(seed + 1) == 0 && strata_validate() == 0 ? 0 : 2);
  if (grandchild < 0 || !wait_ok(grandchild)) return 3;
  return strata_validate() == 0 ? 0 : 4;
}

static void *forker(void *arg) {
  uint32_t seed = (uint32_t)(uintptr_t)arg * 977u;
  for (int i = 0; i < FORKS_EACH; i++) {
    void *mine = malloc(100 + (size_t)i); /* live across fork: the child frees its copy */
    pid_t pid = fork();
    if (pid == 0) {
      free(mine);
      exit(child_main(next_rand(&seed)));
    }
    free(mine);
    if (pid < 0 || !wait_ok(pid)) atomic_fetch_add(&failures, 1);
  }
  return NULL;
}

static void case_concurrent_forks_while_threads_allocate(void) {
  pthread_t a[ALLOCATORS], f[FORKERS];
  for (uintptr_t i = 0; i < ALLOCATORS; i++)
    REQUIRE(pthread_create(&a[i], NULL, allocator, (void *)i) == 0);
  fflush(NULL);
  for (uintptr_t i = 0; i < FORKERS; i++)
    REQUIRE(pthread_create(&f[i], NULL, forker, (void *)i) == 0);
  for (int i = 0; i < FORKERS; i++) pthread_join(f[i], NULL);
  atomic_store(&stop, true);
  for (int i = 0; i < ALLOCATORS; i++) pthread_join(a[i], NULL);
  CHECK_EQ(atomic_load(&failures), 0);
  CHECK_EQ(strata_validate(), 0);
}

int main(void) {
  alarm(240);
  RUN_CASE(case_concurrent_forks_while_threads_allocate);
  return check_summary();
}
