/*
 * fastpath_loop.c — N malloc(size)/free pairs in a loop, for instruction counting.
 * fastpath_count.sh runs it under callgrind at two N and divides the difference, so
 * start-up and exit cost cancel out and what is left is one loop iteration.
 */
#include <stdlib.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  size_t size = argc > 2 ? (size_t)atol(argv[2]) : 32;
  void *volatile sink;
  for (long i = 0; i < n; i++) {
    void *p = malloc(size);
    sink = p; /* keeps the pair from being optimised away */
    free(p);
  }
  (void)sink;
  return 0;
}
