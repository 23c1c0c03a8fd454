/* Each thread's cache of freed LARGE spans of a few pages (core/spancache.h): a freed block
 * comes back to the next malloc of its page count (an aligned one to the next request whose
 * boundary it lies on), only the allocating thread keeps it, the stock stays within its
 * bounds, and it goes back to the page heap at st_trim, at thread exit and (for the threads
 * that did not survive) in a forked child, whose own thread keeps its stock. A second free
 * of a cached block is reported. malloc and free of those lengths reach the stock without
 * the backend's layers, with the same checks. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "core/spancache.h"
#include "core/stats.h"
#include "core/thread.h"
#include "strata.h"

#define BLOCK_BYTES ((size_t)20000) /* 5 pages: above ST_SMALL_MAX, in the cached range */

/* A thread gets its cache, and so its span cache, at its first small malloc. */
static void set_up_thread(void) { st_free(st_malloc(16)); }

static void count_cached(st_span_t *span, void *arg) {
  if (span->kind == ST_SPAN_LARGE && st__spancache_holds(span)) ++*(size_t *)arg;
}

/* Spans held by any thread's span cache, as the page heaps see them. */
static size_t cached_spans(void) {
  size_t n = 0;
  st__core_for_each_span(count_cached, &n);
  return n;
}

static void freed_block_comes_back(void) {
  char *p = st_malloc(BLOCK_BYTES);
  REQUIRE(p != NULL);
  memset(p, 0x5a, BLOCK_BYTES);
  st_free(p);
  CHECK_EQ(cached_spans(), 1);
  st_stats s;
  st_stats_get(&s, sizeof s);
  CHECK_GE(s.thread_cached_bytes, (size_t)5 * ST_PAGE_SIZE);
  char *q = st_calloc(1, BLOCK_BYTES);
  CHECK(q == p);
  size_t nonzero = 0;
  for (size_t i = 0; i < BLOCK_BYTES; i++) nonzero += q[i] != 0;
  CHECK_EQ(nonzero, 0); /* calloc of a reused span clears it */
  CHECK_EQ(cached_spans(), 0);
  st_free(q);
  st_trim(0);
}

/* malloc and free of a stocked length go straight to the stock (api.c, heap.c): the block
 * comes back, both are counted as large blocks, and free leaves errno alone. */
static void plain_malloc_and_free_use_the_stock(void) {
  st_stats before, after;
  char *p = st_malloc(BLOCK_BYTES);
  REQUIRE(p != NULL);
  st_free(p);
  st_stats_get(&before, sizeof before);
  for (int i = 0; i < 3; i++) {
    char *q = st_malloc(BLOCK_BYTES - 100 * (size_t)i); /* the same 5 pages */
    CHECK(q == p);
    CHECK_EQ(cached_spans(), 0);
    memset(q, i, BLOCK_BYTES - 100 * (size_t)i);
    errno = 4321;
    st_free(q);
    CHECK_EQ(errno, 4321);
    CHECK_EQ(cached_spans(), 1);
  }
  st_stats_get(&after, sizeof after);
  CHECK_EQ(after.large_allocs - before.large_allocs, 3);
  CHECK_EQ(after.large_frees - before.large_frees, 3);
  CHECK_EQ(after.spans_allocated, before.spans_allocated); /* no page heap call */
  st_trim(0);
}

static void trim_empties_the_stock(void) {
  void *p[4];
  for (int i = 0; i < 4; i++) p[i] = st_malloc(BLOCK_BYTES + (size_t)i * ST_PAGE_SIZE);
  for (int i = 0; i < 4; i++) st_free(p[i]);
  CHECK_EQ(cached_spans(), 4);
  CHECK_EQ(st__tls_tcache->spans.held_pages, 5 + 6 + 7 + 8);
  st_trim(0);
  CHECK_EQ(cached_spans(), 0);
  CHECK_EQ(st__tls_tcache->spans.held_pages, 0);
}

