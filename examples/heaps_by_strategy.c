/*
 * heaps_by_strategy.c — choosing a strategy from code: one first-class heap per strategy,
 * the same allocations in each, and what each made of them.
 *
 *   cc heaps_by_strategy.c -lstrata -o heaps_by_strategy && ./heaps_by_strategy
 *
 * A heap is independent of the process's malloc: it has its own lock and regions, its
 * blocks are freed with st_heap_free (or all at once by st_heap_destroy), and
 * st_heap_visit walks the blocks still live.
 */
#include <stdio.h>
#include <string.h>

#include "strata.h"

static void count_block(const void *block, size_t usable, void *arg) {
  (void)block;
  size_t *totals = arg;
  totals[0]++;
  totals[1] += usable;
}

int main(void) {
  printf("%-11s %8s %12s %12s %12s\n", "strategy", "blocks", "requested", "usable", "mapped");
  for (int s = ST_STRATEGY_FIRST_FIT; s < ST_STRATEGY_COUNT; s++) {
    st_heap_options options = {ST_HEAP_OPTIONS_VERSION, (st_strategy)s, 0};
    st_heap_t *heap = st_heap_new(&options);
    if (heap == NULL) {
      perror("st_heap_new");
      return 1;
    }
    /* 1000 strings of 1..300 bytes; every third one freed again. */
    char *kept[1000];
    size_t requested = 0;
    for (int i = 0; i < 1000; i++) {
      size_t n = 1 + (size_t)(i * 7919) % 300;
      kept[i] = st_heap_malloc(heap, n);
      memset(kept[i], 'a' + i % 26, n);
      requested += n;
      if (i % 3 == 0) {
        st_heap_free(heap, kept[i]);
        requested -= n;
      }
    }
    size_t totals[2] = {0, 0};
    st_heap_visit(heap, count_block, totals);
    st_heap_stats stats;
    st_heap_stats_get(heap, &stats);
    printf("%-11s %8zu %12zu %12zu %12zu\n", st_strategy_name((st_strategy)s), totals[0], requested,
           totals[1], stats.mapped_bytes);
    st_heap_destroy(heap); /* the 666 live blocks go with it */
  }
  return 0;
}
