/*
 * report.c — turns the runs of one comparison into what people read: a table per
 * workload, the measured fields the workloads print themselves, the summary (geometric
 * means, the fastest allocator of each workload, peak RSS against the smallest peer),
 * strata's tuning targets with a PASS/MISS line each, and the same as a markdown file
 * (bench-<date>.md beside the CSV) that docs can quote.
 * Does not own: running anything or the CSV (runner.c), the charts (charts.c).
 * Statistics: medians over the good runs of each workload and allocator (min and max shown
 * beside them); ratios are of medians; geometric means over the workloads where both sides
 * of a ratio had good runs, so a failed workload drops out and the count says so.
 * Reads the global state `st` only.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "runner.h"

/* The tuning targets of strata (see docs/benchmarks.md): ratios strata/peer, met when at
 * or below the limit. */
#define TARGET_VS_MIMALLOC 0.90
#define TARGET_VS_GLIBC 0.70
#define TARGET_VS_FASTEST 1.25
#define TARGET_RSS 1.00
#define MAX_KEYS 8
#define MAX_TARGETS 4

/* ---- Statistics -------------------------------------------------------------------- */


bench_stats stats_of(int w, int a) {
  double t[MAX_ROUNDS], rss[MAX_ROUNDS];
  bench_stats s = {0, 0, 0, 0, 0};
  for (int r = 0; r < st.rounds; r++) {
    const bench_run *run = &st.runs[w][a][r];
    if (run->status != RUN_OK) continue;
    t[s.ok] = run->wall_s;
    rss[s.ok++] = (double)run->maxrss_kib / 1024.0;
  }
  if (s.ok == 0) return s;
  s.median_s = harness_median(t, s.ok);
  s.min_s = t[0];
  s.max_s = t[s.ok - 1];
  s.rss_mib = harness_median(rss, s.ok);
  return s;
}

/* strata when it was measured, else glibc, else the first allocator. */
int baseline(void) {
  int b = find_alloc("strata");
  if (b < 0) b = find_alloc("glibc");
  return b < 0 ? 0 : b;
}

/* Whether `make bench` should fail: a strata run failed or mismatched (or, with strata not
 * measured, any run did). Peers' failures are reported but are the peers' business. */
int report_strata_failed(void) {
  int s = find_alloc("strata");
  for (int w = 0; w < st.nworkloads; w++)
    for (int a = 0; a < st.nallocs; a++)
      for (int r = 0; r < st.rounds; r++) {
        run_status x = st.runs[w][a][r].status;
        if (x != RUN_OK && x != RUN_NONE && (s < 0 || a == s)) return 1;
      }
  return 0;
}

/* ---- Measured fields ----------------------------------------------------------------- */

/* The keys of a workload's measured fields, from its first good run; returns how many. */
static int measured_keys(int w, char keys[][NAME_LEN]) {
  for (int a = 0; a < st.nallocs; a++)
    for (int r = 0; r < st.rounds; r++) {
      if (st.runs[w][a][r].status != RUN_OK) continue;
      int n = 0;
      for (const char *p = result_measured(st.runs[w][a][r].line); *p != '\0' && n < MAX_KEYS;) {
        size_t len = strcspn(p, "=");
        snprintf(keys[n++], NAME_LEN, "%.*s", (int)len, p);
        p += strcspn(p, " ");
        p += *p == ' ';
      }
      return n;
    }
  return 0;
}

/* The median of one measured field over the good runs; 0 when no run has it. */
static int measured_median(int w, int a, const char *key, double *out) {
  double v[MAX_ROUNDS];
  int n = 0;
  size_t klen = strlen(key);
  for (int r = 0; r < st.rounds; r++) {
    if (st.runs[w][a][r].status != RUN_OK) continue;
    for (const char *p = result_measured(st.runs[w][a][r].line); *p != '\0';) {
      if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
        v[n++] = strtod(p + klen + 1, NULL);
        break;
      }
      p += strcspn(p, " ");
      p += *p == ' ';
    }
  }
  if (n == 0) return 0;
  *out = harness_median(v, n);
  return 1;
}

