/* Random graphs of GC objects checked against a reference reachability computation.
 *
 * Each round rewires a random graph (new nodes, changed edges, changed roots), computes which
 * nodes are reachable from the roots in a reference model kept in glibc memory (which the
 * collector does not scan), collects, and checks: every reachable node is intact (id, edges,
 * payload) and was never finalized; no finalizer ran twice; the heap's invariants hold; and
 * most unreachable nodes were finalized (a conservative collector may keep a few through stale words, so "most" is 90%).
 * Usage: test_gc_graph [seed] */
#include <stdint.h>
#include <stdlib.h>

#include "../check.h"
#include "gc/gc_heap.h"
#include "gc_test_util.h"

enum { EDGES = 4, ROOTS = 64, ROUNDS = 30, NEW_PER_ROUND = 2000, REWIRES_PER_ROUND = 3000 };
enum { MAX_NODES = ROUNDS * NEW_PER_ROUND };

typedef struct gnode {
  size_t id;
  struct gnode *edges[EDGES];
  size_t payload_len;
  unsigned char payload[]; /* (id * 13 + i) & 0xff */
} gnode;

typedef struct model {         /* the reference, in glibc memory */
  gnode *ptr;                  /* valid only while the node is reachable */
  long edges[EDGES];           /* target ids, -1 for none */
  int finalized;               /* finalizer calls (data argument of the finalizer) */
  int reachable;               /* in the last reference computation */
  int unreachable_collections; /* collections since it became unreachable */
} model;

static model *nodes;
static size_t node_count;
static gnode **roots;    /* registered root range, glibc memory */
static long *root_ids;   /* the reference's view of roots */
static size_t *worklist; /* reachable ids, also the BFS queue */
static size_t reachable_count;
static uint64_t rng_state;

static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void compute_reachable(void) {
  for (size_t i = 0; i < node_count; i++) nodes[i].reachable = 0;
  reachable_count = 0;
  for (size_t r = 0; r < ROOTS; r++) {
    long id = root_ids[r];
    if (id >= 0 && !nodes[id].reachable)
      nodes[id].reachable = 1, worklist[reachable_count++] = (size_t)id;
  }
  for (size_t head = 0; head < reachable_count; head++) {
    const model *m = &nodes[worklist[head]];
    for (int k = 0; k < EDGES; k++) {
      long id = m->edges[k];
      if (id >= 0 && !nodes[id].reachable)
        nodes[id].reachable = 1, worklist[reachable_count++] = (size_t)id;
    }
  }
}

static GC_TEST_NOINLINE gnode *new_node(void) {
  size_t id = node_count++;
  size_t len = rng() % 8 == 0 ? 2000 + rng() % 6000 : rng() % 200; /* some large objects */
  gnode *g = st_gc_malloc(sizeof *g + len);
  if (g == NULL) return NULL;
  g->id = id;
  g->payload_len = len;
  for (size_t i = 0; i < len; i++) g->payload[i] = (unsigned char)(id * 13 + i);
  nodes[id] = (model){.ptr = g, .edges = {-1, -1, -1, -1}};
  st_gc_register_finalizer(g, gc_test_count_finalizer, &nodes[id].finalized);
  return g;
}

/* One random change; only reachable nodes are touched, so no node is ever resurrected. */
static GC_TEST_NOINLINE void mutate(int add) {
  size_t r = rng() % ROOTS;
  gnode *target = NULL;
  long target_id = -1;
  if (add) {
    target = new_node();
    if (target == NULL) return;
    target_id = (long)target->id;
  } else if (reachable_count > 0 && rng() % 4 != 0) {
    target_id = (long)worklist[rng() % reachable_count];
    target = nodes[target_id].ptr;
  }
  if (reachable_count == 0 || rng() % 8 == 0) { /* change a root */
    roots[r] = target;
    root_ids[r] = target_id;
    return;
  }
  size_t from = worklist[rng() % reachable_count];
  int k = (int)(rng() % EDGES);
  nodes[from].ptr->edges[k] = target;
  nodes[from].edges[k] = target_id;
}

static int node_intact(size_t id) {
  const gnode *g = nodes[id].ptr;
  if (g->id != id) return 0;
  for (int k = 0; k < EDGES; k++) {
    long t = nodes[id].edges[k];
    if (g->edges[k] != (t < 0 ? NULL : nodes[t].ptr)) return 0;
  }
  for (size_t i = 0; i < g->payload_len; i++)
    if (g->payload[i] != (unsigned char)(id * 13 + i)) return 0;
  return 1;
}

static GC_TEST_NOINLINE void run_round(int round) {
  for (int i = 0; i < NEW_PER_ROUND + REWIRES_PER_ROUND; i++)
    mutate(i % 5 < 2 && node_count < MAX_NODES);
  compute_reachable();
  for (size_t i = 0; i < node_count; i++)
    if (!nodes[i].reachable) nodes[i].unreachable_collections++;
  gc_test_collect();
  gc_test_collect();
  size_t broken = 0, wrongly_finalized = 0, twice = 0, due = 0, finalized = 0;
  for (size_t i = 0; i < node_count; i++) {
    const model *m = &nodes[i];
    twice += m->finalized > 1;
    if (m->reachable) {
      wrongly_finalized += m->finalized != 0;
      broken += !node_intact(i);
    } else if (m->unreachable_collections >= 1) {
      due++;
      finalized += m->finalized == 1;
    }
  }
  CHECK_MSG(st__gc_heap_validate() == 0, "round %d: heap invariants", round);
  CHECK_MSG(broken == 0, "round %d: %zu reachable nodes damaged", round, broken);
  CHECK_MSG(wrongly_finalized == 0, "round %d: %zu reachable nodes finalized", round,
            wrongly_finalized);
  CHECK_MSG(twice == 0, "round %d: %zu finalizers ran twice", round, twice);
  CHECK_MSG(finalized >= due * 9 / 10, "round %d: %zu of %zu unreachable nodes finalized", round,
            finalized, due);
}

static void random_graphs_match_the_reference(void) {
  nodes = calloc(MAX_NODES, sizeof *nodes);
  worklist = calloc(MAX_NODES, sizeof *worklist);
  roots = calloc(ROOTS, sizeof *roots);
  root_ids = malloc(ROOTS * sizeof *root_ids);
  REQUIRE(nodes != NULL && worklist != NULL && roots != NULL && root_ids != NULL);
  for (size_t r = 0; r < ROOTS; r++) root_ids[r] = -1;
  st_gc_add_roots(roots, roots + ROOTS);
  for (int round = 0; round < ROUNDS; round++) run_round(round);
  st_gc_stats s;
  st_gc_get_stats(&s);
  printf("nodes %zu, reachable at the end %zu, collections %zu, live %zu KiB, heap %zu KiB\n",
         node_count, reachable_count, s.collections, s.live_bytes >> 10, s.heap_bytes >> 10);
  st_gc_remove_roots(roots, roots + ROOTS);
}

int main(int argc, char **argv) {
  rng_state = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x9e3779b97f4a7c15u;
  if (rng_state == 0) rng_state = 1;
  printf("seed %#llx\n", (unsigned long long)rng_state);
  RUN_CASE(random_graphs_match_the_reference);
  return check_summary();
}
