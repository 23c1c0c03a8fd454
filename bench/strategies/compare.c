/*
 * compare.c — every strategy on the same workloads: time, peak RSS and fragmentation.
 *
 * Owns: the strategy comparison of docs/strategies.md. For each round, workload and
 * strategy (interleaved: round r starts at strategy r, so drifts of a shared machine hit all
 * alike) it forks a child that sets STRATA_STRATEGY before its first st_* call, runs the
 * workload through st_malloc/st_free/st_realloc (the process dispatch, exactly what a
 * preloaded program gets) and reports its wall time and the peak of live requested bytes;
 * the parent takes the child's peak RSS from wait4. Fragmentation is
 * (peak RSS - RSS before the workload) / peak live requested bytes: 1.0 would be perfect.
 * Medians over the rounds go to a CSV and a markdown table; gnuplot draws the charts.
 * Workloads are deterministic (seeded), and each has a checksum every strategy must match.
 *   compare [--rounds N] [--scale S] [--out STEM]   (scale 100 = the documented size)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

#include "harness/harness.h"

enum { MAX_ROUNDS = 9, MAX_LIVE = 1 << 17 };

static unsigned scale = 100; /* percent of the documented size */
static size_t live_bytes, peak_live;
static uint64_t checksum;

/* ---- tracked allocation: the workloads' only way to allocate -------------------------- */

static void *take(size_t n) {
  unsigned char *p = st_malloc(n);
  if (p == NULL) {
    fprintf(stderr, "compare: out of memory for %zu bytes\n", n);
    exit(2);
  }
  for (size_t i = 0; i < n; i += 4096) p[i] = (unsigned char)n; /* make its pages resident */
  if (n) p[n - 1] = (unsigned char)n;
  live_bytes += n;
  if (live_bytes > peak_live) peak_live = live_bytes;
  return p;
}

static void give(void *p, size_t n) {
  if (p == NULL) return;
  unsigned char *b = p;
  checksum = checksum * 31 + (n ? b[n - 1] : 0) + n;
  live_bytes -= n;
  st_free(p);
}

static uint64_t rng_state;
static uint64_t rng(void) {
  rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}
static size_t ops(size_t full) { return full * scale / 100 + 1; }

/* ---- workloads ------------------------------------------------------------------------- */

static void *slot_ptr[MAX_LIVE];
static size_t slot_size[MAX_LIVE];

/* Random replacement in a pool of `live` slots with sizes from size_of(). */
static void churn(size_t live, size_t n, size_t (*size_of)(void)) {
  for (size_t i = 0; i < n; i++) {
    size_t k = rng() % live;
    give(slot_ptr[k], slot_size[k]);
    slot_size[k] = size_of();
    slot_ptr[k] = take(slot_size[k]);
  }
  for (size_t k = 0; k < live; k++) give(slot_ptr[k], slot_size[k]), slot_ptr[k] = NULL;
}

static size_t small_size(void) { return 16 + (rng() % 8 == 0 ? rng() % 1024 : rng() % 128); }
static size_t medium_size(void) { return 512 + rng() % (64 * 1024); }
static size_t pow2_plus_size(void) { return ((size_t)64 << rng() % 9) + 16; }

static void w_small(void) { churn(20000, ops(600000), small_size); }
static void w_medium(void) { churn(2000, ops(300000), medium_size); }

/* Buffers grown by realloc in steps, as string builders and vectors do. */
static void w_realloc(void) {
  for (size_t round = 0; round < ops(300); round++) {
    enum { N = 16 };
    void *b[N] = {0};
    size_t len[N] = {0};
    for (size_t step = 0; step < 600; step++) {
      size_t k = rng() % N, grow = len[k] + 16 + len[k] / 4;
      unsigned char *q = st_realloc(b[k], grow);
      if (q == NULL) exit(2);
      live_bytes += grow - len[k];
      if (live_bytes > peak_live) peak_live = live_bytes;
      q[grow - 1] = (unsigned char)grow;
      b[k] = q, len[k] = grow;
    }
    for (size_t k = 0; k < N; k++) give(b[k], len[k]);
  }
}

/* First-fit's classic loss: holes of 4096 and of 2200 bytes, the big ones freed last (so
 * newest first in the list); then pairs of a 2100- and a 4000-byte request. Best fit puts
 * each 2100 in a 2200-byte hole and each 4000 in a big one: no new memory. First fit cuts
 * a big hole for every 2100 (the 1984 bytes left fit neither request), so half of the 4000s
 * need new memory; worst fit cuts the largest block every time. */
