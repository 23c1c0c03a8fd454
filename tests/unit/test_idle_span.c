/* A thread's current span of a size class that holds no block goes back to the page heap
 * when the thread takes new spans of another class twice while it stays empty
 * (tcache_release_idle): a program that uses sizes one after the other then holds the
 * spans of one phase, not of all. A current span with a block out is kept however many
 * new spans the thread takes, and so is an empty one at the first of them. Each case runs
 * in a thread of its own, so that its cache starts empty. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../check.h"
#include "fresh_thread.h"
#include "core/sizeclass.h"
#include "core/span.h"
#include "core/tcache.h"
#include "core/thread.h"
#include "strata.h"

#define SMALL ((size_t)16)
#define OTHER ((size_t)1024) /* 64 blocks per span: a new span every 64 mallocs */
#define OTHER_MAX 512

static st_span_t *current_span(size_t size) {
  return st__thread_cache()->current[st__size_to_class(size)];
}

/* Allocates blocks of OTHER into `blocks` until the thread has made `spans` new spans
 * current for that class; returns how many it allocated. */
static size_t take_other_spans(void **blocks, int spans) {
  size_t n = 0;
  for (int taken = 0; taken < spans && CHECK(n < OTHER_MAX);) {
    st_span_t *before = current_span(OTHER);
    if (!CHECK((blocks[n] = st_malloc(OTHER)) != NULL)) break;
    n++;
    if (current_span(OTHER) != before) taken++;
  }
  return n;
}

/* Whether one of the n blocks lies in [start, start + bytes). */
static bool any_block_in(void **blocks, size_t n, uintptr_t start, size_t bytes) {
  for (size_t i = 0; i < n; i++) {
    if ((uintptr_t)blocks[i] - start < bytes) return true;
  }
  return false;
}

static void free_all(void **blocks, size_t n) {
  for (size_t i = 0; i < n; i++) st_free(blocks[i]);
}

static void idle_thread(void) {
  void *blocks[OTHER_MAX];
  st_free(st_malloc(SMALL));
  st_span_t *small = current_span(SMALL);
  REQUIRE(small != &st__span_empty);
  uintptr_t small_start = small->start;
  size_t small_bytes = st__span_bytes(small);
  size_t n = take_other_spans(blocks, 1);
  CHECK(current_span(SMALL) == small); /* empty at one new span: kept */
  free_all(blocks, n);
  n = take_other_spans(blocks, 2);
  CHECK(current_span(SMALL) == &st__span_empty); /* empty at two: given back */
  /* The new span of the other class lies on the pages it gave back (the page heap hands
   * out its most recently freed resident span first, and both are 16 pages). */
  CHECK(any_block_in(blocks, n, small_start, small_bytes));
  free_all(blocks, n);
  void *again = st_malloc(SMALL); /* the class takes a span again */
  CHECK(again != NULL);
  CHECK(current_span(SMALL) != &st__span_empty);
  st_free(again);
}

static void idle_span_goes_back_at_the_second_new_span(void) { run_in_new_thread(idle_thread); }

static void busy_thread(void) {
  void *blocks[OTHER_MAX];
  void *held = st_malloc(SMALL);
  REQUIRE(held != NULL);
  st_span_t *small = current_span(SMALL);
  size_t n = take_other_spans(blocks, 4);
  CHECK(current_span(SMALL) == small); /* a block out: kept */
  free_all(blocks, n);
  st_free(held);
  CHECK(current_span(SMALL) == small); /* its last block freed: still current */
  n = take_other_spans(blocks, 1);
  CHECK(current_span(SMALL) == small); /* empty at one new span since: kept */
  free_all(blocks, n);
}

static void span_with_a_block_out_is_kept(void) { run_in_new_thread(busy_thread); }

int main(void) {
  RUN_CASE(idle_span_goes_back_at_the_second_new_span);
  RUN_CASE(span_with_a_block_out_is_kept);
  return check_summary();
}
