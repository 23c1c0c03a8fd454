/*
 * dump_no_cache.c — a thread that only draws the heap sets up no thread cache.
 *
 * A thread cache takes a page-heap shard in the round-robin (src/core/pageheap.h), so a
 * diagnostic thread that dumps the heap while the program runs (tools/peak_breakdown.c)
 * would move every later thread of the program to another shard, and what it measures with
 * it. The dumping thread here never allocates with strata; the count of thread caches in
 * use, read in that thread after its dump, must still be the main thread's one, and the
 * dump must still show the main thread's blocks.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "strata.h"

static size_t caches_in_use(void) {
  st_stats s;
  CHECK_EQ(st_stats_get(&s, sizeof s), 0);
  return s.threads_live;
}

static void *dump_only(void *arg) {
  FILE *sink = arg;
  size_t before = caches_in_use();
  CHECK_EQ(st_heap_dump(sink, ST_DUMP_JSON), 0);
  CHECK_EQ(st_heap_dump(sink, ST_DUMP_TEXT), 0);
  CHECK_EQ(caches_in_use(), before);
  return NULL;
}

static void a_dumping_thread_sets_up_no_cache(void) {
  void *small = st_malloc(48), *large = st_malloc(100000);
  CHECK(small != NULL && large != NULL);
  CHECK_EQ(caches_in_use(), 1u);
  /* stdio's buffers come from the C library here (the prefixed strata replaces no malloc). */
  char text[1 << 16];
  FILE *sink = fmemopen(text, sizeof text, "w");
  CHECK(sink != NULL);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, dump_only, sink), 0);
  pthread_join(t, NULL);
  fclose(sink);
  CHECK(strstr(text, "\"kind\": \"slab\"") != NULL && strstr(text, "\"kind\": \"large\"") != NULL);
  CHECK_EQ(caches_in_use(), 1u);
  st_free(small);
  st_free(large);
}

int main(void) {
  RUN_CASE(a_dumping_thread_sets_up_no_cache);
  return check_summary();
}
