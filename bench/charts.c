/*
 * charts.c — the charts of a comparison, drawn by gnuplot beside the CSV: each peer's
 * median time over strata's per workload, peak RSS per workload and allocator, and time
 * against thread count for the threads-N workloads.
 * Owns: writing the data files gnuplot reads (in a temporary directory, removed after) and
 * running bench/plot/charts.gp on them. The look of the charts is the script's.
 * Does not own: the figures (report.c computes medians the same way, via stats_of).
 * Without gnuplot it says how to install it and returns: charts are optional.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "runner.h"

#ifndef BENCH_PLOT_SCRIPT
#define BENCH_PLOT_SCRIPT "plot/charts.gp"
#endif

static FILE *open_data(const char *dir, const char *name) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f == NULL) die("cannot write %s: %s", path, strerror(errno));
  return f;
}

/* time.dat: each peer's median over base's; rss.dat: every allocator's median MiB. The
 * smallest and largest time ratio go to range[0..1], for the chart's y range (gnuplot's
 * autoscale on a log axis may cut the lowest bar). */
static void write_workload_data(const char *dir, int base, double range[2]) {
  range[0] = range[1] = 1;
  FILE *t = open_data(dir, "time.dat"), *r = open_data(dir, "rss.dat");
  fprintf(t, "workload");
  fprintf(r, "workload");
  for (int a = 0; a < st.nallocs; a++) {
    if (a != base) fprintf(t, " %s", st.allocs[a].name);
    fprintf(r, " %s", st.allocs[a].name);
  }
  for (int w = 0; w < st.nworkloads; w++) {
    bench_stats b = stats_of(w, base);
    fprintf(t, "\n%s", st.workloads[w].name);
    fprintf(r, "\n%s", st.workloads[w].name);
    for (int a = 0; a < st.nallocs; a++) {
      bench_stats x = stats_of(w, a);
      if (a != base) {
        if (x.ok > 0 && b.ok > 0 && !st.workloads[w].sleeps) {
          double ratio = x.median_s / b.median_s;
          fprintf(t, " %.4f", ratio);
          if (ratio < range[0]) range[0] = ratio;
          if (ratio > range[1]) range[1] = ratio;
        } else
          fprintf(t, " ?");
      }
      if (x.ok > 0)
        fprintf(r, " %.2f", x.rss_mib);
      else
        fprintf(r, " ?");
    }
  }
  fputc('\n', t);
  fputc('\n', r);
  if (fclose(t) != 0 || fclose(r) != 0) die("cannot write the chart data in %s", dir);
}

/* threads.dat: one row per threads-N workload of this run. Returns the row count. */
static int write_threads_data(const char *dir) {
  FILE *f = open_data(dir, "threads.dat");
  fprintf(f, "threads");
  for (int a = 0; a < st.nallocs; a++) fprintf(f, " %s", st.allocs[a].name);
  int rows = 0;
  for (int w = 0; w < st.nworkloads; w++) {
    int n;
    if (sscanf(st.workloads[w].name, "threads-%d", &n) != 1) continue;
    fprintf(f, "\n%d", n);
    for (int a = 0; a < st.nallocs; a++) {
      bench_stats x = stats_of(w, a);
      if (x.ok > 0)
        fprintf(f, " %.4f", x.median_s);
      else
        fprintf(f, " ?");
    }
    rows++;
  }
  fputc('\n', f);
  if (fclose(f) != 0) die("cannot write the chart data in %s", dir);
  return rows;
}

static int run_gnuplot(const char *vars) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execlp("gnuplot", "gnuplot", "-e", vars, BENCH_PLOT_SCRIPT, (char *)NULL);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void remove_data(const char *dir) {
  static const char *const files[] = {"time.dat", "rss.dat", "threads.dat"};
  char path[PATH_MAX];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* Draws <stem>-time.png, <stem>-rss.png and, when the run had threads-N workloads,
 * <stem>-threads.png. Returns a mask of what was written: 1 time, 2 RSS, 4 threads. */
int charts_write(const char *stem) {
  if (!harness_on_path("gnuplot")) {
    printf("bench: gnuplot not installed; charts skipped (sudo apt-get install gnuplot-nox)\n");
    return 0;
  }
  if (st.nallocs < 2) return 0;
  char dir[] = "/tmp/strata-bench-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    fprintf(stderr, "bench: cannot create a directory for the chart data: %s\n", strerror(errno));
    return 0;
  }
  int base = baseline();
  double range[2];
  write_workload_data(dir, base, range);
  int threads = write_threads_data(dir) > 1;
  const char *slash = strrchr(stem, '/');
  char vars[3 * PATH_MAX];
  snprintf(vars, sizeof vars,
           "dir='%s'; out='%s'; title='%s'; base='%s'; npeers=%d; nallocs=%d; threads=%d; "
           "tmin=%g; tmax=%g",
           dir, stem, slash != NULL ? slash + 1 : stem, st.allocs[base].name, st.nallocs - 1,
           st.nallocs, threads, range[0] / 1.3, range[1] * 1.3);
  int rc = run_gnuplot(vars);
  remove_data(dir);
  if (rc != 0) {
    fprintf(stderr, "bench: gnuplot failed (status %d); charts may be missing\n", rc);
    return 0;
  }
  int mask = 0;
  static const char *const suffix[] = {"-time.png", "-rss.png", "-threads.png"};
  for (int i = 0; i < 3; i++) {
    char png[PATH_MAX + 16];
    snprintf(png, sizeof png, "%s%s", stem, suffix[i]);
    if (access(png, R_OK) == 0 && (i < 2 || threads)) mask |= 1 << i;
  }
  printf("charts written to %s-{time,rss%s}.png\n", stem, threads ? ",threads" : "");
  return mask;
}
