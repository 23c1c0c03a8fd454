/*
 * hardened_realloc.c — realloc in hardened mode (run with STRATA_HARDENED=1): blocks stay in
 * place when they allow it, their contents survive every move, the canary follows the new
 * size, and a failed realloc leaves the block as it was. The overflows it must still catch
 * are death tests in misuse.c.
 */
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "strata.h"

#define MEDIUM (100 * 1024)

/* Byte i of a block with this seed. */
static unsigned char pattern(size_t i, unsigned seed) { return (unsigned char)(i * 131 + seed); }

static void fill(unsigned char *p, size_t from, size_t to, unsigned seed) {
  for (size_t i = from; i < to; i++) p[i] = pattern(i, seed);
}

static int intact(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern(i, seed)) return 0;
  return 1;
}

static size_t reallocs_in_place(void) {
  st_stats s;
  return st_stats_get(&s, sizeof s) == 0 ? s.reallocs_in_place : 0;
}

static void test_slab_in_place(void) {
  unsigned char *p = st_malloc(40);
  REQUIRE(p != NULL);
  fill(p, 0, 40, 1);
  unsigned char *q = st_realloc(p, 50); /* 40 and 50 bytes both fit a 64-byte block */
  CHECK(q == p);
  CHECK_EQ(st_usable_size(q), 50); /* the request: the canary moved to its end */
  CHECK(intact(q, 40, 1));
  q = st_realloc(q, 30); /* shrinking by less than half stays */
  CHECK(q == p);
  CHECK_EQ(st_usable_size(q), 30);
  CHECK(intact(q, 30, 1));
  st_free(q);
}

static void test_slab_moves(void) {
  unsigned char *p = st_malloc(1000);
  REQUIRE(p != NULL);
  fill(p, 0, 1000, 2);
  unsigned char *q = st_realloc(p, 20); /* would waste most of the block: moves */
  CHECK(q != p);
  CHECK(intact(q, 20, 2));
  q = st_realloc(q, 3000);
  REQUIRE(q != NULL);
  CHECK(intact(q, 20, 2));
  CHECK_EQ(st_usable_size(q), 3000);
  st_free(q);
}

/* A LARGE block with free pages after it grows where it is; its guard page moves along
 * (the death tests show it faults at the new end). */
static void test_large_grows_in_place(void) {
  size_t before = reallocs_in_place();
  unsigned char *p = st_malloc(MEDIUM);
  REQUIRE(p != NULL);
  fill(p, 0, MEDIUM, 3);
  unsigned char *q = st_realloc(p, 3 * MEDIUM);
  REQUIRE(q != NULL);
  CHECK(q == p);
  CHECK_GT(reallocs_in_place(), before);
  CHECK_EQ(st_usable_size(q), 3 * MEDIUM);
  CHECK(intact(q, MEDIUM, 3));
  fill(q, MEDIUM, 3 * MEDIUM, 3);
  q = st_realloc(q, 2 * MEDIUM); /* shrinking by less than half stays */
  CHECK(q == p);
  CHECK(intact(q, 2 * MEDIUM, 3));
  st_free(q);
}

static size_t large_requested(void) {
  st_stats s;
  return st_stats_get(&s, sizeof s) == 0 ? s.large_requested_bytes : 0;
}

/* large_requested_bytes follows a LARGE block resized in place, growing and shrinking,
 * byte for byte with the program's requests. */
static void test_in_place_resizes_keep_the_requested_bytes(void) {
  size_t before = large_requested();
  unsigned char *p = st_malloc(MEDIUM);
  REQUIRE(p != NULL);
  size_t with_block = large_requested();
  CHECK_GT(with_block, before + MEDIUM - 1);
  unsigned char *q = st_realloc(p, 3 * MEDIUM);
  REQUIRE(q == p);
  CHECK_EQ(large_requested(), with_block + 2 * MEDIUM);
  q = st_realloc(q, 2 * MEDIUM); /* shrinking by less than half stays */
  REQUIRE(q == p);
  CHECK_EQ(large_requested(), with_block + MEDIUM);
  q = st_realloc(q, 2 * MEDIUM - 100); /* within the same pages */
  REQUIRE(q == p);
  CHECK_EQ(large_requested(), with_block + MEDIUM - 100);
  st_free(q);
}

