/*
 * alloc_pattern.c — a program with a known allocation pattern for the strata command's
 * tests: every function of the malloc family, blocks handed between threads (freed by
 * another thread than the one that made them), and optionally a fork child that allocates.
 *
 *   alloc_pattern THREADS [fork]
 * Prints "pattern bytes=B peak=P" (P: the peak of the live bytes this program itself asked
 * for, before any thread starts) and the same line on every run, whatever the allocator.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { BLOCKS = 2000, HANDOFF = 512 };

/* One slot per handed-off block: the next thread frees what the previous one made. */
static void *handoff[64][HANDOFF];
static pthread_barrier_t made;
static int nthreads;

static size_t size_of(unsigned i) { return 16 + (i * 2654435761u) % (i % 50 == 0 ? 200000 : 2000); }

static void *worker(void *arg) {
  int k = (int)(intptr_t)arg;
  for (int i = 0; i < HANDOFF; i++) {
    handoff[k][i] = malloc(size_of((unsigned)(i + k)));
    memset(handoff[k][i], k, 16);
  }
  pthread_barrier_wait(&made);
  int prev = (k + nthreads - 1) % nthreads;
  for (int i = 0; i < HANDOFF; i++) free(handoff[prev][i]);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: alloc_pattern THREADS [fork]\n");
    return 2;
  }
  nthreads = atoi(argv[1]);
  if (nthreads < 1 || nthreads > 64) return 2;
  static void *blocks[BLOCKS];
  size_t live = 0, peak = 0, total = 0;
  for (unsigned i = 0; i < BLOCKS; i++) {
    size_t n = size_of(i);
    void *p = NULL;
    switch (i % 4) {
    case 0: p = malloc(n); break;
    case 1: p = calloc(1, n); break;
    case 2: p = aligned_alloc(64, (n + 63) & ~(size_t)63), n = (n + 63) & ~(size_t)63; break;
    case 3:
      if (posix_memalign(&p, 256, n) != 0) p = NULL;
      break;
    }
    if (p == NULL) return 1;
    memset(p, 1, n < 64 ? n : 64);
    blocks[i] = p;
    live += n, total += n;
    peak = live > peak ? live : peak;
    if (i % 3 == 0) { /* grow a third of them */
      void *q = realloc(p, n * 2);
      if (q == NULL) return 1;
      blocks[i] = q;
      live += n, total += n * 2;
      peak = live > peak ? live : peak;
    }
    if (i % 5 == 4) { /* and free some of the earlier ones */
      unsigned j = i - 3;
      free(blocks[j]);
      size_t m = size_of(j);
      if (j % 4 == 2) m = (m + 63) & ~(size_t)63;
      live -= j % 3 == 0 ? 2 * m : m;
      blocks[j] = NULL;
    }
  }
  for (unsigned i = 0; i < BLOCKS; i++) free(blocks[i]);
  pthread_barrier_init(&made, NULL, (unsigned)nthreads);
  pthread_t ids[64];
  for (int k = 0; k < nthreads; k++)
    if (pthread_create(&ids[k], NULL, worker, (void *)(intptr_t)k) != 0) return 1;
  for (int k = 0; k < nthreads; k++) pthread_join(ids[k], NULL);
  if (argc > 2 && strcmp(argv[2], "fork") == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      static void *volatile kept[100]; /* volatile: the pairs must not be optimised away */
      for (int i = 0; i < 100; i++) kept[i] = malloc(100 + (size_t)i);
      for (int i = 0; i < 100; i++) free(kept[i]);
      exit(0); /* exit, not _exit: the tracer writes its buffers at exit */
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0) return 1;
  }
  printf("pattern bytes=%zu peak=%zu\n", total, peak);
  return 0;
}
