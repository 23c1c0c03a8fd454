/*
 * workload.c — the workloads of the special allocators, each in a malloc variant and a
 * variant on strata's special allocator for it (bench/special/compare.c runs them).
 *
 *   workload objects VARIANT SCALE   VARIANT: malloc | pool | slab | floor | shared | shared2
 *     many small objects of one size (64 B): 400 rounds of building 10,000 and freeing
 *     them in allocation order, then 4,000,000 random replacements in a set of 10,000
 *     (and shared: pool on an ST_POOL_THREAD_SAFE pool; shared2: that in two threads at
 *     once, each with its own objects, twice the operations, a checksum of its own)
 *   workload ctor VARIANT SCALE      VARIANT: malloc | pool | slab | floor
 *     the same, on objects that need construction (64 B: a mutex, a self-linked list head,
 *     a tag), as the objects a slab cache is for: malloc and pool construct per allocation,
 *     the slab cache and the floor only the first time an object is built
 *   workload ast VARIANT SCALE       VARIANT: malloc | arena | floor
 *     a parser's syntax trees: 400 trees of 10,000 nodes (16-32 B; names of 5-20 bytes on
 *     the name leaves), built bottom-up, walked once (the use), then dropped: freed node by
 *     node in a second walk (malloc) or all at once (st_arena_reset)
 *
 * The floor variant is the least any allocator can do, written into the workload without a
 * call or a check: objects come from an intrusive LIFO list over a static array, tree nodes
 * from a bump pointer in a static buffer rewound per tree. It measures the workload's own
 * work (loop, random numbers, tags, the walk), so a variant's time minus the floor's is
 * what its allocator costs. The malloc variant calls plain malloc/free, so LD_PRELOAD chooses the general-purpose
 * allocator it measures. Every object carries a tag that is checked before it is freed;
 * the checksum depends only on the seed, so it is the same for every variant and allocator.
 * Prints `workload=NAME ops=N checksum=H cpu_ns_per_op=X`: X is the process's CPU time (user
 * and system) per allocation, so a busy machine that preempts the run does not count.
 */
#include <pthread.h>
#include <stdbool.h>

#include "../workloads/common.h"
#include "strata.h"

enum { OBJECT_SIZE = 64 };

/* Uniform in [0, n) from the high bits of one draw, by a multiply: a division would cost
 * as much as the allocations being measured. */
static inline size_t below(uint64_t r, size_t n) { return (size_t)(((r >> 32) * n) >> 32); }

typedef enum variant { VAR_MALLOC, VAR_POOL, VAR_SLAB, VAR_ARENA, VAR_FLOOR } variant;

/* ---- objects ------------------------------------------------------------------------ */

enum { OBJECTS_LIVE = 10000 }; /* the most objects alive at once */

typedef union floor_object {
  union floor_object *next;
  _Alignas(16) unsigned char bytes[OBJECT_SIZE];
} floor_object;

typedef struct object_alloc {
  variant v;
  bool constructed;         /* the ctor workload: objects are `conn`s */
  st_pool_t *pool;
  st_slab_cache_t *slab;
  floor_object *floor_free; /* VAR_FLOOR: the free objects of floor_objects */
} object_alloc;

static floor_object floor_objects[OBJECTS_LIVE];

/* The ctor workload's object: its constructed state is an unlocked mutex and an empty
 * (self-linked) list; the program uses the tag and hands the object back constructed. */
typedef struct conn {
  pthread_mutex_t lock;
  struct conn *next, *prev;
  uint64_t tag;
} conn;
_Static_assert(sizeof(conn) <= OBJECT_SIZE, "a conn is one object");

static void conn_ctor(void *obj) {
  conn *k = obj;
  pthread_mutex_init(&k->lock, NULL);
  k->next = k->prev = k;
  k->tag = 0;
}

/* The floor's free list links through word 0, or for a conn through its tag (the word
 * allocation overwrites), so that its constructed state stays intact. */
static inline floor_object **floor_link(const object_alloc *a, floor_object *o) {
  return a->constructed ? (floor_object **)(void *)&((conn *)(void *)o)->tag : &o->next;
}

static inline void *floor_pop(object_alloc *a) {
  floor_object *o = a->floor_free;
  if (o == NULL) bench_die("floor: more objects alive than OBJECTS_LIVE");
  a->floor_free = *floor_link(a, o);
  return o;
}

