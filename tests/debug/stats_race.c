/*
 * stats_race.c — statistics and the heap picture while other threads allocate (TSan).
 *
 * Worker threads allocate and free small, large and huge blocks, free some of each
 * other's (remote frees), and exit and start again (their spans are abandoned, then
 * adopted), while the main thread takes st_stats_get, st_stats_print and st_heap_dump over
 * and over. Built against the ThreadSanitizer variant of strata: any unsynchronised read
 * of another thread's span by the walks is reported as a data race and fails the test.
 * Without sanitizers it still checks that every call succeeds and the figures stay sane.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "strata.h"

#define WORKERS 3
#define GENERATIONS 3
#define OPS 4000
#define SLOTS 256
#define EXCHANGE 64

static _Atomic(void *) exchange[EXCHANGE]; /* blocks one thread leaves for another to free */
static atomic_int workers_running;

static size_t next_random(size_t *state) {
  *state = *state * 6364136223846793005u + 1442695040888963407u;
  return *state >> 33;
}

static size_t pick_size(size_t r) {
  if (r % 997 == 0) return (size_t)70 << 20; /* huge: mapped on its own */
  if (r % 61 == 0) return 40000 + r % 200000; /* large: whole pages */
  return 1 + r % 2048;
}

static void *worker(void *arg) {
  size_t state = (size_t)(uintptr_t)arg;
  void *slots[SLOTS] = {0};
  for (int op = 0; op < OPS; op++) {
    size_t r = next_random(&state), i = r % SLOTS;
    if (slots[i] != NULL && r % 5 == 0) { /* grow or shrink in place or by moving */
      void *q = st_realloc(slots[i], pick_size(next_random(&state)));
      if (q != NULL) slots[i] = q;
      continue;
    }
    if (slots[i] != NULL) {
      /* Every third block goes to another thread, which frees it remotely. */
      void *old = r % 3 == 0 ? atomic_exchange(&exchange[r % EXCHANGE], slots[i]) : slots[i];
      st_free(old);
    }
    slots[i] = st_malloc(pick_size(next_random(&state)));
    CHECK(slots[i] != NULL);
    if (slots[i] != NULL) *(volatile char *)slots[i] = 1;
  }
  for (int i = 0; i < SLOTS; i++) st_free(slots[i]);
  return NULL;
}

static void *generations(void *arg) {
  size_t seed = (size_t)(uintptr_t)arg;
  for (int g = 0; g < GENERATIONS; g++) {
    pthread_t t;
    int created = pthread_create(&t, NULL, worker, (void *)(uintptr_t)(seed * 100 + (size_t)g + 1));
    CHECK_EQ(created, 0);
    if (created == 0) pthread_join(t, NULL);
  }
  atomic_fetch_sub(&workers_running, 1);
  return NULL;
}

static void observe_once(FILE *sink, unsigned round) {
  st_stats s;
  CHECK_EQ(st_stats_get(&s, sizeof s), 0);
  CHECK(s.live_bytes == s.small_live_bytes + s.large_live_bytes + s.huge_live_bytes);
  CHECK(s.committed_bytes <= s.mapped_bytes);
  CHECK(s.fragmentation >= 0.0 && s.fragmentation <= 1.0);
  for (unsigned c = 0; c < s.class_count; c++) CHECK(s.classes[c].blocks_live <= s.classes[c].blocks_capacity);
  CHECK_EQ(st_stats_print(sink, round % 2 ? ST_STATS_JSON : ST_STATS_TEXT), 0);
  CHECK_EQ(st_heap_dump(sink, round % 2 ? ST_DUMP_TEXT : ST_DUMP_JSON), 0);
}

static void test_observe_while_threads_allocate(void) {
  FILE *sink = fopen("/dev/null", "w");
  REQUIRE(sink != NULL);
  void *own = st_malloc(100); /* the observer's own spans are drawn exactly */
  pthread_t threads[WORKERS];
  atomic_store(&workers_running, WORKERS);
  for (int i = 0; i < WORKERS; i++)
    REQUIRE(pthread_create(&threads[i], NULL, generations, (void *)(uintptr_t)(i + 1)) == 0);
  unsigned rounds = 0;
  while (atomic_load(&workers_running) > 0 || rounds < 4) observe_once(sink, rounds++);
  for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < EXCHANGE; i++) st_free(atomic_exchange(&exchange[i], NULL));
  st_free(own);
  st_stats s;
  REQUIRE(st_stats_get(&s, sizeof s) == 0);
  CHECK_EQ(s.large_live_bytes, 0);
  CHECK_EQ(s.huge_live_bytes, 0);
  CHECK(rounds >= 4);
  fclose(sink);
}

int main(void) {
  RUN_CASE(test_observe_while_threads_allocate);
  return check_summary();
}
