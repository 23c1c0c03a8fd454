/*
 * gc_heap.c — arenas, the free block pool, size classes and object allocation (gc_heap.h).
 *
 * Arenas are reserved from src/os in multiples of 1 GiB (MAP_NORESERVE: untouched pages
 * cost nothing) and handed out block by block: first from the free pool (a bitmap per
 * arena, first fit), then by raising the arena's high-water mark. Small objects are carved
 * from a fresh block by bumping a pointer; blocks that kept survivors after a sweep wait on
 * their class's partial list and are turned into a free list only when the allocator needs
 * them (lazy sweeping: the object memory is touched just before it is reused). Free blocks
 * idle for a whole collection cycle are purged, so resident memory follows the live size.
 * Calls: os (map, purge). Callers hold the GC lock.
 */
#include "gc/gc_heap.h"

#include <errno.h>
#include <string.h>

#include "base/check.h"
#include "base/report.h"
#include "os/os.h"

st_gc_heap *st__gc_heap;

/* 16-byte steps to 128, then four classes per doubling up to 2 KiB: waste < 25%. */
const uint16_t st__gc_class_sizes[ST_GC_CLASS_COUNT] = {
    16,  32,  48,  64,  80,  96,  112, 128,  160,  192,  224,  256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048};

uint8_t st__gc_class_of_granules[ST_GC_SMALL_MAX / ST_GC_GRANULE + 1];

/* The smallest class that holds granules * ST_GC_GRANULE bytes (0 granules: class 0). */
static void class_table_fill(void) {
  unsigned cls = 0;
  for (size_t g = 0; g <= ST_GC_SMALL_MAX / ST_GC_GRANULE; g++) {
    while (st__gc_class_sizes[cls] < g * ST_GC_GRANULE) cls++;
    st__gc_class_of_granules[g] = (uint8_t)cls;
  }
}

static void *map_metadata(size_t bytes) {
  return st__os_map_aligned(st_align_up(bytes, st__os_page_size()), st__os_page_size());
}

static void unmap_metadata(void *p, size_t bytes) {
  if (p != NULL) st__os_unmap(p, st_align_up(bytes, st__os_page_size()));
}

void *st__gc_meta_resize(void *old, size_t old_bytes, size_t new_bytes) {
  if (new_bytes == 0) {
    unmap_metadata(old, old_bytes);
    return NULL;
  }
  void *p = map_metadata(new_bytes);
  if (p == NULL) return NULL;
  if (old != NULL) {
    memcpy(p, old, old_bytes < new_bytes ? old_bytes : new_bytes);
    unmap_metadata(old, old_bytes);
  }
  return p;
}

#define ARENA_TABLE_SIZE ((size_t)1 << (ST_GC_ADDRESS_BITS - ST_GC_ARENA_SHIFT))

bool st__gc_heap_init(void) {
  if (st__gc_heap != NULL) return true;
  st_gc_heap *h = map_metadata(sizeof *h);
  if (h == NULL) return false;
  h->arena_of = map_metadata(ARENA_TABLE_SIZE);
  if (h->arena_of == NULL) {
    unmap_metadata(h, sizeof *h);
    return false;
  }
  class_table_fill();
  st__gc_heap = h; /* lo == hi == 0: every lookup is rejected until an arena exists */
  return true;
}

/* ---- Arenas and the free block pool ---------------------------------------------------- */

