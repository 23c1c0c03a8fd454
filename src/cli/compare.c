/*
 * compare.c — `strata compare [--allocators LIST] [--runs N] -- PROGRAM ARGS`: the program
 * under each allocator, interleaved, with its outputs checked and its medians tabulated.
 *
 * Owns: the rounds (round r runs every allocator once, starting one allocator later than
 * round r-1, so drifts of a shared machine hit all alike), the output check (stdout and exit
 * status of every run against the reference: glibc's first run when glibc is compared, else
 * the first run), the table of median wall time, CPU time and peak RSS with ratios to the
 * reference allocator, and the PNG chart (gnuplot, when installed).
 * A run's stdout goes to a temporary file, compared by length and FNV-1a hash; stdin is
 * /dev/null unless --stdin FILE. Exit status: 0 when every run matched, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

enum { MAX_ALLOCS = 16, MAX_RUNS = 100 };

typedef struct run_result {
  harness_exit exit;
  uint64_t out_hash, out_len;
} run_result;

typedef struct comparison {
  harness_alloc allocs[MAX_ALLOCS];
  char **envs[MAX_ALLOCS];
  int nallocs, runs, reference;
  run_result results[MAX_ALLOCS][MAX_RUNS];
  int failed[MAX_ALLOCS]; /* runs that crashed or differed from the reference */
} comparison;

static comparison cmp;

static volatile sig_atomic_t running_group; /* the run in progress (its process group) */

