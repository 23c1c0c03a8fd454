/*
 * soak.c — a long multi-threaded mixed workload (docs/testing.md, "Soak").
 *
 * Owns: THREADS workers that for a given time malloc, calloc, realloc, aligned_alloc and
 * free blocks of every size class with checked contents, hand a share of their blocks to
 * the next worker to free (cross-thread frees), and now and then drop their whole working
 * set (a phase change, so freed memory must be reused, not piled up). The live set is
 * bounded by construction (SLOTS blocks per worker), so memory must be too: every few
 * seconds the main thread samples the resident set; RSS must stay under a fixed bound above
 * the largest live set the workers can hold, and after the first third of the run (the
 * warm-up) may not grow beyond a quarter above the warm-up's peak plus 32 MiB: a leak or
 * unbounded caching shows as growth while the live set stays the same. Run with libc names under
 * LD_PRELOAD (or against glibc). soak [--seconds N]     (STRATA_SOAK_SECONDS overrides; default
 * 120)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "override_util.h"

enum { THREADS = 4, SLOTS = 512, MAILBOX = 64, SAMPLE_SECONDS = 2 };
static const size_t MiB = (size_t)1 << 20;
/* The most one worker can hold: SLOTS blocks, of which at most 1 in 64 is large (< 2 MiB),
 * plus its mailbox. Allocator overhead, caches and the threads' stacks come on top. */
static const size_t WORKER_LIVE_MAX = SLOTS * 4096 + (SLOTS / 64 + MAILBOX) * (2u << 20);
static const size_t OVERHEAD_ALLOWED = 128u << 20;

typedef struct worker {
  pthread_t thread;
  unsigned id;
  pthread_mutex_t lock;   /* guards mailbox */
  void *mailbox[MAILBOX]; /* blocks handed over by the previous worker, with sizes below */
  size_t mailbox_size[MAILBOX];
  atomic_ulong ops;
  atomic_int failed; /* the step at which a check failed, or 0 */
} worker;

static worker workers[THREADS];
static atomic_bool stop;

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

static size_t random_size(uint64_t *s) {
  uint64_t r = next_rand(s);
  if (r % 64 == 0) return 64 * 1024 + (size_t)(r >> 16) % (2 * MiB - 64 * 1024); /* large */
  if (r % 8 == 0) return 512 + (size_t)(r >> 16) % 3584;
  return 1 + (size_t)(r >> 16) % 512;
}

/* Gives a block to the next worker, which frees it; returns false when its mailbox is full. */
static bool hand_over(worker *w, void *p, size_t size) {
  worker *to = &workers[(w->id + 1) % THREADS];
  bool done = false;
  pthread_mutex_lock(&to->lock);
  for (int i = 0; i < MAILBOX && !done; i++)
    if (to->mailbox[i] == NULL) {
      to->mailbox[i] = p;
      to->mailbox_size[i] = size;
      done = true;
    }
  pthread_mutex_unlock(&to->lock);
  return done;
}

static bool empty_mailbox(worker *w) {
  bool ok = true;
  pthread_mutex_lock(&w->lock);
  for (int i = 0; i < MAILBOX; i++)
    if (w->mailbox[i]) {
      ok &= pattern_ok(w->mailbox[i], w->mailbox_size[i], (uint32_t)w->mailbox_size[i]);
      free(w->mailbox[i]);
      w->mailbox[i] = NULL;
    }
  pthread_mutex_unlock(&w->lock);
  return ok;
}

static void *work(void *arg) {
  worker *w = arg;
  uint64_t seed = 0x9E3779B97F4A7C15u * (w->id + 1);
  void *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  for (unsigned long step = 1; !atomic_load_explicit(&stop, memory_order_relaxed); step++) {
    unsigned k = (unsigned)(next_rand(&seed) % SLOTS);
    if (slot[k] && !pattern_ok(slot[k], size[k], (uint32_t)size[k])) goto broken;
    size_t n = random_size(&seed);
    void *p;
    switch (step % 6) {
    case 0:
      p = realloc(slot[k], n);
      slot[k] = NULL;
      break;
    case 1:
      p = calloc(1, n);
      break;
    case 2:
      p = aligned_alloc((size_t)64 << (step % 7), n);
      break;
    default:
      p = malloc(n);
      break;
    }
    if (p == NULL) goto broken;
    if (slot[k] && !(step % 3 == 0 && hand_over(w, slot[k], size[k]))) free(slot[k]);
    pattern_fill(p, n, (uint32_t)n);
    slot[k] = p;
    size[k] = n;
    if (step % 256 == 0 && !empty_mailbox(w)) goto broken;
    if (step % 200000 == 0) /* a phase change: drop the working set */
      for (int i = 0; i < SLOTS; i++) free(slot[i]), slot[i] = NULL;
    atomic_store_explicit(&w->ops, step, memory_order_relaxed);
  }
  for (int i = 0; i < SLOTS; i++) free(slot[i]);
  return NULL;
broken:
  atomic_store(&w->failed, 1);
  return NULL;
}

static long soak_seconds(int argc, char **argv) {
  const char *env = getenv("STRATA_SOAK_SECONDS");
  if (env && *env) return atol(env);
  if (argc == 3 && strcmp(argv[1], "--seconds") == 0) return atol(argv[2]);
  return 120;
}

static void case_soak(long seconds) {
  for (unsigned i = 0; i < THREADS; i++) {
    workers[i].id = i;
    pthread_mutex_init(&workers[i].lock, NULL);
    REQUIRE(pthread_create(&workers[i].thread, NULL, work, &workers[i]) == 0);
  }
  const size_t bound = THREADS * WORKER_LIVE_MAX + OVERHEAD_ALLOWED;
  size_t vsize, rss, peak_rss = 0, warm_rss = 0;
  for (long t = 0; t < seconds; t += SAMPLE_SECONDS) {
    sleep(SAMPLE_SECONDS);
    bool failed = false;
    for (int i = 0; i < THREADS; i++) failed |= atomic_load(&workers[i].failed) != 0;
    REQUIRE(!failed);
    REQUIRE(proc_memory(&vsize, &rss));
    if (rss > peak_rss) peak_rss = rss;
    if (t < seconds / 3)
      warm_rss = peak_rss;
    else
      CHECK_MSG(rss <= warm_rss + warm_rss / 4 + 32 * MiB,
                "after %ld s: RSS %zu MiB grew from %zu MiB", t, rss / MiB, warm_rss / MiB);
    CHECK_MSG(rss <= bound, "after %ld s: RSS %zu MiB above the bound %zu MiB", t, rss / MiB,
              bound / MiB);
  }
  atomic_store(&stop, true);
  unsigned long ops = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(workers[i].thread, NULL);
    CHECK_MSG(atomic_load(&workers[i].failed) == 0, "worker %d saw a broken block", i);
    CHECK(empty_mailbox(&workers[i]));
    ops += atomic_load(&workers[i].ops);
  }
  CHECK_EQ(strata_validate(), 0);
  printf("soak: %ld s, %d threads, %lu operations, RSS %zu MiB after warm-up, peak %zu MiB "
         "(bound %zu MiB)%s\n",
         seconds, THREADS, ops, warm_rss / MiB, peak_rss / MiB, bound / MiB,
         strata_present() ? ", strata served it" : "");
}

int main(int argc, char **argv) {
  long seconds = soak_seconds(argc, argv);
  alarm((unsigned)seconds + 300); /* a hang fails with SIGALRM */
  case_soak(seconds);
  return check_summary();
}