static st_gc_arena *arena_create(size_t min_blocks) {
  st_gc_heap *h = st__gc_heap;
  if (h->arena_count == ST_GC_MAX_ARENAS) return NULL;
  size_t unit = (size_t)1 << ST_GC_ARENA_SHIFT;
  if (min_blocks > (SIZE_MAX >> ST_GC_BLOCK_SHIFT) - unit) return NULL;
  size_t bytes = st_align_up(min_blocks << ST_GC_BLOCK_SHIFT, unit);
  if (bytes == 0) bytes = unit;
  size_t blocks = bytes >> ST_GC_BLOCK_SHIFT;
  char *base = st__os_map_aligned(bytes, unit);
  st_gc_block *desc = base ? map_metadata(blocks * sizeof *desc) : NULL;
  uint64_t *free_map = desc ? map_metadata(blocks / 8) : NULL;
  if (free_map == NULL || (uintptr_t)base + bytes > ((uintptr_t)1 << ST_GC_ADDRESS_BITS)) {
    if (free_map != NULL) unmap_metadata(free_map, blocks / 8);
    unmap_metadata(desc, blocks * sizeof *desc);
    if (base != NULL) st__os_unmap(base, bytes);
    return NULL;
  }
  st_gc_arena *a = &h->arenas[h->arena_count++];
  *a = (st_gc_arena){.base = base, .blocks = blocks, .desc = desc, .free_map = free_map};
  for (size_t slot = 0; slot < bytes / unit; slot++)
    h->arena_of[((uintptr_t)base >> ST_GC_ARENA_SHIFT) + slot] = (uint8_t)h->arena_count;
  if (h->lo == h->hi || (uintptr_t)base < h->lo) h->lo = (uintptr_t)base;
  if ((uintptr_t)base + bytes > h->hi) h->hi = (uintptr_t)base + bytes;
  return a;
}

static st_gc_arena *arena_of_address(const void *p) {
  return &st__gc_heap->arenas[st__gc_heap->arena_of[(uintptr_t)p >> ST_GC_ARENA_SHIFT] - 1];
}

st_gc_arena *st__gc_arena_of_block(const st_gc_block *b) { return arena_of_address(b->start); }

/* First index >= from of a run of n free blocks below high_water, or SIZE_MAX. */
static size_t free_run_find(const st_gc_arena *a, size_t from, size_t n) {
  size_t run = 0;
  for (size_t i = from; i < a->high_water;) {
    uint64_t word = a->free_map[i / 64] >> (i % 64);
    if (word == 0 && run == 0) { /* no free block in the rest of this word */
      i = (i / 64 + 1) * 64;
      continue;
    }
    run = (word & 1) ? run + 1 : 0;
    i++;
    if (run == n) return i - n;
  }
  return SIZE_MAX;
}

