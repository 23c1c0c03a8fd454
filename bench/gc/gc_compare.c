/*
 * gc_compare.c — runs the GCBench workload under strata's collector and under Boehm GC,
 * interleaved, and compares time and peak RSS (docs/gc.md quotes its output).
 *
 * Owns: running each binary as a child (wall time by CLOCK_MONOTONIC around fork..exit,
 * CPU time and peak RSS from wait4's rusage), checking that every run printed the same
 * `workload ops checksum` prefix, the table of medians and ratios against the targets
 * (time <= 1.5 x Boehm's, peak RSS <= Boehm's), and the CSV of every run under the results
 * directory. Rounds alternate the order (strata first, then Boehm first) so slow drifts of a
 * shared machine hit both alike. Without a Boehm binary it measures strata alone and names
 * the package to install.
 * Usage: gc_compare [--rounds N] [--scale S] [--results DIR] STRATA_BINARY [BOEHM_BINARY]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_ROUNDS = 50, LINE = 512 };

typedef struct collector {
  const char *name, *binary;
  double seconds[MAX_ROUNDS];
  double cpu_seconds[MAX_ROUNDS]; /* user + system: steadier than wall time on a busy machine */
  long rss_kib[MAX_ROUNDS];
  char line[LINE]; /* the last result line */
} collector;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs binary with the scale argument; fills line with its first output line. */
static int run_once(const char *binary, const char *scale, char *line, double *seconds,
                    double *cpu_seconds, long *rss_kib) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(NULL);
  double start = now_s();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]), close(fds[1]);
    execl(binary, binary, scale, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], line + len, LINE - 1 - len)) > 0) len += (size_t)n;
  line[len] = '\0';
  line[strcspn(line, "\n")] = '\0';
  close(fds[0]);
  int status;
  struct rusage usage;
  if (wait4(pid, &status, 0, &usage) != pid) return -1;
  *seconds = now_s() - start;
  *rss_kib = usage.ru_maxrss;
  *cpu_seconds = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                 (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *values, int n) {
  double sorted[MAX_ROUNDS];
  memcpy(sorted, values, (size_t)n * sizeof *values);
  qsort(sorted, (size_t)n, sizeof *sorted, compare_double);
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static double median_rss_mib(const collector *c, int n) {
  double mib[MAX_ROUNDS];
  for (int i = 0; i < n; i++) mib[i] = (double)c->rss_kib[i] / 1024.0;
  return median(mib, n);
}

/* The compared part of a result line: everything before " collector=". */
static size_t compared_length(const char *line) {
  const char *end = strstr(line, " collector=");
  return end ? (size_t)(end - line) : strlen(line);
}

static FILE *open_csv(const char *dir) {
  if (dir == NULL) return NULL;
  char path[1024], stamp[64];
  time_t t = time(NULL);
  strftime(stamp, sizeof stamp, "%Y-%m-%d-%H%M%S", localtime(&t));
  snprintf(path, sizeof path, "%s/gc-%s.csv", dir, stamp);
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    perror(path);
    return NULL;
  }
  printf("runs: %s\n", path);
  fprintf(f, "round,collector,seconds,cpu_seconds,peak_rss_kib,result\n");
  return f;
}

/* Runs every round, alternating the order; returns 1 when a run failed or results differ. */
static int run_rounds(collector *all, int count, int rounds, const char *scale, FILE *csv) {
  int failed = 0;
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < count; k++) {
      collector *c = &all[(k + r) % count];
      if (run_once(c->binary, scale, c->line, &c->seconds[r], &c->cpu_seconds[r], &c->rss_kib[r]) !=
          0) {
        fprintf(stderr, "gc_compare: %s failed: %s\n", c->binary, c->line);
        failed = 1;
      }
      if (csv)
        fprintf(csv, "%d,%s,%.4f,%.4f,%ld,\"%s\"\n", r, c->name, c->seconds[r], c->cpu_seconds[r],
                c->rss_kib[r], c->line);
    }
    size_t n = compared_length(all[0].line);
    if (count == 2 && (n != compared_length(all[1].line) || strncmp(all[0].line, all[1].line, n))) {
      fprintf(stderr, "gc_compare: results differ:\n  %s\n  %s\n", all[0].line, all[1].line);
      failed = 1;
    }
  }
  return failed;
}

/* The table of medians, ratios to Boehm (the last collector) and the targets. */
static void report(const collector *all, int count, int rounds, const char *scale) {
  printf("gcbench, %d interleaved rounds, medians (scale %s)\n\n", rounds, scale);
  printf(
      "| collector | time s | CPU s | peak RSS MiB | time / Boehm | CPU / Boehm | RSS / Boehm |\n"
      "|---|---|---|---|---|---|---|\n");
  const collector *boehm = &all[count - 1];
  double boehm_s = median(boehm->seconds, rounds), boehm_cpu = median(boehm->cpu_seconds, rounds);
  double boehm_mib = median_rss_mib(boehm, rounds);
  for (int k = 0; k < count; k++) {
    double s = median(all[k].seconds, rounds), mib = median_rss_mib(&all[k], rounds);
    double cpu = median(all[k].cpu_seconds, rounds);
    if (count == 2)
      printf("| %s | %.3f | %.3f | %.1f | %.2f | %.2f | %.2f |\n", all[k].name, s, cpu, mib,
             s / boehm_s, cpu / boehm_cpu, mib / boehm_mib);
    else
      printf("| %s | %.3f | %.3f | %.1f | - | - | - |\n", all[k].name, s, cpu, mib);
  }
  for (int k = 0; k < count; k++) printf("\n%s: %s", all[k].name, all[k].line);
  printf("\n");
  if (count == 2) {
    double time_ratio = median(all[0].seconds, rounds) / boehm_s;
    double rss_ratio = median_rss_mib(&all[0], rounds) / boehm_mib;
    printf("\ntarget time <= 1.50 x Boehm: %.2f %s; target peak RSS <= Boehm: %.2f %s\n",
           time_ratio, time_ratio <= 1.5 ? "PASS" : "MISS", rss_ratio,
           rss_ratio <= 1.0 ? "PASS" : "MISS");
  }
}

int main(int argc, char **argv) {
  int rounds = 5;
  const char *scale = "100", *results = NULL;
  int i = 1;
  for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--rounds") == 0)
      rounds = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--scale") == 0)
      scale = argv[i + 1];
    else if (strcmp(argv[i], "--results") == 0)
      results = argv[i + 1];
  }
  if (i >= argc || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr,
            "usage: gc_compare [--rounds 1-%d] [--scale S] [--results DIR] STRATA [BOEHM]\n",
            MAX_ROUNDS);
    return 2;
  }
  collector all[2] = {{.name = "strata", .binary = argv[i]},
                      {.name = "boehm", .binary = i + 1 < argc ? argv[i + 1] : NULL}};
  int count = all[1].binary != NULL && all[1].binary[0] != '\0' ? 2 : 1;
  if (count == 1)
    printf("Boehm GC is not built: sudo apt-get install libgc-dev, then re-run cmake; "
           "measuring strata alone\n");
  FILE *csv = open_csv(results);
  int failed = run_rounds(all, count, rounds, scale, csv);
  if (csv) fclose(csv);
  report(all, count, rounds, scale);
  return failed;
}
