/*
 * threads — the `random` pattern run by N threads at once (N = 1, 2, 4, 8, 32), for scaling.
 *
 * Each thread runs the pattern on its own THREADS_SLOTS live blocks (~10 MB) with its own
 * seed, and the threads share a fixed total number of steps. Keeping each thread's working
 * set the same for every N keeps cache effects out of the comparison (a thread's blocks stay
 * as hot whatever N is), so an allocator that scales perfectly takes the time of threads-1
 * divided by min(N, cores); more is contention, false sharing or per-thread set-up. The
 * live set, and so the ideal peak RSS, grows with N; compare RSS across allocators at the
 * same N. Blocks never cross threads here (see `xthread` for that).
 * The checksum combines the threads' checksums in thread order, so it is deterministic.
 * ops counts malloc calls. The result line names the workload `threads-N`.
 * SLOTS overrides the live blocks per thread; only smoke tests use it, because at 32
 * threads filling the full working set (~320 MB) alone takes seconds.
 * Usage: threads [SCALE [NTHREADS [SLOTS]]]
 */
#include <pthread.h>

#include "random_pattern.h"

#define THREADS_MAX 64
#define THREADS_SLOTS (RANDOM_SLOTS / 4) /* per thread: threads-4 has random's live set */
#define THREADS_STEPS_FULL 6000000ull    /* replacements at full scale, shared by all threads */

typedef struct threads_job {
  uint64_t seed;
  size_t slots;
  uint64_t steps;
  uint64_t ops;      /* out */
  uint64_t checksum; /* out */
} threads_job;

static void *threads_main(void *arg) {
  threads_job *job = arg;
  job->checksum = random_pattern_run(job->seed, job->slots, job->steps, &job->ops);
  return NULL;
}

int main(int argc, char **argv) {
  const char *usage = "[SCALE [NTHREADS [SLOTS]]]";
  unsigned long scale = bench_start("threads", argc, argv, usage);
  unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
  unsigned long slots = argc > 3 ? strtoul(argv[3], NULL, 10) : THREADS_SLOTS;
  if (n == 0 || n > THREADS_MAX || slots == 0 || slots > THREADS_SLOTS) {
    fprintf(stderr, "usage: %s %s (1 <= NTHREADS <= %d, 1 <= SLOTS <= %u)\n", argv[0], usage,
            THREADS_MAX, THREADS_SLOTS);
    return 64;
  }
  char name[32];
  snprintf(name, sizeof name, "threads-%lu", n);
  bench_name = name;

  static threads_job jobs[THREADS_MAX];
  static pthread_t tids[THREADS_MAX];
  uint64_t steps = bench_scaled(THREADS_STEPS_FULL, scale, n);
  for (unsigned long i = 0; i < n; i++) {
    jobs[i].seed = 1000 + i;
    jobs[i].slots = slots;
    jobs[i].steps = steps / n;
    /* Always run the work on created threads, even for N = 1, so every N pays for the
     * thread start and the allocator's multi-threaded mode alike. */
    if (pthread_create(&tids[i], NULL, threads_main, &jobs[i]) != 0)
      bench_die("pthread_create failed");
  }
  uint64_t h = n, ops = 0;
  for (unsigned long i = 0; i < n; i++) {
    if (pthread_join(tids[i], NULL) != 0) bench_die("pthread_join failed");
    h = bench_mix(h, jobs[i].checksum);
    ops += jobs[i].ops;
  }
  bench_result(name, ops, h);
  return 0;
}