static inline void floor_push(object_alloc *a, floor_object *o) {
  *floor_link(a, o) = a->floor_free;
  a->floor_free = o;
}

static inline __attribute__((always_inline)) uint64_t *object_new(object_alloc *a, uint64_t tag) {
  uint64_t *o = a->v == VAR_POOL    ? st_pool_alloc(a->pool)
                : a->v == VAR_SLAB  ? st_slab_alloc(a->slab)
                : a->v == VAR_FLOOR ? floor_pop(a)
                                    : malloc(OBJECT_SIZE);
  if (o == NULL) bench_die("out of memory");
  if (a->constructed) { /* built by the allocator (slab) or the free list (floor), or now */
    conn *k = (conn *)o;
    if (a->v == VAR_MALLOC || a->v == VAR_POOL) conn_ctor(k);
    k->tag = tag;
    return o;
  }
  o[0] = tag;
  o[OBJECT_SIZE / 8 - 1] = ~tag;
  return o;
}

static inline __attribute__((always_inline)) uint64_t object_drop(object_alloc *a, uint64_t *o, uint64_t h) {
  if (a->constructed) { /* handed back constructed: the list is empty */
    conn *k = (conn *)o;
    if (k->next != k || k->prev != k) bench_corrupt(o, OBJECT_SIZE, offsetof(conn, next));
    h += k->tag * 0x9e3779b97f4a7c15ull;
  } else {
    if (o[OBJECT_SIZE / 8 - 1] != ~o[0]) bench_corrupt(o, OBJECT_SIZE, OBJECT_SIZE - 8);
    h += o[0] * 0x9e3779b97f4a7c15ull;
  }
  if (a->v == VAR_POOL) st_pool_free(a->pool, o);
  else if (a->v == VAR_SLAB) st_slab_free(a->slab, o);
  else if (a->v == VAR_FLOOR) floor_push(a, (floor_object *)(void *)o);
  else free(o);
  return h;
}

enum { OBJECTS_THREADS = 2 }; /* the most threads of a shared2 run */

/* One thread's part of the objects workload on a's allocator. */
typedef struct objects_run {
  object_alloc a;
  unsigned long scale;
  uint64_t **objs; /* OBJECTS_LIVE slots of its own */
  uint64_t ops, h;
} objects_run;

/* Inlined once per value of constructed, so neither workload pays for the other's test. */
static inline __attribute__((always_inline)) void objects_body(objects_run *run,
                                                               bool constructed) {
  /* locals, so that the stores into objects need not reload them (they may alias memory) */
  object_alloc local = run->a, *a = &local;
  local.constructed = constructed;
  uint64_t **objs = run->objs;
  enum { BULK = OBJECTS_LIVE, SET = OBJECTS_LIVE };
  uint64_t rounds = bench_scaled(400, run->scale, 1), churn = bench_scaled(4000000, run->scale, 10000);
  uint64_t h = 0, tag = 1;
  for (uint64_t r = 0; r < rounds; r++) {
    for (size_t i = 0; i < BULK; i++) objs[i] = object_new(a, tag++);
    for (size_t i = 0; i < BULK; i++) h = object_drop(a, objs[i], h);
  }
  bench_rng rng = bench_rng_seed(7);
  for (size_t i = 0; i < SET; i++) objs[i] = object_new(a, tag++);
  for (uint64_t n = 0; n < churn; n++) {
    size_t k = below(bench_rng_next(&rng), SET);
    h = object_drop(a, objs[k], h);
    objs[k] = object_new(a, tag++);
  }
  for (size_t i = 0; i < SET; i++) h = object_drop(a, objs[i], h);
  run->ops = tag - 1;
  run->h = h;
}

static void *objects_loop(void *arg) {
  objects_run *run = arg;
  if (run->a.constructed) objects_body(run, true);
  else objects_body(run, false);
  return NULL;
}

/* shared: v is VAR_POOL on a pool made with ST_POOL_THREAD_SAFE, used by `threads` threads
 * at once (each its own objects, the same pool); the checksum is the sum of theirs. */
