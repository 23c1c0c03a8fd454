/*
 * server — a request-serving process: 16 worker threads (on however few cores), each
 * allocating requests of mixed sizes and sending them to other workers, which free them.
 *
 * A worker loop: take everything in its inbox and "serve" it (verify the block, then free
 * it; one request in 16 is kept instead in the worker's session table of 64 entries,
 * freeing the entry it replaces, so some blocks outlive many requests and are freed long
 * after, far from where they were allocated); then send a batch of new requests to random
 * other workers, as long as fewer than SV_INFLIGHT of its own are unanswered.
 * So nearly every free is a remote free, at a high rate, from threads that also allocate,
 * with far more threads than cores: this measures the cross-thread free path under
 * contention and preemption, and whether memory freed away from home returns to use
 * (peak RSS stays bounded: at most 16 x (64 in flight + 64 kept) requests are live).
 * Sizes: 70% are 32..512 B (headers), 25% 512 B..8 KiB (bodies), 5% 8..64 KiB (uploads).
 * Inboxes are lock-free LIFO stacks (push with CAS, the owner takes all with one exchange);
 * answered requests give their sender's credit back with one atomic decrement.
 * Arrival order depends on scheduling, so the checksum adds up a per-request hash (a sum
 * does not depend on order); the set of requests is fixed by the seeds, so the result line
 * is the same under every correct allocator. ops counts malloc calls.
 * Usage: server [SCALE [WORKERS]]
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "common.h"

#define SV_WORKERS_DEFAULT 16
#define SV_WORKERS_MAX 64
#define SV_REQUESTS_FULL 1200000ull /* requests at full scale, shared by the workers */
#define SV_INFLIGHT 64u             /* a worker's unanswered requests before it waits */
#define SV_BATCH 16u                /* requests sent per turn */
#define SV_SESSIONS 64u             /* kept-alive requests per worker; a power of two */

/* A request block starts with this header; the bench_fill pattern covers the rest. */
typedef struct sv_req {
  struct sv_req *next; /* link in the receiver's inbox; written by the sender before push */
  uint32_t from;       /* sending worker, whose credit is returned when served */
  uint32_t size;       /* bytes of the whole block */
  uint64_t tag;
} sv_req;

#define SV_MIN_SIZE 32u /* header plus one pattern word */
_Static_assert(sizeof(sv_req) + 8 <= SV_MIN_SIZE, "a request holds its header and a tag word");

typedef struct sv_worker {
  _Alignas(64) _Atomic(sv_req *) xinbox; /* atomic: any worker pushes, the owner takes all */
  _Alignas(64) atomic_uint xinflight;    /* atomic: owner adds, receivers subtract */
  _Alignas(64) unsigned id;              /* const after start */
  uint64_t requests;                     /* const after start: how many this worker sends */
  uint64_t sum;                          /* owner only: sum of served requests' hashes */
  sv_req *sessions[SV_SESSIONS];         /* owner only: kept-alive requests */
} sv_worker;

static sv_worker sv_workers[SV_WORKERS_MAX];
static unsigned sv_nworkers;
static uint64_t sv_total;                  /* const after start: requests of all workers */
static _Alignas(64) atomic_ullong xserved; /* atomic: requests served by anyone */

static size_t sv_size(bench_rng *rng) {
  uint64_t r = bench_rng_below(rng, 100);
  if (r < 70) return bench_size_log_uniform(rng, SV_MIN_SIZE, 512);
  if (r < 95) return bench_size_log_uniform(rng, 512, 8u << 10);
  return bench_size_log_uniform(rng, 8u << 10, 64u << 10);
}

/* The order-free part of the checksum: one hash per request, verified before its free. */
static uint64_t sv_release(sv_req *q) {
  uint64_t h = bench_check((unsigned char *)q + sizeof *q, q->size - sizeof *q, q->tag, q->tag);
  free(q);
  return h;
}

