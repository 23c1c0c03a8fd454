/*
 * fork_first_alloc.c — fork() from threads while the process's first allocations decide
 * which strategy serves it (api/dispatch.c), under whatever STRATA_STRATEGY names.
 *
 * The test's own process never calls strata (it links the prefixed library, so libc's
 * malloc is glibc's): each round forks a fresh "racer" whose strata state is untouched.
 * The racer starts THREADS threads that wait at a spin barrier, then all make their first
 * st_malloc at once while half of them fork as soon as they are released, so the forks
 * land while the decision (and the first heap's setup) may be under way in other threads.
 * Every forked child allocates, writes, frees and exits 0; a child that deadlocks on a lock
 * held by a thread that does not exist in it is ended by alarm() and fails the round.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "strata.h"

enum { ROUNDS = 40, THREADS = 4, CHILD_BLOCKS = 200, WATCHDOG_SECONDS = 30 };

static atomic_int waiting;

/* A child of a racer thread: the allocator must work even though the fork may have
 * happened in the middle of another thread's first allocation. */
static void child_uses_allocator(void) {
  alarm(WATCHDOG_SECONDS);
  void *blocks[CHILD_BLOCKS];
  for (int i = 0; i < CHILD_BLOCKS; i++) {
    size_t size = 16 + (size_t)i * 97 % 5000;
    blocks[i] = st_malloc(size);
    if (blocks[i] == NULL) _exit(2);
    memset(blocks[i], i, size);
  }
  for (int i = 0; i < CHILD_BLOCKS; i++) st_free(blocks[i]);
  _exit(st_heap_validate() == 0 ? 0 : 3);
}

static void *racer_thread(void *arg) {
  intptr_t index = (intptr_t)arg;
  atomic_fetch_sub(&waiting, 1);
  while (atomic_load(&waiting) > 0) sched_yield();
  pid_t child = -1;
  if (index % 2 == 0) child = fork();
  if (child == 0) child_uses_allocator();
  void *p = st_malloc(64 + (size_t)index * 1000);
  if (p == NULL) return (void *)1;
  st_free(p);
  int status = 0;
  if (child < 0 && index % 2 == 0) return (void *)1;
  if (child > 0 && (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
                    WEXITSTATUS(status) != 0)) {
    fprintf(stderr, "forked child of thread %d: %s %d\n", (int)index,
            WIFSIGNALED(status) ? "killed by signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return (void *)1;
  }
  return NULL;
}

/* One racer: exits 0 when every thread and every forked child succeeded. */
static void racer(void) {
  alarm(WATCHDOG_SECONDS);
  pthread_t threads[THREADS];
  atomic_store(&waiting, THREADS);
  for (intptr_t i = 0; i < THREADS; i++)
    if (pthread_create(&threads[i], NULL, racer_thread, (void *)i) != 0) _exit(4);
  int failed = 0;
  for (int i = 0; i < THREADS; i++) {
    void *result;
    pthread_join(threads[i], &result);
    failed |= result != NULL;
  }
  _exit(failed ? 1 : 0);
}

static void forks_during_first_allocations(void) {
  for (int round = 0; round < ROUNDS; round++) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) racer();
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (!CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                   "round %d: racer %s %d (a deadlocked process is ended by SIGALRM = %d)", round,
                   WIFSIGNALED(status) ? "killed by signal" : "exit status",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), SIGALRM))
      return;
  }
}

int main(void) {
  printf("strategy: %s\n", getenv("STRATA_STRATEGY") ? getenv("STRATA_STRATEGY") : "(unset)");
  RUN_CASE(forks_during_first_allocations);
  return check_summary();
}
