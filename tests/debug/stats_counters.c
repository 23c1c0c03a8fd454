/*
 * stats_counters.c — every statistic moves as docs/stats.md says (st_stats_get).
 *
 * Linked against the prefixed library: st_* allocations are strata's, glibc keeps malloc,
 * so the figures change only by what each case does. Deltas are exact on one thread
 * (no remote frees in flight); the threaded case checks the fold of an exited thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "strata.h"

static st_stats before, after;

static void snap(st_stats *s) { REQUIRE(st_stats_get(s, sizeof *s) == 0); }
#define DELTA(field) (after.field - before.field)

static unsigned class_of_size(const st_stats *s, size_t size) {
  for (unsigned c = 0; c < s->class_count; c++)
    if (s->classes[c].block_size >= size) return c;
  return 0;
}

static void test_versioned_struct(void) {
  st_stats s;
  CHECK_EQ(st_stats_get(&s, sizeof s), 0);
  CHECK_EQ(s.version, ST_STATS_VERSION);
  CHECK(s.class_count > 0 && s.class_count <= ST_STATS_MAX_CLASSES);
  CHECK_EQ(st_stats_get(&s, 2), -1);
  CHECK_EQ(st_stats_get(NULL, sizeof s), -1);
  /* an older, shorter struct gets its prefix only: the bytes past `size` stay untouched */
  static st_stats older;
  memset(&older, 0xAB, sizeof older);
  size_t prefix = offsetof(st_stats, live_blocks);
  CHECK_EQ(st_stats_get(&older, prefix), 0);
  CHECK_EQ(older.version, ST_STATS_VERSION);
  CHECK_EQ(((const unsigned char *)&older)[prefix], 0xAB);
  CHECK_EQ(st_stats_print(stdout, (st_stats_format)7), -1);
  CHECK_EQ(st_stats_print(NULL, ST_STATS_TEXT), -1);
}

static void test_small_blocks(void) {
  enum { N = 1000 };
  static void *blocks[N];
  st_free(st_malloc(100)); /* the class has a current span: its pin is already counted */
  snap(&before);
  for (int i = 0; i < N; i++) blocks[i] = st_malloc(100);
  snap(&after);
  unsigned c = class_of_size(&after, 100);
  CHECK_EQ(after.classes[c].blocks_live - before.classes[c].blocks_live, N);
  CHECK_EQ(DELTA(live_blocks), N);
  CHECK_EQ(DELTA(small_live_bytes), N * after.classes[c].block_size);
  CHECK(DELTA(refills) >= 1);
  CHECK(after.classes[c].spans >= 1);
  CHECK(after.classes[c].blocks_capacity >= after.classes[c].blocks_live);
  before = after;
  for (int i = 0; i < N; i++) st_free(blocks[i]);
  snap(&after);
  CHECK_EQ(before.live_blocks - after.live_blocks, N);
  CHECK_EQ(after.live_bytes, after.small_live_bytes + after.large_live_bytes + after.huge_live_bytes);
}

/* Frees into spans parked as full stay on the fast path (no frees_local_slow), and once an
 * eighth of such a span is free it is back in use: the blocks are allocated again without
 * a new span. The first 3,000 blocks fill at least two 64-byte spans, then every fourth is
 * freed, a quarter of each full span. */
static void test_parked_spans_come_back(void) {
  enum { N = 4000, FIRST = 3000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) REQUIRE((blocks[i] = st_malloc(64)) != NULL);
  snap(&before);
  for (int i = 0; i < FIRST; i += 4) st_free(blocks[i]);
  snap(&after);
  unsigned c = class_of_size(&after, 64);
  CHECK_EQ(DELTA(frees_local_slow), 0);
  CHECK_EQ(before.classes[c].blocks_live - after.classes[c].blocks_live, FIRST / 4);
  CHECK_EQ(DELTA(slab_spans_new), 0);
  before = after;
  for (int i = 0; i < FIRST; i += 4) REQUIRE((blocks[i] = st_malloc(64)) != NULL);
  snap(&after);
  CHECK_EQ(DELTA(slab_spans_new), 0); /* the freed quarter was reused */
  CHECK_EQ(after.classes[c].blocks_live - before.classes[c].blocks_live, FIRST / 4);
  for (int i = 0; i < N; i++) st_free(blocks[i]);
}

