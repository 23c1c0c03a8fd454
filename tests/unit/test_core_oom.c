/* Out of memory in the whole core: every map refused in turn, through the public API.
 * Each allocation must give NULL with ENOMEM, leave the heap consistent, and work again
 * once the kernel gives memory. */
#include "../check.h"
#include "fake_os.h"
#include "strata.h"

static const size_t sizes[] = {16, 100, 1024, 5000, 32768, 40000, 300000, 9 << 20, 80 << 20};

/* Allocates one of each size until one fails; frees what it got. */
static int allocate_round(int round) {
  void *blocks[ST_ARRAY_LEN(sizes) * 4];
  int got = 0, failed = 0;
  for (int r = 0; r < 4; r++) {
    for (size_t i = 0; i < ST_ARRAY_LEN(sizes); i++) {
      errno = 0;
      void *p = (i + (size_t)round) % 3 == 0 ? st_calloc(1, sizes[i]) : st_malloc(sizes[i]);
      if (p == NULL) {
        CHECK_MSG(errno == ENOMEM, "size %zu errno %d", sizes[i], errno);
        failed++;
        continue;
      }
      ((char *)p)[0] = 1;
      ((char *)p)[sizes[i] - 1] = 2;
      blocks[got++] = p;
    }
  }
  CHECK_EQ(st_heap_validate(), 0);
  for (int i = 0; i < got; i++) st_free(blocks[i]);
  return failed;
}

static void the_first_allocation_fails_cleanly(void) {
  fake_fail_maps_after(0);
  errno = 0;
  CHECK(st_malloc(32) == NULL);
  CHECK_EQ(errno, ENOMEM);
  errno = 0;
  CHECK(st_malloc(1 << 20) == NULL);
  CHECK_EQ(errno, ENOMEM);
  errno = 0;
  CHECK(st_malloc(64 << 20) == NULL);
  CHECK_EQ(errno, ENOMEM);
  void *p = NULL;
  errno = 0;
  CHECK_EQ(st_posix_memalign(&p, 4096, 100000), ENOMEM);
  CHECK_EQ(errno, 0);
  fake_maps_never_fail();
  p = st_malloc(32);
  CHECK(p != NULL);
  st_free(p);
  CHECK_EQ(st_heap_validate(), 0);
}

static void every_map_refused_in_turn(void) {
  for (long k = 0; k < 40; k++) {
    fake_fail_maps_after(k);
    allocate_round((int)k);
    fake_maps_never_fail();
    CHECK_EQ(allocate_round((int)k), 0);
  }
}

static void realloc_failure_keeps_the_block(void) {
  char *p = st_malloc(100);
  REQUIRE(p != NULL);
  memset(p, 'x', 100);
  fake_fail_maps_after(0);
  errno = 0;
  CHECK(st_realloc(p, 512u << 20) == NULL);
  CHECK_EQ(errno, ENOMEM);
  fake_maps_never_fail();
  for (int i = 0; i < 100; i++) CHECK_EQ(p[i], 'x');
  st_free(p);
}

int main(void) {
  fake_os_install();
  RUN_CASE(the_first_allocation_fails_cleanly);
  RUN_CASE(every_map_refused_in_turn);
  RUN_CASE(realloc_failure_keeps_the_block);
  return check_summary();
}
