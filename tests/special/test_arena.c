/*
 * test_arena.c — st_arena_*: bump allocation, alignment, oversized chunks, marks, reset,
 * the byte cap, statistics, invalid arguments and misuse.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>

#include "special_test.h"
#include "strata.h"

static void arena_basic(void) {
  st_arena_t *a = st_arena_create(NULL);
  REQUIRE(a != NULL);
  enum { N = 2000 };
  static void *ptrs[N];
  static size_t sizes[N];
  for (size_t i = 0; i < N; i++) {
    sizes[i] = 1 + (i * 37) % 700;
    ptrs[i] = st_arena_alloc(a, sizes[i]);
    REQUIRE(ptrs[i] != NULL);
    CHECK_ALIGNED(ptrs[i], alignof(max_align_t));
    pattern_fill(ptrs[i], sizes[i], i);
  }
  for (size_t i = 0; i < N; i++) CHECK_MSG(pattern_ok(ptrs[i], sizes[i], i), "object %zu", i);
  st_arena_stats s;
  st_arena_stats_get(a, &s);
  CHECK_GE(s.used_bytes, (size_t)N);
  CHECK_GE(s.reserved_bytes, s.used_bytes);
  CHECK_GE(s.chunks, (size_t)2);
  CHECK_EQ(s.oversized, 0);
  st_arena_destroy(a);
}

/* Opaque to the compiler, so bad alignments are tested, not warned about: not a power of
 * two, zero, and too large to honour. */
static volatile size_t bad_align[] = {3, 0, (size_t)1 << 63};

static void arena_aligned(void) {
  st_arena_t *a = st_arena_create(NULL);
  REQUIRE(a != NULL);
  for (size_t align = 1; align <= ((size_t)1 << 21); align <<= 1) {
    char *p = st_arena_alloc_aligned(a, 24, align);
    REQUIRE(p != NULL);
    CHECK_ALIGNED(p, align);
    memset(p, 0xab, 24);
    char *q = st_arena_alloc(a, 5); /* back to the default alignment after any other */
    CHECK_ALIGNED(q, alignof(max_align_t));
  }
  errno = 0;
  CHECK(st_arena_alloc_aligned(a, 8, bad_align[0]) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_arena_alloc_aligned(a, 8, bad_align[1]) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_arena_alloc_aligned(a, 8, bad_align[2]) == NULL && errno == ENOMEM);
  st_arena_destroy(a);
}

/* Opaque to the compiler, so impossible sizes are tested, not warned about. */
static volatile size_t huge_size = SIZE_MAX;

static void arena_invalid(void) {
  st_arena_t *a = st_arena_create(NULL);
  REQUIRE(a != NULL);
  errno = 0;
  CHECK(st_arena_alloc(a, 0) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_arena_alloc(a, huge_size) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_arena_alloc(a, huge_size / 2) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_arena_calloc(a, huge_size / 2, 3) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_arena_calloc(a, 0, 3) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_arena_strdup(a, NULL) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_arena_alloc(NULL, 8) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_arena_create(&(st_arena_options){.chunk_size = SIZE_MAX}) == NULL && errno == ENOMEM);
  st_arena_destroy(NULL); /* a no-op, like free(NULL) */
  CHECK(st_arena_alloc(a, 16) != NULL); /* still usable after every refusal */
  st_arena_destroy(a);
}

static void arena_calloc_strdup(void) {
  st_arena_t *a = st_arena_create(NULL);
  REQUIRE(a != NULL);
  st_arena_mark_t m = st_arena_mark(a);
  memset(st_arena_alloc(a, 4096), 0xff, 4096);
  st_arena_release(a, m);
  unsigned char *z = st_arena_calloc(a, 512, 8); /* reuses the dirty bytes: must zero them */
  REQUIRE(z != NULL);
  size_t nonzero = 0;
  for (size_t i = 0; i < 4096; i++) nonzero += z[i] != 0;
  CHECK_EQ(nonzero, 0);
  char *s = st_arena_strdup(a, "abstract syntax tree");
  REQUIRE(s != NULL);
  CHECK(strcmp(s, "abstract syntax tree") == 0);
  char *e = st_arena_strdup(a, "");
  CHECK(e != NULL && e[0] == '\0');
  st_arena_destroy(a);
}

