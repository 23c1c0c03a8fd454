/*
 * first_calls.c — many threads make the process's very first allocations at once.
 *
 * strata decides its backend and starts the core inside the first allocation; a thread
 * that sees the decision must also see what the core set while starting (the debug routes:
 * STRATA_HARDENED gives every block a canary and an encoded size word). Each round forks a
 * child whose strata has never run (this program allocates nothing through strata before
 * forking: st_* only), releases THREADS threads at once into st_malloc, then checks every
 * block with st_usable_size, which in hardened mode reads the size word. A block handed out
 * by the plain route while the core was still starting is reported as an overflow there.
 * The race needs the threads to collide in a window of microseconds, so the rounds repeat.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "strata.h"

#define THREADS 8
#define ROUNDS 40
#define BLOCKS 16

static pthread_barrier_t start_line;

static void *first_allocations(void *arg) {
  size_t base = (size_t)(uintptr_t)arg;
  void *blocks[BLOCKS];
  pthread_barrier_wait(&start_line);
  for (size_t i = 0; i < BLOCKS; i++) {
    size_t size = 8 + (base * 40 + i * 24) % 600;
    blocks[i] = st_malloc(size);
    if (blocks[i] == NULL || st_usable_size(blocks[i]) < size) _exit(3);
    memset(blocks[i], 0x5a, size);
  }
  for (size_t i = 0; i < BLOCKS; i++) st_free(blocks[i]);
  return NULL;
}

/* The child: THREADS threads at the start line, then the checks; exits 0 when all passed
 * (a failed check aborts with strata's diagnostic on stderr). */
static void child_round(void) {
  pthread_t threads[THREADS];
  pthread_barrier_init(&start_line, NULL, THREADS);
  for (size_t t = 0; t < THREADS; t++)
    if (pthread_create(&threads[t], NULL, first_allocations, (void *)(uintptr_t)t) != 0) _exit(4);
  for (size_t t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  _exit(0);
}

static void case_first_allocations_race(void) {
  for (int round = 0; round < ROUNDS; round++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child_round();
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fprintf(stderr, "round %d: child status %#x\n", round, status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
}

int main(void) {
  RUN_CASE(case_first_allocations_race);
  return check_summary();
}
