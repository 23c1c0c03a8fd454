/*
 * replay.c — `strata replay FILE [--allocators LIST] [--strategies LIST|all]`: replays a
 * trace under each allocator and strategy and tabulates time, peak footprint and
 * fragmentation; and its worker, `strata replay-worker FILE [--exact]`, the process that
 * replays once under whatever allocator it was started with (LD_PRELOAD).
 *
 * Owns: faithful replay. Every traced thread gets a thread; each runs its own events in its
 * own order, calling the same function of the malloc family with the same size and
 * alignment, and touches one byte per page of what it gets, as the program would have
 * written it. A block freed (or reallocated) by another thread than the one that made it is
 * waited for through its slot (an atomic pointer per block, published with release), so
 * the dependencies of the traced run hold and no thread ever frees what does not exist yet.
 * No thread runs more than a window of events (REPLAY_WINDOW, in the trace's global order)
 * ahead of the others either: a producer thread whose consumer lags would otherwise pile up
 * far more live memory than the traced run ever had.
 * --exact also runs every event in the trace's global order (one at a time, handed on by
 * an atomic sequence number): slower, but the live bytes then go through exactly the traced
 * values, and the worker reports its peak to check that.
 * Footprint: the worker resets its peak RSS after loading the trace (/proc/self/clear_refs)
 * and reports peak and final RSS above that baseline; its own arrays are mapped (bigmem.h),
 * so only the replayed blocks go through the allocator under test.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli/bigmem.h"
#include "cli/cli.h"
#include "cli/trace_read.h"

/* ---- The worker -------------------------------------------------------------------------- */

#define SLOT_FAILED ((uintptr_t)1) /* the replayed allocation returned NULL */
/* Threads report their progress every REPLAY_BATCH events. The window is wider than what
 * all threads may hold unreported, so the earliest pending event can always run: no thread
 * waits forever. */
#define REPLAY_BATCH 64
#define REPLAY_WINDOW(threads) (4096 + (uint64_t)(threads) * 2 * REPLAY_BATCH)

typedef struct replay {
  const trace *t;
  _Atomic uintptr_t *slots; /* per block: its address once made (0: not yet) */
  _Atomic uint32_t xseq;    /* --exact: the next event to run */
  _Atomic uint64_t xdone;   /* otherwise: events run, added in batches of REPLAY_BATCH */
  uint64_t window;          /* how far ahead of xdone (in trace order) a thread may run */
  int exact;
  pthread_barrier_t start;
  _Atomic uint64_t xfailed; /* allocations that returned NULL in the replay */
  uint64_t live, peak_live; /* --exact only: updated one event at a time */
} replay;

static uintptr_t wait_slot(replay *r, uint32_t block) {
  uintptr_t p;
  for (unsigned spins = 0; (p = atomic_load_explicit(&r->slots[block], memory_order_acquire)) == 0;)
    if (++spins > 64) sched_yield();
  return p;
}

static void *pointer_of(replay *r, uint32_t block) {
  if (block == TRACE_NO_BLOCK) return NULL;
  uintptr_t p = wait_slot(r, block);
  return p == SLOT_FAILED ? NULL : (void *)p;
}

static void publish(replay *r, uint32_t block, void *p, uint64_t size) {
  if (p == NULL && size > 0) atomic_fetch_add_explicit(&r->xfailed, 1, memory_order_relaxed);
  if (block == TRACE_NO_BLOCK) {
    free(p); /* the traced call returned NULL (realloc to 0 bytes): no later event frees it */
    return;
  }
  if (p == NULL) {
    p = (void *)SLOT_FAILED;
  } else {
    for (uint64_t off = 0; off < size; off += 4096) ((volatile char *)p)[off] = 1;
  }
  atomic_store_explicit(&r->slots[block], (uintptr_t)p, memory_order_release);
}

static void run_event(replay *r, const trace_event *e) {
  const uint64_t *sizes = r->t->block_size;
  switch (e->op) {
  case TRACE_MALLOC: publish(r, e->block, malloc(e->size), e->size); break;
  case TRACE_CALLOC: publish(r, e->block, calloc(1, e->size), e->size); break;
  case TRACE_MEMALIGN:
    publish(r, e->block, memalign(e->align, e->size), e->size);
    break;
  case TRACE_REALLOC: {
    void *old = pointer_of(r, e->old_block);
    void *p = realloc(old, e->size);
    if (e->old_block != TRACE_NO_BLOCK && r->exact) r->live -= sizes[e->old_block];
    publish(r, e->block, p, e->size); /* even when NULL: nobody may wait for it forever */
    break;
  }
  case TRACE_FREE: {
    void *p = pointer_of(r, e->block);
    if (r->exact) r->live -= sizes[e->block];
    free(p);
    return;
  }
  }
  if (r->exact && e->block != TRACE_NO_BLOCK) {
    r->live += sizes[e->block];
    if (r->live > r->peak_live) r->peak_live = r->live;
  }
}

