/*
 * pageheap.c — the sharded page heaps of free spans (see pageheap.h).
 *
 * Free spans live on exact-length lists (1..256 pages, with a bitmap of non-empty lists
 * for a best-fit search by count-trailing-zeros) or on one list of longer spans, which
 * are few because regions are 64 MiB. A free span's first and last pages are in the
 * pagemap, so a span being freed finds its free neighbours in O(1) and merges with them
 * at once. Dirty free spans also sit on a purge list in the order they became dirty;
 * the purge runs when a heap operation finds it due (no background thread needed) and on
 * st_trim. Memory is never unmapped from a region; purged pages cost no resident memory.
 */
#include "core/pageheap.h"

#include <stddef.h>
#include <string.h>

#include "base/check.h"
#include "base/options.h"
#include "base/valgrind.h"
#include "core/events.h"
#include "core/hugecache.h"
#include "core/pagemap.h"
#include "os/os.h"

#define DESC_CHUNK_BYTES ((size_t)64 << 10)

static st_pageheap_t shards[ST_MAX_SHARDS];
static unsigned shard_count = 1; /* const after init: the shards thread caches are spread over */
/* Shards [0, xshards_ready) have their lists set up, and walks over all shards cover those.
 * A shard is set up when a thread cache is first given it, round-robin and so in index
 * order: its list heads are 5 KiB, and setting up every shard at start made 64 shards (a
 * 64-CPU machine) 324 KiB resident in every process. grow_lock: setting up; taken under the
 * registry and orphan locks (thread.c), and before the shard locks (st__pageheap_lock_all). */
static st_atomic_int xshards_ready;
static st_lock_t grow_lock = ST_LOCK_INIT;

static unsigned default_shard_count(void) { return st__os_cpu_count(); }

static void shard_set_up(st_pageheap_t *ph, unsigned index) {
  ph->index = (uint8_t)index;
  for (size_t k = 0; k < ST_FREE_EXACT_PAGES; k++) st_list_init(&ph->free_exact[k]);
  for (size_t k = 0; k < ST_NUM_CLASSES; k++) st_list_init(&ph->abandoned[k]);
  st_list_init(&ph->free_large);
  st_list_init(&ph->dirty);
  ph->next_purge_ms = UINT64_MAX;
  ph->initialized = true;
}

/* Shard `index`, set up with every shard below it if it was not. */
static st_pageheap_t *shard_ready(unsigned index) {
  if (index >= (unsigned)st_load_acquire(&xshards_ready)) {
    st_lock_acquire(&grow_lock);
    for (unsigned i = (unsigned)st_load_relaxed(&xshards_ready); i <= index; i++) {
      shard_set_up(&shards[i], i);
      st_store_release(&xshards_ready, (int)i + 1);
    }
    st_lock_release(&grow_lock);
  }
  return &shards[index];
}

void st__pageheap_init(void) {
  long configured = st_option(ST_OPTION_SHARDS);
  unsigned n = configured > 0 ? (unsigned)configured : default_shard_count();
  if (n > ST_MAX_SHARDS) n = ST_MAX_SHARDS;
  shard_count = n;
  (void)shard_ready(0);
}

unsigned st__pageheap_shard_count(void) { return (unsigned)st_load_acquire(&xshards_ready); }

st_pageheap_t *st__pageheap_of_cpu(int cpu) {
  /* Among the shards set up: setting up the CPU's own would set up every one below it. */
  unsigned ready = st__pageheap_shard_count();
  unsigned index = cpu < 0 || ready == 0 ? 0 : (unsigned)cpu % ready;
  return &shards[index];
}

st_pageheap_t *st__pageheap_for_new_cache(void) {
  static st_atomic_size xcaches_assigned;
  return shard_ready((unsigned)(st_fetch_add_relaxed(&xcaches_assigned, 1) % shard_count));
}

st_pageheap_t *st__pageheap_home(const st_span_t *span) {
  return &shards[st_load_relaxed(&span->xshard)];
}

/* ---- descriptors --------------------------------------------------------------------- */

st_span_t *st__pageheap_desc_alloc_locked(st_pageheap_t *ph) {
  st_span_t *d = ph->desc_free;
  if (d != NULL) {
    ph->desc_free = d->reclaim_next;
  } else {
    if (ph->desc_cursor == NULL || ph->desc_cursor + ST_SPAN_DESC_STRIDE > ph->desc_end) {
      char *chunk = st__os_map_aligned(DESC_CHUNK_BYTES, ST_PAGE_SIZE);
      if (chunk == NULL) return NULL;
      ST_VG_HIDE_METADATA(chunk, DESC_CHUNK_BYTES);
      ph->metadata_bytes += DESC_CHUNK_BYTES;
      ph->desc_cursor = chunk;
      ph->desc_end = chunk + DESC_CHUNK_BYTES;
    }
    d = (st_span_t *)ph->desc_cursor;
    ph->desc_cursor += ST_SPAN_DESC_STRIDE;
    st_store_relaxed(&d->xshard, ph->index);
  }
  /* Everything but xshard: a neighbouring shard may be reading it (is_free_neighbour). */
  size_t at = offsetof(st_span_t, xshard), after = at + sizeof d->xshard;
  memset(d, 0, at);
  memset((char *)d + after, 0, sizeof *d - after);
  return d;
}

void st__pageheap_desc_free_locked(st_pageheap_t *ph, st_span_t *span) {
  ST_ASSERT(1, st_load_relaxed(&span->xshard) == ph->index);
  span->kind = ST_SPAN_FREE;
  span->pages = 0;
  span->reclaim_next = ph->desc_free;
  ph->desc_free = span;
}

/* ---- free lists -------------------------------------------------------------------- */

static uintptr_t last_page(const st_span_t *s) { return s->start + st__pages_to_bytes(s->pages - 1); }

/* ---- guard pages (hardened mode) ----------------------------------------------------- */

