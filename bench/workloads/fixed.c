/*
 * fixed — malloc/free of a few fixed sizes, the small-object fast path in isolation.
 *
 * For each size (16, 32, 64, 256, 1024 bytes):
 *   tight: malloc, write, read, free, repeated: one block in flight, so a good allocator
 *          hands the same block back every time (thread cache push/pop only);
 *   batch: 1000 mallocs, then 1000 frees, alternating FIFO and LIFO free order, so the
 *          free lists fill and drain and the allocator must refill from its pages.
 * ops counts malloc calls. Usage: fixed [SCALE]
 */
#include "common.h"

#define FIXED_BATCH 1000
#define FIXED_TIGHT_FULL 5000000ull /* tight-loop pairs per size at full scale */
#define FIXED_BATCHES_FULL 5000ull  /* batches of FIXED_BATCH per size at full scale */

static const size_t fixed_sizes[] = {16, 32, 64, 256, 1024};

static uint64_t fixed_tight(size_t size, uint64_t n, bench_rng *rng, uint64_t h) {
  for (uint64_t i = 0; i < n; i++) {
    uint64_t tag = bench_rng_next(rng);
    void *p = bench_malloc(size);
    bench_fill(p, size, tag);
    bench_escape(p);
    h = bench_check(p, size, tag, h);
    free(p);
  }
  return h;
}

static uint64_t fixed_batches(size_t size, uint64_t n, bench_rng *rng, uint64_t h) {
  static void *blocks[FIXED_BATCH];
  static uint64_t tags[FIXED_BATCH];
  for (uint64_t b = 0; b < n; b++) {
    for (size_t i = 0; i < FIXED_BATCH; i++) {
      tags[i] = bench_rng_next(rng);
      blocks[i] = bench_malloc(size);
      bench_fill(blocks[i], size, tags[i]);
    }
    int lifo = (int)(b & 1);
    for (size_t k = 0; k < FIXED_BATCH; k++) {
      size_t i = lifo ? FIXED_BATCH - 1 - k : k;
      h = bench_check(blocks[i], size, tags[i], h);
      free(blocks[i]);
    }
  }
  return h;
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("fixed", argc, argv, "[SCALE]");
  bench_rng rng = bench_rng_seed(1);
  uint64_t h = 0, ops = 0;
  for (size_t s = 0; s < sizeof fixed_sizes / sizeof fixed_sizes[0]; s++) {
    uint64_t tight = bench_scaled(FIXED_TIGHT_FULL, scale, 1);
    uint64_t batches = bench_scaled(FIXED_BATCHES_FULL, scale, 1);
    h = fixed_tight(fixed_sizes[s], tight, &rng, h);
    h = fixed_batches(fixed_sizes[s], batches, &rng, h);
    ops += tight + batches * FIXED_BATCH;
  }
  bench_result("fixed", ops, h);
  return 0;
}
