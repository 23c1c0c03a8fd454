/* Unit tests of transparent huge pages on directly mapped blocks (STRATA_HUGE_PAGES): which
 * blocks are advised, on what boundary, and that a kernel refusing the advice (no THP
 * support) still gives working blocks. The fake os records each MADV_HUGEPAGE. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "base/options.h"
#include "fake_os.h"
#include "strata.h"

#define MiB ((size_t)1 << 20)

static void set_huge_pages(const char *value) {
  setenv("STRATA_HUGE_PAGES", value, 1);
  st__options_reload();
}

/* Writes the first and last byte of every 4 KiB page and reads them back. */
static void write_block(char *p, size_t size) {
  for (size_t i = 0; i < size; i += 4096) p[i] = (char)(i >> 12);
  p[size - 1] = 'z';
  for (size_t i = 0; i < size; i += 4096) CHECK_EQ(p[i], (char)(i >> 12));
  CHECK_EQ(p[size - 1], 'z');
}

static void a_huge_block_is_advised_on_a_huge_page_boundary(void) {
  long advices = fake.huge_advices;
  size_t advised = fake.huge_advised_bytes;
  size_t size = 80 * MiB + 12345; /* its tail past the last 2 MiB boundary stays small */
  char *p = st_malloc(size);
  REQUIRE(p != NULL);
  CHECK_EQ((uintptr_t)p % ST_OS_HUGE_PAGE_SIZE, 0);
  CHECK_EQ(fake.huge_advices, advices + 1);
  /* Exactly the block's pages: the mapping is not rounded up to 2 MiB. */
  CHECK_EQ(fake.huge_advised_bytes - advised, st_align_up(size, (size_t)4096));
  write_block(p, size);
  st_free(p);
}

static void blocks_of_the_page_heap_are_not_advised(void) {
  long advices = fake.huge_advices;
  void *small = st_malloc(32), *large = st_malloc(4 * MiB);
  void *aligned = st_aligned_alloc(2 * MiB, 3 * MiB);
  REQUIRE(small != NULL && large != NULL && aligned != NULL);
  CHECK_EQ(fake.huge_advices, advices);
  st_free(small);
  st_free(large);
  st_free(aligned);
}

static void a_refused_advice_leaves_a_working_block(void) {
  size_t refused = st_load_relaxed(&st__os_counters.xhuge_refused);
  fake.huge_advice_fails = true;
  errno = 0;
  char *p = st_calloc(1, 70 * MiB);
  REQUIRE(p != NULL);
  CHECK(st_load_relaxed(&st__os_counters.xhuge_refused) >= refused + 70 * MiB);
  CHECK_EQ(p[0], 0);
  CHECK_EQ(p[70 * MiB - 1], 0);
  write_block(p, 70 * MiB);
  /* Growing keeps the contents whether the block grows in place or moves. */
  char *q = st_realloc(p, 130 * MiB);
  REQUIRE(q != NULL);
  CHECK_EQ(q[70 * MiB - 1], 'z');
  CHECK_EQ(q[4096], (char)1);
  fake.huge_advice_fails = false;
  st_free(q);
  CHECK_EQ(st_heap_validate(), 0);
}

static void a_moved_huge_block_stays_on_a_huge_page_boundary(void) {
  char *p = st_malloc(66 * MiB);
  REQUIRE(p != NULL);
  write_block(p, 66 * MiB);
  /* A neighbour right after it keeps it from growing in place, so it moves. */
  char *blocker = st_malloc(66 * MiB);
  REQUIRE(blocker != NULL);
  char *q = st_realloc(p, 300 * MiB);
  REQUIRE(q != NULL);
  CHECK_EQ((uintptr_t)q % ST_OS_HUGE_PAGE_SIZE, 0);
  CHECK_EQ(q[66 * MiB - 1], 'z');
  st_free(q);
  st_free(blocker);
}

static void the_option_turns_the_advice_off(void) {
  set_huge_pages("0");
  long advices = fake.huge_advices;
  char *p = st_malloc(80 * MiB);
  REQUIRE(p != NULL);
  CHECK_EQ(fake.huge_advices, advices);
  write_block(p, 80 * MiB);
  st_free(p);
  set_huge_pages("1");
  p = st_malloc(80 * MiB);
  REQUIRE(p != NULL);
  CHECK_EQ(fake.huge_advices, advices + 1);
  st_free(p);
}

int main(void) {
  unsetenv("STRATA_HUGE_PAGES");
  st__options_reload();
  fake_os_install();
  RUN_CASE(a_huge_block_is_advised_on_a_huge_page_boundary);
  RUN_CASE(blocks_of_the_page_heap_are_not_advised);
  RUN_CASE(a_refused_advice_leaves_a_working_block);
  RUN_CASE(a_moved_huge_block_stays_on_a_huge_page_boundary);
  RUN_CASE(the_option_turns_the_advice_off);
  return check_summary();
}
