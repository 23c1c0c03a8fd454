/*
 * os.c — raw kernel memory operations and the policy above them (see os.h).
 *
 * Alignment: mmap gives page alignment only, so a request for a larger alignment maps
 * size + align - page and unmaps the unaligned head and the unused tail.
 * Accounting: every successful map/unmap/remap updates st__os_counters.
 * Resident cost: the kernel maps a shared library's code 64 KiB at a time around each page
 * a process first runs (fault-around), so every libc function called from here that the
 * program itself does not call makes up to 64 KiB of libc resident in every process. The
 * clock is the vDSO's clock_gettime called directly, and the CPU count a raw syscall: libc's
 * wrappers of both sit in parts of libc programs rarely touch (docs/memory.md, "Start-up").
 */
#include "os/os.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

typedef int (*clock_gettime_fn)(clockid_t clock, struct timespec *ts);

static bool same_name(const char *a, const char *b) {
  while (*a != '\0' && *a == *b) a++, b++;
  return *a == *b;
}

/* The address of the vDSO's function `name` (its dynamic symbol table, counted by DT_HASH),
 * or NULL when the kernel maps no vDSO or it lacks the symbol. */
static void *vdso_function(const char *name) {
  const ElfW(Ehdr) *ehdr = (const ElfW(Ehdr) *)getauxval(AT_SYSINFO_EHDR);
  if (ehdr == NULL) return NULL;
  const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)((uintptr_t)ehdr + ehdr->e_phoff);
  uintptr_t bias = 0, dynamic = 0;
  bool loaded = false;
  for (unsigned i = 0; i < ehdr->e_phnum; i++) {
    if (phdr[i].p_type == PT_LOAD && !loaded) {
      bias = (uintptr_t)ehdr + phdr[i].p_offset - phdr[i].p_vaddr;
      loaded = true;
    } else if (phdr[i].p_type == PT_DYNAMIC) {
      dynamic = phdr[i].p_vaddr;
    }
  }
  if (!loaded || dynamic == 0) return NULL;
  const ElfW(Sym) *symbols = NULL;
  const char *names = NULL;
  const Elf32_Word *hash = NULL;
  for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(bias + dynamic); d->d_tag != DT_NULL; d++) {
    if (d->d_tag == DT_SYMTAB) symbols = (const ElfW(Sym) *)(bias + d->d_un.d_ptr);
    else if (d->d_tag == DT_STRTAB) names = (const char *)(bias + d->d_un.d_ptr);
    else if (d->d_tag == DT_HASH) hash = (const Elf32_Word *)(bias + d->d_un.d_ptr);
  }
  if (symbols == NULL || names == NULL || hash == NULL) return NULL;
  for (Elf32_Word i = 0; i < hash[1]; i++) { /* hash[1]: the number of symbols */
    const ElfW(Sym) *sym = &symbols[i];
    if (ELF64_ST_TYPE(sym->st_info) == STT_FUNC && sym->st_shndx != SHN_UNDEF &&
        same_name(names + sym->st_name, name))
      return (void *)(bias + sym->st_value);
  }
  return NULL;
}

/* The vDSO's clock_gettime (its name differs by architecture; for a clock it cannot read
 * it makes the syscall itself), else libc's. Looked up at the first call; racing first
 * callers store the same value. */
static clock_gettime_fn clock_function(void) {
  static _Atomic(clock_gettime_fn) xclock;
  clock_gettime_fn fn = st_load_relaxed(&xclock);
  if (fn == NULL) {
    void *vdso = vdso_function("__vdso_clock_gettime");
    if (vdso == NULL) vdso = vdso_function("__kernel_clock_gettime");
    fn = vdso != NULL ? (clock_gettime_fn)vdso : clock_gettime;
    st_store_relaxed(&xclock, fn);
  }
  return fn;
}

static uint64_t kernel_now_ms(void) {
  struct timespec ts;
  clock_function()(CLOCK_MONOTONIC_COARSE, &ts);
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
  clock_function()(CLOCK_MONOTONIC, &ts);
  uint64_t x = (random != NULL ? random[0] ^ random[1] : 0) ^ (uint64_t)ts.tv_nsec;
  x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33; /* spread the clock's low bits */
  return x;
}

unsigned st__os_cpu_count(void) {
  /* The raw syscall: it returns how many bytes of the mask the kernel wrote. */
  uint64_t mask[16] = {0};
  long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
  if (bytes <= 0) return 1;
  unsigned n = 0;
  /* Bit by bit: without -mpopcnt a popcount is libgcc's __popcountdi2, linked at the end of
   * .text, far from the code every process runs (CMakeLists.txt, link order). */
  for (size_t i = 0; i < (size_t)bytes / sizeof mask[0] && i < 16; i++)
    for (unsigned bit = 0; bit < 64; bit++) n += (unsigned)(mask[i] >> bit) & 1u;
  return n < 1 ? 1 : n;
}