static void stock_is_bounded(void) {
  enum { N = 64 };
  void *p[N];
  for (int i = 0; i < N; i++) p[i] = st_malloc((size_t)8 * ST_PAGE_SIZE);
  for (int i = 0; i < N; i++) st_free(p[i]);
  st_spancache_t *sc = &st__tls_tcache->spans;
  CHECK_LE(sc->held_pages, ST_SPANCACHE_BUDGET_PAGES);
  CHECK_LE(sc->count[ST_SPANCACHE_KINDS - 1], ST_SPANCACHE_DEPTH);
  CHECK_EQ(cached_spans(), sc->count[ST_SPANCACHE_KINDS - 1]);
  /* Neither below nor above the cached lengths. */
  void *small = st_malloc(ST_SMALL_MAX),
       *big = st_malloc((ST_SPANCACHE_MAX_PAGES + 1) * ST_PAGE_SIZE);
  size_t before = cached_spans();
  st_free(small);
  st_free(big);
  CHECK_EQ(cached_spans(), before);
  st_trim(0);
}

/* A malloc whose page count the stock lacks takes a stocked span one page longer, whole:
 * its usable size is that span's, it goes back to the stock at its own length, and a span
 * two pages longer is left for the page heap's search. */
static void miss_takes_a_span_one_page_longer(void) {
  char *p = st_malloc(6 * ST_PAGE_SIZE);
  REQUIRE(p != NULL);
  st_free(p);
  char *q = st_calloc(1, 5 * ST_PAGE_SIZE - 100);
  CHECK(q == p);
  CHECK_EQ(st_usable_size(q), (size_t)6 * ST_PAGE_SIZE);
  size_t nonzero = 0;
  for (size_t i = 0; i < 5 * ST_PAGE_SIZE - 100; i++) nonzero += q[i] != 0;
  CHECK_EQ(nonzero, 0);
  CHECK_EQ(cached_spans(), 0);
  st_free(q);
  st_spancache_t *sc = &st__tls_tcache->spans;
  CHECK_EQ(sc->count[6 - ST_SPANCACHE_MIN_PAGES], 1);
  char *r = st_malloc(4 * ST_PAGE_SIZE);
  REQUIRE(r != NULL);
  CHECK(r != p);
  CHECK_EQ(sc->count[6 - ST_SPANCACHE_MIN_PAGES], 1);
  st_free(r);
  st_trim(0);
}

/* A block of a few pages aligned beyond a page comes back to a later request of its page
 * count whose boundary its start lies on, and stays in the stock for one it misses. */
static void aligned_block_comes_back_when_its_start_fits(void) {
  const size_t align = (size_t)64 << 10, bytes = 3 * ST_PAGE_SIZE;
  char *p = st_aligned_alloc(align, bytes);
  REQUIRE(p != NULL);
  CHECK_EQ((uintptr_t)p % align, 0);
  CHECK_EQ(st_usable_size(p), bytes);
  memset(p, 0x33, bytes);
  st_free(p);
  CHECK_EQ(cached_spans(), 1);
  CHECK_EQ(st__tls_tcache->spans.held_pages, 3);
  char *q = st_aligned_alloc(8192, bytes - 100);
  CHECK(q == p);
  CHECK_EQ(cached_spans(), 0);
  CHECK_EQ(st_usable_size(q), bytes);
  st_free(q);
  /* Twice the alignment p's start has: not p, and p stays cached. */
  size_t miss = ((uintptr_t)p & -(uintptr_t)p) << 1;
  char *r = st_aligned_alloc(miss, bytes);
  REQUIRE(r != NULL);
  CHECK(r != p);
  CHECK_EQ((uintptr_t)r % miss, 0);
  CHECK_EQ(cached_spans(), 1);
  st_free(r);
  st_trim(0);
}

/* An alignment below a page with a LARGE size takes a cached span like malloc does, and a
 * reused aligned block reallocates and frees like any other. */
