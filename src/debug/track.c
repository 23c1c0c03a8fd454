/*
 * track.c — live-block records and call stacks (see track.h and debug.h).
 *
 * Records hash by block address into a fixed bucket array mapped once (8 MiB of address
 * space, resident only where touched); records and stacks are carved from 1 MiB chunks
 * and freed records are reused. Stacks are taken with libunwind's unw_backtrace, loaded
 * with dlopen by a constructor when leak tracking is on, so that a program not asking for
 * leak reports does not map libunwind and its dependencies (90-150 KiB of resident pages
 * in every process, docs/debugging.md); blocks allocated before the constructor runs (the loader's
 * and libc's own) are recorded without a stack. A thread-local flag makes allocations
 * made while a stack is taken or the unwinder is loaded skip the records.
 *
 * Lock: track_lock, taken after no other strata lock and held around no core call that
 * locks; so fork takes it before every core lock (track_fork_hooks).
 */
#include "debug/track.h"

#include <dlfcn.h>
#include <string.h>

#include "base/lock.h"
#include "base/options.h"
#include "base/valgrind.h"
#include "core/sizeclass.h"
#include "debug/debug.h"
#include "os/os.h"

/* libunwind's unw_backtrace once loaded (release: the loading thread's writes to the
 * library come before it), else NULL. */
static int (*_Atomic xbacktrace)(void **buffer, int size);

#define BUCKET_BITS 20
#define STACK_BUCKET_BITS 16
#define CHUNK_BYTES ((size_t)1 << 20)
#define MAX_FRAMES 80
/* Frames of strata itself above the program's call (trimmed when the report prints). */
#define OWN_FRAMES 8

static st_lock_t track_lock = ST_LOCK_INIT;
static st_record_t **buckets;         /* track_lock: BUCKET_BITS chains */
static st_stack_t **stack_buckets;    /* track_lock */
static st_record_t *free_records;     /* track_lock */
static char *cursor, *cursor_end;     /* track_lock: carving chunk */
static size_t live_count, small_requested; /* track_lock */
static bool out_of_memory;            /* track_lock: some block could not be recorded */
static __thread bool tls_busy __attribute__((tls_model("initial-exec")));

static st_atomic_int xenabled; /* 0 unknown, 1 off, 2 on; known once the core is initialised */

/* Fork: the table's lock is taken before the core's locks (see st_fork_hooks), so a child
 * never starts with it held by a thread that did not survive the fork. */
static void track_fork_prepare(void) { st_lock_acquire(&track_lock); }
static void track_fork_parent(void) { st_lock_release(&track_lock); }
/* The child's only thread took the lock: it releases it, as the parent does. */
static const st_fork_hooks track_fork_hooks = {track_fork_prepare, track_fork_parent, track_fork_parent};
static st_atomic_int xfork_hooks_set;

/* Every taker of the lock goes through here: the hooks are in place before it is first held. */
static void track_acquire(void) {
  if (!st_load_relaxed(&xfork_hooks_set)) {
    st_store_relaxed(&xfork_hooks_set, 1);
    st__thread_set_fork_hooks(&track_fork_hooks);
  }
  st_lock_acquire(&track_lock);
}

bool st__track_enabled(void) {
  int state = st_load_relaxed(&xenabled);
  if (state == 0) {
    if (!st__core_initialized()) return false;
    /* Not for hardened mode, which takes the same routes but records nothing. */
    bool on = st_option(ST_OPTION_LEAKS) != 0 || st_running_on_memcheck();
    state = on ? 2 : 1;
    st_store_relaxed(&xenabled, state);
  }
  return state == 2;
}

bool st__track_busy(void) { return tls_busy; }
void st__track_set_busy(bool busy) { tls_busy = busy; }

void *st__track_map(size_t bytes) { return st__os_map_aligned(st_align_up(bytes, ST_PAGE_SIZE), ST_PAGE_SIZE); }
void st__track_unmap(void *p, size_t bytes) { st__os_unmap(p, st_align_up(bytes, ST_PAGE_SIZE)); }

static void *carve_locked(size_t bytes) {
  bytes = st_align_up(bytes, sizeof(void *));
  if (cursor == NULL || cursor + bytes > cursor_end) {
    char *chunk = st__track_map(CHUNK_BYTES);
    if (chunk == NULL) return NULL;
    cursor = chunk;
    cursor_end = chunk + CHUNK_BYTES;
  }
  void *p = cursor;
  cursor += bytes;
  return p;
}

static bool tables_ready_locked(void) {
  if (buckets == NULL) buckets = st__track_map(sizeof(*buckets) << BUCKET_BITS);
  if (stack_buckets == NULL) stack_buckets = st__track_map(sizeof(*stack_buckets) << STACK_BUCKET_BITS);
  return buckets != NULL && stack_buckets != NULL;
}

static size_t bucket_of(uintptr_t addr) {
  return (size_t)(((uint64_t)addr >> 4) * 0x9E3779B97F4A7C15ull >> (64 - BUCKET_BITS));
}

static uint64_t hash_frames(void *const *frames, int n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < n; i++) h = (h ^ (uintptr_t)frames[i]) * 0x100000001b3ull;
  return h;
}

