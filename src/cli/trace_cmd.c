/*
 * trace_cmd.c — `strata trace -o FILE [OPTIONS] -- PROGRAM ARGS` records a program's
 * allocations (libstrata-trace.so, trace/tracer.c), and `strata summary FILE` describes a
 * trace: its operations, threads, size and lifetime histograms, peak live bytes.
 *
 * Owns: starting the traced program (STRATA_TRACE_FILE, and STRATA_TRACE_PARENT = this pid
 * so the tracer knows the program it should write FILE for: other processes write
 * FILE.<pid>), listing the files written, and printing a summary (cli/trace_read.c reads).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/trace_read.h"

/* Lists FILE.<pid> files the run left beside FILE (fork children, programs they ran). */
static void list_child_traces(const char *file) {
  char dir[PATH_MAX], *slash;
  snprintf(dir, sizeof dir, "%s", file);
  const char *base = file;
  if ((slash = strrchr(dir, '/')) != NULL) {
    *slash = '\0';
    base = slash + 1;
  } else {
    snprintf(dir, sizeof dir, ".");
  }
  DIR *d = opendir(dir);
  if (d == NULL) return;
  size_t n = strlen(base);
  int count = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strncmp(e->d_name, base, n) == 0 && e->d_name[n] == '.' &&
        strspn(e->d_name + n + 1, "0123456789") == strlen(e->d_name + n + 1) && e->d_name[n + 1]) {
      if (count++ == 0) fprintf(stderr, "strata: other processes of the run were traced too:\n");
      if (count <= 5) fprintf(stderr, "  %s/%s\n", dir, e->d_name);
    }
  closedir(d);
  if (count > 5) fprintf(stderr, "  ... and %d more: %s.*\n", count - 5, file);
}

static const char trace_usage[] =
    "strata trace -o FILE [--strategy=NAME] [--OPTION[=VALUE]]... [--] PROGRAM [ARGS...]\n";

