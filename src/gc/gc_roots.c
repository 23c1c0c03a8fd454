/*
 * gc_roots.c — finding the roots at each collection (gc_roots.h).
 *
 * Registers: setjmp and __builtin_unwind_init spill the callee-saved registers into this
 * frame, and the scan starts in a frame below it, so a pointer held only in a register of
 * any caller is seen. The stack top of each thread is read once (pthread_getattr_np) and
 * kept in a thread-local variable. The root table is metadata mapped from src/os.
 */
#include "gc/gc_roots.h"

#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>

#include "base/report.h"
#include "gc/gc_heap.h"
#include "gc/gc_mark.h"

typedef struct root_range {
  uintptr_t lo, hi;
} root_range;

static struct {
  root_range *ranges; /* mapped metadata; count in use, capacity allocated */
  size_t count, capacity;
} roots;

/* A writable object of strata itself: the loaded object that holds it is strata. */
static int roots_self_anchor;

static bool roots_reserve(size_t count) {
  if (count <= roots.capacity) return true;
  size_t capacity = roots.capacity ? roots.capacity * 2 : 256;
  root_range *grown = st__gc_meta_resize(roots.ranges, roots.capacity * sizeof(root_range),
                                         capacity * sizeof(root_range));
  if (grown == NULL) return false;
  roots.ranges = grown;
  roots.capacity = capacity;
  return true;
}

bool st__gc_roots_add(const void *lo, const void *hi) {
  if (lo >= hi) return true;
  if (!roots_reserve(roots.count + 1)) return false;
  roots.ranges[roots.count++] = (root_range){(uintptr_t)lo, (uintptr_t)hi};
  return true;
}

bool st__gc_roots_remove(const void *lo_ptr, const void *hi_ptr) {
  uintptr_t lo = (uintptr_t)lo_ptr, hi = (uintptr_t)hi_ptr;
  if (lo >= hi) return true;
  for (size_t i = 0; i < roots.count;) {
    root_range *r = &roots.ranges[i];
    if (r->hi <= lo || r->lo >= hi) { /* disjoint */
      i++;
    } else if (r->lo >= lo && r->hi <= hi) { /* inside: drop it */
      *r = roots.ranges[--roots.count];
    } else if (r->lo < lo && r->hi > hi) { /* around: keep both ends */
      if (!roots_reserve(roots.count + 1)) return false;
      r = &roots.ranges[i];
      roots.ranges[roots.count++] = (root_range){hi, r->hi};
      r->hi = lo;
      i++;
    } else { /* overlapping one end */
      if (r->lo < lo)
        r->hi = lo;
      else
        r->lo = hi;
      i++;
    }
  }
  return true;
}

static bool object_holds(const struct dl_phdr_info *info, uintptr_t addr) {
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && addr >= lo && addr < lo + ph->p_memsz) return true;
  }
  return false;
}

static int mark_object_segments(struct dl_phdr_info *info, size_t size, void *arg) {
  ST_UNUSED(size), ST_UNUSED(arg);
  /* strata's own data is skipped only when strata is a shared object of its own; linked
   * statically, it shares the program's segments, which are scanned whole. */
  if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0' &&
      object_holds(info, (uintptr_t)&roots_self_anchor))
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
    const char *lo = (const char *)(info->dlpi_addr + ph->p_vaddr);
    st__gc_mark_range(lo, lo + ph->p_memsz);
  }
  return 0;
}

/* The calling thread's stack, read once per thread (0, 0 until it first collects). */
static _Thread_local uintptr_t roots_stack_low, roots_stack_top;

static void stack_bounds_load(void) {
  pthread_attr_t attr;
  void *addr = NULL;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    if (pthread_attr_getstack(&attr, &addr, &size) != 0) addr = NULL;
    pthread_attr_destroy(&attr);
  }
  if (addr == NULL) st__fatal("st_gc_collect(): cannot find the stack of the calling thread");
  roots_stack_low = (uintptr_t)addr;
  roots_stack_top = (uintptr_t)addr + size;
}

/* Scans from its own frame, below the caller's spilled registers, to the stack top. A frame
 * outside the thread's stack (a coroutine's or a signal stack) has no known top: rather than
 * scan a wrong range, the collector stops with a diagnostic. */
static ST_NOINLINE void mark_stack_below_caller(void) {
  volatile uintptr_t here = 0;
  if ((uintptr_t)&here < roots_stack_low || (uintptr_t)&here >= roots_stack_top)
    st__fatal("st_gc_collect(): running on a stack at %p outside the thread's stack [%p, %p)",
              (void *)&here, (void *)roots_stack_low, (void *)roots_stack_top);
  st__gc_mark_range((const void *)&here, (const void *)roots_stack_top);
}

static ST_NOINLINE void mark_current_stack(void) {
  if (roots_stack_top == 0) stack_bounds_load();
  jmp_buf registers;
  setjmp(registers);
  __builtin_unwind_init();
  mark_stack_below_caller();
  __asm__ volatile("" : : "r"(&registers) : "memory"); /* keep the spill area alive */
}

void st__gc_roots_mark(void) {
  for (size_t i = 0; i < roots.count; i++)
    st__gc_mark_range((const void *)roots.ranges[i].lo, (const void *)roots.ranges[i].hi);
  dl_iterate_phdr(mark_object_segments, NULL);
  mark_current_stack();
}
