/*
 * chunk.c — geometry, mapping and unmapping of slot chunks (see chunk.h).
 */
#include "special/chunk.h"

#include <errno.h>

#include "os/os.h"

int st__chunk_geometry(st_chunk_geometry *g, size_t slot, size_t align) {
  size_t first = st_align_up(sizeof(st_chunk_t), align);
  if (slot > (ST_CHUNK_MAX_SIZE - first) / ST_CHUNK_MIN_SLOTS) return ENOMEM;
  size_t need = first + ST_CHUNK_MIN_SLOTS * slot;
  size_t chunk_size = need <= ST_CHUNK_MIN_SIZE ? ST_CHUNK_MIN_SIZE : st_pow2_ceil(need);
  g->slot = slot;
  g->chunk_size = chunk_size;
  g->first = first;
  g->capacity = (chunk_size - first) / slot;
  g->recip = (((uint64_t)1 << 32) + slot - 1) / slot;
  return 0;
}

st_chunk_t *st__chunk_map(const st_chunk_geometry *g, void *owner) {
  st_chunk_t *c = st__os_map_aligned(g->chunk_size, g->chunk_size);
  if (c == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  c->magic = ST_MAGIC_CHUNK;
  c->owner = owner;
  c->free = NULL;
  c->used = 0;
  c->fresh = st__chunk_slots(c, g);
  c->limit = c->fresh + g->capacity * g->slot;
  c->link.next = c->link.prev = NULL;
  return c;
}

void st__chunk_unmap(st_chunk_t *c, const st_chunk_geometry *g) {
  c->magic = 0; /* in case the kernel keeps the pages (a failed munmap) */
  st__os_unmap(c, g->chunk_size);
}
