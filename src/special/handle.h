/*
 * handle.h — the descriptors of arenas, pools and slab caches (special/ layer).
 *
 * Owns: where st_arena_t, st_pool_t and st_slab_cache_t live, and the check that a handle
 * a caller passes in is live. Descriptors sit in fixed-size slots of blocks mapped from the
 * os layer and never unmapped, so reading a destroyed handle's magic never faults; a retired
 * slot is reused only after ST_HANDLE_QUARANTINE others of its kind were retired after it
 * (oldest first), and only for the same kind (arena, pool, slab cache), so a stale handle
 * keeps reading as dead for a long while and never aliases another kind of object.
 * Does not own the memory the allocators hand out (chunk.h, arena.c).
 * Calls: os/, base/. Thread safe: one registry lock, taken on create, destroy and iteration
 * only; lock order is registry lock, then a descriptor's own lock.
 */
#ifndef ST_SPECIAL_HANDLE_H
#define ST_SPECIAL_HANDLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

/* Every descriptor starts with a magic word saying what it is while it is live. */
enum {
  ST_HANDLE_SLOT_SIZE = 2048, /* bytes per descriptor; each kind asserts it fits */
  ST_HANDLE_QUARANTINE = 64,  /* retired slots waiting before reuse */
};
/* Distinct 64-bit tags, ASCII so that a memory dump shows them. */
#define ST_MAGIC_ARENA UINT64_C(0x616e657261747321)
/* An unshared pool whose head is strata.h's struct st_pool_fastpath as laid out now; the
 * value changes with that layout ("!1stpool" before the inline paths stopped reading it,
 * which sends the inline code of programs built against older headers to the library). */
#define ST_MAGIC_POOL UINT64_C(0x6c6f6f7074733221)
#define ST_MAGIC_POOL_SHARED UINT64_C(0x6c6f6f7074732122) /* a pool with ST_POOL_THREAD_SAFE */
#define ST_MAGIC_SLAB UINT64_C(0x62616c7374732121)
#define ST_MAGIC_DEAD UINT64_C(0x646165647374dead)

/* A zeroed slot (magic 0: not yet live) for a descriptor that will be published with
 * `magic`; NULL with errno = ENOMEM if the kernel refuses. */
ST_HIDDEN void *st__handle_new(uint64_t magic);
/* Makes an initialised descriptor live: sets its magic under the registry lock, so
 * st__handle_foreach never sees a half-built one. */
ST_HIDDEN void st__handle_publish(void *h, uint64_t magic);
/* Marks the live descriptor h dead (its magic becomes ST_MAGIC_DEAD) and queues its slot
 * for later reuse by the same kind. */
ST_HIDDEN void st__handle_retire(void *h);
/* Calls visit(h, arg) for every live descriptor of the given magic, under the registry
 * lock: visit must not create or destroy handles. */
ST_HIDDEN void st__handle_foreach(uint64_t magic, void (*visit)(void *h, void *arg), void *arg);
/* The same walk, the registry lock held by the caller (fork.c). */
ST_HIDDEN void st__handle_foreach_locked(uint64_t magic, void (*visit)(void *h, void *arg),
                                         void *arg);
/* The registry lock, taken and released around fork (fork.c). */
ST_HIDDEN void st__handle_fork_lock(void);
ST_HIDDEN void st__handle_fork_unlock(void);

/* The magic word of a handle, read without a lock: a stale handle reads ST_MAGIC_DEAD. */
ST_INLINE uint64_t st__handle_magic(const void *h) { return *(const uint64_t *)h; }

/* "<fn>(): <h> is not a live <kind of magic> (destroyed, or never created)", then abort. */
ST_HIDDEN ST_COLD ST_NOINLINE _Noreturn void st__handle_fatal_not_live(const char *fn,
                                                                      const void *h,
                                                                      uint64_t magic);

/* The check every public call of the special allocators starts with (use after destroy). */
ST_INLINE void st__handle_check(const void *h, uint64_t magic, const char *fn) {
  if (ST_UNLIKELY(h == NULL || st__handle_magic(h) != magic))
    st__handle_fatal_not_live(fn, h, magic);
}

#endif
