/*
 * runner.h — what the benchmark runner's files share: the state of one comparison.
 *
 * runner.c fills it (by running workloads, or from a CSV with --report), report.c turns it
 * into tables, the summary with the tuning targets, and the markdown file, and charts.c
 * into gnuplot charts. One comparison per process, so the state is a single global, `st`,
 * written by runner.c before any reader runs. Single-threaded throughout.
 */
#ifndef BENCH_RUNNER_H
#define BENCH_RUNNER_H

#include <limits.h>
#include <stddef.h>

#define MAX_ALLOCS 8
#define MAX_WORKLOADS 32
#define MAX_ROUNDS 50
#define MAX_INFO 24
#define NAME_LEN 32
#define LINE_LEN 256

typedef struct bench_alloc {
  char name[NAME_LEN];
  char path[PATH_MAX]; /* LD_PRELOAD value; empty for glibc */
  char **envp;         /* the runner's environment with LD_PRELOAD set (or removed) */
} bench_alloc;

typedef struct bench_workload {
  char name[NAME_LEN];   /* as printed in the result line, e.g. "threads-4" */
  char binary[NAME_LEN]; /* program in the workloads directory */
  char extra[16];        /* argument after SCALE (thread count, pattern) or "" */
  int sleeps;            /* its wall time is mostly the program sleeping (footprint-small,
                            -growshrink): left out of every time comparison, kept in the
                            RSS ones */
} bench_workload;

typedef enum run_status {
  RUN_NONE,      /* not run (or absent from a CSV) */
  RUN_OK,        /* exited 0 and printed a result line that matches the reference */
  RUN_EXIT,      /* exited with a non-zero status (code) */
  RUN_SIGNAL,    /* killed by signal (code) */
  RUN_TIMEOUT,   /* killed by the runner after --timeout seconds */
  RUN_NO_RESULT, /* exited 0 without a well-formed result line */
  RUN_MISMATCH,  /* result line differs from the reference run's */
} run_status;

/* A result line is `workload=W ops=N checksum=H` (compared across allocators), then
 * optionally measured fields ` key=number ...` (times, rates, RSS: tabulated, never
 * compared). */
typedef struct bench_run {
  run_status status;
  int code;            /* exit status or signal number */
  int position;        /* place in its round's order, 0-based */
  double wall_s;       /* fork to exit */
  long maxrss_kib;     /* ru_maxrss of the child */
  char line[LINE_LEN]; /* the result line, without its newline */
} bench_run;

/* Everything one invocation knows; a CSV read by --report fills the same fields. */
typedef struct bench_state {
  bench_alloc allocs[MAX_ALLOCS];
  int nallocs;
  bench_workload workloads[MAX_WORKLOADS];
  int nworkloads;
  int rounds;
  unsigned long scale;
  unsigned timeout_s;
  const char *workload_dir;
  char info[MAX_INFO][PATH_MAX + 64]; /* "key: value" lines describing the machine */
  int ninfo;
  bench_run runs[MAX_WORKLOADS][MAX_ALLOCS][MAX_ROUNDS];
  int failures, mismatches;
} bench_state;

extern bench_state st;

/* Medians and extremes of one workload under one allocator, over its good runs. */
typedef struct bench_stats {
  int ok;                        /* good runs the figures are taken from */
  double median_s, min_s, max_s; /* wall time */
  double rss_mib;                /* median peak RSS */
} bench_stats;

/* runner.c */
void copy_str(char *dst, size_t size, const char *src);
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
int find_alloc(const char *name);
const char *status_text(const bench_run *r, char *buf, size_t size);
size_t result_core_len(const char *line);
/* Whether the built-in workload of that name sleeps (see bench_workload); 0 if unknown. */
int workload_sleeps(const char *name);
const char *result_measured(const char *line);

/* report.c */
bench_stats stats_of(int w, int a);
int baseline(void);
void report_print(void);
int report_strata_failed(void);
void report_write_markdown(const char *stem, int charts);

/* charts.c */
int charts_write(const char *stem);

#endif