/* Integers as integers, large values without decimals, small ones with three. */
static const char *fmt_value(double v, char *buf, size_t size) {
  if (v == floor(v) || fabs(v) >= 100)
    snprintf(buf, size, "%.0f", v);
  else
    snprintf(buf, size, "%.3f", v);
  return buf;
}

/* ---- Summary and targets ------------------------------------------------------------- */

typedef struct summary {
  int base;                     /* the allocator ratios divide by */
  int strata;                   /* strata's index, or -1 when not measured */
  double geo_time[MAX_ALLOCS];  /* geometric mean of allocator/base, median time */
  double geo_rss[MAX_ALLOCS];   /* the same for median peak RSS */
  int geo_n_time[MAX_ALLOCS];   /* workloads in geo_time (those that do not sleep) */
  int geo_n[MAX_ALLOCS];        /* workloads in geo_rss */
  int fastest[MAX_WORKLOADS];   /* lowest median time, -1 when no good run */
  int best_peer[MAX_WORKLOADS]; /* the same among the allocators other than strata */
  int smallest_peer;            /* the peer with the lowest geo_rss, or -1 */
  double rss_vs_min_each;       /* geometric mean of strata / smallest peer per workload */
  int rss_vs_min_each_n;
} summary;

typedef struct target {
  char what[96];
  double value, limit;
  int known;        /* 0: cannot be told (strata or the peer not measured) */
  char detail[160]; /* what the value was computed over */
} target;

/* A peer is an allocator other than strata in any of its modes (strata-hardened is strata). */
static bool is_peer(int a) { return strncmp(st.allocs[a].name, "strata", 6) != 0; }

/* The allocator with the shortest median time on workload w, among the peers only when
 * peers_only; -1 when none ran. */
static int fastest_of(int w, bool peers_only) {
  int best = -1;
  double t = 0;
  for (int a = 0; a < st.nallocs; a++) {
    if (peers_only && !is_peer(a)) continue;
    bench_stats s = stats_of(w, a);
    if (s.ok > 0 && (best < 0 || s.median_s < t)) best = a, t = s.median_s;
  }
  return best;
}

static summary summarize(void) {
  summary s;
  memset(&s, 0, sizeof s);
  s.base = baseline();
  s.strata = find_alloc("strata");
  s.smallest_peer = -1;
  for (int a = 0; a < st.nallocs; a++) {
    double lt = 0, lr = 0;
    for (int w = 0; w < st.nworkloads; w++) {
      bench_stats x = stats_of(w, a), b = stats_of(w, s.base);
      if (x.ok == 0 || b.ok == 0) continue; /* no ratio; the count shows it */
      if (!st.workloads[w].sleeps) {
        lt += log(x.median_s / b.median_s);
        s.geo_n_time[a]++;
      }
      lr += log(x.rss_mib / b.rss_mib);
      s.geo_n[a]++;
    }
    s.geo_time[a] = s.geo_n_time[a] ? exp(lt / s.geo_n_time[a]) : NAN;
    s.geo_rss[a] = s.geo_n[a] ? exp(lr / s.geo_n[a]) : NAN;
    if (is_peer(a) && s.geo_n[a] > 0 &&
        (s.smallest_peer < 0 || s.geo_rss[a] < s.geo_rss[s.smallest_peer]))
      s.smallest_peer = a;
  }
  double lr = 0;
  for (int w = 0; w < st.nworkloads; w++) {
    s.fastest[w] = fastest_of(w, false);
    s.best_peer[w] = fastest_of(w, true);
    if (s.strata < 0) continue;
    bench_stats x = stats_of(w, s.strata);
    double min = 0;
    for (int a = 0; a < st.nallocs; a++) {
      bench_stats p = stats_of(w, a);
      if (is_peer(a) && p.ok > 0 && (min == 0 || p.rss_mib < min)) min = p.rss_mib;
    }
    if (x.ok == 0 || min == 0) continue;
    lr += log(x.rss_mib / min);
    s.rss_vs_min_each_n++;
  }
  s.rss_vs_min_each = s.rss_vs_min_each_n ? exp(lr / s.rss_vs_min_each_n) : NAN;
  return s;
}

