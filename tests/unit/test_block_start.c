/* Unit tests of the block-start check (span.h: one multiply, shared by the slow paths and
 * the owner's free fast path, which merges it into its owner compare): exact at every
 * offset of a span of every class, merged or not; blind to addresses past the user space
 * folded onto a span (why the fast path's pagemap lookup keeps its bounds compare,
 * pagemap.h); and, through st_free, the death of a program that frees an address past the
 * user space above a live block. */
#include "../check.h"
#include "core/page.h"
#include "core/pagemap.h"
#include "strata.h"

/* A descriptor that is only read: the check needs start and the block fields. */
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

/* The free fast path's merged compare (st__span_fast_thread_for) at every offset of every
 * class: the fast thread exactly at block starts, elsewhere a value with high bits set,
 * which no thread pointer (all below 2^47, thread.c) equals. */
static void merged_compare_is_the_fast_thread_only_at_block_starts(void) {
  const uintptr_t thread = (uintptr_t)0x7f0123456740;
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    st_span_t s = span_of_class(c, (uintptr_t)0x7f1234500000, false);
    st_store_relaxed(&s.xfast_thread, thread);
    size_t wrong = 0, bytes = st__span_bytes(&s);
    for (size_t o = 0; o < bytes; o++) {
      uintptr_t merged = st__span_fast_thread_for(&s, s.start + o);
      bool is_start = o % s.block_size == 0 && o / s.block_size < s.capacity;
      wrong += is_start ? merged != thread : (merged & ST_BLOCK_CHECK_MASK) == 0;
    }
    if (wrong != 0) printf("class %u (%u bytes): %zu offsets judged wrong\n", c, s.block_size, wrong);
    CHECK_EQ(wrong, 0);
  }
  /* Descriptors that are not slabs have no fast thread: nothing matches a thread. */
  CHECK_EQ(st__span_fast_thread_for(&st__pagemap.none, thread), 0);
}

/* The multiply alone cannot see an address 2^47 above a block (past the user space): for
 * 16-byte blocks M = 2^60 + 2^31, so 2^47 * M is 0 modulo 2^64. A lookup that masked its
 * root index instead of comparing it would fold that address onto the span, and the fast
 * path would read the mark at a non-canonical address; so the lookup keeps its compare
 * (pagemap.h), and such a free ends in the diagnostic (below). */
static void folded_addresses_would_pass_a_masked_lookup(void) {
  st_span_t s16 = span_of_class(0, (uintptr_t)0x7f1234500000, false);
  CHECK_EQ(s16.block_multiplier, ((uint64_t)1 << 60) + ((uint64_t)1 << 31));
  uint64_t folded = (32 + ((uint64_t)1 << 47)) * s16.block_multiplier; /* a block's offset */
  CHECK_EQ(folded & ST_BLOCK_CHECK_MASK, 0);
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
  RUN_CASE(merged_compare_is_the_fast_thread_only_at_block_starts);
  RUN_CASE(folded_addresses_would_pass_a_masked_lookup);
  RUN_CASE(folded_addresses_end_the_program);
  return check_summary();
}
