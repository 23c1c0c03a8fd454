/*
 * threads.c — every strategy under 1, 2 and 4 threads: malloc/free throughput when threads
 * share the process's allocator.
 *
 * Owns: the multi-thread strategy comparison of docs/strategies.md. Each measurement is a
 * forked child that sets STRATA_STRATEGY before its first st_* call, then starts T threads;
 * each thread runs OPS operations on its own table of 256 slots (free the slot's block if
 * there is one, else allocate 16..1024 bytes, seeded) and hands every 16th block to the
 * next thread's inbox, which that thread frees (cross-thread frees, as producer/consumer
 * programs make). The child reports its wall time; throughput is the total operations per
 * second. Rounds are interleaved (round r runs every strategy and thread count in turn,
 * starting at strategy r), and the table gives medians and the ratio to one thread.
 *   threads [--rounds N] [--ops OPS] [--out STEM]   (writes STEM.csv and STEM.md)
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

#include "harness/harness.h"

enum { MAX_ROUNDS = 9, MAX_THREADS = 4, SLOTS = 256, INBOX = 1024, COUNTS = 3 };
static const int thread_counts[COUNTS] = {1, 2, 4};
static long ops_per_thread = 2000000;

typedef struct inbox {
  pthread_mutex_t lock;
  void *blocks[INBOX];
  int count;
} inbox;

static inbox inboxes[MAX_THREADS];
static int nthreads;

/* Frees what other threads handed over; returns how many. */
static int drain(inbox *in) {
  void *taken[INBOX];
  pthread_mutex_lock(&in->lock);
  int n = in->count;
  memcpy(taken, in->blocks, (size_t)n * sizeof(void *));
  in->count = 0;
  pthread_mutex_unlock(&in->lock);
  for (int i = 0; i < n; i++) st_free(taken[i]);
  return n;
}

/* Hands p to the inbox, or frees it here when the inbox is full. */
static void hand_over(inbox *to, void *p) {
  pthread_mutex_lock(&to->lock);
  bool room = to->count < INBOX;
  if (room) to->blocks[to->count++] = p;
  pthread_mutex_unlock(&to->lock);
  if (!room) st_free(p);
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  void *slots[SLOTS] = {0};
  uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
  inbox *next = &inboxes[(id + 1) % nthreads];
  for (long i = 0; i < ops_per_thread; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    unsigned k = (unsigned)(x >> 20) % SLOTS;
    if (slots[k] == NULL) {
      slots[k] = st_malloc(16 + (size_t)(x >> 40) % 1009);
      if (slots[k] == NULL) return (void *)1;
      *(volatile char *)slots[k] = 1;
    } else if (nthreads > 1 && i % 16 == 0) {
      hand_over(next, slots[k]);
      slots[k] = NULL;
    } else {
      st_free(slots[k]);
      slots[k] = NULL;
    }
    if (i % 256 == 0) drain(&inboxes[id]);
  }
  for (int k = 0; k < SLOTS; k++) st_free(slots[k]);
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Seconds for one measurement, or -1 when the child failed. */
static double run_child(int strategy, int threads) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    setenv("STRATA_STRATEGY", st_strategy_name((st_strategy)strategy), 1);
    st_free(st_malloc(1)); /* the strategy is decided here */
    nthreads = threads;
    for (int i = 0; i < threads; i++) pthread_mutex_init(&inboxes[i].lock, NULL);
    pthread_t t[MAX_THREADS];
    double t0 = now();
    for (int i = 0; i < threads; i++)
      if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0) _exit(2);
    bool failed = false;
    for (int i = 0; i < threads; i++) {
      void *result;
      pthread_join(t[i], &result);
      failed |= result != NULL;
    }
    for (int i = 0; i < threads; i++) drain(&inboxes[i]);
    double seconds = now() - t0;
    if (failed || st_heap_validate() != 0) _exit(3);
    if (write(fds[1], &seconds, sizeof seconds) != sizeof seconds) _exit(4);
    _exit(0);
  }
  close(fds[1]);
  double seconds = -1;
  ssize_t got = read(fds[0], &seconds, sizeof seconds);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return got == sizeof seconds && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? seconds : -1;
}


int main(int argc, char **argv) {
  int rounds = 3;
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ops") && i + 1 < argc) ops_per_thread = atol(argv[++i]);
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--rounds N] [--ops OPS] [--out STEM]\n", argv[0]);
      return 64;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || ops_per_thread < 1) return 64;
  static double seconds[ST_STRATEGY_COUNT][COUNTS][MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < ST_STRATEGY_COUNT; i++) {
      int s = (i + r) % ST_STRATEGY_COUNT;
      for (int c = 0; c < COUNTS; c++) {
        seconds[s][c][r] = run_child(s, thread_counts[c]);
        if (seconds[s][c][r] < 0) {
          fprintf(stderr, "threads: %s with %d threads failed\n",
                  st_strategy_name((st_strategy)s), thread_counts[c]);
          return 1;
        }
      }
    }
    fprintf(stderr, "threads: round %d of %d done\n", r + 1, rounds);
  }
  char path[4096];
  FILE *csv = NULL, *md = stdout;
  if (out != NULL) {
    snprintf(path, sizeof path, "%s.csv", out);
    csv = fopen(path, "w");
    snprintf(path, sizeof path, "%s.md", out);
    md = fopen(path, "w");
    if (csv == NULL || md == NULL) return 1;
    fprintf(csv, "strategy,threads,median_seconds,mops_per_second\n");
  }
  fprintf(md, "Throughput in millions of operations per second (median of %d rounds, %ld "
              "operations per thread), and the ratio to one thread:\n\n",
          rounds, ops_per_thread);
  fprintf(md, "| strategy | 1 thread | 2 threads | 4 threads | 2 / 1 | 4 / 1 |\n"
              "|---|---:|---:|---:|---:|---:|\n");
  for (int s = 0; s < ST_STRATEGY_COUNT; s++) {
    double mops[COUNTS];
    for (int c = 0; c < COUNTS; c++) {
      double m = harness_median(seconds[s][c], rounds);
      mops[c] = (double)ops_per_thread * thread_counts[c] / m / 1e6;
      if (csv) fprintf(csv, "%s,%d,%.6f,%.3f\n", st_strategy_name((st_strategy)s),
                       thread_counts[c], m, mops[c]);
    }
    fprintf(md, "| %s | %.1f | %.1f | %.1f | %.2f | %.2f |\n", st_strategy_name((st_strategy)s),
            mops[0], mops[1], mops[2], mops[1] / mops[0], mops[2] / mops[0]);
  }
  if (csv) fclose(csv);
  if (md != stdout) fclose(md);
  return 0;
}
