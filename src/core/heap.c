/*
 * heap.c — the core backend behind the fast paths (see heap.h).
 *
 * Size routing: n <= ST_SMALL_MAX (8 KiB) → a slab class in the thread cache;
 * n <= huge threshold (STRATA_HUGE_THRESHOLD_KB) → a LARGE span of whole pages from the
 * page heap of the current CPU; larger → a HUGE mapping of its own.
 */
#include "core/heap.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "base/check.h"
#include "base/options.h"
#include "core/huge.h"
#include "core/hugecache.h"
#include "core/page.h"
#include "core/pageheap.h"
#include "core/pagemap.h"
#include "core/thread.h"
#include "os/os.h"

static void count(st_event event) { st__tcache_count(st__tls_tcache, event); }

/* Hardened mode asks the core for the program's request plus its canary, size word and
 * guard page (debug/harden.c): the threshold moves by those two pages, so every request up
 * to the threshold is LARGE in both modes (in hardened mode, those less than a page above
 * it too). Without it, a realloc growing a buffer to 8 MiB went
 * HUGE in hardened mode only: a fresh mapping for the kernel to zero at each step (41 of
 * them in `realloc 100`). */
#define HARDENED_HUGE_SLACK (2 * ST_PAGE_SIZE)

size_t st__core_huge_threshold(void) {
  size_t threshold = (size_t)st_option(ST_OPTION_HUGE_THRESHOLD_KB) << 10;
  return st__page_hardened() ? threshold + HARDENED_HUGE_SLACK : threshold;
}

/* ---- small ----------------------------------------------------------------------- */

void *st__core_small_alloc(unsigned cls) {
  st_tcache_t *tc = st__thread_cache();
  if (ST_UNLIKELY(tc == NULL)) {
    tc = st__thread_orphan_acquire();
    void *block = st__tcache_alloc_slow(tc, cls);
    st__thread_orphan_release();
    return block;
  }
  if (ST_UNLIKELY(st__page_hardened())) return st__tcache_pop_checked(tc, cls);
  void *block = st__tcache_pop(tc, cls);
  return block != NULL ? block : st__tcache_alloc_slow(tc, cls);
}

void st__core_small_check_not_free(const void *p, st_span_t *span, const char *fn) {
  st_tcache_t *tc = st__thread_cache_if_any();
  if (tc != NULL && st__tcache_owns(tc, span)) st__page_check_double_free(span, p, fn);
  else st__page_double_free(span, p, fn);
}

void st__core_small_free_checked(void *p, st_span_t *span) {
  st_tcache_t *tc = st__thread_cache_if_any();
  st_block_t *block = p;
  if (tc == NULL || !st__tcache_owns(tc, span)) {
    st__page_free_mt_encoded(span, block);
    return;
  }
  if (ST_UNLIKELY(block->key == st__block_key(span))) st__page_check_double_free(span, block, "free");
  /* As the free fast path, with an encoded link; a parked span unparks in st__tcache_retire. */
  block->key = st__block_key(span);
  st__block_set_next(block, span->free);
  span->free = block;
  if (ST_UNLIKELY(st__span_release_one(span))) st__tcache_retire(tc, span);
}

/* Out of line so that small_free sets up no stack frame. */
ST_COLD ST_NOINLINE _Noreturn static void small_invalid_pointer(const void *p, const st_span_t *span,
                                                               const char *fn) {
  st__fatal("%s(): invalid pointer %p (inside a %u-byte block)", fn, p, span->block_size);
}

/* The owner frees a block that carries the free mark: a double free if it is on one of
 * span's lists. Out of line for the same reason. */
ST_COLD ST_NOINLINE static void small_free_marked(st_tcache_t *tc, st_span_t *span, st_block_t *block,
                                                  const char *fn) {
  st__page_check_double_free(span, block, fn);
  st__tcache_free_local_slow(tc, span, block);
}

/* The path of every remote free and of the owner's frees the fast path left. Every call in
 * it is its last or does not return, so it needs no stack frame (with the double-free walk
 * inline, which returns into it, gcc 12 saved and restored two registers and moved the stack
 * pointer: 7 instructions per remote free). */
ST_INLINE void small_free(void *p, st_span_t *span, const char *fn) {
  if (ST_UNLIKELY(!st__page_is_block_start(span, p))) small_invalid_pointer(p, span, fn);
  st_tcache_t *tc = st__tls_tcache;
  st_block_t *block = p;
  if (!st__tcache_owns(tc, span)) st__page_free_mt(span, block);
  else if (ST_UNLIKELY(block->key == st__block_key(span))) small_free_marked(tc, span, block, fn);
  else st__tcache_free_local_slow(tc, span, block);
}

/* ---- large ----------------------------------------------------------------------- */