/* A freed span keeps its guard (`guarded`: its last page is PROT_NONE) while it waits in
 * the page heap, and alloc_locked hands it out with the guard when it goes out whole, at
 * its own length: the next slab span of that class, or the next LARGE block of that size,
 * then costs no mprotect, which takes the process's mmap lock for writing and stalls every
 * other thread's page faults (`threads 10 2` made 13,000 such calls with a set and a lift
 * per span). Whoever takes a span settles its guard (page.c for slab spans, harden.c for
 * LARGE blocks). The guard belongs to the span's last page, so it stays with the upper
 * part when a span is split (split_off) and with the merged span when a free span below
 * joins it (may_merge): carving a span out of a guarded one lifts nothing. Only a guarded
 * span merges with nothing above it, until it is handed out whole or st_trim purges it. */
bool st__pageheap_guard(st_span_t *s, bool on) {
  if (s->guarded == on) return true;
  if (!st__os_protect((char *)last_page(s), ST_PAGE_SIZE, !on)) {
    if (on) return false; /* out of mappings (vm.max_map_count): the caller goes without */
    st__fatal("heap: cannot lift the guard page of the span at %p", (void *)s->start);
  }
  s->guarded = on;
  return true;
}

static void map_free_bounds(st_span_t *s) {
  st__pagemap_set_one(s->start, s);
  st__pagemap_set_one(last_page(s), s);
}

static void unmap_free_bounds(st_span_t *s) {
  st__pagemap_set_one(s->start, NULL);
  st__pagemap_set_one(last_page(s), NULL);
}

/* Bit i of xdirty_first: set iff free_exact[i] starts with a dirty span, which, the dirty
 * spans going first, is iff the list holds one. Inserting a dirty span sets it; only taking
 * a dirty span out can clear it (the next one may be clean), and inserting or taking out a
 * clean one changes nothing. */
static void exact_list_set_dirty_first(st_pageheap_t *ph, size_t i) {
  uint64_t bit = (uint64_t)1 << (i % 64), word = st_load_relaxed(&ph->xdirty_first[i / 64]);
  if ((word & bit) == 0) st_store_relaxed(&ph->xdirty_first[i / 64], word | bit);
}

static void exact_list_dirty_span_removed(st_pageheap_t *ph, size_t i) {
  st_list_t *list = &ph->free_exact[i];
  if (!st_list_empty(list) && ST_CONTAINER_OF(list->next, st_span_t, link)->dirty_pages != 0) return;
  uint64_t bit = (uint64_t)1 << (i % 64), word = st_load_relaxed(&ph->xdirty_first[i / 64]);
  st_store_relaxed(&ph->xdirty_first[i / 64], word & ~bit);
}

/* The word of xdirty_first after the exact lists' bits: the count of dirty spans on
 * free_large (written under the lock, so a relaxed load and store update it). */
#define DIRTY_LONG_WORD (ST_FREE_EXACT_PAGES / 64)

static uint64_t dirty_long_spans(st_pageheap_t *ph) {
  return st_load_relaxed(&ph->xdirty_first[DIRTY_LONG_WORD]);
}

static void long_list_count_dirty(st_pageheap_t *ph, int64_t delta) {
  st_store_relaxed(&ph->xdirty_first[DIRTY_LONG_WORD], dirty_long_spans(ph) + (uint64_t)delta);
}

static void free_list_insert(st_pageheap_t *ph, st_span_t *s) {
  ST_ASSERT(1, s->kind == ST_SPAN_FREE);
  if (s->pages <= ST_FREE_EXACT_PAGES) {
    size_t i = s->pages - 1;
    if (s->dirty_pages != 0) {
      st_list_push_front(&ph->free_exact[i], &s->link);
      exact_list_set_dirty_first(ph, i);
    } else {
      st_list_push_back(&ph->free_exact[i], &s->link);
    }
    ph->nonempty[i / 64] |= (uint64_t)1 << (i % 64);
  } else {
    st_list_push_front(&ph->free_large, &s->link);
    if (s->dirty_pages != 0) long_list_count_dirty(ph, 1);
  }
  ph->free_pages += s->pages;
  if (s->dirty_pages != 0) {
    st_list_push_back(&ph->dirty, &s->dirty_link);
    s->on_dirty_list = 1;
    ph->dirty_pages += s->dirty_pages;
  }
}

static void free_list_remove(st_pageheap_t *ph, st_span_t *s) {
  st_list_remove(&s->link);
  if (s->pages <= ST_FREE_EXACT_PAGES) {
    size_t i = s->pages - 1;
    if (st_list_empty(&ph->free_exact[i])) ph->nonempty[i / 64] &= ~((uint64_t)1 << (i % 64));
    if (s->on_dirty_list) exact_list_dirty_span_removed(ph, i);
  } else if (s->on_dirty_list) {
    long_list_count_dirty(ph, -1);
  }
  ph->free_pages -= s->pages;
  if (s->on_dirty_list) {
    st_list_remove(&s->dirty_link);
    s->on_dirty_list = 0;
    ph->dirty_pages -= s->dirty_pages;
  }
}

/* How many of the most recently dirtied free spans find_free looks at first. */
#define DIRTY_FIRST_SCAN 16

/* Whether `pages` pages starting on an `align` boundary (a power of two, at least a page)
 * lie inside s. */
static bool holds_aligned(const st_span_t *s, size_t pages, size_t align) {
  uintptr_t first = st_align_up(s->start, align);
  return first >= s->start && first - s->start + st__pages_to_bytes(pages) <= st__span_bytes(s);
}

/* Whether free span a suits a request better than b (both hold it): the shorter. A
 * guarded span costs nothing more to carve from (its guard stays with the rest). */
static bool fits_better(const st_span_t *a, const st_span_t *b) { return a->pages < b->pages; }

/* The shortest of the most recently dirtied free spans that holds `pages` pages on an
 * `align` boundary, or NULL. The boundary is looked for inside each span rather than
 * asking for `pages` plus the alignment's slack: a 64 KiB block on a 2 MiB boundary would
 * otherwise need a 2 MiB free span, which the resident spans freed by such small blocks
 * never are, and every aligned block came from fresh pages (4 times the page faults). */
