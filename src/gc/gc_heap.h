/*
 * gc_heap.h — the garbage collector's heap: arenas of blocks, size classes, object lookup.
 *
 * Owns: where GC objects live and how any word is recognised as a pointer into one. Memory
 * comes from src/os directly (never from the malloc backend). Every piece of metadata (this
 * state, block descriptors, bitmaps) lives in mappings the collector never scans as roots,
 * so the collector's own bookkeeping cannot keep an object alive.
 * Does not own: marking (gc_mark.c), sweeping (gc_sweep.c), policy (gc.c).
 * Callers hold the GC lock (gc.c); nothing here is thread safe on its own.
 *
 *   arena (1 GiB aligned, reserved)       descriptors (separate mapping, one per block)
 *   +-------+-------+-------+-------+--   +--------+--------+--------+--------+
 *   | small | large | large | free  | ... | SMALL  | LARGE  | TAIL   | FREE   | ...
 *   | 32 B  | head  | tail  |       |     | mark[] | run=2  | back=1 |        |
 *   +-------+-------+-------+-------+--   +--------+--------+--------+--------+
 *   word w -> arena_of[w >> 30] -> block (w - base) >> 12 -> object (offset * recip) >> 32
 */
#ifndef ST_GC_GC_HEAP_H
#define ST_GC_GC_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

#define ST_GC_BLOCK_SHIFT 12
#define ST_GC_BLOCK_SIZE ((size_t)1 << ST_GC_BLOCK_SHIFT)
#define ST_GC_GRANULE 16
#define ST_GC_SMALL_MAX 2048 /* larger objects are runs of whole blocks */
#define ST_GC_CLASS_COUNT 24
#define ST_GC_MAX_OBJECTS (ST_GC_BLOCK_SIZE / ST_GC_GRANULE)
#define ST_GC_BITMAP_WORDS (ST_GC_MAX_OBJECTS / 64)
#define ST_GC_ARENA_SHIFT 30 /* arenas are reserved in multiples of 1 GiB, so aligned */
#define ST_GC_ADDRESS_BITS 47
#define ST_GC_MAX_ARENAS 255

typedef enum st_gc_block_kind {
  ST_GC_BLOCK_FREE,       /* in the free pool; dirty says whether it may hold old data */
  ST_GC_BLOCK_SMALL,      /* objects of one size class */
  ST_GC_BLOCK_LARGE,      /* first block of one large object; run = its block count */
  ST_GC_BLOCK_LARGE_TAIL, /* later block of a large object; run = distance to the head */
} st_gc_block_kind;

/* One per block, out of band. Invariants: for SMALL blocks bit i of alloc is set when object
 * i is allocated or sits in a class free list / bump region (the allocator owns it); mark is
 * all zero outside a collection; bits at or above nobjs are never set. LARGE uses bit 0. */
typedef struct st_gc_block {
  uint64_t mark[ST_GC_BITMAP_WORDS];  /* collector: reached in the current mark phase */
  uint64_t alloc[ST_GC_BITMAP_WORDS]; /* allocator: slot handed out (see above) */
  char *start;                        /* const after the block is first used */
  struct st_gc_block *next_partial;   /* link in its class's partial list (sweep -> alloc) */
  uint32_t run;                       /* LARGE: blocks in the object; TAIL: blocks to head */
  uint32_t recip;                     /* SMALL: ceil(2^32 / obj_size), for offset -> index */
  uint32_t free_epoch;                /* FREE: collection count when it was released */
  uint16_t obj_size;                  /* SMALL: bytes per object */
  uint16_t nobjs;                     /* SMALL: objects per block */
  uint8_t kind;                       /* st_gc_block_kind */
  uint8_t cls;                        /* SMALL: size class index */
  bool atomic;                        /* objects are never scanned for pointers */
  bool dirty;                         /* FREE: memory may be non-zero (not purged yet) */
  bool on_partial;                    /* SMALL: on its class's partial list */
} st_gc_block;
/* Metadata per 4 KiB block stays near 2.5%. */
_Static_assert(sizeof(st_gc_block) <= 104, "st_gc_block grew");

