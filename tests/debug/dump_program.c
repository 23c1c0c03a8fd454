/*
 * dump_program.c — fills a heap with live and freed blocks of five classes, a large
 * and a huge block, then writes st_heap_dump in both forms (argv[1]: text, argv[2]: JSON)
 * and statistics as JSON (argv[3]) and as text (stdout), then glibc's mallinfo2 (stdout)
 * and malloc_stats (stderr) as strata answers them, for check_debug.py and the
 * examples in docs/debugging.md and docs/stats.md.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "strata.h"

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  enum { N = 6000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) blocks[i] = st_malloc(16 + (size_t)(i % 5) * 200);
  /* Later blocks are freed more often, so the spans run from full to nearly empty. */
  for (int i = 0; i < N; i++) {
    unsigned mix = (unsigned)i * 2654435761u >> 16;
    if (mix % N < (unsigned)i) st_free(blocks[i]);
  }
  void *large = st_malloc(300000), *huge = st_malloc((size_t)70 << 20);
  FILE *text = fopen(argv[1], "w"), *json = fopen(argv[2], "w"), *stats = fopen(argv[3], "w");
  if (text == NULL || json == NULL || stats == NULL) return 3;
  int rc = st_heap_dump(text, ST_DUMP_TEXT) | st_heap_dump(json, ST_DUMP_JSON) |
           st_stats_print(stats, ST_STATS_JSON) | st_stats_print(stdout, ST_STATS_TEXT);
  struct mallinfo2 info = mallinfo2(); /* strata's answer: the program links libstrata.so */
  printf("mallinfo2: hblks=%zu hblkhd=%zu uordblks=%zu\n", info.hblks, info.hblkhd, info.uordblks);
  malloc_stats();
  fclose(text);
  fclose(json);
  fclose(stats);
  st_free(large);
  st_free(huge);
  return rc == 0 ? 0 : 1;
}