static void on_interrupt(int sig) {
  if (running_group > 0) kill(-(pid_t)running_group, SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Length and FNV-1a hash of an open file's contents (read from the start). */
static void hash_file(int fd, uint64_t *len, uint64_t *hash) {
  uint8_t buf[65536];
  *len = 0;
  *hash = 0xcbf29ce484222325u;
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (ssize_t i = 0; i < n; i++) *hash = (*hash ^ buf[i]) * 0x100000001b3u;
    *len += (uint64_t)n;
  }
}

static void run_one(char **argv, const char *stdin_path, int a, run_result *out) {
  char path[] = "/tmp/strata-compare-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) cli_fail("cannot create a temporary file: %s", strerror(errno));
  unlink(path);
  int in = open(stdin_path, O_RDONLY | O_CLOEXEC);
  if (in < 0) cli_fail("cannot read %s: %s", stdin_path, strerror(errno));
  pid_t pid = harness_spawn(argv, cmp.envs[a], in, fd, 1);
  if (pid < 0) cli_fail("fork: %s", strerror(errno));
  running_group = pid;
  if (harness_wait(pid, &out->exit) != 0) cli_fail("lost a run: %s", strerror(errno));
  running_group = 0;
  hash_file(fd, &out->out_len, &out->out_hash);
  close(fd);
  close(in);
}

static int same_result(const run_result *x, const run_result *y) {
  return x->exit.signaled == y->exit.signaled && x->exit.code == y->exit.code &&
         x->out_len == y->out_len && x->out_hash == y->out_hash;
}

/* Reports every run that crashed or differs from the reference run. */
static int check_runs(const char *program) {
  int bad = 0;
  const run_result *ref = &cmp.results[cmp.reference][0];
  char why[160];
  for (int a = 0; a < cmp.nallocs; a++)
    for (int r = 0; r < cmp.runs; r++) {
      const run_result *x = &cmp.results[a][r];
      const char *name = cmp.allocs[a].name;
      if (x->exit.signaled || x->exit.code == 127) {
        fprintf(stderr, "strata: %s under %s (run %d) %s\n", program, name, r + 1,
                cli_describe_exit(&x->exit, why, sizeof why));
      } else if (!same_result(x, ref)) {
        fprintf(stderr,
                "strata: %s under %s (run %d) differs from %s: %llu bytes of output, %s "
                "(%s: %llu bytes, exit status %d)\n",
                program, name, r + 1, cmp.allocs[cmp.reference].name,
                (unsigned long long)x->out_len, cli_describe_exit(&x->exit, why, sizeof why),
                cmp.allocs[cmp.reference].name, (unsigned long long)ref->out_len, ref->exit.code);
      } else {
        continue;
      }
      cmp.failed[a]++;
      bad++;
    }
  if (bad == 0 && ref->exit.code != 0)
    fprintf(stderr, "strata: note: %s exits with status %d under every allocator\n", program,
            ref->exit.code);
  return bad;
}

typedef struct medians {
  double wall, cpu, rss_kib;
  int ok;
} medians;

static medians medians_of(int a) {
  double w[MAX_RUNS], c[MAX_RUNS], m[MAX_RUNS];
  medians s = {0, 0, 0, 0};
  for (int r = 0; r < cmp.runs; r++) {
    const run_result *x = &cmp.results[a][r];
    if (x->exit.signaled) continue;
    w[s.ok] = x->exit.wall_s, c[s.ok] = x->exit.cpu_s, m[s.ok] = (double)x->exit.maxrss_kib;
    s.ok++;
  }
  s.wall = harness_median(w, s.ok), s.cpu = harness_median(c, s.ok), s.rss_kib = harness_median(m, s.ok);
  return s;
}

static double ratio(double x, double ref) { return ref > 0 ? x / ref : 0; }

static void print_table(void) {
  medians ref = medians_of(cmp.reference);
  printf("%-20s %10s %6s %10s %6s %11s %6s\n", "allocator", "wall (s)", "ratio", "CPU (s)",
         "ratio", "peak RSS", "ratio");
  for (int a = 0; a < cmp.nallocs; a++) {
    medians s = medians_of(a);
    char rss[32];
    if (s.ok == 0) {
      printf("%-20s %10s\n", cmp.allocs[a].name, "(every run crashed)");
      continue;
    }
    printf("%-20s %10.3f %6.2f %10.3f %6.2f %11s %6.2f%s\n", cmp.allocs[a].name, s.wall,
           ratio(s.wall, ref.wall), s.cpu, ratio(s.cpu, ref.cpu), cli_bytes(s.rss_kib * 1024, rss, sizeof rss),
           ratio(s.rss_kib, ref.rss_kib), cmp.failed[a] ? "  FAILED" : "");
  }
  printf("medians of %d run%s each, interleaved; ratios are to %s\n", cmp.runs,
         cmp.runs == 1 ? "" : "s", cmp.allocs[cmp.reference].name);
}

/* Bars of the three ratios per allocator, drawn by gnuplot into png. */
static void write_chart(const char *png, const char *program) {
  if (!harness_on_path("gnuplot")) {
    fprintf(stderr, "strata: no chart: gnuplot is not installed (sudo apt-get install gnuplot-nox)\n");
    return;
  }
  char data[] = "/tmp/strata-chart-XXXXXX";
  int fd = mkstemp(data);
  if (fd < 0) return;
  FILE *f = fdopen(fd, "w");
  medians ref = medians_of(cmp.reference);
  for (int a = 0; a < cmp.nallocs; a++) {
    medians s = medians_of(a);
    fprintf(f, "\"%s\" %.4f %.4f %.4f\n", cmp.allocs[a].name, ratio(s.wall, ref.wall),
            ratio(s.cpu, ref.cpu), ratio(s.rss_kib, ref.rss_kib));
  }
  fclose(f);
  char script[4096];
  snprintf(script, sizeof script,
           "set terminal pngcairo size 900,480 font 'sans,10'\n"
           "set output '%s'\n"
           "set title \"%s: median of %d runs, relative to %s (lower is better)\" noenhanced\n"
           "set style data histogram\nset style histogram clustered gap 1\n"
           "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
           "set grid ytics\nset xtics noenhanced\nset key top left\n"
           "plot '%s' using 2:xtic(1) title 'wall time', '' using 3 title 'CPU time', "
           "'' using 4 title 'peak RSS'\n",
           png, program, cmp.runs, cmp.allocs[cmp.reference].name, data);
  FILE *gp = popen("gnuplot", "w");
  if (gp != NULL) {
    fputs(script, gp);
    if (pclose(gp) == 0)
      printf("chart written to %s\n", png);
    else
      fprintf(stderr, "strata: gnuplot failed; no chart\n");
  }
  unlink(data);
}

static const char compare_usage[] =
    "strata compare [--allocators LIST] [--runs N] [--stdin FILE] [--chart FILE.png | "
    "--no-chart] [--] PROGRAM [ARGS...]\n"
    "  LIST: comma-separated glibc jemalloc tcmalloc mimalloc strata strata:STRATEGY all\n"
    "        (default glibc,jemalloc,tcmalloc,mimalloc,strata)\n";

typedef struct compare_options {
  const char *list, *stdin_path, *chart;
  int program; /* index of PROGRAM in argv */
} compare_options;

static compare_options parse_options(int argc, char **argv) {
  compare_options o = {"glibc,jemalloc,tcmalloc,mimalloc,strata", "/dev/null",
                       "strata-compare.png", argc};
  cmp.runs = 3;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(opt, "--help") == 0) {
      printf("usage: %s", compare_usage);
      exit(0);
    }
    if (strcmp(opt, "--no-chart") == 0) {
      o.chart = NULL;
      continue;
    }
    if (i + 1 >= argc) cli_usage_error(&cli_compare, "%s needs a value", opt);
    const char *v = argv[++i];
    if (strcmp(opt, "--allocators") == 0)
      o.list = v;
    else if (strcmp(opt, "--runs") == 0)
      cmp.runs = (int)cli_number(&cli_compare, opt, v, 1, MAX_RUNS);
    else if (strcmp(opt, "--stdin") == 0)
      o.stdin_path = v;
    else if (strcmp(opt, "--chart") == 0)
      o.chart = v;
    else
      cli_usage_error(&cli_compare, "unknown option %s", opt);
  }
  if (i >= argc) cli_usage_error(&cli_compare, "no program to compare");
  o.program = i;
  return o;
}

static int compare_main(int argc, char **argv) {
  compare_options o = parse_options(argc, argv);
  int i = o.program;
  cmp.nallocs = cli_allocators(&cli_compare, o.list, cmp.allocs, MAX_ALLOCS);
  if (cmp.nallocs == 0) cli_fail("none of the allocators is installed");
  cli_check_program(argv[i]);
  for (int a = 0; a < cmp.nallocs; a++) {
    cmp.envs[a] = cli_alloc_env(&cmp.allocs[a]);
    if (strcmp(cmp.allocs[a].name, "glibc") == 0) cmp.reference = a;
  }
  signal(SIGINT, on_interrupt);
  signal(SIGTERM, on_interrupt);
  for (int r = 0; r < cmp.runs; r++)
    for (int k = 0; k < cmp.nallocs; k++) {
      int a = (k + r) % cmp.nallocs;
      cli_progress("[run %d/%d] %s", r + 1, cmp.runs, cmp.allocs[a].name);
      run_one(argv + i, o.stdin_path, a, &cmp.results[a][r]);
    }
  cli_progress_done();
  int bad = check_runs(argv[i]);
  print_table();
  if (o.chart != NULL) write_chart(o.chart, argv[i]);
  return bad ? CLI_EXIT_FAILED : 0;
}

const cli_command cli_compare = {"compare",
                                 "run a program under several allocators and compare them",
                                 compare_usage, compare_main};
