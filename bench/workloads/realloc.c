/*
 * realloc — buffers grown by realloc from 16 B to several MiB, over and over.
 *
 * Eight buffers live at once, like a program's growing strings and vectors. At each step
 * one of them, chosen at random, grows by a factor of 1.25..1.5; when it reaches its limit
 * (log-uniform 1..8 MiB) it is verified in full, freed, and starts again at 16 B.
 * Growing neighbours compete for the space behind each other, so this measures in-place
 * growth within size classes, copying when a block must move, and mremap-style growth of
 * large blocks. Each step checks that the old contents survived the move and touches the
 * new pages. ops counts realloc calls. Usage: realloc [SCALE]
 */
#include "common.h"

#define RE_BUFFERS 8
#define RE_START 16u
#define RE_LIMIT_MIN (1u << 20)
#define RE_LIMIT_MAX (8u << 20)
#define RE_STEPS_FULL 8000ull /* realloc calls at full scale */
#define RE_STEPS_MIN 400ull   /* enough for every buffer to reach its limit at least once */

typedef struct re_buf {
  unsigned char *p;
  size_t size;  /* 0 before the first realloc of a life */
  size_t limit; /* size at which this life ends */
  uint64_t tag;
} re_buf;

static void re_begin(re_buf *b, bench_rng *rng) {
  b->p = NULL;
  b->size = 0;
  b->limit = bench_size_log_uniform(rng, RE_LIMIT_MIN, RE_LIMIT_MAX);
  b->tag = bench_rng_next(rng);
}

/* The old contents must have moved intact: check the head word, the old tail byte and one
 * page word picked at random (a full check happens once per life, in re_end). */
static void re_check_moved(const re_buf *b, bench_rng *rng) {
  uint64_t v;
  memcpy(&v, b->p, 8);
  if (v != b->tag) bench_corrupt(b->p, b->size, 0);
  if (bench_has_tail(b->size) && b->p[b->size - 1] != bench_tail_byte(b->tag))
    bench_corrupt(b->p, b->size, b->size - 1);
  size_t words = (b->size - 8) / BENCH_PAGE + 1;
  size_t off = (size_t)bench_rng_below(rng, words) * BENCH_PAGE;
  memcpy(&v, b->p + off, 8);
  if (v != b->tag) bench_corrupt(b->p, b->size, off);
}

/* Writes the bench_fill pattern into the part of the block that is new. */
static void re_fill_growth(re_buf *b, size_t old) {
  size_t first = old == 0 ? 0 : ((old - 8) / BENCH_PAGE + 1) * BENCH_PAGE;
  for (size_t off = first; off + 8 <= b->size; off += BENCH_PAGE) memcpy(b->p + off, &b->tag, 8);
  if (bench_has_tail(b->size)) b->p[b->size - 1] = bench_tail_byte(b->tag);
}

static void re_grow(re_buf *b, bench_rng *rng) {
  size_t old = b->size;
  size_t next = old == 0 ? RE_START : old + old / 4 + (size_t)bench_rng_below(rng, old / 4 + 1);
  if (next > b->limit) next = b->limit;
  unsigned char *p = realloc(b->p, next);
  if (p == NULL) bench_die("realloc returned NULL");
  bench_escape(p);
  b->p = p;
  if (old != 0) re_check_moved(b, rng);
  b->size = next;
  re_fill_growth(b, old);
}

static uint64_t re_end(re_buf *b, bench_rng *rng, uint64_t h) {
  h = bench_check(b->p, b->size, b->tag, h);
  free(b->p);
  re_begin(b, rng);
  return h;
}

int main(int argc, char **argv) {
  unsigned long scale = bench_start("realloc", argc, argv, "[SCALE]");
  bench_rng rng = bench_rng_seed(1);
  re_buf bufs[RE_BUFFERS];
  for (int i = 0; i < RE_BUFFERS; i++) re_begin(&bufs[i], &rng);
  uint64_t h = 0, steps = bench_scaled(RE_STEPS_FULL, scale, RE_STEPS_MIN);
  for (uint64_t s = 0; s < steps; s++) {
    re_buf *b = &bufs[bench_rng_below(&rng, RE_BUFFERS)];
    re_grow(b, &rng);
    if (b->size == b->limit) h = re_end(b, &rng, h);
  }
  for (int i = 0; i < RE_BUFFERS; i++)
    if (bufs[i].size != 0) h = bench_check(bufs[i].p, bufs[i].size, bufs[i].tag, h);
  for (int i = 0; i < RE_BUFFERS; i++) free(bufs[i].p);
  bench_result("realloc", steps, h);
  return 0;
}
