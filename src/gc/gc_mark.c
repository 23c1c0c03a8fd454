/*
 * gc_mark.c — conservative marking with an explicit, growable mark stack (gc_mark.h).
 *
 * Layout of the stack: entries [0, top) are word ranges still to scan; it lives in memory
 * mapped from src/os, never scanned itself. Scanning functions read whole stack frames and
 * padding, so AddressSanitizer is told not to instrument them.
 */
#include "gc/gc_mark.h"

#include "gc/gc_heap.h"
#include "os/os.h"

#if defined(__SANITIZE_ADDRESS__)
#define GC_NO_ASAN __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GC_NO_ASAN __attribute__((no_sanitize_address))
#endif
#endif
#ifndef GC_NO_ASAN
#define GC_NO_ASAN
#endif

typedef struct mark_entry {
  const uintptr_t *lo, *hi;
} mark_entry;

static struct {
  mark_entry *entries; /* mapped; capacity entries */
  size_t capacity;     /* entries that fit */
  size_t max_bytes;    /* growth bound (STRATA_GC_MARK_STACK_KB) */
  size_t top;          /* entries in use */
  bool overflowed;     /* a push was dropped since the last rescan */
  size_t overflows;    /* rescans ever needed */
} mark_stack;

enum { MARK_STACK_INITIAL_BYTES = 64 * 1024 };

bool st__gc_mark_init(size_t max_bytes) {
  if (mark_stack.entries != NULL) return true;
  size_t page = st__os_page_size();
  max_bytes = st_align_up(max_bytes < page ? page : max_bytes, page);
  size_t bytes = max_bytes < MARK_STACK_INITIAL_BYTES ? max_bytes : MARK_STACK_INITIAL_BYTES;
  mark_entry *entries = st__gc_meta_resize(NULL, 0, bytes);
  if (entries == NULL) return false;
  mark_stack.entries = entries;
  mark_stack.capacity = bytes / sizeof(mark_entry);
  mark_stack.max_bytes = max_bytes;
  return true;
}

size_t st__gc_mark_overflows(void) { return mark_stack.overflows; }

static inline void mark_push(const void *obj, size_t size) {
  if (ST_UNLIKELY(mark_stack.top == mark_stack.capacity)) {
    mark_stack.overflowed = true; /* obj stays marked; the rescan will scan it */
    return;
  }
  mark_stack.entries[mark_stack.top++] =
      (mark_entry){(const uintptr_t *)obj, (const uintptr_t *)((const char *)obj + size)};
}

/* The heap's bounds, loaded once per scanned range: mark-bit stores could alias them. */
typedef struct heap_view {
  uintptr_t lo, span;
} heap_view;

static inline heap_view heap_view_load(void) {
  return (heap_view){st__gc_heap->lo, st__gc_heap->hi - st__gc_heap->lo};
}

/* Marks the object a word within the heap's bounds points into. */
static inline void mark_inside(uintptr_t word) {
  st_gc_ref ref;
  if (!st_gc_lookup_inside(word, &ref)) return;
  uint64_t *bits = &ref.block->mark[ref.index / 64], bit = (uint64_t)1 << (ref.index % 64);
  if (*bits & bit) return;
  *bits |= bit;
  if (!ref.block->atomic) mark_push(ref.obj, st_gc_object_capacity(ref.block));
}

void st__gc_mark_word(uintptr_t word) {
  heap_view view = heap_view_load();
  if (word - view.lo < view.span) mark_inside(word);
}

GC_NO_ASAN static void scan_words(const uintptr_t *p, const uintptr_t *end) {
  heap_view view = heap_view_load();
  for (; p < end; p++) {
    uintptr_t word = *p;
    if (word - view.lo < view.span) mark_inside(word); /* most words are no pointers at all */
  }
}

GC_NO_ASAN void st__gc_mark_range(const void *lo, const void *hi) {
  uintptr_t first = st_align_up((uintptr_t)lo, sizeof(uintptr_t));
  uintptr_t last = st_align_down_ptr((uintptr_t)hi, sizeof(uintptr_t));
  if (first < last) scan_words((const uintptr_t *)first, (const uintptr_t *)last);
}

/* Marking is bound by cache misses on the objects it scans, and a LIFO stack scans the
 * object pushed last at once. So entries pass through a small FIFO on their way from the
 * stack to the scan: each is prefetched PREFETCH_DEPTH scans before it is read. */
enum { PREFETCH_DEPTH = 8 };

static void drain_stack(void) {
  mark_entry ring[PREFETCH_DEPTH];
  size_t head = 0, count = 0;
  for (;;) {
    while (count < PREFETCH_DEPTH && mark_stack.top != 0) {
      mark_entry e = mark_stack.entries[--mark_stack.top];
      __builtin_prefetch(e.lo);
      ring[(head + count++) % PREFETCH_DEPTH] = e;
    }
    if (count == 0) return;
    mark_entry e = ring[head];
    head = (head + 1) % PREFETCH_DEPTH;
    count--;
    scan_words(e.lo, e.hi);
  }
}

/* Doubles the stack if the bound allows; on failure the old one stays and rescans go on. */
static void mark_stack_grow(void) {
  size_t bytes = mark_stack.capacity * sizeof(mark_entry);
  if (bytes * 2 > mark_stack.max_bytes) return;
  mark_entry *bigger = st__gc_meta_resize(mark_stack.entries, bytes, bytes * 2);
  if (bigger == NULL) return;
  mark_stack.entries = bigger;
  mark_stack.capacity *= 2;
}

/* Scans every marked, scanned object of one arena again; their unmarked children get pushed. */
static void rescan_arena(const st_gc_arena *a) {
  for (size_t i = 0; i < a->high_water; i++) {
    st_gc_block *b = &a->desc[i];
    if (b->atomic || (b->kind != ST_GC_BLOCK_SMALL && b->kind != ST_GC_BLOCK_LARGE)) continue;
    size_t count = b->kind == ST_GC_BLOCK_SMALL ? b->nobjs : 1;
    size_t size = st_gc_object_capacity(b);
    for (size_t k = 0; k < count; k++) {
      if (!st_gc_bit_test(b->mark, k)) continue;
      const char *obj = b->start + k * size;
      scan_words((const uintptr_t *)obj, (const uintptr_t *)(obj + size));
      drain_stack();
    }
  }
}

void st__gc_mark_drain(void) {
  drain_stack();
  while (mark_stack.overflowed) {
    mark_stack.overflowed = false;
    mark_stack.overflows++;
    mark_stack_grow();
    for (size_t i = 0; i < st__gc_heap->arena_count; i++) rescan_arena(&st__gc_heap->arenas[i]);
  }
}
