/*
 * thread_churn.c — thousands of short-lived threads (DESIGN.md: "A thread's exit leaks
 * nothing: its pages are handed to others").
 *
 * Threads run in waves of WAVE at a time. Each allocates a mix of small and medium blocks,
 * frees most of them itself and leaves LEFT blocks for the main thread, which frees them
 * one wave later (after the owner has exited). Memory must stay bounded: once warmed up,
 * resident and virtual size may not grow by more than a few MiB per thousand threads, and
 * when strata is present its own counters must show no cached thread state or mapped
 * memory piling up.
 */
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "override_util.h"

enum { THREADS = 4000, WAVE = 8, ALLOCS = 64, LEFT = 8, WARMUP_WAVES = 50 };

typedef struct work {
  unsigned id;
  void *left[LEFT];
  size_t left_size[LEFT];
} work;

static work works[2][WAVE]; /* the current wave and the one before */

static void *short_life(void *arg) {
  work *w = arg;
  uint32_t s = w->id * 2654435761u + 1;
  void *blocks[ALLOCS];
  size_t sizes[ALLOCS];
  for (int i = 0; i < ALLOCS; i++) {
    s = s * 1103515245u + 12345u;
    sizes[i] = i % 8 == 7 ? 8192 + (s >> 8) % (128 * 1024) : 1 + (s >> 8) % 2048;
    blocks[i] = malloc(sizes[i]);
    if (blocks[i] == NULL) return (void *)1;
    pattern_fill(blocks[i], sizes[i], w->id + (uint32_t)i);
  }
  for (int i = 0; i < ALLOCS; i++) {
    if (!pattern_ok(blocks[i], sizes[i], w->id + (uint32_t)i)) return (void *)1;
    if (i < LEFT) { /* outlives this thread */
      w->left[i] = blocks[i];
      w->left_size[i] = sizes[i];
    } else {
      free(blocks[i]);
    }
  }
  return NULL;
}

static void free_leftovers(work *wave) {
  for (int t = 0; t < WAVE; t++)
    for (int i = 0; i < LEFT; i++) {
      if (!wave[t].left[i]) continue;
      CHECK(pattern_ok(wave[t].left[i], wave[t].left_size[i], wave[t].id + (uint32_t)i));
      free(wave[t].left[i]);
      wave[t].left[i] = NULL;
    }
}

static void case_thread_churn_stays_bounded(void) {
  size_t v0 = 0, r0 = 0, v1, r1;
  st_core_counters c0, c1;
  for (unsigned wave = 0; wave < THREADS / WAVE; wave++) {
    work *cur = works[wave % 2];
    pthread_t t[WAVE];
    for (unsigned i = 0; i < WAVE; i++) {
      cur[i].id = wave * WAVE + i;
      REQUIRE(pthread_create(&t[i], NULL, short_life, &cur[i]) == 0);
    }
    for (unsigned i = 0; i < WAVE; i++) {
      void *ret = NULL;
      pthread_join(t[i], &ret);
      CHECK_MSG(ret == NULL, "thread %u saw a corrupted block", cur[i].id);
    }
    free_leftovers(works[(wave + 1) % 2]); /* the previous wave's, their owners are gone */
    if (wave == WARMUP_WAVES) {
      REQUIRE(proc_memory(&v0, &r0));
      strata_counters(&c0);
    }
  }
  free_leftovers(works[0]);
  free_leftovers(works[1]);
  REQUIRE(proc_memory(&v1, &r1));
  bool have = strata_counters(&c1);
  printf("after warm-up: rss %zu KiB -> %zu KiB, vsize %zu KiB -> %zu KiB\n", r0 >> 10, r1 >> 10,
         v0 >> 10, v1 >> 10);
  const size_t MiB = (size_t)1 << 20;
  CHECK_LE(r1, r0 + 32 * MiB);
  CHECK_LE(v1, v0 + 128 * MiB);
  if (have) {
    printf("strata: threads_live %zu -> %zu, mapped %zu KiB -> %zu KiB, metadata %zu KiB -> "
           "%zu KiB\n",
           c0.threads_live, c1.threads_live, c0.mapped_bytes >> 10, c1.mapped_bytes >> 10,
           c0.metadata_bytes >> 10, c1.metadata_bytes >> 10);
    CHECK_LE(c1.threads_live, 2); /* only the main thread is left */
    CHECK_LE(c1.mapped_bytes, c0.mapped_bytes + 64 * MiB);
    CHECK_LE(c1.metadata_bytes, c0.metadata_bytes + 4 * MiB);
    CHECK_EQ(strata_validate(), 0);
  }
}

int main(void) {
  RUN_CASE(case_thread_churn_stays_bounded);
  return check_summary();
}
