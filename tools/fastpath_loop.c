/*
 * fastpath_loop.c — the loops whose instructions fastpath_count.sh counts.
 *   fastpath_loop local  N SIZE   N malloc(SIZE)/free pairs on one thread
 *   fastpath_loop remote N SIZE   N blocks malloc'ed by one thread and freed by another
 *   fastpath_loop mixed  N MAX    N malloc/free pairs on one thread, sizes cycling through
 *                                 64 values spread over 1..MAX (small classes of every kind)
 * Counting at two N and dividing the difference cancels start-up and exit costs, so what
 * is left is one iteration: the calls, the allocator's work and a few loop instructions.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void **blocks;
static long count;

static void *free_all(void *arg) {
  (void)arg;
  for (long i = 0; i < count; i++) free(blocks[i]);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  count = atol(argv[2]);
  size_t size = (size_t)atol(argv[3]);
  if (strcmp(argv[1], "local") == 0) {
    void *volatile sink;
    for (long i = 0; i < count; i++) {
      void *p = malloc(size);
      sink = p; /* keeps the pair from being optimised away */
      free(p);
    }
    (void)sink;
    return 0;
  }
  if (strcmp(argv[1], "mixed") == 0) {
    /* Sizes from a fixed table, so the loop's own work is the same at every N. */
    size_t sizes[64];
    for (unsigned k = 0; k < 64; k++) sizes[k] = 1 + (k * 37 % 64) * (size - 1) / 63;
    void *volatile sink;
    for (long i = 0; i < count; i++) {
      void *p = malloc(sizes[i & 63]);
      sink = p;
      free(p);
    }
    (void)sink;
    return 0;
  }
  /* remote: the array itself comes from mmap'd pages malloc'ed once, outside the loops. */
  blocks = malloc((size_t)count * sizeof *blocks);
  if (blocks == NULL) return 1;
  for (long i = 0; i < count; i++) blocks[i] = malloc(size);
  pthread_t t;
  if (pthread_create(&t, NULL, free_all, NULL) != 0) return 1;
  pthread_join(t, NULL);
  free(blocks);
  return 0;
}