static void arena_mark_release(void) {
  st_arena_t *a = st_arena_create(&(st_arena_options){.chunk_size = 4096});
  REQUIRE(a != NULL);
  st_arena_mark_t empty = st_arena_mark(a);
  void *first = st_arena_alloc(a, 100);
  st_arena_mark_t m = st_arena_mark(a);
  void *p = st_arena_alloc(a, 100);
  st_arena_release(a, m);
  CHECK(st_arena_alloc(a, 100) == p); /* the same address again */
  st_arena_release(a, m);
  st_arena_stats s0, s1, s2;
  st_arena_stats_get(a, &s0);
  for (int i = 0; i < 10000; i++) REQUIRE(st_arena_alloc(a, 64) != NULL); /* many chunks */
  CHECK(st_arena_alloc(a, 1 << 20) != NULL);                             /* and an oversized */
  st_arena_stats_get(a, &s1);
  CHECK_GT(s1.chunks, s0.chunks);
  CHECK_EQ(s1.oversized, 1);
  st_arena_release(a, m);
  st_arena_stats_get(a, &s2);
  CHECK_EQ(s2.chunks, s0.chunks + 1); /* the largest released chunk stays as the spare */
  CHECK_LT(s2.reserved_bytes, s1.reserved_bytes);
  CHECK_EQ(s2.used_bytes, s0.used_bytes);
  CHECK_EQ(s2.oversized, 0);
  CHECK(st_arena_alloc(a, 100) == p);
  /* Nested marks, released innermost first. */
  st_arena_mark_t outer = st_arena_mark(a);
  void *x = st_arena_alloc(a, 3000);
  st_arena_mark_t inner = st_arena_mark(a);
  void *y = st_arena_alloc(a, 3000);
  st_arena_release(a, inner);
  CHECK(st_arena_alloc(a, 3000) == y);
  st_arena_release(a, outer);
  CHECK(st_arena_alloc(a, 3000) == x);
  /* A loop of allocate and release settles after one round: the spare chunk serves it. */
  for (int round = 0; round < 4; round++) {
    if (round == 1) st_arena_stats_get(a, &s1);
    for (int i = 0; i < 10000; i++) REQUIRE(st_arena_alloc(a, 64) != NULL);
    st_arena_release(a, outer);
  }
  st_arena_stats_get(a, &s2);
  CHECK_EQ(s2.reserved_bytes, s1.reserved_bytes);
  CHECK_EQ(s2.chunks, s1.chunks);
  /* A mark taken before the first chunk releases everything (but the spare). */
  st_arena_release(a, empty);
  st_arena_stats_get(a, &s2);
  CHECK_LE(s2.chunks, 1);
  CHECK_EQ(s2.used_bytes, 0);
  CHECK(st_arena_alloc(a, 100) != NULL);
  CHECK(first != NULL);
  st_arena_destroy(a);
}

static void arena_oversized_keeps_chunk(void) {
  st_arena_t *a = st_arena_create(&(st_arena_options){.chunk_size = 64 * 1024});
  REQUIRE(a != NULL);
  char *small1 = st_arena_alloc(a, 32);
  char *big = st_arena_alloc(a, 1 << 20);
  REQUIRE(big != NULL);
  memset(big, 1, 1 << 20);
  char *small2 = st_arena_alloc(a, 32);
  CHECK(small2 == small1 + 32); /* the regular chunk goes on after the oversized request */
  st_arena_stats s;
  st_arena_stats_get(a, &s);
  CHECK_EQ(s.oversized, 1);
  CHECK_EQ(s.chunks, 2);
  CHECK_GE(s.used_bytes, (size_t)(1 << 20) + 64);
  /* An oversized request before any regular chunk, then a mark: release keeps it. */
  st_arena_t *b = st_arena_create(NULL);
  REQUIRE(b != NULL);
  char *b_big = st_arena_alloc(b, 8 << 20);
  REQUIRE(b_big != NULL);
  st_arena_mark_t m = st_arena_mark(b);
  CHECK(st_arena_alloc(b, 8 << 20) != NULL);
  st_arena_release(b, m);
  st_arena_stats_get(b, &s);
  CHECK_EQ(s.oversized, 1);
  b_big[(8 << 20) - 1] = 1; /* still mapped */
  st_arena_destroy(b);
  st_arena_destroy(a);
}

