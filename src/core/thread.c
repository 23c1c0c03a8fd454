/*
 * thread.c — threads and process life (see thread.h).
 *
 * Thread exit: a pthread key's destructor abandons the thread's spans and recycles its
 * cache. Allocations after that (later destructors of other libraries) go through the
 * locked orphan cache; frees need no cache at all (they are remote frees).
 * Fork: the prepare handler takes every lock (a layer above's first, st_fork_hooks) so no
 * other thread holds one across the fork; the child releases them too (its only thread
 * took them) and abandons the caches of the threads that did not survive, so their spans
 * are freed or adopted instead of leaking. The init lock is among them, so a fork can never split the first
 * allocation's initialisation; the handlers are registered by a constructor (before the
 * program's threads exist), or by the initialisation if an allocation comes first.
 */
#include "core/thread.h"

#include <pthread.h>

#include "base/check.h"
#include "base/options.h"
#include "base/thread_pointer.h"
#include "base/valgrind.h"
#include "core/hugecache.h"
#include "core/pagemap.h"
#include "core/sizeclass.h"
#include "os/os.h"

__thread st_tcache_t *st__tls_tcache __attribute__((tls_model("initial-exec"))) = &st__tcache_empty;

/* Slow-paths-only mode (see thread.h): the thread's cache lives here and st__tls_tcache
 * stays at the sentinel, so the inline fast paths always fall through. */
__thread st_tcache_t *st__tls_hidden_tcache __attribute__((tls_model("initial-exec")));
st_atomic_int st__xthread_slow_only; /* written once, at init; relaxed: see thread.h */

/* Current spans all empty, never owned: the state of a thread after its exit. */
static st_tcache_t tcache_exited = {.current = {[0 ... ST_NUM_CLASSES - 1] = &st__span_empty}};

#define CACHE_CHUNK_BYTES ((size_t)64 << 10)
#define CACHE_STRIDE ((sizeof(st_tcache_t) + ST_CACHE_LINE - 1) & ~(size_t)(ST_CACHE_LINE - 1))

static st_atomic_int xinit_state; /* 0: not started, 1: done */
static st_lock_t init_lock = ST_LOCK_INIT;
static pthread_key_t exit_key;

static st_lock_t registry_lock = ST_LOCK_INIT;
static st_list_t registry = {&registry, &registry}; /* registry lock: live caches */
static st_tcache_t *recycled;                        /* registry lock: via registry_link.next */
static char *cache_cursor, *cache_end;               /* registry lock: carving area */
static size_t cache_bytes, live_count;               /* registry lock */

static st_lock_t orphan_lock = ST_LOCK_INIT;
static st_tcache_t orphan_cache;
static bool orphan_ready; /* orphan lock */

static st_tcache_t *cache_new(void) {
  st_tcache_t *tc = NULL;
  st_lock_acquire(&registry_lock);
  if (recycled != NULL) {
    tc = recycled;
    recycled = (st_tcache_t *)tc->registry_link.next;
  } else {
    if (cache_cursor == NULL || cache_cursor + CACHE_STRIDE > cache_end) {
      char *chunk = st__os_map_aligned(CACHE_CHUNK_BYTES, ST_PAGE_SIZE);
      if (chunk != NULL) {
        cache_bytes += CACHE_CHUNK_BYTES;
        cache_cursor = chunk;
        cache_end = chunk + CACHE_CHUNK_BYTES;
      }
    }
    if (cache_cursor != NULL && cache_cursor + CACHE_STRIDE <= cache_end) {
      tc = (st_tcache_t *)cache_cursor;
      cache_cursor += CACHE_STRIDE;
    }
  }
  if (tc != NULL) {
    st__tcache_init(tc);
    tc->live = true;
    st_list_push_back(&registry, &tc->registry_link);
    live_count++;
  }
  st_lock_release(&registry_lock);
  return tc;
}

static void cache_recycle_locked(st_tcache_t *tc) {
  st__events_fold(&st__events_shared, &tc->events);
  st_list_remove(&tc->registry_link);
  tc->live = false;
  tc->registry_link.next = (st_list_t *)recycled;
  recycled = tc;
  live_count--;
}

static _Atomic(st_thread_exit_hook *) xexit_hook;

void st__thread_set_exit_hook(st_thread_exit_hook *hook) { st_store_release(&xexit_hook, hook); }

static void thread_exit(void *arg) {
  st_tcache_t *tc = arg;
  st_thread_exit_hook *hook = st_load_acquire(&xexit_hook);
  if (hook != NULL) hook();
  st__tls_tcache = &tcache_exited;
  st__tls_hidden_tcache = &tcache_exited;
  st__tcache_abandon(tc, false);
  st_lock_acquire(&registry_lock);
  cache_recycle_locked(tc);
  st_lock_release(&registry_lock);
}

static _Atomic(const st_fork_hooks *) xfork_hooks;
static const st_fork_hooks *fork_hooks_held; /* the hooks whose prepare ran: the same pair ends it */

void st__thread_set_fork_hooks(const st_fork_hooks *hooks) { st_store_release(&xfork_hooks, hooks); }

static void fork_prepare(void) {
  const st_fork_hooks *hooks = st_load_acquire(&xfork_hooks);
  if (hooks != NULL) hooks->prepare();
  st_lock_acquire(&init_lock); /* before init: shard_count is 0, the walks below are empty */
  st_lock_acquire(&registry_lock);
  fork_hooks_held = hooks; /* under the registry lock: one fork at a time */
  st_lock_acquire(&orphan_lock);
  st__pageheap_lock_all();
  st__pagemap_lock_for_fork();
  st__hugecache_lock_for_fork();
}