/* The same geometric mean of strata/peer taken within each round alone (workloads that
 * sleep left out, and a workload whose run failed under either in that round): how far the
 * machine's noise moves the summary from one round to the next. Sets *lo and *hi to the
 * lowest and highest round and returns how many rounds had a ratio. */
static int round_spread(int strata, int peer, double *lo, double *hi) {
  int n = 0;
  for (int r = 0; r < st.rounds; r++) {
    double lt = 0;
    int k = 0;
    for (int w = 0; w < st.nworkloads; w++) {
      const bench_run *x = &st.runs[w][strata][r], *p = &st.runs[w][peer][r];
      if (st.workloads[w].sleeps || x->status != RUN_OK || p->status != RUN_OK) continue;
      lt += log(x->wall_s / p->wall_s);
      k++;
    }
    if (k == 0) continue;
    double g = exp(lt / k);
    if (n == 0 || g < *lo) *lo = g;
    if (n == 0 || g > *hi) *hi = g;
    n++;
  }
  return n;
}

/* strata's time against one named peer: the inverse of that peer's geometric mean. */
static void target_vs(const summary *s, const char *peer, double limit, target *t) {
  *t = (target){.limit = limit};
  snprintf(t->what, sizeof t->what, "time strata/%s, geometric mean", peer);
  int p = find_alloc(peer);
  if (s->strata < 0 || p < 0 || s->geo_n_time[p] == 0) {
    snprintf(t->detail, sizeof t->detail, "not measured");
    return;
  }
  t->known = 1;
  t->value = 1.0 / s->geo_time[p];
  int n = snprintf(t->detail, sizeof t->detail, "over %d/%d workloads (those that sleep left out)",
                   s->geo_n_time[p], st.nworkloads);
  double lo = 0, hi = 0;
  if (round_spread(s->strata, p, &lo, &hi) > 1 && n > 0 && (size_t)n < sizeof t->detail)
    snprintf(t->detail + n, sizeof t->detail - (size_t)n, "; round by round %.2f-%.2f", lo, hi);
}

static int targets_of(const summary *s, target *t) {
  target_vs(s, "mimalloc", TARGET_VS_MIMALLOC, &t[0]);
  target_vs(s, "glibc", TARGET_VS_GLIBC, &t[1]);

  t[2] = (target){.limit = TARGET_VS_FASTEST};
  snprintf(t[2].what, sizeof t[2].what, "time strata/fastest peer, worst workload");
  snprintf(t[2].detail, sizeof t[2].detail, "not measured");
  for (int w = 0; s->strata >= 0 && w < st.nworkloads; w++) {
    bench_stats x = stats_of(w, s->strata);
    if (x.ok == 0 || s->best_peer[w] < 0 || st.workloads[w].sleeps) continue;
    bench_stats p = stats_of(w, s->best_peer[w]);
    double r = x.median_s / p.median_s;
    if (t[2].known && r <= t[2].value) continue;
    t[2].known = 1;
    t[2].value = r;
    snprintf(t[2].detail, sizeof t[2].detail, "%s: strata %.3f s, %s %.3f s", st.workloads[w].name,
             x.median_s, st.allocs[s->best_peer[w]].name, p.median_s);
  }

  int p = s->smallest_peer;
  t[3] = (target){.limit = TARGET_RSS};
  snprintf(t[3].what, sizeof t[3].what, "peak RSS strata/smallest peer (%s), geometric mean",
           p >= 0 ? st.allocs[p].name : "-");
  snprintf(t[3].detail, sizeof t[3].detail, "not measured");
  if (s->strata >= 0 && p >= 0) {
    t[3].known = 1;
    t[3].value = 1.0 / s->geo_rss[p];
    snprintf(t[3].detail, sizeof t[3].detail, "over %d/%d workloads", s->geo_n[p], st.nworkloads);
  }
  return MAX_TARGETS;
}

