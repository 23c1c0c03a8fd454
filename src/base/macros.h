/*
 * macros.h — compiler attributes and tiny helpers every layer uses.
 *
 * Owns: inlining/visibility/branch-hint macros, alignment arithmetic.
 * Calls nothing; depends on no other strata header.
 */
#ifndef ST_BASE_MACROS_H
#define ST_BASE_MACROS_H

#include <stddef.h>
#include <stdint.h>

#define ST_INLINE static inline __attribute__((always_inline))
#define ST_NOINLINE __attribute__((noinline))
#define ST_COLD __attribute__((cold))
#define ST_HIDDEN __attribute__((visibility("hidden")))
#define ST_EXPORT __attribute__((visibility("default")))
#define ST_LIKELY(x) __builtin_expect(!!(x), 1)
#define ST_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ST_CACHE_LINE 64
#define ST_CACHE_ALIGNED __attribute__((aligned(ST_CACHE_LINE)))
#define ST_UNUSED(x) ((void)(x))
#define ST_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Asks the compiler to hold pointer p in the return register from here on. For a value a
 * function returns on its fast path: gcc 12 otherwise loads it into another register and
 * spends a move returning it (malloc's pop: one instruction of 16). No code of its own. */
#if defined(__x86_64__)
#define ST_IN_RETURN_REGISTER(p) __asm__("" : "+a"(p))
#else
#define ST_IN_RETURN_REGISTER(p) ((void)0)
#endif

/* The alignment every block gets (alignof(max_align_t) on x86-64 and aarch64). */
#define ST_MIN_ALIGN 16

ST_INLINE int st_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Round up to a power-of-two alignment; callers guarantee no overflow. */
ST_INLINE size_t st_align_up(size_t x, size_t align) { return (x + align - 1) & ~(align - 1); }
ST_INLINE uintptr_t st_align_down_ptr(uintptr_t x, size_t align) { return x & ~(uintptr_t)(align - 1); }

/* Index of the highest set bit; x must be non-zero. */
ST_INLINE unsigned st_log2_floor(size_t x) { return 63u - (unsigned)__builtin_clzll(x); }
ST_INLINE unsigned st_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }

/* Next power of two >= x (x > 0 and x <= 2^63). */
ST_INLINE size_t st_pow2_ceil(size_t x) { return x <= 1 ? 1 : (size_t)1 << (st_log2_floor(x - 1) + 1); }

#endif
