/*
 * tcache.c — slow paths of the per-thread caches (see tcache.h).
 *
 * Refill order, cheapest memory first: remote frees of the current span, its untouched
 * blocks, spans handed back by remote frees (reclaim stack), partial spans, spans
 * abandoned by exited threads on this CPU's shard, and finally a new span from the
 * shard's page heap (the only step that may map memory).
 */
#include "core/tcache.h"

#include <string.h>


#include "base/check.h"
#include "base/options.h"
#include "os/os.h"
#include "core/page.h"

st_span_t st__span_empty = {.free = ST_FREE_LIST_END};
st_tcache_t st__tcache_empty = {.current = {[0 ... ST_NUM_CLASSES - 1] = &st__span_empty}};

void st__tcache_init(st_tcache_t *tc) {
  st_store_relaxed(&tc->owner.xreclaim, NULL);
  tc->owner.fast_thread = 0;
  memcpy(tc->class_of_small, st__class_of_small, sizeof tc->class_of_small);
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    tc->current[c] = &st__span_empty;
    st_list_init(&tc->partial[c]);
    st_list_init(&tc->full[c]);
  }
  memset(&tc->spans, 0, sizeof tc->spans);
  memset(tc->took_span, 0, sizeof tc->took_span);
  tc->idle_classes = 0;
  tc->released_classes = 0;
  tc->kept_classes = 0;
  tc->spans_since_forget = 0;
  tc->heap = st__pageheap_for_new_cache();
}

/* Under the shard lock; others read the count without it to skip empty shards. */
static void abandoned_count_add(st_pageheap_t *ph, long delta) {
  st_store_relaxed(&ph->xabandoned_count, st_load_relaxed(&ph->xabandoned_count) + (size_t)delta);
}

/* The current span carries one extra `used` (a pin) so that freeing its last block on the
 * fast path does not call st__tcache_retire on every malloc/free pair. */
static void set_current(st_tcache_t *tc, st_span_t *span) {
  tc->current[span->size_class] = span;
  st__span_add_used(span, 1);
  st_store_relaxed(&span->xpinned, 1);
}

static void clear_current(st_tcache_t *tc, st_span_t *span) {
  tc->current[span->size_class] = &st__span_empty;
  st__span_add_used(span, -1);
  st_store_relaxed(&span->xpinned, 0);
}

/* A parked span stays on the free fast path of its owner: its free blocks then pile up
 * unseen on its list, and the owner learns that an eighth of the span is free when the
 * fast path's `xused` reaches 0 (st__tcache_retire), because parking moved all but that
 * eighth of the count into `xused_bias`. Unparking it at its first free would hand the
 * next refill a single block, and frees in random order would then cost a park and an
 * unpark per malloc/free pair. */
static void span_bias_used(st_span_t *span) {
  uint32_t used = st__span_used(span), room = span->capacity / 8;
  if (room == 0) room = 1;
  if (used <= room) return;
  st_store_relaxed(&span->xused, room); /* low first: see st__span_used */
  st_store_relaxed(&span->xused_bias, used - room);
}

static void span_unbias_used(st_span_t *span) {
  uint32_t bias = st_load_relaxed(&span->xused_bias);
  st_store_relaxed(&span->xused_bias, 0);
  st__span_add_used(span, (int32_t)bias);
}

static void span_set_owned(st_tcache_t *tc, st_span_t *span) {
  span->in_full = 0;
  span_unbias_used(span);
  st_store_relaxed(&span->xfast_thread, tc->owner.fast_thread);
}

/* Spans that remote frees handed back go from the full lists to the partial lists. */
static void tcache_drain_reclaimed(st_tcache_t *tc) {
  st_span_t *span = st__page_take_reclaimed(&tc->owner);
  while (span != NULL) {
    st_span_t *next = span->reclaim_next;
    span->reclaim_next = NULL;
    if (span->in_full) {
      st_list_remove(&span->link);
      span_set_owned(tc, span);
      st_list_push_back(&tc->partial[span->size_class], &span->link);
    }
    span = next;
  }
}

/* The current span ran dry: park it as full, unless remote frees arrived meanwhile
 * (then it stays current). Returns true if it was parked. */
static bool tcache_park_current(st_tcache_t *tc, st_span_t *span) {
  st__page_wait_not_busy(span);
  tcache_drain_reclaimed(tc); /* the span may still sit on the stack from an earlier park */
  if (!st__page_try_park(span)) return false;
  span->in_full = 1;
  st_list_push_back(&tc->full[span->size_class], &span->link);
  clear_current(tc, span);
  span_bias_used(span);
  return true;
}

