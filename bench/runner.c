/*
 * runner.c — runs strata's benchmark workloads under every allocator and compares them.
 *
 * Owns: the options, choosing the allocators (strata from the build, glibc, and the Debian
 * packages of jemalloc, tcmalloc and mimalloc, found by src/harness/), running each workload as a child process
 * with LD_PRELOAD, timing it (CLOCK_MONOTONIC around fork..exit) and taking its peak RSS
 * (wait4's ru_maxrss), checking that every run printed the same compared part of the result
 * line (workload, ops, checksum; measured fields after them may differ), and the CSV of
 * every run under bench/results/ headed by a description of the machine (`--report FILE`
 * reads one back).
 * Does not own: the workloads (bench/workloads/, one program each), the tables, summary,
 * targets and markdown (report.c) or the charts (charts.c, bench/plot/charts.gp).
 * Rounds interleave the allocators (round r runs every allocator once per workload, each
 * round starting one allocator later) so slow drifts of a shared machine hit all alike; odd
 * rounds go through the list backwards, so no allocator always runs right after the same
 * one (run_all says why).
 * Uses libc only; single-threaded. Signals: SIGALRM is the per-run timeout; SIGINT, SIGTERM
 * and SIGHUP kill the running child (it has its own process group) before the runner dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/harness.h"
#include "runner.h"
#include "strata.h" /* for STRATA_VERSION only: the runner never calls strata */

#ifndef BENCH_DEFAULT_STRATA
#define BENCH_DEFAULT_STRATA ""
#endif
#ifndef BENCH_DEFAULT_WORKLOADS
#define BENCH_DEFAULT_WORKLOADS "workloads"
#endif
#ifndef BENCH_DEFAULT_RESULTS
#define BENCH_DEFAULT_RESULTS "results"
#endif
#ifndef BENCH_SOURCE_DIR
#define BENCH_SOURCE_DIR "."
#endif

extern char **environ;

/* ---- What is compared ---------------------------------------------------------------- */

/* The order of the tables; each name is what the program prints in its result line. */
static const bench_workload workload_table[] = {
    {"fixed", "fixed", "", 0},
    {"random", "random", "", 0},
    {"pool-seq", "pool", "seq", 0},
    {"pool-random", "pool", "random", 0},
    {"pool-interleaved", "pool", "interleaved", 0},
    {"aligned", "aligned", "", 0},
    {"realloc", "realloc", "", 0},
    {"large", "large", "", 0},
    {"frag", "frag", "", 0},
    {"xthread", "xthread", "", 0},
    {"server", "server", "", 0},
    {"prodcons", "prodcons", "", 0},
    {"falseshare", "falseshare", "", 0},
    {"threads-1", "threads", "1", 0},
    {"threads-2", "threads", "2", 0},
    {"threads-4", "threads", "4", 0},
    {"threads-8", "threads", "8", 0},
    {"threads-32", "threads", "32", 0}, /* oversubscribed: 16 threads per core on 2 cores */
    {"footprint-small", "footprint", "small", 1},
    {"footprint-huge", "footprint", "huge", 0},
    {"footprint-growshrink", "footprint", "growshrink", 1},
    {"footprint-mixed", "footprint", "mixed", 0},
};

int workload_sleeps(const char *name) {
  for (size_t i = 0; i < sizeof workload_table / sizeof workload_table[0]; i++)
    if (strcmp(workload_table[i].name, name) == 0) return workload_table[i].sleeps;
  return 0;
}

/* Names --only accepts besides workload names and their prefixes (`pool`, `threads`). */
static const struct {
  const char *name, *members;
} group_table[] = {
    {"single", "fixed,random,pool,aligned,realloc,large,frag,footprint"},
    {"multi", "xthread,server,prodcons,falseshare,threads"},
    {"memory", "frag,footprint"},
};

bench_state st;

/* Copies src into dst[size], cutting it if too long: for fields where truncating a long
 * value is intended (snprintf would draw -Wformat-truncation). */
