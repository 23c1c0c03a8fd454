/*
 * harness.h — running a program under a chosen allocator and measuring it, shared by the
 * benchmark runner (bench/runner.c) and the strata command (src/cli/).
 *
 * Owns: the catalogue of allocators a program can be run under (glibc, the Debian packages
 * of jemalloc, tcmalloc and mimalloc, strata and strata with one strategy) and where each
 * one's library lives; building a child's environment (LD_PRELOAD and STRATA_* settings);
 * starting a child in its own process group and reaping it with its wall time, CPU time and
 * peak RSS; medians.
 * Does not own: what is run, how results are compared or printed. Never linked into
 * libstrata: these are helpers of programs. Uses libc only; not thread safe (one caller
 * thread, as in both programs).
 */
#ifndef ST_HARNESS_H
#define ST_HARNESS_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* Where the peers' libraries are installed (Debian's multiarch directory); the environment
 * variable STRATA_PEER_LIBDIR, when set, names another. */
#ifndef HARNESS_LIBDIR
#define HARNESS_LIBDIR "/usr/lib/x86_64-linux-gnu"
#endif

enum { HARNESS_NAME_LEN = 64 };

/* One allocator a program can run under, from a spec such as "jemalloc" or
 * "strata:best-fit". */
typedef struct harness_alloc {
  char name[HARNESS_NAME_LEN];     /* the spec as given: "strata:best-fit" */
  char preload[PATH_MAX];          /* LD_PRELOAD value; "" for glibc */
  char strategy[HARNESS_NAME_LEN]; /* STRATA_STRATEGY for strata:NAME, else "" */
  const char *package;             /* the Debian package providing it ("" for strata) */
} harness_alloc;

typedef enum harness_found {
  HARNESS_FOUND,         /* *out is usable */
  HARNESS_NOT_INSTALLED, /* known, library missing: out->package says what to install */
  HARNESS_UNKNOWN,       /* not an allocator name this catalogue knows */
} harness_found;

/* The peer allocators by name, with their library file and Debian package; index from 0
 * until NULL. Used by listings and by --help texts. */
typedef struct harness_peer {
  const char *name, *file, *package;
} harness_peer;
const harness_peer *harness_peer_at(size_t i);

/* Resolves a spec: "glibc", a peer name, "strata" or "strata:STRATEGY" (strategy names are
 * not checked here: strata warns about a bad one itself). strata_lib is the libstrata.so
 * to preload for strata ("" when unknown: then strata is HARNESS_NOT_INSTALLED). */
harness_found harness_alloc_find(const char *spec, const char *strata_lib, harness_alloc *out);

/* The caller's environment without LD_PRELOAD and without the STRATA_* variables named in
 * `extra`, plus LD_PRELOAD=preload (when non-empty) and each "NAME=value" of extra
 * (NULL-terminated, may be NULL). Allocated once per call and never freed: callers build a
 * handful per process. Exits with a message when out of memory. */
char **harness_env(const char *preload, const char *const *extra);

/* The Version: of an installed Debian package in out[size], or "?". */
void harness_dpkg_version(const char *package, char *out, size_t size);

/* Whether an executable `name` is on PATH (a name with a '/' is checked as a path). */
int harness_on_path(const char *name);

/* How a child ended. */
typedef struct harness_exit {
  int signaled;      /* 1: killed by signal `code`; 0: exited with status `code` */
  int code;
  double wall_s;     /* from harness_spawn to the exit */
  double cpu_s;      /* user + system time of the child and of what it waited for */
  long maxrss_kib;   /* the child's peak resident set */
} harness_exit;

/* Starts argv (looked up on PATH when argv[0] has no '/') with envp, its stdin from in_fd
 * and its stdout to out_fd (-1: inherited); in a process group of its own when own_group
 * (a terminal's Ctrl-C then reaches only the caller, which decides about the run). A
 * program that cannot be started exits 127 after one line on stderr naming it. Returns the
 * pid, or -1 with errno when fork fails. */
pid_t harness_spawn(char *const argv[], char *const envp[], int in_fd, int out_fd, int own_group);

/* Waits for pid (retrying on EINTR) and fills *out; wall time counts from the matching
 * harness_spawn. Returns 0, or -1 with errno. */
int harness_wait(pid_t pid, harness_exit *out);

/* The median of v[0..n) (sorted in place); 0 when n is 0. */
double harness_median(double *v, int n);

#endif
