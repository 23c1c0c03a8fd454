/*
 * test_heaps.c — every strategy through first-class heaps (st_heap_*), plus what
 * each backend is built to do: coalescing of boundary tags, buddy merging, bitmap runs.
 *
 * Owns: the per-heap API contract (options, errno, limits, visit, destroy, threads) run
 * against every strategy, and one unit case per backend mechanism. The process-wide
 * conformance (the api table and the stress under STRATA_STRATEGY) is registered in
 * CMakeLists.txt next to this file.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "strata.h"

static const size_t MiB = (size_t)1 << 20;
/* Impossible sizes the compiler cannot see (it rejects literal ones at compile time). */
static volatile size_t too_big = (size_t)PTRDIFF_MAX + 1, size_max = SIZE_MAX, not_pow2 = 48;
static st_strategy current; /* the strategy the per-strategy cases run against */

static st_heap_t *heap_of(st_strategy s, size_t limit) {
  st_heap_options o = {ST_HEAP_OPTIONS_VERSION, s, limit};
  st_heap_t *h = st_heap_new(&o);
  if (!h) fprintf(stderr, "st_heap_new(%s) failed\n", st_strategy_name(s));
  return h;
}

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed * 31u + i * 7u);
}

static bool intact(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(seed * 31u + i * 7u)) return false;
  return true;
}

/* ---- names and options ------------------------------------------------------------------ */

static void case_names_and_options(void) {
  for (int s = 0; s < ST_STRATEGY_COUNT; s++) {
    st_strategy back;
    CHECK_EQ(st_strategy_from_name(st_strategy_name((st_strategy)s), &back), 0);
    CHECK_EQ(back, s);
  }
  st_strategy ignored;
  CHECK_EQ(st_strategy_from_name("best", &ignored), EINVAL);
  CHECK_EQ(st_strategy_from_name(NULL, &ignored), EINVAL);
  CHECK(st_strategy_name(ST_STRATEGY_COUNT) == NULL);
  st_heap_options bad_version = {0, ST_STRATEGY_BUDDY, 0};
  st_heap_options bad_strategy = {ST_HEAP_OPTIONS_VERSION, ST_STRATEGY_COUNT, 0};
  errno = 0;
  CHECK(st_heap_new(&bad_version) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_heap_new(&bad_strategy) == NULL && errno == EINVAL);
  st_heap_t *h = st_heap_new(NULL);
  REQUIRE(h != NULL);
  st_heap_stats s;
  st_heap_stats_get(h, &s);
  CHECK_EQ(s.strategy, ST_STRATEGY_DEFAULT); /* the process's allocator, tracked per heap */
  st_heap_destroy(h);
  st_heap_destroy(NULL);
}

/* ---- the contract, per strategy ----------------------------------------------------------- */

typedef struct visit_tally {
  size_t blocks, bytes;
} visit_tally;

static void tally(const void *block, size_t usable, void *arg) {
  visit_tally *t = arg;
  CHECK_ALIGNED(block, 16);
  t->blocks++;
  t->bytes += usable;
}

