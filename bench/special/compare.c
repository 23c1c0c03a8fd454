/*
 * compare.c — runs bench/special/workload.c in every variant and compares: each special
 * allocator against malloc/free of glibc, strata and the installed peers.
 *
 * Rounds interleave the runs (each round starts one run later than the previous one, so a
 * drifting machine falls on every variant alike); every run is a fresh process, the
 * malloc variants with LD_PRELOAD set (glibc: removed). The figure is the workload's own
 * cpu_ns_per_op (CPU time per allocation; process start and preemption left out). For each workload it prints the median, min and max
 * over the rounds and the speed-up against the best malloc (its median divided by the
 * variant's), then the targets: pool and arena at least 2x faster than the best
 * general-purpose malloc, with their speed-ups against every malloc measured (the `ctor`
 * workload, the slab cache's, has no target in the issue: its table only). The `floor` variant (the workload with an allocator written into
 * it, no call and no check: see workload.c) measures the work around the allocations; each
 * variant's median minus the floor's is its allocator's share, and the targets are printed
 * on both measures. A run that fails or whose checksum differs is reported with its
 * command; exit status 1 when a run of strata's (a special variant, or strata's malloc)
 * failed. --results DIR also writes the tables as markdown to DIR/special-<date>.md.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { MAX_JOBS = 24, MAX_ROUNDS = 50, LINE = 256 };

typedef struct job {
  const char *workload; /* objects | ctor | ast */
  const char *variant;  /* malloc | pool | slab | arena */
  char label[48];       /* as printed: "malloc (glibc)", "pool" */
  char preload[PATH_MAX]; /* LD_PRELOAD for the malloc variants; "" for none */
  int is_malloc, is_strata, is_floor;
  double ns[MAX_ROUNDS];
  int ok;
  char checksum[32];
} job;

static job jobs[MAX_JOBS];
static int njobs;
static const char *workload_bin = BENCH_SPECIAL_WORKLOAD;
static char failures[4096];

static void add_job(const char *w, const char *v, const char *peer, const char *preload,
                    int is_strata) {
  job *j = &jobs[njobs++];
  j->workload = w;
  j->variant = v;
  j->is_malloc = peer != NULL;
  j->is_strata = is_strata;
  j->is_floor = strcmp(v, "floor") == 0;
  if (peer) snprintf(j->label, sizeof j->label, "malloc (%s)", peer);
  else if (j->is_floor) snprintf(j->label, sizeof j->label, "floor (no allocator)");
  else snprintf(j->label, sizeof j->label, "st_%s", v);
  snprintf(j->preload, sizeof j->preload, "%s", preload ? preload : "");
}

/* The environment of a run: ours without LD_PRELOAD, plus the job's. */
static char **job_env(const job *j, char *buf, size_t size) {
  static char *env[512];
  int n = 0;
  for (char **e = environ; *e && n < 510; e++)
    if (strncmp(*e, "LD_PRELOAD=", 11) != 0) env[n++] = *e;
  if (j->preload[0]) {
    snprintf(buf, size, "LD_PRELOAD=%s", j->preload);
    env[n++] = buf;
  }
  env[n] = NULL;
  return env;
}

/* One run; returns ns_per_op, or -1 after recording why it failed. */
static double run_job(job *j, const char *scale) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  char envbuf[PATH_MAX + 16];
  char **env = job_env(j, envbuf, sizeof envbuf);
  char *argv[] = {(char *)workload_bin, (char *)j->workload, (char *)j->variant,
                  (char *)scale, NULL};
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO), close(fds[0]), close(fds[1]);
    execve(workload_bin, argv, env);
    _exit(127);
  }
  close(fds[1]);
  char line[LINE] = "";
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], line + len, sizeof line - 1 - len)) > 0) len += (size_t)n;
  line[len] = '\0';
  close(fds[0]);
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
  char sum[32] = "";
  double ns = -1;
  const char *c = strstr(line, "checksum="), *t = strstr(line, "cpu_ns_per_op=");
  if (c) sscanf(c, "checksum=%31s", sum);
  if (t) ns = strtod(t + 14, NULL);
  const char *why = pid < 0 ? "fork failed"
                    : !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? "failed"
                    : ns <= 0 ? "printed no result"
                    : NULL;
  if (!why) {
    for (int k = 0; k < njobs; k++)
      if (jobs[k].workload == j->workload && jobs[k].checksum[0] &&
          strcmp(jobs[k].checksum, sum) != 0)
        why = "checksum differs";
  }
  if (why) {
    size_t used = strlen(failures);
    snprintf(failures + used, sizeof failures - used, "  %s %s: %s (status %#x): %s%s%s %s %s %s\n",
             j->workload, j->label, why, (unsigned)status, j->preload[0] ? "LD_PRELOAD=" : "",
             j->preload, j->preload[0] ? " " : "", workload_bin, j->workload, j->variant);
    fprintf(stderr, "bench-special: %s", failures + used + 2);
    return -1;
  }
  if (!j->checksum[0]) snprintf(j->checksum, sizeof j->checksum, "%s", sum);
  return ns;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_of(const job *j) {
  double v[MAX_ROUNDS];
  memcpy(v, j->ns, sizeof(double) * (size_t)j->ok);
  qsort(v, (size_t)j->ok, sizeof v[0], cmp_double);
  return j->ok == 0 ? 0 : j->ok % 2 ? v[j->ok / 2] : (v[j->ok / 2 - 1] + v[j->ok / 2]) / 2;
}