static void w_fit_holes(void) {
  size_t n = ops(20000);
  if (n * 6 > MAX_LIVE) n = MAX_LIVE / 6;
  void **keep = slot_ptr, **big = slot_ptr + n, **mid = slot_ptr + 2 * n,
       **keep2 = slot_ptr + 3 * n;
  for (size_t i = 0; i < n; i++)
    big[i] = take(4096), keep[i] = take(16), mid[i] = take(2200), keep2[i] = take(16);
  for (size_t i = 0; i < n; i++) give(mid[i], 2200);
  for (size_t i = 0; i < n; i++) give(big[i], 4096);
  void **later = slot_ptr + 4 * n;
  for (size_t i = 0; i < n; i++) later[2 * i] = take(2100), later[2 * i + 1] = take(4000);
  for (size_t i = 0; i < n; i++) give(later[2 * i], 2100), give(later[2 * i + 1], 4000);
  for (size_t i = 0; i < n; i++) give(keep[i], 16), give(keep2[i], 16);
}

/* Buddy's classic loss: every size just above a power of two (2^k + 16). */
static void w_pow2_plus(void) { churn(4000, ops(300000), pow2_plus_size); }

/* Many small live blocks, then repeated larger requests: a search that walks every free
 * block (first-fit's list, the bitmap's granules) pays for all the small holes. */
static void w_scan(void) {
  size_t n = ops(30000);
  if (n > MAX_LIVE / 2) n = MAX_LIVE / 2;
  for (size_t i = 0; i < 2 * n; i++) slot_ptr[i] = take(48);
  for (size_t i = 0; i < 2 * n; i += 2) give(slot_ptr[i], 48), slot_ptr[i] = NULL;
  for (size_t i = 0; i < n / 4; i++) {
    void *p = take(2000);
    give(p, 2000);
  }
  for (size_t i = 1; i < 2 * n; i += 2) give(slot_ptr[i], 48);
}

static const struct {
  const char *name, *why;
  void (*run)(void);
} workloads[] = {
    {"small", "random replacement, 20k live blocks of 16..1040 B", w_small},
    {"medium", "random replacement, 2k live blocks of 0.5..64 KiB", w_medium},
    {"realloc", "16 buffers grown by 25% steps with realloc", w_realloc},
    {"fit-holes",
     "worst case of first/next/worst fit: 2100 B and 4000 B into 2200 B and 4096 B holes",
     w_fit_holes},
    {"pow2-plus", "worst case of buddy: sizes 2^k + 16", w_pow2_plus},
    {"scan", "worst case of list and bitmap scans: 2000 B among small holes", w_scan},
};
enum { NW = sizeof workloads / sizeof workloads[0] };

/* ---- one run in a child ------------------------------------------------------------------ */

typedef struct result {
  double seconds;
  double rss_mib;
  double frag;
  uint64_t checksum;
  int ok;
} result;

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  if (f) fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static result run_child(int w, int s) {
  result r = {0};
  int fds[2];
  if (pipe(fds) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    setenv("STRATA_STRATEGY", st_strategy_name((st_strategy)s), 1);
    st_free(st_malloc(1)); /* the strategy is decided here, before the baseline */
    rng_state = 0x9e3779b97f4a7c15ull;
    long base = rss_kib();
    double t0 = now();
    workloads[w].run();
    double t1 = now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double footprint = ((double)ru.ru_maxrss - (double)base) * 1024.0;
    if (footprint < 0) footprint = 0;
    result out = {t1 - t0, 0, footprint / (double)(peak_live ? peak_live : 1), checksum, 1};
    if (write(fds[1], &out, sizeof out) != sizeof out) _exit(3);
    _exit(0);
  }
  close(fds[1]);
  ssize_t got = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int status = 0;
  struct rusage ru;
  wait4(pid, &status, 0, &ru);
  r.ok = got == sizeof r && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  r.rss_mib = (double)ru.ru_maxrss / 1024.0;
  return r;
}

/* ---- medians, tables, charts -------------------------------------------------------------- */


static void write_charts(const char *stem, double values[NW][ST_STRATEGY_COUNT][3]) {
  static const char *const what[3] = {"time", "rss", "frag"};
  for (int m = 0; m < 3; m++) {
    char path[512];
    snprintf(path, sizeof path, "%s-%s.dat", stem, what[m]);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "workload");
    for (int s = 0; s < ST_STRATEGY_COUNT; s++) fprintf(f, " %s", st_strategy_name((st_strategy)s));
    fprintf(f, "\n");
    for (int w = 0; w < NW; w++) {
      fprintf(f, "%s", workloads[w].name);
      for (int s = 0; s < ST_STRATEGY_COUNT; s++) fprintf(f, " %.4f", values[w][s][m]);
      fprintf(f, "\n");
    }
    fclose(f);
  }
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
    printf("compare: gnuplot not installed; charts skipped (sudo apt-get install gnuplot-nox)\n");
    return;
  }
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "gnuplot -e \"stem='%s'; n=%d\" %s", stem, ST_STRATEGY_COUNT,
           BENCH_STRATEGY_PLOT);
  if (system(cmd) != 0) fprintf(stderr, "compare: gnuplot failed\n");
  for (int m = 0; m < 3; m++) {
    char path[512];
    snprintf(path, sizeof path, "%s-%s.dat", stem, what[m]);
    remove(path);
  }
}