void copy_str(char *dst, size_t size, const char *src) {
  size_t n = strnlen(src, size - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static void add_info(const char *key, const char *fmt, ...) {
  if (st.ninfo == MAX_INFO) return;
  char *out = st.info[st.ninfo++];
  int n = snprintf(out, sizeof st.info[0], "%s: ", key);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out + n, sizeof st.info[0] - (size_t)n, fmt, ap);
  va_end(ap);
}

int find_alloc(const char *name) {
  for (int a = 0; a < st.nallocs; a++)
    if (strcmp(st.allocs[a].name, name) == 0) return a;
  return -1;
}

static int find_workload(const char *name) {
  for (int w = 0; w < st.nworkloads; w++)
    if (strcmp(st.workloads[w].name, name) == 0) return w;
  return -1;
}

/* ---- Options ----------------------------------------------------------------------- */

typedef struct bench_options {
  const char *strata, *workloads, *results, *report, *only, *alloc;
  int rounds, csv;
  int render;       /* with --report: write the markdown and charts next to the CSV */
  int strata_given; /* --strata was passed: a missing file is then an error */
  unsigned long scale;
  unsigned timeout_s;
} bench_options;

static void usage(FILE *out) {
  fputs("usage: runner [options]\n"
        "  --rounds N       runs of each workload per allocator, interleaved (default 5)\n"
        "  --scale PCT      workload size in percent of full (default 100; 1 = smoke test)\n"
        "  --only LIST      comma-separated workloads or groups:\n"
        "                     fixed random pool-seq pool-random pool-interleaved aligned\n"
        "                     realloc large frag xthread server prodcons falseshare\n"
        "                     threads-1 threads-2 threads-4 threads-8 threads-32\n"
        "                     footprint-small footprint-huge footprint-growshrink\n"
        "                     footprint-mixed\n"
        "                   groups: pool (pool-*), threads (threads-*), footprint\n"
        "                   (footprint-*), single (the single-threaded ones), multi\n"
        "                   (the multi-threaded ones), memory (frag, footprint-*)\n"
        "  --alloc LIST     comma-separated allocators: strata glibc jemalloc tcmalloc mimalloc\n"
        "                   strata-hardened (strata with STRATA_HARDENED=1; \"strata\" selects\n"
        "                   both)\n"
        "  --strata PATH    libstrata.so to measure (default: the one this build made)\n"
        "  --workloads DIR  directory of the workload programs\n"
        "  --results DIR    where the CSV goes (default: bench/results in the source tree)\n"
        "  --no-csv         write no CSV (and so no markdown or charts, which go beside it)\n"
        "  --timeout SEC    kill a run after SEC seconds and count it failed (default 300)\n"
        "  --report FILE    print the tables of a CSV written earlier; runs nothing\n"
        "  --render         with --report: (re)write FILE's .md and charts beside it\n",
        out);
}

static long parse_number(const char *opt, const char *s, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi)
    die("%s wants a number from %ld to %ld, not '%s'", opt, lo, hi, s);
  return v;
}

static void parse_options(int argc, char **argv, bench_options *o) {
  *o = (bench_options){.strata = BENCH_DEFAULT_STRATA,
                       .workloads = BENCH_DEFAULT_WORKLOADS,
                       .results = BENCH_DEFAULT_RESULTS,
                       .rounds = 5,
                       .csv = 1,
                       .scale = 100,
                       .timeout_s = 300};
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    if (strcmp(opt, "--no-csv") == 0) {
      o->csv = 0;
      continue;
    }
    if (strcmp(opt, "--render") == 0) {
      o->render = 1;
      continue;
    }
    if (i + 1 == argc) die("%s needs a value (see --help)", opt);
    const char *v = argv[++i];
    if (strcmp(opt, "--rounds") == 0)
      o->rounds = (int)parse_number(opt, v, 1, MAX_ROUNDS);
    else if (strcmp(opt, "--scale") == 0)
      o->scale = (unsigned long)parse_number(opt, v, 1, 100000);
    else if (strcmp(opt, "--timeout") == 0)
      o->timeout_s = (unsigned)parse_number(opt, v, 1, 86400);
    else if (strcmp(opt, "--only") == 0)
      o->only = v;
    else if (strcmp(opt, "--alloc") == 0)
      o->alloc = v;
    else if (strcmp(opt, "--strata") == 0)
      o->strata = v, o->strata_given = 1;
    else if (strcmp(opt, "--workloads") == 0)
      o->workloads = v;
    else if (strcmp(opt, "--results") == 0)
      o->results = v;
    else if (strcmp(opt, "--report") == 0)
      o->report = v;
    else {
      usage(stderr);
      die("unknown option %s", opt);
    }
  }
  if (o->render && o->report == NULL) die("--render goes with --report FILE");
}

