/*
 * pool — the three patterns of a classic pool-allocator comparison, 100,000 malloc/free
 * pairs per repetition, on plain malloc/free.
 *
 *   seq          allocate 100,000 blocks of 64 B, then free them all in allocation order:
 *                the bulk refill and bulk drain of one size class's free lists;
 *   random       the same with sizes log-uniform in 16 B..1 KiB (~24 MB live at the top):
 *                the size-to-class lookup and many classes filling and draining at once;
 *   interleaved  100,000 mallocs of 64 B, each into a random slot of a 4,096-slot table
 *                whose previous block is freed first (the rest are freed at the end): frees
 *                in an order unrelated to allocation, so free lists are scrambled and the
 *                allocator's reuse order, not a bump pointer, decides the cost.
 *
 * Besides the line the runner compares, the program reports the rates a pool comparison
 * quotes, timed inside the process with CLOCK_MONOTONIC over the repetitions only (process
 * start and the allocator's load excluded): pairs_per_s, and ops_per_s which counts every
 * malloc and every free as one operation (twice pairs_per_s).
 * ops counts malloc calls (= pairs). Usage: pool [SCALE [seq|random|interleaved]]
 */
#include "common.h"

#define POOL_PAIRS 100000u  /* malloc/free pairs per repetition, as the classic comparison */
#define POOL_FIXED_SIZE 64u /* the object size of seq and interleaved */
#define POOL_MIN_SIZE 16u   /* random: log-uniform in [POOL_MIN_SIZE, POOL_MAX_SIZE] */
#define POOL_MAX_SIZE 1024u
#define POOL_TABLE 4096u /* interleaved: live slots, a power of two */

/* Repetitions at full scale, per pattern (seq, random, interleaved), each about a second
 * under the faster allocators on the 2-core development machine. random is the costly
 * one: 24 MB are allocated and freed per repetition, and an allocator that gives the
 * freed pages back to the kernel faults them in again in the next one. */
static const uint64_t pool_reps_full[] = {200, 20, 200};

typedef struct pool_block {
  void *p;
  size_t size;
  uint64_t tag;
} pool_block;

static pool_block pool_blocks[POOL_PAIRS]; /* seq, random: the blocks of one repetition */

static void pool_new(pool_block *b, size_t size, bench_rng *rng) {
  b->size = size;
  b->tag = bench_rng_next(rng);
  b->p = bench_malloc(size);
  bench_fill(b->p, size, b->tag);
}

/* seq and random: allocate a whole repetition, then free it in allocation order. */
static uint64_t pool_bulk(int random_sizes, bench_rng *rng, uint64_t h) {
  for (size_t i = 0; i < POOL_PAIRS; i++) {
    size_t size =
        random_sizes ? bench_size_log_uniform(rng, POOL_MIN_SIZE, POOL_MAX_SIZE) : POOL_FIXED_SIZE;
    pool_new(&pool_blocks[i], size, rng);
  }
  for (size_t i = 0; i < POOL_PAIRS; i++) {
    pool_block *b = &pool_blocks[i];
    h = bench_check(b->p, b->size, b->tag, h);
    free(b->p);
  }
  return h;
}

/* interleaved: every malloc lands in a random slot, freeing the block that was there. */
static uint64_t pool_interleaved(bench_rng *rng, uint64_t h) {
  static pool_block table[POOL_TABLE];
  for (size_t i = 0; i < POOL_PAIRS; i++) {
    pool_block *b = &table[bench_rng_below(rng, POOL_TABLE)];
    if (b->p != NULL) {
      h = bench_check(b->p, b->size, b->tag, h);
      free(b->p);
    }
    pool_new(b, POOL_FIXED_SIZE, rng);
  }
  for (size_t i = 0; i < POOL_TABLE; i++) {
    pool_block *b = &table[i];
    if (b->p == NULL) continue;
    h = bench_check(b->p, b->size, b->tag, h);
    free(b->p);
    b->p = NULL;
  }
  return h;
}

int main(int argc, char **argv) {
  const char *usage = "[SCALE [seq|random|interleaved]]";
  unsigned long scale = bench_start("pool", argc, argv, usage);
  const char *pattern = argc > 2 ? argv[2] : "seq";
  int mode = strcmp(pattern, "seq") == 0           ? 0
             : strcmp(pattern, "random") == 0      ? 1
             : strcmp(pattern, "interleaved") == 0 ? 2
                                                   : -1;
  if (mode < 0) {
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return 64;
  }
  char name[32];
  snprintf(name, sizeof name, "pool-%s", pattern);
  bench_name = name;

  bench_rng rng = bench_rng_seed(7 + (uint64_t)mode);
  uint64_t reps = bench_scaled(pool_reps_full[mode], scale, 1), h = (uint64_t)mode;
  double t0 = bench_now();
  for (uint64_t r = 0; r < reps; r++)
    h = mode == 2 ? pool_interleaved(&rng, h) : pool_bulk(mode == 1, &rng, h);
  double secs = bench_now() - t0;

  uint64_t pairs = reps * POOL_PAIRS;
  char measured[96];
  snprintf(measured, sizeof measured, "pairs_per_s=%.0f ops_per_s=%.0f", (double)pairs / secs,
           2.0 * (double)pairs / secs);
  bench_result_measured(name, pairs, h, measured);
  return 0;
}
