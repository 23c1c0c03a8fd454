/*
 * static_link.c — a program that gets strata by linking libstrata.a (into a dynamic
 * executable, or a fully static one with -static) and uses the plain libc names.
 *
 * Proves that malloc & co. are strata's and not glibc's: strata's counters grow when the
 * program allocates through malloc, malloc_usable_size agrees with st_usable_size, and
 * every family member's blocks are freed by free. expect_strata_served.sh checks strata's
 * exit line on top.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "override_util.h"

static void case_libc_names_are_strata(void) {
  st_core_counters before, after;
  REQUIRE(strata_counters(&before));
  void *blocks[64];
  for (int i = 0; i < 64; i++) { /* 64 blocks of 256 KiB need fresh spans */
    blocks[i] = malloc(256 * 1024);
    REQUIRE(blocks[i] != NULL);
    pattern_fill(blocks[i], 256 * 1024, (uint32_t)i);
    CHECK_EQ(malloc_usable_size(blocks[i]), st_usable_size(blocks[i]));
  }
  REQUIRE(strata_counters(&after));
  CHECK_GT(after.spans_allocated, before.spans_allocated);
  for (int i = 0; i < 64; i++) {
    CHECK(pattern_ok(blocks[i], 256 * 1024, (uint32_t)i));
    free(blocks[i]);
  }
}

static void *family_thread(void *arg) {
  (void)arg;
  void *p = NULL;
  int bad = 0;
  for (unsigned i = 0; i < 3000; i++) {
    size_t n = 1 + (size_t)(i * 37u % 5000u);
    switch (i % 6) {
    case 0:
      p = malloc(n);
      break;
    case 1:
      p = calloc(n, 1);
      bad += p && ((unsigned char *)p)[n - 1] != 0;
      break;
    case 2:
      p = realloc(malloc(8), n);
      break;
    case 3:
      bad += posix_memalign(&p, 64, n) != 0;
      break;
    case 4:
      p = aligned_alloc(256, n);
      break;
    case 5:
      p = memalign(512, n);
      break;
    }
    if (p == NULL) return (void *)1;
    pattern_fill(p, n, i);
    bad += !pattern_ok(p, n, i);
    free(p);
  }
  return (void *)(uintptr_t)bad;
}

static void case_family_across_threads(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++) REQUIRE(pthread_create(&t[i], NULL, family_thread, NULL) == 0);
  for (int i = 0; i < 4; i++) {
    void *ret;
    pthread_join(t[i], &ret);
    CHECK(ret == NULL);
  }
  CHECK_EQ(strata_validate(), 0);
}

int main(void) {
  RUN_CASE(case_libc_names_are_strata);
  RUN_CASE(case_family_across_threads);
  return check_summary();
}
