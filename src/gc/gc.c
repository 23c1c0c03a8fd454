/*
 * gc.c — the public st_gc_* API: the lock, initialisation, when to collect, statistics.
 *
 * Owns: the collection sequence (reset the allocator's free lists, mark from the roots and
 * the queued finalizers, queue newly unreachable finalizable objects, sweep, purge idle
 * blocks, STRATA_GC_PURGE_CYCLES) and the trigger policy: a collection starts when the bytes
 * allocated since the last one reach max(STRATA_GC_MIN_TRIGGER_KB, live bytes x
 * STRATA_GC_GROWTH_PERCENT / 100), or when the heap cannot grow (limit or kernel) before giving up
 * with ENOMEM. Lock: one mutex around every call; it is the only lock of the layer and is not held
 * while finalizers run. A process that never started a second thread skips it
 * (__libc_single_threaded). Nothing here is async-signal-safe or fork-aware.
 * Calls: gc_heap, gc_mark, gc_roots, gc_final, gc_sweep, base/options.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/single_threaded.h>
#include <time.h>

#include "base/lock.h"
#include "base/options.h"
#include "base/report.h"
#include "gc/gc_final.h"
#include "gc/gc_heap.h"
#include "gc/gc_mark.h"
#include "gc/gc_roots.h"
#include "gc/gc_sweep.h"
#include "strata.h"

static st_lock_t gc_lock = ST_LOCK_INIT;

/* All fields are guarded by gc_lock. None points into the GC heap. */
static struct {
  bool ready;           /* heap and mark stack mapped */
  unsigned disabled;    /* depth of st_gc_disable */
  size_t since_collect; /* bytes allocated since the last collection */
  size_t trigger;       /* collect when since_collect reaches it */
  st_gc_stats stats;    /* heap_bytes is filled in by st_gc_get_stats */
} gc;

static bool gc_lock_take(void) {
  if (__libc_single_threaded) return false; /* no other thread can be inside */
  st_lock_acquire(&gc_lock);
  return true;
}

static void gc_lock_drop(bool taken) {
  if (taken) st_lock_release(&gc_lock);
}

static size_t min_trigger(void) { return (size_t)st_option(ST_OPTION_GC_MIN_TRIGGER_KB) << 10; }

