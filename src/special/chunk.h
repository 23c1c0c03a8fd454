/*
 * chunk.h — the aligned chunks that pools and slab caches carve into equal slots.
 *
 * Owns: chunk geometry (slot size, chunk size, where slot 0 starts), mapping and unmapping
 * chunks through the os layer, and the O(1) check that a pointer is a slot that a given
 * owner handed out. Does not own free-list policy (pool.c, slab_cache.c).
 *
 * Layout: a chunk is chunk_size bytes (a power of two) aligned to chunk_size, so the chunk
 * holding a slot is the slot's address with the low bits cleared. Its header (one cache
 * line) sits in the first ST_CHUNK_COLORS lines, in the line given by the chunk's number
 * (address / chunk_size) modulo ST_CHUNK_COLORS: a plain "header at offset 0" would put the
 * headers of all chunks, which every free touches, into the same cache set (chunks are
 * 64 KiB apart, a multiple of the cache's way size) and make them evict each other. This
 * is Bonwick's slab colouring, applied to the headers; the address alone gives the line.
 *
 *   chunk_size-aligned ─► +-------------------------------+--------+--------+-- ... --+------+
 *                         | ST_CHUNK_COLORS lines, one of | slot 0 | slot 1 |         | tail |
 *                         | them the st_chunk_t           |        |        |         |      |
 *                         +-------------------------------+--------+--------+-- ... --+------+
 *                         0                               first    first + slot    limit
 *
 * Slots below `fresh` have been handed out at least once; slots from `fresh` up are
 * untouched (zero pages the kernel has not made resident), so a new chunk costs nothing
 * per slot until it is used. Chunks are carved from a reserve that each owner maps in
 * growing runs of up to ST_CHUNK_BATCH chunks: an aligned mapping costs a map and up to two
 * trimming unmaps, which would otherwise be paid per chunk; a chunk is unmapped alone.
 *
 * The chunk index: a process-wide two-level bitmap with one bit per ST_CHUNK_MIN_SIZE
 * granule of the address space, set while a live chunk starts there. A pointer handed to a
 * free call is looked up there before its chunk header is read, so a pointer that is not
 * in any chunk (the stack, malloc'd memory, garbage) is reported instead of faulting on an
 * unmapped header. Only chunk starts are marked: the aligned-down address of a pointer into
 * the middle of a larger chunk finds no bit. Leaves (8 KiB) are mapped on first use and
 * never unmapped, so a lookup racing an unmap reads a cleared bit, never freed memory.
 * Calls: os/, base/. Not thread safe (but the chunk index): the owner serialises access
 * to its chunks.
 */
#ifndef ST_SPECIAL_CHUNK_H
#define ST_SPECIAL_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/atomics.h"
#include "base/list.h"
#include "base/macros.h"

#define ST_MAGIC_CHUNK UINT32_C(0x6b6e7563)

typedef struct st_chunk {
  uint32_t magic;  /* ST_MAGIC_CHUNK while mapped; const */
  uint32_t used;   /* slots handed out and not yet freed; the owner's lock or thread */
  void *owner;     /* the pool or slab cache descriptor; const */
  void *free;      /* first free slot; the owner's lock or thread */
  char *fresh;     /* first never-used slot; the owner's lock or thread */
  char *limit;     /* end of the last slot; const */
  st_list_t link;  /* on one of the owner's chunk lists; the owner's lock or thread */
  uint64_t empty_since_ms; /* when it last became empty (pools); the owner's lock or thread */
} st_chunk_t;
_Static_assert(sizeof(st_chunk_t) <= ST_CACHE_LINE, "a chunk header is one cache line");

typedef struct st_chunk_geometry {
  size_t slot;       /* bytes per slot, a multiple of the alignment */
  size_t chunk_size; /* power of two; chunks are aligned to it */
  size_t first;      /* offset of slot 0 from the chunk's start */
  size_t capacity;   /* slots per chunk, >= ST_CHUNK_MIN_SLOTS */
  uint64_t recip;    /* ceil(2^32 / slot), for the slot-boundary test without a division */
  unsigned shift;    /* log2(chunk_size) */
} st_chunk_geometry;

/* Address space mapped but not yet carved into chunks; owned by one pool or cache. */
typedef struct st_chunk_reserve {
  char *next;     /* the next chunk to hand out */
  size_t left;    /* chunks left at next */
  size_t batches; /* runs mapped so far: the next run is min(2^batches, ST_CHUNK_BATCH) */
} st_chunk_reserve;

enum { ST_CHUNK_MIN_SLOTS = 8, ST_CHUNK_BATCH = 16, ST_CHUNK_COLORS = 16 };
#define ST_CHUNK_MIN_SIZE ((size_t)64 * 1024)
#define ST_CHUNK_MAX_SIZE ((size_t)1 << 30)

/* Fills g for slots of slot bytes (already a multiple of align) aligned to align (a power
 * of two). Returns 0, or ENOMEM when ST_CHUNK_MIN_SLOTS slots cannot fit in
 * ST_CHUNK_MAX_SIZE. */
