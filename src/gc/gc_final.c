/*
 * gc_final.c — the finalizer table and queue (gc_final.h).
 *
 * Registered finalizers live in an open-addressing hash table keyed by the object's address
 * (linear probing, at most half full, deletion by backward shift, so no tombstones): register,
 * replace, forget and the per-collection lookup are O(1). Due finalizers wait in an array.
 * Both are metadata mapped from src/os, so an object is never kept alive by its own
 * registration.
 */
#include "gc/gc_final.h"

#include <errno.h>

#include "gc/gc_mark.h"

static struct {
  st_gc_final_entry *slots; /* mapped; obj NULL = empty */
  size_t capacity;          /* a power of two, or 0 */
  size_t count;
} table;

static struct {
  st_gc_final_entry *entries; /* mapped; due to run, their objects are roots until then */
  size_t count, capacity;
} queue;

static size_t slot_of(const void *obj) {
  uint64_t h = (uint64_t)(uintptr_t)obj * 0x9e3779b97f4a7c15u; /* Fibonacci hashing */
  return (size_t)(h >> 32) & (table.capacity - 1);
}

/* The slot holding obj, or the empty slot where it would go. */
static size_t table_probe(const void *obj) {
  size_t i = slot_of(obj);
  while (table.slots[i].obj != NULL && table.slots[i].obj != obj)
    i = (i + 1) & (table.capacity - 1);
  return i;
}

static bool table_grow(void) {
  size_t old_capacity = table.capacity, capacity = old_capacity ? old_capacity * 2 : 1024;
  st_gc_final_entry *old = table.slots;
  st_gc_final_entry *slots = st__gc_meta_resize(NULL, 0, capacity * sizeof *slots);
  if (slots == NULL) return false;
  table.slots = slots;
  table.capacity = capacity;
  for (size_t i = 0; i < old_capacity; i++)
    if (old[i].obj != NULL) table.slots[table_probe(old[i].obj)] = old[i];
  if (old != NULL) st__gc_meta_resize(old, old_capacity * sizeof *old, 0);
  return true;
}

/* Empties slot i and shifts later entries of its probe run back, keeping every entry
 * reachable from its home slot without tombstones. */
static void table_delete_at(size_t i) {
  size_t mask = table.capacity - 1;
  for (size_t j = (i + 1) & mask; table.slots[j].obj != NULL; j = (j + 1) & mask) {
    size_t home = slot_of(table.slots[j].obj);
    /* j's entry may move to i when i lies cyclically in [home, j). */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      table.slots[i] = table.slots[j];
      i = j;
    }
  }
  table.slots[i] = (st_gc_final_entry){NULL, NULL, NULL};
  table.count--;
}

int st__gc_final_register(const st_gc_ref *ref, st_gc_finalizer_fn fn, void *data) {
  if (table.capacity != 0) {
    size_t i = table_probe(ref->obj);
    if (table.slots[i].obj != NULL) {
      if (fn == NULL)
        table_delete_at(i);
      else
        table.slots[i] = (st_gc_final_entry){ref->obj, fn, data};
      return 0;
    }
  }
  if (fn == NULL) return 0;
  if ((table.count + 1) * 2 > table.capacity && !table_grow()) return ENOMEM;
  table.slots[table_probe(ref->obj)] = (st_gc_final_entry){ref->obj, fn, data};
  table.count++;
  return 0;
}

void st__gc_final_forget(const st_gc_ref *ref) {
  if (table.count == 0) return;
  size_t i = table_probe(ref->obj);
  if (table.slots[i].obj != NULL) table_delete_at(i);
}

void st__gc_final_mark_queued(void) {
  for (size_t i = 0; i < queue.count; i++) st__gc_mark_word((uintptr_t)queue.entries[i].obj);
}

static bool queue_reserve(size_t count) {
  if (count <= queue.capacity) return true;
  size_t capacity = queue.capacity ? queue.capacity * 2 : 256;
  st_gc_final_entry *grown =
      st__gc_meta_resize(queue.entries, queue.capacity * sizeof *grown, capacity * sizeof *grown);
  if (grown == NULL) return false;
  queue.entries = grown;
  queue.capacity = capacity;
  return true;
}

static bool is_marked(const void *obj) {
  st_gc_ref ref;
  return st_gc_lookup((uintptr_t)obj, &ref) && st_gc_bit_test(ref.block->mark, ref.index);
}

void st__gc_final_queue_unreachable(void) {
  size_t first_new = queue.count;
  /* Copy first, delete after: deleting shifts entries and would disturb the walk. */
  for (size_t i = 0; i < table.capacity; i++) {
    const st_gc_final_entry *e = &table.slots[i];
    if (e->obj == NULL || is_marked(e->obj) || !queue_reserve(queue.count + 1)) continue;
    queue.entries[queue.count++] = *e; /* if the queue cannot grow, it stays registered */
  }
  for (size_t i = first_new; i < queue.count; i++) {
    table_delete_at(table_probe(queue.entries[i].obj));
    /* Unreachable objects with a finalizer, and all they reference, survive this cycle. */
    st__gc_mark_word((uintptr_t)queue.entries[i].obj);
  }
  /* Registered objects left unqueued for lack of memory must survive too. */
  for (size_t i = 0; i < table.capacity; i++)
    if (table.slots[i].obj != NULL) st__gc_mark_word((uintptr_t)table.slots[i].obj);
  st__gc_mark_drain();
}

bool st__gc_final_pop(st_gc_final_entry *out) {
  if (queue.count == 0) return false;
  *out = queue.entries[--queue.count];
  return true;
}