static bool gc_init_locked(void) {
  if (gc.ready) return true;
  st__options_init();
  size_t mark_stack_max = (size_t)st_option(ST_OPTION_GC_MARK_STACK_KB) << 10;
  if (!st__gc_heap_init() || !st__gc_mark_init(mark_stack_max)) return false;
  st__gc_heap->limit_bytes = (size_t)st_option(ST_OPTION_GC_HEAP_LIMIT_MB) << 20;
  gc.trigger = min_trigger();
  gc.ready = true;
  return true;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void gc_collect_locked(void) {
  int saved_errno = errno;
  uint64_t start = now_ns();
  uint32_t epoch = (uint32_t)++gc.stats.collections;
  st__gc_reset_classes();
  st__gc_roots_mark();
  st__gc_final_mark_queued();
  st__gc_mark_drain();
  st__gc_final_queue_unreachable();
  st_gc_sweep_result swept = st__gc_sweep(epoch);
  uint32_t idle_cycles = (uint32_t)st_option(ST_OPTION_GC_PURGE_CYCLES);
  st__gc_purge_idle(epoch >= idle_cycles ? epoch - idle_cycles + 1 : 0);
  gc.stats.live_bytes = swept.live_bytes;
  gc.stats.live_objects = swept.live_objects;
  gc.since_collect = 0;
  size_t growth = swept.live_bytes / 100 * (size_t)st_option(ST_OPTION_GC_GROWTH_PERCENT);
  gc.trigger = growth > min_trigger() ? growth : min_trigger();
  uint64_t pause = now_ns() - start;
  gc.stats.total_pause_ns += pause;
  if (pause > gc.stats.max_pause_ns) gc.stats.max_pause_ns = pause;
  errno = saved_errno;
}

/* Runs the queued finalizers one by one, without the lock (they may call the GC). */
static void run_finalizers(void) {
  for (;;) {
    bool taken = gc_lock_take();
    st_gc_final_entry due;
    bool got = st__gc_final_pop(&due);
    if (got) gc.stats.finalizers_run++;
    gc_lock_drop(taken);
    if (!got) return;
    due.fn(due.obj, due.data);
  }
}

static void *gc_alloc_locked(size_t size, bool atomic) {
  if (size <= ST_GC_SMALL_MAX) return st_gc_alloc_small(st_gc_size_class(size), atomic);
  return st__gc_alloc_large(size, atomic);
}

static void *gc_alloc(size_t size, bool atomic) {
  if (ST_UNLIKELY(size > PTRDIFF_MAX)) {
    errno = ENOMEM;
    return NULL;
  }
  bool taken = gc_lock_take(), collected = false;
  void *p = NULL;
  if (ST_LIKELY(gc.ready) || gc_init_locked()) {
    if (gc.since_collect >= gc.trigger && gc.disabled == 0) {
      gc_collect_locked();
      collected = true;
    }
    p = gc_alloc_locked(size, atomic);
    if (p == NULL && !collected && gc.disabled == 0) { /* the heap cannot grow: reclaim */
      gc_collect_locked();
      collected = true;
      p = gc_alloc_locked(size, atomic);
    }
    if (p != NULL) {
      size_t capacity = size <= ST_GC_SMALL_MAX ? st__gc_class_sizes[st_gc_size_class(size)]
                                                : st_align_up(size, ST_GC_BLOCK_SIZE);
      gc.since_collect += capacity;
      gc.stats.allocated_bytes += capacity;
    }
  }
  gc_lock_drop(taken);
  if (collected) run_finalizers();
  if (p == NULL) errno = ENOMEM;
  return p;
}

void st_gc_init(void) {
  bool taken = gc_lock_take();
  gc_init_locked();
  gc_lock_drop(taken);
}

void *st_gc_malloc(size_t size) { return gc_alloc(size, false); }

void *st_gc_malloc_atomic(size_t size) { return gc_alloc(size, true); }

/* The object starting at p, or a diagnostic naming the caller and abort(). */
static st_gc_ref object_at_locked(void *p, const char *caller) {
  st_gc_ref ref;
  if (!gc.ready || !st_gc_lookup((uintptr_t)p, &ref) || ref.obj != p)
    st__fatal("%s(): invalid pointer %p (not the start of a GC object)", caller, p);
  return ref;
}

void st_gc_free(void *p) {
  if (p == NULL) return;
  int saved_errno = errno;
  bool taken = gc_lock_take();
  st_gc_ref ref = object_at_locked(p, "st_gc_free");
  st__gc_final_forget(&ref);
  st__gc_free_object(ref.block, p);
  gc_lock_drop(taken);
  errno = saved_errno;
}

void *st_gc_realloc(void *p, size_t size) {
  if (p == NULL) return st_gc_malloc(size);
  if (size == 0) {
    st_gc_free(p);
    return NULL;
  }
  bool taken = gc_lock_take();
  st_gc_ref ref = object_at_locked(p, "st_gc_realloc");
  size_t capacity = st_gc_object_capacity(ref.block);
  bool atomic = ref.block->atomic;
  /* In place when it fits, unless a large object would keep more than twice its need. */
  bool in_place = size <= capacity && (capacity <= ST_GC_SMALL_MAX || size > capacity / 2);
  if (in_place && !atomic) __builtin_memset((char *)p + size, 0, capacity - size);
  gc_lock_drop(taken);
  if (in_place) return p;
  void *q = gc_alloc(size, atomic); /* p is on this stack: it survives a collection here */
  if (q == NULL) return NULL;
  __builtin_memcpy(q, p, size < capacity ? size : capacity);
  st_gc_free(p);
  return q;
}

void st_gc_collect(void) {
  bool taken = gc_lock_take(), collected = false;
  if (gc_init_locked() && gc.disabled == 0) {
    gc_collect_locked();
    collected = true;
  }
  gc_lock_drop(taken);
  if (collected) run_finalizers();
}

void st_gc_add_roots(void *start, void *end) {
  if ((uintptr_t)start > (uintptr_t)end)
    st__fatal("st_gc_add_roots(): start %p is above end %p", start, end);
  bool taken = gc_lock_take();
  bool added = st__gc_roots_add(start, end);
  gc_lock_drop(taken);
  if (!added) st__fatal("st_gc_add_roots(): out of memory for the root table (%p)", start);
}

void st_gc_remove_roots(void *start, void *end) {
  if ((uintptr_t)start > (uintptr_t)end)
    st__fatal("st_gc_remove_roots(): start %p is above end %p", start, end);
  bool taken = gc_lock_take();
  bool removed = st__gc_roots_remove(start, end);
  gc_lock_drop(taken);
  if (!removed) st__fatal("st_gc_remove_roots(): out of memory for the root table (%p)", start);
}

int st_gc_register_finalizer(void *obj, void (*fn)(void *obj, void *data), void *data) {
  bool taken = gc_lock_take();
  st_gc_ref ref;
  int result = EINVAL;
  if (gc.ready && st_gc_lookup((uintptr_t)obj, &ref) && ref.obj == obj)
    result = st__gc_final_register(&ref, fn, data);
  gc_lock_drop(taken);
  return result;
}

void st_gc_enable(void) {
  bool taken = gc_lock_take();
  if (gc.disabled > 0) gc.disabled--;
  gc_lock_drop(taken);
}

void st_gc_disable(void) {
  bool taken = gc_lock_take();
  gc.disabled++;
  gc_lock_drop(taken);
}

void st_gc_set_heap_limit(size_t bytes) {
  bool taken = gc_lock_take();
  if (gc_init_locked()) st__gc_heap->limit_bytes = bytes;
  gc_lock_drop(taken);
}

void st_gc_get_stats(st_gc_stats *out) {
  if (out == NULL) return;
  bool taken = gc_lock_take();
  *out = gc.stats;
  out->heap_bytes = gc.ready ? st__gc_heap->heap_bytes : 0;
  gc_lock_drop(taken);
}
