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
#define st_fetch_or_relaxed(p, v) atomic_fetch_or_explicit((p), (v), memory_order_relaxed)
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

#if defined(__SANITIZE_THREAD__)
#define ST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ST_TSAN 1
#endif
#endif

/* A relaxed load of a word the compiler may fold into an addressing mode. gcc never
 * folds the address arithmetic around an __atomic load into the load itself (on the free
 * fast path that costs three instructions); an aligned 8-byte mov is the same relaxed
 * load on x86-64. Elsewhere, and under ThreadSanitizer, which must see the load, it is
 * st_load_relaxed. */
static inline uintptr_t st_load_relaxed_word(const st_atomic_uptr *p) {
#if defined(__x86_64__) && !defined(ST_TSAN)
  uintptr_t value;
  __asm__("movq %1, %0" : "=r"(value) : "m"(*(const uintptr_t *)p));
  return value;
#else
  return st_load_relaxed(p);
#endif
}

/* value ^ (a relaxed load of *p), the load folded into the xor: gcc loads an __atomic
 * value into a register of its own first, one instruction more on the free fast path. */
static inline uintptr_t st_xor_load_relaxed_word(uintptr_t value, const st_atomic_uptr *p) {
#if defined(__x86_64__) && !defined(ST_TSAN)
  __asm__("xorq %1, %0" : "+r"(value) : "m"(*(const uintptr_t *)p) : "cc");
  return value;
#else
  return value ^ st_load_relaxed(p);
#endif
}

/* Counters with one writer at a time, which other threads only read (relaxed): changing
 * one needs no locked instruction. On x86-64 an add to memory is that load and store (an
 * aligned 4-byte store is atomic) in one instruction, where gcc spells the C11 load and
 * store as three. Elsewhere, and under ThreadSanitizer, it is the relaxed load and store. */
static inline void st_single_writer_add_u32(_Atomic(uint32_t) *p, uint32_t delta) {
#if defined(__x86_64__) && !defined(ST_TSAN)
  __asm__("addl %1, %0" : "+m"(*(uint32_t *)p) : "ir"(delta) : "cc");
#else
  atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + delta, memory_order_relaxed);
#endif
}

/* Subtracts one; returns whether the counter reached zero. */
static inline bool st_single_writer_dec_u32_is_zero(_Atomic(uint32_t) *p) {
#if defined(__x86_64__) && !defined(ST_TSAN)
  bool zero;
  __asm__("subl $1, %0" : "+m"(*(uint32_t *)p), "=@ccz"(zero));
  return zero;
#else
  uint32_t value = atomic_load_explicit(p, memory_order_relaxed) - 1;
  atomic_store_explicit(p, value, memory_order_relaxed);
  return value == 0;
#endif
}

static inline void st_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#endif
