/*
 * hugecache.c — the cache of freed huge mappings (see hugecache.h).
 *
 * The entries are a short array, oldest first, so the mappings due for release and the
 * ones to give up for room are always a prefix. Two atomics published under the lock let
 * the callers on every page-heap operation skip the lock: the bytes cached (0: nothing to
 * release) and the time the oldest entry is due (UINT64_MAX: none).
 */
#include "core/hugecache.h"

#include "base/atomics.h"
#include "base/lock.h"
#include "base/options.h"
#include "os/os.h"

typedef struct cached_mapping {
  void *start;
  size_t bytes;
  uint64_t freed_at_ms;
} cached_mapping;

static st_lock_t cache_lock = ST_LOCK_INIT;
static cached_mapping entries[ST_HUGECACHE_SLOTS];  /* lock: [0, entry_count), oldest first */
static unsigned entry_count;                        /* lock */
static size_t entry_bytes;                          /* lock: their total length */
static st_atomic_size xcached_bytes;                /* written under lock: entry_bytes */
static _Atomic(uint64_t) xnext_due_ms = UINT64_MAX; /* written under lock: UINT64_MAX if none */

/* Mappings taken out under the lock, unmapped after it. */
typedef struct released {
  cached_mapping gone[ST_HUGECACHE_SLOTS];
  unsigned count;
} released;

static cached_mapping remove_locked(unsigned i, released *out) {
  cached_mapping e = entries[i];
  for (unsigned k = i + 1; k < entry_count; k++) entries[k - 1] = entries[k];
  entry_count--;
  entry_bytes -= e.bytes;
  if (out != NULL) out->gone[out->count++] = e;
  return e;
}

static void publish_locked(void) {
  long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
  st_store_relaxed(&xcached_bytes, entry_bytes);
  st_store_relaxed(&xnext_due_ms, entry_count == 0 || delay < 0
                                      ? UINT64_MAX
                                      : entries[0].freed_at_ms + (uint64_t)delay);
}

static size_t unmap_released(const released *out) {
  size_t bytes = 0;
  for (unsigned i = 0; i < out->count; i++) {
    st__os_unmap(out->gone[i].start, out->gone[i].bytes);
    bytes += out->gone[i].bytes;
  }
  return bytes;
}

static bool due(const cached_mapping *e, uint64_t now, long delay) {
  return delay >= 0 && e->freed_at_ms + (uint64_t)delay <= now;
}

bool st__hugecache_put(void *p, size_t bytes) {
  size_t limit = (size_t)st_option(ST_OPTION_HUGE_CACHE_KB) << 10;
  long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
  if (bytes > limit || delay == 0) return false;
  uint64_t now = st__os_now_ms();
  released out = {.count = 0};
  st_lock_acquire(&cache_lock);
  while (entry_count > 0 && (entry_count == ST_HUGECACHE_SLOTS || entry_bytes + bytes > limit ||
                             due(&entries[0], now, delay)))
    remove_locked(0, &out);
  entries[entry_count++] = (cached_mapping){p, bytes, now};
  entry_bytes += bytes;
  publish_locked();
  st_lock_release(&cache_lock);
  unmap_released(&out);
  return true;
}

void *st__hugecache_take(size_t bytes, size_t align, size_t *have) {
  *have = 0;
  if (st_load_relaxed(&xcached_bytes) == 0) return NULL;
  released out = {.count = 0};
  cached_mapping taken = {NULL, 0, 0};
  st_lock_acquire(&cache_lock);
  int fit = -1, longest = -1;
  for (unsigned i = 0; i < entry_count; i++) {
    const cached_mapping *e = &entries[i];
    if (((uintptr_t)e->start & (align - 1)) != 0) continue;
    if (e->bytes >= bytes && (fit < 0 || e->bytes < entries[fit].bytes)) fit = (int)i;
    if (longest < 0 || e->bytes > entries[longest].bytes) longest = (int)i;
  }
  int pick = fit >= 0 ? fit : longest;
  if (pick >= 0) taken = remove_locked((unsigned)pick, NULL);
  if (fit < 0) /* the caller maps (all of it, or what the mapping taken lacks): none stays */
    while (entry_count > 0) remove_locked(0, &out);
  publish_locked();
  st_lock_release(&cache_lock);
  unmap_released(&out);
  *have = taken.bytes;
  return taken.start;
}

size_t st__hugecache_release_all(void) {
  if (st_load_relaxed(&xcached_bytes) == 0) return 0;
  released out = {.count = 0};
  st_lock_acquire(&cache_lock);
  while (entry_count > 0) remove_locked(0, &out);
  publish_locked();
  st_lock_release(&cache_lock);
  return unmap_released(&out);
}

void st__hugecache_release_due(uint64_t now) {
  if (now < st_load_relaxed(&xnext_due_ms)) return;
  long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
  released out = {.count = 0};
  st_lock_acquire(&cache_lock);
  while (entry_count > 0 && due(&entries[0], now, delay)) remove_locked(0, &out);
  publish_locked();
  st_lock_release(&cache_lock);
  unmap_released(&out);
}

size_t st__hugecache_bytes(void) { return st_load_relaxed(&xcached_bytes); }

bool st__hugecache_holds(const void *p) {
  bool found = false;
  st_lock_acquire(&cache_lock);
  for (unsigned i = 0; i < entry_count && !found; i++) found = entries[i].start == p;
  st_lock_release(&cache_lock);
  return found;
}

void st__hugecache_lock_for_fork(void) { st_lock_acquire(&cache_lock); }
void st__hugecache_unlock_after_fork(void) { st_lock_release(&cache_lock); }
