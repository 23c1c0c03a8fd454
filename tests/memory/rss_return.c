/*
 * rss_return.c — resident memory follows live memory (not timed: bounded waits).
 *   rss_return small   20 million small blocks allocated then freed: RSS back within 10 MiB
 *                      of the start within 1 s, with default options
 *   rss_return huge    a freed 256 MiB block leaves RSS at once
 *   rss_return exited  blocks of a thread that exited, freed by another thread, do not stay
 *                      resident once that thread allocates again
 *   rss_return worker  a thread allocates 128 MiB of small and 16 KiB blocks, frees them and
 *                      exits: RSS is back within 10 MiB of the start when it has been joined,
 *                      with no later allocation (also run hardened: its quarantine drains
 *                      while the thread's cache still serves it)
 *   rss_return trim    with purging held back (STRATA_PURGE_DELAY_MS=-1 and a huge
 *                      STRATA_PURGE_RETAIN_KB), trim gives the memory back at once and
 *                      returns 1
 *   rss_return stats   (st_* build only) statistics read the page map without making it
 *                      resident (reading a 2 MiB leaf and the 1 MiB root once cost 3 MiB)
 * Built twice: against st_* (API_STRATA) and with the libc names under LD_PRELOAD.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "strata.h"

#ifdef API_STRATA
#define MALLOC st_malloc
#define FREE st_free
#define TRIM st_trim
#else
#define MALLOC malloc
#define FREE free
#define TRIM malloc_trim
#endif

#define MiB ((size_t)1 << 20)

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, resident = 0;
  if (f != NULL) {
    if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* The compiler knows malloc, memset and free and may drop the whole sequence. */
static void escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits up to `ms` for RSS to come within `slack` of `target`; returns the last reading. */
static size_t wait_for_rss(size_t target, size_t slack, long ms) {
  size_t rss = rss_bytes();
  for (long waited = 0; rss > target + slack && waited < ms; waited += 20) {
    sleep_ms(20);
    rss = rss_bytes();
  }
  return rss;
}

static void small_blocks_come_back(void) {
  enum { BLOCKS = 20 * 1000 * 1000 };
  void *warm = MALLOC(64);
  FREE(warm);
  size_t base = rss_bytes();
  void **blocks = MALLOC(BLOCKS * sizeof *blocks);
  REQUIRE(blocks != NULL);
  uint64_t x = 88172645463325252ull;
  for (long i = 0; i < BLOCKS; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t size = 16 + x % 49;
    blocks[i] = MALLOC(size);
    REQUIRE(blocks[i] != NULL);
    memset(blocks[i], (int)i, size);
    escape(blocks[i]);
  }
  size_t peak = rss_bytes();
  for (long i = 0; i < BLOCKS; i++) FREE(blocks[i]);
  FREE(blocks);
  size_t rss = wait_for_rss(base, 10 * MiB, 1000);
  fprintf(stderr, "small: base %zu MiB, peak %zu MiB, after free %zu MiB\n", base / MiB,
          peak / MiB, rss / MiB);
  CHECK(peak > base + 500 * MiB);
  CHECK_LE(rss, base + 10 * MiB);
}

static void a_huge_block_leaves_at_once(void) {
  size_t base = rss_bytes();
  char *p = MALLOC(256 * MiB);
  REQUIRE(p != NULL);
  memset(p, 1, 256 * MiB);
  escape(p);
  CHECK_GE(rss_bytes(), base + 250 * MiB);
  FREE(p);
  size_t rss = rss_bytes(); /* no waiting */
  fprintf(stderr, "huge: base %zu MiB, after free %zu MiB\n", base / MiB, rss / MiB);
  CHECK_LE(rss, base + 2 * MiB);
}

enum { EXITED_BLOCKS = 2 * 1000 * 1000 };
static void *exited_blocks[EXITED_BLOCKS];

static void *allocate_and_exit(void *arg) {
  (void)arg;
  for (long i = 0; i < EXITED_BLOCKS; i++) {
    exited_blocks[i] = MALLOC(64);
    if (exited_blocks[i] != NULL) memset(exited_blocks[i], 3, 64);
  }
  return NULL;
}

static void blocks_of_exited_threads_come_back(void) {
  void *warm = MALLOC(64);
  FREE(warm);
  memset(exited_blocks, 0, sizeof exited_blocks); /* the test's own 16 MB are in the base */
  escape(exited_blocks);
  size_t base = rss_bytes();
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, allocate_and_exit, NULL) == 0);
  pthread_join(t, NULL);
  size_t peak = rss_bytes();
  for (long i = 0; i < EXITED_BLOCKS; i++) FREE(exited_blocks[i]); /* remote frees */
  void *other = MALLOC(3000); /* a new span: the heap looks at abandoned spans */
  escape(other);
  size_t rss = wait_for_rss(base, 10 * MiB, 1000);
  FREE(other);
  fprintf(stderr, "exited: base %zu MiB, peak %zu MiB, after free %zu MiB\n", base / MiB,
          peak / MiB, rss / MiB);
  CHECK(peak > base + 100 * MiB);
  CHECK_LE(rss, base + 10 * MiB);
}