static st_span_t *find_dirty(st_pageheap_t *ph, size_t pages, size_t align) {
  st_span_t *best = NULL;
  unsigned seen = 0;
  for (st_list_t *pos = ph->dirty.prev; pos != &ph->dirty && seen < DIRTY_FIRST_SCAN;
       pos = pos->prev, seen++) {
    st_span_t *s = ST_CONTAINER_OF(pos, st_span_t, dirty_link);
    if (s->pages >= pages && (best == NULL || fits_better(s, best)) &&
        holds_aligned(s, pages, align))
      best = s;
  }
  return best;
}

/* Whether the shard holds a dirty free span of at least `pages` pages (relaxed reads: other
 * shards ask without its lock, and an answer that is stale by then only costs a search; a
 * dirty span on free_large may be shorter than a request of more than 256 pages). */
static bool holds_dirty_span(st_pageheap_t *ph, size_t pages) {
  if (dirty_long_spans(ph) != 0) return true;
  if (pages > ST_FREE_EXACT_PAGES) return false;
  size_t first = pages - 1;
  for (size_t w = first / 64; w < DIRTY_LONG_WORD; w++) {
    uint64_t bits = st_load_relaxed(&ph->xdirty_first[w]);
    if (w == first / 64) bits &= ~(uint64_t)0 << (first % 64);
    if (bits != 0) return true;
  }
  return false;
}

/* The shortest free span of at least `pages` pages (alignment slack included), only a dirty
 * one when `dirty`: the first span of the shortest list that has one (a list's dirty spans
 * go first), else the shortest such span among the long ones. */
static st_span_t *find_best_fit(st_pageheap_t *ph, size_t pages, bool dirty) {
  if (pages <= ST_FREE_EXACT_PAGES) {
    size_t first = pages - 1;
    for (size_t w = first / 64; w < ST_ARRAY_LEN(ph->nonempty); w++) {
      uint64_t bits = dirty ? st_load_relaxed(&ph->xdirty_first[w]) : ph->nonempty[w];
      if (w == first / 64) bits &= ~(uint64_t)0 << (first % 64);
      if (bits != 0) {
        st_list_t *list = &ph->free_exact[w * 64 + st_ctz64(bits)];
        return ST_CONTAINER_OF(list->next, st_span_t, link);
      }
    }
  }
  if (dirty && dirty_long_spans(ph) == 0) return NULL;
  st_span_t *best = NULL;
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &ph->free_large) {
    st_span_t *s = ST_CONTAINER_OF(pos, st_span_t, link);
    if (s->pages >= pages && (!dirty || s->dirty_pages != 0) && (best == NULL || s->pages < best->pages))
      best = s;
  }
  return best;
}

/* A free span that may be resident and holds `pages` pages on an `align` boundary, or NULL:
 * the shortest of the spans recently freed (no page fault to reuse them, no RSS), else the
 * shortest dirty span with room for the alignment's slack. Taking a clean span while a dirty
 * one fits grows RSS by the clean span's pages: a program cycling through 40 MiB ended at
 * 67 MiB resident that way. The dirty spans that the recent ones leave out are holes between
 * live spans, which would otherwise stay resident and unused while clean pages are taken. */
static st_span_t *find_resident(st_pageheap_t *ph, size_t pages, size_t align) {
  /* The most recently freed span of exactly this length, when still dirty, is the best fit
   * among the resident ones: no need to walk the purge list for it. */
  if (pages <= ST_FREE_EXACT_PAGES && !st_list_empty(&ph->free_exact[pages - 1])) {
    st_span_t *exact = ST_CONTAINER_OF(ph->free_exact[pages - 1].next, st_span_t, link);
    if (exact->dirty_pages != 0 && holds_aligned(exact, pages, align)) return exact;
  }
  st_span_t *dirty = find_dirty(ph, pages, align);
  return dirty != NULL ? dirty : find_best_fit(ph, pages + align / ST_PAGE_SIZE - 1, true);
}

/* Resident memory first (find_resident), then the shortest free span at all. */
static st_span_t *find_free(st_pageheap_t *ph, size_t pages, size_t align) {
  st_span_t *resident = find_resident(ph, pages, align);
  return resident != NULL ? resident : find_best_fit(ph, pages + align / ST_PAGE_SIZE - 1, false);
}

/* Cuts the free span s (already off the lists) after `pages` pages; returns the rest as
 * a new free span off the lists, or NULL when no descriptor could be had. */
static st_span_t *split_off(st_pageheap_t *ph, st_span_t *s, size_t pages) {
  st_span_t *rest = st__pageheap_desc_alloc_locked(ph);
  if (rest == NULL) return NULL;
  rest->kind = ST_SPAN_FREE;
  rest->start = s->start + st__pages_to_bytes(pages);
  rest->pages = s->pages - pages;
  /* Where the dirty pages lie is not known: each part keeps the bound that fits it. */
  rest->dirty_pages = s->dirty_pages < rest->pages ? s->dirty_pages : rest->pages;
  if (s->dirty_pages > pages) s->dirty_pages = pages;
  rest->lazily_purged = s->lazily_purged;
  rest->freed_at_ms = s->freed_at_ms;
  rest->guarded = s->guarded; /* the guard is the last page: it goes with the upper part */
  s->guarded = 0;
  s->pages = pages;
  return rest;
}

/* True if `n` is a free span of this shard (its shard is read first: other shards never
 * write it). */
static bool is_free_neighbour(st_pageheap_t *ph, const st_span_t *n) {
  return n != NULL && st_load_relaxed(&n->xshard) == ph->index && n->kind == ST_SPAN_FREE &&
         n->pages != 0;
}