static void case_contract(void) {
  st_heap_t *h = heap_of(current, 0);
  REQUIRE(h != NULL);
  enum { N = 300 };
  static void *p[N];
  for (size_t i = 0; i < N; i++) { /* small, medium, and a few BIG blocks */
    size_t n = i % 50 == 49 ? (i + 1) * 10000 : (i * 37) % 3000;
    p[i] = st_heap_malloc(h, n);
    REQUIRE(p[i] != NULL);
    CHECK_ALIGNED(p[i], 16);
    CHECK_GE(st_heap_usable_size(h, p[i]), n);
    fill(p[i], n, (unsigned)i);
  }
  for (size_t i = 0; i < N; i++) {
    size_t n = i % 50 == 49 ? (i + 1) * 10000 : (i * 37) % 3000;
    CHECK_MSG(intact(p[i], n, (unsigned)i), "block %zu of %zu bytes overwritten", i, n);
  }
  for (size_t i = 0; i < N; i++) CHECK(i == 0 || p[i] != p[i - 1]); /* malloc(0) is unique */
  visit_tally t = {0, 0};
  st_heap_visit(h, tally, &t);
  st_heap_stats s;
  st_heap_stats_get(h, &s);
  CHECK_EQ(t.blocks, N);
  CHECK_EQ(t.blocks, s.live_blocks);
  CHECK_EQ(t.bytes, s.live_bytes);
  CHECK_EQ(st_heap_check(h), 0);
  for (size_t i = 0; i < N; i += 2) st_heap_free(h, p[i]);
  CHECK_EQ(st_heap_check(h), 0);
  for (size_t i = 1; i < N; i += 2) st_heap_free(h, p[i]);
  st_heap_stats_get(h, &s);
  CHECK_EQ(s.live_blocks, 0);
  CHECK_EQ(s.live_bytes, 0);
  CHECK_LE(s.mapped_bytes, 4 * MiB); /* at most the one spare region stays */
  CHECK_EQ(st_heap_check(h), 0);
  st_heap_destroy(h);
}

