/*
 * harness.c — the allocator catalogue, child environments, starting and reaping children,
 * medians (harness.h).
 *
 * Wall time is measured from fork to the
 * exit seen by wait4, which also yields the child's rusage (peak RSS, CPU time); the start
 * times of the children in flight are kept in a small table keyed by pid.
 */
#include "harness/harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const harness_peer peer_table[] = {
    {"glibc", "", "libc6"},
    {"jemalloc", "libjemalloc.so.2", "libjemalloc2"},
    {"tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"},
    {"mimalloc", "libmimalloc.so.2", "libmimalloc2.0"},
};

const harness_peer *harness_peer_at(size_t i) {
  return i < sizeof peer_table / sizeof peer_table[0] ? &peer_table[i] : NULL;
}

static void copy_field(char *dst, size_t size, const char *src) {
  size_t n = strnlen(src, size - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

harness_found harness_alloc_find(const char *spec, const char *strata_lib, harness_alloc *out) {
  memset(out, 0, sizeof *out);
  if (strlen(spec) >= sizeof out->name) return HARNESS_UNKNOWN;
  copy_field(out->name, sizeof out->name, spec);
  out->package = "";
  if (strcmp(spec, "strata") == 0 || strncmp(spec, "strata:", 7) == 0) {
    if (spec[6] == ':') {
      if (spec[7] == '\0') return HARNESS_UNKNOWN;
      copy_field(out->strategy, sizeof out->strategy, spec + 7);
    }
    if (strata_lib == NULL || strata_lib[0] == '\0' || access(strata_lib, R_OK) != 0)
      return HARNESS_NOT_INSTALLED;
    copy_field(out->preload, sizeof out->preload, strata_lib);
    return HARNESS_FOUND;
  }
  for (const harness_peer *p = peer_table; p < peer_table + sizeof peer_table / sizeof *p; p++) {
    if (strcmp(spec, p->name) != 0) continue;
    out->package = p->package;
    if (p->file[0] == '\0') return HARNESS_FOUND; /* glibc: nothing to preload */
    const char *dir = getenv("STRATA_PEER_LIBDIR"); /* elsewhere than Debian's directory */
    if (dir == NULL || dir[0] == '\0') dir = HARNESS_LIBDIR;
    snprintf(out->preload, sizeof out->preload, "%s/%s", dir, p->file);
    return access(out->preload, R_OK) == 0 ? HARNESS_FOUND : HARNESS_NOT_INSTALLED;
  }
  return HARNESS_UNKNOWN;
}

static void *checked(void *p) {
  if (p == NULL) {
    fputs("strata: out of memory\n", stderr);
    exit(2);
  }
  return p;
}

/* Whether "NAME=..." names the same variable as one of extra's "NAME=value". */
static int overridden(const char *var, const char *const *extra) {
  size_t n = strcspn(var, "=");
  if (strncmp(var, "LD_PRELOAD=", 11) == 0) return 1;
  for (; extra != NULL && *extra != NULL; extra++)
    if (strncmp(var, *extra, n + 1) == 0) return 1;
  return 0;
}

char **harness_env(const char *preload, const char *const *extra) {
  size_t n = 0, k = 0, e = 0;
  while (environ[n] != NULL) n++;
  while (extra != NULL && extra[e] != NULL) e++;
  char **env = checked(calloc(n + e + 2, sizeof *env));
  for (size_t i = 0; i < n; i++)
    if (!overridden(environ[i], extra)) env[k++] = environ[i];
  if (preload[0] != '\0') {
    size_t len = strlen(preload) + 12;
    env[k] = checked(malloc(len));
    snprintf(env[k++], len, "LD_PRELOAD=%s", preload);
  }
  for (size_t i = 0; i < e; i++) env[k++] = (char *)extra[i];
  return env;
}

void harness_dpkg_version(const char *package, char *out, size_t size) {
  snprintf(out, size, "?");
  FILE *f = fopen("/var/lib/dpkg/status", "r");
  if (f == NULL) return;
  char line[512], want[128];
  snprintf(want, sizeof want, "Package: %s\n", package);
  int in_stanza = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "Package: ", 9) == 0)
      in_stanza = strcmp(line, want) == 0;
    else if (in_stanza && strncmp(line, "Version: ", 9) == 0) {
      line[strcspn(line, "\n")] = '\0';
      copy_field(out, size, line + 9);
      break;
    }
  }
  fclose(f);
}

int harness_on_path(const char *name) {
  if (strchr(name, '/') != NULL) return access(name, X_OK) == 0;
  const char *path = getenv("PATH");
  if (path == NULL) path = "/usr/bin:/bin";
  for (const char *p = path; *p != '\0';) {
    size_t len = strcspn(p, ":");
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%.*s/%s", (int)len, len ? p : ".", name);
    if (access(file, X_OK) == 0) return 1;
    p += len + (p[len] == ':');
  }
  return 0;
}

/* ---- Children ------------------------------------------------------------------------ */

enum { MAX_IN_FLIGHT = 64 };
static struct {
  pid_t pid;
  struct timespec start;
} in_flight[MAX_IN_FLIGHT];

static double seconds_between(const struct timespec *a, const struct timespec *b) {
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

pid_t harness_spawn(char *const argv[], char *const envp[], int in_fd, int out_fd, int own_group) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  fflush(NULL); /* nothing buffered may be written twice */
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (own_group) setpgid(0, 0);
    if (in_fd >= 0) dup2(in_fd, STDIN_FILENO);
    if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
    environ = (char **)envp;
    execvp(argv[0], argv);
    fprintf(stderr, "strata: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  if (own_group) setpgid(pid, pid); /* also here: the group exists before any kill */
  for (int i = 0; i < MAX_IN_FLIGHT; i++)
    if (in_flight[i].pid == 0) {
      in_flight[i].pid = pid;
      in_flight[i].start = t0;
      break;
    }
  return pid;
}

int harness_wait(pid_t pid, harness_exit *out) {
  int status;
  struct rusage ru;
  pid_t got;
  while ((got = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
    ;
  if (got < 0) return -1;
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  memset(out, 0, sizeof *out);
  for (int i = 0; i < MAX_IN_FLIGHT; i++)
    if (in_flight[i].pid == pid) {
      out->wall_s = seconds_between(&in_flight[i].start, &t1);
      in_flight[i].pid = 0;
    }
  out->signaled = WIFSIGNALED(status);
  out->code = out->signaled ? WTERMSIG(status) : WEXITSTATUS(status);
  out->cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  out->maxrss_kib = ru.ru_maxrss;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double harness_median(double *v, int n) {
  if (n <= 0) return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