/* Whether free neighbours `lower` and `upper` (right after it) may merge: both dirty or
 * both clean, and no guard page would end up inside the merged span (a guarded `upper`
 * passes its guard on: it stays the last page). A merged span does not know where its
 * dirty pages lie, so an allocation carved from it could take the clean part and leave the
 * dirty part resident and unused: a program cycling through the same amount of memory grew
 * by 70% after each partial purge that way. Dirty memory stays in dirty spans, which best
 * fit then reuses, and joins its clean neighbours once purged. */
static bool may_merge(const st_span_t *lower, const st_span_t *upper) {
  return (lower->dirty_pages != 0) == (upper->dirty_pages != 0) && !lower->guarded;
}

/* Merges the listed free span `gone`, adjacent to the off-list free span `keep` on either
 * side, into `keep`. */
static void absorb_listed(st_pageheap_t *ph, st_span_t *keep, st_span_t *gone) {
  free_list_remove(ph, gone);
  unmap_free_bounds(gone);
  if (gone->start < keep->start) keep->start = gone->start;
  else keep->guarded = gone->guarded; /* the upper span's last page ends the merged one */
  keep->pages += gone->pages;
  keep->dirty_pages += gone->dirty_pages;
  keep->lazily_purged |= gone->lazily_purged;
  if (gone->freed_at_ms > keep->freed_at_ms) keep->freed_at_ms = gone->freed_at_ms;
  st__pageheap_desc_free_locked(ph, gone);
}

/* Merges the off-list free span s with free neighbours, then lists it. */
static void insert_coalesced(st_pageheap_t *ph, st_span_t *s) {
  st_span_t *left = s->start >= ST_PAGE_SIZE
                        ? st__pagemap_lookup_acquire((void *)(s->start - ST_PAGE_SIZE))
                        : NULL;
  if (is_free_neighbour(ph, left) && may_merge(left, s) && st__span_end(left) == s->start)
    absorb_listed(ph, s, left);
  st_span_t *right = st__pagemap_lookup_acquire((void *)st__span_end(s));
  if (is_free_neighbour(ph, right) && may_merge(s, right) && right->start == st__span_end(s))
    absorb_listed(ph, s, right);
  map_free_bounds(s);
  free_list_insert(ph, s);
}

/* ---- regions and purging ------------------------------------------------------------ */

static st_span_t *grow_locked(st_pageheap_t *ph, size_t pages) {
  size_t need = st__pages_to_bytes(pages);
  size_t bytes = need > ST_REGION_BYTES ? st_align_up(need, ST_REGION_ALIGN) : ST_REGION_BYTES;
  st__hugecache_release_all(); /* cached huge mappings never coexist with new memory */
  void *region = st__os_map_aligned(bytes, ST_REGION_ALIGN);
  if (region == NULL && bytes > need) { /* e.g. RLIMIT_AS: settle for what is needed */
    bytes = need;
    region = st__os_map_aligned(bytes, ST_PAGE_SIZE);
  }
  if (region == NULL) return NULL;
  st_span_t *s = st__pageheap_desc_alloc_locked(ph);
  if (s == NULL || !st__pagemap_reserve((uintptr_t)region, st__bytes_to_pages(bytes))) {
    if (s != NULL) st__pageheap_desc_free_locked(ph, s);
    st__os_unmap(region, bytes);
    return NULL;
  }
  ph->reserved_bytes += bytes;
  s->kind = ST_SPAN_FREE;
  s->start = (uintptr_t)region;
  s->pages = st__bytes_to_pages(bytes);
  insert_coalesced(ph, s);
  return find_free(ph, pages, ST_PAGE_SIZE);
}

/* A program whose memory in use collapses (to under 1/COLLAPSE_RATIO of a recent peak of
 * at least COLLAPSE_MIN_BYTES) is shrinking, not cycling: its dirty memory beyond
 * max(STRATA_PURGE_RETAIN_KB, 1/8 of the pages in use) is purged at once, so resident
 * memory follows live memory while it frees, without a background thread. A heap that
 * cycles through less than that keeps its dirty memory for reuse until the delay passes
 * and the recent peak falls (regrow_pages), so alloc/free cycles do not fault their pages in
 * again and again. The ratio is 1/32 rather than 1/8: a program moving between phases
 * (192 MiB, then 8 MiB, then 96 MiB in footprint-mixed) fell below 1/8 and faulted the
 * ~190 MB purged at once in again (106,000 page faults against 57,500; CPU time 1.9x),
 * while a program that frees nearly everything (tests/memory) falls below both. */
#define COLLAPSE_MIN_BYTES ((size_t)64 << 20)
#define COLLAPSE_RATIO 32


/* Pages in LARGE and SLAB spans of all shards, and their most in the current window of
 * PEAK_WINDOW_MS and in the window before it (relaxed: figures for a policy, never for
 * synchronisation). */
static st_atomic_size xpages_in_use, xpeak_window, xpeak_previous;
static _Atomic(uint64_t) xpeak_window_end_ms;

/* The most pages in use over the last one to two windows. */
static size_t recent_peak(void) {
  size_t window = st_load_relaxed(&xpeak_window), previous = st_load_relaxed(&xpeak_previous);
  return window > previous ? window : previous;
}

static void in_use_add(size_t pages) {
  st_counter_add(&xpages_in_use, pages);
  st__events_in_use_add(st__pages_to_bytes(pages));
}
static void in_use_sub(size_t pages) {
  st_counter_sub(&xpages_in_use, pages);
  st__events_in_use_sub(st__pages_to_bytes(pages));
}

static size_t dirty_budget_pages(void) {
  size_t in_use = st_load_relaxed(&xpages_in_use), peak = recent_peak();
  if (peak < (COLLAPSE_MIN_BYTES >> ST_PAGE_SHIFT) || in_use >= peak / COLLAPSE_RATIO) return SIZE_MAX;
  size_t retain = ((size_t)st_option(ST_OPTION_PURGE_RETAIN_KB) << 10) >> ST_PAGE_SHIFT;
  return in_use / 8 > retain ? in_use / 8 : retain;
}

