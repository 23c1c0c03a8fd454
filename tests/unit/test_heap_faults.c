/* Out of memory in every classic strategy's first-class heap: every map refused in turn
 * (the heap itself, its region table, arena regions, BIG blocks, the realloc that moves
 * one), with and without remap. Each refused call must give NULL with ENOMEM, leave the
 * live blocks intact and the heap consistent (st_heap_check), and the same script must run
 * without a failure once the kernel gives memory again. */
#include "../check.h"
#include "fake_os.h"
#include "strata.h"

/* Sizes: the backend's arenas (small, medium) and blocks mapped on their own (huge). */
static const size_t sizes[] = {24, 200, 3000, 70000, 270000, 400000};
enum { BLOCKS = 12 };

typedef struct live {
  unsigned char *p;
  size_t size;
} live;

/* Marks bytes [from, size) of a block: one byte per 997 and the last (a full memset of
 * every block at every k would make this test slow for nothing). */
static void mark(unsigned char *p, size_t from, size_t size, unsigned char tag) {
  for (size_t i = from; i < size; i += 997) p[i] = tag;
  if (size > 0) p[size - 1] = tag;
}

static void keep(live *l, unsigned char *p, size_t size, unsigned char tag) {
  l->p = p;
  l->size = size;
  mark(p, 0, size, tag);
}

static int intact(const live *l, unsigned char tag) {
  for (size_t i = 0; i < l->size; i += 997)
    if (l->p[i] != tag) return 0;
  return l->size == 0 || l->p[l->size - 1] == tag;
}

static int refused(void *p, const char *what, size_t size) {
  if (p != NULL) return 0;
  CHECK_MSG(errno == ENOMEM, "%s(%zu): errno %d", what, size, errno);
  return 1;
}

/* Runs a fixed script of malloc, aligned_alloc, calloc and growing realloc on h. Returns
 * how many calls were refused; every live block is checked and freed at the end. */
static int script(st_heap_t *h) {
  live blocks[BLOCKS] = {{0}};
  int failures = 0;
  for (int i = 0; i < BLOCKS; i++) {
    size_t size = sizes[i % ST_ARRAY_LEN(sizes)];
    unsigned char *p;
    errno = 0;
    if (i % 3 == 0)
      p = st_heap_aligned_alloc(h, (size_t)64 << (i % 8), size);
    else
      p = i % 3 == 1 ? st_heap_malloc(h, size) : st_heap_calloc(h, 1, size);
    if (refused(p, "alloc", size)) {
      failures++;
      continue;
    }
    keep(&blocks[i], p, size, (unsigned char)i);
  }
  for (int i = 0; i < BLOCKS; i++) { /* grow: the huge ones move or remap */
    if (blocks[i].p == NULL) continue;
    size_t bigger = blocks[i].size * 2 + 4096;
    errno = 0;
    unsigned char *q = st_heap_realloc(h, blocks[i].p, bigger);
    if (refused(q, "realloc", bigger)) {
      failures++;
    } else {
      blocks[i].p = q;
      mark(q, blocks[i].size / 997 * 997 + 997, bigger, (unsigned char)i);
      blocks[i].size = bigger;
    }
    CHECK_MSG(intact(&blocks[i], (unsigned char)i), "block %d lost its contents", i);
  }
  CHECK_EQ(st_heap_check(h), 0);
  for (int i = 0; i < BLOCKS; i++) st_heap_free(h, blocks[i].p);
  CHECK_EQ(st_heap_check(h), 0);
  return failures;
}

/* One strategy: the map numbered k (from 0) is refused, for every k until a run sees no
 * refusal; then the same heap must serve the whole script. */
static void every_map_refused_in_turn_for(st_strategy s) {
  for (long k = 0;; k++) {
    long failed_before = fake.failed_maps;
    fake_fail_maps_after(k);
    st_heap_options o = {ST_HEAP_OPTIONS_VERSION, s, 0};
    errno = 0;
    st_heap_t *h = st_heap_new(&o);
    if (h == NULL) {
      CHECK_MSG(errno == ENOMEM, "%s: st_heap_new errno %d", st_strategy_name(s), errno);
      CHECK_EQ(k, 0);
      continue;
    }
    script(h);
    fake_maps_never_fail();
    CHECK_MSG(script(h) == 0, "%s: refusals after the kernel gave memory again (k=%ld)",
              st_strategy_name(s), k);
    st_heap_destroy(h);
    if (fake.failed_maps == failed_before) break; /* the script needs fewer than k maps */
    REQUIRE(k < 500);
  }
}

static void every_map_refused_in_turn(void) {
  for (int s = ST_STRATEGY_FIRST_FIT; s < ST_STRATEGY_COUNT; s++)
    every_map_refused_in_turn_for((st_strategy)s);
}

/* remap refused too: growing a BIG block must fall back to a copy, or fail cleanly. */
static void remap_refused(void) {
  fake.remap_fails = true;
  every_map_refused_in_turn();
  fake.remap_fails = false;
}

int main(void) {
  fake_os_install();
  RUN_CASE(every_map_refused_in_turn);
  RUN_CASE(remap_refused);
  return check_summary();
}