static void test_large_and_huge(void) {
  snap(&before);
  void *large = st_malloc(100000);
  snap(&after);
  CHECK_EQ(DELTA(large_allocs), 1);
  CHECK_EQ(DELTA(spans_large), 1);
  CHECK_EQ(DELTA(large_live_bytes), 25 * 4096);
  CHECK_EQ(DELTA(large_requested_bytes), 100000);
  CHECK_EQ(DELTA(live_blocks), 1);
  CHECK(after.peak_in_use_bytes >= after.large_live_bytes);
  before = after;
  size_t huge_size = (size_t)80 << 20;
  void *huge = st_malloc(huge_size);
  REQUIRE(huge != NULL);
  snap(&after);
  CHECK_EQ(DELTA(huge_allocs), 1);
  CHECK_EQ(DELTA(spans_huge), 1);
  CHECK_EQ(DELTA(huge_live_bytes), huge_size);
  CHECK_EQ(DELTA(large_requested_bytes), huge_size);
  CHECK(after.mapped_bytes >= before.mapped_bytes + huge_size);
  CHECK(after.peak_mapped_bytes >= after.mapped_bytes);
  before = after;
  st_free(huge);
  st_free(large);
  snap(&after);
  CHECK_EQ(DELTA(huge_frees), 1);
  CHECK_EQ(DELTA(large_frees), 1);
  CHECK_EQ(before.huge_live_bytes - after.huge_live_bytes, huge_size);
  CHECK_EQ(after.peak_mapped_bytes, before.peak_mapped_bytes);
}

static void test_realloc_aligned_trim(void) {
  snap(&before);
  void *p = st_malloc(200);
  p = st_realloc(p, 190);    /* in place */
  p = st_realloc(p, 20000);  /* moves */
  void *q = st_aligned_alloc(256, 300);
  st_free(q);
  st_free(p);
  st_trim(0);
  snap(&after);
  CHECK_EQ(DELTA(reallocs), 2);
  CHECK_EQ(DELTA(reallocs_in_place), 1);
  CHECK_EQ(DELTA(aligned_allocs), 1);
  CHECK_EQ(DELTA(trims), 1);
  CHECK_EQ(after.free_dirty_bytes, 0); /* st_trim purged every free page */
  CHECK(after.free_purged_bytes > 0);
  CHECK(after.purged_total_bytes >= before.purged_total_bytes);
  CHECK_EQ(after.committed_bytes, after.mapped_bytes - after.free_purged_bytes);
  CHECK(after.fragmentation >= 0.0 && after.fragmentation <= 1.0);
  CHECK(after.metadata_bytes > 0 && after.reserved_bytes > 0 && after.map_calls > 0);
}

static void *thread_allocates(void *arg) {
  void **out = arg;
  for (int i = 0; i < 64; i++) out[i] = st_malloc(48);
  return NULL;
}

/* An exited thread's events stay counted; its blocks, freed here, come back through the
 * remote-free path and are collected when the spans are adopted and refilled. */
static void test_threads(void) {
  static void *blocks[64];
  snap(&before);
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, thread_allocates, blocks) == 0);
  pthread_join(t, NULL);
  snap(&after);
  CHECK(DELTA(refills) >= 1);
  CHECK(DELTA(slab_spans_new) >= 1);
  CHECK_EQ(DELTA(live_blocks), 64);
  CHECK_EQ(after.threads_live, before.threads_live);
  CHECK(after.abandoned_free_bytes > 0); /* the span it left has free blocks */
  for (int i = 0; i < 64; i++) st_free(blocks[i]);
  st_trim(0); /* collects the remote frees of abandoned spans and releases the empty ones */
  snap(&after);
  CHECK_EQ(DELTA(live_blocks), 0);
}

int main(void) {
  RUN_CASE(test_versioned_struct);
  RUN_CASE(test_small_blocks);
  RUN_CASE(test_parked_spans_come_back);
  RUN_CASE(test_large_and_huge);
  RUN_CASE(test_realloc_aligned_trim);
  RUN_CASE(test_threads);
  return check_summary();
}
