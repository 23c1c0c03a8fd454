/*
 * gc_test_util.h — helpers the garbage collector's tests share (header only).
 *
 * A conservative collector keeps whatever a stale word still points to, and the compiler
 * may leave copies of pointers in registers and dead stack slots. The tests therefore build
 * and drop their objects in noinline helpers, scrub the stack below the caller before a
 * collection, and, where exactness is impossible, require that "most" of the unreachable
 * objects were reclaimed (counted by finalizers) while every reachable one stayed intact.
 */
#ifndef STRATA_TESTS_GC_TEST_UTIL_H
#define STRATA_TESTS_GC_TEST_UTIL_H

#include <string.h>

#include "strata.h"

#define GC_TEST_NOINLINE __attribute__((noinline))

/* Overwrites the stack below the caller, where dead frames of earlier helpers left pointers. */
static GC_TEST_NOINLINE void gc_test_scrub_stack(void) {
  volatile char pad[64 * 1024];
  memset((char *)pad, 0, sizeof pad);
  __asm__ volatile("" : : "r"(pad) : "memory");
}

/* Collects from a clean stack: the caller's live locals are the only stack roots left. */
static GC_TEST_NOINLINE void gc_test_collect(void) {
  gc_test_scrub_stack();
  st_gc_collect();
  gc_test_scrub_stack();
}

/* Counts finalizer calls per object through an int the test owns (data argument). */
__attribute__((unused)) static void gc_test_count_finalizer(void *obj, void *data) {
  (void)obj;
  ++*(int *)data;
}

#endif