static const char *verdict(const target *t) {
  return !t->known ? "n/a " : t->value <= t->limit ? "PASS" : "MISS";
}

/* ---- Text report --------------------------------------------------------------------- */

static void print_measured(int w) {
  char keys[MAX_KEYS][NAME_LEN], buf[32];
  int nk = measured_keys(w, keys);
  if (nk == 0) return;
  printf("  measured inside the program, median over good runs:\n  %-9s", "allocator");
  for (int k = 0; k < nk; k++) printf(" %15s", keys[k]);
  putchar('\n');
  for (int a = 0; a < st.nallocs; a++) {
    printf("  %-9s", st.allocs[a].name);
    for (int k = 0; k < nk; k++) {
      double v;
      printf(" %15s", measured_median(w, a, keys[k], &v) ? fmt_value(v, buf, sizeof buf) : "-");
    }
    putchar('\n');
  }
}

static void print_table(int w, int base) {
  const bench_run *any = NULL;
  for (int a = 0; a < st.nallocs && any == NULL; a++)
    for (int r = 0; r < st.rounds && any == NULL; r++)
      if (st.runs[w][a][r].status == RUN_OK) any = &st.runs[w][a][r];
  const char *ops = any != NULL ? strstr(any->line, "ops=") : NULL;
  printf("\n%s  (%.*s)\n", st.workloads[w].name, ops ? (int)strcspn(ops, " ") : 2,
         ops ? ops : "--");
  char tr[NAME_LEN + 8], rr[NAME_LEN + 8];
  snprintf(tr, sizeof tr, "time/%s", st.allocs[base].name);
  snprintf(rr, sizeof rr, "RSS/%s", st.allocs[base].name);
  printf("  %-9s %5s %9s %9s %9s %12s %13s %13s\n", "allocator", "runs", "median s", "min s",
         "max s", "peak RSS MiB", tr, rr);
  bench_stats b = stats_of(w, base);
  for (int a = 0; a < st.nallocs; a++) {
    bench_stats s = stats_of(w, a);
    printf("  %-9s %2d/%-2d ", st.allocs[a].name, s.ok, st.rounds);
    if (s.ok == 0) {
      printf("%9s\n", "FAILED");
      continue;
    }
    printf("%9.3f %9.3f %9.3f %12.1f", s.median_s, s.min_s, s.max_s, s.rss_mib);
    if (b.ok > 0) printf(" %13.2f %13.2f", s.median_s / b.median_s, s.rss_mib / b.rss_mib);
    putchar('\n');
  }
  print_measured(w);
}

/* Writes every failed run to f: `heading` once before the first, then one `row` each, a
 * format taking workload, allocator, round and status (text table and markdown alike). */
static void write_failures(FILE *f, const char *heading, const char *row) {
  int n = 0;
  char sbuf[32];
  for (int w = 0; w < st.nworkloads; w++)
    for (int a = 0; a < st.nallocs; a++)
      for (int r = 0; r < st.rounds; r++) {
        const bench_run *run = &st.runs[w][a][r];
        if (run->status == RUN_OK || run->status == RUN_NONE) continue;
        if (n++ == 0) fputs(heading, f);
        fprintf(f, row, st.workloads[w].name, st.allocs[a].name, r + 1,
                status_text(run, sbuf, sizeof sbuf));
      }
}

