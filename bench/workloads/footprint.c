/*
 * footprint — does resident memory follow the program's live memory? Four programs, each
 * printing its RSS at the moments that answer that question.
 *
 *   footprint SCALE small       20 M blocks of 16..64 B (a linked list through the blocks,
 *                               so the program itself holds nothing else), all freed in
 *                               allocation order; RSS read at once and after the program
 *                               sleeps 1 s without calling the allocator.
 *   footprint SCALE huge        a 256 MiB block written and freed, twice; RSS read at once
 *                               after each free.
 *   footprint SCALE growshrink  six cycles: grow to 256 MiB of 16 B..16 KiB blocks, then free
 *                               a random 90% of them and sleep 300 ms; RSS read then.
 *   footprint SCALE mixed       a long-running program: 2 M steps of replacing a random
 *                               block of a working set whose target size moves through
 *                               phases (16..192 MiB); RSS and live bytes sampled every
 *                               4096 steps.
 * Sleeps are the same for every allocator and scale with SCALE (a smoke test waits 1%); the
 * wall time of small and growshrink is then mostly sleeping, so the runner leaves those two
 * out of its time comparisons (bench_workload.sleeps) and compares their resident memory.
 * Measured fields (KiB; live figures are deterministic): start (RSS before the work),
 * live_peak, rss_peak (VmHWM), and per mode: small: rss_freed, rss_1s; huge: rss_freed (the
 * most over the two frees); growshrink: live_trough, rss_trough (the most RSS after a
 * shrink); mixed: live_mean, rss_mean (means over the samples).
 */
#include <stdbool.h>

#include "common.h"

#define MiB ((uint64_t)1 << 20)

typedef struct footprint {
  unsigned long scale;
  long start_kib;
  uint64_t live, live_peak; /* requested bytes not yet freed, and their maximum */
  uint64_t ops;             /* malloc calls */
  uint64_t h;               /* checksum */
} footprint;

static long rss_kib(void) { return bench_status_kib("VmRSS"); }

static void *fp_alloc(footprint *f, size_t size, uint64_t tag) {
  void *p = bench_malloc(size);
  bench_fill(p, size, tag);
  f->ops++;
  f->live += size;
  if (f->live > f->live_peak) f->live_peak = f->live;
  return p;
}

static void fp_free(footprint *f, void *p, size_t size, uint64_t tag) {
  f->h = bench_check(p, size, tag, f->h);
  free(p);
  f->live -= size;
}

static void fp_sleep(const footprint *f, long full_ms) {
  long ms = full_ms * (long)(f->scale < 100 ? f->scale : 100) / 100;
  bench_sleep_ms(ms > 0 ? ms : 1);
}

/* The list node at the start of every small block; the tag follows the 8 bytes of `next`
 * so that bench_fill's first word does not overwrite the link. */
typedef struct small_block {
  struct small_block *next;
  uint64_t size;
} small_block;

static void run_small(footprint *f, char *out, size_t outlen) {
  uint64_t n = bench_scaled(20000000, f->scale, 20000);
  bench_rng rng = bench_rng_seed(21);
  small_block *head = NULL, **tail = &head;
  for (uint64_t i = 0; i < n; i++) {
    size_t size = 16 + (size_t)bench_rng_below(&rng, 49);
    small_block *b = bench_malloc(size);
    b->next = NULL;
    b->size = size;
    memset((char *)b + 16, (int)(size & 0xff), size - 16);
    f->ops++;
    f->live += size;
    *tail = b;
    tail = &b->next;
  }
  f->live_peak = f->live;
  for (small_block *b = head, *next; b != NULL; b = next) {
    next = b->next;
    f->h = bench_mix(f->h, b->size + ((const unsigned char *)b)[b->size - 1]);
    f->live -= b->size;
    free(b);
  }
  long freed = rss_kib();
  fp_sleep(f, 1000);
  snprintf(out, outlen, "rss_freed_kib=%ld rss_1s_kib=%ld", freed, rss_kib());
}

static void run_huge(footprint *f, char *out, size_t outlen) {
  size_t size = (size_t)bench_scaled(256 * MiB, f->scale, 4 * MiB);
  long worst = 0;
  for (unsigned round = 0; round < 2; round++) {
    void *p = fp_alloc(f, size, round + 1);
    fp_free(f, p, size, round + 1);
    long rss = rss_kib();
    if (rss > worst) worst = rss;
  }
  snprintf(out, outlen, "rss_freed_kib=%ld", worst);
}

typedef struct sized {
  void *p;
  size_t size;
  uint64_t tag;
} sized;

/* The block array comes from the allocator under test like any program's arrays: its
 * bytes count as live. */
static sized *grow_array(footprint *f, sized *a, size_t *cap, size_t need) {
  if (need <= *cap) return a;
  size_t cap2 = *cap ? *cap * 2 : 4096;
  while (cap2 < need) cap2 *= 2;
  a = realloc(a, cap2 * sizeof *a);
  if (a == NULL) bench_die("realloc of the block array failed");
  f->live += (cap2 - *cap) * sizeof *a;
  *cap = cap2;
  return a;
}

