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

/* Process-wide counters of the production allocator, read without stopping threads (the
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

/* Runs every layer's invariant walker; returns 0 when consistent, else prints the first
 * inconsistency (layer and address) to stderr and returns -1. */
ST_API int st_heap_validate(void);

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

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
