/*
 * prodcons — producer threads that only allocate, consumer threads that only free, joined
 * by bounded queues.
 *
 * Two phases, one after the other:
 *   1:1  two independent pairs (4 threads), each producer feeding its own consumer;
 *   1:N  one producer dealing its blocks round-robin to 4 consumers (5 threads).
 * Blocks are 16 B..4 KiB (log-uniform), filled by the producer and verified and freed by
 * the consumer. Unlike `xthread`, where every thread both allocates and frees, here the
 * producer's thread cache only ever empties and the consumers' only ever fill: memory must
 * flow back from the consumers to the producer through the allocator (remote free lists,
 * global pools), or the producer keeps taking fresh pages and peak RSS grows. In 1:N a
 * single producer's blocks are freed by several threads at once.
 * Queues are single-producer/single-consumer rings of PC_QCAP entries with acquire/release
 * indices; a full or empty queue makes its thread yield (there are more threads than
 * cores). Each consumer receives a fixed sequence in FIFO order, so folding its blocks into
 * a checksum in arrival order is deterministic; the consumers' checksums are combined in
 * thread order. ops counts malloc calls. Usage: prodcons [SCALE]
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "common.h"

#define PC_QCAP 256u /* bounded queue size, a power of two */
#define PC_PAIRS 2u  /* phase 1:1: independent producer/consumer pairs */
#define PC_FANOUT 4u /* phase 1:N: consumers of the one producer */
#define PC_MIN_SIZE 16u
#define PC_MAX_SIZE 4096u
#define PC_BLOCKS_FULL 2000000ull /* blocks of each phase at full scale */

typedef struct pc_item {
  void *p;
  size_t size;
  uint64_t tag;
} pc_item;

typedef struct pc_queue {
  _Alignas(64) atomic_size_t xhead; /* atomic: written by the consumer: next item to take */
  _Alignas(64) atomic_size_t xtail; /* atomic: written by the producer: next free entry */
  _Alignas(64) pc_item items[PC_QCAP];
} pc_queue;

typedef struct pc_producer {
  pc_queue **out;  /* const: the queues dealt to, round-robin */
  unsigned nout;   /* const */
  uint64_t blocks; /* const: how many to allocate */
  uint64_t seed;   /* const */
} pc_producer;

typedef struct pc_consumer {
  pc_queue *in;      /* const */
  uint64_t blocks;   /* const: how many to free */
  uint64_t checksum; /* out */
} pc_consumer;

static void pc_put(pc_queue *q, const pc_item *it) {
  size_t tail = atomic_load_explicit(&q->xtail, memory_order_relaxed);
  while (tail - atomic_load_explicit(&q->xhead, memory_order_acquire) == PC_QCAP) sched_yield();
  q->items[tail & (PC_QCAP - 1)] = *it;
  atomic_store_explicit(&q->xtail, tail + 1, memory_order_release);
}

static void *pc_produce(void *arg) {
  pc_producer *pr = arg;
  bench_rng rng = bench_rng_seed(pr->seed);
  for (uint64_t i = 0; i < pr->blocks; i++) {
    pc_item it;
    it.size = bench_size_log_uniform(&rng, PC_MIN_SIZE, PC_MAX_SIZE);
    it.tag = bench_rng_next(&rng);
    it.p = bench_malloc(it.size);
    bench_fill(it.p, it.size, it.tag);
    pc_put(pr->out[i % pr->nout], &it);
  }
  return NULL;
}

static void *pc_consume(void *arg) {
  pc_consumer *c = arg;
  pc_queue *q = c->in;
  uint64_t h = 0;
  size_t head = atomic_load_explicit(&q->xhead, memory_order_relaxed);
  for (uint64_t done = 0; done < c->blocks;) {
    size_t tail = atomic_load_explicit(&q->xtail, memory_order_acquire);
    if (tail == head) {
      sched_yield();
      continue;
    }
    for (; head != tail; head++, done++) { /* take all that is there, then publish once */
      pc_item *it = &q->items[head & (PC_QCAP - 1)];
      h = bench_check(it->p, it->size, it->tag, h);
      free(it->p);
    }
    atomic_store_explicit(&q->xhead, head, memory_order_release);
  }
  c->checksum = h;
  return NULL;
}

/* Runs `nprod` producers, each dealing `per_producer` blocks over `fanout` queues of its
 * own, and one consumer per queue; returns the consumers' checksums folded into h. */
static uint64_t pc_phase(unsigned nprod, unsigned fanout, uint64_t per_producer, uint64_t seed,
                         uint64_t h) {
  enum { max = PC_PAIRS * PC_FANOUT };
  static pc_queue queues[max];
  static pc_queue *qptr[max];
  pc_producer prod[PC_PAIRS];
  pc_consumer cons[max];
  pthread_t ptid[PC_PAIRS], ctid[max];
  unsigned ncons = nprod * fanout;
  for (unsigned c = 0; c < ncons; c++) {
    atomic_store(&queues[c].xhead, 0);
    atomic_store(&queues[c].xtail, 0);
    qptr[c] = &queues[c];
    /* Round-robin dealing: queue k of a producer gets its blocks k, k+fanout, ... */
    unsigned k = c % fanout;
    cons[c] = (pc_consumer){&queues[c], per_producer / fanout + (k < per_producer % fanout), 0};
    if (pthread_create(&ctid[c], NULL, pc_consume, &cons[c]) != 0)
      bench_die("pthread_create failed");
  }
  for (unsigned p = 0; p < nprod; p++) {
    prod[p] = (pc_producer){&qptr[p * fanout], fanout, per_producer, seed + p};
    if (pthread_create(&ptid[p], NULL, pc_produce, &prod[p]) != 0)
      bench_die("pthread_create failed");
  }
  for (unsigned p = 0; p < nprod; p++)
    if (pthread_join(ptid[p], NULL) != 0) bench_die("pthread_join failed");
  for (unsigned c = 0; c < ncons; c++) {
    if (pthread_join(ctid[c], NULL) != 0) bench_die("pthread_join failed");
    h = bench_mix(h, cons[c].checksum);
  }
  return h;
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("prodcons", argc, argv, "[SCALE]");
  uint64_t blocks = bench_scaled(PC_BLOCKS_FULL, scale, PC_PAIRS * PC_FANOUT * PC_QCAP);
  uint64_t h = 0;
  h = pc_phase(PC_PAIRS, 1, blocks / PC_PAIRS, 500, h); /* 1:1 pairs */
  h = pc_phase(1, PC_FANOUT, blocks, 600, h);           /* 1:N */
  bench_result("prodcons", blocks / PC_PAIRS * PC_PAIRS + blocks, h);
  return 0;
}