static void small_alignment_of_a_large_block_uses_the_stock(void) {
  char *p = st_malloc(BLOCK_BYTES);
  REQUIRE(p != NULL);
  st_free(p);
  char *q = st_aligned_alloc(2048, BLOCK_BYTES);
  CHECK(q == p);
  memset(q, 0x44, BLOCK_BYTES);
  char *r = st_realloc(q, 3 * BLOCK_BYTES);
  REQUIRE(r != NULL);
  CHECK(r[0] == 0x44 && r[BLOCK_BYTES - 1] == 0x44);
  CHECK_GE(st_usable_size(r), 3 * BLOCK_BYTES);
  st_free(r);
  st_trim(0);
  CHECK_EQ(cached_spans(), 0);
}

static void *alloc_free_and_exit(void *arg) {
  (void)arg;
  set_up_thread();
  void *p = st_malloc(BLOCK_BYTES), *q = st_malloc(BLOCK_BYTES + ST_PAGE_SIZE);
  st_free(p);
  st_free(q);
  return (void *)cached_spans();
}

static void thread_exit_empties_the_stock(void) {
  pthread_t t;
  void *held = NULL;
  REQUIRE(pthread_create(&t, NULL, alloc_free_and_exit, NULL) == 0);
  REQUIRE(pthread_join(t, &held) == 0);
  CHECK_EQ((size_t)held, 2); /* the thread held them while it ran */
  CHECK_EQ(cached_spans(), 0);
}

static void *alloc_only(void *arg) {
  (void)arg;
  return st_malloc(BLOCK_BYTES);
}

static void remote_free_goes_to_the_page_heap(void) {
  pthread_t t;
  void *p = NULL;
  REQUIRE(pthread_create(&t, NULL, alloc_only, NULL) == 0);
  REQUIRE(pthread_join(t, &p) == 0);
  REQUIRE(p != NULL);
  st_free(p);
  CHECK_EQ(cached_spans(), 0);
  CHECK_EQ(st__tls_tcache->spans.held_pages, 0);
}

static void forked_child_keeps_its_stock(void) {
  char *p = st_malloc(BLOCK_BYTES);
  REQUIRE(p != NULL);
  st_free(p);
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int bad = cached_spans() != 1;
    char *q = st_malloc(BLOCK_BYTES);
    bad |= q != p;
    st_free(q);
    st_trim(0);
    bad |= cached_spans() != 0;
    _exit(bad);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ(cached_spans(), 1); /* the parent's stock is its own */
  st_trim(0);
}

static void double_free_of_cached(void *arg) {
  (void)arg;
  void *p = st_malloc(BLOCK_BYTES);
  st_free(p);
  st_free(p);
}

static void usable_size_of_cached(void *arg) {
  (void)arg;
  void *p = st_malloc(BLOCK_BYTES);
  st_free(p);
  (void)st_usable_size(p);
}

/* A pointer into a block of the calling thread, which its stock would take at its start. */
static void interior_free_of_large(void *arg) {
  (void)arg;
  char *p = st_malloc(BLOCK_BYTES);
  st_free(p + 4096);
}

static void realloc_of_cached(void *arg) {
  (void)arg;
  void *p = st_malloc(BLOCK_BYTES);
  st_free(p);
  (void)st_realloc(p, 2 * BLOCK_BYTES);
}

static void misuse_is_reported(void) {
  expect_death(double_free_of_cached, NULL, "free(): double free of");
  expect_death(usable_size_of_cached, NULL, "double free of");
  expect_death(interior_free_of_large, NULL, "free(): invalid pointer");
  expect_death(realloc_of_cached, NULL, "realloc(): double free of");
}

int main(void) {
  set_up_thread();
  RUN_CASE(freed_block_comes_back);
  RUN_CASE(plain_malloc_and_free_use_the_stock);
  RUN_CASE(trim_empties_the_stock);
  RUN_CASE(stock_is_bounded);
  RUN_CASE(miss_takes_a_span_one_page_longer);
  RUN_CASE(aligned_block_comes_back_when_its_start_fits);
  RUN_CASE(small_alignment_of_a_large_block_uses_the_stock);
  RUN_CASE(thread_exit_empties_the_stock);
  RUN_CASE(remote_free_goes_to_the_page_heap);
  RUN_CASE(forked_child_keeps_its_stock);
  RUN_CASE(misuse_is_reported);
  return check_summary();
}
