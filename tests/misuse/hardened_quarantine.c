/*
 * hardened_quarantine.c — the quarantine's reuse order in hardened mode (run with
 * STRATA_HARDENED=1; docs/security.md): a freed block stays out of reach while its thread
 * frees fewer than 56 others, the free that fills the 64-block ring gives the oldest batch
 * of 8 back whole, and the batch comes back in a random order; a LARGE block that leaves is
 * kept as a spare for the next malloc of its length. Writes after free are death tests in
 * misuse.c.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "strata.h"

#define RING 64
#define BATCH 8
#define SMALL 32  /* the batch's blocks */
#define OTHER 200 /* blocks of another class, freed to fill the ring */
#define THREADS 16

typedef struct order {
  int ok;               /* the batch stayed out of reach, then came back whole */
  unsigned slot[BATCH]; /* slot[j]: which of the freed blocks the j-th malloc returned */
} order;

static int index_of(void *const *blocks, void *p) {
  for (int i = 0; i < BATCH; i++)
    if (blocks[i] == p) return i;
  return -1;
}

/* In a thread of its own, so its quarantine starts empty and the first BATCH frees make up
 * one batch. */
static void *free_batch_then_reuse(void *arg) {
  order *out = arg;
  void *batch[BATCH], *other[RING - BATCH], *reused[BATCH];
  for (int i = 0; i < BATCH; i++) batch[i] = st_malloc(SMALL);
  for (int i = 0; i < RING - BATCH; i++) other[i] = st_malloc(OTHER);
  for (int i = 0; i < BATCH; i++) st_free(batch[i]);
  for (int i = 0; i < RING - BATCH - 1; i++) st_free(other[i]); /* the ring holds 63 */
  int ok = 1;
  void *early[BATCH];
  for (int i = 0; i < BATCH; i++) {
    early[i] = st_malloc(SMALL);
    if (index_of(batch, early[i]) >= 0) ok = 0; /* reused before 56 later frees */
  }
  st_free(other[RING - BATCH - 1]); /* fills the ring: the batch leaves */
  unsigned seen = 0;
  for (int j = 0; j < BATCH; j++) {
    reused[j] = st_malloc(SMALL);
    int i = index_of(batch, reused[j]);
    if (i < 0 || (seen & 1u << i)) ok = 0;
    else seen |= 1u << i, out->slot[j] = (unsigned)i;
  }
  out->ok = ok && seen == (1u << BATCH) - 1;
  for (int i = 0; i < BATCH; i++) st_free(early[i]), st_free(reused[i]);
  return NULL;
}

static void test_batch_reuse_order(void) {
  order orders[THREADS];
  memset(orders, 0, sizeof orders);
  for (int t = 0; t < THREADS; t++) {
    pthread_t thread;
    REQUIRE(pthread_create(&thread, NULL, free_batch_then_reuse, &orders[t]) == 0);
    pthread_join(thread, NULL);
    CHECK(orders[t].ok);
  }
  /* A fixed order would repeat in every thread; 16 uniform shuffles of 8 all alike is a
   * chance of 40320^-15. */
  int varied = 0;
  for (int t = 1; t < THREADS; t++)
    if (memcmp(orders[t].slot, orders[0].slot, sizeof orders[0].slot) != 0) varied = 1;
  CHECK(varied);
}

#define LARGE 20000       /* a LARGE block of 5 pages (no guard page of its own) */
#define OTHER_LARGE 12000 /* one of 3 pages */

typedef struct spare_reuse {
  int other_length_missed; /* a malloc of another length did not get the spare */
  int misaligned_missed;   /* nor an aligned malloc whose boundary it does not lie on */
  int same_length_hit;     /* a malloc of its length did */
  int aligned_hit;         /* and so did an aligned malloc whose boundary it lies on */
} spare_reuse;

/* Frees p first of a batch, then RING - 1 blocks of others[], so that p's batch leaves the
 * quarantine. */
static void push_out(void *p, void **others) {
  st_free(p);
  for (int i = 0; i < RING - 1; i++) st_free(others[i]);
}

static void fill(void **others) {
  for (int i = 0; i < RING - 1; i++) others[i] = st_malloc(OTHER);
}

/* In a thread of its own (an empty quarantine and no spares): a LARGE block that leaves
 * the quarantine is kept as a spare and found again by its length, and by an aligned
 * malloc only where it lies on the boundary (take_spare). */
static void *spare_then_reuse(void *arg) {
  spare_reuse *out = arg;
  void *others[RING - 1];
  fill(others);
  void *p = st_malloc(LARGE);
  push_out(p, others);
  void *shorter = st_malloc(OTHER_LARGE);
  out->other_length_missed = shorter != NULL && shorter != p;
  uintptr_t own = (uintptr_t)p & -(uintptr_t)p; /* the largest boundary p lies on */
  size_t align = own <= ((size_t)1 << 20) ? (size_t)own * 2 : 0;
  void *misaligned = align != 0 ? st_aligned_alloc(align, LARGE) : NULL;
  out->misaligned_missed = align == 0 || (misaligned != NULL && misaligned != p);
  void *q = st_malloc(LARGE);
  out->same_length_hit = q == p;
  fill(others);
  push_out(q, others);
  void *r = own <= ((size_t)1 << 20) ? st_aligned_alloc((size_t)own, LARGE) : NULL;
  out->aligned_hit = own > ((size_t)1 << 20) || r == p;
  st_free(shorter), st_free(misaligned), st_free(r);
  return NULL;
}

static void test_spares_by_length_and_boundary(void) {
  spare_reuse out;
  memset(&out, 0, sizeof out);
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, spare_then_reuse, &out) == 0);
  pthread_join(thread, NULL);
  CHECK(out.other_length_missed);
  CHECK(out.misaligned_missed);
  CHECK(out.same_length_hit);
  CHECK(out.aligned_hit);
}

int main(void) {
  RUN_CASE(test_batch_reuse_order);
  RUN_CASE(test_spares_by_length_and_boundary);
  return check_summary();
}
