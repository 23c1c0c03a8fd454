/*
 * xthread — every block is freed by a different thread than the one that allocated it.
 *
 * Four threads stand in a ring; thread i allocates small blocks (16 B..1 KiB, log-uniform)
 * and passes them through a single-producer/single-consumer queue to thread i+1, which
 * verifies and frees them. So every free is a remote free: this measures the allocator's
 * cross-thread free path (remote free lists, atomics, locks) and whether memory freed far
 * from home is reused or piles up (peak RSS).
 * The queues are lock-free rings with acquire/release indices, handed over in batches, so
 * the allocator rather than the queue dominates. A thread with nothing to do yields: there
 * may be fewer cores than threads.
 * The checksum combines, in thread order, each consumer's checksum over the blocks it
 * freed in FIFO order, so it is deterministic. ops counts malloc calls.
 * Usage: xthread [SCALE]
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "common.h"

#define XT_THREADS 4
#define XT_QCAP 1024u /* power of two */
#define XT_BATCH 64u
#define XT_BLOCKS_FULL 2000000ull /* blocks each thread allocates at full scale */
#define XT_MIN_SIZE 16u
#define XT_MAX_SIZE 1024u

typedef struct xt_item {
  void *p;
  size_t size;
  uint64_t tag;
} xt_item;

/* One producer (thread i) and one consumer (thread i+1); indices grow without wrapping. */
typedef struct xt_queue {
  _Alignas(64) atomic_size_t head; /* written by the consumer only: next item to take */
  _Alignas(64) atomic_size_t tail; /* written by the producer only: next free position */
  _Alignas(64) xt_item items[XT_QCAP];
} xt_queue;

typedef struct xt_thread {
  unsigned id;
  uint64_t blocks;   /* to allocate, and to free */
  uint64_t checksum; /* out */
} xt_thread;

static xt_queue xt_queues[XT_THREADS]; /* queue i: from thread i to thread i+1 */

/* Allocates up to a batch into the outgoing queue; returns how many. */
static uint64_t xt_produce(xt_queue *q, bench_rng *rng, uint64_t left) {
  size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
  uint64_t n = XT_QCAP - (tail - head);
  if (n > XT_BATCH) n = XT_BATCH;
  if (n > left) n = left;
  for (uint64_t k = 0; k < n; k++) {
    xt_item *it = &q->items[(tail + k) & (XT_QCAP - 1)];
    it->size = bench_size_log_uniform(rng, XT_MIN_SIZE, XT_MAX_SIZE);
    it->tag = bench_rng_next(rng);
    it->p = bench_malloc(it->size);
    bench_fill(it->p, it->size, it->tag);
  }
  atomic_store_explicit(&q->tail, tail + n, memory_order_release);
  return n;
}

/* Verifies and frees up to a batch from the incoming queue; returns how many. */
static uint64_t xt_consume(xt_queue *q, uint64_t *h) {
  size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
  uint64_t n = tail - head;
  if (n > XT_BATCH) n = XT_BATCH;
  for (uint64_t k = 0; k < n; k++) {
    xt_item *it = &q->items[(head + k) & (XT_QCAP - 1)];
    *h = bench_check(it->p, it->size, it->tag, *h);
    free(it->p);
  }
  atomic_store_explicit(&q->head, head + n, memory_order_release);
  return n;
}

static void *xt_main(void *arg) {
  xt_thread *t = arg;
  xt_queue *out = &xt_queues[t->id], *in = &xt_queues[(t->id + XT_THREADS - 1) % XT_THREADS];
  bench_rng rng = bench_rng_seed(100 + t->id);
  uint64_t produced = 0, consumed = 0, h = t->id;
  /* Every thread keeps draining its input, so a full output queue always empties: no
   * deadlock even though the ring is a cycle. */
  while (produced < t->blocks || consumed < t->blocks) {
    uint64_t p = xt_produce(out, &rng, t->blocks - produced);
    uint64_t c = xt_consume(in, &h);
    produced += p;
    consumed += c;
    if (p == 0 && c == 0) sched_yield();
  }
  t->checksum = h;
  return NULL;
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("xthread", argc, argv, "[SCALE]");
  static xt_thread threads[XT_THREADS];
  pthread_t tids[XT_THREADS];
  for (unsigned i = 0; i < XT_THREADS; i++) {
    threads[i].id = i;
    threads[i].blocks = bench_scaled(XT_BLOCKS_FULL, scale, 1);
    if (pthread_create(&tids[i], NULL, xt_main, &threads[i]) != 0)
      bench_die("pthread_create failed");
  }
  uint64_t h = 0, ops = 0;
  for (unsigned i = 0; i < XT_THREADS; i++) {
    if (pthread_join(tids[i], NULL) != 0) bench_die("pthread_join failed");
    h = bench_mix(h, threads[i].checksum);
    ops += threads[i].blocks;
  }
  bench_result("xthread", ops, h);
  return 0;
}