/* `list` with each group name replaced by its members, in out[size]. */
static const char *expand_groups(const char *list, char *out, size_t size) {
  if (list == NULL) return NULL;
  size_t n = 0;
  out[0] = '\0';
  for (const char *p = list; *p != '\0';) {
    size_t len = strcspn(p, ",");
    const char *item = p;
    for (size_t g = 0; g < sizeof group_table / sizeof group_table[0]; g++)
      if (strlen(group_table[g].name) == len && strncmp(p, group_table[g].name, len) == 0)
        item = group_table[g].members, len = strlen(item);
    if (n + len + 2 > size) die("--only list too long");
    n += (size_t)snprintf(out + n, size - n, "%s%.*s", n ? "," : "", (int)len, item);
    p += strcspn(p, ",");
    p += *p == ',';
  }
  return out;
}

/* Whether `name` is selected by a comma-separated list (NULL selects everything). A list
 * entry also selects every name it prefixes up to a '-': "threads" selects "threads-4". */
static int selected(const char *list, const char *name) {
  if (list == NULL) return 1;
  size_t n = strlen(name);
  for (const char *p = list; *p != '\0';) {
    size_t len = strcspn(p, ",");
    if ((len == n && strncmp(p, name, n) == 0) ||
        (len < n && strncmp(p, name, len) == 0 && name[len] == '-'))
      return 1;
    p += len + (p[len] == ',');
  }
  return 0;
}

/* Every entry of `list` must select at least one of the n `known` names. */
static void check_list(const char *what, const char *list, const char *const *known, int n) {
  for (const char *p = list; p != NULL && *p != '\0';) {
    size_t len = strcspn(p, ",");
    char item[NAME_LEN];
    snprintf(item, sizeof item, "%.*s", (int)len, p);
    int found = 0;
    for (int i = 0; i < n && !found; i++) found = selected(item, known[i]);
    if (!found) die("unknown %s '%s' (see --help)", what, item);
    p += len + (p[len] == ',');
  }
}

/* ---- Allocators and machine description -------------------------------------------- */

static void add_alloc_env(const char *name, const char *path, const char *extra) {
  bench_alloc *a = &st.allocs[st.nallocs++];
  copy_str(a->name, sizeof a->name, name);
  copy_str(a->path, sizeof a->path, path);
  const char *extras[] = {extra, NULL};
  a->envp = harness_env(path, extra != NULL ? extras : NULL);
}

static void add_alloc(const char *name, const char *path) { add_alloc_env(name, path, NULL); }

/* Installed libraries are named by their path; a library from a build directory by its file
 * name only, since where someone built it says nothing to a reader of the results. */
static void describe_alloc(const char *name, const char *path, const char *version) {
  char real[PATH_MAX];
  if (path[0] == '\0' || realpath(path, real) == NULL)
    copy_str(real, sizeof real, path[0] != '\0' ? path : "(no LD_PRELOAD)");
  const char *slash = strrchr(real, '/');
  bool installed = strncmp(real, "/usr/", 5) == 0 || strncmp(real, "/lib", 4) == 0;
  add_info(name, "%s %s", version, slash != NULL && !installed ? slash + 1 : real);
}

static void find_allocators(const bench_options *o) {
  char version[128];
  if (selected(o->alloc, "strata")) {
    if (o->strata[0] != '\0' && access(o->strata, R_OK) == 0) {
      add_alloc("strata", o->strata);
      describe_alloc("alloc.strata", o->strata, STRATA_VERSION);
      if (selected(o->alloc, "strata-hardened")) { /* the same library, hardened mode */
        add_alloc_env("strata-hardened", o->strata, "STRATA_HARDENED=1");
        describe_alloc("alloc.strata-hardened", o->strata, STRATA_VERSION " STRATA_HARDENED=1");
      }
    } else if (o->strata_given)
      die("strata not found at '%s'", o->strata);
    else
      fprintf(stderr,
              "bench: strata not found at '%s'; build the `strata` target or pass "
              "--strata PATH (ratios are then relative to glibc)\n",
              o->strata);
  }
  if (selected(o->alloc, "glibc")) {
    add_alloc("glibc", "");
    harness_dpkg_version("libc6", version, sizeof version);
    describe_alloc("alloc.glibc", "", version);
  }
  for (size_t i = 1; harness_peer_at(i) != NULL; i++) { /* 0 is glibc, added above */
    const harness_peer *peer = harness_peer_at(i);
    if (!selected(o->alloc, peer->name)) continue;
    harness_alloc found;
    if (harness_alloc_find(peer->name, "", &found) != HARNESS_FOUND) {
      fprintf(stderr, "bench: %s not installed; add it with: sudo apt-get install %s\n",
              peer->name, peer->package);
      continue;
    }
    add_alloc(peer->name, found.preload);
    char key[64];
    snprintf(key, sizeof key, "alloc.%s", peer->name);
    harness_dpkg_version(peer->package, version, sizeof version);
    describe_alloc(key, found.preload, version);
  }
  if (st.nallocs == 0) die("no allocator selected");
}

