/*
 * region.h — the memory under the classic strategies: regions mapped from the os layer,
 * and each heap's table of them.
 *
 * Owns: mapping and unmapping regions (a header, then the bytes a backend formats), and a
 * table sorted by address that finds the region holding any pointer in O(log regions).
 * Does not own what is inside a region: that is the backend's (fit, buddy, bitmap) or, for
 * a BIG region, one block of its own. Calls os/ only. Not thread safe: the heap that owns a
 * table serialises access (classic/heap.c holds its lock).
 *
 *   region:  [st_region_t header | padding to `data` | data ................. ] size bytes
 *            start is aligned to the alignment asked at mapping; data to ST_REGION_DATA_ALIGN
 *            or, for a BIG region, to the block's alignment.
 */
#ifndef ST_CLASSIC_REGION_H
#define ST_CLASSIC_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "base/macros.h"

#define ST_REGION_MAGIC 0x5354524547494f4eull /* "STREGION" */
#define ST_REGION_DATA_ALIGN 64

typedef enum st_region_kind {
  ST_REGION_ARENA, /* formatted by the heap's backend, holds many blocks */
  ST_REGION_BIG,   /* one block at `data`, too large or too aligned for the backend */
} st_region_kind;

typedef struct st_region {
  uint64_t magic;  /* const: ST_REGION_MAGIC while mapped */
  size_t size;     /* const: bytes mapped, header included */
  char *data;      /* const: first byte the backend (or the BIG block) owns */
  char *end;       /* const: start + size */
  size_t used;     /* heap lock: bytes in live blocks (ARENA), the requested size (BIG) */
  uint32_t kind;   /* const: st_region_kind */
  uint32_t serial; /* const: order of creation, for pictures and tests */
  st_list_t link;  /* heap lock: the backend's list of its regions, if it keeps one */
} st_region_t;

_Static_assert(sizeof(st_region_t) <= ST_REGION_DATA_ALIGN, "header fits before the data");

typedef struct st_region_table {
  st_region_t **items; /* sorted by address; an os mapping of cap entries */
  size_t count, cap;
  size_t mapped_bytes; /* bytes of all regions in the table */
  size_t peak_mapped;  /* highest mapped_bytes seen */
  uint32_t next_serial;
} st_region_table;

/* Every arena region: 4 MiB, aligned to its size (the buddy backend relies on it). Requests
 * whose size plus alignment exceed ST_REGION_ARENA_MAX get a BIG region of their own. */
#define ST_REGION_ARENA_BYTES ((size_t)4 << 20)
#define ST_REGION_ARENA_MAX ((size_t)256 << 10) /* like the mmap threshold of classic mallocs */

/* Maps a region with at least `data_bytes` after the header, its start aligned to align
 * (a power of two) and its data at offset data_offset (a multiple of 16, >= the header).
 * NULL when the kernel refuses. */
ST_HIDDEN st_region_t *st__region_map(size_t data_bytes, size_t align, size_t data_offset,
                                      st_region_kind kind);
ST_HIDDEN void st__region_unmap(st_region_t *r);

/* Adds r; false when the table could not grow (r is left unmapped by the caller). */
ST_HIDDEN bool st__region_table_add(st_region_table *t, st_region_t *r);
ST_HIDDEN void st__region_table_remove(st_region_table *t, st_region_t *r);
/* The region whose [start, end) holds p, or NULL. */
ST_HIDDEN st_region_t *st__region_table_find(const st_region_table *t, const void *p);
/* Unmaps every region and the table itself (heap destroy). */
ST_HIDDEN void st__region_table_release(st_region_table *t);

#endif