/* The calling thread's shard, or its CPU's when it has no cache (see pageheap.h). */
static st_pageheap_t *calling_thread_heap(void) {
  st_pageheap_t *ph = st__tls_tcache->heap;
  return ph != NULL ? ph : st__pageheap_of_cpu(sched_getcpu());
}

static void *large_alloc(size_t size, size_t align, bool zero) {
  size_t pages = size == 0 ? 1 : st__bytes_to_pages(size);
  /* The sentinels' span caches are always empty (nothing is put there: large_owner). */
  st_tcache_t *tc = st__tls_tcache;
  st_span_t *span = align <= ST_PAGE_SIZE ? st__spancache_take(&tc->spans, pages)
                                          : st__spancache_take_aligned(&tc->spans, pages, align);
  if (span == NULL) span = st__pageheap_alloc(calling_thread_heap(), pages, align, ST_SPAN_LARGE);
  if (span == NULL) return NULL;
  /* Only a cache that may take the span back when its thread frees it is named
   * (large_free_to_stock), never a sentinel nor a hardened thread's cache. */
  span->large_owner = tc->live && !st__page_hardened() ? &tc->owner : NULL;
  count(ST_EVENT_large_allocs);
  st_store_relaxed(&span->xrequested, size);
  if (zero && !span->zeroed) memset(st__span_start(span), 0, size);
  return st__span_start(span);
}

/* A freed LARGE block that its thread's stock did not take (large_free_to_stock) goes
 * back to its page heap. */
static void large_free(st_span_t *span) {
  count(ST_EVENT_large_frees);
  st__pageheap_free(span);
}

/* Shrinks or grows a LARGE span in place; false if it has to move. */
static bool large_resize_in_place(st_span_t *span, size_t size) {
  size_t pages = st__bytes_to_pages(size);
  if (pages == span->pages) return true;
  st_pageheap_t *home = st__pageheap_home(span);
  bool ok = true;
  st__pageheap_lock(home);
  if (pages < span->pages) st__pageheap_shrink_locked(home, span, pages);
  else ok = st__pageheap_grow_locked(home, span, pages);
  st__pageheap_unlock(home);
  return ok;
}

bool st__core_large_grow_guarded(st_span_t *span, size_t size) {
  if (span->kind != ST_SPAN_LARGE || !span->guarded || size > st__core_huge_threshold()) return false;
  size_t pages = st__bytes_to_pages(size);
  if (pages <= span->pages) return false;
  int saved = errno; /* a refused guard is no error of the program's */
  st_pageheap_t *home = st__pageheap_home(span);
  st__pageheap_lock(home);
  bool grown = st__pageheap_grow_guarded_locked(home, span, pages);
  st__pageheap_unlock(home);
  errno = saved;
  if (grown) st_store_relaxed(&span->xrequested, size);
  return grown;
}

void st__core_set_requested(st_span_t *span, size_t size) {
  ST_ASSERT(1, span->kind == ST_SPAN_LARGE || span->kind == ST_SPAN_HUGE);
  st_store_relaxed(&span->xrequested, size);
}

void st__core_count_realloc(bool in_place) {
  count(ST_EVENT_reallocs);
  if (in_place) count(ST_EVENT_reallocs_in_place);
}

static void *huge_alloc(size_t size, size_t align, bool zero) {
  void *p = st__huge_alloc(size, align, zero);
  if (p != NULL) count(ST_EVENT_huge_allocs);
  return p;
}

/* ---- entry points ------------------------------------------------------------------ */

void *st__core_malloc(size_t size, bool zero) {
  if (size <= ST_SMALL_MAX) {
    void *p = st__core_small_alloc(st__size_to_class(size));
    if (zero && p != NULL) memset(p, 0, size);
    return p;
  }
  st__core_ensure_init();
  if (size <= st__core_huge_threshold()) return large_alloc(size, ST_PAGE_SIZE, zero);
  return huge_alloc(size, ST_PAGE_SIZE, zero);
}

void *st__core_malloc_aligned(size_t size, size_t align) {
  count(ST_EVENT_aligned_allocs);
  if (size <= ST_SMALL_MAX && align <= ST_PAGE_SIZE) {
    /* The malloc fast path's pop (no init check: see tcache.h), on a class whose blocks
     * all lie on the boundary. */
    unsigned cls = st__aligned_class(size, align);
    void *block = st__tcache_pop(st__tls_tcache, cls);
    return block != NULL ? block : st__core_small_alloc(cls);
  }
  st__core_ensure_init();
  if (size <= st__core_huge_threshold() && align <= ST_REGION_BYTES / 4)
    return large_alloc(size, align, false);
  return huge_alloc(size, align, false);
}

