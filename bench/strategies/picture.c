/*
 * picture.c — one workload, then the heap's picture (st_heap_dump, JSON) of whichever
 * strategy serves the process: docs/strategies.md shows it under two strategies.
 *
 * The workload fragments on purpose: 12,000 blocks of 16 bytes to 3 KiB (seeded), then
 * every block whose index is not a multiple of three is freed, then 3,000 blocks of 1 to
 * 6 KiB arrive. What stays live is the same under every strategy; where it sits, and how
 * much of each page it covers, is the strategy's doing.
 *   STRATA_STRATEGY=buddy picture OUT.json     (make strategy-pictures draws the SVGs)
 */
#include <stdint.h>
#include <stdio.h>

#include "strata.h"

enum { FIRST = 12000, SECOND = 3000 };

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: STRATA_STRATEGY=NAME %s OUT.json\n", argv[0]);
    return 64;
  }
  static void *first[FIRST], *second[SECOND];
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (int i = 0; i < FIRST; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    first[i] = st_malloc(16 + (size_t)(x >> 33) % 3057);
    if (first[i] == NULL) return 1;
  }
  for (int i = 0; i < FIRST; i++)
    if (i % 3 != 0) st_free(first[i]);
  for (int i = 0; i < SECOND; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    second[i] = st_malloc(1 + (size_t)(x >> 33) % 6144);
    if (second[i] == NULL) return 1;
  }
  FILE *out = fopen(argv[1], "w");
  if (out == NULL || st_heap_dump(out, ST_DUMP_JSON) != 0 || fclose(out) != 0) {
    perror(argv[1]);
    return 1;
  }
  return 0;
}