static void print_failures(void) {
  write_failures(stdout, "\nfailed runs (left out of every figure):\n", "  %-17s %-9s round %d: %s\n");
}

static void print_summary(const summary *s) {
  const char *base = st.allocs[s->base].name;
  printf("\nsummary: geometric mean over workloads of allocator/%s (median time, median peak "
         "RSS);\n         above 1.00 means %s is faster / smaller; workloads: in the time "
         "mean, in the RSS mean / all\n         (footprint-small and -growshrink sleep: their "
         "time is not compared)\n",
         base, base);
  printf("  %-9s %9s %9s %10s\n", "allocator", "time", "RSS", "workloads");
  for (int a = 0; a < st.nallocs; a++) {
    char count[24];
    snprintf(count, sizeof count, "%d,%d/%d", s->geo_n_time[a], s->geo_n[a], st.nworkloads);
    if (s->geo_n[a] == 0)
      printf("  %-9s %9s %9s %10s\n", st.allocs[a].name, "-", "-", count);
    else
      printf("  %-9s %9.2f %9.2f %10s\n", st.allocs[a].name, s->geo_time[a], s->geo_rss[a], count);
  }

  printf("\nfastest per workload (median time); %s/fastest above 1.00 means %s is slower\n", base,
         base);
  printf("  %-17s %-9s %9s %15s %-10s %12s\n", "workload", "fastest", "median s", "strata/fastest",
         "best peer", "strata/peer");
  for (int w = 0; w < st.nworkloads; w++) {
    int f = s->fastest[w], p = s->best_peer[w];
    if (f < 0) {
      printf("  %-17s %-9s\n", st.workloads[w].name, "FAILED");
      continue;
    }
    bench_stats fs = stats_of(w, f), x = s->strata >= 0 ? stats_of(w, s->strata) : fs;
    printf("  %-17s %-9s %9.3f", st.workloads[w].name, st.allocs[f].name, fs.median_s);
    if (s->strata < 0 || x.ok == 0) {
      printf(" %15s\n", "-");
      continue;
    }
    printf(" %15.2f", x.median_s / fs.median_s);
    if (p >= 0) printf(" %-10s %12.2f", st.allocs[p].name, x.median_s / stats_of(w, p).median_s);
    putchar('\n');
  }

  if (s->strata >= 0 && s->smallest_peer >= 0) {
    char who[NAME_LEN + 48];
    snprintf(who, sizeof who, "the peer with the smallest RSS overall (%s)",
             st.allocs[s->smallest_peer].name);
    printf("\npeak RSS of strata against the smallest peer, geometric mean of strata/peer:\n"
           "  %-50s %6.2f  (%d workloads)\n  %-50s %6.2f  (%d workloads)\n",
           who, 1.0 / s->geo_rss[s->smallest_peer], s->geo_n[s->smallest_peer],
           "the smallest peer of each workload", s->rss_vs_min_each, s->rss_vs_min_each_n);
  }

  target t[MAX_TARGETS];
  int nt = targets_of(s, t);
  printf("\ntargets for strata (ratios strata/peer; PASS when at or below the limit):\n");
  for (int i = 0; i < nt; i++) {
    if (t[i].known)
      printf("  %s  %-56s %6.2f <= %.2f  (%s)\n", verdict(&t[i]), t[i].what, t[i].value, t[i].limit,
             t[i].detail);
    else
      printf("  %s  %-56s %6s    %.2f  (%s)\n", verdict(&t[i]), t[i].what, "-", t[i].limit,
             t[i].detail);
  }
}

void report_print(void) {
  int base = baseline();
  printf("\n");
  for (int i = 0; i < st.ninfo; i++) printf("# %s\n", st.info[i]);
  printf("\nratios are each allocator's median divided by %s's\n", st.allocs[base].name);
  for (int w = 0; w < st.nworkloads; w++) print_table(w, base);
  summary s = summarize();
  print_failures();
  print_summary(&s);
}