/* The depot's copy of a stack, stored once per distinct stack. */
static const st_stack_t *stack_intern_locked(void *const *frames, int n) {
  uint64_t h = hash_frames(frames, n);
  st_stack_t **chain = &stack_buckets[h >> (64 - STACK_BUCKET_BITS)];
  for (st_stack_t *s = *chain; s != NULL; s = s->next) {
    if (s->hash == h && s->depth == (uint32_t)n &&
        memcmp(s->frames, frames, (size_t)n * sizeof(void *)) == 0)
      return s;
  }
  st_stack_t *s = carve_locked(sizeof *s + (size_t)n * sizeof(uintptr_t));
  if (s == NULL) return NULL;
  s->hash = h;
  s->depth = (uint32_t)n;
  memcpy(s->frames, frames, (size_t)n * sizeof(void *));
  s->next = *chain;
  *chain = s;
  return s;
}

/* Runs once libc and the loader are initialised: dlopen cannot run from the loader's
 * first allocations, before them. */
__attribute__((constructor)) static void load_unwinder(void) {
  if (st__option_peek(ST_OPTION_LEAKS) == 0) return;
  tls_busy = true; /* dlopen allocates */
  void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  void *fn = lib != NULL ? dlsym(lib, "unw_backtrace") : NULL;
  tls_busy = false;
  int (*backtrace)(void **, int);
  *(void **)&backtrace = fn;
  st_store_release(&xbacktrace, backtrace);
}

static int capture_stack(void **frames) {
  int (*backtrace)(void **, int) = st_load_acquire(&xbacktrace);
  if (st_option(ST_OPTION_LEAKS) == 0 || backtrace == NULL) return 0;
  int want = (int)st_option(ST_OPTION_LEAKS_DEPTH) + OWN_FRAMES;
  return backtrace(frames, want < MAX_FRAMES ? want : MAX_FRAMES);
}

void st__track_add(void *p, size_t size) {
  if (!st__track_enabled()) return;
  void *frames[MAX_FRAMES];
  tls_busy = true;
  int n = capture_stack(frames);
  track_acquire();
  st_record_t *r = NULL;
  if (tables_ready_locked()) {
    r = free_records;
    if (r != NULL) free_records = r->next;
    else r = carve_locked(sizeof *r);
  }
  if (r != NULL) {
    r->addr = ~(uintptr_t)p;
    r->size = size;
    r->stack = n > 0 ? stack_intern_locked(frames, n) : NULL;
    r->reachable = false;
    st_record_t **chain = &buckets[bucket_of((uintptr_t)p)];
    r->next = *chain;
    *chain = r;
    live_count++;
    if (size <= ST_SMALL_MAX) small_requested += size;
  } else {
    out_of_memory = true;
  }
  st_lock_release(&track_lock);
  tls_busy = false;
}

st_record_t *st__track_find_locked(uintptr_t addr) {
  if (buckets == NULL) return NULL;
  for (st_record_t *r = buckets[bucket_of(addr)]; r != NULL; r = r->next) {
    if (r->addr == ~addr) return r;
  }
  return NULL;
}

bool st__track_remove(void *p, size_t *size) {
  if (!st__track_enabled()) return false;
  bool found = false;
  track_acquire();
  if (buckets != NULL) {
    for (st_record_t **link = &buckets[bucket_of((uintptr_t)p)]; *link != NULL; link = &(*link)->next) {
      st_record_t *r = *link;
      if (r->addr != ~(uintptr_t)p) continue;
      *link = r->next;
      *size = r->size;
      if (r->size <= ST_SMALL_MAX) small_requested -= r->size;
      live_count--;
      r->next = free_records;
      free_records = r;
      found = true;
      break;
    }
  }
  st_lock_release(&track_lock);
  return found;
}

bool st__track_size(const void *p, size_t *size) {
  if (!st__track_enabled()) return false;
  track_acquire();
  st_record_t *r = st__track_find_locked((uintptr_t)p);
  if (r != NULL) *size = r->size;
  st_lock_release(&track_lock);
  return r != NULL;
}

void st__track_requests(size_t *small, size_t *tracked) {
  *small = 0;
  *tracked = 0;
  if (!st__track_enabled()) return;
  track_acquire();
  *small = small_requested;
  *tracked = !out_of_memory;
  st_lock_release(&track_lock);
}

size_t st__track_live_count(void) {
  track_acquire();
  size_t n = live_count;
  st_lock_release(&track_lock);
  return n;
}

void st__track_for_each(void (*fn)(st_record_t *r, void *arg), void *arg) {
  track_acquire();
  if (buckets != NULL) {
    for (size_t b = 0; b < ((size_t)1 << BUCKET_BITS); b++) {
      for (st_record_t *r = buckets[b]; r != NULL; r = r->next) fn(r, arg);
    }
  }
  st_lock_release(&track_lock);
}

void st__track_locked(void (*fn)(void *arg), void *arg) {
  tls_busy = true;
  track_acquire();
  fn(arg);
  st_lock_release(&track_lock);
  tls_busy = false;
}
