/* The garbage collector when the kernel refuses memory (fake os ops): the first use fails
 * cleanly with ENOMEM and works once memory comes back; a request needing a new arena fails
 * with ENOMEM and leaves the heap usable. */
#include "../check.h"
#include "../unit/fake_os.h"
#include "gc_test_util.h"

static void first_use_fails_cleanly(void) {
  fake_fail_maps_after(0);
  errno = 0;
  CHECK(st_gc_malloc(32) == NULL);
  CHECK_EQ(errno, ENOMEM);
  errno = 0;
  CHECK(st_gc_malloc_atomic(100000) == NULL);
  CHECK_EQ(errno, ENOMEM);
  st_gc_collect(); /* nothing to collect, must not crash */
  fake_maps_never_fail();
  char *p = st_gc_malloc(32);
  REQUIRE(p != NULL);
  CHECK_EQ(p[31], 0);
}

static void a_new_arena_fails_cleanly(void) {
  static void *keep;
  keep = st_gc_malloc(1000);
  REQUIRE(keep != NULL);
  memset(keep, 'k', 1000);
  fake_fail_maps_after(0);
  errno = 0;
  CHECK(st_gc_malloc((size_t)3 << 30) == NULL); /* larger than any arena so far */
  CHECK_EQ(errno, ENOMEM);
  char *small = st_gc_malloc(64); /* the existing arena still serves */
  CHECK(small != NULL);
  fake_maps_never_fail();
  gc_test_collect();
  CHECK_EQ(((char *)keep)[999], 'k');
  void *huge = st_gc_malloc_atomic((size_t)3 << 30); /* reserved, never touched */
  CHECK(huge != NULL);
  st_gc_free(huge);
  st_gc_stats s;
  st_gc_get_stats(&s);
  CHECK_LT(s.heap_bytes, (size_t)1 << 30);
}

int main(void) {
  fake_os_install();
  RUN_CASE(first_use_fails_cleanly);
  RUN_CASE(a_new_arena_fails_cleanly);
  return check_summary();
}