static void sv_send(sv_worker *w, bench_rng *rng) {
  size_t size = sv_size(rng);
  sv_req *q = bench_malloc(size);
  q->from = w->id;
  q->size = (uint32_t)size;
  q->tag = bench_rng_next(rng);
  bench_fill((unsigned char *)q + sizeof *q, size - sizeof *q, q->tag);
  sv_worker *to = &sv_workers[(w->id + 1 + bench_rng_below(rng, sv_nworkers - 1)) % sv_nworkers];
  atomic_fetch_add_explicit(&w->xinflight, 1, memory_order_relaxed);
  sv_req *head = atomic_load_explicit(&to->xinbox, memory_order_relaxed);
  do q->next = head;
  while (!atomic_compare_exchange_weak_explicit(&to->xinbox, &head, q, memory_order_release,
                                                memory_order_relaxed));
}

/* Serves the whole inbox; returns how many requests it held. */
static uint64_t sv_serve(sv_worker *w) {
  sv_req *q = atomic_exchange_explicit(&w->xinbox, NULL, memory_order_acquire);
  uint64_t n = 0;
  while (q != NULL) {
    sv_req *next = q->next;
    unsigned from = q->from;
    if (q->tag >> 60 == 0) { /* one in 16: keep it as session state */
      sv_req **slot = &w->sessions[(q->tag >> 32) & (SV_SESSIONS - 1)];
      if (*slot != NULL) w->sum += sv_release(*slot);
      *slot = q;
    } else
      w->sum += sv_release(q);
    atomic_fetch_sub_explicit(&sv_workers[from].xinflight, 1, memory_order_relaxed);
    q = next;
    n++;
  }
  if (n > 0) atomic_fetch_add_explicit(&xserved, n, memory_order_relaxed);
  return n;
}

static void *sv_main(void *arg) {
  sv_worker *w = arg;
  bench_rng rng = bench_rng_seed(300 + w->id);
  uint64_t sent = 0;
  /* Keep serving until every request of every worker is served: requests for this worker
   * may still arrive after it has sent all of its own. */
  while (sent < w->requests || atomic_load_explicit(&xserved, memory_order_relaxed) < sv_total) {
    uint64_t did = sv_serve(w);
    for (unsigned k = 0; k < SV_BATCH && sent < w->requests; k++) {
      if (atomic_load_explicit(&w->xinflight, memory_order_relaxed) >= SV_INFLIGHT) break;
      sv_send(w, &rng);
      sent++;
      did++;
    }
    if (did == 0) sched_yield(); /* more threads than cores: let the others run */
  }
  for (unsigned i = 0; i < SV_SESSIONS; i++)
    if (w->sessions[i] != NULL) w->sum += sv_release(w->sessions[i]);
  return NULL;
}

int main(int argc, char **argv) {
  const char *usage = "[SCALE [WORKERS]]";
  unsigned long scale = bench_start("server", argc, argv, usage);
  unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : SV_WORKERS_DEFAULT;
  if (n < 2 || n > SV_WORKERS_MAX) {
    fprintf(stderr, "usage: %s %s (2 <= WORKERS <= %d)\n", argv[0], usage, SV_WORKERS_MAX);
    return 64;
  }
  sv_nworkers = (unsigned)n;
  uint64_t per = bench_scaled(SV_REQUESTS_FULL, scale, 1000 * n) / n;
  sv_total = per * n;
  pthread_t tids[SV_WORKERS_MAX];
  for (unsigned i = 0; i < sv_nworkers; i++) {
    sv_workers[i].id = i;
    sv_workers[i].requests = per;
    if (pthread_create(&tids[i], NULL, sv_main, &sv_workers[i]) != 0)
      bench_die("pthread_create failed");
  }
  uint64_t h = 0;
  for (unsigned i = 0; i < sv_nworkers; i++) {
    if (pthread_join(tids[i], NULL) != 0) bench_die("pthread_join failed");
    h += sv_workers[i].sum;
  }
  bench_result("server", sv_total, bench_mix(n, h));
  return 0;
}