/* ---- Markdown ---------------------------------------------------------------------- */

static void md_header(FILE *f, const char *first, int base_too, int skip) {
  fprintf(f, "| %s |", first);
  for (int a = 0; a < st.nallocs; a++)
    if (a != skip || base_too) fprintf(f, " %s |", st.allocs[a].name);
  fprintf(f, "\n|---|");
  for (int a = 0; a < st.nallocs; a++)
    if (a != skip || base_too) fprintf(f, "---:|");
  fputc('\n', f);
}

/* One table of medians (what: 0 time, 1 RSS) or of ratios to base (ratio != 0). */
static void md_table(FILE *f, const summary *s, int what, int ratio) {
  md_header(f, "workload", !ratio, s->base);
  for (int w = 0; w < st.nworkloads; w++) {
    fprintf(f, "| %s |", st.workloads[w].name);
    bench_stats b = stats_of(w, s->base);
    for (int a = 0; a < st.nallocs; a++) {
      if (ratio && a == s->base) continue;
      bench_stats x = stats_of(w, a);
      double v = what == 0 ? x.median_s : x.rss_mib, bv = what == 0 ? b.median_s : b.rss_mib;
      const char *bold = what == 0 && s->fastest[w] == a ? "**" : "";
      if (x.ok == 0 || (ratio && b.ok == 0))
        fprintf(f, " failed |");
      else if (ratio)
        fprintf(f, " %.2f |", v / bv);
      else
        fprintf(f, " %s%.*f%s |", bold, what == 0 ? 3 : 1, v, bold);
    }
    fputc('\n', f);
  }
  if (!ratio) return;
  fprintf(f, "| **geometric mean** |");
  for (int a = 0; a < st.nallocs; a++)
    if (a != s->base) fprintf(f, " **%.2f** |", what == 0 ? s->geo_time[a] : s->geo_rss[a]);
  fputc('\n', f);
}

static void md_measured(FILE *f) {
  char keys[MAX_KEYS][NAME_LEN], buf[32];
  for (int w = 0; w < st.nworkloads; w++) {
    int nk = measured_keys(w, keys);
    if (nk == 0) continue;
    fprintf(f, "\n`%s`:\n\n| allocator |", st.workloads[w].name);
    for (int k = 0; k < nk; k++) fprintf(f, " %s |", keys[k]);
    fprintf(f, "\n|---|");
    for (int k = 0; k < nk; k++) fprintf(f, "---:|");
    fputc('\n', f);
    for (int a = 0; a < st.nallocs; a++) {
      fprintf(f, "| %s |", st.allocs[a].name);
      for (int k = 0; k < nk; k++) {
        double v;
        fprintf(f, " %s |",
                measured_median(w, a, keys[k], &v) ? fmt_value(v, buf, sizeof buf) : "-");
      }
      fputc('\n', f);
    }
  }
}

static void md_fastest(FILE *f, const summary *s) {
  fprintf(f,
          "| workload | fastest | its median s | strata/fastest | best peer | strata/best peer |\n"
          "|---|---|---:|---:|---|---:|\n");
  for (int w = 0; w < st.nworkloads; w++) {
    int fa = s->fastest[w], p = s->best_peer[w];
    if (fa < 0) {
      fprintf(f, "| %s | failed | | | | |\n", st.workloads[w].name);
      continue;
    }
    bench_stats fs = stats_of(w, fa);
    fprintf(f, "| %s | %s | %.3f |", st.workloads[w].name, st.allocs[fa].name, fs.median_s);
    bench_stats x = s->strata >= 0 ? stats_of(w, s->strata) : fs;
    if (s->strata < 0 || x.ok == 0 || p < 0) {
      fprintf(f, " - | | |\n");
      continue;
    }
    fprintf(f, " %.2f | %s | %.2f |\n", x.median_s / fs.median_s, st.allocs[p].name,
            x.median_s / stats_of(w, p).median_s);
  }
}

