/*
 * falseshare — small objects of different threads written intensively: does the allocator
 * put objects of different threads on one cache line?
 *
 * If it does, every write by one thread invalidates the line in the other cores' caches and
 * the threads, though they share no data, run many times slower. Two phases, after the
 * benchmarks of the Hoard paper (Berger et al., ASPLOS 2000):
 *   active   (cache-thrash) FS_THREADS threads start together; in each round every thread
 *            allocates FS_OBJECTS objects of FS_SIZE bytes, increments a counter in each of
 *            them FS_WRITES times, verifies and frees them;
 *   passive  (cache-scratch) the main thread allocates FS_OBJECTS objects per thread back
 *            to back and deals them out round-robin, so neighbours go to different threads;
 *            each thread writes and frees the objects it was given, then runs the active
 *            loop. An allocator that hands a freed block to the thread that freed it gives
 *            every thread back objects on lines shared with the others.
 * The time is mostly the writes, so the phases cost little when objects are apart. With
 * two cores, two of the threads run at a time, enough for lines to bounce when the cores
 * are really separate and idle (on a virtual machine they may be neither, and then the
 * cost does not show in the time). So the program also counts the placement itself: after
 * the first round's allocations all threads wait at a barrier, with every thread's objects
 * live at once, and count how many objects share a 64-byte line with another thread's.
 * Measured (not compared): active_s and passive_s, each phase's time inside the program;
 * shared_active and shared_passive, the objects (of FS_THREADS x FS_OBJECTS) on a line
 * with another thread's object in that first round.
 * The counters' final values are checked and folded per thread in round order, threads
 * combined in thread order, so the checksum is deterministic. ops counts malloc calls.
 * Usage: falseshare [SCALE]
 */
#include <pthread.h>

#include "common.h"

#define FS_THREADS 4
#define FS_SIZE 8u             /* the smallest request: most objects to a line */
#define FS_OBJECTS 4u          /* objects per thread per round */
#define FS_WRITES 10000u       /* increments per object per round */
#define FS_ROUNDS_FULL 5000ull /* rounds per thread per phase at full scale */
#define FS_LINE 64u            /* the cache line of x86-64 */

typedef struct fs_thread {
  pthread_t tid;
  unsigned id;
  uint64_t rounds;             /* const */
  void *handed[FS_OBJECTS];    /* passive: the main thread's objects to free first, else NULL */
  uintptr_t first[FS_OBJECTS]; /* out: addresses of the first round's objects */
  uint64_t checksum;           /* out */
} fs_thread;

static pthread_barrier_t fs_start;  /* so the threads allocate and write at the same time */
static pthread_barrier_t fs_placed; /* the first round's objects of every thread are live */

/* Increments the object's counter `n` times through a volatile pointer: each increment is a
 * load and a store that reach the cache, as a thread's own hot data would. */
static void fs_write(void *p, unsigned n) {
  volatile uint64_t *c = p;
  for (unsigned i = 0; i < n; i++) *c = *c + 1;
}

static void *fs_main(void *arg) {
  fs_thread *t = arg;
  bench_rng rng = bench_rng_seed(700 + t->id);
  uint64_t h = t->id;
  pthread_barrier_wait(&fs_start);
  for (unsigned k = 0; k < FS_OBJECTS; k++)
    if (t->handed[k] != NULL) {
      fs_write(t->handed[k], FS_WRITES);
      free(t->handed[k]);
    }
  for (uint64_t r = 0; r < t->rounds; r++) {
    void *obj[FS_OBJECTS];
    uint64_t tag[FS_OBJECTS];
    for (unsigned k = 0; k < FS_OBJECTS; k++) {
      tag[k] = bench_rng_next(&rng);
      obj[k] = bench_malloc(FS_SIZE);
      bench_fill(obj[k], FS_SIZE, tag[k]);
    }
    if (r == 0) {
      for (unsigned k = 0; k < FS_OBJECTS; k++) t->first[k] = (uintptr_t)obj[k];
      pthread_barrier_wait(&fs_placed);
    }
    for (unsigned k = 0; k < FS_OBJECTS; k++) fs_write(obj[k], FS_WRITES);
    for (unsigned k = 0; k < FS_OBJECTS; k++) {
      h = bench_check(obj[k], FS_SIZE, tag[k] + FS_WRITES, h);
      free(obj[k]);
    }
  }
  t->checksum = h;
  return NULL;
}

/* How many of the first round's objects share a cache line with another thread's. */
static unsigned fs_count_shared(const fs_thread *threads) {
  unsigned shared = 0;
  for (unsigned i = 0; i < FS_THREADS; i++)
    for (unsigned k = 0; k < FS_OBJECTS; k++) {
      int found = 0;
      for (unsigned j = 0; j < FS_THREADS && !found; j++)
        for (unsigned m = 0; m < FS_OBJECTS && !found && j != i; m++)
          found = threads[i].first[k] / FS_LINE == threads[j].first[m] / FS_LINE;
      shared += (unsigned)found;
    }
  return shared;
}

/* Runs one phase; returns the threads' checksums folded into h, its time in *secs and the
 * count of objects on shared lines in *shared. */
static uint64_t fs_phase(int passive, uint64_t rounds, uint64_t h, double *secs, unsigned *shared) {
  static fs_thread threads[FS_THREADS];
  if (pthread_barrier_init(&fs_start, NULL, FS_THREADS) != 0 ||
      pthread_barrier_init(&fs_placed, NULL, FS_THREADS) != 0)
    bench_die("barrier init failed");
  double t0 = bench_now();
  for (unsigned i = 0; i < FS_THREADS; i++)
    threads[i] = (fs_thread){.id = i + (passive ? FS_THREADS : 0), .rounds = rounds};
  /* All of them before any thread starts, so nothing else is allocated in between. */
  for (unsigned j = 0; passive && j < FS_THREADS * FS_OBJECTS; j++) {
    void *p = bench_malloc(FS_SIZE);
    memset(p, 0, FS_SIZE);
    threads[j % FS_THREADS].handed[j / FS_THREADS] = p;
  }
  for (unsigned i = 0; i < FS_THREADS; i++)
    if (pthread_create(&threads[i].tid, NULL, fs_main, &threads[i]) != 0)
      bench_die("pthread_create failed");
  for (unsigned i = 0; i < FS_THREADS; i++) {
    if (pthread_join(threads[i].tid, NULL) != 0) bench_die("pthread_join failed");
    h = bench_mix(h, threads[i].checksum);
  }
  *secs = bench_now() - t0;
  *shared = fs_count_shared(threads);
  pthread_barrier_destroy(&fs_start);
  pthread_barrier_destroy(&fs_placed);
  return h;
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("falseshare", argc, argv, "[SCALE]");
  uint64_t rounds = bench_scaled(FS_ROUNDS_FULL, scale, 10);
  double active_s, passive_s;
  unsigned active_shared, passive_shared;
  uint64_t h = fs_phase(0, rounds, 0, &active_s, &active_shared);
  h = fs_phase(1, rounds, h, &passive_s, &passive_shared);
  char measured[128];
  snprintf(measured, sizeof measured,
           "active_s=%.3f passive_s=%.3f shared_active=%u shared_passive=%u", active_s, passive_s,
           active_shared, passive_shared);
  uint64_t ops = FS_THREADS * FS_OBJECTS * (2 * rounds + 1); /* both phases, and the handed */
  bench_result_measured("falseshare", ops, h, measured);
  return 0;
}