enum { WORKER_BLOCKS = 8192 }; /* of each size */
static void *worker_blocks[2 * WORKER_BLOCKS];

/* 8,192 blocks of 64 B and 8,192 of 16 KiB (128 MiB), all written, then all freed by the
 * thread itself, which then exits. */
static void *allocate_free_and_exit(void *arg) {
  (void)arg;
  for (long i = 0; i < 2 * WORKER_BLOCKS; i++) {
    size_t size = i % 2 == 0 ? 64 : 16 << 10;
    worker_blocks[i] = MALLOC(size);
    if (worker_blocks[i] != NULL) memset(worker_blocks[i], 5, size);
  }
  for (long i = 0; i < 2 * WORKER_BLOCKS; i++) FREE(worker_blocks[i]);
  return NULL;
}

static void a_finished_workers_memory_leaves_with_it(void) {
  void *warm = MALLOC(64);
  FREE(warm);
  escape(worker_blocks);
  size_t base = rss_bytes();
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, allocate_free_and_exit, NULL) == 0);
  pthread_join(t, NULL); /* after the thread's key destructors, where strata lets go of it */
  size_t rss = rss_bytes();
  fprintf(stderr, "worker: base %zu MiB, after the worker exited %zu MiB\n", base / MiB, rss / MiB);
  CHECK_LE(rss, base + 10 * MiB);
}

static void trim_gives_back_at_once(void) {
  enum { BLOCKS = 2000 };
  size_t base = rss_bytes();
  static void *blocks[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) { /* 100 KiB each: LARGE spans of the page heap */
    blocks[i] = MALLOC(100 * 1024);
    REQUIRE(blocks[i] != NULL);
    memset(blocks[i], 7, 100 * 1024);
    escape(blocks[i]);
  }
  for (int i = 0; i < BLOCKS; i++) FREE(blocks[i]);
  size_t held = rss_bytes();
  CHECK_GE(held, base + 150 * MiB); /* the options hold purging back */
  CHECK_EQ(TRIM(0), 1);
  size_t rss = rss_bytes();
  fprintf(stderr, "trim: base %zu MiB, held %zu MiB, after trim %zu MiB\n", base / MiB,
          held / MiB, rss / MiB);
  CHECK_LE(rss, base + 10 * MiB);
}

#ifdef API_STRATA
static void statistics_leave_the_pagemap_untouched(void) {
  enum { BLOCKS = 64 };
  static void *blocks[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) { /* a few spans in one region: one leaf, a few entries */
    blocks[i] = MALLOC(i % 2 ? 100 * 1024 : 48);
    REQUIRE(blocks[i] != NULL);
    escape(blocks[i]);
  }
  static st_stats stats;
  memset(&stats, 0, sizeof stats);
  size_t before = rss_bytes();
  REQUIRE(st_stats_get(&stats, sizeof stats) == 0);
  REQUIRE(st_heap_validate() == 0);
  size_t after = rss_bytes();
  fprintf(stderr, "stats: %zu KiB before, %zu KiB after two walks over every span\n",
          before >> 10, after >> 10);
  CHECK(stats.spans_large >= BLOCKS / 2);
  CHECK_LE(after, before + MiB); /* the walks' own code and stack; a leaf alone is 2 MiB */
  for (int i = 0; i < BLOCKS; i++) FREE(blocks[i]);
}
#endif

int main(int argc, char **argv) {
  const char *which = argc > 1 ? argv[1] : "";
  if (strcmp(which, "small") == 0) RUN_CASE(small_blocks_come_back);
  else if (strcmp(which, "huge") == 0) RUN_CASE(a_huge_block_leaves_at_once);
  else if (strcmp(which, "trim") == 0) RUN_CASE(trim_gives_back_at_once);
  else if (strcmp(which, "exited") == 0) RUN_CASE(blocks_of_exited_threads_come_back);
  else if (strcmp(which, "worker") == 0) RUN_CASE(a_finished_workers_memory_leaves_with_it);
#ifdef API_STRATA
  else if (strcmp(which, "stats") == 0) RUN_CASE(statistics_leave_the_pagemap_untouched);
#endif
  else return 64;
  return check_summary();
}
