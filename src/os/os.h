/*
 * os.h — the kernel behind one narrow interface (STYLE.md §3, §11).
 *
 * Owns: every memory syscall strata makes (mmap, munmap, madvise, mremap, mprotect), the
 * per-process random seed, the clock used by purge policy and the CPU count. Layers above
 * never include <sys/mman.h>; they call the st__os_* functions, which add policy (alignment
 * by over-mapping, accounting) on top of the raw operations in st_os_ops. Unit tests install
 * fake ops to fail the Nth map or to move a fake clock. All functions are thread safe and
 * never allocate.
 */
#ifndef ST_OS_OS_H
#define ST_OS_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/atomics.h"
#include "base/macros.h"

/* The raw operations; each returns NULL / false on failure and leaves errno set. */
typedef struct st_os_ops {
  void *(*map)(size_t size);                      /* read-write, zeroed, page aligned */
  bool (*unmap)(void *addr, size_t size);
  bool (*purge)(void *addr, size_t size, bool lazy); /* lazy: MADV_FREE, else DONTNEED */
  /* Resizes in place when target is NULL, else moves the pages onto target (which the
   * caller mapped) without copying. */
  void *(*remap)(void *addr, size_t old_size, size_t new_size, void *target);
  uint64_t (*now_ms)(void);                       /* monotonic milliseconds */
  bool (*advise_huge_pages)(void *addr, size_t size); /* MADV_HUGEPAGE */
} st_os_ops;

typedef struct st_os_counters {
  st_atomic_size xmapped;     /* bytes currently mapped through this layer */
  st_atomic_size xpurged;     /* bytes ever purged */
  st_atomic_size xmap_calls;  /* successful map calls */
  st_atomic_size xpeak_mapped; /* highest xmapped */
  st_atomic_size xhuge_advised; /* bytes ever advised to use transparent huge pages */
  st_atomic_size xhuge_refused; /* of which the kernel refused the advice */
} st_os_counters;

ST_HIDDEN extern st_os_counters st__os_counters;

/* Installs ops (NULL restores the kernel's); returns the previous ones. For tests. */
ST_HIDDEN const st_os_ops *st__os_set_ops(const st_os_ops *ops);
ST_HIDDEN const st_os_ops *st__os_kernel_ops(void);

/* Maps size bytes (a multiple of the page size) aligned to align (a power of two). */
ST_HIDDEN void *st__os_map_aligned(size_t size, size_t align);
ST_HIDDEN void st__os_unmap(void *addr, size_t size);
/* Gives the pages' memory back to the kernel; the range stays mapped and reads as zero
 * afterwards unless lazy (MADV_FREE) was used. Returns false if the kernel refused. */
ST_HIDDEN bool st__os_purge(void *addr, size_t size, bool lazy);
/* Resizes a mapping in place (target NULL) or moves it onto target, a mapping of
 * new_size bytes from st__os_map_aligned that it replaces. NULL on failure with both
 * mappings intact. */
ST_HIDDEN void *st__os_remap(void *addr, size_t old_size, size_t new_size, void *target);
ST_HIDDEN uint64_t st__os_now_ms(void);
/* The size of a transparent huge page (a PMD: 2 MiB on x86-64), the boundary the kernel
 * needs a mapping's range to span before it can back it with one. */
#define ST_OS_HUGE_PAGE_SIZE ((size_t)2 << 20)
/* Asks the kernel to back the range (ST_OS_HUGE_PAGE_SIZE aligned for the advice to
 * matter) with transparent huge pages: one fault fills 2 MiB instead of 4 KiB. Only a
 * hint: false when the kernel refused it (no THP support, or THP disabled), and the
 * range then works with normal pages. */
ST_HIDDEN bool st__os_advise_huge_pages(void *addr, size_t size);
/* Makes pages inaccessible (guard pages) or read-write again; false if the kernel
 * refused. Not routed through st_os_ops: no test needs to fake it. */
ST_HIDDEN bool st__os_protect(void *addr, size_t size, bool accessible);
/* 64 random bits from the kernel's per-process random bytes, different at each call. */
ST_HIDDEN uint64_t st__os_random_seed(void);
/* The CPUs this process may run on (at least 1). */
ST_HIDDEN unsigned st__os_cpu_count(void);
/* The kernel's page size, read once. */
ST_HIDDEN size_t st__os_page_size(void);

#endif