typedef struct st_gc_arena {
  char *base;         /* ST_GC_ARENA_SHIFT aligned; const after creation */
  size_t blocks;      /* blocks reserved; const */
  size_t high_water;  /* blocks ever handed out; the rest is untouched, zero memory */
  size_t free_hint;   /* no free bit below this index */
  st_gc_block *desc;  /* descriptors of blocks [0, blocks) */
  uint64_t *free_map; /* bit per block below high_water: 1 = FREE */
} st_gc_arena;

/* Allocation state of one size class of one kind (scanned or atomic). */
typedef struct st_gc_class {
  void *free_list;       /* objects linked through their first word */
  char *bump, *bump_end; /* untouched slots of the block being carved */
  bool bump_zeroed;      /* the bump region is known to be zero */
  st_gc_block *partial;  /* blocks with free slots, not yet swept into free_list */
} st_gc_class;

typedef struct st_gc_heap {
  uint8_t *arena_of; /* [addr >> ST_GC_ARENA_SHIFT] = arena index + 1 */
  uintptr_t lo, hi;  /* bounds of all arenas: a quick reject */
  st_gc_arena arenas[ST_GC_MAX_ARENAS];
  size_t arena_count;
  st_gc_class classes[2][ST_GC_CLASS_COUNT]; /* [atomic][class] */
  size_t heap_bytes;                         /* bytes of blocks not FREE */
  size_t limit_bytes;                        /* 0 = none; heap_bytes never grows beyond it */
  size_t free_blocks;                        /* blocks in the free pools */
} st_gc_heap;

/* The one heap; NULL until st__gc_heap_init succeeds. Its pages are never scanned. */
ST_HIDDEN extern st_gc_heap *st__gc_heap;

/* Maps the heap's metadata; false (errno ENOMEM) when the kernel refuses. */
ST_HIDDEN bool st__gc_heap_init(void);
/* Object size of each class, and the class of each request size in granules (filled by
 * st__gc_heap_init). */
ST_HIDDEN extern const uint16_t st__gc_class_sizes[ST_GC_CLASS_COUNT];
ST_HIDDEN extern uint8_t st__gc_class_of_granules[ST_GC_SMALL_MAX / ST_GC_GRANULE + 1];

/* Size class for a small request (size <= ST_GC_SMALL_MAX). */
ST_INLINE unsigned st_gc_size_class(size_t size) {
  return st__gc_class_of_granules[(size + ST_GC_GRANULE - 1) / ST_GC_GRANULE];
}

/* The continuation of st_gc_alloc_small when the free list and the bump region are empty. */
ST_HIDDEN void *st__gc_alloc_small_slow(unsigned cls, bool atomic);

/* A small object (zeroed unless atomic) or NULL when a new block is needed but the limit or
 * the kernel refuses (errno ENOMEM). */
ST_INLINE void *st_gc_alloc_small(unsigned cls, bool atomic) {
  st_gc_class *c = &st__gc_heap->classes[atomic][cls];
  size_t size = st__gc_class_sizes[cls];
  void *p = c->free_list;
  if (ST_LIKELY(p != NULL)) {
    c->free_list = *(void **)p;
    if (!atomic) __builtin_memset(p, 0, size);
    return p;
  }
  if (ST_LIKELY(c->bump < c->bump_end)) {
    p = c->bump;
    c->bump += size;
    if (!atomic && !c->bump_zeroed) __builtin_memset(p, 0, size);
    return p;
  }
  return st__gc_alloc_small_slow(cls, atomic);
}
/* A large object of size bytes (zeroed) or NULL (errno ENOMEM). */
ST_HIDDEN void *st__gc_alloc_large(size_t size, bool atomic);
/* Gives one object back at once; obj is the start of an allocated object. */
ST_HIDDEN void st__gc_free_object(st_gc_block *b, void *obj);
/* Returns blocks [b, b + count) of a large object or an empty small block to the pool. */
ST_HIDDEN void st__gc_release_blocks(st_gc_block *b, uint32_t epoch);
/* Purges free blocks released before collection `epoch` (the caller picks how many
 * collections a block stays idle before its memory goes back to the kernel). */
