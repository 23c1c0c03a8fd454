/*
 * leaks_fork.c — fork while other threads allocate with STRATA_LEAKS=1 (CTest sets it).
 *
 * Every malloc and free then takes the block table's lock; a fork that let another thread
 * hold it would leave the child's first allocation waiting forever. The main thread forks
 * over and over; each child allocates, frees and exits. An alarm in the child turns a hang
 * into a death by SIGALRM, which the parent reports. Linked against libstrata.so, so the
 * plain malloc names are strata's.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define WORKERS 2
#define FORKS 60
#define CHILD_ALARM_SECONDS 30

static atomic_int stop;

static void *allocate_until_stopped(void *arg) {
  size_t n = (size_t)(uintptr_t)arg;
  void *keep[16] = {0};
  for (unsigned i = 0; !atomic_load(&stop); i++) {
    unsigned slot = i % 16;
    free(keep[slot]);
    keep[slot] = malloc(16 + (i * n) % 5000);
    if (keep[slot] != NULL) memset(keep[slot], 1, 16);
  }
  for (int i = 0; i < 16; i++) free(keep[i]);
  return NULL;
}

static void child_allocates_and_exits(void) {
  alarm(CHILD_ALARM_SECONDS);
  void *blocks[8];
  for (int i = 0; i < 8; i++) blocks[i] = malloc(100 + (size_t)i * 1000);
  for (int i = 0; i < 8; i++) free(blocks[i]);
  _exit(blocks[0] != NULL ? 0 : 3);
}

static void test_fork_while_threads_allocate(void) {
  REQUIRE(getenv("STRATA_LEAKS") != NULL);
  pthread_t threads[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    REQUIRE(pthread_create(&threads[i], NULL, allocate_until_stopped, (void *)(uintptr_t)(i + 7)) == 0);
  int hung = 0, failed = 0;
  for (int f = 0; f < FORKS; f++) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) child_allocates_and_exits();
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) hung++;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
  CHECK_EQ(hung, 0);
  CHECK_EQ(failed, 0);
}

int main(void) {
  RUN_CASE(test_fork_while_threads_allocate);
  return check_summary();
}