/* Dirty pages a shard keeps even when they are older than the delay: what the heap may
 * grow back to, the recent peak of pages in use less those in use now. A program that
 * shrinks and grows again (a pause, then the next batch) reuses its resident pages
 * instead of faulting in the ones the delay purged while it paused: footprint-growshrink
 * took 3.5 times the CPU time of glibc that way. The peak forgets what is older than two
 * windows (track_peak), so a heap that stays small is still purged.
 * At least 1/KEEP_SLACK_DIVISOR of the pages in use stays too: where the free spans are the
 * holes between live large blocks (random sizes from 16 KiB up, say), each hole was purged
 * a delay after it opened and faulted in again when a block filled it: threads-32 made
 * 20,800 madvise calls that way, 2,700 with the slack. A heap that empties keeps none. */
#define KEEP_SLACK_DIVISOR 8

static size_t regrow_pages(void) {
  size_t in_use = st_load_relaxed(&xpages_in_use), peak = recent_peak();
  size_t slack = in_use / KEEP_SLACK_DIVISOR;
  return peak > in_use + slack ? peak - in_use : slack;
}

/* The peak is the most over two windows rather than a decaying maximum: one that halved
 * every 2 s purged half of a heap that shrinks and grows back every 0.6 s at each halving
 * (footprint-growshrink: 117,000 page faults against 77,000, 3.9 s against 3.15 s). A
 * window is longer than a program takes to free a large heap, so the collapse is seen while
 * it frees; a heap that stays small is purged two windows and a delay later. */
#define PEAK_WINDOW_MS 2000

static void track_peak(uint64_t now) {
  size_t in_use = st_load_relaxed(&xpages_in_use), window = st_load_relaxed(&xpeak_window);
  uint64_t end = st_load_relaxed(&xpeak_window_end_ms);
  if (now >= end) { /* a window closed; after a longer quiet time only in_use is known */
    st_store_relaxed(&xpeak_previous, now >= end + PEAK_WINDOW_MS ? in_use : window);
    st_store_relaxed(&xpeak_window_end_ms, now + PEAK_WINDOW_MS);
    window = 0;
  }
  st_store_relaxed(&xpeak_window, in_use > window ? in_use : window);
}

typedef enum purge_mode {
  PURGE_DUE,         /* spans dirty for longer than the delay */
  PURGE_OVER_BUDGET, /* and the oldest others until half the budget is left */
  PURGE_ALL,         /* everything (st_trim) */
} purge_mode;

static size_t purge_locked(st_pageheap_t *ph, purge_mode mode) {
  long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
  bool lazy = st_option(ST_OPTION_PURGE_LAZY) != 0;
  uint64_t now = st__os_now_ms();
  size_t budget = dirty_budget_pages(), purged = 0, keep = regrow_pages();
  if (budget == SIZE_MAX) budget = ph->dirty_pages * 2; /* no budget: nothing is over it */
  bool failed = false;
  while (!st_list_empty(&ph->dirty)) {
    st_span_t *s = ST_CONTAINER_OF(ph->dirty.next, st_span_t, dirty_link);
    bool due = delay >= 0 && s->freed_at_ms + (uint64_t)delay <= now && ph->dirty_pages > keep;
    bool over = mode == PURGE_OVER_BUDGET && ph->dirty_pages > budget / 2;
    if (mode != PURGE_ALL && !due && !over) break;
    if (!st__os_purge(st__span_start(s), st__span_bytes(s), lazy)) {
      failed = true; /* the kernel refused: the span stays dirty, try again later */
      break;
    }
    purged += st__span_bytes(s);
    free_list_remove(ph, s);
    unmap_free_bounds(s);
    if (mode == PURGE_ALL) st__pageheap_guard(s, false); /* st_trim: let memory coalesce */
    s->dirty_pages = 0;
    s->lazily_purged = lazy;
    insert_coalesced(ph, s); /* now clean: joins its clean neighbours */
  }
  if (failed) {
    ph->next_purge_ms = now + (delay > 0 ? (uint64_t)delay : 1000);
  } else if (st_list_empty(&ph->dirty) || delay < 0) {
    ph->next_purge_ms = UINT64_MAX;
  } else {
    st_span_t *oldest = ST_CONTAINER_OF(ph->dirty.next, st_span_t, dirty_link);
    uint64_t next = oldest->freed_at_ms + (uint64_t)delay;
    /* Due but kept (regrow_pages): look again a delay later, as old windows are forgotten. */
    ph->next_purge_ms = next > now ? next : now + (delay > 0 ? (uint64_t)delay : 1);
  }
  return purged;
}

size_t st__pageheap_purge_locked(st_pageheap_t *ph, bool all) {
  return purge_locked(ph, all ? PURGE_ALL : PURGE_DUE);
}

/* Set when one shard found the heap collapsed: the others may hold dirty memory of the
 * same program phase and no further activity to purge it (st__pageheap_free sees to it). */
static st_atomic_int xcollapse_seen;

/* check_collapse: only the release of slab spans looks for a collapse. A heap of many small
 * blocks that empties is a program shrinking; large blocks come and go in big steps, and
 * purging them at once would fault their pages in again at the next step. */
static void purge_if_due(st_pageheap_t *ph, uint64_t now, bool check_collapse) {
  track_peak(now);
  st__hugecache_release_due(now);
  if (check_collapse && ph->dirty_pages > dirty_budget_pages()) {
    purge_locked(ph, PURGE_OVER_BUDGET);
    st_store_relaxed(&xcollapse_seen, 1);
  } else if (now >= ph->next_purge_ms) {
    purge_locked(ph, PURGE_DUE);
  }
}

/* ---- allocation and release ---------------------------------------------------------- */

static void map_in_use(st_span_t *s) {
  if (s->kind == ST_SPAN_SLAB) st__pagemap_set(s->start, s->pages, s);
  else st__pagemap_set_one(s->start, s);
}

