/* Unit tests of the block-start check (st__span_is_block, span.h) of the slow paths (one
 * multiply: the form the owner's free fast path would use): exact at every offset of a span of every class; not exact for addresses past the
 * user space folded onto a span (why the fast path's pagemap lookup keeps its bounds compare,
 * pagemap.h); and, through st_free, the death of a program that frees an address past the
 * user space above a live block. */
#include "../check.h"
#include "core/page.h"
#include "core/pagemap.h"
#include "strata.h"

/* A descriptor that is only read: the check needs start and the two block fields. */
static st_span_t span_of_class(unsigned cls, uintptr_t start, bool guarded) {
  st_span_t s = {.start = start, .pages = st__class_span_pages[cls]};
  uint32_t size = st__class_size[cls];
  size_t usable = st__span_bytes(&s) - (guarded ? ST_PAGE_SIZE : 0);
  st__span_set_block_size(&s, size, (uint32_t)(usable / size));
  return s;
}

/* Offsets that pass, for each class with and without a hardened guard page: exactly the
 * starts of the blocks that fit. */
static void every_offset_of_every_class_is_judged_exactly(void) {
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    for (int guarded = 0; guarded <= 1; guarded++) {
      st_span_t s = span_of_class(c, (uintptr_t)0x7f1234500000, guarded);
      size_t wrong = 0, bytes = st__span_bytes(&s);
      for (size_t o = 0; o < bytes; o++) {
        bool is_start = o % s.block_size == 0 && o / s.block_size < s.capacity;
        wrong += st__span_is_block(&s, s.start + o) != is_start;
      }
      if (wrong != 0) printf("class %u (%u bytes, guarded %d): %zu offsets judged wrong\n", c,
                             s.block_size, guarded, wrong);
      CHECK_EQ(wrong, 0);
    }
  }
}

/* Whether an address k * 2^47 above an offset of the span (k >= 1: past the user space,
 * folded onto the span by the fast path's lookup) can pass. With o = m * d + r, it passes
 * when y + m * e < limit modulo 2^64, y = (k * 2^47 + r) * M; m * e grows by e from y, so
 * this happens when y < limit, or y lies within (count - 1) * e below 2^64 (the sum then
 * wraps into [0, e), below the limit). r * M < 2^64 for r < d, and such a y needs r * M
 * within less than M of -k * 2^47 * M: only r = 0 and the r around that quotient can. */
static bool folded_may_pass(const st_span_t *s, uint64_t k) {
  uint64_t d = s->block_size, multiplier = s->block_multiplier, limit = s->block_limit;
  uint64_t e = multiplier * d, bytes = st__span_bytes(s);
  uint64_t base = (k << 47) * multiplier, r0 = (0 - base) / multiplier;
  uint64_t candidates[] = {0, r0 - 1, r0, r0 + 1};
  for (size_t i = 0; i < ST_ARRAY_LEN(candidates); i++) {
    uint64_t r = candidates[i];
    if (r >= d || r >= bytes) continue;
    uint64_t count = (bytes - r + d - 1) / d; /* offsets m * d + r inside the span */
    uint64_t y = base + r * multiplier;
    if (y < limit || 0 - y <= (count - 1) * e) return true;
  }
  return false;
}

/* The same by trying every offset: the reference folded_may_pass is checked against. */
static bool folded_may_pass_slowly(const st_span_t *s, uint64_t k) {
  for (uint64_t o = 0; o < st__span_bytes(s); o++)
    if (st__span_is_block(s, s->start + o + (k << 47))) return true;
  return false;
}

/* A lookup that masked its root index instead of comparing it would hand the fast path
 * the span of k * 2^47 + start + o: for 16-byte blocks, M = 2^60 + 1, and k = 15 * 2^13
 * with o = 1 gives k * 2^47 * M + M = 2^64 + 1 + ..., a pass, and the fast path would read
 * the mark at a non-canonical address. So the lookup keeps its compare (pagemap.h). */
static void folded_addresses_would_pass_a_masked_lookup(void) {
  const uint64_t folds = (uint64_t)1 << (64 - 47);
  st_span_t s16 = span_of_class(0, (uintptr_t)0x7f1234500000, false);
  CHECK(st__span_is_block(&s16, s16.start + 1 + ((uint64_t)15 << (13 + 47))));
  uint64_t passing = 0;
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    st_span_t s = span_of_class(c, (uintptr_t)0x7f1234500000, false);
    for (uint64_t k = 1; k < folds; k++) passing += folded_may_pass(&s, k);
  }
  CHECK(passing > 0);
  /* The reasoning above against brute force, on a few classes and folds, as is and with a
   * limit wide enough (M / 2, still below M) that about half the folds pass. */
  const unsigned classes[] = {0, 2, 4, 9, 31, ST_NUM_CLASSES - 1};
  const uint64_t ks[] = {1, 2, 3, 0x5555, folds / 2, folds - 1};
  for (size_t i = 0; i < ST_ARRAY_LEN(classes); i++) {
    for (size_t j = 0; j < ST_ARRAY_LEN(ks); j++) {
      st_span_t s = span_of_class(classes[i], (uintptr_t)0x7f1234500000, false);
      CHECK_EQ(folded_may_pass(&s, ks[j]), folded_may_pass_slowly(&s, ks[j]));
      s.block_limit = s.block_multiplier / 2;
      CHECK_EQ(folded_may_pass(&s, ks[j]), folded_may_pass_slowly(&s, ks[j]));
    }
  }
}

/* Death cases, through st_free on the thread that owns the span. */
static void free_past_user_space(void *arg) {
  uint64_t fold = (uint64_t)(uintptr_t)arg;
  char *p = st_malloc(48);
  st_free((void *)((uintptr_t)p + fold));
}

static void folded_addresses_end_the_program(void) {
  expect_death(free_past_user_space, (void *)((uintptr_t)1 << 47), "free(): invalid pointer");
  expect_death(free_past_user_space, (void *)((uintptr_t)0xffff8 << 44), "free(): invalid pointer");
}

int main(void) {
  RUN_CASE(every_offset_of_every_class_is_judged_exactly);
  RUN_CASE(folded_addresses_would_pass_a_masked_lookup);
  RUN_CASE(folded_addresses_end_the_program);
  return check_summary();
}
