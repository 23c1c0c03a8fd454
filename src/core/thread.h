/*
 * thread.h — the life of threads and of the process as the allocator sees them.
 *
 * Owns: the one-time initialisation of the core (in layer order), each thread's cache
 * pointer (st__tls_tcache), setting a thread up on its first allocation, handing its
 * spans to others when it exits, the fallback cache for threads past their exit
 * destructor, the registry of live caches, and fork handling.
 *
 * Lock order: a layer above's lock given in st__thread_set_fork_hooks, registry_lock,
 * orphan_lock, page heap shard locks, the pagemap leaf lock (fork_prepare takes them all
 * in this order).
 */
#ifndef ST_CORE_THREAD_H
#define ST_CORE_THREAD_H

#include <stdbool.h>

#include "core/tcache.h"

/* Initial-exec TLS: one %fs-relative load on the fast path. */
ST_HIDDEN extern __thread st_tcache_t *st__tls_tcache __attribute__((tls_model("initial-exec")));

/* In slow-paths-only mode, the thread's own cache (st__tls_tcache stays at the sentinel);
 * NULL before its first allocation, a cache that owns no span after its exit. Else NULL. */
ST_HIDDEN extern __thread st_tcache_t *st__tls_hidden_tcache __attribute__((tls_model("initial-exec")));

ST_HIDDEN void st__core_ensure_init(void);
ST_HIDDEN bool st__core_initialized(void);
/* The calling thread's cache, set up if needed; NULL for a thread past its exit
 * destructor (or when no cache could be mapped): use st__thread_orphan_*. */
ST_HIDDEN st_tcache_t *st__thread_cache(void);
/* The calling thread's cache (its hidden one in slow-paths-only mode) without setting one
 * up: NULL before its first allocation; after its exit, a cache that owns no span. */
ST_HIDDEN st_tcache_t *st__thread_cache_if_any(void);
/* The shared, locked cache of threads that have none. */
ST_HIDDEN st_tcache_t *st__thread_orphan_acquire(void);
ST_HIDDEN void st__thread_orphan_release(void);
ST_HIDDEN size_t st__thread_live_count(void);
/* Calls fn on every live cache, then the orphan cache, holding the registry lock (and the
 * orphan lock for the last call): fn must not take the registry lock. */
ST_HIDDEN void st__thread_for_each_cache(void (*fn)(st_tcache_t *tc, void *arg), void *arg);
/* True when STRATA_LEAKS or Valgrind's memcheck asked for every malloc and free to take the slow
 * paths (st__tls_tcache then stays at the sentinel; st__thread_cache still gives the
 * thread its own cache). Fixed at init. */
ST_HIDDEN extern st_atomic_int st__xthread_slow_only;
/* Its values: off; on for leak records or memcheck (hardened mode possibly too); on for
 * hardened mode alone, which the debug layer serves without its records. */
enum { ST_SLOW_PATHS_OFF, ST_SLOW_PATHS_RECORDED, ST_SLOW_PATHS_HARDENED };
/* A relaxed load: a thread that races the initialisation may see 0 and take the plain
 * route for that one call (its block is not recorded, which the debug routes tolerate). */
ST_INLINE bool st__thread_slow_paths_only(void) { return st_load_relaxed(&st__xthread_slow_only) != 0; }
ST_INLINE bool st__thread_hardened_only(void) {
  return st_load_relaxed(&st__xthread_slow_only) == ST_SLOW_PATHS_HARDENED;
}
ST_HIDDEN size_t st__thread_metadata_bytes(void);

/* A lock of a layer above the core (the debug layer's block table) that must not be held
 * across fork, and that is never taken while a core lock is held: prepare takes it before
 * the core takes its own locks, parent releases it and child re-initialises it after the
 * core has done the same with its locks. */
typedef struct st_fork_hooks {
  void (*prepare)(void);
  void (*parent)(void);
  void (*child)(void);
} st_fork_hooks;
/* Sets the hooks (one set per process; *hooks must stay valid). Never allocates. */
ST_HIDDEN void st__thread_set_fork_hooks(const st_fork_hooks *hooks);

/* Called first when a thread with a cache exits, while that cache still serves it: a layer
 * above gives back what it holds for the thread (hardened mode's quarantine), so those
 * blocks go back as the owner's frees and the spans they empty are released with the cache,
 * rather than as remote frees into spans the cache has abandoned. One hook per process. */
typedef void st_thread_exit_hook(void);
ST_HIDDEN void st__thread_set_exit_hook(st_thread_exit_hook *hook);

#endif