ST_COLD ST_NOINLINE static void invalid_pointer(const char *fn, const void *p, const st_span_t *span) {
  if (span != NULL && span->kind == ST_SPAN_FREE)
    st__fatal("%s(): double free or invalid pointer %p (its pages are free)", fn, p);
  if (span != NULL && span->start == (uintptr_t)p && st__spancache_holds(span))
    st__fatal("%s(): double free of %p (a freed block of %zu bytes kept for reuse)", fn, p,
              st__span_bytes(span));
  if (span != NULL)
    st__fatal("%s(): invalid pointer %p (inside a block of %zu bytes at %p)", fn, p,
              st__span_bytes(span), (void *)span->start);
  if (st__hugecache_holds(p))
    st__fatal("%s(): double free of %p (a freed huge block kept for reuse)", fn, p);
  if (st__huge_recently_freed(p))
    st__fatal("%s(): double free of %p (a huge block, already unmapped)", fn, p);
  st__fatal("%s(): invalid pointer %p (not allocated by strata)", fn, p);
}

/* span, the pagemap's entry for block p the program passed in (NULL: none), or a
 * diagnostic. */
static st_span_t *checked_span(const void *p, st_span_t *span, const char *fn) {
  if (ST_UNLIKELY(span == NULL || span->kind == ST_SPAN_FREE)) invalid_pointer(fn, p, span);
  if (span->kind != ST_SPAN_SLAB &&
      ST_UNLIKELY(span->start != (uintptr_t)p || st__spancache_holds(span)))
    invalid_pointer(fn, p, span);
  return span;
}

/* The span of a block the program passed in, or a diagnostic: checked_span of its pagemap
 * entry, written out again because gcc 12 compiles the inlined call one instruction longer
 * (a separate NULL test). */
static st_span_t *span_of_block(const void *p, const char *fn) {
  st_span_t *span = st__pagemap_lookup(p);
  if (ST_UNLIKELY(span == NULL || span->kind == ST_SPAN_FREE)) invalid_pointer(fn, p, span);
  if (span->kind != ST_SPAN_SLAB &&
      ST_UNLIKELY(span->start != (uintptr_t)p || st__spancache_holds(span)))
    invalid_pointer(fn, p, span);
  return span;
}

/* A freed LARGE block is kept in the calling thread's stock when that thread allocated it
 * (large_owner: live, not hardened) and the stock takes it. Blocks freed by another thread
 * go back to the page heap, where any thread can reuse them: a server whose threads free
 * each other's blocks otherwise fills every thread's stock with blocks it rarely needs
 * (its peak RSS rose by a fifth). Hardened mode's guard pages and quarantine want every
 * block to go back to the page heap. Tried first, with the checks of span_of_block
 * that a stocked span needs (a pointer into the block, a block already in a stock: both left
 * to the rest of free_pages, which diagnoses them); the stock makes no syscall, so errno
 * needs no saving, and a hit skips the second lookup and the errno dance. In free_pages
 * rather than in st__core_free, whose remote-free path gained 2 instructions from the test. */
static bool large_free_to_stock(void *p, st_span_t *span) {
  st_tcache_t *tc = st__tls_tcache;
  if (span->large_owner != &tc->owner || span->start != (uintptr_t)p || st__spancache_holds(span) ||
      !st__spancache_put(&tc->spans, span))
    return false;
  st__tcache_count(tc, ST_EVENT_large_frees);
  return true;
}

/* Blocks of LARGE and HUGE spans; may make syscalls, which must not change errno. */
ST_NOINLINE static void free_pages_checked(void *p, st_span_t *span, const char *fn) {
  int saved = errno;
  span = span_of_block(p, fn);
  switch ((st_span_kind)span->kind) {
  case ST_SPAN_SLAB: small_free(p, span, fn); break;
  case ST_SPAN_LARGE: large_free(span); break;
  case ST_SPAN_HUGE:
    count(ST_EVENT_huge_frees);
    st__huge_free(span);
    break;
  case ST_SPAN_FREE: invalid_pointer(fn, p, span); break;
  }
  errno = saved;
}

/* The stock first, in a function of its own: a hit then sets up no stack frame. */
ST_NOINLINE static void free_pages(void *p, st_span_t *span, const char *fn) {
  if (span != NULL && span->kind == ST_SPAN_LARGE && large_free_to_stock(p, span)) return;
  free_pages_checked(p, span, fn);
}

void st__core_free(void *p, st_span_t *span, const char *fn) {
  if (p == NULL) return;
  if (ST_LIKELY(span != NULL && span->kind == ST_SPAN_SLAB)) small_free(p, span, fn);
  else free_pages(p, span, fn);
}

static size_t span_usable(const st_span_t *span) {
  switch ((st_span_kind)span->kind) {
  case ST_SPAN_SLAB: return span->block_size;
  case ST_SPAN_LARGE: return st__span_bytes(span);
  case ST_SPAN_HUGE: return span->huge_mapped;
  case ST_SPAN_FREE: break;
  }
  return 0;
}