/* The malloc job of workload w with the lowest median, or NULL. */
static const job *best_malloc(const char *w) {
  const job *best = NULL;
  for (int k = 0; k < njobs; k++)
    if (jobs[k].is_malloc && strcmp(jobs[k].workload, w) == 0 && jobs[k].ok &&
        (!best || median_of(&jobs[k]) < median_of(best)))
      best = &jobs[k];
  return best;
}

/* The job of workload w and variant v, or NULL. */
static const job *find_job(const char *w, const char *v) {
  for (int k = 0; k < njobs; k++)
    if (strcmp(jobs[k].workload, w) == 0 && strcmp(jobs[k].variant, v) == 0 && !jobs[k].is_malloc)
      return &jobs[k];
  return NULL;
}

/* Prints the tables (markdown when md) to out; returns 1 when every target passed on the
 * allocator's share. */
static int report(FILE *out, int md, int rounds) {
  static const char *const workloads[] = {"objects", "ast", "ctor"};
  static const char *const targets[] = {"pool", "arena"}; /* the issue's; none for ctor */
  int all_pass = 1;
  for (int w = 0; w < 3; w++) {
    const job *best = best_malloc(workloads[w]), *floor = find_job(workloads[w], "floor");
    double base = floor && floor->ok ? median_of(floor) : 0;
    fprintf(out, md ? "\n### %s\n\n| variant | runs | median cpu ns/op | min | max | allocator share "
                      "(median - floor) | speed-up vs %s | share speed-up |\n|---|---|---|---|---|---|---|---|\n"
                    : "\n%s\n  %-20s %5s %9s %9s %9s %9s  speed-up vs %s, on the share\n",
            workloads[w], md ? (best ? best->label : "-") : "variant", md ? "" : "runs",
            md ? "" : "median", "min", "max", md ? "" : "share", best ? best->label : "-");
    for (int k = 0; k < njobs; k++) {
      const job *j = &jobs[k];
      if (strcmp(j->workload, workloads[w]) != 0) continue;
      double med = median_of(j), lo = j->ok ? j->ns[0] : 0, hi = lo;
      for (int r = 0; r < j->ok; r++) lo = j->ns[r] < lo ? j->ns[r] : lo, hi = j->ns[r] > hi ? j->ns[r] : hi;
      double speedup = best && med > 0 ? median_of(best) / med : 0;
      double share = med - base, best_share = best ? median_of(best) - base : 0;
      double share_speedup = share > 0 && !j->is_floor ? best_share / share : 0;
      fprintf(out, md ? "| %s | %d/%d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n"
                      : "  %-20s %2d/%-2d %9.2f %9.2f %9.2f %9.2f  %.2f, %.2f\n",
              j->label, j->ok, rounds, med, lo, hi, share, speedup, share_speedup);
    }
  }
  fprintf(out, md ? "\n### targets\n\n" : "\ntargets (speed-up of the special allocator vs the best malloc: whole workload; allocator share)\n");
  for (int w = 0; w < 2; w++) {
    const job *best = best_malloc(workloads[w]), *mine = find_job(workloads[w], targets[w]),
              *floor = find_job(workloads[w], "floor");
    double whole = best && mine && mine->ok ? median_of(best) / median_of(mine) : 0;
    double base = floor && floor->ok ? median_of(floor) : 0, share = 0;
    if (whole > 0 && base > 0 && median_of(mine) > base)
      share = (median_of(best) - base) / (median_of(mine) - base);
    all_pass &= share >= 2.0;
    fprintf(out, "%s st_%s vs %s on %s: whole workload %.2fx (target >= 2x) %s; allocator share "
                 "%.2fx %s\n",
            md ? "-" : " ", targets[w], best ? best->label : "no malloc run", workloads[w], whole,
            whole == 0 ? "n/a" : whole >= 2.0 ? "PASS" : "MISS", share,
            share == 0 ? "n/a" : share >= 2.0 ? "PASS" : "MISS");
    /* and against every malloc measured, the best one included */
    for (int k = 0; k < njobs && mine && mine->ok; k++) {
      const job *j = &jobs[k];
      if (!j->is_malloc || !j->ok || strcmp(j->workload, workloads[w]) != 0) continue;
      double mw = median_of(j) / median_of(mine), ms = 0;
      if (base > 0 && median_of(mine) > base) ms = (median_of(j) - base) / (median_of(mine) - base);
      fprintf(out, "%s   vs %-20s whole %.2fx, share %.2fx\n", md ? "  -" : " ", j->label, mw, ms);
    }
  }
  return all_pass;
}