static uint64_t run_objects(variant v, bool constructed, bool shared, int threads,
                            unsigned long scale, uint64_t *ops) {
  object_alloc a = {v, constructed, NULL, NULL, NULL};
  if (v == VAR_FLOOR)
    for (size_t i = OBJECTS_LIVE; i > 0; i--) {
      if (constructed) conn_ctor(&floor_objects[i - 1]);
      floor_push(&a, &floor_objects[i - 1]);
    }
  if (v == VAR_POOL) a.pool = st_pool_create(OBJECT_SIZE, 0, shared ? ST_POOL_THREAD_SAFE : 0);
  if (v == VAR_SLAB)
    a.slab = st_slab_create("bench-objects", OBJECT_SIZE, 0, constructed ? conn_ctor : NULL, NULL);
  if ((v == VAR_POOL && a.pool == NULL) || (v == VAR_SLAB && a.slab == NULL))
    bench_die("cannot create the allocator");
  static uint64_t *objs[OBJECTS_THREADS][OBJECTS_LIVE];
  objects_run runs[OBJECTS_THREADS];
  pthread_t tids[OBJECTS_THREADS];
  for (int t = 0; t < threads; t++) {
    runs[t] = (objects_run){a, scale, objs[t], 0, 0};
    if (t > 0 && pthread_create(&tids[t], NULL, objects_loop, &runs[t]) != 0)
      bench_die("cannot start a thread");
  }
  objects_loop(&runs[0]);
  uint64_t h = runs[0].h;
  *ops = runs[0].ops;
  for (int t = 1; t < threads; t++) {
    pthread_join(tids[t], NULL);
    h += runs[t].h, *ops += runs[t].ops;
  }
  st_pool_destroy(a.pool);
  st_slab_destroy(a.slab);
  return h;
}

/* ---- ast ---------------------------------------------------------------------------- */

typedef struct ast_node {
  uint32_t kind;  /* 0: number, 1: name, k >= 2: operator with k - 1 operands */
  uint32_t value; /* the number, or the operator's code */
  void *slot[];   /* kind 1: the name (char *); kind >= 2: the operands (ast_node *) */
} ast_node;

enum { AST_NODES = 10000, AST_MAX_KIDS = 3 };

/* VAR_FLOOR: one tree's nodes and names (under 10,000 * 32 + 2,500 * 32 bytes). */
static _Alignas(16) unsigned char floor_buffer[1 << 19];
static size_t floor_used;

static inline void *floor_bump(size_t size) {
  void *p = floor_buffer + floor_used;
  floor_used += (size + 15) & ~(size_t)15;
  if (floor_used > sizeof floor_buffer) bench_die("floor: a tree outgrew its buffer");
  return p;
}

static inline void *ast_alloc(variant v, st_arena_t *arena, size_t size) {
  void *p = v == VAR_ARENA ? st_arena_alloc(arena, size) : v == VAR_FLOOR ? floor_bump(size)
                                                                         : malloc(size);
  if (p == NULL) bench_die("out of memory");
  return p;
}

static size_t ast_node_size(uint32_t kind) {
  return sizeof(ast_node) + (kind >= 2 ? kind - 1 : 1) * sizeof(void *);
}

/* The names leaves carry, as a parser copies them out of its input. */
static const char ast_names[] = "cursor_position_offsetlimitbuffer_indexheaderxnodetmp";

/* The shapes of successive nodes: 0 a number, 1 a name, k >= 2 an operator taking the
 * k - 1 subtrees on top of the stack (as in `f(a, b + 1) * n - g(x)`). A fixed cycle, so
 * the branches of the work around the allocations are predictable, as they mostly are in
 * a parser reading real code; the sizes still vary from node to node. */
static const uint8_t ast_shape[16] = {1, 0, 3, 1, 1, 3, 0, 2, 4, 1, 0, 3, 2, 1, 3, 3};

/* Builds one tree bottom-up, as a shift-reduce parser does: leaves are pushed, an operator
 * pops its operands. Returns the root; *ops counts allocations. */
static ast_node *ast_build(variant v, st_arena_t *arena, bench_rng *rng, uint64_t *ops) {
  static ast_node *stack[AST_NODES + 1];
  size_t depth = 0;
  for (size_t n = 0; n < AST_NODES; n++) {
    uint64_t r = bench_rng_next(rng);
    uint32_t kind = ast_shape[n % 16], kids = kind >= 2 ? kind - 1 : 0;
    if (kids > depth) kind = 0, kids = 0; /* only at the start */
    ast_node *node = ast_alloc(v, arena, ast_node_size(kind));
    node->kind = kind;
    node->value = (uint32_t)(r >> 16);
    (*ops)++;
    if (kind == 1) {
      size_t len = 4 + (r >> 10 & 15), from = r >> 20 & 31; /* 4-19 bytes of the table */
      char *name = ast_alloc(v, arena, len + 1);
      memcpy(name, ast_names + from, len);
      name[len] = '\0';
      node->slot[0] = name;
      (*ops)++;
    }
    for (uint32_t k = kids; k > 0; k--) node->slot[k - 1] = stack[--depth];
    stack[depth++] = node;
  }
  while (depth > 1) { /* join what is left under binary operators */
    ast_node *node = ast_alloc(v, arena, ast_node_size(3));
    node->kind = 3;
    node->value = 0;
    node->slot[1] = stack[--depth];
    node->slot[0] = stack[--depth];
    stack[depth++] = node;
    (*ops)++;
  }
  return stack[0];
}

