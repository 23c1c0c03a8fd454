/* Unit tests of the page-heap shards: their lazy set-up (a shard's lists are set up when a
 * thread cache is first given it, in index order, so a process that runs fewer threads than
 * it has shards (one per CPU) leaves the rest of the shard table untouched; walks over the
 * shards see exactly those set up), and where a shard takes resident memory from: its own
 * dirty spans, then another shard's, then clean pages. */
#include <stdlib.h>

#include "../check.h"
#include "base/options.h"
#include "core/pageheap.h"
#include "fake_os.h"

enum { SHARDS = 8 };

static bool shard_valid(st_pageheap_t *ph) {
  st__pageheap_lock(ph);
  bool ok = st__pageheap_validate_locked(ph);
  st__pageheap_unlock(ph);
  return ok;
}

static void only_the_first_shard_is_set_up_at_start(void) {
  CHECK_EQ(st__pageheap_shard_count(), 1u);
  st_pageheap_t *first = st__pageheap_of_cpu(0);
  CHECK(first->initialized && first->index == 0 && shard_valid(first));
  /* A thread without a cache takes a shard already set up, whatever its CPU. */
  CHECK(st__pageheap_of_cpu(SHARDS - 1) == first);
  CHECK_EQ(st__pageheap_shard_count(), 1u);
}

static void caches_set_up_shards_in_order_then_wrap(void) {
  st_pageheap_t *given[SHARDS + 1];
  for (unsigned i = 0; i < SHARDS + 1; i++) {
    given[i] = st__pageheap_for_new_cache();
    CHECK_EQ(given[i]->index, i % SHARDS);
    CHECK(given[i]->initialized && shard_valid(given[i]));
    CHECK_EQ(st__pageheap_shard_count(), i + 1 < SHARDS ? i + 1 : (unsigned)SHARDS);
  }
  CHECK(given[SHARDS] == given[0]);
  for (unsigned i = 0; i < SHARDS; i++) CHECK(st__pageheap_of_cpu((int)i) == given[i]);
  /* Every shard set up can be locked for a fork and released again. */
  st__pageheap_lock_all();
  st__pageheap_unlock_all();
  CHECK(shard_valid(given[SHARDS - 1]));
}

/* A LARGE span of `pages` pages from ph; the fake kernel never refuses. */
static st_span_t *take(st_pageheap_t *ph, size_t pages) {
  st_span_t *s = st__pageheap_alloc(ph, pages, ST_PAGE_SIZE, ST_SPAN_LARGE);
  if (s == NULL) abort();
  return s;
}

/* A shard with no dirty span that fits takes one that another shard holds before clean
 * pages; the span stays the lender's. A lender whose lock is held is not waited for. */
static void a_shard_borrows_resident_pages_before_clean_ones(void) {
  enum { PAGES = 5 };
  st_pageheap_t *home = st__pageheap_of_cpu(0), *other = st__pageheap_of_cpu(1);
  REQUIRE(home != other);
  st_span_t *freed = take(other, PAGES);
  uintptr_t start = freed->start;
  st__pageheap_free(freed); /* dirty, in the other shard */
  st_span_t *lent = take(home, PAGES);
  CHECK_EQ(lent->start, start);
  CHECK(st__pageheap_home(lent) == other);
  CHECK(shard_valid(home) && shard_valid(other));
  st__pageheap_free(lent); /* back to the lender */
  CHECK(shard_valid(other));
  st__pageheap_lock(other); /* busy: not waited for */
  st_span_t *own = take(home, PAGES);
  st__pageheap_unlock(other);
  CHECK(st__pageheap_home(own) == home && own->start != start);
  st__pageheap_free(own);
  CHECK(shard_valid(home) && shard_valid(other));
}

/* A dirty span that the scan of the most recently freed spans does not reach (a hole freed
 * before them), and longer than the request, is still taken before a shorter clean span of
 * the shard, and before another shard's dirty span of exactly the length asked for. */
static void a_shard_fills_its_own_holes_first(void) {
  enum { RECENT = 20, PAGES = 5 };
  st_pageheap_t *home = st__pageheap_of_cpu(2), *other = st__pageheap_of_cpu(3);
  st_span_t *clean = take(home, 10), *sep = take(home, 1), *hole = take(home, 40), *sep2 = take(home, 1);
  st_span_t *recent[RECENT], *keep[RECENT];
  for (int i = 0; i < RECENT; i++) {
    recent[i] = take(home, 1);
    keep[i] = take(home, 1); /* keeps the recent spans from merging */
  }
  st__pageheap_free(clean);
  st__pageheap_lock(home);
  CHECK(st__pageheap_purge_locked(home, true) > 0); /* the 10 pages are clean now */
  st__pageheap_unlock(home);
  uintptr_t hole_start = hole->start;
  st__pageheap_free(hole);
  for (int i = 0; i < RECENT; i++) st__pageheap_free(recent[i]);
  st__pageheap_free(take(other, PAGES)); /* the other shard holds an exact fit */
  CHECK(shard_valid(home) && shard_valid(other));
  st_span_t *got = take(home, PAGES);
  CHECK_EQ(got->start, hole_start);
  CHECK(st__pageheap_home(got) == home);
  CHECK(shard_valid(home));
  st__pageheap_free(got);
  st__pageheap_free(sep);
  st__pageheap_free(sep2);
  for (int i = 0; i < RECENT; i++) st__pageheap_free(keep[i]);
  CHECK(shard_valid(home) && shard_valid(other));
}

int main(void) {
  setenv("STRATA_SHARDS", "8", 1);
  fake_os_install();
  st__options_init();
  st__pageheap_init();
  RUN_CASE(only_the_first_shard_is_set_up_at_start);
  RUN_CASE(caches_set_up_shards_in_order_then_wrap);
  RUN_CASE(a_shard_borrows_resident_pages_before_clean_ones);
  RUN_CASE(a_shard_fills_its_own_holes_first);
  return check_summary();
}
