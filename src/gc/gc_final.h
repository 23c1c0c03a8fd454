/*
 * gc_final.h — finalizers: a function run once after its object became unreachable.
 *
 * Owns: the table of registered finalizers and the queue of those due to run. After the
 * main mark phase every registered object still unmarked moves to the queue, and is then
 * marked together with everything it references, so the finalizer sees intact memory; the
 * object is reclaimed by a later collection unless the finalizer made it reachable again.
 * Queued objects are roots until their finalizer has run. Finalizers run in the thread
 * that collected, after the GC lock is released (gc.c), each exactly once; those still
 * registered at exit never run. The data argument is not traced.
 * Calls: gc_heap, gc_mark. Callers hold the GC lock.
 */
#ifndef ST_GC_GC_FINAL_H
#define ST_GC_GC_FINAL_H

#include <stdbool.h>

#include "base/macros.h"
#include "gc/gc_heap.h"

typedef void (*st_gc_finalizer_fn)(void *obj, void *data);

typedef struct st_gc_final_entry {
  void *obj;
  st_gc_finalizer_fn fn;
  void *data;
} st_gc_final_entry;

/* Registers fn for the object ref (replacing an earlier one; fn NULL removes it).
 * Returns 0 or ENOMEM. */
ST_HIDDEN int st__gc_final_register(const st_gc_ref *ref, st_gc_finalizer_fn fn, void *data);
/* Drops the registration of an object freed explicitly, without running it. */
ST_HIDDEN void st__gc_final_forget(const st_gc_ref *ref);
/* Marks the queued objects (roots until their finalizer ran). */
ST_HIDDEN void st__gc_final_mark_queued(void);
/* After marking: queues the finalizers of unmarked objects and marks what they reach. */
ST_HIDDEN void st__gc_final_queue_unreachable(void);
/* Takes the next due finalizer; false when none is queued. */
ST_HIDDEN bool st__gc_final_pop(st_gc_final_entry *out);

#endif
