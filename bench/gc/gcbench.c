/*
 * gcbench.c — a GCBench-style workload for garbage collectors (after the classic benchmark
 * of Ellis, Kovac and Boehm; written anew here).
 *
 * Owns: the workload, compiled twice from this one source: against strata's collector
 * (GCBENCH_STRATA) and against the Boehm-Demers-Weiser collector from Debian's libgc-dev
 * (GCBENCH_BOEHM). Both binaries do exactly the same allocations.
 * The work: a short-lived "stretch" tree of depth 18; a long-lived tree of depth 16 and an
 * atomic array of 500,000 doubles kept for the whole run; then, for depths 4, 6, ..., 16,
 * as many trees as make up two stretch trees' worth of nodes, built top-down (allocate,
 * then populate children) and bottom-up (children first), each dropped at once.
 * Prints `workload=gcbench collector=<name> ops=<nodes> checksum=<hex>` and the collector's
 * own figures. Usage: gcbench [scale-percent]  (100 = full run; smaller trees below 100).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(GCBENCH_STRATA)
#include "strata.h"
#define COLLECTOR "strata"
#define GC_SETUP() st_gc_init()
#define ALLOC_NODE() st_gc_malloc(sizeof(node))
#define ALLOC_ATOMIC(n) st_gc_malloc_atomic(n)
static void print_collector_stats(void) {
  st_gc_stats s;
  st_gc_get_stats(&s);
  printf(" collections=%zu heap_kib=%zu pause_total_ms=%.1f pause_max_ms=%.2f", s.collections,
         s.heap_bytes >> 10, (double)s.total_pause_ns / 1e6, (double)s.max_pause_ns / 1e6);
}
#elif defined(GCBENCH_BOEHM)
#include <gc.h>
#define COLLECTOR "boehm"
#define GC_SETUP() GC_INIT()
#define ALLOC_NODE() GC_MALLOC(sizeof(node))
#define ALLOC_ATOMIC(n) GC_MALLOC_ATOMIC(n)
static void print_collector_stats(void) {
  printf(" collections=%lu heap_kib=%zu", (unsigned long)GC_get_gc_no(), GC_get_heap_size() >> 10);
}
#else
#error "define GCBENCH_STRATA or GCBENCH_BOEHM"
#endif

typedef struct node {
  struct node *left, *right;
  int i, j;
} node;

static int stretch_depth = 18, long_lived_depth = 16, min_depth = 4, max_depth = 16;
static size_t array_size = 500000;
static uint64_t nodes_made, checksum = 0xcbf29ce484222325u;

static void fold(uint64_t v) { checksum = (checksum ^ v) * 0x100000001b3u; }

static node *new_node(node *left, node *right) {
  node *n = ALLOC_NODE();
  if (n == NULL) {
    fprintf(stderr, "gcbench: out of memory after %llu nodes\n", (unsigned long long)nodes_made);
    exit(3);
  }
  n->left = left;
  n->right = right;
  nodes_made++;
  return n;
}

static long tree_size(int depth) { return (1L << (depth + 1)) - 1; }

/* Top-down: the parent exists before its children. */
static void populate(int depth, node *n) {
  if (depth <= 0) return;
  n->left = new_node(NULL, NULL);
  n->right = new_node(NULL, NULL);
  populate(depth - 1, n->left);
  populate(depth - 1, n->right);
}

/* Bottom-up: children first. */
static node *make_tree(int depth) {
  if (depth <= 0) return new_node(NULL, NULL);
  return new_node(make_tree(depth - 1), make_tree(depth - 1));
}

/* Counts the nodes and numbers them, so the checksum proves the trees were intact. */
static long check_tree(node *n, int depth) {
  if (n == NULL) return 0;
  n->i = depth;
  return 1 + check_tree(n->left, depth - 1) + check_tree(n->right, depth - 1);
}

static void time_construction(int depth) {
  long iterations = 2 * tree_size(stretch_depth) / tree_size(depth);
  for (long k = 0; k < iterations; k++) {
    node *t = new_node(NULL, NULL);
    populate(depth, t);
    if (k == 0) fold((uint64_t)check_tree(t, depth));
  }
  for (long k = 0; k < iterations; k++) {
    node *t = make_tree(depth);
    if (k == 0) fold((uint64_t)check_tree(t, depth));
  }
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 100;
  if (scale < 100) { /* smaller trees for smoke tests */
    stretch_depth = 12, long_lived_depth = 10, max_depth = 10;
    array_size = 5000;
  }
  GC_SETUP();
  fold((uint64_t)check_tree(make_tree(stretch_depth), stretch_depth)); /* stretch the heap */
  node *volatile long_lived = new_node(NULL, NULL);
  populate(long_lived_depth, long_lived);
  double *volatile array = ALLOC_ATOMIC(array_size * sizeof(double));
  if (array == NULL) return 3;
  for (size_t i = 0; i < array_size / 2; i++) array[i] = 1.0 / (double)(i + 1);
  for (int depth = min_depth; depth <= max_depth; depth += 2) time_construction(depth);
  if (array[1000 % array_size] != 1.0 / (double)(1000 % array_size + 1)) return 4;
  fold((uint64_t)check_tree(long_lived, long_lived_depth));
  printf("workload=gcbench ops=%llu checksum=%016llx collector=%s", (unsigned long long)nodes_made,
         (unsigned long long)checksum, COLLECTOR);
  print_collector_stats();
  printf("\n");
  return 0;
}