typedef struct replay_thread {
  replay *r;
  const trace_thread *th;
  pthread_t id;
} replay_thread;

static void *replay_thread_main(void *arg) {
  replay_thread *rt = arg;
  replay *r = rt->r;
  const trace_event *events = r->t->events;
  uint64_t unreported = 0; /* events run and not yet added to xdone */
  pthread_barrier_wait(&r->start);
  for (uint64_t k = 0; k < rt->th->events; k++) {
    const trace_event *e = &events[rt->th->index[k]];
    if (r->exact) {
      for (unsigned spins = 0; atomic_load_explicit(&r->xseq, memory_order_acquire) != e->seq;)
        if (++spins > 64) sched_yield();
    } else if (e->seq > atomic_load_explicit(&r->xdone, memory_order_relaxed) + r->window) {
      atomic_fetch_add_explicit(&r->xdone, unreported, memory_order_relaxed);
      unreported = 0;
      for (unsigned spins = 0; e->seq > atomic_load_explicit(&r->xdone, memory_order_relaxed) + r->window;)
        if (++spins > 64) sched_yield();
    }
    if (!e->skip) run_event(r, e);
    if (r->exact)
      atomic_store_explicit(&r->xseq, e->seq + 1, memory_order_release);
    else if (++unreported == REPLAY_BATCH)
      atomic_fetch_add_explicit(&r->xdone, unreported, memory_order_relaxed), unreported = 0;
  }
  atomic_fetch_add_explicit(&r->xdone, unreported, memory_order_relaxed);
  return NULL;
}

/* "VmRSS:" or "VmHWM:" of this process, in KiB. */
static long status_kib(const char *field) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  const char *p = strstr(buf, field);
  return p != NULL ? strtol(p + strlen(field), NULL, 10) : 0; /* 0 when absent or unreadable */
}

static void reset_peak_rss(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "5", 1) != 1) { /* older kernels: the peak then includes the loading */
    }
    close(fd);
  }
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int worker_main(int argc, char **argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--exact") != 0))
    cli_usage_error(&cli_replay_worker, "bad arguments");
  static trace t;
  if (trace_load(argv[1], &t) != 0) return CLI_EXIT_FAILED;
  static replay r;
  r.t = &t;
  r.exact = argc == 3;
  r.window = REPLAY_WINDOW(t.nthreads);
  r.slots = bigmem_alloc((size_t)(t.nblocks + 1) * sizeof *r.slots);
  replay_thread *threads = bigmem_alloc((t.nthreads + 1) * sizeof *threads);
  pthread_barrier_init(&r.start, NULL, t.nthreads + 1);
  for (uint32_t k = 0; k < t.nthreads; k++) {
    threads[k] = (replay_thread){&r, &t.threads[k], 0};
    if (pthread_create(&threads[k].id, NULL, replay_thread_main, &threads[k]) != 0)
      cli_fail("cannot start replay thread %u of %u", k + 1, t.nthreads);
  }
  reset_peak_rss();
  long base_kib = status_kib("VmRSS:");
  double cpu0 = cpu_seconds(), t0 = now_seconds();
  pthread_barrier_wait(&r.start);
  for (uint32_t k = 0; k < t.nthreads; k++) pthread_join(threads[k].id, NULL);
  double wall = now_seconds() - t0, cpu = cpu_seconds() - cpu0;
  long peak_kib = status_kib("VmHWM:"), end_kib = status_kib("VmRSS:");
  uint64_t ops = 0;
  for (uint64_t i = 0; i < t.nevents; i++) ops += !t.events[i].skip;
  printf("replay ops=%llu threads=%u wall_s=%.6f cpu_s=%.6f base_kib=%ld peak_kib=%ld "
         "end_kib=%ld failed=%llu peak_live=%llu\n",
         (unsigned long long)ops, t.nthreads, wall, cpu, base_kib, peak_kib, end_kib,
         (unsigned long long)atomic_load(&r.xfailed),
         (unsigned long long)(r.exact ? r.peak_live : 0));
  return 0;
}

const cli_command cli_replay_worker = {"replay-worker", "(internal) replay a trace once",
                                       "strata replay-worker FILE [--exact]\n", worker_main};

/* ---- The driver -------------------------------------------------------------------------- */

enum { MAX_ALLOCS = 24, MAX_RUNS = 50 };

typedef struct worker_result {
  int ok;
  unsigned long long ops, failed, peak_live;
  double wall_s, cpu_s;
  long base_kib, peak_kib, end_kib;
} worker_result;

