/*
 * random_pattern.h — the replace-a-random-slot pattern shared by `random` and `threads`.
 *
 * A working set of `nslots` live blocks is filled, then each step picks a slot at random,
 * verifies and frees its block and puts a new block of a random size there. Sizes are
 * log-uniform in 8 B..32 KiB (see bench_size_log_uniform), so the live set mixes every
 * small and medium size class and frees happen in an order unrelated to allocation order:
 * the pattern that fragments heaps and defeats LIFO free-list luck.
 * Owns nothing global: each call has its own generator and slot array, so threads can run it
 * side by side and each produces the same checksum under every allocator.
 */
#ifndef BENCH_RANDOM_PATTERN_H
#define BENCH_RANDOM_PATTERN_H

#include "common.h"

#define RANDOM_MIN_SIZE 8u
#define RANDOM_MAX_SIZE (32u * 1024u)
#define RANDOM_SLOTS 10000u          /* live working set of the single-threaded pattern */
#define RANDOM_STEPS_FULL 5000000ull /* replacements at full scale */

typedef struct random_slot {
  void *p;
  size_t size;
  uint64_t tag;
} random_slot;

/* Runs the pattern; *ops receives the number of malloc calls. Returns the checksum. */
static inline uint64_t random_pattern_run(uint64_t seed, size_t nslots, uint64_t steps,
                                          uint64_t *ops) {
  bench_rng rng = bench_rng_seed(seed);
  random_slot *slots = calloc(nslots, sizeof *slots);
  if (slots == NULL) bench_die("calloc of the slot array failed");
  uint64_t h = seed;
  for (size_t i = 0; i < nslots; i++) {
    slots[i].size = bench_size_log_uniform(&rng, RANDOM_MIN_SIZE, RANDOM_MAX_SIZE);
    slots[i].tag = bench_rng_next(&rng);
    slots[i].p = bench_malloc(slots[i].size);
    bench_fill(slots[i].p, slots[i].size, slots[i].tag);
  }
  for (uint64_t s = 0; s < steps; s++) {
    random_slot *sl = &slots[bench_rng_below(&rng, nslots)];
    h = bench_check(sl->p, sl->size, sl->tag, h);
    free(sl->p);
    sl->size = bench_size_log_uniform(&rng, RANDOM_MIN_SIZE, RANDOM_MAX_SIZE);
    sl->tag = bench_rng_next(&rng);
    sl->p = bench_malloc(sl->size);
    bench_fill(sl->p, sl->size, sl->tag);
  }
  for (size_t i = 0; i < nslots; i++) {
    h = bench_check(slots[i].p, slots[i].size, slots[i].tag, h);
    free(slots[i].p);
  }
  free(slots);
  *ops = nslots + steps;
  return h;
}

#endif