/* Takes n contiguous blocks; *zeroed says whether their memory is known to be zero. */
static st_gc_block *blocks_take(size_t n, bool *zeroed) {
  st_gc_heap *h = st__gc_heap;
  size_t bytes = n << ST_GC_BLOCK_SHIFT;
  if (n > UINT32_MAX || (h->limit_bytes != 0 && h->heap_bytes + bytes > h->limit_bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  st_gc_arena *a = NULL;
  size_t first = SIZE_MAX;
  for (size_t i = 0; i < h->arena_count && first == SIZE_MAX && h->free_blocks >= n; i++) {
    a = &h->arenas[i];
    first = free_run_find(a, a->free_hint, n);
    if (first != SIZE_MAX && n == 1) a->free_hint = first + 1;
  }
  *zeroed = true;
  if (first != SIZE_MAX) {
    for (size_t i = first; i < first + n; i++) {
      st_gc_bit_clear(a->free_map, i);
      *zeroed &= !a->desc[i].dirty;
    }
    h->free_blocks -= n;
  } else {
    for (size_t i = 0; i < h->arena_count && first == SIZE_MAX; i++) {
      a = &h->arenas[i];
      if (a->blocks - a->high_water >= n) first = a->high_water;
    }
    if (first == SIZE_MAX) {
      a = arena_create(n);
      if (a == NULL) {
        errno = ENOMEM;
        return NULL;
      }
      first = 0;
    }
    a->high_water = first + n;
  }
  for (size_t i = first; i < first + n; i++) a->desc[i].start = a->base + (i << ST_GC_BLOCK_SHIFT);
  h->heap_bytes += bytes;
  return &a->desc[first];
}

void st__gc_release_blocks(st_gc_block *b, uint32_t epoch) {
  st_gc_heap *h = st__gc_heap;
  st_gc_arena *a = st__gc_arena_of_block(b);
  size_t n = b->kind == ST_GC_BLOCK_LARGE ? b->run : 1;
  size_t first = (size_t)(b - a->desc);
  for (size_t i = 0; i < n; i++) {
    char *start = b[i].start;
    b[i] =
        (st_gc_block){.start = start, .kind = ST_GC_BLOCK_FREE, .dirty = true, .free_epoch = epoch};
    st_gc_bit_set(a->free_map, first + i);
  }
  if (first < a->free_hint) a->free_hint = first;
  h->heap_bytes -= n << ST_GC_BLOCK_SHIFT;
  h->free_blocks += n;
}

/* Purges one arena's runs of dirty free blocks released before epoch. */
static void purge_arena(st_gc_arena *a, uint32_t epoch) {
  size_t run_start = 0, run = 0;
  for (size_t i = 0; i <= a->high_water; i++) {
    st_gc_block *b = i < a->high_water ? &a->desc[i] : NULL;
    bool idle = b != NULL && b->kind == ST_GC_BLOCK_FREE && b->dirty && b->free_epoch < epoch;
    if (idle) {
      if (run++ == 0) run_start = i;
      continue;
    }
    if (run != 0 &&
        st__os_purge(a->base + (run_start << ST_GC_BLOCK_SHIFT), run << ST_GC_BLOCK_SHIFT, false)) {
      for (size_t j = run_start; j < run_start + run; j++) a->desc[j].dirty = false;
    }
    run = 0;
  }
}

void st__gc_purge_idle(uint32_t epoch) {
  st_gc_heap *h = st__gc_heap;
  if (h->free_blocks == 0) return;
  for (size_t i = 0; i < h->arena_count; i++) purge_arena(&h->arenas[i], epoch);
}

/* ---- Small objects ------------------------------------------------------------------- */

static void block_setup_small(st_gc_block *b, unsigned cls, bool atomic) {
  size_t size = st__gc_class_sizes[cls];
  b->kind = ST_GC_BLOCK_SMALL;
  b->cls = (uint8_t)cls;
  b->atomic = atomic;
  b->obj_size = (uint16_t)size;
  b->nobjs = (uint16_t)(ST_GC_BLOCK_SIZE / size);
  b->recip = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
  b->on_partial = false;
  memset(b->mark, 0, sizeof b->mark);
  memset(b->alloc, 0, sizeof b->alloc);
  for (size_t i = 0; i < b->nobjs; i++) st_gc_bit_set(b->alloc, i); /* all go to the bump */
}

/* Links the free slots of a partial block into c->free_list; the allocator owns them now. */
static void partial_to_free_list(st_gc_class *c, st_gc_block *b) {
  void *head = c->free_list;
  for (size_t i = b->nobjs; i-- > 0;) {
    if (st_gc_bit_test(b->alloc, i)) continue;
    void *obj = b->start + i * b->obj_size;
    *(void **)obj = head;
    head = obj;
    st_gc_bit_set(b->alloc, i);
  }
  c->free_list = head;
}

void *st__gc_alloc_small_slow(unsigned cls, bool atomic) {
  st_gc_class *c = &st__gc_heap->classes[atomic][cls];
  while (c->partial != NULL && c->free_list == NULL) {
    st_gc_block *b = c->partial;
    c->partial = b->next_partial;
    b->next_partial = NULL;
    b->on_partial = false;
    partial_to_free_list(c, b);
  }
  if (c->free_list == NULL) {
    bool zeroed;
    st_gc_block *b = blocks_take(1, &zeroed);
    if (b == NULL) return NULL;
    block_setup_small(b, cls, atomic);
    c->bump = b->start;
    c->bump_end = b->start + (size_t)b->nobjs * b->obj_size;
    c->bump_zeroed = zeroed;
  }
  return st_gc_alloc_small(cls, atomic);
}

/* ---- Large objects and explicit frees ------------------------------------------------ */

void *st__gc_alloc_large(size_t size, bool atomic) {
  size_t n = (size + ST_GC_BLOCK_SIZE - 1) >> ST_GC_BLOCK_SHIFT;
  bool zeroed;
  st_gc_block *b = blocks_take(n, &zeroed);
  if (b == NULL) return NULL;
  for (size_t i = 1; i < n; i++) {
    b[i].kind = ST_GC_BLOCK_LARGE_TAIL;
    b[i].run = (uint32_t)i;
  }
  b->kind = ST_GC_BLOCK_LARGE;
  b->run = (uint32_t)n;
  b->atomic = atomic;
  memset(b->mark, 0, sizeof b->mark);
  memset(b->alloc, 0, sizeof b->alloc);
  st_gc_bit_set(b->alloc, 0);
  if (!zeroed && !atomic) memset(b->start, 0, n << ST_GC_BLOCK_SHIFT);
  return b->start;
}

void st__gc_free_object(st_gc_block *b, void *obj) {
  if (b->kind == ST_GC_BLOCK_LARGE) {
    st__gc_release_blocks(b, 0); /* epoch 0: purged at the next collection */
    return;
  }
  size_t index = (size_t)((char *)obj - b->start) / b->obj_size;
  if (b->on_partial) { /* the block's free list is built later, from the bitmap */
    st_gc_bit_clear(b->alloc, index);
    return;
  }
  /* The slot keeps its alloc bit: the allocator owns it while it sits in the free list. */
  st_gc_class *c = &st__gc_heap->classes[b->atomic][b->cls];
  *(void **)obj = c->free_list;
  c->free_list = obj;
}

void st__gc_reset_classes(void) {
  st_gc_heap *h = st__gc_heap;
  for (int atomic = 0; atomic < 2; atomic++) {
    for (unsigned cls = 0; cls < ST_GC_CLASS_COUNT; cls++) {
      st_gc_class *c = &h->classes[atomic][cls];
      for (st_gc_block *b = c->partial, *next; b != NULL; b = next) {
        next = b->next_partial;
        b->next_partial = NULL;
        b->on_partial = false;
      }
      *c = (st_gc_class){0};
    }
  }
}

/* ---- Invariants ---------------------------------------------------------------------- */

/* One block's problem, or NULL. */
static const char *block_validate(const st_gc_arena *a, size_t i) {
  const st_gc_block *b = &a->desc[i];
  bool free_bit = st_gc_bit_test(a->free_map, i);
  if (b->start != a->base + (i << ST_GC_BLOCK_SHIFT)) return "wrong start";
  if ((b->kind == ST_GC_BLOCK_FREE) != free_bit) return "kind disagrees with the free map";
  for (size_t w = 0; w < ST_GC_BITMAP_WORDS; w++)
    if (b->mark[w] != 0) return "mark bit set outside a collection";
  if (b->kind == ST_GC_BLOCK_SMALL) {
    if (b->obj_size != st__gc_class_sizes[b->cls] || b->nobjs != ST_GC_BLOCK_SIZE / b->obj_size)
      return "size class fields disagree";
    for (size_t k = b->nobjs; k < ST_GC_MAX_OBJECTS; k++)
      if (st_gc_bit_test(b->alloc, k)) return "alloc bit beyond the last object";
  } else if (b->kind == ST_GC_BLOCK_LARGE) {
    if (b->run == 0 || i + b->run > a->high_water) return "large run out of bounds";
    for (size_t t = 1; t < b->run; t++)
      if (b[t].kind != ST_GC_BLOCK_LARGE_TAIL || b[t].run != t) return "broken large tail";
  } else if (b->kind == ST_GC_BLOCK_LARGE_TAIL) {
    if (b->run == 0 || b->run > i || b[-(ptrdiff_t)b->run].kind != ST_GC_BLOCK_LARGE)
      return "tail without its head";
  } else if (b->kind != ST_GC_BLOCK_FREE) {
    return "unknown kind";
  }
  return NULL;
}

int st__gc_heap_validate(void) {
  const st_gc_heap *h = st__gc_heap;
  if (h == NULL) return 0;
  size_t used = 0, free_blocks = 0;
  for (size_t ai = 0; ai < h->arena_count; ai++) {
    const st_gc_arena *a = &h->arenas[ai];
    for (size_t i = 0; i < a->high_water; i++) {
      const char *problem = block_validate(a, i);
      if (problem != NULL) {
        st__report("gc heap: block %p: %s", (void *)(a->base + (i << ST_GC_BLOCK_SHIFT)), problem);
        return -1;
      }
      if (a->desc[i].kind == ST_GC_BLOCK_FREE)
        free_blocks++;
      else
        used++;
    }
  }
  if (used << ST_GC_BLOCK_SHIFT != h->heap_bytes || free_blocks != h->free_blocks) {
    st__report("gc heap: counters say %zu bytes, %zu free blocks; blocks say %zu, %zu",
               h->heap_bytes, h->free_blocks, used << ST_GC_BLOCK_SHIFT, free_blocks);
    return -1;
  }
  return 0;
}