/* Where alloc_locked may take a span from. */
typedef enum alloc_source {
  FROM_RESIDENT,    /* only a free span that may be resident (lent to another shard) */
  FROM_FREE,        /* any free span (for another shard when the kernel refuses memory) */
  FROM_FREE_OR_NEW, /* any free span, else a region newly mapped for the shard */
} alloc_source;

/* Whether another shard holds a dirty span of at least `pages` pages. */
static bool other_shard_lends(const st_pageheap_t *ph, size_t pages) {
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    if (&shards[i] != ph && holds_dirty_span(&shards[i], pages)) return true;
  }
  return false;
}

/* With *borrow (not NULL, FROM_FREE_OR_NEW): nothing is taken and *borrow is set when the
 * shard holds no resident span that fits and another shard does (st__pageheap_alloc). */
static st_span_t *alloc_locked(st_pageheap_t *ph, size_t pages, size_t align, st_span_kind kind,
                               alloc_source from, bool *borrow) {
  if (align < ST_PAGE_SIZE) align = ST_PAGE_SIZE;
  size_t need = pages + (align / ST_PAGE_SIZE - 1);
  if (pages == 0 || need < pages || need > ((size_t)1 << (47 - ST_PAGE_SHIFT))) return NULL;
  /* A lender hands out the shortest dirty span that fits: its own recent ones are as
   * likely to be reused by its threads as any. */
  st_span_t *s = from == FROM_RESIDENT ? find_best_fit(ph, need, true) : find_resident(ph, pages, align);
  if (s == NULL && from != FROM_RESIDENT) {
    if (borrow != NULL && st__pageheap_shard_count() > 1 && other_shard_lends(ph, need)) {
      *borrow = true;
      return NULL;
    }
    s = find_best_fit(ph, need, false);
  }
  if (s == NULL && (from != FROM_FREE_OR_NEW || (s = grow_locked(ph, need)) == NULL)) return NULL;
  free_list_remove(ph, s);
  unmap_free_bounds(s);
  size_t head = (st_align_up(s->start, align) - s->start) >> ST_PAGE_SHIFT;
  if (head != 0) {
    st_span_t *rest = split_off(ph, s, head);
    if (rest == NULL) goto no_descriptor;
    insert_coalesced(ph, s);
    s = rest;
  }
  if (s->pages > pages) {
    st_span_t *rest = split_off(ph, s, pages);
    if (rest == NULL) goto no_descriptor;
    insert_coalesced(ph, rest);
  }
  s->kind = (uint8_t)kind;
  in_use_add(s->pages);
  /* Pages that are not resident fault in fresh: cached huge mappings go first. */
  if (s->dirty_pages == 0) st__hugecache_release_all();
  s->zeroed = s->dirty_pages == 0 && !s->lazily_purged;
  s->dirty_pages = 0;
  s->lazily_purged = 0;
  map_in_use(s);
  ph->spans_allocated++;
  purge_if_due(ph, st__os_now_ms(), false);
  return s;
no_descriptor:
  insert_coalesced(ph, s);
  return NULL;
}

st_span_t *st__pageheap_alloc_locked(st_pageheap_t *ph, size_t pages, size_t align,
                                     st_span_kind kind) {
  return alloc_locked(ph, pages, align, kind, FROM_FREE_OR_NEW, NULL);
}

/* Resident memory that another shard's threads freed, lent before this shard takes clean
 * pages. Each shard otherwise reuses only what its own threads free, and a shard short of
 * dirty spans of some length faults in fresh pages while another holds such spans resident
 * and unused: with 4 threads over 2 shards, `threads 100 4` took 550 more clean pages
 * (2.2 MiB) than with one shard (docs/memory.md, "Shards"). The lender's published bitmap of
 * dirty spans (xdirty_first) says whether it holds one that fits, so a shard is asked only
 * when the answer is likely yes; a busy one is skipped (trylock): no thread waits for
 * another shard's lock here. The span stays its home shard's (xshard), where its free goes. */
static st_span_t *alloc_resident_elsewhere(st_pageheap_t *ph, size_t pages, size_t align,
                                           st_span_kind kind) {
  size_t need = pages + (align > ST_PAGE_SIZE ? align / ST_PAGE_SIZE - 1 : 0);
  st_span_t *s = NULL;
  for (unsigned i = 0; s == NULL && i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *other = &shards[i];
    if (other == ph || !holds_dirty_span(other, need) || !st_lock_try_acquire(&other->lock)) continue;
    s = alloc_locked(other, pages, align, kind, FROM_RESIDENT, NULL);
    st__pageheap_unlock(other);
  }
  return s;
}

st_span_t *st__pageheap_alloc(st_pageheap_t *ph, size_t pages, size_t align, st_span_kind kind) {
  bool borrow = false;
  st__pageheap_lock(ph);
  st_span_t *s = alloc_locked(ph, pages, align, kind, FROM_FREE_OR_NEW, &borrow);
  st__pageheap_unlock(ph);
  if (borrow && (s = alloc_resident_elsewhere(ph, pages, align, kind)) == NULL) {
    st__pageheap_lock(ph);
    s = alloc_locked(ph, pages, align, kind, FROM_FREE_OR_NEW, NULL);
    st__pageheap_unlock(ph);
  }
  /* The kernel refused this shard more memory: use what the other shards hold free, then
   * give all free address space back and try once more (RLIMIT_AS, overcommit limits). */
  for (unsigned i = 0; s == NULL && i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *other = &shards[i];
    if (other == ph) continue;
    st__pageheap_lock(other);
    s = alloc_locked(other, pages, align, kind, FROM_FREE, NULL);
    st__pageheap_unlock(other);
  }
  if (s == NULL && st__pageheap_unmap_free() > 0) {
    st__pageheap_lock(ph);
    s = alloc_locked(ph, pages, align, kind, FROM_FREE_OR_NEW, NULL);
    st__pageheap_unlock(ph);
  }
  return s;
}