size_t st__core_usable_size(const void *p, const char *fn) {
  if (p == NULL) return 0;
  return st__core_usable_size_of(p, st__pagemap_lookup(p), fn);
}

size_t st__core_usable_size_of(const void *p, st_span_t *span, const char *fn) {
  span = checked_span(p, span, fn);
  if (span->kind == ST_SPAN_SLAB)
    ST_CHECK(st__page_is_block_start(span, p), "%s(): invalid pointer %p (inside a %u-byte block)",
             fn, p, span->block_size);
  return span_usable(span);
}

/* A huge block that mremap moved counts as in place too: nothing was copied. */
static void *realloced_in_place(void *p) {
  count(ST_EVENT_reallocs_in_place);
  return p;
}

void *st__core_realloc(void *p, size_t size) {
  st_span_t *span = span_of_block(p, "realloc");
  size_t usable = span_usable(span);
  count(ST_EVENT_reallocs);
  switch ((st_span_kind)span->kind) {
  case ST_SPAN_SLAB: /* in place unless shrinking would free at least half the block */
    ST_CHECK(st__page_is_block_start(span, p),
             "realloc(): invalid pointer %p (inside a %u-byte block)", p, span->block_size);
    if (size <= usable && (size >= usable / 2 || usable <= 128)) return realloced_in_place(p);
    break;
  case ST_SPAN_LARGE:
    if (size > ST_SMALL_MAX && size <= st__core_huge_threshold() && large_resize_in_place(span, size)) {
      st_store_relaxed(&span->xrequested, size);
      return realloced_in_place(p);
    }
    break;
  case ST_SPAN_HUGE:
    if (size > st__core_huge_threshold()) {
      void *q = st__huge_resize(span, size);
      return q != NULL ? realloced_in_place(q) : NULL;
    }
    break;
  case ST_SPAN_FREE: break;
  }
  void *q = st__core_malloc(size, false);
  if (q == NULL) return NULL;
  memcpy(q, p, usable < size ? usable : size);
  if (span->kind == ST_SPAN_LARGE) { /* kept resident: growing neighbours take it next */
    count(ST_EVENT_large_frees);
    st__pageheap_free(span);
  } else {
    st__core_free(p, span, "realloc");
  }
  return q;
}

int st__core_trim(void) {
  if (!st__core_initialized()) return 0;
  count(ST_EVENT_trims);
  st_tcache_t *tc = st__tls_tcache;
  if (tc != &st__tcache_empty && st__thread_cache() != NULL) st__tcache_release_empty(tc);
  size_t purged = st__hugecache_release_all();
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *ph = st__pageheap_of_cpu((int)i);
    st__pageheap_lock(ph);
    st__tcache_sweep_abandoned_locked(ph);
    purged += st__pageheap_purge_locked(ph, true);
    st__pageheap_unlock(ph);
  }
  return purged > 0;
}

void st__core_counters(st_core_counters *out) {
  memset(out, 0, sizeof *out);
  out->mapped_bytes = st_load_relaxed(&st__os_counters.xmapped);
  out->purged_bytes = st_load_relaxed(&st__os_counters.xpurged);
  out->huge_allocated = st__huge_count();
  if (!st__core_initialized()) return;
  out->metadata_bytes = st__pagemap_bytes() + st__thread_metadata_bytes();
  out->threads_live = st__thread_live_count();
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *ph = st__pageheap_of_cpu((int)i);
    st__pageheap_lock(ph);
    out->metadata_bytes += ph->metadata_bytes;
    out->spans_allocated += ph->spans_allocated;
    st__pageheap_unlock(ph);
  }
}

bool st__core_validate(void) {
  if (!st__core_initialized()) return true;
  st_tcache_t *tc = st__tls_tcache;
  if (tc != &st__tcache_empty && st__thread_cache() != NULL && !st__tcache_validate(tc)) return false;
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *ph = st__pageheap_of_cpu((int)i);
    st__pageheap_lock(ph);
    bool ok = st__pageheap_validate_locked(ph);
    st__pageheap_unlock(ph);
    if (!ok) return false;
  }
  return true;
}

/* STRATA_VERBOSE: one line at exit that says what strata served. */
__attribute__((destructor)) static void core_report_at_exit(void) {
  if (!st__core_initialized() || st_option(ST_OPTION_VERBOSE) < 1) return;
  st_core_counters c;
  st__core_counters(&c);
  st__report("exit pid=%d spans=%zu huge=%zu mapped=%zu threads=%zu", (int)getpid(),
             c.spans_allocated, c.huge_allocated, c.mapped_bytes, c.threads_live);
}