ST_HIDDEN int st__chunk_geometry(st_chunk_geometry *g, size_t slot, size_t align);
/* A new chunk with every slot fresh, from r (mapping a new run when it is used up), or NULL
 * (errno ENOMEM) when the kernel refuses. */
ST_HIDDEN st_chunk_t *st__chunk_map(const st_chunk_geometry *g, st_chunk_reserve *r, void *owner);
ST_HIDDEN void st__chunk_unmap(st_chunk_t *c, const st_chunk_geometry *g);
/* Unmaps what is left of r (when its owner is destroyed). */
ST_HIDDEN void st__chunk_reserve_release(st_chunk_reserve *r, const st_chunk_geometry *g);

/* The chunk index (see the header): addresses of up to ST_CHUNK_INDEX_BITS bits, split
 * into granule number = top index : leaf bit. */
enum { ST_CHUNK_INDEX_BITS = 48, ST_CHUNK_GRANULE_SHIFT = 16, ST_CHUNK_LEAF_SHIFT = 16 };
#define ST_CHUNK_INDEX_TOP \
  ((size_t)1 << (ST_CHUNK_INDEX_BITS - ST_CHUNK_GRANULE_SHIFT - ST_CHUNK_LEAF_SHIFT))
typedef _Atomic(uint64_t) st_chunk_index_word;
ST_HIDDEN extern _Atomic(st_chunk_index_word *) st__chunk_index_top[ST_CHUNK_INDEX_TOP];
_Static_assert(ST_CHUNK_MIN_SIZE == (size_t)1 << ST_CHUNK_GRANULE_SHIFT, "one granule per chunk");

/* The lock that serialises the mapping of index leaves, taken and released around fork
 * (fork.c). */
ST_HIDDEN void st__chunk_index_fork_lock(void);
ST_HIDDEN void st__chunk_index_fork_unlock(void);

/* True while a live chunk (of any owner) starts at base. Lock free; safe for any value. */
ST_INLINE bool st__chunk_index_has(uintptr_t base) {
  if (ST_UNLIKELY(base >> ST_CHUNK_INDEX_BITS != 0)) return false;
  uintptr_t granule = base >> ST_CHUNK_GRANULE_SHIFT;
  st_chunk_index_word *leaf = st_load_acquire(&st__chunk_index_top[granule >> ST_CHUNK_LEAF_SHIFT]);
  if (ST_UNLIKELY(leaf == NULL)) return false;
  size_t bit = granule & (((uintptr_t)1 << ST_CHUNK_LEAF_SHIFT) - 1);
  return (st_load_acquire(&leaf[bit / 64]) >> (bit % 64)) & 1;
}

ST_INLINE uintptr_t st__chunk_base(const void *addr, const st_chunk_geometry *g) {
  return st_align_down_ptr((uintptr_t)addr, g->chunk_size);
}

/* The header of the chunk holding obj (or of the chunk starting at obj). */
ST_INLINE st_chunk_t *st__chunk_of(const void *obj, const st_chunk_geometry *g) {
  uintptr_t base = st__chunk_base(obj, g);
  return (st_chunk_t *)(base + ((base >> g->shift) % ST_CHUNK_COLORS) * ST_CACHE_LINE);
}

ST_INLINE char *st__chunk_slots(st_chunk_t *c, const st_chunk_geometry *g) {
  return (char *)st__chunk_base(c, g) + g->first;
}

/* Why obj does not belong to owner, or NULL when it does (index, header and slot checked;
 * with carved_only, a slot never handed out does not belong). Safe for any pointer: the
 * header is read only once the index says a chunk starts there. Without carved_only it
 * reads only what is const while the chunk is mapped, so it needs no lock. */
ST_INLINE const char *st__chunk_misfit_in(const void *obj, const void *owner,
                                          const st_chunk_geometry *g, bool carved_only) {
  if (ST_UNLIKELY(!st__chunk_index_has(st__chunk_base(obj, g)))) return "not allocated by";
  st_chunk_t *c = st__chunk_of(obj, g);
  if (ST_UNLIKELY(c->magic != ST_MAGIC_CHUNK)) return "not allocated by";
  if (ST_UNLIKELY(c->owner != owner)) return "allocated by another allocator than";
  /* The offset is below ST_CHUNK_MAX_SIZE < 2^32, where (offset * recip) >> 32 is exactly
   * offset / slot for every multiple of slot; any other offset fails the product test. */
  uintptr_t offset = (uintptr_t)obj - (uintptr_t)st__chunk_slots(c, g);
  if (ST_UNLIKELY(offset >= (uintptr_t)((carved_only ? c->fresh : c->limit) - st__chunk_slots(c, g)) ||
                  ((offset * g->recip) >> 32) * g->slot != offset))
    return "not the start of an object of";
  return NULL;
}

ST_INLINE const char *st__chunk_misfit(const void *obj, const void *owner,
                                       const st_chunk_geometry *g) {
  return st__chunk_misfit_in(obj, owner, g, true);
}

#endif