/* First line of a file starting with `prefix`, after the prefix; "" if none. */
static void read_field(const char *file, const char *prefix, char *out, size_t size) {
  out[0] = '\0';
  FILE *f = fopen(file, "r");
  if (f == NULL) return;
  char line[512];
  size_t n = strlen(prefix);
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, prefix, n) == 0) {
      line[strcspn(line, "\n")] = '\0';
      copy_str(out, size, line + n);
      break;
    }
  fclose(f);
}

/* The source revision the numbers belong to, from git when there is one. */
static void describe_source(void) {
  char cmd[PATH_MAX + 96], rev[128] = "";
  snprintf(cmd, sizeof cmd, "git -C '%s' describe --always --dirty --abbrev=12 2>/dev/null",
           BENCH_SOURCE_DIR);
  FILE *p = popen(cmd, "r");
  if (p != NULL) {
    if (fgets(rev, sizeof rev, p) == NULL) rev[0] = '\0';
    pclose(p);
  }
  rev[strcspn(rev, "\n")] = '\0';
  add_info("source", "strata %s", rev[0] ? rev : "(no git revision)");
}

static void describe_machine(int argc, char **argv) {
  char buf[PATH_MAX];
  time_t now = time(NULL);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
  add_info("date", "%s", buf);
  /* Arguments by their last path component: the result files name no directory of the
   * machine they were made on. */
  size_t n = 0;
  for (int i = 0; i < argc && n < sizeof buf; i++) {
    const char *slash = strrchr(argv[i], '/');
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? " " : "", slash ? slash + 1 : argv[i]);
  }
  add_info("command", "%s", buf);
  read_field("/proc/cpuinfo", "model name\t: ", buf, sizeof buf);
  add_info("cpu", "%s", buf[0] ? buf : "?");
  add_info("cores", "%ld online, %ld configured", sysconf(_SC_NPROCESSORS_ONLN),
           sysconf(_SC_NPROCESSORS_CONF));
  add_info("memory", "%.1f GiB",
           (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1073741824.0);
  struct utsname u;
  if (uname(&u) == 0) add_info("kernel", "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
  read_field("/sys/kernel/mm/transparent_hugepage/enabled", "", buf, sizeof buf);
  add_info("transparent_hugepage", "%s", buf[0] ? buf : "?");
  add_info("glibc", "%s", gnu_get_libc_version());
  add_info("compiler", "gcc %s", __VERSION__);
  describe_source();
  add_info("scale", "%lu", st.scale);
  add_info("rounds", "%d", st.rounds);
}

/* ---- Running one workload under one allocator -------------------------------------- */

static volatile sig_atomic_t child_pid; /* the run being timed (a process group), or 0 */
static volatile sig_atomic_t timed_out;

/* Killing from the handler leaves no window where a timeout could be missed. The whole
 * group goes, so nothing the child started keeps our pipe open. */
static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child_pid > 0) kill(-(pid_t)child_pid, SIGKILL);
}

/* A run has its own process group, so a terminal's Ctrl-C reaches only the runner: take
 * the run down with us. */