/* Returns an owned span that holds no block any more to its home page heap. */
static void tcache_release_span(st_tcache_t *tc, st_span_t *span) {
  st__page_wait_not_busy(span);
  tcache_drain_reclaimed(tc);
  if (st_list_linked(&span->link)) st_list_remove(&span->link);
  if (tc->current[span->size_class] == span) clear_current(tc, span);
  st__pageheap_free(span);
}

static st_span_t *tcache_adopt(st_tcache_t *tc, unsigned cls) {
  st_pageheap_t *ph = tc->heap;
  st_span_t *found = NULL;
  st__pageheap_lock(ph);
  while (found == NULL && !st_list_empty(&ph->abandoned[cls])) {
    st_span_t *span = ST_CONTAINER_OF(ph->abandoned[cls].next, st_span_t, link);
    st_list_remove(&span->link);
    abandoned_count_add(ph, -1);
    st__page_collect(span);
    if (st__page_all_free(span)) st__pageheap_free_locked(ph, span);
    else found = span;
  }
  /* Under the lock: statistics, holding it, take an unowned slab span for one at rest. */
  if (found != NULL) st_store_release(&found->xowner, &tc->owner);
  st__pageheap_unlock(ph);
  if (found != NULL) {
    st__tcache_count(tc, ST_EVENT_slab_spans_adopted);
    span_set_owned(tc, found);
  }
  return found;
}

/* Spans of exited threads that remote frees emptied are released when a thread needs a new
 * span, at most once per purge delay and shard, so exited threads do not pin memory until
 * someone happens to need their size class. */
static void tcache_sweep_abandoned_if_due(void) {
  long delay = st_option(ST_OPTION_PURGE_DELAY_MS);
  for (unsigned i = 0; i < st__pageheap_shard_count(); i++) {
    st_pageheap_t *ph = st__pageheap_of_cpu((int)i);
    if (st_load_relaxed(&ph->xabandoned_count) == 0) continue;
    st__pageheap_lock(ph);
    uint64_t now = st__os_now_ms();
    if (now >= ph->next_sweep_ms) {
      st__tcache_sweep_abandoned_locked(ph);
      ph->next_sweep_ms = now + (delay > 0 ? (uint64_t)delay : 0);
    }
    st__pageheap_unlock(ph);
  }
  st__pageheap_purge_after_collapse();
}

/* The page heap hands out resident memory first, and carving touches a span a page at a
 * time, so a span laid on a freed block's resident pages keeps them all resident however
 * few blocks its owner ever carves. A thread's first span of a class is where that is
 * likely (many threads each using many classes a little: 16 threads x 63 classes in
 * `server`, where such pages were 5 MiB of a 29 MiB peak), so it gives the pages past its
 * first carve back. A later span of the class follows one the thread filled, and is likely
 * to be carved through: purging it would only fault its pages in again (docs/memory.md). */
static void tcache_prepare_span(st_tcache_t *tc, st_span_t *span, unsigned cls) {
  if (!tc->took_span[cls] && !span->zeroed) st__page_release_uncarved(span);
  tc->took_span[cls] = true;
}

/* A current span that holds no block is kept, because a program freeing its last block of a
 * class often allocates one again; but a class the program has moved away from would keep
 * its span for good, so a program that uses sizes one after the other would hold a span of
 * each: the sum over its phases where one at a time would do (`fixed`, docs/memory.md).
 * When the thread takes a new span anyway (the slow path's slow end), a current span of
 * another class that holds no block, and held none at the thread's previous new span
 * either, goes back to the page heap, where the new span most likely reuses its resident
 * pages. The scan costs a few instructions per class and new span, nothing elsewhere.
 * A class that takes a span again after such a release is in use with one block in flight
 * at a time, not left behind: it keeps its empty span from then on (kept_classes). Without
 * that, a program cycling through many sizes with one block out at a time (malloc, free,
 * next size) released every class's span at the new span of another, which it had just
 * released in turn: a page-heap round trip per malloc (a malloc/free loop over 64 sizes up
 * to 512 B: 1,000,000 new spans in 1,000,000 pairs, about 2,400 instructions a pair). The
 * kept classes are forgotten every FORGET_SPANS new spans the thread takes, so a program
 * whose phases move on still gives the old ones' spans back; a cycling program then
 * releases each class once more at most per FORGET_SPANS new spans. */
#define FORGET_SPANS 256