static int trace_main(int argc, char **argv) {
  const char *file = NULL;
  int i = 1;
  if (i < argc && strcmp(argv[i], "--help") == 0) {
    printf("usage: %s", trace_usage);
    return 0;
  }
  if (i + 1 < argc && strcmp(argv[i], "-o") == 0) file = argv[i + 1], i += 2;
  else if (i < argc && strncmp(argv[i], "--output=", 9) == 0) file = argv[i++] + 9;
  if (file == NULL || file[0] == '\0') cli_usage_error(&cli_trace, "-o FILE comes first");
  const char *env[66] = {NULL};
  int nenv = 0;
  int first = i + cli_parse_strata_flags(&cli_trace, argc - i + 1, argv + i - 1, env, 64, &nenv) - 1;
  if (first >= argc) cli_usage_error(&cli_trace, "no program to trace");
  const char *lib = cli_trace_library();
  if (lib[0] == '\0') cli_fail("libstrata-trace.so not found beside the strata command");
  cli_check_program(argv[first]);
  char *file_var, *parent_var, cwd[PATH_MAX];
  /* Absolute, so that a program changing directory still writes where it was asked. */
  if (file[0] != '/' && getcwd(cwd, sizeof cwd) == NULL) cli_fail("cannot tell the current directory");
  if (asprintf(&file_var, "STRATA_TRACE_FILE=%s%s%s", file[0] == '/' ? "" : cwd,
               file[0] == '/' ? "" : "/", file) < 0 ||
      asprintf(&parent_var, "STRATA_TRACE_PARENT=%ld", (long)getpid()) < 0)
    cli_fail("out of memory");
  env[nenv++] = file_var;
  env[nenv++] = parent_var;
  unlink(file); /* a program that never allocates must not leave an old trace behind */
  pid_t pid = harness_spawn(argv + first, harness_env(lib, env), -1, -1, 0);
  if (pid < 0) cli_fail("fork: %s", strerror(errno));
  /* Set after the fork: an ignored signal would stay ignored in the program. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  int status = cli_finish_program(argv[first], pid);
  if (access(file, R_OK) != 0)
    fprintf(stderr, "strata: %s wrote no trace (it made no allocation, or could not write %s)\n",
            argv[first], file);
  else if (cli_progress_enabled())
    fprintf(stderr, "strata: trace written to %s (strata summary %s)\n", file, file);
  list_child_traces(file);
  return status;
}

const cli_command cli_trace = {"trace", "record every allocation of a program into a trace file",
                               trace_usage, trace_main};

/* ---- summary ------------------------------------------------------------------------------ */

static void print_histogram(const char *title, const uint64_t *counts, int n,
                            void (*label)(int bucket, char *buf, size_t size)) {
  uint64_t total = 0, most = 0;
  for (int b = 0; b < n; b++) total += counts[b], most = counts[b] > most ? counts[b] : most;
  printf("\n%s\n", title);
  if (total == 0) {
    printf("  (none)\n");
    return;
  }
  for (int b = 0; b < n; b++) {
    if (counts[b] == 0) continue;
    char name[32], bar[41];
    label(b, name, sizeof name);
    int width = (int)((counts[b] * 40 + most - 1) / most);
    memset(bar, '#', (size_t)width);
    bar[width] = '\0';
    printf("  %-16s %12llu %5.1f%%  %s\n", name, (unsigned long long)counts[b],
           100.0 * (double)counts[b] / (double)total, bar);
  }
}

static void size_label(int b, char *buf, size_t size) {
  char lo[16], hi[16];
  if (b <= 1)
    snprintf(buf, size, "%d B", b);
  else if (b == TRACE_SIZE_BUCKETS - 1)
    snprintf(buf, size, ">= %s", cli_bytes((double)(1ull << (b - 1)), lo, sizeof lo));
  else
    snprintf(buf, size, "%s-%s", cli_bytes((double)(1ull << (b - 1)), lo, sizeof lo),
             cli_bytes((double)((1ull << b) - 1), hi, sizeof hi));
}

static void life_label(int b, char *buf, size_t size) {
  static const char *const names[TRACE_LIFE_BUCKETS] = {
      "< 10 ns", "< 100 ns", "< 1 us", "< 10 us", "< 100 us", "< 1 ms",
      "< 10 ms", "< 100 ms", "< 1 s",  "< 10 s",  "< 100 s",  ">= 100 s"};
  snprintf(buf, size, "%s", names[b]);
}

static int by_number(const void *a, const void *b) {
  uint32_t x = (*(const trace_thread *const *)a)->number, y = (*(const trace_thread *const *)b)->number;
  return (x > y) - (x < y);
}

static int summary_main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--help") == 0) {
    printf("usage: %s", cli_summary.usage);
    return 0;
  }
  if (argc != 2) cli_usage_error(&cli_summary, "one trace file, please");
  trace t;
  if (trace_load(argv[1], &t) != 0) return CLI_EXIT_FAILED;
  char a[32], b[32];
  printf("trace %s: process %u, %llu events over %.3f s, %u thread%s\n", argv[1], t.pid,
         (unsigned long long)t.nevents, (double)t.duration_ns * 1e-9, t.nthreads,
         t.nthreads == 1 ? "" : "s");
  printf("  malloc %llu  calloc %llu  aligned %llu  realloc %llu  free %llu\n",
         (unsigned long long)t.op_count[TRACE_MALLOC], (unsigned long long)t.op_count[TRACE_CALLOC],
         (unsigned long long)t.op_count[TRACE_MEMALIGN],
         (unsigned long long)t.op_count[TRACE_REALLOC], (unsigned long long)t.op_count[TRACE_FREE]);
  printf("  peak live: %llu bytes (%s) in %llu blocks\n", (unsigned long long)t.peak_live_bytes,
         cli_bytes((double)t.peak_live_bytes, a, sizeof a), (unsigned long long)t.peak_live_blocks);
  printf("  requested in all: %s; never freed: %s in %llu blocks\n",
         cli_bytes((double)t.requested_bytes, a, sizeof a),
         cli_bytes((double)t.end_live_bytes, b, sizeof b), (unsigned long long)t.end_live_blocks);
  if (t.failed + t.unmatched_frees + t.reused_live > 0)
    printf("  failed allocations %llu, frees of untraced blocks %llu, clock conflicts %llu\n",
           (unsigned long long)t.failed, (unsigned long long)t.unmatched_frees,
           (unsigned long long)t.reused_live);
  printf("\nthreads (number in the trace: events)\n");
  const trace_thread **order = calloc(t.nthreads + 1, sizeof *order);
  if (order == NULL) cli_fail("out of memory");
  for (uint32_t k = 0; k < t.nthreads; k++) order[k] = &t.threads[k];
  qsort(order, t.nthreads, sizeof *order, by_number);
  for (uint32_t k = 0; k < t.nthreads; k++)
    printf("  %-6u %llu\n", order[k]->number, (unsigned long long)order[k]->events);
  free(order);
  print_histogram("request sizes", t.size_hist, TRACE_SIZE_BUCKETS, size_label);
  print_histogram("lifetimes of freed blocks", t.life_hist, TRACE_LIFE_BUCKETS, life_label);
  return 0;
}

const cli_command cli_summary = {"summary",
                                 "describe a trace: sizes, lifetimes, threads, peak live bytes",
                                 "strata summary FILE\n", summary_main};