static void on_interrupt(int sig) {
  if (child_pid > 0) kill(-(pid_t)child_pid, SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void install_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

/* Reads the child's stdout to EOF; keeps the last line that starts with "workload=". */
static void read_result(int fd, char *line, size_t size) {
  char buf[4096];
  size_t len = 0;
  line[0] = '\0';
  for (;;) {
    ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
    if (len == sizeof buf - 1) { /* keep only the unfinished last line */
      char *nl = memrchr(buf, '\n', len);
      size_t keep = nl != NULL ? len - (size_t)(nl + 1 - buf) : 0;
      memmove(buf, buf + len - keep, keep);
      len = keep;
    }
    buf[len] = '\0';
    for (char *p = buf; (p = strstr(p, "workload=")) != NULL; p++)
      if (p == buf || p[-1] == '\n') snprintf(line, size, "%.*s", (int)strcspn(p, "\n"), p);
  }
}

/* The length of the compared part of a result line, `workload=W ops=N checksum=H`: up to
 * the first space after `checksum=` (the whole line when nothing follows). */
size_t result_core_len(const char *line) {
  const char *c = strstr(line, " checksum=");
  if (c == NULL) return strlen(line);
  return (size_t)(c - line) + 10 + strcspn(c + 10, " ");
}

/* The measured fields after the compared part (`key=number ...`), or "". */
const char *result_measured(const char *line) {
  const char *p = line + result_core_len(line);
  return *p == ' ' ? p + 1 : p;
}

/* `workload=<name> ops=<digits> checksum=<hex>` for the expected name, then any number of
 * ` key=number` measured fields. */
static int well_formed(const char *line, const char *name) {
  char want[NAME_LEN + 16];
  snprintf(want, sizeof want, "workload=%s ops=", name);
  size_t n = strlen(want);
  if (strncmp(line, want, n) != 0) return 0;
  const char *p = line + n;
  size_t digits = strspn(p, "0123456789");
  if (digits == 0 || strncmp(p + digits, " checksum=", 10) != 0) return 0;
  p += digits + 10;
  size_t hex = strspn(p, "0123456789abcdef");
  if (hex == 0) return 0;
  for (p += hex; *p == ' ';) { /* measured fields: key=number */
    size_t key = strcspn(p + 1, "= ");
    if (key == 0 || p[1 + key] != '=') return 0;
    char *end;
    strtod(p + 2 + key, &end);
    if (end == p + 2 + key || (*end != ' ' && *end != '\0')) return 0;
    p = end;
  }
  return *p == '\0';
}

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* Starts argv[0] in its own process group with stdout into a pipe; returns the pid and,
 * in *fd, the pipe's read end. */
static pid_t spawn(char *const argv[], char *const envp[], int *fd) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) die("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    dup2(pfd[1], STDOUT_FILENO);
    execve(argv[0], argv, envp);
    fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(pfd[1]);
  setpgid(pid, pid); /* also here, so the group exists before any kill */
  *fd = pfd[0];
  return pid;
}

static void classify(bench_run *out, int status, const char *name) {
  out->status = RUN_OK;
  out->code = 0;
  if (timed_out)
    out->status = RUN_TIMEOUT;
  else if (WIFSIGNALED(status))
    out->status = RUN_SIGNAL, out->code = WTERMSIG(status);
  else if (WEXITSTATUS(status) != 0)
    out->status = RUN_EXIT, out->code = WEXITSTATUS(status);
  else if (!well_formed(out->line, name))
    out->status = RUN_NO_RESULT;
}

static void run_once(const bench_workload *w, const bench_alloc *a, bench_run *out) {
  char bin[PATH_MAX], scale[24];
  snprintf(bin, sizeof bin, "%s/%s", st.workload_dir, w->binary);
  snprintf(scale, sizeof scale, "%lu", st.scale);
  char *argv[] = {bin, scale, w->extra[0] ? (char *)w->extra : NULL, NULL};
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int fd;
  pid_t pid = spawn(argv, a->envp, &fd);
  timed_out = 0;
  child_pid = pid;
  alarm(st.timeout_s);
  read_result(fd, out->line, sizeof out->line);
  close(fd);
  /* Wait for the exit but leave the child a zombie, so its pid cannot be reused before
   * the alarm is disarmed; then reap it with wait4 for the rusage. */
  siginfo_t info;
  while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR)
    ;
  out->wall_s = seconds_since(&t0);
  alarm(0);
  child_pid = 0;
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
    ;
  out->maxrss_kib = ru.ru_maxrss;
  classify(out, status, w->name);
}

