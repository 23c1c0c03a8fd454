/*
 * aligned — aligned_alloc and posix_memalign with alignments from 32 B to 2 MiB.
 *
 * AL_SLOTS live blocks; each step frees a random slot's block and allocates a new one,
 * with posix_memalign or aligned_alloc (alternating at random), an alignment 2^k and a
 * size drawn independently:
 *   alignment  7 in 8 draws from 32 B..4 KiB (what SIMD data, cache-line padding and page
 *              buffers ask for), 1 in 8 from 8 KiB..2 MiB (huge-page and DMA buffers), each
 *              power of two equally likely within its range;
 *   size       log-uniform 16 B..64 KiB, so small blocks with large alignments occur (the
 *              case that wastes the most: a 100-byte block on a 2 MiB boundary).
 * An allocator serves small alignments from size classes whose blocks happen to be aligned,
 * or over-allocates and trims; the large ones need spans or mappings placed on the
 * boundary. This measures that path's cost and, through peak RSS, what it wastes.
 * Every block is checked for its alignment (exit 3 if wrong) besides the usual pattern.
 * ops counts allocation calls. Usage: aligned [SCALE]
 */
#include <stdint.h>

#include "common.h"

#define AL_SLOTS 2048u
#define AL_STEPS_FULL 300000ull /* replacements at full scale */
#define AL_SMALL_LOG_MIN 5u     /* 32 B */
#define AL_SMALL_LOG_MAX 12u    /* 4 KiB */
#define AL_LARGE_LOG_MAX 21u    /* 2 MiB */
#define AL_MIN_SIZE 16u
#define AL_MAX_SIZE (64u << 10)

typedef struct al_slot {
  void *p;
  size_t size;
  uint64_t tag;
} al_slot;

static size_t al_alignment(bench_rng *rng) {
  unsigned lo = AL_SMALL_LOG_MIN, hi = AL_SMALL_LOG_MAX;
  if (bench_rng_below(rng, 8) == 0) lo = AL_SMALL_LOG_MAX + 1, hi = AL_LARGE_LOG_MAX;
  return (size_t)1 << (lo + (unsigned)bench_rng_below(rng, hi - lo + 1));
}

static void al_new(al_slot *s, bench_rng *rng) {
  size_t align = al_alignment(rng);
  s->size = bench_size_log_uniform(rng, AL_MIN_SIZE, AL_MAX_SIZE);
  s->tag = bench_rng_next(rng);
  if (bench_rng_next(rng) & 1) {
    int err = posix_memalign(&s->p, align, s->size);
    if (err != 0) bench_die("posix_memalign failed");
  } else {
    /* C17 (DR 460) allows any size; glibc and every peer accept it. */
    s->p = aligned_alloc(align, s->size);
    if (s->p == NULL) bench_die("aligned_alloc returned NULL");
  }
  bench_escape(s->p);
  if ((uintptr_t)s->p & (align - 1)) {
    fprintf(stderr, "workload aligned: block %p of %zu bytes is not aligned to %zu\n", s->p,
            s->size, align);
    exit(3);
  }
  bench_fill(s->p, s->size, s->tag);
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("aligned", argc, argv, "[SCALE]");
  static al_slot slots[AL_SLOTS];
  bench_rng rng = bench_rng_seed(11);
  for (size_t i = 0; i < AL_SLOTS; i++) al_new(&slots[i], &rng);
  uint64_t h = 0, steps = bench_scaled(AL_STEPS_FULL, scale, 1);
  for (uint64_t s = 0; s < steps; s++) {
    al_slot *sl = &slots[bench_rng_below(&rng, AL_SLOTS)];
    h = bench_check(sl->p, sl->size, sl->tag, h);
    free(sl->p);
    al_new(sl, &rng);
  }
  for (size_t i = 0; i < AL_SLOTS; i++) {
    h = bench_check(slots[i].p, slots[i].size, slots[i].tag, h);
    free(slots[i].p);
  }
  bench_result("aligned", AL_SLOTS + steps, h);
  return 0;
}