static void tcache_release_idle(st_tcache_t *tc, unsigned cls) {
  uint64_t taking = 1ull << cls;
  if (tc->released_classes & taking) tc->kept_classes |= taking;
  tc->released_classes &= ~taking;
  if (++tc->spans_since_forget == FORGET_SPANS) {
    tc->kept_classes = 0;
    tc->spans_since_forget = 0;
  }
  uint64_t idle = 0;
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    st_span_t *span = tc->current[c];
    uint64_t bit = 1ull << c;
    /* More than the pin in `used`: blocks out, or remote frees not collected yet. */
    if (span == &st__span_empty || c == cls || st__span_used(span) != 1 || (tc->kept_classes & bit))
      continue;
    if (tc->idle_classes & bit) {
      tcache_release_span(tc, span);
      tc->released_classes |= bit;
    } else {
      idle |= bit;
    }
  }
  tc->idle_classes = idle;
}

static st_span_t *tcache_new_span(st_tcache_t *tc, unsigned cls) {
  tcache_sweep_abandoned_if_due();
  tcache_release_idle(tc, cls);
  st_span_t *span = st__pageheap_alloc(tc->heap, st__class_span_pages[cls], ST_PAGE_SIZE, ST_SPAN_SLAB);
  if (span != NULL) {
    /* Formatted under its home lock, which statistics hold while they read the span. */
    st_pageheap_t *home = st__pageheap_home(span);
    st__pageheap_lock(home);
    st__page_format(span, cls, &tc->owner);
    st__pageheap_unlock(home);
    st__tcache_count(tc, ST_EVENT_slab_spans_new);
    tcache_prepare_span(tc, span, cls);
  }
  return span;
}

void *st__tcache_pop_checked(st_tcache_t *tc, unsigned cls) {
  st_span_t *span = tc->current[cls];
  return span->free != ST_FREE_LIST_END ? st__tcache_pop_encoded(span) : st__tcache_alloc_slow(tc, cls);
}

/* Makes span current for its class and takes a block from it, if it has any. */
static void *tcache_use(st_tcache_t *tc, st_span_t *span) {
  if (span->free == ST_FREE_LIST_END) {
    uint32_t collected = st__page_collect(span);
    if (collected == 0) st__page_extend(span);
    else st__tcache_count_n(tc, ST_EVENT_remote_frees_collected, collected);
  }
  if (tc->current[span->size_class] != span) set_current(tc, span);
  if (span->free != ST_FREE_LIST_END)
    return st__page_hardened() ? st__tcache_pop_encoded(span) : st__tcache_pop(tc, span->size_class);
  if (!tcache_park_current(tc, span)) return tcache_use(tc, span);
  return NULL;
}

/* Allocating from the fullest of the first few partial spans packs live blocks together,
 * so the emptier spans drain and go back to the page heap (less resident memory under
 * random frees); the bound keeps a refill O(1). */
#define PARTIAL_SCAN 8

static st_span_t *tcache_fullest_partial(st_tcache_t *tc, unsigned cls) {
  st_span_t *best = NULL;
  int scanned = 0;
  st_list_t *pos, *tmp;
  /* clang-tidy's analyzer takes the span the caller just unlinked (next = NULL) for one
   * still on this list. NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
  st_list_for_each_safe(pos, tmp, &tc->partial[cls]) {
    st_span_t *span = ST_CONTAINER_OF(pos, st_span_t, link);
    if (best == NULL || st__span_used(span) > st__span_used(best)) best = span;
    if (++scanned == PARTIAL_SCAN) break;
  }
  return best;
}

void *st__tcache_alloc_slow(st_tcache_t *tc, unsigned cls) {
  st__tcache_count_refill(tc, cls);
  st_span_t *span = tc->current[cls];
  if (span != &st__span_empty) {
    void *block = tcache_use(tc, span);
    if (block != NULL) return block;
  }
  tcache_drain_reclaimed(tc);
  while (!st_list_empty(&tc->partial[cls])) {
    span = tcache_fullest_partial(tc, cls);
    st_list_remove(&span->link);
    void *block = tcache_use(tc, span);
    if (block != NULL) return block;
  }
  while ((span = tcache_adopt(tc, cls)) != NULL) {
    void *block = tcache_use(tc, span);
    if (block != NULL) return block;
  }
  span = tcache_new_span(tc, cls);
  return span != NULL ? tcache_use(tc, span) : NULL;
}

void st__tcache_free_local_slow(st_tcache_t *tc, st_span_t *span, st_block_t *block) {
  st__tcache_count(tc, ST_EVENT_frees_local_slow);
  block->key = st__block_key(span);
  st__block_set_next(block, span->free);
  span->free = block;
  if (st__span_release_one(span)) st__tcache_retire(tc, span);
}

void st__tcache_retire(st_tcache_t *tc, st_span_t *span) {
  if (span->in_full) { /* parked, and the bias ran out: an eighth of it is free */
    st__page_unpark(span);
    st_list_remove(&span->link);
    span_set_owned(tc, span);
    st_list_push_back(&tc->partial[span->size_class], &span->link);
    if (!st__page_all_free(span)) return;
  }
  /* Keep the current span: a program freeing its last block often allocates again. */
  if (tc->current[span->size_class] == span) return;
  tcache_release_span(tc, span);
}