/* Unmaps every free span of the shard; returns the bytes given back. */
static size_t unmap_free_locked(st_pageheap_t *ph) {
  size_t bytes = 0;
  st_list_t *lists[ST_FREE_EXACT_PAGES + 1];
  for (size_t i = 0; i < ST_FREE_EXACT_PAGES; i++) lists[i] = &ph->free_exact[i];
  lists[ST_FREE_EXACT_PAGES] = &ph->free_large;
  for (size_t i = 0; i < ST_ARRAY_LEN(lists); i++) {
    while (!st_list_empty(lists[i])) {
      st_span_t *s = ST_CONTAINER_OF(lists[i]->next, st_span_t, link);
      free_list_remove(ph, s);
      unmap_free_bounds(s);
      s->guarded = 0; /* the unmapping takes the guard with it */
      st__os_unmap(st__span_start(s), st__span_bytes(s));
      bytes += st__span_bytes(s);
      ph->reserved_bytes -= st__span_bytes(s);
      st__pageheap_desc_free_locked(ph, s);
    }
  }
  return bytes;
}

size_t st__pageheap_unmap_free(void) {
  size_t bytes = 0;
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    st__pageheap_lock(&shards[i]);
    bytes += unmap_free_locked(&shards[i]);
    st__pageheap_unlock(&shards[i]);
  }
  return bytes;
}

static void purge_every_shard_over_budget(void) {
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *ph = &shards[i];
    st__pageheap_lock(ph);
    if (ph->dirty_pages > dirty_budget_pages()) purge_locked(ph, PURGE_OVER_BUDGET);
    st__pageheap_unlock(ph);
  }
}

void st__pageheap_purge_after_collapse(void) {
  if (!st_load_relaxed(&xcollapse_seen) || !st_exchange_acq_rel(&xcollapse_seen, 0)) return;
  purge_every_shard_over_budget();
}

void st__pageheap_purge_if_collapsed(void) {
  if (dirty_budget_pages() == SIZE_MAX) return; /* the heap has not collapsed: no lock taken */
  purge_every_shard_over_budget();
}

void st__pageheap_free(st_span_t *span) {
  st_pageheap_t *home = st__pageheap_home(span);
  st__pageheap_lock(home);
  st__pageheap_free_locked(home, span);
  st__pageheap_unlock(home);
  st__pageheap_purge_after_collapse();
}

void st__pageheap_free_locked(st_pageheap_t *ph, st_span_t *s) {
  ST_ASSERT(1, st_load_relaxed(&s->xshard) == ph->index &&
                  (s->kind == ST_SPAN_SLAB || s->kind == ST_SPAN_LARGE));
  if (s->kind == ST_SPAN_SLAB) st__pagemap_set(s->start, s->pages, NULL);
  else st__pagemap_set_one(s->start, NULL);
  uint64_t now = st__os_now_ms();
  bool was_slab = s->kind == ST_SPAN_SLAB;
  in_use_sub(s->pages);
  s->kind = ST_SPAN_FREE;
  s->dirty_pages = s->pages;
  s->freed_at_ms = now;
  st_store_relaxed(&s->xowner, NULL);
  st_store_relaxed(&s->xfast_thread, 0);
  insert_coalesced(ph, s);
  if (ph->next_purge_ms == UINT64_MAX) {
    long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
    if (delay >= 0) ph->next_purge_ms = now + (uint64_t)delay;
  }
  purge_if_due(ph, now, was_slab);
}

void st__pageheap_shrink_locked(st_pageheap_t *ph, st_span_t *s, size_t keep_pages) {
  ST_ASSERT(1, s->kind == ST_SPAN_LARGE && !s->guarded && keep_pages > 0 && keep_pages < s->pages);
  st_span_t *tail = split_off(ph, s, keep_pages);
  if (tail == NULL) return; /* keep the pages: shrinking is an optimisation */
  in_use_sub(tail->pages);
  tail->dirty_pages = tail->pages;
  tail->freed_at_ms = st__os_now_ms();
  insert_coalesced(ph, tail);
}

/* The free span of this shard that starts at addr, or NULL; with its guard page only when
 * `guarded` allows. */
static st_span_t *free_span_at(st_pageheap_t *ph, uintptr_t addr, bool guarded) {
  st_span_t *n = st__pagemap_lookup_acquire((void *)addr);
  return is_free_neighbour(ph, n) && n->start == addr && (guarded || !n->guarded) ? n : NULL;
}

/* The last of the consecutive free spans right after s that together hold at least
 * `extra` pages, with their count in *found; NULL when a page is missing. */
static st_span_t *free_run_after(st_pageheap_t *ph, const st_span_t *s, size_t extra, size_t *found,
                                 bool guarded) {
  st_span_t *last = NULL;
  *found = 0;
  for (uintptr_t at = st__span_end(s); *found < extra; at = st__span_end(last)) {
    last = free_span_at(ph, at, guarded);
    if (last == NULL) return NULL;
    *found += last->pages;
  }
  return last;
}

/* Cuts the free span `last` (listed) so that it ends `surplus` pages earlier; the cut-off
 * upper part keeps last's guard, if any. False, with nothing changed, when no descriptor
 * could be had. */
static bool trim_free_span(st_pageheap_t *ph, st_span_t *last, size_t surplus) {
  free_list_remove(ph, last);
  unmap_free_bounds(last);
  st_span_t *rest = split_off(ph, last, last->pages - surplus);
  if (rest == NULL) {
    insert_coalesced(ph, last);
    return false;
  }
  insert_coalesced(ph, rest);
  map_free_bounds(last);
  free_list_insert(ph, last);
  return true;
}

/* Free spans of different states lie side by side (see may_merge), so growing in place
 * takes as many consecutive free spans as it needs; only the last one may be split, and it
 * is split before anything is taken, so a missing descriptor leaves s unchanged. */
