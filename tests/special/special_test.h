/*
 * special_test.h — what the tests of the special allocators share: byte patterns that
 * reveal overlapping objects, and a small seeded generator for the thread tests.
 */
#ifndef STRATA_TESTS_SPECIAL_TEST_H
#define STRATA_TESTS_SPECIAL_TEST_H

#include <pthread.h>
#include <stdatomic.h>
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

/* One misuse case: fn must abort with `expected` in its diagnostic. */
typedef struct death_case {
  const char *name;
  void (*fn)(void *arg);
  const char *expected;
} death_case;
#define DEATH_CASE(fn, expected) {#fn, fn, expected}

static inline void expect_deaths(const death_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++)
    CHECK(check_expect_death_(__FILE__, __LINE__, cases[i].name, cases[i].fn, NULL,
                              cases[i].expected));
}

/* The sanitizer tiers run a test program with --threads-only: its thread case alone. */
static inline int threads_only(int argc, char **argv) {
  return argc >= 2 && strcmp(argv[1], "--threads-only") == 0;
}

static inline uint64_t xorshift64(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return *s = x;
}


/* A thread test on a shared allocator: threads take random slots of one shared table and
 * free the object found there (often another thread's) or put a new one there. Objects
 * carry the pattern of their address in `pattern_bytes` at `pattern_offset`. */
typedef struct shared_test {
  void *(*alloc)(void *allocator);
  void (*release)(void *allocator, void *obj);
  int (*valid)(const void *obj); /* an extra check of a live object, or NULL */
  void *allocator;
  size_t pattern_offset, pattern_bytes;
  long ops_per_thread;
} shared_test;

enum { SHARED_THREADS = 4, SHARED_SLOTS = 2048 };
static _Atomic(void *) shared_slots[SHARED_SLOTS];

static inline int shared_ok(const shared_test *t, const void *obj) {
  return (t->valid == NULL || t->valid(obj)) &&
         pattern_ok((const char *)obj + t->pattern_offset, t->pattern_bytes, (uintptr_t)obj);
}

static inline void *shared_thread(void *arg) {
  const shared_test *t = arg;
  uint64_t seed = (uintptr_t)&seed | 1;
  long bad = 0;
  for (long i = 0; i < t->ops_per_thread; i++) {
    size_t k = xorshift64(&seed) % SHARED_SLOTS;
    void *obj = atomic_exchange(&shared_slots[k], NULL);
    if (obj != NULL) {
      bad += !shared_ok(t, obj);
      t->release(t->allocator, obj);
    } else if ((obj = t->alloc(t->allocator)) != NULL) {
      bad += t->valid != NULL && !t->valid(obj);
      pattern_fill((char *)obj + t->pattern_offset, t->pattern_bytes, (uintptr_t)obj);
      void *expected = NULL;
      if (!atomic_compare_exchange_strong(&shared_slots[k], &expected, obj))
        t->release(t->allocator, obj);
    } else {
      bad++;
    }
  }
  return (void *)bad;
}

/* Runs the threads, then frees what is left in the table; returns the failed checks. */
static inline long shared_run(const shared_test *t) {
  pthread_t threads[SHARED_THREADS];
  int started = 0;
  for (; started < SHARED_THREADS; started++)
    if (pthread_create(&threads[started], NULL, shared_thread, (void *)t) != 0) break;
  long bad = started == SHARED_THREADS ? 0 : 1;
  for (int i = 0; i < started; i++) {
    void *r;
    pthread_join(threads[i], &r);
    bad += (long)r;
  }
  for (size_t k = 0; k < SHARED_SLOTS; k++) {
    void *obj = atomic_exchange(&shared_slots[k], NULL);
    if (obj != NULL) t->release(t->allocator, obj);
  }
  return bad;
}

#endif
