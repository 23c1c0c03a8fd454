/* A thread's current span of a size class that holds no block goes back to the page heap
 * when the thread takes new spans of another class twice while it stays empty
 * (tcache_release_idle): a program that uses sizes one after the other then holds the
 * spans of one phase, not of all. A current span with a block out is kept however many
 * new spans the thread takes, and so is an empty one at the first of them; a class that
 * took a span again after giving one back keeps its next one however long it stays empty
 * (a program cycling through sizes with one block out at a time must not make a new span
 * per malloc). Each case runs in a thread of its own, so that its cache starts empty. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../check.h"
#include "fresh_thread.h"
#include "core/sizeclass.h"
#include "core/span.h"
#include "base/atomics.h"
#include "core/events.h"
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

#define CYCLE_CLASSES 40 /* sizes 16, 32, .., 640: one class each */
#define CYCLE_ROUNDS 12

static size_t new_spans_of_thread(void) {
  return st_load_relaxed(&st__thread_cache()->events.xcount[ST_EVENT_slab_spans_new]);
}

static void cycling_thread(void) {
  size_t settled = 0;
  for (int round = 0; round < CYCLE_ROUNDS; round++) {
    /* The first rounds may give each class's span back once; then every class keeps the
     * span it has (the page heap may hand a given-back span out again under the same
     * descriptor, so the thread's count of new spans tells, not the current pointers). */
    if (round == 3) settled = new_spans_of_thread();
    for (size_t k = 0; k < CYCLE_CLASSES; k++) {
      void *p = st_malloc(16 * (k + 1));
      REQUIRE(p != NULL);
      st_free(p);
    }
  }
  CHECK(settled >= CYCLE_CLASSES);
  CHECK(new_spans_of_thread() == settled);
}

static void cycling_classes_keep_their_spans(void) { run_in_new_thread(cycling_thread); }

int main(void) {
  RUN_CASE(idle_span_goes_back_at_the_second_new_span);
  RUN_CASE(span_with_a_block_out_is_kept);
  RUN_CASE(cycling_classes_keep_their_spans);
  return check_summary();
}
