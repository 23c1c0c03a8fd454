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

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
