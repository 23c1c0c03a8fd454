/*
 * signal_storm.c — signals arriving while threads allocate (docs/testing.md, "Signals").
 *
 * Four threads run malloc/calloc/realloc/free with checked contents while the main thread
 * queues real-time signals to them as fast as it can, with SA_RESTART off so every blocking call
 * inside the allocator (lock waits included) can see EINTR. The handler does what the allocator
 * supports in a handler: it touches memory the thread already owns and calls nothing of the
 * malloc family (no malloc function is async-signal-safe, strata's included). Every block
 * must keep its contents, no call may fail, and the heap must validate at the end.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"
#include "override_util.h"

enum { WORKERS = 4, OPS = 60000, SLOTS = 64, SCRATCH = 256 };

static atomic_int workers_done;
static atomic_long signals_handled;
static _Thread_local unsigned char *scratch; /* a block this thread owns; the handler writes it */

static void on_signal(int sig) {
  (void)sig;
  if (scratch) scratch[atomic_load_explicit(&signals_handled, memory_order_relaxed) % SCRATCH]++;
  atomic_fetch_add_explicit(&signals_handled, 1, memory_order_relaxed);
}

static uint32_t next_rand(uint32_t *s) { return *s = *s * 1103515245u + 12345u; }

static void *worker(void *arg) {
  uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
  void *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  scratch = malloc(SCRATCH);
  if (scratch == NULL) return (void *)1;
  for (int i = 0; i < OPS; i++) {
    unsigned k = next_rand(&seed) >> 8 & (SLOTS - 1);
    if (slot[k] && !pattern_ok(slot[k], size[k], k + (uint32_t)size[k])) return (void *)2;
    size_t n = 1 + (next_rand(&seed) >> 8) % (i % 50 == 0 ? 300000 : 2000);
    void *p;
    switch (i % 3) {
    case 0:
      free(slot[k]);
      p = malloc(n);
      break;
    case 1:
      free(slot[k]);
      p = calloc(1, n);
      break;
    default:
      p = realloc(slot[k], n);
      break;
    }
    if (p == NULL) return (void *)3;
    pattern_fill(p, n, k + (uint32_t)n);
    slot[k] = p;
    size[k] = n;
  }
  for (int k = 0; k < SLOTS; k++) free(slot[k]);
  unsigned char *s = scratch;
  scratch = NULL;
  free(s);
  atomic_fetch_add(&workers_done, 1);
  return NULL;
}

static void case_signals_during_allocation(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_signal; /* no SA_RESTART: interrupted waits return EINTR */
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGRTMIN, &sa, NULL) == 0);
  pthread_t t[WORKERS];
  for (uintptr_t i = 0; i < WORKERS; i++)
    REQUIRE(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
  long sent = 0;
  for (unsigned i = 0; atomic_load(&workers_done) < WORKERS; i++) {
    /* a finished worker is not joined yet, so its id stays valid; the signal is lost.
     * Real-time signals queue instead of merging; EAGAIN means the queue is full. */
    if (pthread_sigqueue(t[i % WORKERS], SIGRTMIN, (union sigval){0}) == 0)
      sent++;
    else
      sched_yield();
  }
  for (int i = 0; i < WORKERS; i++) {
    void *ret;
    pthread_join(t[i], &ret);
    CHECK_MSG(ret == NULL, "worker %d failed at step %ld", i, (long)(intptr_t)ret);
  }
  CHECK_GT(atomic_load(&signals_handled), 0);
  CHECK_EQ(strata_validate(), 0);
  printf("signal_storm: %ld signals sent, %ld handled\n", sent, atomic_load(&signals_handled));
}

int main(void) {
  alarm(240); /* a deadlock in a handler-interrupted lock fails with SIGALRM, not a hang */
  RUN_CASE(case_signals_during_allocation);
  return check_summary();
}
