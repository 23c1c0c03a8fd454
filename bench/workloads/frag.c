/*
 * frag — a fragmenting program: many small blocks, a random 90% freed, then larger blocks
 * that cannot reuse the holes, phase after phase; reports resident memory against the live
 * bytes it tracks itself.
 *
 * Each of FRAG_PHASES phases:
 *   1. allocate FRAG_SMALL blocks of 16 B..2 KiB (log-uniform; ~42 MB);
 *   2. free a random 90% of them: the survivors stay to the end, scattered over every page
 *      the phase used, so no page of small blocks becomes empty again;
 *   3. allocate FRAG_LARGE blocks of 4..64 KiB (~22 MB), too large for the holes;
 *   4. free a random half of all live large blocks.
 * A size-class allocator can refill the small holes in the next phase but never turn them
 * into large blocks; a coalescing one can, when holes are adjacent. So resident memory
 * minus live bytes is the fragmentation each design leaves, and whether it keeps growing
 * phase after phase is the question.
 * Measured fields (after the checksum, never compared): live_peak_kib (the most live bytes
 * at any time, requested sizes), rss_peak_kib (VmHWM: this process's resident high-water
 * mark, program and libraries included, ~1-2 MiB), rss_final_kib (VmRSS after the last
 * phase) and live_final_kib (live bytes then). The live figures are deterministic too.
 * Then everything is verified and freed for the checksum. ops counts malloc calls.
 * Usage: frag [SCALE]
 */
#include "common.h"

#define FRAG_PHASES 6u
#define FRAG_SMALL_FULL 100000ull /* small blocks per phase at full scale */
#define FRAG_LARGE_FULL 1000ull   /* large blocks per phase at full scale */
#define FRAG_SMALL_MIN 16u
#define FRAG_SMALL_MAX 2048u
#define FRAG_LARGE_MIN (4u << 10)
#define FRAG_LARGE_MAX (64u << 10)

typedef struct frag_block {
  void *p;
  size_t size;
  uint64_t tag;
} frag_block;

/* A growable array of live blocks. It comes from the allocator under test like any
 * program's arrays, so its capacity counts as live bytes too (a few MB). */
typedef struct frag_set {
  frag_block *b;
  size_t n, cap;
} frag_set;

static uint64_t frag_live;      /* bytes requested and not yet freed, lists included */
static uint64_t frag_live_peak; /* the most frag_live has been */

static void frag_push(frag_set *s, size_t size, bench_rng *rng) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    s->b = realloc(s->b, cap * sizeof *s->b);
    if (s->b == NULL) bench_die("realloc of a block list failed");
    frag_live += (cap - s->cap) * sizeof *s->b;
    s->cap = cap;
  }
  frag_block *b = &s->b[s->n++];
  b->size = size;
  b->tag = bench_rng_next(rng);
  b->p = bench_malloc(size);
  bench_fill(b->p, size, b->tag);
  frag_live += size;
  if (frag_live > frag_live_peak) frag_live_peak = frag_live;
}

/* Frees each block of s[from..] with probability num/den (verifying it), compacting the
 * survivors in order. */
static uint64_t frag_thin(frag_set *s, size_t from, unsigned num, unsigned den, bench_rng *rng,
                          uint64_t h) {
  size_t keep = from;
  for (size_t i = from; i < s->n; i++) {
    frag_block *b = &s->b[i];
    if (bench_rng_below(rng, den) < num) {
      h = bench_check(b->p, b->size, b->tag, h);
      free(b->p);
      frag_live -= b->size;
    } else
      s->b[keep++] = *b;
  }
  s->n = keep;
  return h;
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("frag", argc, argv, "[SCALE]");
  bench_rng rng = bench_rng_seed(13);
  uint64_t nsmall = bench_scaled(FRAG_SMALL_FULL, scale, 2000);
  uint64_t nlarge = bench_scaled(FRAG_LARGE_FULL, scale, 20);
  frag_set small = {0}, large = {0};
  uint64_t h = 0;
  for (unsigned phase = 0; phase < FRAG_PHASES; phase++) {
    size_t first = small.n;
    for (uint64_t i = 0; i < nsmall; i++)
      frag_push(&small, bench_size_log_uniform(&rng, FRAG_SMALL_MIN, FRAG_SMALL_MAX), &rng);
    h = frag_thin(&small, first, 9, 10, &rng, h);
    for (uint64_t i = 0; i < nlarge; i++)
      frag_push(&large, bench_size_log_uniform(&rng, FRAG_LARGE_MIN, FRAG_LARGE_MAX), &rng);
    h = frag_thin(&large, 0, 1, 2, &rng, h);
  }
  long rss_final = bench_status_kib("VmRSS"), rss_peak = bench_status_kib("VmHWM");
  uint64_t live_final = frag_live;
  h = bench_mix(bench_mix(h, frag_live_peak), live_final);
  h = frag_thin(&small, 0, 1, 1, &rng, h);
  h = frag_thin(&large, 0, 1, 1, &rng, h);
  free(small.b);
  free(large.b);

  char measured[160];
  snprintf(measured, sizeof measured,
           "live_peak_kib=%llu rss_peak_kib=%ld rss_final_kib=%ld live_final_kib=%llu",
           (unsigned long long)(frag_live_peak >> 10), rss_peak, rss_final,
           (unsigned long long)(live_final >> 10));
  bench_result_measured("frag", FRAG_PHASES * (nsmall + nlarge), h, measured);
  return 0;
}
