/*
 * atomics.h — C11 atomics behind names that say the memory order.
 *
 * Owns: the only spelling of atomic operations in strata. Fields touched through these
 * wrappers carry an `x` prefix (STYLE.md §7) so a reader sees which data is shared.
 */
#ifndef ST_BASE_ATOMICS_H
#define ST_BASE_ATOMICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef _Atomic(uintptr_t) st_atomic_uptr;
typedef _Atomic(size_t) st_atomic_size;
typedef _Atomic(void *) st_atomic_ptr;
typedef _Atomic(int) st_atomic_int;

#define st_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define st_load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define st_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define st_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define st_exchange_acq_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define st_fetch_add_relaxed(p, v) atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define st_fetch_sub_relaxed(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_relaxed)
/* Weak CAS for retry loops: on failure *expected is refreshed with acquire semantics. */
#define st_cas_weak_acq_rel(p, expected, desired)                                               \
  atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_acq_rel,      \
                                        memory_order_acquire)
#define st_cas_weak_release(p, expected, desired)                                               \
  atomic_compare_exchange_weak_explicit((p), (expected), (desired), memory_order_release,      \
                                        memory_order_relaxed)

/* Counters read by statistics: relaxed increments, never used for synchronisation. */
#define st_counter_add(p, v) ((void)st_fetch_add_relaxed((p), (v)))
#define st_counter_sub(p, v) ((void)st_fetch_sub_relaxed((p), (v)))

static inline void st_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#endif
