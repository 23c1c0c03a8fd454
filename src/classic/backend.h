/*
 * backend.h — the vtable every classic strategy implements (fit.c, buddy.c, bitmap.c).
 *
 * Owns: the contract between the classic heap (classic/heap.c: lock, regions, BIG blocks,
 * statistics) and a backend (the layout of blocks inside arena regions and the search for
 * free space). A backend keeps its free structures in `state`, an opaque area inside the
 * heap of at most ST_BACKEND_STATE_BYTES, so it needs no allocation of its own.
 * Every function is called with the heap's lock held (hence no _locked suffixes here).
 * Arena regions are ST_REGION_ARENA_BYTES, aligned to their size; a request reaches a backend
 * only when size + alignment <= ST_REGION_ARENA_MAX. Alignments are powers of two >= 16.
 */
#ifndef ST_CLASSIC_BACKEND_H
#define ST_CLASSIC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "classic/region.h"
#include "strata.h"

#define ST_BACKEND_STATE_BYTES 4096

typedef struct st_backend {
  const char *name; /* the STRATA_STRATEGY spelling */
  void (*init)(void *state);
  /* Takes a freshly mapped region's data as free space / gives an empty region's back. */
  void (*add_region)(void *state, st_region_t *r);
  void (*remove_region)(void *state, st_region_t *r);
  /* A block of at least size bytes aligned to align, or NULL when no region has room.
   * *usable receives the block's usable size. */
  void *(*alloc)(void *state, size_t size, size_t align, size_t *usable);
  /* Frees p, which lies in r; returns its usable size. Diagnoses (st__fatal, naming fn) a
   * p that is not a live block's start where the metadata shows it. */
  size_t (*free)(void *state, st_region_t *r, void *p, const char *fn);
  size_t (*usable)(const void *state, const st_region_t *r, const void *p, const char *fn);
  /* Resizes a live block in place to at least size bytes; false when it cannot (then
   * nothing changed). *usable receives the block's usable size afterwards. */
  bool (*resize)(void *state, st_region_t *r, void *p, size_t size, size_t *usable);
  /* Walks r's blocks and the free structures that point into it; prints the first
   * inconsistency (st__report) and returns false. */
  bool (*validate)(const void *state, const st_region_t *r);
  void (*visit)(const void *state, const st_region_t *r, st_heap_visitor fn, void *arg);
} st_backend;

/* The classic strategies, in st_strategy order (see strata.h). */
ST_HIDDEN extern const st_backend st__backend_first_fit;
ST_HIDDEN extern const st_backend st__backend_next_fit;
ST_HIDDEN extern const st_backend st__backend_best_fit;
ST_HIDDEN extern const st_backend st__backend_worst_fit;
ST_HIDDEN extern const st_backend st__backend_segregated;
ST_HIDDEN extern const st_backend st__backend_buddy;
ST_HIDDEN extern const st_backend st__backend_bitmap;

#endif
