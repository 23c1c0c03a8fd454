/*
 * memcheck_program.c — one planted leak and two planted invalid reads (after free, past
 * the end), for memcheck with strata preloaded (check_debug.py memcheck).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void memcheck_planted_leak(void) {
  char *p = malloc(4000);
  memset(p, 7, 4000);
}

int main(void) {
  /* A neighbour of the same size first: memcheck counts a block whose address strata's
   * span metadata also holds (the first block of a span) as reachable. */
  char *keep = malloc(4000);
  memcheck_planted_leak();
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
  free(keep);
  printf("memcheck_program: done\n");
  return 0;
}
