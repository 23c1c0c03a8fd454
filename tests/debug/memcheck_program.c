/*
 * memcheck_program.c — two planted leaks (the first block of a span, a large block) and two
 * planted invalid reads (after free, past the end), for memcheck with strata preloaded
 * (check_debug.py memcheck).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first block of its span (nothing else of this size class is allocated before it):
 * the span's descriptor holds its address, which memcheck must not take for a pointer. */
__attribute__((noinline)) static void memcheck_planted_leak(void) {
  char *p = malloc(4000);
  memset(p, 7, 4000);
}

/* A large block is the whole of its span: the same holds for it. */
__attribute__((noinline)) static void memcheck_planted_large_leak(void) {
  char *p = malloc(100000);
  memset(p, 7, 100000);
}

int main(void) {
  memcheck_planted_leak();
  memcheck_planted_large_leak();
  char *q = malloc(64);
  memset(q, 1, 64);
  free(q);
  volatile char after_free = q[40];
  char *r = malloc(10);
  memset(r, 0, 10);
  volatile char past_end = r[12];
  (void)after_free;
  (void)past_end;
  free(r);
  printf("memcheck_program: done\n");
  return 0;
}
