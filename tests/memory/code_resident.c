/*
 * code_resident.c — strata's own code stays within one fault-around window (run with
 * LD_PRELOAD=libstrata.so; not timed).
 *
 * The kernel maps a shared library's code 64 KiB at a time, from the page a process first
 * runs (clamped to the mapping's start), so every distant page strata runs makes up to
 * 64 KiB more of libstrata.so resident in every process. The files on the default path are
 * linked first (CMakeLists.txt, STRATA_DEFAULT_PATH_SOURCES) and must fit in the first
 * window: after small, page-sized, large and huge blocks, realloc, calloc, aligned blocks,
 * a thread's life and a trim, the executable mapping holds at most 64 KiB. A page of the
 * default path that drifted past the window, or a call into code linked at the end (a
 * libgcc helper, the classic strategies), shows here as 100+ KiB. A kernel configured with
 * a smaller fault-around window maps less, which passes too.
 *
 * Usage: code_resident <libstrata.so>. The program drops the library's pages from the page
 * cache, then runs itself again with the library preloaded, so that the cache is filled by
 * the loader's page faults, as for any installed library: a file just written by `cp` may
 * sit in the cache as large folios, which the kernel maps whole.
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define WINDOW_KIB 64

static void allocate_each_kind(void) {
  static const size_t sizes[] = {1, 32, 1000, 5000, 12000, 40000, 1 << 20, 20 << 20};
  void *blocks[sizeof sizes / sizeof sizes[0]];
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    blocks[i] = malloc(sizes[i]);
    REQUIRE(blocks[i] != NULL);
    memset(blocks[i], 1, sizes[i]);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    blocks[i] = realloc(blocks[i], sizes[i] * 2);
    REQUIRE(blocks[i] != NULL);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) free(blocks[i]);
  void *zeroed = calloc(100, 48), *aligned = aligned_alloc(4096, 8192);
  CHECK(zeroed != NULL && aligned != NULL);
  free(zeroed);
  free(aligned);
}

static void *thread_main(void *arg) {
  (void)arg;
  allocate_each_kind();
  return malloc(64); /* freed by the main thread: a remote free */
}

/* Rss of the executable mapping of the file at `path` (resolved), in KiB; -1 if none. */
static long code_rss_kib(const char *path) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) return -1;
  char line[512];
  long rss = -1;
  int in_mapping = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    char perms[8];
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3) {
      size_t n = strlen(line), k = strlen(path);
      while (n > 0 && line[n - 1] == '\n') n--;
      in_mapping = n >= k && memcmp(line + n - k, path, k) == 0 && perms[2] == 'x';
    } else if (in_mapping && strncmp(line, "Rss:", 4) == 0) {
      rss = strtol(line + 4, NULL, 10);
      in_mapping = 0;
    }
  }
  fclose(f);
  return rss;
}

static void run(void) {
  allocate_each_kind();
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, thread_main, NULL) == 0);
  void *from_thread;
  REQUIRE(pthread_join(thread, &from_thread) == 0);
  free(from_thread);
  malloc_trim(0);
  const char *library = getenv("CODE_RESIDENT_PRELOADED");
  long rss = code_rss_kib(library);
  REQUIRE(rss >= 0); /* the library is preloaded */
  printf("%s: code resident %ld KiB\n", library, rss);
  CHECK_LE(rss, WINDOW_KIB);
}

/* Drops the library's cached pages (those no process maps) and runs this program again
 * with it preloaded; returns only on failure. */
static void rerun_preloaded(const char *path) {
  char library[4096];
  if (realpath(path, library) == NULL) {
    perror(path);
    return;
  }
  int fd = open(library, O_RDONLY);
  if (fd >= 0) {
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
  setenv("LD_PRELOAD", library, 1);
  setenv("CODE_RESIDENT_PRELOADED", library, 1);
  execl("/proc/self/exe", "code_resident", (char *)NULL);
  perror("code_resident: exec");
}

int main(int argc, char **argv) {
  if (getenv("CODE_RESIDENT_PRELOADED") == NULL) {
    if (argc != 2) {
      fprintf(stderr, "usage: code_resident <libstrata.so>\n");
      return 2;
    }
    rerun_preloaded(argv[1]);
    return 1;
  }
  run();
  return check_summary();
}
