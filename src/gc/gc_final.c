/*
 * gc_final.c — the finalizer table and queue (gc_final.h).
 *
 * Both are arrays in metadata mapped from src/os, so an object is never kept alive by its
 * own registration. A block counts its registered objects (st_gc_block.finalizers): when
 * the count is zero a registration is appended without searching, and an explicit free
 * skips the table.
 */
#include "gc/gc_final.h"

#include <errno.h>

#include "gc/gc_mark.h"

typedef struct final_list {
  st_gc_final_entry *entries; /* mapped metadata */
  size_t count, capacity;
} final_list;

static final_list registered; /* objects whose finalizer has not been queued */
static final_list queued;     /* due to run; their objects are roots until then */

static bool list_reserve(final_list *l, size_t count) {
  if (count <= l->capacity) return true;
  size_t capacity = l->capacity ? l->capacity * 2 : 256;
  st_gc_final_entry *grown = st__gc_meta_resize(l->entries, l->capacity * sizeof(st_gc_final_entry),
                                                capacity * sizeof(st_gc_final_entry));
  if (grown == NULL) return false;
  l->entries = grown;
  l->capacity = capacity;
  return true;
}

static size_t registered_find(const void *obj) {
  for (size_t i = 0; i < registered.count; i++)
    if (registered.entries[i].obj == obj) return i;
  return SIZE_MAX;
}

static void registered_remove(size_t i, st_gc_block *b) {
  registered.entries[i] = registered.entries[--registered.count];
  b->finalizers--;
}

int st__gc_final_register(const st_gc_ref *ref, st_gc_finalizer_fn fn, void *data) {
  size_t i = ref->block->finalizers != 0 ? registered_find(ref->obj) : SIZE_MAX;
  if (i != SIZE_MAX) {
    if (fn == NULL)
      registered_remove(i, ref->block);
    else
      registered.entries[i] = (st_gc_final_entry){ref->obj, fn, data};
    return 0;
  }
  if (fn == NULL) return 0;
  if (!list_reserve(&registered, registered.count + 1)) return ENOMEM;
  registered.entries[registered.count++] = (st_gc_final_entry){ref->obj, fn, data};
  ref->block->finalizers++;
  return 0;
}

void st__gc_final_forget(const st_gc_ref *ref) {
  if (ref->block->finalizers == 0) return;
  size_t i = registered_find(ref->obj);
  if (i != SIZE_MAX) registered_remove(i, ref->block);
}

void st__gc_final_mark_queued(void) {
  for (size_t i = 0; i < queued.count; i++) st__gc_mark_word((uintptr_t)queued.entries[i].obj);
}

void st__gc_final_queue_unreachable(void) {
  size_t first_new = queued.count;
  for (size_t i = 0; i < registered.count;) {
    st_gc_ref ref;
    bool found = st_gc_lookup((uintptr_t)registered.entries[i].obj, &ref);
    if (!found || st_gc_bit_test(ref.block->mark, ref.index) ||
        !list_reserve(&queued, queued.count + 1)) {
      i++; /* reachable (or the queue cannot grow: it stays registered, marked below) */
      continue;
    }
    queued.entries[queued.count++] = registered.entries[i];
    registered_remove(i, ref.block);
  }
  /* Unreachable objects with a finalizer, and all they reference, survive this cycle. */
  for (size_t i = first_new; i < queued.count; i++)
    st__gc_mark_word((uintptr_t)queued.entries[i].obj);
  for (size_t i = 0; i < registered.count; i++)
    st__gc_mark_word((uintptr_t)registered.entries[i].obj);
  st__gc_mark_drain();
}

bool st__gc_final_pop(st_gc_final_entry *out) {
  if (queued.count == 0) return false;
  *out = queued.entries[--queued.count];
  return true;
}