/* The text after " key=" (or "key=" at the start) in the worker's result line, or NULL. */
static const char *result_field(const char *line, const char *key) {
  size_t n = strlen(key);
  for (const char *p = line; (p = strstr(p, key)) != NULL; p += n)
    if ((p == line || p[-1] == ' ') && p[n] == '=') return p + n + 1;
  return NULL;
}

static bool result_u64(const char *line, const char *key, unsigned long long *out) {
  const char *s = result_field(line, key);
  char *end;
  if (s == NULL) return false;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return end != s && errno == 0;
}

/* The KiB figures are never negative: read as unsigned, kept as the long they are stored in. */
static bool result_long(const char *line, const char *key, long *out) {
  unsigned long long v;
  if (!result_u64(line, key, &v) || v > LONG_MAX) return false;
  *out = (long)v;
  return true;
}

static bool result_double(const char *line, const char *key, double *out) {
  const char *s = result_field(line, key);
  char *end;
  if (s == NULL) return false;
  *out = strtod(s, &end);
  return end != s;
}

/* "replay ops=N threads=N wall_s=X cpu_s=X base_kib=N peak_kib=N end_kib=N failed=N
 * peak_live=N", as the worker prints it. */
static int parse_result(const char *line, worker_result *w) {
  return strncmp(line, "replay ", 7) == 0 && result_u64(line, "ops", &w->ops) &&
         result_double(line, "wall_s", &w->wall_s) && result_double(line, "cpu_s", &w->cpu_s) &&
         result_long(line, "base_kib", &w->base_kib) && result_long(line, "peak_kib", &w->peak_kib) &&
         result_long(line, "end_kib", &w->end_kib) && result_u64(line, "failed", &w->failed) &&
         result_u64(line, "peak_live", &w->peak_live);
}

static void run_worker(const char *file, int exact, const harness_alloc *a, char **envp,
                       worker_result *w) {
  /* This very program, even if its file was replaced since it started. */
  char *argv[] = {(char *)"/proc/self/exe", (char *)"replay-worker", (char *)file, exact ? (char *)"--exact" : NULL, NULL};
  char path[] = "/tmp/strata-replay-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) cli_fail("cannot create a temporary file: %s", strerror(errno));
  unlink(path);
  pid_t pid = harness_spawn(argv, envp, -1, fd, 1);
  harness_exit e;
  if (pid < 0 || harness_wait(pid, &e) != 0) cli_fail("cannot run the replay: %s", strerror(errno));
  char line[512] = "";
  ssize_t got = pread(fd, line, sizeof line - 1, 0);
  line[got > 0 ? got : 0] = '\0';
  close(fd);
  memset(w, 0, sizeof *w);
  w->ok = !e.signaled && e.code == 0 && parse_result(line, w);
  if (!w->ok) {
    char why[160];
    cli_progress_done();
    fprintf(stderr, "strata: the replay under %s failed: %s\n", a->name,
            cli_describe_exit(&e, why, sizeof why));
  }
}

static const char replay_usage[] =
    "strata replay FILE [--allocators LIST] [--strategies LIST|all] [--runs N] [--exact]\n"
    "  LIST: comma-separated glibc jemalloc tcmalloc mimalloc strata strata:STRATEGY all\n"
    "        (default: all installed allocators)\n";

static double median_of(worker_result *res, int runs, double (*get)(const worker_result *)) {
  double v[MAX_RUNS];
  int n = 0;
  for (int r = 0; r < runs; r++)
    if (res[r].ok) v[n++] = get(&res[r]);
  return harness_median(v, n);
}
static double get_wall(const worker_result *w) { return w->wall_s; }
static double get_cpu(const worker_result *w) { return w->cpu_s; }
static double get_peak(const worker_result *w) { return (double)(w->peak_kib - w->base_kib) * 1024; }
static double get_end(const worker_result *w) { return (double)(w->end_kib - w->base_kib) * 1024; }

