/*
 * override_util.h — helpers shared by the override tests (header only).
 *
 * Owns: the byte pattern the tests write into blocks and check before freeing them, the
 * process-memory readers (/proc/self/statm), and access to strata's introspection that
 * works however strata got into the process:
 *   OVERRIDE_LINKED  the program is linked to libstrata.so or libstrata.a: call st_* directly;
 *   otherwise        strata may be preloaded: weak references resolve to libstrata.so when it
 *                    is there and stay NULL under glibc.
 * The programs use plain malloc/free; which allocator serves them is decided by the build
 * (linked) or the environment (LD_PRELOAD), and expect_strata_served.sh checks it was strata.
 */
#ifndef STRATA_OVERRIDE_UTIL_H
#define STRATA_OVERRIDE_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "strata.h"

#ifndef OVERRIDE_LINKED
#pragma weak st_heap_validate
#pragma weak st_core_counters_get
#endif

/* True when strata's introspection is reachable (linked, or preloaded). */
static inline bool strata_present(void) {
#ifdef OVERRIDE_LINKED
  return true;
#else
  return st_heap_validate != NULL && st_core_counters_get != NULL;
#endif
}

/* 0 when the heap is consistent or strata is absent. */
static inline int strata_validate(void) { return strata_present() ? st_heap_validate() : 0; }

static inline bool strata_counters(st_core_counters *out) {
  memset(out, 0, sizeof *out);
  if (!strata_present()) return false;
  st_core_counters_get(out);
  return true;
}

/* errno, reloaded after a compiler barrier. clang 14 assumes the malloc family never writes
 * errno (measured: `errno = 0; malloc(huge); errno` folds to 0 at -O2), so every errno check
 * after a direct call goes through this. */
static inline int errno_now(void) {
  __asm__ volatile("" : : : "memory");
  return errno;
}

/* Makes the compiler believe p is used, so it cannot delete a malloc/free pair. */
static inline void *escape(void *p) {
  __asm__ volatile("" : : "r"(p) : "memory");
  return p;
}

static inline unsigned char pattern_at(size_t i, uint32_t seed) {
  return (unsigned char)((seed * 2654435761u) >> 24 ^ (uint32_t)i * 31u ^ (uint32_t)(i >> 9));
}

/* Writes the pattern over the whole block; large blocks get one byte per 64 so that the
 * tests stay fast while every page is still touched and checked. */
static inline void pattern_fill(void *p, size_t n, uint32_t seed) {
  unsigned char *b = p;
  size_t step = n > 65536 ? 64 : 1;
  for (size_t i = 0; i < n; i += step) b[i] = pattern_at(i, seed);
  if (n) b[n - 1] = pattern_at(n - 1, seed);
}

static inline bool pattern_ok(const void *p, size_t n, uint32_t seed) {
  const unsigned char *b = p;
  size_t step = n > 65536 ? 64 : 1;
  for (size_t i = 0; i < n; i += step)
    if (b[i] != pattern_at(i, seed)) return false;
  return n == 0 || b[n - 1] == pattern_at(n - 1, seed);
}

/* Virtual size and resident set of this process in bytes, from /proc/self/statm. */
static inline bool proc_memory(size_t *vsize, size_t *rss) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages_v = 0, pages_r = 0;
  bool ok = f && fscanf(f, "%lu %lu", &pages_v, &pages_r) == 2;
  if (f) fclose(f);
  *vsize = pages_v * 4096;
  *rss = pages_r * 4096;
  return ok;
}

#endif
