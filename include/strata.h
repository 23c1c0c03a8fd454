/*
 * strata.h — the whole public API of the strata memory allocator.
 *
 * Every function here is usable whether or not libstrata also replaces the libc
 * malloc family (libstrata.so and libstrata.a export both; see docs/design.md).
 * Semantics follow glibc's documented behaviour for the libc-named twins:
 *   - every pointer is aligned to alignof(max_align_t) (16 on x86-64);
 *   - impossible sizes give NULL with errno = ENOMEM, bad alignments EINVAL;
 *   - st_free(NULL) is a no-op and st_free never changes errno.
 */
#ifndef STRATA_H
#define STRATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 1
#define STRATA_VERSION_PATCH 0
#define STRATA_VERSION "0.1.0"

#if defined(__GNUC__)
#define ST_API __attribute__((visibility("default")))
#define ST_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#define ST_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define ST_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#define ST_ALLOC_ALIGN(n) __attribute__((alloc_align(n)))
#else
#define ST_API
#define ST_MALLOC_ATTR
#define ST_ALLOC_SIZE(n)
#define ST_ALLOC_SIZE2(n, m)
#define ST_ALLOC_ALIGN(n)
#endif

/* ---- The malloc family (prefixed twins of the libc names) ---------------------------- */

ST_API void *st_malloc(size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE(1);
ST_API void *st_calloc(size_t count, size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE2(1, 2);
ST_API void *st_realloc(void *ptr, size_t size) ST_ALLOC_SIZE(2);
ST_API void *st_reallocarray(void *ptr, size_t count, size_t size) ST_ALLOC_SIZE2(2, 3);
ST_API void st_free(void *ptr);
/* C23: size must be the size passed to the allocating call (or 0 if unknown). */
ST_API void st_free_sized(void *ptr, size_t size);
ST_API void st_free_aligned_sized(void *ptr, size_t alignment, size_t size);
/* C11: alignment is rounded up to a power of two as glibc does; EINVAL if absurd. */
ST_API void *st_aligned_alloc(size_t alignment, size_t size) ST_MALLOC_ATTR
    ST_ALLOC_ALIGN(1) ST_ALLOC_SIZE(2);
/* Returns 0, EINVAL (alignment not a power of two multiple of sizeof(void *)) or ENOMEM;
 * errno is left unchanged. */
ST_API int st_posix_memalign(void **out, size_t alignment, size_t size);
ST_API void *st_memalign(size_t alignment, size_t size) ST_MALLOC_ATTR ST_ALLOC_ALIGN(1)
    ST_ALLOC_SIZE(2);
ST_API void *st_valloc(size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE(1);
ST_API void *st_pvalloc(size_t size) ST_MALLOC_ATTR;
/* Bytes usable at ptr (>= the requested size); 0 for NULL. */
ST_API size_t st_usable_size(const void *ptr);
/* Returns free memory to the kernel at once; 1 if some was released, else 0. The argument is
 * glibc's `pad` and is accepted for compatibility. */
ST_API int st_trim(size_t pad);

/* ---- Introspection ------------------------------------------------------------------ */

/* Process-wide counters of the production allocator (a subset of st_stats below, kept for
 * programs written against it), read without stopping threads (the
 * figures are a consistent-enough snapshot, not an atomic one). */
typedef struct st_core_counters {
  size_t mapped_bytes;    /* address space mapped from the kernel (regions, huge blocks) */
  size_t metadata_bytes;  /* span descriptors, thread caches, pagemap leaves */
  size_t spans_allocated; /* spans ever handed out by the page heaps */
  size_t huge_allocated;  /* huge blocks ever mapped */
  size_t purged_bytes;    /* bytes ever handed back with madvise */
  size_t threads_live;    /* thread caches in use */
} st_core_counters;
ST_API void st_core_counters_get(st_core_counters *out);

/* ---- Statistics (docs/stats.md) ------------------------------------------------------ */

/* Where the process's memory is, gathered on demand: per-thread event counters are merged
 * under the registry lock and the figures are computed from the span metadata with the
 * page heaps locked, so nothing is counted on the malloc/free fast paths.
 * X(name, help): every field is a size_t; the order is the struct's and the reports'. */
#define ST_STATS_FIELDS(X)                                                                     \
  X(live_bytes, "bytes of blocks handed out and not freed (block sizes, not requests)")       \
  X(live_blocks, "blocks handed out and not freed")                                            \
  X(small_live_bytes, "of live_bytes, in slab blocks (<= 8 KiB)")                              \
  X(large_live_bytes, "of live_bytes, in page-heap spans")                                     \
  X(huge_live_bytes, "of live_bytes, in direct mappings")                                      \
  X(large_requested_bytes, "bytes requested for live large and huge blocks (exact)")           \
  X(small_requested_bytes, "bytes requested for live slab blocks (only when tracking)")        \
  X(requests_tracked, "1 when every live block's request is known (STRATA_LEAKS, Valgrind)")   \
  X(peak_in_use_bytes, "highest bytes in spans handed out plus huge mappings")                 \
  X(thread_cached_bytes, "free slab blocks in spans owned by thread caches, and their freed pages") \
  X(abandoned_free_bytes, "free slab blocks in spans of exited threads")                       \
  X(slab_tail_bytes, "slab span bytes too short for one more block")                           \
  X(free_dirty_bytes, "free page-heap pages that may be resident (not purged yet)")            \
  X(free_purged_bytes, "free page-heap pages given back to the kernel")                        \
  X(committed_bytes, "mapped bytes minus purged free pages: what may be resident")             \
  X(reserved_bytes, "address space of page-heap regions")                                      \
  X(mapped_bytes, "address space mapped from the kernel: regions, huge blocks, metadata")      \
  X(peak_mapped_bytes, "highest mapped_bytes")                                                 \
  X(metadata_bytes, "span descriptors, thread caches, pagemap leaves")                         \
  X(purged_total_bytes, "bytes ever purged with madvise")                                      \
  X(map_calls, "successful mappings from the kernel")                                          \
  X(spans_slab, "slab spans now")                                                              \
  X(spans_large, "large spans now")                                                            \
  X(spans_huge, "huge blocks now")                                                             \
  X(spans_free, "free spans in the page heaps now")                                            \
  X(threads_live, "thread caches in use")                                                      \
  X(spans_allocated, "spans ever handed out by the page heaps")                                \
  X(refills, "slab refills: a thread's current span of a class ran dry (sum of the classes)") \
  ST_STATS_EVENTS(X)                                                                           \
  X(huge_cached_bytes, "freed huge blocks kept mapped for the next huge request")

/* Events counted where they happen, on slow paths only (per thread, merged on demand). */
#define ST_STATS_EVENTS(X)                                                                     \
  X(slab_spans_new, "slab spans taken from the page heap")                                     \
  X(slab_spans_adopted, "slab spans of exited threads taken over")                             \
  X(frees_local_slow, "frees by a span's owner off the fast path (block already marked free)") \
  X(remote_frees_collected, "blocks other threads freed, collected by the owner at a refill")  \
  X(large_allocs, "large blocks allocated")                                                    \
  X(large_frees, "large blocks freed")                                                         \
  X(huge_allocs, "huge blocks allocated (mapped, or a freed mapping reused)")                  \
  X(huge_frees, "huge blocks freed (unmapped, or kept for reuse)")                             \
  X(aligned_allocs, "allocations with an alignment above 16")                                  \
  X(reallocs, "realloc of a block (not NULL, not size 0)")                                     \
  X(reallocs_in_place, "of which kept the block in place")                                     \
  X(trims, "st_trim / malloc_trim calls")

/* Per size class; X(name, help), size_t fields. */
#define ST_STATS_CLASS_FIELDS(X)                                                               \
  X(block_size, "bytes per block")                                                             \
  X(spans, "slab spans of the class")                                                          \
  X(pages, "pages of those spans")                                                             \
  X(blocks_live, "blocks handed out")                                                          \
  X(blocks_capacity, "blocks the spans hold")                                                  \
  X(refills, "refills of the class")

#define ST_STATS_VERSION 1
#define ST_STATS_MAX_CLASSES 96

typedef struct st_stats_class {
#define ST_STATS_FIELD_(name, help) size_t name;
  ST_STATS_CLASS_FIELDS(ST_STATS_FIELD_)
} st_stats_class;

typedef struct st_stats {
  unsigned version;      /* ST_STATS_VERSION of the library that filled it */
  unsigned class_count;  /* entries of classes[] in use */
  ST_STATS_FIELDS(ST_STATS_FIELD_)
  /* 1 - live_bytes / committed_bytes: the share of possibly resident memory that holds no
   * live block (docs/stats.md). 0 when nothing is committed. */
  double fragmentation;
  st_stats_class classes[ST_STATS_MAX_CLASSES];
} st_stats;
#undef ST_STATS_FIELD_

/* Fills the first `size` bytes of *out (pass sizeof(st_stats)); fields are only ever
 * appended, so a program built against an older header keeps working. Returns 0, or -1
 * when size is too small for the version and class_count fields. */
ST_API int st_stats_get(st_stats *out, size_t size);

typedef enum st_stats_format { ST_STATS_TEXT = 0, ST_STATS_JSON = 1 } st_stats_format;
/* Writes a fresh snapshot as a table (text) or one JSON object; returns 0 or -1 (bad
 * format or write error). */
ST_API int st_stats_print(FILE *file, st_stats_format format);

/* ---- Heap picture (docs/debugging.md) --------------------------------------------- */

typedef enum st_dump_format { ST_DUMP_TEXT = 0, ST_DUMP_JSON = 1 } st_dump_format;
/* Writes every span: text is one line per span with one character per block (slab) or
 * page; JSON is what tools/strata-heap-svg renders. Returns 0 or -1. */
ST_API int st_heap_dump(FILE *file, st_dump_format format);

/* Runs every layer's invariant walker; returns 0 when consistent, else prints the first
 * inconsistency (layer and address) to stderr and returns -1. */
ST_API int st_heap_validate(void);

/* ---- Specialized allocators (docs/special.md) ---------------------------------------- */
/* Independent of the malloc backend: their memory comes straight from the kernel. Invalid
 * arguments (size 0, an alignment that is not a power of two) give NULL with errno = EINVAL,
 * impossible sizes NULL with errno = ENOMEM. Misuse (a handle that was destroyed, an object
 * freed to the wrong pool or cache, a double free in a pool or cache) prints one line naming
 * the function and the address, then aborts. */

/* Arena: bump allocation from geometrically growing chunks, freed all at once. Not thread
 * safe. Options (NULL: defaults): chunk_size is the first chunk's size (0: 64 KiB; chunks
 * double up to 64 MiB); max_bytes caps the bytes the arena maps (0: no cap). */
typedef struct st_arena st_arena_t;
typedef struct st_arena_options {
  size_t chunk_size;
  size_t max_bytes;
} st_arena_options;
typedef struct { /* opaque position */
  void *chunk;
  size_t used;
} st_arena_mark_t;
typedef struct st_arena_stats {
  size_t used_bytes;     /* bytes handed out, alignment padding included */
  size_t reserved_bytes; /* bytes mapped from the kernel for the arena's chunks */
  size_t chunks;         /* chunks mapped, the ones for oversized allocations included */
  size_t oversized;      /* of which hold one oversized allocation each */
} st_arena_stats;
ST_API st_arena_t *st_arena_create(const st_arena_options *opts);
/* Aligned to alignof(max_align_t). */
ST_API void *st_arena_alloc(st_arena_t *a, size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE(2);
ST_API void *st_arena_alloc_aligned(st_arena_t *a, size_t size, size_t align) ST_MALLOC_ATTR
    ST_ALLOC_SIZE(2) ST_ALLOC_ALIGN(3);
ST_API void *st_arena_calloc(st_arena_t *a, size_t n, size_t size) ST_MALLOC_ATTR
    ST_ALLOC_SIZE2(2, 3);
ST_API char *st_arena_strdup(st_arena_t *a, const char *s) ST_MALLOC_ATTR;
/* A position to rewind to: everything allocated after it is released together, and the
 * next allocation of the same size reuses the same address. */
ST_API st_arena_mark_t st_arena_mark(st_arena_t *a);
ST_API void st_arena_release(st_arena_t *a, st_arena_mark_t mark);
/* Releases every allocation; keeps the largest regular chunk mapped for reuse. */
ST_API void st_arena_reset(st_arena_t *a);
ST_API void st_arena_destroy(st_arena_t *a);
ST_API void st_arena_stats_get(st_arena_t *a, st_arena_stats *out);
/* The continuation of the inline st_arena_alloc (every case but the common one); call
 * st_arena_alloc instead. */
ST_API void *st_arena_alloc_slow(st_arena_t *a, size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE(2);

/* The inline fast path of st_arena_alloc. Not part of the API: struct st_arena_fastpath
 * is the head of every arena as this header's version lays it out, and
 * ST_ARENA_FASTPATH_MAGIC names that layout, as for the pool below: any other arena (a
 * destroyed one, or one of a library that lays arenas out differently) fails the first
 * test and the call goes to the library, which checks everything. The bump pointer ptr is
 * aligned up to ST_ARENA_FASTPATH_ALIGN (alignof(max_align_t)) and must stay at most end. */
#define ST_ARENA_FASTPATH_MAGIC 0x616e657261747321ull
#define ST_ARENA_FASTPATH_ALIGN 16u
struct st_arena_fastpath {
  unsigned long long magic; /* ST_ARENA_FASTPATH_MAGIC while a live arena */
  char *ptr, *end;          /* the room left in the current chunk; both NULL before one */
};
#if defined(__GNUC__) && !defined(STRATA_NO_INLINE)
/* gnu_inline as for the pool (arena.c defines ST_ARENA_INLINE empty to emit the library's) */
#ifndef ST_ARENA_INLINE
#define ST_ARENA_INLINE extern __inline __attribute__((__gnu_inline__))
#endif
ST_ARENA_INLINE void *st_arena_alloc(st_arena_t *a, size_t size) {
  struct st_arena_fastpath *f = (struct st_arena_fastpath *)(void *)a;
  if (__builtin_expect(a != NULL &&
                           (unsigned)f->magic == (unsigned)ST_ARENA_FASTPATH_MAGIC, 1)) {
    uintptr_t p = ((uintptr_t)f->ptr + (ST_ARENA_FASTPATH_ALIGN - 1)) &
                  ~(uintptr_t)(ST_ARENA_FASTPATH_ALIGN - 1);
    uintptr_t end = (uintptr_t)f->end;
    /* size - 1 < room: size is not 0 (which wraps) and fits */
    if (__builtin_expect(p <= end && size - 1 < end - p, 1)) {
      f->ptr = (char *)p + size;
      return (void *)p;
    }
  }
  return st_arena_alloc_slow(a, size);
}
#endif

/* Pool: objects of one size, O(1) alloc and free. ST_POOL_THREAD_SAFE lets several threads
 * share the pool (a cache of free objects per thread, a lock to exchange batches with the
 * pool; destroying the pool while other threads still use it is misuse); without it the
 * pool belongs to one thread at a time. align 0
 * means alignof(max_align_t). Slots are at least 16 bytes. st_pool_free(p, NULL) does
 * nothing (even when p is NULL); st_pool_free(NULL, obj) is misuse. The fast paths of
 * st_pool_alloc and st_pool_free are inline (below) unless STRATA_NO_INLINE is defined. */
typedef struct st_pool st_pool_t;
enum { ST_POOL_THREAD_SAFE = 1 };
typedef struct st_pool_stats {
  size_t object_size;    /* as created */
  size_t slot_size;      /* bytes per object in a chunk */
  size_t live_objects;   /* allocated and not freed */
  size_t free_objects;   /* slots free in mapped chunks */
  size_t chunks;          /* chunks mapped */
  size_t chunks_empty;    /* of which hold no object (kept a while for reuse) */
  size_t reserved_bytes;  /* bytes mapped for the chunks */
  size_t chunks_released; /* empty chunks given back to the kernel so far */
} st_pool_stats;
ST_API st_pool_t *st_pool_create(size_t object_size, size_t align, unsigned flags);
ST_API void *st_pool_alloc(st_pool_t *p) ST_MALLOC_ATTR;
ST_API void st_pool_free(st_pool_t *p, void *obj);
/* The continuations of the inline paths (every case but the common one); call st_pool_alloc
 * and st_pool_free instead. */
ST_API void *st_pool_alloc_slow(st_pool_t *p) ST_MALLOC_ATTR;
ST_API void st_pool_free_slow(st_pool_t *p, void *obj);
ST_API void st_pool_destroy(st_pool_t *p);
/* Empty chunks go back to the kernel after STRATA_PURGE_DELAY_MS (checked when the pool
 * is used); st_pool_trim gives them all back now and returns the bytes. */
ST_API size_t st_pool_trim(st_pool_t *p);
ST_API void st_pool_stats_get(st_pool_t *p, st_pool_stats *out);

/* The inline fast paths. Not part of the API: struct st_pool_fastpath is the head of every
 * pool as this header's version lays it out. The inline code reads no magic word: two of
 * the head's words close it instead. `free` is NULL whenever st_pool_alloc must call the
 * library (an empty list, a shared pool, a destroyed one) and `divisible` is 0 whenever
 * st_pool_free must (a shared or destroyed pool: the slot test below then always fails);
 * the library checks the magic, which names this layout (a library that lays pools out
 * otherwise keeps those two words so). A free is pushed inline only when the pointer is the
 * start of a slot handed out from a chunk of the pool's `known` table and does not show
 * the double-free key: the same checks as the library's, without a call. */
#define ST_POOL_FASTPATH_KNOWN 32u
#define ST_POOL_FASTPATH_SHIFT 16u /* known is indexed by 64 KiB granule */
struct st_pool_fastpath {
  unsigned long long magic; /* the library's check (the inline paths do not read it) */
  void *free;               /* the free list: word 0 of a free slot links the next one */
  uintptr_t key;            /* word 1 of every free slot (odd); allocation clears it */
  unsigned long long divisible; /* ~0 / slot + 1: off % slot == 0 iff off * divisible < it */
  unsigned checks_due;      /* frees until the next release check */
  /* Chunks of the pool by granule, (address >> SHIFT) % KNOWN (a chunk larger than a
   * granule may hold several entries): the address of slot 0 (0: none) and the end of the
   * slots handed out so far, as an offset from slot 0 (0 for an empty entry). A pointer
   * into another chunk with the same entry is at least KNOWN granules, so a whole chunk,
   * away from that slot 0: one unsigned compare of its offset against the end also tells
   * the chunks apart. */
  uintptr_t known_slot0[ST_POOL_FASTPATH_KNOWN];
  uintptr_t known_end[ST_POOL_FASTPATH_KNOWN];
};
#if defined(__GNUC__) && !defined(STRATA_NO_INLINE)
/* gnu_inline: a definition for inlining only; calls not inlined, and the address of the
 * function, go to the library's (pool.c defines ST_POOL_INLINE empty to emit those). */
#ifndef ST_POOL_INLINE
#define ST_POOL_INLINE extern __inline __attribute__((__gnu_inline__))
#endif
typedef uintptr_t __attribute__((__may_alias__)) st_pool_word; /* a slot's words, any type */
ST_POOL_INLINE void *st_pool_alloc(st_pool_t *p) {
  struct st_pool_fastpath *f = (struct st_pool_fastpath *)(void *)p;
  st_pool_word *s;
  if (__builtin_expect(p == NULL || (s = (st_pool_word *)f->free) == NULL, 0))
    return st_pool_alloc_slow(p);
  f->free = (void *)s[0];
  s[1] = 0; /* a live object never shows the key */
  return (void *)s;
}
ST_POOL_INLINE void st_pool_free(st_pool_t *p, void *obj) {
  struct st_pool_fastpath *f = (struct st_pool_fastpath *)(void *)p;
  st_pool_word *s = (st_pool_word *)obj;
  unsigned i;
  uintptr_t off, key;
  if (__builtin_expect(p == NULL, 0)) {
    st_pool_free_slow(p, obj);
    return;
  }
  i = (unsigned)((uintptr_t)obj >> ST_POOL_FASTPATH_SHIFT) % ST_POOL_FASTPATH_KNOWN;
  off = (uintptr_t)obj - f->known_slot0[i]; /* huge below slot 0 (NULL too) */
  key = f->key; /* once: the stores below may alias it */
  /* s is read only for an offset below the end of an entry, which has a slot 0 (an empty
   * entry's end is 0): never for NULL, which the analyzer cannot see. */
  if (__builtin_expect(off >= f->known_end[i] || off * f->divisible >= f->divisible ||
                           s[1] == key || /* NOLINT(clang-analyzer-core.NullDereference) */
                           --f->checks_due == 0, 0)) {
    st_pool_free_slow(p, obj);
    return;
  }
  s[1] = key; /* first: f->free is then read after it, so the two words are not stored
                 together (a vector store that costs more than it saves) */
  s[0] = (uintptr_t)f->free;
  f->free = obj;
}
#endif

/* Slab cache: objects kept constructed between uses. ctor runs once when an object is
 * first built, dtor when its slab is given back (st_slab_shrink, st_slab_destroy); both
 * may be NULL. Thread safe: each thread allocates from and frees to magazines of its own
 * (no lock in the steady state); the one thread that owns the cache's front does so
 * inline (below) unless STRATA_NO_INLINE is defined. The name (up to 31 bytes kept)
 * labels statistics. */
typedef struct st_slab_cache st_slab_cache_t;
typedef struct st_slab_stats {
  char name[32];
  size_t object_size, slot_size;
  size_t live_objects;                    /* allocated and not freed (other threads'
                                             magazines counted here: see docs/special.md) */
  size_t cached_objects;                  /* constructed and free, ready for reuse */
  size_t magazine_objects;                /* of those, in the depot, the front and the
                                             caller's magazines */
  size_t slabs_full, slabs_partial, slabs_empty;
  size_t slab_bytes;                      /* bytes per slab */
  size_t reserved_bytes;                  /* bytes mapped for the slabs */
  size_t allocs, frees;                   /* calls ever (other live threads' counts are
                                             added when they flush their magazines) */
  size_t constructed, destructed;         /* ctor and dtor calls ever */
} st_slab_stats;
ST_API st_slab_cache_t *st_slab_create(const char *name, size_t size, size_t align,
                                       void (*ctor)(void *obj), void (*dtor)(void *obj));
/* No malloc attribute: a constructed object may hold pointers the ctor stored. */
ST_API void *st_slab_alloc(st_slab_cache_t *c);
ST_API void st_slab_free(st_slab_cache_t *c, void *obj);
/* Returns the calling thread's magazines and the cache's depot to the slabs, then gives
 * the empty slabs back to the kernel (after running dtor on their objects); returns the
 * bytes given back. Objects in other live threads' magazines keep their slabs. */
ST_API size_t st_slab_shrink(st_slab_cache_t *c);
ST_API void st_slab_destroy(st_slab_cache_t *c);
ST_API void st_slab_stats_get(st_slab_cache_t *c, st_slab_stats *out);
/* Calls visit for every live slab cache of the process (for statistics reports); visit
 * must not create or destroy slab caches. */
ST_API void st_slab_foreach(void (*visit)(const st_slab_stats *stats, void *arg), void *arg);
/* The continuations of the inline paths (every case but the common one); call st_slab_alloc
 * and st_slab_free instead. */
ST_API void *st_slab_alloc_slow(st_slab_cache_t *c);
ST_API void st_slab_free_slow(st_slab_cache_t *c, void *obj);

/* The inline fast paths. Not part of the API: struct st_slab_fastpath is the head of every
 * slab cache as this header's version lays it out, ST_SLAB_FASTPATH_MAGIC names that
 * layout. One thread at a time, the front's owner (named by its thread pointer), keeps a
 * magazine of constructed free objects in the head itself: its alloc pops from it and its
 * free pushes to it inline; every other thread, an empty or full front, and every pointer
 * that fails the checks go to the library. A free is pushed inline only when the pointer is
 * a slot of a slab in `known` and its bufctl word holds the key (a live object): the same
 * checks as the library's, without a call. */
#define ST_SLAB_FASTPATH_MAGIC 0x62616c7374732121ull
#define ST_SLAB_FASTPATH_KNOWN 32u
#define ST_SLAB_FASTPATH_FRONT 64u
struct st_slab_fastpath {
  unsigned long long magic;     /* ST_SLAB_FASTPATH_MAGIC while live */
  void *front_owner;            /* the owning thread's thread pointer, or NULL (atomic) */
  uintptr_t key;                /* bufctl of a live object (odd); 0 while free */
  size_t bufctl;                /* offset of the bufctl word in a slot */
  size_t span;                  /* bytes of a slab's slots */
  unsigned long long divisible; /* ~0 / slot + 1: off % slot == 0 iff off * divisible < it */
  unsigned shift;               /* log2(slab size): slabs are aligned to their size */
  unsigned front_n;             /* objects in front[0 .. front_n) (atomic: statistics) */
  size_t front_allocs, front_frees; /* the owner's calls not yet counted (atomic) */
  /* Slabs by number (address >> shift) % KNOWN: the address of slot 0, or 0 (atomic). */
  uintptr_t known[ST_SLAB_FASTPATH_KNOWN];
  void *front[ST_SLAB_FASTPATH_FRONT]; /* the owner's objects, constructed, bufctl 0 */
};
#if defined(__GNUC__) && !defined(STRATA_NO_INLINE) && (defined(__x86_64__) || defined(__aarch64__))
/* gnu_inline as for the pool (slab_cache.c defines ST_SLAB_INLINE empty to emit the
 * library's). */
#ifndef ST_SLAB_INLINE
#define ST_SLAB_INLINE extern __inline __attribute__((__gnu_inline__))
#endif
/* The calling thread's thread pointer: one instruction, unique among live threads. */
#if defined(__x86_64__)
#define ST_SLAB_THREAD_SELF()                                                                \
  __extension__({                                                                           \
    void *st_self_;                                                                         \
    __asm__("mov %%fs:0, %0" : "=r"(st_self_));                                             \
    st_self_;                                                                               \
  })
#else
#define ST_SLAB_THREAD_SELF()                                                                \
  __extension__({                                                                           \
    void *st_self_;                                                                         \
    __asm__("mrs %0, tpidr_el0" : "=r"(st_self_));                                          \
    st_self_;                                                                               \
  })
#endif
ST_SLAB_INLINE void *st_slab_alloc(st_slab_cache_t *c) {
  struct st_slab_fastpath *f = (struct st_slab_fastpath *)(void *)c;
  unsigned n;
  void *obj;
  /* the low half of the magic word tells strata's descriptors apart: a shorter compare */
  if (__builtin_expect(c == NULL || (unsigned)f->magic != (unsigned)ST_SLAB_FASTPATH_MAGIC ||
                           __atomic_load_n(&f->front_owner, __ATOMIC_RELAXED) !=
                               ST_SLAB_THREAD_SELF() ||
                           (n = f->front_n) == 0,
                       0))
    return st_slab_alloc_slow(c);
  obj = f->front[n - 1];
  __atomic_store_n(&f->front_n, n - 1, __ATOMIC_RELAXED);
  *(uintptr_t *)(void *)((char *)obj + f->bufctl) = f->key;
  __atomic_store_n(&f->front_allocs, f->front_allocs + 1, __ATOMIC_RELAXED);
  return obj;
}
ST_SLAB_INLINE void st_slab_free(st_slab_cache_t *c, void *obj) {
  struct st_slab_fastpath *f = (struct st_slab_fastpath *)(void *)c;
  uintptr_t slot0, off;
  unsigned n;
  if (obj == NULL) return;
  if (__builtin_expect(c == NULL || (unsigned)f->magic != (unsigned)ST_SLAB_FASTPATH_MAGIC, 0)) {
    st_slab_free_slow(c, obj);
    return;
  }
  slot0 = __atomic_load_n(&f->known[((uintptr_t)obj >> f->shift) % ST_SLAB_FASTPATH_KNOWN],
                          __ATOMIC_RELAXED);
  off = (uintptr_t)obj - slot0; /* huge below slot 0 */
  /* the bufctl is read only for an offset inside a known slab's slots */
  if (__builtin_expect(slot0 == 0 || off >= f->span || off * f->divisible >= f->divisible ||
                           *(uintptr_t *)(void *)((char *)obj + f->bufctl) != f->key ||
                           __atomic_load_n(&f->front_owner, __ATOMIC_RELAXED) !=
                               ST_SLAB_THREAD_SELF() ||
                           (n = f->front_n) == ST_SLAB_FASTPATH_FRONT,
                       0)) {
    st_slab_free_slow(c, obj);
    return;
  }
  *(uintptr_t *)(void *)((char *)obj + f->bufctl) = 0;
  f->front[n] = obj;
  __atomic_store_n(&f->front_n, n + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&f->front_frees, f->front_frees + 1, __ATOMIC_RELAXED);
}
#endif
/* ---- Garbage collector (docs/gc.md) ------------------------------------------------ */

/* A conservative mark-and-sweep collector with its own heap, independent of st_malloc.
 * Roots: the registers and stack of the thread that collects, the data and bss of the
 * program and its libraries, and ranges added with st_gc_add_roots. Memory from malloc or
 * st_malloc is NOT scanned. Calls may come from any thread (one lock), but only the
 * collecting thread's stack is a root: see docs/gc.md for multi-threaded programs. */
typedef struct st_gc_stats {
  size_t heap_bytes;            /* bytes of GC blocks in use now (objects and free slots) */
  size_t live_bytes;            /* bytes in objects that survived the last collection */
  size_t live_objects;          /* objects that survived the last collection */
  size_t collections;           /* collections so far */
  size_t allocated_bytes;       /* bytes ever allocated (object capacities) */
  size_t finalizers_run;        /* finalizers called so far */
  unsigned long long total_pause_ns; /* time spent in collections */
  unsigned long long max_pause_ns;   /* the longest collection */
} st_gc_stats;

ST_API void st_gc_init(void); /* optional: implicit on first use */
/* Zeroed; may hold pointers (scanned). NULL + ENOMEM beyond the heap limit or PTRDIFF_MAX. */
ST_API void *st_gc_malloc(size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE(1);
/* Never scanned (strings, numbers); contents are not zeroed. */
ST_API void *st_gc_malloc_atomic(size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE(1);
/* Keeps the contents and the kind (scanned or atomic); p NULL: st_gc_malloc; size 0: frees p
 * and returns NULL; on failure p is untouched. When the object moves, the old one is freed
 * and a finalizer registered on it is dropped. */
ST_API void *st_gc_realloc(void *p, size_t size) ST_ALLOC_SIZE(2);
/* Optional early free of an object's start (NULL: no-op); its finalizer does not run. */
ST_API void st_gc_free(void *p);
/* Collects now (nothing while disabled), then runs the finalizers that became due. */
ST_API void st_gc_collect(void);
/* Scans [start, end) as a root at every collection until removed. */
ST_API void st_gc_add_roots(void *start, void *end);
/* Stops scanning [start, end): ranges inside it go, overlapping ones are trimmed. */
ST_API void st_gc_remove_roots(void *start, void *end);
/* Runs fn(obj, data) once, after obj (the start of a GC object) became unreachable; fn NULL
 * unregisters. Returns 0, EINVAL (obj is not the start of a GC object) or ENOMEM. */
ST_API int st_gc_register_finalizer(void *obj, void (*fn)(void *obj, void *data), void *data);
/* Nesting: collections (automatic and st_gc_collect) stop until as many enables. */
ST_API void st_gc_enable(void);
ST_API void st_gc_disable(void);
/* 0 = none; an allocation that would grow the heap beyond it collects, then returns NULL with
 * ENOMEM. */
ST_API void st_gc_set_heap_limit(size_t bytes);
ST_API void st_gc_get_stats(st_gc_stats *out);

/* ---- Strategies and first-class heaps -------------------------------------------------- */

/* The allocation strategies (docs/strategies.md). DEFAULT is the production allocator; the
 * others are the classic teaching strategies, complete allocators behind the same API. The
 * process runs on one, chosen at its first allocation from STRATA_STRATEGY. */
typedef enum st_strategy {
  ST_STRATEGY_DEFAULT,
  ST_STRATEGY_FIRST_FIT,
  ST_STRATEGY_NEXT_FIT,
  ST_STRATEGY_BEST_FIT,
  ST_STRATEGY_WORST_FIT,
  ST_STRATEGY_SEGREGATED,
  ST_STRATEGY_BUDDY,
  ST_STRATEGY_BITMAP,
  ST_STRATEGY_COUNT
} st_strategy;

/* "default", "first-fit", "next-fit", "best-fit", "worst-fit", "segregated", "buddy",
 * "bitmap"; NULL for a value out of range. */
ST_API const char *st_strategy_name(st_strategy strategy);
/* Returns 0 and sets *out, or EINVAL for an unknown name. */
ST_API int st_strategy_from_name(const char *name, st_strategy *out);
/* The strategy serving the malloc family in this process (decided at its first use). */
ST_API st_strategy st_strategy_current(void);

/* A heap of its own: allocate from it, visit its live blocks, destroy it (and every block
 * in it) at once. Each heap has one lock, so any thread may use any heap. Blocks follow the
 * malloc family's semantics (alignment, errno, realloc) and must be freed with the heap's
 * functions. */
typedef struct st_heap st_heap_t;

#define ST_HEAP_OPTIONS_VERSION 1
typedef struct st_heap_options {
  unsigned version;     /* ST_HEAP_OPTIONS_VERSION */
  st_strategy strategy; /* DEFAULT: blocks of the process's allocator (the production
                           allocator unless STRATA_STRATEGY names another), tracked per heap
                           so visit and destroy work; else a classic strategy's own heap */
  size_t limit_bytes;   /* most bytes the heap may map (DEFAULT: hold, headers included;
                           0: no limit); beyond: NULL, ENOMEM */
} st_heap_options;

typedef struct st_heap_stats {
  st_strategy strategy;
  size_t mapped_bytes;      /* bytes of regions mapped now, headers included */
  size_t peak_mapped_bytes; /* the highest mapped_bytes so far: the peak footprint */
  size_t live_bytes;        /* usable bytes of live blocks */
  size_t peak_live_bytes;   /* the highest live_bytes so far */
  size_t live_blocks;       /* blocks allocated and not yet freed */
  size_t allocations;       /* blocks ever allocated */
  size_t regions;           /* arena regions plus blocks mapped on their own */
} st_heap_stats;

/* options NULL: the default strategy, no limit. NULL with errno EINVAL (bad options) or
 * ENOMEM. */
ST_API st_heap_t *st_heap_new(const st_heap_options *options);
/* Frees every block of the heap and gives all its memory back. NULL is a no-op. */
ST_API void st_heap_destroy(st_heap_t *heap);
ST_API void *st_heap_malloc(st_heap_t *heap, size_t size) ST_MALLOC_ATTR ST_ALLOC_SIZE(2);
ST_API void *st_heap_calloc(st_heap_t *heap, size_t count, size_t size) ST_MALLOC_ATTR
    ST_ALLOC_SIZE2(2, 3);
ST_API void *st_heap_realloc(st_heap_t *heap, void *ptr, size_t size) ST_ALLOC_SIZE(3);
/* alignment: a power of two (else NULL, EINVAL). */
ST_API void *st_heap_aligned_alloc(st_heap_t *heap, size_t alignment, size_t size) ST_MALLOC_ATTR
    ST_ALLOC_ALIGN(2) ST_ALLOC_SIZE(3);
ST_API void st_heap_free(st_heap_t *heap, void *ptr);
ST_API size_t st_heap_usable_size(st_heap_t *heap, const void *ptr);
/* Calls fn once per live block, in address order within each region, under the heap's lock
 * (fn must not use this heap). */
typedef void (*st_heap_visitor)(const void *block, size_t usable_size, void *arg);
ST_API void st_heap_visit(st_heap_t *heap, st_heap_visitor fn, void *arg);
/* heap NULL: the process's heap when it runs a classic strategy (all zero otherwise). */
ST_API void st_heap_stats_get(st_heap_t *heap, st_heap_stats *out);
/* Runs the heap's invariant walker: 0 when consistent, else prints the first problem and
 * returns -1. */
ST_API int st_heap_check(st_heap_t *heap);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