/* Walks the tree (an explicit stack: trees can be deep): uses it (folds it into h), or
 * frees every node and name, as a program's free_tree() does before malloc'd trees go. */
static uint64_t ast_walk(ast_node *root, bool free_nodes, uint64_t h) {
  static ast_node *todo[AST_NODES * AST_MAX_KIDS + 16];
  size_t depth = 0;
  todo[depth++] = root;
  while (depth > 0) {
    ast_node *node = todo[--depth];
    if (!free_nodes) h = h * 31 + node->value + node->kind;
    if (node->kind == 1) {
      const char *name = node->slot[0];
      if (!free_nodes) h += (unsigned char)name[0] + (unsigned char)name[3];
      else free(node->slot[0]);
    } else {
      for (uint32_t k = 1; k < node->kind; k++) todo[depth++] = node->slot[k - 1];
    }
    if (free_nodes) free(node);
  }
  return h;
}

static uint64_t run_ast(variant v, unsigned long scale, uint64_t *ops) {
  st_arena_t *arena = NULL;
  if (v == VAR_ARENA && (arena = st_arena_create(NULL)) == NULL)
    bench_die("cannot create the arena");
  uint64_t trees = bench_scaled(400, scale, 1), h = 0;
  bench_rng rng = bench_rng_seed(11);
  for (uint64_t t = 0; t < trees; t++) {
    ast_node *root = ast_build(v, arena, &rng, ops);
    h = ast_walk(root, false, h); /* the program uses its tree */
    if (v == VAR_ARENA) st_arena_reset(arena); /* then drops it */
    else if (v == VAR_FLOOR) floor_used = 0;
    else ast_walk(root, true, 0);
  }
  st_arena_destroy(arena);
  return h;
}

/* ---- main --------------------------------------------------------------------------- */

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  static const char *const names[] = {"malloc", "pool", "slab", "arena", "floor"};
  const char *usage = "objects|ctor|ast malloc|pool|slab|arena|floor|shared|shared2 [SCALE]";
  if (argc < 3) {
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return 64;
  }
  /* shared: pool on an ST_POOL_THREAD_SAFE pool; shared2: the same in 2 threads at once */
  bool shared = strcmp(argv[2], "shared") == 0 || strcmp(argv[2], "shared2") == 0;
  int threads = strcmp(argv[2], "shared2") == 0 ? 2 : 1;
  int v = shared ? VAR_POOL : -1;
  for (int i = 0; i < 5; i++)
    if (strcmp(argv[2], names[i]) == 0) v = i;
  bool ctor = strcmp(argv[1], "ctor") == 0;
  bool objects = ctor || strcmp(argv[1], "objects") == 0, ast = strcmp(argv[1], "ast") == 0;
  if (v < 0 || (!objects && !ast) || (objects && v == VAR_ARENA) ||
      (ast && (v == VAR_POOL || v == VAR_SLAB))) {
    fprintf(stderr, "usage: %s %s (objects, ctor: malloc, pool, slab, floor; ast: malloc, arena, floor)\n", argv[0],
            usage);
    return 64;
  }
  unsigned long scale = bench_start(argv[1], argc - 2, argv + 2, usage);
  uint64_t ops = 0;
  double t0 = cpu_seconds();
  uint64_t h = objects ? run_objects((variant)v, ctor, shared, threads, scale, &ops) : run_ast((variant)v, scale, &ops);
  double t1 = cpu_seconds();
  char measured[64];
  snprintf(measured, sizeof measured, "cpu_ns_per_op=%.3f", (t1 - t0) * 1e9 / (double)ops);
  bench_result_measured(argv[1], ops, h, measured);
  return 0;
}
