/*
 * ctor_main.c — the blocks ctor_lib.c allocated before main() are intact and freeable here,
 * and the allocator keeps working after them.
 */
#include <stdlib.h>

#include "check.h"
#include "ctor_lib.h"
#include "override_util.h"

static void case_constructor_allocations(void) {
  CHECK_EQ(ctor_lib_result(), 0);
  for (int i = 0; i < CTOR_BLOCKS; i++) {
    size_t n;
    void *p = ctor_lib_block(i, &n);
    REQUIRE(p != NULL);
    CHECK_MSG(pattern_ok(p, n, (uint32_t)i), "block %d", i);
    if (i % 3 == 0) {
      p = realloc(p, n * 2 + 1);
      REQUIRE(p != NULL);
      CHECK(pattern_ok(p, n, (uint32_t)i));
    }
    free(p);
  }
  for (size_t n = 1; n < ((size_t)1 << 24); n = n * 2 + 3) free(escape(malloc(n)));
  CHECK_EQ(strata_validate(), 0);
}

int main(void) {
  RUN_CASE(case_constructor_allocations);
  return check_summary();
}