static int rounds = 3;
static double med[NW][ST_STRATEGY_COUNT][3]; /* [workload][strategy][time, rss, frag] */

/* Runs every round and fills med; returns 1 when a run failed or disagreed. */
static int run_rounds(void) {
  static double v[NW][ST_STRATEGY_COUNT][3][MAX_ROUNDS];
  uint64_t sums[NW] = {0};
  int failed = 0;
  for (int r = 0; r < rounds; r++)
    for (int w = 0; w < NW; w++)
      for (int i = 0; i < ST_STRATEGY_COUNT; i++) {
        int s = (i + r) % ST_STRATEGY_COUNT; /* round r starts one strategy later */
        result x = run_child(w, s);
        if (!x.ok || (sums[w] && x.checksum != sums[w])) {
          fprintf(stderr, "compare: %s under %s failed or disagreed\n", workloads[w].name,
                  st_strategy_name((st_strategy)s));
          failed = 1;
        }
        sums[w] = x.checksum;
        v[w][s][0][r] = x.seconds, v[w][s][1][r] = x.rss_mib, v[w][s][2][r] = x.frag;
      }
  for (int w = 0; w < NW; w++)
    for (int s = 0; s < ST_STRATEGY_COUNT; s++)
      for (int m = 0; m < 3; m++) med[w][s][m] = harness_median(v[w][s][m], rounds);
  return failed;
}

/* The markdown table to md and, when csv is not NULL, one CSV row per cell. */
static void write_tables(FILE *md, FILE *csv) {
  if (csv)
    fprintf(csv, "workload,strategy,median_seconds,median_peak_rss_mib,median_fragmentation,"
                 "rounds,scale\n");
  fprintf(md,
          "Medians of %d interleaved rounds at scale %u%%. time s / peak RSS MiB / "
          "fragmentation (peak RSS growth / peak live requested bytes).\n\n| workload |",
          rounds, scale);
  for (int s = 0; s < ST_STRATEGY_COUNT; s++)
    fprintf(md, " %s |", st_strategy_name((st_strategy)s));
  fprintf(md, "\n|---|");
  for (int s = 0; s < ST_STRATEGY_COUNT; s++) fprintf(md, "---|");
  fprintf(md, "\n");
  for (int w = 0; w < NW; w++) {
    fprintf(md, "| %s |", workloads[w].name);
    for (int s = 0; s < ST_STRATEGY_COUNT; s++) {
      fprintf(md, " %.3f / %.1f / %.2f |", med[w][s][0], med[w][s][1], med[w][s][2]);
      if (csv)
        fprintf(csv, "%s,%s,%.4f,%.2f,%.3f,%d,%u\n", workloads[w].name,
                st_strategy_name((st_strategy)s), med[w][s][0], med[w][s][1], med[w][s][2], rounds,
                scale);
    }
    fprintf(md, "\n");
  }
  fprintf(md, "\nWorkloads:\n\n");
  for (int w = 0; w < NW; w++) fprintf(md, "- `%s`: %s\n", workloads[w].name, workloads[w].why);
}

int main(int argc, char **argv) {
  const char *stem = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--rounds"))
      rounds = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--scale"))
      scale = (unsigned)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--out"))
      stem = argv[i + 1];
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || scale < 1) {
    fprintf(stderr, "usage: compare [--rounds 1..%d] [--scale S] [--out STEM]\n", MAX_ROUNDS);
    return 64;
  }
  int failed = run_rounds();
  if (stem == NULL) {
    write_tables(stdout, NULL);
    return failed;
  }
  char csv_path[512], md_path[512];
  snprintf(csv_path, sizeof csv_path, "%s.csv", stem);
  snprintf(md_path, sizeof md_path, "%s.md", stem);
  FILE *csv = fopen(csv_path, "w"), *md = fopen(md_path, "w");
  if (!csv || !md) {
    fprintf(stderr, "compare: cannot write %s or %s\n", csv_path, md_path);
    return 1;
  }
  write_tables(md, csv);
  fclose(csv);
  fclose(md);
  printf("compare: wrote %s and %s\n", csv_path, md_path);
  write_charts(stem, med);
  return failed;
}