static void md_body(FILE *f, const char *name, int charts) {
  summary s = summarize();
  const char *base = st.allocs[s.base].name;
  fprintf(f,
          "# Benchmark run %s\n\nWritten by `bench/runner` beside `%s.csv` (the raw runs); "
          "`runner --report %s.csv` prints the same figures again.\n\n```\n",
          name, name, name);
  for (int i = 0; i < st.ninfo; i++) fprintf(f, "%s\n", st.info[i]);
  fprintf(f, "```\n\n## Targets for strata\n\nRatios are strata/peer; a target is met at or below "
             "its limit.\n\n| | target | value | limit | over |\n|---|---|---:|---:|---|\n");
  target t[MAX_TARGETS];
  int nt = targets_of(&s, t);
  for (int i = 0; i < nt; i++) {
    if (t[i].known)
      fprintf(f, "| **%s** | %s | %.2f | %.2f | %s |\n", verdict(&t[i]), t[i].what, t[i].value,
              t[i].limit, t[i].detail);
    else
      fprintf(f, "| n/a | %s | - | %.2f | %s |\n", t[i].what, t[i].limit, t[i].detail);
  }
  fprintf(f,
          "\n## Median wall time (s)\n\nMedian over %d interleaved rounds; the fastest of "
          "each workload in bold.\n\n",
          st.rounds);
  md_table(f, &s, 0, 0);
  fprintf(f, "\n## Time ratio: allocator / %s\n\nAbove 1.00 the allocator is slower than %s.\n\n",
          base, base);
  md_table(f, &s, 0, 1);
  fprintf(f, "\n## Fastest allocator per workload\n\n");
  md_fastest(f, &s);
  fprintf(f, "\n## Peak RSS (MiB, median of the child's ru_maxrss)\n\n");
  md_table(f, &s, 1, 0);
  fprintf(f,
          "\n## Peak RSS ratio: allocator / %s\n\nAbove 1.00 the allocator used more memory "
          "than %s.\n\n",
          base, base);
  md_table(f, &s, 1, 1);
  if (s.strata >= 0 && s.smallest_peer >= 0)
    fprintf(f,
            "\nstrata's peak RSS against the smallest peer, geometric mean of strata/peer: "
            "%.2f against %s (the peer with the smallest RSS overall), %.2f against the "
            "smallest peer of each workload.\n",
            1.0 / s.geo_rss[s.smallest_peer], st.allocs[s.smallest_peer].name, s.rss_vs_min_each);
  fprintf(f, "\n## Measured inside the programs\n\nFields the workloads print after their "
             "checksum (medians over the good runs; never compared across allocators).\n");
  md_measured(f);
  if (charts != 0) fprintf(f, "\n## Charts\n");
  if (charts & 1) fprintf(f, "\n![time ratio per workload](%s-time.png)\n", name);
  if (charts & 2) fprintf(f, "\n![peak RSS per workload](%s-rss.png)\n", name);
  if (charts & 4) fprintf(f, "\n![thread scaling](%s-threads.png)\n", name);
}

/* Writes <stem>.md; `charts` is the mask of the PNGs charts_write made, to link. */
void report_write_markdown(const char *stem, int charts) {
  char path[PATH_MAX + 8];
  snprintf(path, sizeof path, "%s.md", stem);
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, "bench: cannot write %s\n", path);
    return;
  }
  const char *slash = strrchr(stem, '/');
  md_body(f, slash != NULL ? slash + 1 : stem, charts);
  write_failures(f,
                 "\n## Failed runs\n\nLeft out of every figure above.\n\n"
                 "| workload | allocator | round | status |\n|---|---|---:|---|\n",
                 "| %s | %s | %d | %s |\n");
  if (fclose(f) != 0)
    fprintf(stderr, "bench: cannot write %s\n", path);
  else
    printf("summary tables written to %s\n", path);
}
