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
  X(small_live_bytes, "of live_bytes, in slab blocks (<= 32 KiB)")                             \
  X(large_live_bytes, "of live_bytes, in page-heap spans")                                     \
  X(huge_live_bytes, "of live_bytes, in direct mappings")                                      \
  X(large_requested_bytes, "bytes requested for live large and huge blocks (exact)")           \
  X(small_requested_bytes, "bytes requested for live slab blocks (only when tracking)")        \
  X(requests_tracked, "1 when every live block's request is known (STRATA_LEAKS, Valgrind)")   \
  X(peak_in_use_bytes, "highest bytes in spans handed out plus huge mappings")                 \
  X(thread_cached_bytes, "free slab blocks in spans owned by thread caches")                   \
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
  ST_STATS_EVENTS(X)

/* Events counted where they happen, on slow paths only (per thread, merged on demand). */
#define ST_STATS_EVENTS(X)                                                                     \
  X(slab_spans_new, "slab spans taken from the page heap")                                     \
  X(slab_spans_adopted, "slab spans of exited threads taken over")                             \
  X(frees_local_slow, "frees by the owner of a span parked as full")                           \
  X(remote_frees_collected, "blocks other threads freed, collected by the owner at a refill")  \
  X(large_allocs, "large blocks allocated")                                                    \
  X(large_frees, "large blocks freed")                                                         \
  X(huge_allocs, "huge blocks mapped")                                                         \
  X(huge_frees, "huge blocks unmapped")                                                        \
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

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