bool st__pageheap_grow_locked(st_pageheap_t *ph, st_span_t *s, size_t pages) {
  ST_ASSERT(1, s->kind == ST_SPAN_LARGE && !s->guarded && pages > s->pages);
  size_t extra = pages - s->pages, found;
  st_span_t *last = free_run_after(ph, s, extra, &found, false);
  if (last == NULL) return false;
  if (found > extra && !trim_free_span(ph, last, found - extra)) return false;
  while (s->pages < pages) {
    st_span_t *right = free_span_at(ph, st__span_end(s), false);
    free_list_remove(ph, right);
    unmap_free_bounds(right);
    s->pages += right->pages;
    st__pageheap_desc_free_locked(ph, right);
  }
  in_use_add(extra);
  s->zeroed = 0;
  return true;
}

/* The free spans taken may keep guards of their own (hardened blocks freed before, next
 * to each other): those are lifted, an mprotect each, which costs less than moving the
 * block. Every step that can fail comes first: the last span taken is cut to length (its
 * upper part keeps its guard), then the new last page becomes the guard (free when it is
 * the last span's guard already); only then are the guards inside the run lifted, so a
 * failure (no descriptor, no mapping to spare) leaves every free span guarded as before.
 * The old guard is lifted last. */
bool st__pageheap_grow_guarded_locked(st_pageheap_t *ph, st_span_t *s, size_t pages) {
  ST_ASSERT(1, s->kind == ST_SPAN_LARGE && s->guarded && pages > s->pages);
  size_t extra = pages - s->pages, found;
  st_span_t *last = free_run_after(ph, s, extra, &found, true);
  if (last == NULL || (found > extra && !trim_free_span(ph, last, found - extra))) return false;
  char *old_guard = (char *)last_page(s), *new_guard = (char *)last_page(last);
  if (!last->guarded && !st__os_protect(new_guard, ST_PAGE_SIZE, false)) return false;
  last->guarded = 0; /* its last page, PROT_NONE now, becomes s's guard */
  for (st_span_t *n = free_span_at(ph, st__span_end(s), true); n != last;
       n = free_span_at(ph, st__span_end(n), true))
    st__pageheap_guard(n, false);
  s->guarded = 0; /* as st__pageheap_grow_locked wants it: the guard moves below */
  bool grown = st__pageheap_grow_locked(ph, s, pages);
  ST_CHECK(grown, "heap: cannot grow the span at %p over the free pages after it", (void *)s->start);
  if (!st__os_protect(old_guard, ST_PAGE_SIZE, true))
    st__fatal("heap: cannot lift the guard page at %p of the span at %p", (void *)old_guard, (void *)s->start);
  s->guarded = 1;
  return true;
}

/* ---- validation and fork --------------------------------------------------------------- */

static bool check(bool ok, const char *what, const void *addr) {
  if (!ok) st__report("heap validation: pageheap: %s at %p", what, addr);
  return ok;
}

static bool validate_free_span(st_pageheap_t *ph, const st_span_t *s, size_t *pages, size_t *dirty) {
  *pages += s->pages;
  *dirty += s->dirty_pages;
  return check(s->kind == ST_SPAN_FREE, "span on a free list is not free", s) &&
         check(st_load_relaxed(&s->xshard) == ph->index, "free span of another shard", s) &&
         check(st__pagemap_lookup_acquire((void *)s->start) == s, "free span's first page not mapped", s) &&
         check(st__pagemap_lookup_acquire((void *)last_page(s)) == s, "free span's last page not mapped", s) &&
         check((s->dirty_pages != 0) == s->on_dirty_list, "dirty span not on the purge list", s) &&
         check(s->dirty_pages <= s->pages, "more dirty pages than pages", s);
}

bool st__pageheap_validate_locked(st_pageheap_t *ph) {
  size_t pages = 0, dirty = 0;
  st_list_t *pos, *tmp;
  for (size_t i = 0; i < ST_FREE_EXACT_PAGES; i++) {
    bool listed = (ph->nonempty[i / 64] >> (i % 64)) & 1, clean_seen = false;
    bool dirty_first = (st_load_relaxed(&ph->xdirty_first[i / 64]) >> (i % 64)) & 1;
    if (!check(listed == !st_list_empty(&ph->free_exact[i]), "free bitmap disagrees with list", ph) ||
        !check(dirty_first == (listed && ST_CONTAINER_OF(ph->free_exact[i].next, st_span_t, link)->dirty_pages != 0),
               "dirty bitmap disagrees with list", ph))
      return false;
    st_list_for_each_safe(pos, tmp, &ph->free_exact[i]) {
      st_span_t *s = ST_CONTAINER_OF(pos, st_span_t, link);
      if (!check(s->pages == i + 1, "span on the wrong length list", s) ||
          !check(!clean_seen || s->dirty_pages == 0, "dirty span after a clean one", s) ||
          !validate_free_span(ph, s, &pages, &dirty))
        return false;
      clean_seen |= s->dirty_pages == 0;
    }
  }
  size_t dirty_long = 0;
  st_list_for_each_safe(pos, tmp, &ph->free_large) {
    st_span_t *s = ST_CONTAINER_OF(pos, st_span_t, link);
    if (!check(s->pages > ST_FREE_EXACT_PAGES, "short span on the long list", s) ||
        !validate_free_span(ph, s, &pages, &dirty))
      return false;
    dirty_long += s->dirty_pages != 0;
  }
  if (!check(dirty_long_spans(ph) == dirty_long, "dirty long span count drifted", ph))
    return false;
  return check(pages == ph->free_pages, "free page count drifted", ph) &&
         check(dirty == ph->dirty_pages, "dirty page count drifted", ph);
}

void st__pageheap_lock_all(void) {
  st_lock_acquire(&grow_lock); /* the shards set up stay as they are until unlock_all */
  unsigned ready = (unsigned)st_load_relaxed(&xshards_ready);
  for (unsigned i = 0; i < ready; i++) st_lock_acquire(&shards[i].lock);
}

void st__pageheap_unlock_all(void) {
  for (unsigned i = (unsigned)st_load_relaxed(&xshards_ready); i-- > 0;)
    st_lock_release(&shards[i].lock);
  st_lock_release(&grow_lock);
}