static int report(const trace *t, harness_alloc *allocs, int nallocs, int runs, int exact,
                  worker_result (*res)[MAX_RUNS]) {
  uint64_t expected_ops = 0;
  for (uint64_t i = 0; i < t->nevents; i++) expected_ops += !t->events[i].skip;
  int bad = 0;
  char a[32], b[32], c[32];
  printf("%-20s %9s %6s %9s %11s %7s %11s\n", "allocator", "wall (s)", "ratio", "CPU (s)",
         "peak foot.", "frag", "end RSS");
  double ref_wall = median_of(res[0], runs, get_wall);
  for (int k = 0; k < nallocs; k++) {
    int ok = 0;
    for (int r = 0; r < runs; r++) {
      const worker_result *w = &res[k][r];
      if (!w->ok) continue;
      ok++;
      if (w->ops != expected_ops || (exact && w->peak_live != t->peak_live_bytes)) {
        fprintf(stderr, "strata: replay under %s ran %llu operations (trace: %llu), peak live %llu "
                        "bytes (trace: %llu)\n", allocs[k].name, w->ops,
                (unsigned long long)expected_ops, w->peak_live,
                (unsigned long long)t->peak_live_bytes);
        bad++;
      }
    }
    if (ok == 0) {
      printf("%-20s %9s\n", allocs[k].name, "(every replay failed)");
      bad++;
      continue;
    }
    double wall = median_of(res[k], runs, get_wall), peak = median_of(res[k], runs, get_peak);
    double live = (double)t->peak_live_bytes;
    printf("%-20s %9.4f %6.2f %9.4f %11s %7.2f %11s\n", allocs[k].name, wall,
           ref_wall > 0 ? wall / ref_wall : 0, median_of(res[k], runs, get_cpu),
           cli_bytes(peak, a, sizeof a), live > 0 ? peak / live : 0,
           cli_bytes(median_of(res[k], runs, get_end), b, sizeof b));
  }
  printf("%llu operations in %u thread%s, peak live %s; medians of %d run%s, ratios to %s;\n"
         "peak foot.: peak RSS above the replayer's own; frag: peak foot. / peak live bytes%s\n",
         (unsigned long long)expected_ops, t->nthreads, t->nthreads == 1 ? "" : "s",
         cli_bytes((double)t->peak_live_bytes, c, sizeof c), runs, runs == 1 ? "" : "s",
         allocs[0].name, exact ? "\n(--exact: every event in the traced order; live bytes checked)" : "");
  return bad;
}

/* --allocators LIST (default: all, unless only --strategies is given), then
 * --strategies LIST of names or all, as strata:NAME. */
static int choose_allocators(const char *list, const char *strategies, harness_alloc *allocs) {
  int n = 0;
  if (list != NULL || strategies == NULL)
    n = cli_allocators(&cli_replay, list != NULL ? list : "all", allocs, MAX_ALLOCS);
  if (strategies != NULL && strcmp(strategies, "all") == 0) {
    n += cli_all_strategies(allocs + n, MAX_ALLOCS - n);
  } else if (strategies != NULL) {
    char *specs = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&specs, &len);
    if (f == NULL) cli_fail("out of memory");
    for (const char *p = strategies; *p != '\0';) {
      size_t l = strcspn(p, ",");
      fprintf(f, "%sstrata:%.*s", p == strategies ? "" : ",", (int)l, p);
      p += l + (p[l] == ',');
    }
    fclose(f);
    n += cli_allocators(&cli_replay, specs, allocs + n, MAX_ALLOCS - n);
    free(specs);
  }
  return n;
}

static int replay_main(int argc, char **argv) {
  const char *list = NULL, *strategies = NULL, *file = NULL;
  int runs = 3, exact = 0;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--help") == 0) {
      printf("usage: %s", replay_usage);
      return 0;
    }
    if (strcmp(opt, "--exact") == 0) {
      exact = 1;
    } else if (strncmp(opt, "--", 2) != 0) {
      if (file != NULL) cli_usage_error(&cli_replay, "one trace file, please");
      file = opt;
    } else {
      if (i + 1 >= argc) cli_usage_error(&cli_replay, "%s needs a value", opt);
      const char *v = argv[++i];
      if (strcmp(opt, "--allocators") == 0)
        list = v;
      else if (strcmp(opt, "--strategies") == 0)
        strategies = v;
      else if (strcmp(opt, "--runs") == 0)
        runs = (int)cli_number(&cli_replay, opt, v, 1, MAX_RUNS);
      else
        cli_usage_error(&cli_replay, "unknown option %s", opt);
    }
  }
  if (file == NULL) cli_usage_error(&cli_replay, "no trace file");
  static harness_alloc allocs[MAX_ALLOCS];
  int n = choose_allocators(list, strategies, allocs);
  if (n == 0) cli_fail("none of the allocators is installed");
  static trace t;
  if (trace_load(file, &t) != 0) return CLI_EXIT_FAILED;
  char **envs[MAX_ALLOCS];
  for (int k = 0; k < n; k++) envs[k] = cli_alloc_env(&allocs[k]);
  static worker_result res[MAX_ALLOCS][MAX_RUNS];
  for (int r = 0; r < runs; r++)
    for (int j = 0; j < n; j++) {
      int k = (j + r) % n;
      cli_progress("[replay %d/%d] %s", r + 1, runs, allocs[k].name);
      run_worker(file, exact, &allocs[k], envs[k], &res[k][r]);
    }
  cli_progress_done();
  return report(&t, allocs, n, runs, exact, res) ? CLI_EXIT_FAILED : 0;
}

const cli_command cli_replay = {"replay",
                                "replay a trace under allocators and strategies and compare them",
                                replay_usage, replay_main};