static void arena_reset_keeps_one(void) {
  st_arena_t *a = st_arena_create(&(st_arena_options){.chunk_size = 4096});
  REQUIRE(a != NULL);
  for (int i = 0; i < 100000; i++) REQUIRE(st_arena_alloc(a, 48) != NULL);
  CHECK(st_arena_alloc(a, 10 << 20) != NULL);
  st_arena_stats s;
  st_arena_stats_get(a, &s);
  CHECK_LE(s.chunks, 16); /* geometric growth: 4.8 MB in few chunks */
  size_t chunks_before = s.chunks;
  st_arena_reset(a);
  st_arena_stats_get(a, &s);
  CHECK_EQ(s.chunks, 1);
  CHECK_EQ(s.used_bytes, 0);
  CHECK_EQ(s.oversized, 0);
  CHECK_LT(s.chunks, chunks_before);
  void *p = st_arena_alloc(a, 48);
  st_arena_reset(a);
  CHECK(st_arena_alloc(a, 48) == p); /* the kept chunk is reused from its start */
  st_arena_destroy(a);
}

static void arena_max_bytes(void) {
  size_t cap = 256 * 1024;
  st_arena_t *a = st_arena_create(&(st_arena_options){.chunk_size = 16384, .max_bytes = cap});
  REQUIRE(a != NULL);
  st_arena_mark_t m = st_arena_mark(a);
  size_t got = 0;
  void *p;
  errno = 0;
  while ((p = st_arena_alloc(a, 1000)) != NULL) got += 1000;
  CHECK_EQ(errno, ENOMEM);
  st_arena_stats s;
  st_arena_stats_get(a, &s);
  CHECK_LE(s.reserved_bytes, cap);
  CHECK_GE(got, cap * 3 / 4); /* the last chunk is cut to the remaining room */
  errno = 0;
  CHECK(st_arena_alloc(a, cap) == NULL && errno == ENOMEM);
  st_arena_release(a, m);
  CHECK(st_arena_alloc(a, 1000) != NULL); /* usable again below the cap */
  st_arena_destroy(a);
}

static void use_after_destroy(void *arg) {
  (void)arg;
  st_arena_t *a = st_arena_create(NULL);
  st_arena_destroy(a);
  CHECK(st_arena_alloc(a, 8) != NULL);
}

static void foreign_mark(void *arg) {
  (void)arg;
  st_arena_t *a = st_arena_create(NULL), *b = st_arena_create(NULL);
  CHECK(st_arena_alloc(a, 8) != NULL);
  CHECK(st_arena_alloc(b, 8) != NULL);
  st_arena_release(b, st_arena_mark(a));
}

static void stale_mark(void *arg) {
  (void)arg;
  st_arena_t *a = st_arena_create(&(st_arena_options){.chunk_size = 4096});
  st_arena_mark_t m0 = st_arena_mark(a);
  CHECK(st_arena_alloc(a, 8) != NULL);
  CHECK(st_arena_alloc(a, 8000) != NULL); /* a second chunk */
  st_arena_mark_t m1 = st_arena_mark(a);
  st_arena_release(a, m0);
  st_arena_release(a, m1); /* its chunk is gone */
}

static void arena_misuse(void) {
  static const death_case cases[] = {
      DEATH_CASE(use_after_destroy, "st_arena_alloc(): 0x"),
      DEATH_CASE(use_after_destroy, "is not a live arena"),
      DEATH_CASE(foreign_mark, "st_arena_release(): mark"),
      DEATH_CASE(stale_mark, "is not a position of arena"),
  };
  expect_deaths(cases, sizeof cases / sizeof cases[0]);
}

int main(void) {
  RUN_CASE(arena_basic);
  RUN_CASE(arena_aligned);
  RUN_CASE(arena_invalid);
  RUN_CASE(arena_calloc_strdup);
  RUN_CASE(arena_mark_release);
  RUN_CASE(arena_oversized_keeps_chunk);
  RUN_CASE(arena_reset_keeps_one);
  RUN_CASE(arena_max_bytes);
  RUN_CASE(arena_misuse);
  return check_summary();
}