static void write_markdown(const char *dir, int argc, char **argv, int rounds, const char *scale) {
  char path[PATH_MAX], stamp[32];
  time_t now = time(NULL);
  strftime(stamp, sizeof stamp, "%Y-%m-%d-%H%M%S", localtime(&now));
  snprintf(path, sizeof path, "%s/special-%s.md", dir, stamp);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "bench-special: cannot write %s: %s\n", path, strerror(errno));
    return;
  }
  struct utsname u;
  uname(&u);
  fprintf(f, "# special allocators against malloc, %s\n\n- command:", stamp);
  for (int i = 0; i < argc; i++) { /* paths by their last component: no machine's directories */
    const char *slash = strrchr(argv[i], '/');
    fprintf(f, " %s", i == 0 ? "bench/special/compare" : slash ? slash + 1 : argv[i]);
  }
  fprintf(f, "\n- rounds: %d, scale: %s, kernel: %s %s, cores online: %ld\n", rounds, scale,
          u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN));
  report(f, 1, rounds);
  fclose(f);
  printf("bench-special: wrote %s\n", path);
}

int main(int argc, char **argv) {
  int rounds = 7;
  const char *scale = "100", *strata = BENCH_SPECIAL_STRATA, *results = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) scale = argv[++i];
    else if (strcmp(argv[i], "--strata") == 0 && i + 1 < argc) strata = argv[++i];
    else if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc) workload_bin = argv[++i];
    else if (strcmp(argv[i], "--results") == 0 && i + 1 < argc) results = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--rounds N] [--scale PCT] [--strata LIB] [--workload BIN] "
                      "[--results DIR]\n", argv[0]);
      return 64;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 7;
  static const struct { const char *name, *lib, *package; } peers[] = {
      {"jemalloc", "libjemalloc.so.2", "libjemalloc2"},
      {"tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"},
      {"mimalloc", "libmimalloc.so.2", "libmimalloc2.0"}};
  static const char *const workloads[][3] = {
      {"objects", "pool", "slab"}, {"ast", "arena", NULL}, {"ctor", "slab", "pool"}};
  for (int w = 0; w < 3; w++) {
    add_job(workloads[w][0], "malloc", "glibc", NULL, 0);
    add_job(workloads[w][0], "malloc", "strata", strata, 1);
    for (size_t p = 0; p < sizeof peers / sizeof peers[0]; p++) {
      char lib[PATH_MAX];
      snprintf(lib, sizeof lib, "%s/%s", BENCH_SPECIAL_LIBDIR, peers[p].lib);
      if (access(lib, R_OK) == 0) add_job(workloads[w][0], "malloc", peers[p].name, lib, 0);
      else if (w == 0)
        printf("bench-special: %s not installed; add it with: sudo apt-get install %s\n",
               peers[p].name, peers[p].package);
    }
    for (int v = 1; v < 3 && workloads[w][v]; v++) add_job(workloads[w][0], workloads[w][v], NULL, NULL, 1);
    add_job(workloads[w][0], "floor", NULL, NULL, 0);
  }
  printf("bench-special: %d rounds of %d runs at scale %s (%s)\n", rounds, njobs, scale, workload_bin);
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < njobs; i++) {
      job *j = &jobs[(i + r) % njobs];
      double ns = run_job(j, scale);
      if (ns > 0) j->ns[j->ok++] = ns;
    }
    printf("  round %d/%d done\n", r + 1, rounds);
    fflush(stdout);
  }
  report(stdout, 0, rounds);
  if (results) write_markdown(results, argc, argv, rounds, scale);
  int strata_failed = 0;
  for (int k = 0; k < njobs; k++) strata_failed |= jobs[k].is_strata && jobs[k].ok < rounds;
  if (failures[0]) printf("\nfailed runs:\n%s", failures);
  return strata_failed;
}
