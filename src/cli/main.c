/*
 * main.c — the strata command's entry: picks the subcommand, prints the overall usage, and
 * owns the helpers every subcommand shares (cli.h): usage errors, progress lines, finding
 * the libraries beside the executable, allocator lists, exit descriptions.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "strata.h"

#ifndef CLI_LIBDIR_FROM_BINDIR
#define CLI_LIBDIR_FROM_BINDIR "../lib"
#endif

static const cli_command *const commands[] = {
    &cli_run, &cli_compare, &cli_trace, &cli_replay, &cli_summary, &cli_heap, &cli_stats,
};

static void usage(FILE *out) {
  fprintf(out, "usage: strata COMMAND [options] ...\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out, "\n`strata COMMAND --help` shows a command's options; `man strata` has them all.\n");
}

void cli_usage_error(const cli_command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "strata %s: ", cmd->name);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nusage: %s", cmd->usage);
  va_end(ap);
  exit(CLI_EXIT_USAGE);
}

void cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cli_progress_done();
  fputs("strata: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(CLI_EXIT_FAILED);
}

/* ---- Progress ---------------------------------------------------------------------------- */

static int progress_shown;

int cli_progress_enabled(void) { return isatty(STDERR_FILENO); }

void cli_progress(const char *fmt, ...) {
  if (!cli_progress_enabled()) return;
  char line[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\r\033[K%s", line);
  progress_shown = 1;
}

void cli_progress_done(void) {
  if (progress_shown) fputs("\r\033[K", stderr);
  progress_shown = 0;
}

/* ---- Files beside the executable --------------------------------------------------------- */

/* dir/name when it exists, in out[PATH_MAX]; "" otherwise. */
static void find_beside(const char *name, char *out) {
  char exe[PATH_MAX];
  out[0] = '\0';
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL) return;
  *slash = '\0';
  const char *const dirs[] = {"", "/" CLI_LIBDIR_FROM_BINDIR};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s%s/%s", exe, dirs[i], name);
    if (access(path, R_OK) == 0 && realpath(path, out) != NULL) return;
  }
  out[0] = '\0';
}

const char *cli_strata_library(void) {
  static char path[PATH_MAX];
  if (path[0] == '\0') find_beside("libstrata.so", path);
  return path;
}

const char *cli_trace_library(void) {
  static char path[PATH_MAX];
  if (path[0] == '\0') find_beside("libstrata-trace.so", path);
  return path;
}

const char *cli_heap_svg_tool(void) {
  static char path[PATH_MAX];
  if (path[0] == '\0') find_beside("strata-heap-svg", path);
  return path;
}

/* ---- Shared parsing and printing --------------------------------------------------------- */

long cli_number(const cli_command *cmd, const char *opt, const char *text, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
    cli_usage_error(cmd, "%s wants a number from %ld to %ld, not '%s'", opt, lo, hi, text);
  return v;
}

char **cli_alloc_env(const harness_alloc *a) {
  char *strategy = NULL;
  if (a->strategy[0] != '\0' && asprintf(&strategy, "STRATA_STRATEGY=%s", a->strategy) < 0)
    cli_fail("out of memory");
  const char *extra[] = {strategy, NULL};
  return harness_env(a->preload, extra);
}

int cli_all_strategies(harness_alloc *out, int max) {
  int n = 0;
  for (int s = 0; s < ST_STRATEGY_COUNT && n < max; s++) {
    char spec[HARNESS_NAME_LEN];
    snprintf(spec, sizeof spec, "strata:%s", st_strategy_name((st_strategy)s));
    if (harness_alloc_find(spec, cli_strata_library(), &out[n]) == HARNESS_FOUND) n++;
  }
  return n;
}

/* Adds spec to out[*n] (a strategy is checked here, so a typo is a usage error). */
static void add_allocator(const cli_command *cmd, const char *spec, harness_alloc *out, int max,
                          int *n) {
  st_strategy s;
  if (strncmp(spec, "strata:", 7) == 0 && st_strategy_from_name(spec + 7, &s) != 0)
    cli_usage_error(cmd, "'%s' is not a strategy of strata (see docs/strategies.md)", spec + 7);
  if (*n == max) cli_usage_error(cmd, "more than %d allocators", max);
  switch (harness_alloc_find(spec, cli_strata_library(), &out[*n])) {
  case HARNESS_FOUND: (*n)++; break;
  case HARNESS_UNKNOWN:
    cli_usage_error(cmd, "unknown allocator '%s' (glibc, jemalloc, tcmalloc, mimalloc, strata, "
                         "strata:STRATEGY)", spec);
  case HARNESS_NOT_INSTALLED:
    if (out[*n].package[0] != '\0')
      fprintf(stderr, "strata: %s is not installed (sudo apt-get install %s); left out\n", spec,
              out[*n].package);
    else
      fprintf(stderr, "strata: libstrata.so not found beside the strata command; %s left out\n",
              spec);
    break;
  }
}

int cli_allocators(const cli_command *cmd, const char *list, harness_alloc *out, int max) {
  int n = 0;
  for (const char *p = list; *p != '\0';) {
    size_t len = strcspn(p, ",");
    char spec[HARNESS_NAME_LEN];
    if (len == 0 || len >= sizeof spec) cli_usage_error(cmd, "bad allocator list '%s'", list);
    snprintf(spec, sizeof spec, "%.*s", (int)len, p);
    if (strcmp(spec, "all") == 0) {
      for (size_t i = 0; harness_peer_at(i) != NULL; i++)
        add_allocator(cmd, harness_peer_at(i)->name, out, max, &n);
      add_allocator(cmd, "strata", out, max, &n);
    } else {
      add_allocator(cmd, spec, out, max, &n);
    }
    p += len + (p[len] == ',');
  }
  return n;
}

const char *cli_describe_exit(const harness_exit *e, char *buf, size_t size) {
  if (e->signaled)
    snprintf(buf, size, "killed by signal %d (%s)", e->code, strsignal(e->code));
  else if (e->code == 127)
    snprintf(buf, size, "could not be started (exit status 127)");
  else
    snprintf(buf, size, "exit status %d", e->code);
  return buf;
}

const char *cli_bytes(double bytes, char *buf, size_t size) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
  snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(name, "--version") == 0) {
    printf("strata %s\n", STRATA_VERSION);
    return 0;
  }
  signal(SIGPIPE, SIG_DFL);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(name, commands[i]->name) == 0) return commands[i]->main(argc - 1, argv + 1);
  if (strcmp(name, cli_replay_worker.name) == 0) return cli_replay_worker.main(argc - 1, argv + 1);
  fprintf(stderr, "strata: unknown command '%s'\n", name);
  usage(stderr);
  return CLI_EXIT_USAGE;
}