static void run_growshrink(footprint *f, char *out, size_t outlen) {
  uint64_t target = bench_scaled(256 * MiB, f->scale, 4 * MiB);
  bench_rng rng = bench_rng_seed(22);
  sized *a = NULL;
  size_t n = 0, cap = 0;
  uint64_t live_trough = 0;
  long rss_trough = 0;
  for (unsigned cycle = 0; cycle < 6; cycle++) {
    while (f->live < target) {
      a = grow_array(f, a, &cap, n + 1);
      size_t size = bench_size_log_uniform(&rng, 16, 16384);
      uint64_t tag = bench_rng_next(&rng);
      a[n++] = (sized){fp_alloc(f, size, tag), size, tag};
    }
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
      if (bench_rng_below(&rng, 10) != 0)
        fp_free(f, a[i].p, a[i].size, a[i].tag);
      else
        a[keep++] = a[i];
    }
    n = keep;
    fp_sleep(f, 300);
    long rss = rss_kib();
    if (rss > rss_trough) rss_trough = rss;
    if (f->live > live_trough) live_trough = f->live;
  }
  for (size_t i = 0; i < n; i++) fp_free(f, a[i].p, a[i].size, a[i].tag);
  free(a);
  snprintf(out, outlen, "live_trough_kib=%llu rss_trough_kib=%ld",
           (unsigned long long)(live_trough >> 10), rss_trough);
}

/* The working-set targets of the phases of `mixed`, in MiB. */
static const unsigned mixed_phase_mib[] = {16, 128, 32, 192, 8, 96, 16, 160};

static void run_mixed(footprint *f, char *out, size_t outlen) {
  uint64_t steps = bench_scaled(2000000, f->scale, 20000);
  uint64_t per_phase = steps / (sizeof mixed_phase_mib / sizeof mixed_phase_mib[0]);
  bench_rng rng = bench_rng_seed(23);
  sized *a = NULL;
  size_t n = 0, cap = 0;
  double live_sum = 0, rss_sum = 0;
  unsigned samples = 0;
  for (uint64_t step = 0; step < steps; step++) {
    uint64_t phase = step / per_phase % (sizeof mixed_phase_mib / sizeof mixed_phase_mib[0]);
    uint64_t target = mixed_phase_mib[phase] * MiB * (f->scale < 100 ? f->scale : 100) / 100;
    /* Below the target a step adds a block, above it removes one, and near it replaces. */
    bool add = f->live < target, remove = f->live > target + target / 8;
    if (!add && n > 0) {
      size_t i = (size_t)bench_rng_below(&rng, n);
      fp_free(f, a[i].p, a[i].size, a[i].tag);
      a[i] = a[--n];
    }
    if (!remove) {
      a = grow_array(f, a, &cap, n + 1);
      size_t size = bench_size_log_uniform(&rng, 8, 65536);
      uint64_t tag = bench_rng_next(&rng);
      a[n++] = (sized){fp_alloc(f, size, tag), size, tag};
    }
    if (step % 4096 == 0) {
      live_sum += (double)f->live;
      rss_sum += (double)rss_kib() * 1024;
      samples++;
    }
  }
  for (size_t i = 0; i < n; i++) fp_free(f, a[i].p, a[i].size, a[i].tag);
  free(a);
  snprintf(out, outlen, "live_mean_kib=%.0f rss_mean_kib=%.0f", live_sum / samples / 1024,
           rss_sum / samples / 1024);
}

int main(int argc, char **argv) {
  static const char usage[] = "SCALE small|huge|growshrink|mixed";
  footprint f = {.scale = bench_start("footprint", argc, argv, usage)};
  if (argc != 3) {
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return 64;
  }
  static const struct {
    const char *name;
    void (*run)(footprint *, char *, size_t);
  } modes[] = {{"small", run_small}, {"huge", run_huge}, {"growshrink", run_growshrink},
               {"mixed", run_mixed}};
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    if (strcmp(argv[2], modes[m].name) != 0) continue;
    char name[64], mode_fields[128], fields[224];
    snprintf(name, sizeof name, "footprint-%s", modes[m].name);
    bench_name = name;
    free(bench_malloc(64)); /* the allocator's own start-up is part of the baseline */
    f.start_kib = rss_kib();
    modes[m].run(&f, mode_fields, sizeof mode_fields);
    snprintf(fields, sizeof fields, "start_kib=%ld live_peak_kib=%llu rss_peak_kib=%ld %s",
             f.start_kib, (unsigned long long)(f.live_peak >> 10), bench_status_kib("VmHWM"),
             mode_fields);
    bench_result_measured(name, f.ops, f.h, fields);
    return 0;
  }
  fprintf(stderr, "usage: %s %s\n", argv[0], usage);
  return 64;
}