static void print_command(FILE *f, const bench_workload *w, const bench_alloc *a) {
  if (a->path[0] != '\0') fprintf(f, "LD_PRELOAD=%s ", a->path);
  fprintf(f, "%s/%s %lu%s%s", st.workload_dir, w->binary, st.scale, w->extra[0] ? " " : "",
          w->extra);
}

const char *status_text(const bench_run *r, char *buf, size_t size) {
  static const char *const names[] = {"none",    "ok",        "exit",    "signal",
                                      "timeout", "no-result", "mismatch"};
  if (r->status == RUN_EXIT || r->status == RUN_SIGNAL)
    snprintf(buf, size, "%s:%d", names[r->status], r->code);
  else
    copy_str(buf, size, names[r->status]);
  return buf;
}

static void report_failure(const bench_workload *w, const bench_alloc *a, int round,
                           const bench_run *r, const char *detail) {
  char sbuf[32];
  fprintf(stderr, "\nbench: FAILED %s under %s (round %d): %s%s%s\n  reproduce: ", w->name, a->name,
          round + 1, status_text(r, sbuf, sizeof sbuf), r->status == RUN_SIGNAL ? " " : "",
          r->status == RUN_SIGNAL ? strsignal(r->code) : "");
  print_command(stderr, w, a);
  fprintf(stderr, "\n%s", detail != NULL ? detail : "");
}

/* Runs every round, interleaving the allocators; progress goes to stderr. A run can depend
 * on the one before it: on a virtual machine that reports free memory to its host, a
 * program that asks for transparent huge pages gets them at once after a program that freed
 * huge pages, but waits for the host to back them again otherwise (footprint-huge under
 * strata: 0.07 s after strata, 0.43-0.49 s after mimalloc; docs/benchmarks.md). Going backwards every other
 * round gives each allocator both of its neighbours in the list as predecessors. */
static void run_all(void) {
  for (int r = 0; r < st.rounds; r++)
    for (int w = 0; w < st.nworkloads; w++) {
      fprintf(stderr, "[round %d/%d] %-16s", r + 1, st.rounds, st.workloads[w].name);
      for (int k = 0; k < st.nallocs; k++) {
        int a = r % 2 == 0 ? (r + k) % st.nallocs : ((r - k) % st.nallocs + st.nallocs) % st.nallocs;
        bench_run *run = &st.runs[w][a][r];
        run_once(&st.workloads[w], &st.allocs[a], run);
        run->position = k;
        fprintf(stderr, " %s %.2fs", st.allocs[a].name, run->wall_s);
        if (run->status != RUN_OK) {
          report_failure(&st.workloads[w], &st.allocs[a], r, run, NULL);
          st.failures++;
        }
      }
      fputc('\n', stderr);
    }
}

/* Every good run of a workload must print the same compared part (workload, ops, checksum)
 * as the reference: glibc's first good run when there is one (the system allocator is the
 * trusted one), else the first. Measured fields differ from run to run by nature. */
static void check_results(void) {
  for (int w = 0; w < st.nworkloads; w++) {
    const bench_run *ref = NULL;
    const bench_alloc *ref_alloc = NULL;
    for (int pass = 0; pass < 2 && ref == NULL; pass++)
      for (int a = 0; a < st.nallocs && ref == NULL; a++)
        for (int r = 0; r < st.rounds && ref == NULL; r++)
          if (st.runs[w][a][r].status == RUN_OK &&
              (pass == 1 || strcmp(st.allocs[a].name, "glibc") == 0))
            ref = &st.runs[w][a][r], ref_alloc = &st.allocs[a];
    if (ref == NULL) continue; /* every run failed, and each failure was reported already */
    for (int a = 0; a < st.nallocs; a++)
      for (int r = 0; r < st.rounds; r++) {
        bench_run *run = &st.runs[w][a][r];
        size_t n = result_core_len(ref->line);
        if (run->status != RUN_OK ||
            (result_core_len(run->line) == n && strncmp(run->line, ref->line, n) == 0))
          continue;
        run->status = RUN_MISMATCH;
        st.mismatches++;
        char detail[2 * LINE_LEN + 64];
        snprintf(detail, sizeof detail, "  got:      %s\n  expected: %s (%s)\n", run->line,
                 ref->line, ref_alloc->name);
        report_failure(&st.workloads[w], &st.allocs[a], r, run, detail);
      }
  }
}

/* ---- CSV --------------------------------------------------------------------------- */