static void fork_parent(void) {
  const st_fork_hooks *hooks = fork_hooks_held;
  st__hugecache_unlock_after_fork();
  st__pagemap_unlock_after_fork();
  st__pageheap_unlock_all();
  st_lock_release(&orphan_lock);
  st_lock_release(&registry_lock);
  st_lock_release(&init_lock);
  if (hooks != NULL) hooks->parent();
}

/* The child's only thread is the one that took every lock: it releases them as the parent
 * does (re-initialising a held mutex is what ThreadSanitizer reports as a double lock). */
static void fork_child(void) {
  st__hugecache_unlock_after_fork();
  st__pagemap_unlock_after_fork();
  st__pageheap_unlock_all();
  st_lock_release(&orphan_lock);
  st_lock_release(&registry_lock);
  st_lock_release(&init_lock);
  st_tcache_t *self = st__thread_slow_paths_only() ? st__tls_hidden_tcache : st__tls_tcache;
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &registry) {
    st_tcache_t *tc = ST_CONTAINER_OF(pos, st_tcache_t, registry_link);
    if (tc == self) continue;
    st__tcache_abandon(tc, true);
    cache_recycle_locked(tc);
  }
  if (fork_hooks_held != NULL) fork_hooks_held->child();
}

/* pthread_atfork may allocate: called with no strata lock held, and only once. */
static void fork_handlers_once(void) {
  static st_atomic_int xregistered;
  if (st_load_acquire(&xregistered) == 0 && st_exchange_acq_rel(&xregistered, 1) == 0)
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

__attribute__((constructor)) static void thread_register_fork_handlers(void) {
  fork_handlers_once();
}

void st__core_ensure_init(void) {
  if (st_load_acquire(&xinit_state) == 1) return;
  st_lock_acquire(&init_lock);
  bool first = st_load_relaxed(&xinit_state) == 0;
  if (first) {
    st__options_init();
    /* Hardened mode takes the slow paths too (src/debug/harden.c), and shuffles slabs. */
    bool hardened = st_option(ST_OPTION_HARDENED) != 0 && !st_running_on_memcheck();
    int slow_only = ST_SLOW_PATHS_OFF;
    if (st_option(ST_OPTION_LEAKS) != 0 || st_running_on_memcheck()) slow_only = ST_SLOW_PATHS_RECORDED;
    else if (hardened) slow_only = ST_SLOW_PATHS_HARDENED;
    st_store_relaxed(&st__xthread_slow_only, slow_only);
    if (hardened) st__page_harden(st__os_random_seed(), (uintptr_t)st__os_random_seed());
    st__pageheap_init();
    pthread_key_create(&exit_key, thread_exit);
    st_store_release(&xinit_state, 1);
  }
  st_lock_release(&init_lock);
  if (first) fork_handlers_once();
}

bool st__core_initialized(void) { return st_load_acquire(&xinit_state) == 1; }

st_tcache_t *st__thread_cache(void) {
  st_tcache_t *tc = st__tls_tcache;
  if (tc == &st__tcache_empty && st__tls_hidden_tcache != NULL) tc = st__tls_hidden_tcache;
  if (tc != &st__tcache_empty) return tc == &tcache_exited ? NULL : tc;
  st__core_ensure_init();
  tc = cache_new();
  if (tc == NULL) return NULL;
  if (st__thread_slow_paths_only()) {
    st__tls_hidden_tcache = tc; /* fast_thread stays 0: no free takes the fast path */
  } else {
    /* thread_exit's abandon takes it back. A thread pointer at or above the block check's
     * bits could pass the free fast path's merged compare for an interior pointer
     * (st__span_fast_thread_for): such a thread frees through the slow path. */
    uintptr_t self = st_thread_pointer();
    tc->owner.fast_thread = (self & ST_BLOCK_CHECK_MASK) == 0 ? self : 0;
    st__tls_tcache = tc;
  }
  /* May allocate (keys past the first 32): the cache is already in place. */
  pthread_setspecific(exit_key, tc);
  return tc;
}

st_tcache_t *st__thread_cache_if_any(void) {
  st_tcache_t *tc = st__tls_tcache;
  if (tc != &st__tcache_empty) return tc;
  return st__tls_hidden_tcache;
}

st_tcache_t *st__thread_orphan_acquire(void) {
  st__core_ensure_init();
  st_lock_acquire(&orphan_lock);
  if (!orphan_ready) {
    st__tcache_init(&orphan_cache);
    orphan_ready = true;
  }
  return &orphan_cache;
}

void st__thread_orphan_release(void) { st_lock_release(&orphan_lock); }

void st__thread_for_each_cache(void (*fn)(st_tcache_t *tc, void *arg), void *arg) {
  st_lock_acquire(&registry_lock);
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &registry) fn(ST_CONTAINER_OF(pos, st_tcache_t, registry_link), arg);
  st_lock_acquire(&orphan_lock);
  if (orphan_ready) fn(&orphan_cache, arg);
  st_lock_release(&orphan_lock);
  st_lock_release(&registry_lock);
}

size_t st__thread_live_count(void) {
  st_lock_acquire(&registry_lock);
  size_t n = live_count;
  st_lock_release(&registry_lock);
  return n;
}

size_t st__thread_metadata_bytes(void) {
  st_lock_acquire(&registry_lock);
  size_t n = cache_bytes;
  st_lock_release(&registry_lock);
  return n;
}
