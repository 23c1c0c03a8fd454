/*
 * handle.c — descriptor slots for the special allocators (see handle.h).
 *
 * Layout: blocks of ST_HANDLE_BLOCK bytes from st__os_map_aligned, chained through their
 * first slot (a block_header); the other slots are descriptors. Fresh slots are carved from
 * the newest block; retired slots wait on a FIFO queue per kind (linked through their second
 * word) and are reused only once more than ST_HANDLE_QUARANTINE of them wait, and only by
 * the kind that retired them: the inline pool paths of strata.h trust a pool handle's
 * fields without reading its magic, so a stale pool handle must never alias an arena's or a
 * slab cache's descriptor.
 * Invariant: a slot's magic is ST_MAGIC_DEAD or zero when it is not a live descriptor, so
 * st__handle_foreach can tell live slots by their magic alone.
 */
#include "special/handle.h"

#include <errno.h>
#include <string.h>

#include "base/lock.h"
#include "base/report.h"
#include "os/os.h"

#define ST_HANDLE_BLOCK ((size_t)64 * 1024)
#define SLOTS_PER_BLOCK (ST_HANDLE_BLOCK / ST_HANDLE_SLOT_SIZE)

typedef struct block_header {
  struct block_header *next; /* older block */
} block_header;

typedef struct retired_slot {
  uint64_t magic;            /* ST_MAGIC_DEAD */
  struct retired_slot *next; /* younger retired slot */
} retired_slot;

typedef enum handle_kind { KIND_ARENA, KIND_POOL, KIND_SLAB, KIND_COUNT } handle_kind;

typedef struct retired_queue {
  retired_slot *oldest, *youngest;
  size_t count;
} retired_queue;

_Static_assert(sizeof(block_header) <= ST_HANDLE_SLOT_SIZE, "block header fits a slot");

static struct {
  st_lock_t lock;
  block_header *blocks;           /* newest first; guarded by lock */
  size_t carved;                  /* slots used in blocks (newest block); guarded by lock */
  retired_queue retired[KIND_COUNT]; /* FIFOs of retired slots by kind; guarded by lock */
} registry = {.lock = ST_LOCK_INIT, .carved = SLOTS_PER_BLOCK};

static handle_kind kind_of(uint64_t magic) {
  switch (magic) {
  case ST_MAGIC_ARENA: return KIND_ARENA;
  case ST_MAGIC_POOL:
  case ST_MAGIC_POOL_SHARED: return KIND_POOL;
  case ST_MAGIC_SLAB: return KIND_SLAB;
  default: st__fatal("handle registry: %#llx is not a descriptor magic", (unsigned long long)magic);
  }
}

static void *registry_carve_locked(void) {
  if (registry.carved == SLOTS_PER_BLOCK) {
    block_header *b = st__os_map_aligned(ST_HANDLE_BLOCK, 0);
    if (b == NULL) return NULL;
    b->next = registry.blocks;
    registry.blocks = b;
    registry.carved = 1; /* slot 0 is the header */
  }
  return (char *)registry.blocks + registry.carved++ * ST_HANDLE_SLOT_SIZE;
}

static void *registry_reuse_locked(retired_queue *q) {
  if (q->count <= ST_HANDLE_QUARANTINE) return NULL;
  retired_slot *s = q->oldest;
  q->oldest = s->next;
  if (q->oldest == NULL) q->youngest = NULL;
  q->count--;
  return s;
}

void *st__handle_new(uint64_t magic) {
  retired_queue *q = &registry.retired[kind_of(magic)];
  st_lock_acquire(&registry.lock);
  void *slot = registry_reuse_locked(q);
  if (slot == NULL) slot = registry_carve_locked();
  if (slot != NULL) memset(slot, 0, ST_HANDLE_SLOT_SIZE); /* under the lock: foreach reads it */
  st_lock_release(&registry.lock);
  if (slot == NULL) errno = ENOMEM;
  return slot;
}

void st__handle_publish(void *h, uint64_t magic) {
  st_lock_acquire(&registry.lock);
  *(uint64_t *)h = magic;
  st_lock_release(&registry.lock);
}

void st__handle_retire(void *h) {
  retired_slot *s = h;
  retired_queue *q = &registry.retired[kind_of(s->magic)];
  st_lock_acquire(&registry.lock);
  s->magic = ST_MAGIC_DEAD;
  s->next = NULL;
  if (q->youngest != NULL) q->youngest->next = s;
  else q->oldest = s;
  q->youngest = s;
  q->count++;
  st_lock_release(&registry.lock);
}

void st__handle_foreach_locked(uint64_t magic, void (*visit)(void *h, void *arg), void *arg) {
  for (block_header *b = registry.blocks; b != NULL; b = b->next) {
    size_t used = b == registry.blocks ? registry.carved : SLOTS_PER_BLOCK;
    for (size_t i = 1; i < used; i++) {
      void *slot = (char *)b + i * ST_HANDLE_SLOT_SIZE;
      if (st__handle_magic(slot) == magic) visit(slot, arg);
    }
  }
}

void st__handle_foreach(uint64_t magic, void (*visit)(void *h, void *arg), void *arg) {
  st_lock_acquire(&registry.lock);
  st__handle_foreach_locked(magic, visit, arg);
  st_lock_release(&registry.lock);
}

void st__handle_fork_lock(void) { st_lock_acquire(&registry.lock); }
void st__handle_fork_unlock(void) { st_lock_release(&registry.lock); }

void st__handle_fatal_not_live(const char *fn, const void *h, uint64_t magic) {
  const char *kind = magic == ST_MAGIC_ARENA ? "arena" : magic == ST_MAGIC_POOL ? "pool"
                                                                                : "slab cache";
  if (h == NULL) st__fatal("%s(): the %s is NULL", fn, kind);
  st__fatal("%s(): %p is not a live %s (destroyed, or never created)", fn, h, kind);
}
