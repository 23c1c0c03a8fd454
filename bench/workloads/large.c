/*
 * large — blocks of 64 KiB..64 MiB allocated, touched page by page, verified and freed.
 *
 * Four slots hold live blocks; each step replaces a random slot's block with one of a
 * log-uniform size. Every page of a new block is written, so the cost of fresh pages
 * (mmap, page faults, zeroing) is part of the time, and an allocator that caches freed
 * large blocks saves that time at the price of resident memory: compare the time and RSS
 * ratios together. Also exercises the page heap / huge-block boundary around 1-4 MiB.
 * ops counts malloc calls. Usage: large [SCALE]
 */
#include "common.h"

#define LARGE_SLOTS 4
#define LARGE_MIN_SIZE (64u << 10)
#define LARGE_MAX_SIZE (64u << 20)
#define LARGE_STEPS_FULL 60ull /* replacements at full scale */
#define LARGE_STEPS_MIN 8ull   /* so that a smoke test likely meets a block of 16 MiB or more */

typedef struct large_slot {
  void *p;
  size_t size;
  uint64_t tag;
} large_slot;

static void large_new(large_slot *s, bench_rng *rng) {
  s->size = bench_size_log_uniform(rng, LARGE_MIN_SIZE, LARGE_MAX_SIZE);
  s->tag = bench_rng_next(rng);
  s->p = bench_malloc(s->size);
  bench_fill(s->p, s->size, s->tag);
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("large", argc, argv, "[SCALE]");
  bench_rng rng = bench_rng_seed(1);
  large_slot slots[LARGE_SLOTS];
  for (int i = 0; i < LARGE_SLOTS; i++) large_new(&slots[i], &rng);
  uint64_t h = 0, steps = bench_scaled(LARGE_STEPS_FULL, scale, LARGE_STEPS_MIN);
  for (uint64_t s = 0; s < steps; s++) {
    large_slot *sl = &slots[bench_rng_below(&rng, LARGE_SLOTS)];
    h = bench_check(sl->p, sl->size, sl->tag, h);
    free(sl->p);
    large_new(sl, &rng);
  }
  for (int i = 0; i < LARGE_SLOTS; i++) {
    h = bench_check(slots[i].p, slots[i].size, slots[i].tag, h);
    free(slots[i].p);
  }
  bench_result("large", LARGE_SLOTS + steps, h);
  return 0;
}
