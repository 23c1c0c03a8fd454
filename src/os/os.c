/*
 * os.c — raw kernel memory operations and the policy above them (see os.h).
 *
 * Alignment: mmap gives page alignment only, so a request for a larger alignment maps
 * size + align - page and unmaps the unaligned head and the unused tail.
 * Accounting: every successful map/unmap/remap updates st__os_counters.
 */
#include "os/os.h"

#include <errno.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>

st_os_counters st__os_counters;

static void *kernel_map(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static bool kernel_unmap(void *addr, size_t size) { return munmap(addr, size) == 0; }

static bool kernel_purge(void *addr, size_t size, bool lazy) {
  if (lazy && madvise(addr, size, MADV_FREE) == 0) return true;
  return madvise(addr, size, MADV_DONTNEED) == 0;
}

static void *kernel_remap(void *addr, size_t old_size, size_t new_size, void *target) {
  void *p = target == NULL ? mremap(addr, old_size, new_size, 0)
                           : mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  return p == MAP_FAILED ? NULL : p;
}

static bool kernel_advise_huge_pages(void *addr, size_t size) {
#ifdef MADV_HUGEPAGE
  return madvise(addr, size, MADV_HUGEPAGE) == 0;
#else
  (void)addr, (void)size;
  errno = EINVAL;
  return false;
#endif
}

static uint64_t kernel_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const st_os_ops kernel_ops = {kernel_map,   kernel_unmap,  kernel_purge,
                                     kernel_remap, kernel_now_ms, kernel_advise_huge_pages};
static const st_os_ops *os_ops = &kernel_ops;

const st_os_ops *st__os_kernel_ops(void) { return &kernel_ops; }

const st_os_ops *st__os_set_ops(const st_os_ops *ops) {
  const st_os_ops *old = os_ops;
  os_ops = ops != NULL ? ops : &kernel_ops;
  return old;
}

size_t st__os_page_size(void) {
  static st_atomic_size xpage_size; /* racing first callers store the same value */
  size_t page_size = st_load_relaxed(&xpage_size);
  if (page_size == 0) {
    unsigned long v = getauxval(AT_PAGESZ);
    page_size = v != 0 ? v : 4096;
    st_store_relaxed(&xpage_size, page_size);
  }
  return page_size;
}

static void mapped_add(size_t size) {
  size_t now = st_fetch_add_relaxed(&st__os_counters.xmapped, size) + size;
  size_t peak = st_load_relaxed(&st__os_counters.xpeak_mapped);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&st__os_counters.xpeak_mapped, &peak,
                                                               now, memory_order_relaxed,
                                                               memory_order_relaxed)) {
  }
}

void *st__os_map_aligned(size_t size, size_t align) {
  size_t page = st__os_page_size();
  if (align < page) align = page;
  size_t padded = size + (align - page);
  if (padded < size) {
    errno = ENOMEM;
    return NULL;
  }
  char *p = os_ops->map(padded);
  if (p == NULL) return NULL;
  uintptr_t start = (uintptr_t)p, aligned = st_align_up(start, align);
  size_t head = aligned - start, tail = padded - head - size;
  if (head != 0) os_ops->unmap(p, head);
  if (tail != 0) os_ops->unmap((char *)aligned + size, tail);
  mapped_add(size);
  st_counter_add(&st__os_counters.xmap_calls, 1);
  return (void *)aligned;
}

void st__os_unmap(void *addr, size_t size) {
  if (os_ops->unmap(addr, size)) st_counter_sub(&st__os_counters.xmapped, size);
}

bool st__os_purge(void *addr, size_t size, bool lazy) {
  if (!os_ops->purge(addr, size, lazy)) return false;
  st_counter_add(&st__os_counters.xpurged, size);
  return true;
}

void *st__os_remap(void *addr, size_t old_size, size_t new_size, void *target) {
  void *p = os_ops->remap(addr, old_size, new_size, target);
  if (p == NULL) return NULL;
  if (target != NULL) st_counter_sub(&st__os_counters.xmapped, old_size); /* target replaced */
  else if (new_size > old_size) mapped_add(new_size - old_size);
  else st_counter_sub(&st__os_counters.xmapped, old_size - new_size);
  return p;
}

uint64_t st__os_now_ms(void) { return os_ops->now_ms(); }

bool st__os_advise_huge_pages(void *addr, size_t size) {
  st_counter_add(&st__os_counters.xhuge_advised, size);
  if (os_ops->advise_huge_pages(addr, size)) return true;
  st_counter_add(&st__os_counters.xhuge_refused, size);
  return false;
}

bool st__os_protect(void *addr, size_t size, bool accessible) {
  return mprotect(addr, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

uint64_t st__os_random_seed(void) {
  /* The kernel's 16 random bytes for this process (no syscall, no allocation), mixed with
   * the time so that two calls differ. */
  const uint64_t *random = (const uint64_t *)getauxval(AT_RANDOM);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t x = (random != NULL ? random[0] ^ random[1] : 0) ^ (uint64_t)ts.tv_nsec;
  x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33; /* spread the clock's low bits */
  return x;
}