ST_HIDDEN void st__gc_purge_idle(uint32_t epoch);
/* Forgets every class's free list, bump region and partial list (start of a collection). */
ST_HIDDEN void st__gc_reset_classes(void);

/* Moves a metadata array of old_bytes (NULL, 0 for none) into a new mapping of new_bytes;
 * NULL (old one intact) when the kernel refuses. new_bytes 0 unmaps old and returns NULL.
 * Page-rounds both sizes. */
ST_HIDDEN void *st__gc_meta_resize(void *old, size_t old_bytes, size_t new_bytes);

/* Checks the heap's invariants outside a collection (descriptor kinds against the free
 * maps, bitmaps within nobjs, no mark bit set, heap_bytes and free_blocks against the
 * blocks); returns 0, or prints the first inconsistency and returns -1. For tests. */
ST_HIDDEN int st__gc_heap_validate(void);

/* The arena holding block descriptor b. */
ST_HIDDEN st_gc_arena *st__gc_arena_of_block(const st_gc_block *b);

/* Usable bytes of the object starting at obj in block b. */
ST_INLINE size_t st_gc_object_capacity(const st_gc_block *b) {
  return b->kind == ST_GC_BLOCK_SMALL ? b->obj_size : (size_t)b->run << ST_GC_BLOCK_SHIFT;
}

ST_INLINE bool st_gc_bit_test(const uint64_t *map, size_t i) {
  return (map[i / 64] >> (i % 64)) & 1;
}
ST_INLINE void st_gc_bit_set(uint64_t *map, size_t i) { map[i / 64] |= (uint64_t)1 << (i % 64); }
ST_INLINE void st_gc_bit_clear(uint64_t *map, size_t i) {
  map[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/* A reference found by a conservative lookup: the object's block, index and start. */
typedef struct st_gc_ref {
  st_gc_block *block;
  size_t index; /* object index in a SMALL block; 0 for LARGE */
  char *obj;
} st_gc_ref;

/* Resolves any word to the allocated object it points into (interior pointers included).
 * Returns false for words outside the heap, free blocks, block tails past the last object and
 * slots the allocator does not own. This is the marker's hot path. */
ST_INLINE bool st_gc_lookup_inside(uintptr_t word, st_gc_ref *out);
ST_INLINE bool st_gc_lookup(uintptr_t word, st_gc_ref *out) {
  const st_gc_heap *h = st__gc_heap;
  if (word - h->lo >= h->hi - h->lo) return false;
  return st_gc_lookup_inside(word, out);
}

/* st_gc_lookup for a word the caller found within [lo, hi) of the heap. */
ST_INLINE bool st_gc_lookup_inside(uintptr_t word, st_gc_ref *out) {
  const st_gc_heap *h = st__gc_heap;
  unsigned a = h->arena_of[word >> ST_GC_ARENA_SHIFT];
  if (a == 0) return false;
  const st_gc_arena *arena = &h->arenas[a - 1];
  size_t bi = (word - (uintptr_t)arena->base) >> ST_GC_BLOCK_SHIFT;
  if (bi >= arena->high_water) return false;
  st_gc_block *b = &arena->desc[bi];
  if (b->kind == ST_GC_BLOCK_SMALL) {
    size_t offset = word & (ST_GC_BLOCK_SIZE - 1);
    size_t index = (size_t)(((uint64_t)offset * b->recip) >> 32);
    if (index >= b->nobjs || !st_gc_bit_test(b->alloc, index)) return false;
    *out = (st_gc_ref){b, index, b->start + index * b->obj_size};
    return true;
  }
  if (b->kind == ST_GC_BLOCK_LARGE_TAIL)
    b -= b->run;
  else if (b->kind != ST_GC_BLOCK_LARGE)
    return false;
  if (!st_gc_bit_test(b->alloc, 0)) return false;
  *out = (st_gc_ref){b, 0, b->start};
  return true;
}

#endif
