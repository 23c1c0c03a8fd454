/*
 * gc_sweep.h — the sweep phase: from mark bits back to free space.
 *
 * Owns: turning the marks of one collection into the allocator's state. The sweep is eager
 * over metadata only (bitmaps, never object memory): for each small block the survivors
 * become its alloc bits; an empty block goes back to the free pool; a block with free slots
 * joins its class's partial list, where the allocator sweeps it lazily into a free list
 * (gc_heap.c). Unmarked large objects release their blocks. Mark bits are cleared.
 * Calls: gc_heap. Callers hold the GC lock.
 */
#ifndef ST_GC_GC_SWEEP_H
#define ST_GC_GC_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

typedef struct st_gc_sweep_result {
  size_t live_bytes;   /* capacity of the surviving objects */
  size_t live_objects; /* surviving objects */
} st_gc_sweep_result;

/* Sweeps the whole heap; blocks released now carry epoch (the collection's number). */
ST_HIDDEN st_gc_sweep_result st__gc_sweep(uint32_t epoch);

#endif