/* `measured` is the result line's measured fields, space-separated (never a comma). CSVs
 * written before it existed have 9 columns and are read as well. */
#define CSV_COLUMNS                                                                                \
  "workload,allocator,round,position,wall_s,maxrss_kib,status,ops,checksum,measured"
#define CSV_FIELDS 10

static void mkdir_p(const char *dir) {
  char path[PATH_MAX];
  copy_str(path, sizeof path, dir);
  for (char *p = path + 1; *p != '\0'; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(path, 0777);
      *p = '/';
    }
  if (mkdir(path, 0777) != 0 && errno != EEXIST) die("cannot create %s: %s", dir, strerror(errno));
}

static void write_row(FILE *f, int w, int a, int r) {
  const bench_run *run = &st.runs[w][a][r];
  char sbuf[32], ops[24] = "", sum[24] = "";
  const char *p = strstr(run->line, " ops="), *q = strstr(run->line, " checksum=");
  if (p != NULL && q != NULL) {
    snprintf(ops, sizeof ops, "%.*s", (int)(q - p - 5), p + 5);
    snprintf(sum, sizeof sum, "%.*s", (int)strcspn(q + 10, " "), q + 10);
  }
  fprintf(f, "%s,%s,%d,%d,%.6f,%ld,%s,%s,%s,%s\n", st.workloads[w].name, st.allocs[a].name, r + 1,
          run->position, run->wall_s, run->maxrss_kib, status_text(run, sbuf, sizeof sbuf), ops,
          sum, result_measured(run->line));
}

/* Writes the CSV; returns its path without ".csv" in stem[PATH_MAX], the name the markdown
 * file and the charts take. */
static void write_csv(const char *dir, char *stem) {
  char path[PATH_MAX + 8], stamp[32];
  time_t now = time(NULL);
  strftime(stamp, sizeof stamp, "%Y-%m-%d-%H%M%S", localtime(&now));
  mkdir_p(dir);
  if (snprintf(stem, PATH_MAX, "%s/bench-%s", dir, stamp) >= PATH_MAX) die("path too long");
  snprintf(path, sizeof path, "%s.csv", stem);
  FILE *f = fopen(path, "w");
  if (f == NULL) die("cannot write %s: %s", path, strerror(errno));
  for (int i = 0; i < st.ninfo; i++) fprintf(f, "# %s\n", st.info[i]);
  fprintf(f, "%s\n", CSV_COLUMNS);
  for (int w = 0; w < st.nworkloads; w++)
    for (int a = 0; a < st.nallocs; a++)
      for (int r = 0; r < st.rounds; r++) write_row(f, w, a, r);
  if (fclose(f) != 0) die("cannot write %s: %s", path, strerror(errno));
  printf("\nraw runs written to %s\n", path);
}

/* The inverse of status_text. */
static void parse_status(const char *text, bench_run *run) {
  static const struct {
    const char *name;
    run_status status;
  } names[] = {{"ok", RUN_OK},           {"exit:", RUN_EXIT},          {"signal:", RUN_SIGNAL},
               {"timeout", RUN_TIMEOUT}, {"no-result", RUN_NO_RESULT}, {"mismatch", RUN_MISMATCH}};
  run->status = RUN_NO_RESULT;
  run->code = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strncmp(text, names[i].name, strlen(names[i].name)) == 0) {
      run->status = names[i].status;
      run->code = atoi(text + strlen(names[i].name));
      return;
    }
}

