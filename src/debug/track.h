/*
 * track.h — the table of live blocks and the depot of call stacks (debug layer inside).
 *
 * Owns: one record per live block (address, requested size, allocation stack) in a hash
 * table, and each distinct call stack stored once. Memory comes from the os layer, never
 * from malloc, so recording cannot recurse. One lock guards both; it is taken only in the
 * debug routes (STRATA_LEAKS, Valgrind), never by the production paths.
 */
#ifndef ST_DEBUG_TRACK_H
#define ST_DEBUG_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

typedef struct st_stack {
  struct st_stack *next;   /* depot chain */
  uint64_t hash;
  size_t leak_bytes;       /* report: bytes of unreachable blocks from this stack */
  size_t leak_blocks;      /* report: their number */
  uint32_t depth;
  uintptr_t frames[];      /* return addresses, innermost first */
} st_stack_t;

typedef struct st_record {
  struct st_record *next;  /* bucket chain or free list */
  uintptr_t addr;          /* ~address: a conservative scanner (memcheck's leak check)
                              must not take the record for a pointer to the block */
  size_t size;             /* requested */
  const st_stack_t *stack; /* NULL when no stack was taken */
  bool reachable;          /* report: marked by the scan */
} st_record_t;

/* Calls fn on every record with the table locked; fn must not allocate through strata. */
ST_HIDDEN void st__track_for_each(void (*fn)(st_record_t *r, void *arg), void *arg);
/* The record of the block at exactly addr, or NULL; the table must be locked (inside
 * st__track_for_each or st__track_locked). */
ST_HIDDEN st_record_t *st__track_find_locked(uintptr_t addr);
/* Runs fn with the table locked and the calling thread marked busy. */
ST_HIDDEN void st__track_locked(void (*fn)(void *arg), void *arg);
ST_HIDDEN size_t st__track_live_count(void);
/* Memory for reports, from the os layer (zeroed); st__track_unmap gives it back. */
ST_HIDDEN void *st__track_map(size_t bytes);
ST_HIDDEN void st__track_unmap(void *p, size_t bytes);
/* Marks the calling thread busy (its allocations are not recorded) or not. */
ST_HIDDEN void st__track_set_busy(bool busy);

#endif
