/*
 * heaps_by_strategy.c — choosing a strategy from code: one first-class heap per strategy,
 * the same allocations in each, and what each made of them.
 *
 *   cc heaps_by_strategy.c -lstrata -o heaps_by_strategy && ./heaps_by_strategy
 *
 * A heap is independent of the process's malloc: it has its own lock and regions, its
 * blocks are freed with st_heap_free (or all at once by st_heap_destroy), and
 * st_heap_visit walks the blocks still live; here it also draws a picture of the first
 * 256 KiB of each heap, one character per 4 KiB ( empty . :  + # full), so the same workload
 * can be seen laid out by every strategy.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "strata.h"

enum { CELLS = 64, CELL = 4096 };

typedef struct tally {
  size_t blocks, usable;
  uintptr_t base;     /* the picture starts here */
  size_t used[CELLS]; /* live bytes in each cell */
} tally;

static void count_block(const void *block, size_t usable, void *arg) {
  tally *t = arg;
  t->blocks++;
  t->usable += usable;
  uintptr_t lo = (uintptr_t)block, hi = lo + usable;
  if (t->base == 0) t->base = lo & ~(uintptr_t)(CELL - 1); /* visits go in address order */
  for (uintptr_t a = lo; a < hi;) {
    size_t cell = (a - t->base) / CELL;
    uintptr_t cell_end = t->base + (cell + 1) * CELL;
    uintptr_t stop = hi < cell_end ? hi : cell_end;
    if (cell < CELLS) t->used[cell] += stop - a;
    a = stop;
  }
}

static void draw(const tally *t) {
  static const char shades[] = " .:+#";
  char line[CELLS + 1];
  for (int c = 0; c < CELLS; c++) line[c] = shades[t->used[c] * 4 / CELL];
  line[CELLS] = '\0';
  printf("%12s |%s|\n", "", line);
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
    /* 1000 strings of 1..300 bytes; every third one freed; then 300 of 1..600 bytes, which
     * each strategy places differently: in the holes, or after them. */
    size_t requested = 0;
    char *kept[1000];
    for (int i = 0; i < 1000; i++) {
      size_t n = 1 + (size_t)(i * 7919) % 300;
      kept[i] = st_heap_malloc(heap, n);
      memset(kept[i], 'a' + i % 26, n);
      requested += n;
    }
    for (int i = 0; i < 1000; i += 3) {
      st_heap_free(heap, kept[i]);
      requested -= 1 + (size_t)(i * 7919) % 300;
    }
    for (int i = 0; i < 300; i++) {
      size_t n = 1 + (size_t)(i * 104729) % 600;
      memset(st_heap_malloc(heap, n), 'A' + i % 26, n);
      requested += n;
    }
    tally t = {0};
    st_heap_visit(heap, count_block, &t);
    st_heap_stats stats;
    st_heap_stats_get(heap, &stats);
    printf("%-11s %8zu %12zu %12zu %12zu\n", st_strategy_name((st_strategy)s), t.blocks, requested,
           t.usable, stats.mapped_bytes);
    draw(&t);
    st_heap_destroy(heap); /* the 966 live blocks go with it */
  }
  return 0;
}
