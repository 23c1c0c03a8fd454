/*
 * slab_example.c — an object cache for connections whose construction is expensive (here:
 * a buffer set up once): the constructor runs once per object, not per allocation.
 *
 *   cc slab_example.c -lstrata && ./a.out
 */
#include <stdio.h>
#include <string.h>

#include "strata.h"

typedef struct connection {
  int fd;
  size_t buffered;
  char buffer[256]; /* set up by the constructor, kept across reuse */
} connection;

static int constructed, destructed;

static void connection_ctor(void *obj) {
  connection *c = obj;
  c->fd = -1;
  c->buffered = 0;
  memset(c->buffer, 0, sizeof c->buffer);
  constructed++;
}

static void connection_dtor(void *obj) {
  (void)obj;
  destructed++;
}

static void print_cache(const st_slab_stats *s, void *arg) {
  (void)arg;
  printf("  cache \"%s\": %zu live, %zu cached, slabs %zu full / %zu partial / %zu empty\n",
         s->name, s->live_objects, s->cached_objects, s->slabs_full, s->slabs_partial,
         s->slabs_empty);
}

int main(void) {
  st_slab_cache_t *cache = st_slab_create("connection", sizeof(connection),
                                          _Alignof(connection), connection_ctor,
                                          connection_dtor);
  if (cache == NULL) return 1;
  connection *open[100];
  for (int round = 0; round < 10; round++) {
    for (int i = 0; i < 100; i++) {
      open[i] = st_slab_alloc(cache);
      if (open[i] == NULL) return 1;
      open[i]->fd = i; /* the caller restores the constructed state before freeing */
    }
    for (int i = 0; i < 100; i++) {
      open[i]->fd = -1;
      st_slab_free(cache, open[i]);
    }
  }
  printf("1000 allocations, %d constructor calls\n", constructed);
  st_slab_foreach(print_cache, NULL);
  size_t bytes = st_slab_shrink(cache);
  printf("st_slab_shrink gave back %zu bytes, %d destructor calls\n", bytes, destructed);
  st_slab_destroy(cache);
  return constructed == destructed ? 0 : 1;
}