/* Parses one data row back into st; the inverse of write_row. */
static void read_row(char *line, int lineno) {
  char *field[CSV_FIELDS];
  int n = 0;
  for (char *p = line; n < CSV_FIELDS; n++) {
    field[n] = p;
    p += strcspn(p, ",\n");
    int end = *p != ',';
    *p++ = '\0';
    if (end) {
      n++;
      break;
    }
  }
  if (n != CSV_FIELDS && n != CSV_FIELDS - 1)
    die("line %d: expected %d fields", lineno, CSV_FIELDS);
  int w = find_workload(field[0]), a = find_alloc(field[1]);
  if (w < 0 && st.nworkloads < MAX_WORKLOADS) {
    copy_str(st.workloads[w = st.nworkloads++].name, NAME_LEN, field[0]);
    st.workloads[w].sleeps = workload_sleeps(field[0]);
  }
  if (a < 0 && st.nallocs < MAX_ALLOCS)
    copy_str(st.allocs[a = st.nallocs++].name, NAME_LEN, field[1]);
  int r = atoi(field[2]) - 1;
  if (w < 0 || a < 0 || r < 0 || r >= MAX_ROUNDS)
    die("line %d: too many workloads or allocators, or a bad round", lineno);
  if (r + 1 > st.rounds) st.rounds = r + 1;
  bench_run *run = &st.runs[w][a][r];
  run->position = atoi(field[3]);
  run->wall_s = strtod(field[4], NULL);
  run->maxrss_kib = atol(field[5]);
  parse_status(field[6], run);
  const char *measured = n == CSV_FIELDS ? field[9] : "";
  snprintf(run->line, sizeof run->line, "workload=%s ops=%s checksum=%s%s%s", field[0], field[7],
           field[8], measured[0] ? " " : "", measured);
  if (run->status != RUN_OK) {
    if (run->status == RUN_MISMATCH)
      st.mismatches++;
    else
      st.failures++;
  }
}

static void read_csv(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) die("cannot read %s: %s", path, strerror(errno));
  char line[PATH_MAX + 128];
  int lineno = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    lineno++;
    if (line[0] == '#') {
      line[strcspn(line, "\n")] = '\0';
      if (st.ninfo < MAX_INFO) copy_str(st.info[st.ninfo++], sizeof st.info[0], line + 2);
    } else if (strncmp(line, "workload,", 9) != 0 && line[0] != '\n')
      read_row(line, lineno);
  }
  fclose(f);
  if (st.nallocs == 0) die("%s holds no runs", path);
}

/* ---- main -------------------------------------------------------------------------- */

static void select_workloads(const bench_options *o) {
  enum { n = sizeof workload_table / sizeof workload_table[0] };
  const char *names[n];
  for (size_t i = 0; i < n; i++) names[i] = workload_table[i].name;
  char buf[1024];
  const char *only = expand_groups(o->only, buf, sizeof buf);
  check_list("workload", only, names, n);
  for (size_t i = 0; i < n; i++) {
    if (!selected(only, workload_table[i].name)) continue;
    char bin[PATH_MAX];
    snprintf(bin, sizeof bin, "%s/%s", o->workloads, workload_table[i].binary);
    if (access(bin, X_OK) != 0)
      die("workload program %s missing; build the bench targets or pass --workloads DIR", bin);
    st.workloads[st.nworkloads++] = workload_table[i];
  }
}

int main(int argc, char **argv) {
  bench_options o;
  parse_options(argc, argv, &o);
  if (o.report != NULL) {
    read_csv(o.report);
    report_print();
    if (o.render) {
      char stem[PATH_MAX];
      copy_str(stem, sizeof stem, o.report);
      size_t len = strlen(stem);
      if (len > 4 && strcmp(stem + len - 4, ".csv") == 0) stem[len - 4] = '\0';
      report_write_markdown(stem, charts_write(stem));
    }
    return 0;
  }
  static const char *const known_allocs[] = {"strata", "strata-hardened", "glibc", "jemalloc",
                                             "tcmalloc", "mimalloc"};
  check_list("allocator", o.alloc, known_allocs, 6);
  st.rounds = o.rounds;
  st.scale = o.scale;
  st.timeout_s = o.timeout_s;
  st.workload_dir = o.workloads;
  select_workloads(&o);
  describe_machine(argc, argv);
  find_allocators(&o);
  install_handlers();
  run_all();
  struct rusage self;
  getrusage(RUSAGE_SELF, &self);
  add_info("runner_maxrss_kib",
           "%ld (a run's peak RSS includes the runner's forked image, "
           "so no run reads below this)",
           self.ru_maxrss);
  check_results();
  report_print();
  if (o.csv) {
    char stem[PATH_MAX];
    write_csv(o.results, stem);
    report_write_markdown(stem, charts_write(stem));
  }
  if (st.failures + st.mismatches > 0)
    printf("\nbench: %d failed run(s) and %d checksum mismatch(es); see the messages above\n",
           st.failures, st.mismatches);
  /* A peer's own bug (mimalloc 2.0.9 returns misaligned blocks in `aligned`) is a finding,
   * listed in the summary, not a reason to fail `make bench`; strata's failures are. */
  return report_strata_failed() ? 1 : 0;
}