/* Calls fn on every span the cache owns: current, partial and full. */
static void tcache_for_each_span(st_tcache_t *tc, void (*fn)(st_tcache_t *, st_span_t *, bool),
                                 bool arg) {
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    st_list_t *lists[2] = {&tc->partial[c], &tc->full[c]};
    st_list_t *pos, *tmp;
    for (int l = 0; l < 2; l++) {
      st_list_for_each_safe(pos, tmp, lists[l]) fn(tc, ST_CONTAINER_OF(pos, st_span_t, link), arg);
    }
    if (tc->current[c] != &st__span_empty) fn(tc, tc->current[c], arg);
  }
}

static void span_unpark(st_tcache_t *tc, st_span_t *span, bool forced) {
  ST_UNUSED(tc);
  if (forced) st__page_unpark_forced(span);
  else st__page_unpark(span);
}

static void span_abandon(st_tcache_t *tc, st_span_t *span, bool forced) {
  if (st_list_linked(&span->link)) st_list_remove(&span->link);
  if (tc->current[span->size_class] == span) clear_current(tc, span);
  span->in_full = 0;
  if (forced) st__page_recount(span); /* the owner did not survive a fork */
  else span_unbias_used(span);
  st_store_relaxed(&span->xfast_thread, 0);
  st_store_release(&span->xowner, NULL);
  st_pageheap_t *home = st__pageheap_home(span);
  st__pageheap_lock(home);
  st__page_collect(span);
  if (st__page_all_free(span)) {
    st__pageheap_free_locked(home, span);
  } else {
    st_list_push_back(&home->abandoned[span->size_class], &span->link);
    abandoned_count_add(home, 1);
  }
  st__pageheap_unlock(home);
}

void st__tcache_abandon(st_tcache_t *tc, bool forced) {
  st__spancache_flush(&tc->spans);
  /* First stop remote frees from handing spans back, then forget the stack, then give
   * the spans away: after this no other thread refers to tc. */
  tcache_for_each_span(tc, span_unpark, forced);
  if (forced) st_store_relaxed(&tc->owner.xreclaim, NULL);
  else st__page_take_reclaimed(&tc->owner);
  tcache_for_each_span(tc, span_abandon, forced);
  st__pageheap_purge_if_collapsed();
}

void st__tcache_release_empty(st_tcache_t *tc) {
  st__spancache_flush(&tc->spans);
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    st_span_t *span = tc->current[c];
    if (span == &st__span_empty) continue;
    st__page_collect(span);
    if (st__span_used(span) == 1) tcache_release_span(tc, span); /* only the pin is left */
  }
}

void st__tcache_sweep_abandoned_locked(st_pageheap_t *ph) {
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    st_list_t *pos, *tmp;
    st_list_for_each_safe(pos, tmp, &ph->abandoned[c]) {
      st_span_t *span = ST_CONTAINER_OF(pos, st_span_t, link);
      st__page_collect(span);
      if (st__page_all_free(span)) {
        st_list_remove(&span->link);
        abandoned_count_add(ph, -1);
        st__pageheap_free_locked(ph, span);
      }
    }
  }
}

static bool validate_span(st_tcache_t *tc, st_span_t *span, unsigned cls, bool parked) {
  bool ok = span->kind == ST_SPAN_SLAB && span->size_class == cls && st__tcache_owns(tc, span) &&
            span->in_full == parked;
  if (!ok) {
    st__report("heap validation: tcache: span %p of class %u has wrong kind, class or owner",
               (void *)span->start, cls);
    return false;
  }
  return st__page_validate(span, tc->current[cls] == span ? 1 : 0);
}

bool st__tcache_validate(st_tcache_t *tc) {
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    if (tc->current[c] != &st__span_empty && !validate_span(tc, tc->current[c], c, false))
      return false;
    st_list_t *pos, *tmp;
    st_list_for_each_safe(pos, tmp, &tc->partial[c]) {
      if (!validate_span(tc, ST_CONTAINER_OF(pos, st_span_t, link), c, false)) return false;
    }
    st_list_for_each_safe(pos, tmp, &tc->full[c]) {
      if (!validate_span(tc, ST_CONTAINER_OF(pos, st_span_t, link), c, true)) return false;
    }
  }
  return true;
}
