/*
 * special_test.h — what the tests of the special allocators share: byte patterns that
 * reveal overlapping objects, and a small seeded generator for the thread tests.
 */
#ifndef STRATA_TESTS_SPECIAL_TEST_H
#define STRATA_TESTS_SPECIAL_TEST_H

#include <stdint.h>
#include <string.h>

#include "check.h"

/* Fills n bytes at p with a pattern derived from tag. */
static inline void pattern_fill(void *p, size_t n, uintptr_t tag) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(tag * 31 + i);
}

/* True when the n bytes at p still hold tag's pattern. */
static inline int pattern_ok(const void *p, size_t n, uintptr_t tag) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(tag * 31 + i)) return 0;
  return 1;
}

static inline uint64_t xorshift64(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *s = x;
}


#endif