/* The huge threshold (STRATA_HUGE_THRESHOLD_KB, 8 MiB unless set). */
static size_t huge_threshold(void) {
  const char *kb = getenv("STRATA_HUGE_THRESHOLD_KB");
  return (kb != NULL ? (size_t)strtoul(kb, NULL, 10) : 8192) << 10;
}

/* A block of exactly the huge threshold is LARGE in hardened mode as in the default mode
 * (its canary, size word and guard page do not make it HUGE), and a realloc growing to it
 * stays in the page heap; a page more is HUGE. */
static void test_threshold_block_stays_large(void) {
  st_stats before, after;
  size_t threshold = huge_threshold();
  REQUIRE(st_stats_get(&before, sizeof before) == 0);
  unsigned char *p = st_malloc(threshold / 2);
  REQUIRE(p != NULL);
  fill(p, 0, threshold / 2, 6);
  unsigned char *q = st_realloc(p, threshold);
  REQUIRE(q != NULL);
  CHECK(intact(q, threshold / 2, 6));
  REQUIRE(st_stats_get(&after, sizeof after) == 0);
  CHECK_EQ(after.huge_allocs, before.huge_allocs);
  unsigned char *huge = st_malloc(threshold + 4096);
  REQUIRE(huge != NULL);
  REQUIRE(st_stats_get(&after, sizeof after) == 0);
  CHECK_EQ(after.huge_allocs, before.huge_allocs + 1);
  st_free(huge);
  st_free(q);
}

/* From 16 bytes to 4 MiB by a quarter at a time, through slab, LARGE and guarded blocks,
 * checking every byte at each step. */
static void test_growth_keeps_contents(void) {
  size_t size = 16;
  unsigned char *p = st_malloc(size);
  REQUIRE(p != NULL);
  fill(p, 0, size, 4);
  while (size < ((size_t)4 << 20)) {
    size_t next = size + size / 4 + 1;
    int saved = errno = 12345;
    unsigned char *q = st_realloc(p, next);
    REQUIRE(q != NULL);
    CHECK_EQ(errno, saved);
    if (!CHECK(intact(q, size, 4))) break;
    fill(q, size, next, 4);
    p = q;
    size = next;
  }
  st_free(p);
}

/* Out of memory: NULL and ENOMEM, the block untouched and still the program's. */
static void test_failure_keeps_block(void) {
  unsigned char *p = st_malloc(MEDIUM);
  REQUIRE(p != NULL);
  fill(p, 0, MEDIUM, 5);
  errno = 0;
  CHECK(st_realloc(p, (size_t)1 << 47) == NULL); /* the whole user address space */
  CHECK_EQ(errno, ENOMEM);
  CHECK(intact(p, MEDIUM, 5));
  CHECK_EQ(st_usable_size(p), MEDIUM);
  st_free(p);
}

/* Threads growing and shrinking their own blocks at once (the page heap's lock). */
static void *grow_and_shrink(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  size_t size = 1000;
  unsigned char *p = st_malloc(size);
  fill(p, 0, size, seed);
  for (int round = 0; round < 200 && p != NULL; round++) {
    size_t next = round % 8 < 6 ? size * 3 / 2 : size / 3 + 1;
    unsigned char *q = st_realloc(p, next);
    if (q == NULL || !intact(q, next < size ? next : size, seed)) return (void *)1;
    if (next > size) fill(q, size, next, seed);
    p = q;
    size = next;
  }
  st_free(p);
  return NULL;
}

static void test_threads(void) {
  pthread_t t[4];
  for (uintptr_t i = 0; i < 4; i++) CHECK_EQ(pthread_create(&t[i], NULL, grow_and_shrink, (void *)(i + 10)), 0);
  for (int i = 0; i < 4; i++) {
    void *failed = (void *)1;
    pthread_join(t[i], &failed);
    CHECK(failed == NULL);
  }
}

int main(void) {
  RUN_CASE(test_slab_in_place);
  RUN_CASE(test_slab_moves);
  RUN_CASE(test_large_grows_in_place);
  RUN_CASE(test_in_place_resizes_keep_the_requested_bytes);
  RUN_CASE(test_threshold_block_stays_large);
  RUN_CASE(test_growth_keeps_contents);
  RUN_CASE(test_failure_keeps_block);
  RUN_CASE(test_threads);
  return check_summary();
}