static void case_aligned_calloc_realloc(void) {
  st_heap_t *h = heap_of(current, 0);
  REQUIRE(h != NULL);
  for (size_t align = 16; align <= 4 * MiB; align *= 4) {
    for (size_t n = 1; n < 3 * MiB; n = n * 9 + 5) {
      char *p = st_heap_aligned_alloc(h, align, n);
      REQUIRE(p != NULL);
      CHECK_ALIGNED(p, align);
      CHECK_GE(st_heap_usable_size(h, p), n);
      p[0] = p[n - 1] = 1;
      st_heap_free(h, p);
    }
  }
  errno = 0;
  CHECK(st_heap_aligned_alloc(h, not_pow2, 10) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(st_heap_malloc(h, too_big) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(st_heap_calloc(h, size_max / 2, 3) == NULL && errno == ENOMEM);
  for (size_t n = 1; n < 200000; n = n * 5 + 3) { /* reused memory comes back zeroed */
    char *d = st_heap_malloc(h, n);
    REQUIRE(d != NULL);
    memset(d, 0xa5, n);
    st_heap_free(h, d);
    unsigned char *z = st_heap_calloc(h, 1, n);
    REQUIRE(z != NULL);
    size_t i = 0;
    while (i < n && z[i] == 0) i++;
    CHECK_MSG(i == n, "calloc(%zu) byte %zu not zero", n, i);
    st_heap_free(h, z);
  }
  char *p = NULL;
  size_t cur = 0;
  const size_t steps[] = {1, 40, 100, 1000, 5000, 70000, 900000, 3 * MiB, 50, 7};
  for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
    char *q = st_heap_realloc(h, p, steps[k]);
    REQUIRE(q != NULL);
    CHECK_MSG(intact(q, cur < steps[k] ? cur : steps[k], (unsigned)k), "realloc %zu -> %zu", cur,
              steps[k]);
    fill(q, steps[k], (unsigned)k + 1);
    p = q;
    cur = steps[k];
  }
  errno = 0;
  CHECK(st_heap_realloc(h, p, size_max) == NULL && errno == ENOMEM);
  CHECK(intact(p, cur, 10));
  CHECK(st_heap_realloc(h, p, 0) == NULL); /* frees p */
  CHECK_EQ(st_heap_check(h), 0);
  st_heap_destroy(h);
}

/* A limit makes allocation fail cleanly, and the heap keeps working. */
static void case_limit(void) {
  st_heap_t *h = heap_of(current, 8 * MiB);
  REQUIRE(h != NULL);
  static void *p[4096];
  size_t n = 0;
  for (; n < 4096; n++) {
    errno = 0;
    p[n] = st_heap_malloc(h, 10000);
    if (p[n] == NULL) break;
  }
  CHECK(n > 0 && n < 4096);
  CHECK_EQ(errno, ENOMEM);
  st_heap_stats s;
  st_heap_stats_get(h, &s);
  CHECK_LE(s.peak_mapped_bytes, 8 * MiB);
  CHECK(st_heap_malloc(h, 2 * MiB) == NULL);
  st_heap_free(h, p[0]);
  p[0] = st_heap_malloc(h, 10000);
  CHECK(p[0] != NULL);
  CHECK_EQ(st_heap_check(h), 0);
  st_heap_destroy(h); /* frees every block at once */
}

/* Destroy gives back every byte the heap mapped (a default heap maps nothing of its own: its
 * blocks go back to the process's allocator, which stays consistent). */
static void case_destroy_unmaps_everything(void) {
  st_core_counters before, after;
  st_core_counters_get(&before);
  st_heap_t *h = heap_of(current, 0);
  REQUIRE(h != NULL);
  for (int i = 0; i < 2000; i++)
    REQUIRE(st_heap_malloc(h, (size_t)(i % 97) * 53 + (i % 400 == 0) * 3 * MiB));
  st_heap_destroy(h);
  if (current == ST_STRATEGY_DEFAULT) {
    CHECK_EQ(st_heap_validate(), 0);
    return;
  }
  st_core_counters_get(&after);
  CHECK_EQ(after.mapped_bytes, before.mapped_bytes);
}

/* Any thread may allocate from and free to any heap. */
typedef struct worker {
  st_heap_t *heap;
  unsigned seed;
} worker;

static void *churn(void *arg) {
  worker *w = arg;
  void *slots[64] = {0};
  size_t sizes[64] = {0};
  unsigned x = w->seed;
  for (int i = 0; i < 20000; i++) {
    x = x * 1103515245u + 12345u;
    unsigned k = (x >> 8) % 64;
    if (slots[k]) {
      CHECK(intact(slots[k], sizes[k] < 64 ? sizes[k] : 64, k));
      st_heap_free(w->heap, slots[k]);
      slots[k] = NULL;
    } else {
      sizes[k] = (x >> 16) % 2000;
      slots[k] = st_heap_malloc(w->heap, sizes[k]);
      if (slots[k]) fill(slots[k], sizes[k] < 64 ? sizes[k] : 64, k);
    }
  }
  for (int k = 0; k < 64; k++) st_heap_free(w->heap, slots[k]);
  return NULL;
}

static void case_threads_share_a_heap(void) {
  st_heap_t *h = heap_of(current, 0);
  REQUIRE(h != NULL);
  pthread_t t[4];
  worker w[4];
  for (unsigned i = 0; i < 4; i++) {
    w[i] = (worker){h, i + 1};
    CHECK_EQ(pthread_create(&t[i], NULL, churn, &w[i]), 0);
  }
  for (unsigned i = 0; i < 4; i++) CHECK_EQ(pthread_join(t[i], NULL), 0);
  st_heap_stats s;
  st_heap_stats_get(h, &s);
  CHECK_EQ(s.live_blocks, 0);
  CHECK_EQ(st_heap_check(h), 0);
  st_heap_destroy(h);
}

/* ---- misuse ------------------------------------------------------------------------------- */

static st_heap_t *misuse_heap;
static void free_twice(void *arg) {
  void *p = st_heap_malloc(misuse_heap, (size_t)(uintptr_t)arg);
  void *keep = st_heap_malloc(misuse_heap, 64); /* p is not the last block */
  st_heap_free(misuse_heap, p);
  st_heap_free(misuse_heap, p);
  st_heap_free(misuse_heap, keep);
}
static void free_interior(void *arg) {
  char *p = st_heap_malloc(misuse_heap, 5000);
  st_heap_free(misuse_heap, p + (uintptr_t)arg);
}
static void free_foreign(void *arg) {
  static _Alignas(16) char outside[128]; /* readable around the pointer: a default heap reads
                                            the header before it can tell */
  (void)arg;
  st_heap_free(misuse_heap, outside + 64);
}

static void case_misuse(void) {
  misuse_heap = heap_of(current, 0);
  REQUIRE(misuse_heap != NULL);
  expect_death(free_twice, (void *)(uintptr_t)100, "double free");
  expect_death(free_twice, (void *)(uintptr_t)3000, "double free");
  expect_death(free_twice, (void *)(uintptr_t)(2 * MiB), "st_heap_free(): invalid pointer");
  expect_death(free_interior, (void *)(uintptr_t)1024, "st_heap_free(): invalid pointer");
  expect_death(free_interior, (void *)(uintptr_t)8, "st_heap_free(): invalid pointer");
  expect_death(free_foreign, NULL, "not allocated by this heap");
  st_heap_destroy(misuse_heap);
}

/* ---- each backend's mechanism ------------------------------------------------------------ */

/* Boundary tags: freeing three neighbours in the order a, c, b leaves one block, which a
 * request for all three reuses, starting at a. */
static void case_fit_coalesces_both_sides(void) {
  st_strategy fits[] = {ST_STRATEGY_FIRST_FIT, ST_STRATEGY_BEST_FIT, ST_STRATEGY_SEGREGATED};
  for (size_t i = 0; i < 3; i++) {
    st_heap_t *h = heap_of(fits[i], 0);
    REQUIRE(h != NULL);
    char *a = st_heap_malloc(h, 1000), *b = st_heap_malloc(h, 1000), *c = st_heap_malloc(h, 1000);
    void *guard = st_heap_malloc(h, 1000);
    REQUIRE(a && b && c && guard);
    CHECK(b == a + 1024 && c == b + 1024); /* 1000 + 16-byte header, rounded to 16 */
    st_heap_free(h, a);
    st_heap_free(h, c);
    CHECK_EQ(st_heap_check(h), 0);
    st_heap_free(h, b); /* merges with both neighbours */
    CHECK_EQ(st_heap_check(h), 0);
    char *all = st_heap_malloc(h, 3 * 1024 - 16);
    CHECK_MSG(all == a, "%s: got %p, expected the merged block at %p", st_strategy_name(fits[i]),
              (void *)all, (void *)a);
    st_heap_destroy(h);
  }
}

/* Realloc grows in place into free space that follows (fits, bitmap) and shrinks in place. */
static void case_realloc_in_place(void) {
  st_strategy s[] = {ST_STRATEGY_FIRST_FIT, ST_STRATEGY_WORST_FIT, ST_STRATEGY_BITMAP};
  for (size_t i = 0; i < 3; i++) {
    st_heap_t *h = heap_of(s[i], 0);
    REQUIRE(h != NULL);
    char *p = st_heap_malloc(h, 100);
    REQUIRE(p != NULL);
    fill(p, 100, 3);
    CHECK(st_heap_realloc(h, p, 5000) == p);
    CHECK(st_heap_realloc(h, p, 40) == p);
    CHECK(intact(p, 40, 3));
    CHECK_EQ(st_heap_usable_size(h, p), 48);
    CHECK_EQ(st_heap_check(h), 0);
    st_heap_destroy(h);
  }
}

/* Buddy: sizes just above a power of two waste half the block; freed buddies merge back, so
 * the largest block a region can hold is available again without mapping more. */
static void case_buddy_waste_and_merge(void) {
  st_heap_t *h = heap_of(ST_STRATEGY_BUDDY, 0);
  REQUIRE(h != NULL);
  for (size_t k = 6; k <= 16; k++) { /* 2^17 + 1 and above would be BIG blocks */
    void *p = st_heap_malloc(h, ((size_t)1 << k) + 1);
    CHECK_EQ(st_heap_usable_size(h, p), (size_t)1 << (k + 1));
    void *q = st_heap_malloc(h, (size_t)1 << k);
    CHECK_EQ(st_heap_usable_size(h, q), (size_t)1 << k);
    CHECK_ALIGNED(q, (size_t)1 << k); /* a block of order k is aligned to 2^k */
    st_heap_free(h, p);
    st_heap_free(h, q);
  }
  /* Fill more than a region with 256-byte blocks, so no large block is left unsplit. */
  enum { SMALL = 17000 };
  static void *small[SMALL];
  for (int i = 0; i < SMALL; i++) REQUIRE((small[i] = st_heap_malloc(h, 200)) != NULL);
  for (int i = 0; i < SMALL; i += 2) st_heap_free(h, small[i]);
  for (int i = 1; i < SMALL; i += 2) st_heap_free(h, small[i]);
  CHECK_EQ(st_heap_check(h), 0);
  st_heap_stats before, after;
  st_heap_stats_get(h, &before);
  CHECK_EQ(before.regions, 1);                    /* the spare: the other region was given back */
  void *big = st_heap_malloc(h, 256 * 1024 - 16); /* a 256 KiB block: needs the merges */
  CHECK(big != NULL);
  st_heap_stats_get(h, &after);
  CHECK_EQ(after.mapped_bytes, before.mapped_bytes);
  st_heap_destroy(h);
}

/* Bitmap: runs that cross 64-granule words, holes too small for a request are skipped, and
 * a freed run is found again. */
static void case_bitmap_runs(void) {
  st_heap_t *h = heap_of(ST_STRATEGY_BITMAP, 0);
  REQUIRE(h != NULL);
  enum { N = 40 };
  char *p[N];
  for (int i = 0; i < N; i++) { /* 1000 bytes: 63 granules + the size granule = one word */
    REQUIRE((p[i] = st_heap_malloc(h, 1000 + (size_t)(i % 3) * 16)) != NULL);
    fill(p[i], 1000, (unsigned)i);
  }
  for (int i = 1; i < N; i++) CHECK(p[i] > p[i - 1]); /* first fit by address */
  for (int i = 0; i < N; i += 2) st_heap_free(h, p[i]);
  char *wide = st_heap_malloc(h, 1100); /* fits no hole of 1000..1032 bytes */
  REQUIRE(wide != NULL);
  CHECK(wide > p[N - 1]);
  char *again = st_heap_malloc(h, 1000); /* the first hole */
  CHECK(again == p[0]);
  for (int i = 1; i < N; i += 2) CHECK(intact(p[i], 1000, (unsigned)i));
  CHECK_EQ(st_heap_check(h), 0);
  st_heap_destroy(h);
}

/* Next-fit resumes after its last allocation instead of rescanning from the start. */
static void case_next_fit_roves(void) {
  st_heap_t *h = heap_of(ST_STRATEGY_NEXT_FIT, 0);
  REQUIRE(h != NULL);
  char *p[8];
  for (int i = 0; i < 8; i++) REQUIRE((p[i] = st_heap_malloc(h, 500)) != NULL);
  st_heap_free(h, p[1]); /* two separate holes, p[1] and p[5] */
  st_heap_free(h, p[5]);
  /* The list is LIFO: p[5]'s hole comes first. First-fit would take the rest of that hole
   * next; next-fit moves on to p[1]'s. */
  char *first = st_heap_malloc(h, 200), *second = st_heap_malloc(h, 200);
  CHECK(first == p[5]);
  CHECK(second == p[1]);
  CHECK_EQ(st_heap_check(h), 0);
  st_heap_destroy(h);
}

int main(void) {
  RUN_CASE(case_names_and_options);
  for (int s = ST_STRATEGY_DEFAULT; s < ST_STRATEGY_COUNT; s++) {
    current = (st_strategy)s;
    printf("-- %s\n", st_strategy_name(current));
    RUN_CASE_FORKED(case_contract);
    RUN_CASE_FORKED(case_aligned_calloc_realloc);
    RUN_CASE_FORKED(case_limit);
    RUN_CASE_FORKED(case_destroy_unmaps_everything);
    RUN_CASE_FORKED(case_threads_share_a_heap);
    RUN_CASE(case_misuse);
  }
  RUN_CASE(case_fit_coalesces_both_sides);
  RUN_CASE(case_realloc_in_place);
  RUN_CASE(case_buddy_waste_and_merge);
  RUN_CASE(case_bitmap_runs);
  RUN_CASE(case_next_fit_roves);
  return check_summary();
}
