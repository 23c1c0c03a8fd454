/*
 * page.c — slab spans (see page.h for the protocol of remote frees).
 *
 * Carving: a fresh span's blocks are threaded onto the free list one OS page's worth at
 * a time, so a span that serves a few blocks touches a few pages, not 64 KiB.
 */
#include "core/page.h"

#include "base/check.h"
#include "base/options.h"
#include "base/valgrind.h"
#include "core/pageheap.h"
#include "core/sizeclass.h"
#include "os/os.h"

#define CARVE_BYTES ST_PAGE_SIZE

const st_block_t st__block_end = {.next = NULL, .key = 1}; /* no descriptor is at address 1 */

uint64_t st__page_shuffle_seed;
uintptr_t st__block_link_secret;

void st__page_harden(uint64_t shuffle_seed, uintptr_t link_secret) {
  st__page_shuffle_seed = shuffle_seed | 1;
  st__block_link_secret = link_secret | 1; /* odd: the mask differs for every holder */
}

/* Hardened mode: the span's last page becomes a guard, so a linear overflow off the end of
 * the slab faults instead of running into the next span. A span the page heap handed out
 * with its guard still set keeps it (pageheap.c). Without the mapping to spare
 * (vm.max_map_count), no guard. */
static size_t guard_last_page(st_span_t *span) {
  bool want = st__page_hardened() && span->pages > 1;
  return st__pageheap_guard(span, want) && want ? ST_PAGE_SIZE : 0;
}

void st__page_format(st_span_t *span, unsigned cls, st_span_owner *owner) {
  span->size_class = (uint8_t)cls;
  uint32_t block_size = st__class_size[cls];
  st__span_set_block_size(span, block_size,
                          (uint32_t)((st__span_bytes(span) - guard_last_page(span)) / block_size));
  ST_CHECK(span->capacity <= ST_REMOTE_MAX_BLOCKS,
           "internal error: a span of %u blocks overflows the remote count", span->capacity);
  span->carved = 0;
  span->free = ST_FREE_LIST_END;
  st__span_set_used(span, 0);
  st_store_relaxed(&span->xused_bias, 0);
  span->in_full = 0;
  span->reclaim_next = NULL;
  st_store_relaxed(&span->xthread_free, st__page_remote_empty(ST_REMOTE_NORMAL));
  st_store_relaxed(&span->xowner, owner);
  st_store_relaxed(&span->xfast_thread, owner->fast_thread);
}

/* Hardened mode: threads a batch onto the free list in a random order, so the address of
 * the next block cannot be predicted from the last one. batch <= CARVE_BYTES / 16. */
static void extend_shuffled(st_span_t *span, char *first, uint32_t batch) {
  uint16_t order[CARVE_BYTES / 16];
  for (uint32_t i = 0; i < batch; i++) order[i] = (uint16_t)i;
  uint64_t x = st__page_shuffle_seed ^ span->start ^ ((uint64_t)span->carved << 32);
  for (uint32_t i = batch - 1; i > 0; i--) { /* Fisher-Yates over an xorshift64 stream */
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint32_t j = (uint32_t)(x % (i + 1));
    uint16_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
  uintptr_t key = st__block_key(span);
  for (uint32_t i = 0; i < batch; i++) {
    st_block_t *block = (st_block_t *)(first + (size_t)order[i] * span->block_size);
    st__block_set_next(block, span->free);
    block->key = key;
    span->free = block;
  }
}

/* Blocks the next carve threads onto the free list: a page's worth, at least one. */
static uint32_t carve_batch(const st_span_t *span) {
  uint32_t left = span->capacity - span->carved;
  uint32_t batch = (uint32_t)(CARVE_BYTES / span->block_size);
  if (batch == 0) batch = 1;
  return batch < left ? batch : left;
}

bool st__page_extend(st_span_t *span) {
  uint32_t batch = carve_batch(span);
  if (batch == 0) return false;
  /* Under memcheck these bytes may still be unaddressable from an earlier life (the slack
   * of a block of another size, a freed large block): they are strata's to write now. */
  ST_VG_UNDEFINED((char *)span->start + (size_t)span->carved * span->block_size,
                  (size_t)batch * span->block_size);
  if (ST_UNLIKELY(st__page_hardened())) {
    extend_shuffled(span, (char *)span->start + (size_t)span->carved * span->block_size, batch);
    span->carved += batch;
    return true;
  }
  /* Not hardened: the links are plain pointers. */
  char *first = (char *)span->start + (size_t)span->carved * span->block_size;
  char *block = first;
  uintptr_t key = st__block_key(span);
  for (uint32_t i = 1; i < batch; i++, block += span->block_size) {
    ((st_block_t *)block)->next = (st_block_t *)(block + span->block_size);
    ((st_block_t *)block)->key = key;
  }
  ((st_block_t *)block)->next = span->free;
  ((st_block_t *)block)->key = key;
  span->free = (st_block_t *)first;
  span->carved += batch;
  return true;
}

void st__page_release_uncarved(st_span_t *span) {
  ST_ASSERT(1, span->carved == 0);
  size_t first = (size_t)carve_batch(span) * span->block_size;
  size_t blocks = (size_t)span->capacity * span->block_size; /* ends before a guard page */
  uintptr_t from = st_align_up(span->start + first, ST_PAGE_SIZE);
  uintptr_t to = st_align_up(span->start + blocks, ST_PAGE_SIZE);
  /* A refusal leaves the pages resident, as they were: nothing else depends on it. */
  if (from < to) st__os_purge((void *)from, to - from, st_option(ST_OPTION_PURGE_LAZY) != 0);
}

/* secret: st__block_link_secret, or 0 for the default mode's plain links. Hardened mode
 * checks each link before following it, so it always walks. */
ST_INLINE uint32_t collect_with(st_span_t *span, uintptr_t secret) {
  uintptr_t old = st_load_relaxed(&span->xthread_free);
  do {
    if (st__page_remote_count(old) == 0) return 0;
  } while (!st_cas_weak_acq_rel(&span->xthread_free, &old,
                                st__page_remote_empty(old & ST_REMOTE_TAG_MASK)));
  st_block_t *head = st__page_remote_list(old);
  uint32_t count = st__page_remote_count(old);
  ST_CHECK(count <= st__span_used(span), "free(): double free detected in a %u-byte block span at %p",
           span->block_size, (void *)span->start);
  if (secret != 0 || span->free != ST_FREE_LIST_END) {
    st_block_t *tail = head;
    for (uint32_t i = 1; i < count; i++) {
      st_block_t *next = st__block_next_with(tail, secret);
      if (secret != 0 && ST_UNLIKELY(next == ST_FREE_LIST_END || !st__page_link_ok(span, next)))
        st__page_corrupt_link(span, tail);
      tail = next;
    }
    if (secret != 0 && ST_UNLIKELY(st__block_next_with(tail, secret) != ST_FREE_LIST_END))
      st__page_corrupt_link(span, tail);
    st__block_set_next_with(tail, span->free, secret);
  }
  span->free = head;
  st__span_add_used(span, -(int32_t)count);
  return count;
}

uint32_t st__page_collect(st_span_t *span) {
  uintptr_t secret = st__block_link_secret;
  return ST_UNLIKELY(secret != 0) ? collect_with(span, secret) : collect_with(span, 0);
}

/* The remote free that found NOTIFY hands the span to its owner's reclaim stack. */
static void page_notify_owner(st_span_t *span) {
  st_span_owner *owner = st_load_acquire(&span->xowner);
  ST_ASSERT(1, owner != NULL);
  st_span_t *head = st_load_relaxed(&owner->xreclaim);
  do {
    span->reclaim_next = head;
  } while (!st_cas_weak_release(&owner->xreclaim, &head, span));
  uintptr_t old = st_load_relaxed(&span->xthread_free);
  while (!st_cas_weak_release(&span->xthread_free, &old, old & ~ST_REMOTE_TAG_MASK)) {
  }
}

ST_INLINE void free_mt_with(st_span_t *span, st_block_t *block, uintptr_t secret) {
  /* Not the owner: its lists cannot be walked to confirm, and only a program storing a
   * descriptor address could forge the mark. */
  if (ST_UNLIKELY(block->key == st__block_key(span))) st__page_double_free(span, block, "free");
  block->key = st__block_key(span);
  /* One addition counts the block and turns NOTIFY into BUSY (NORMAL and BUSY add 0). */
  _Static_assert(ST_REMOTE_NOTIFY + ST_REMOTE_NOTIFY == ST_REMOTE_BUSY && (ST_REMOTE_BUSY & ST_REMOTE_NOTIFY) == 0,
                 "the remote free's addition relies on these tag values");
  uintptr_t old = st_load_relaxed(&span->xthread_free);
  do {
    st__block_set_next_with(block, st__page_remote_list(old), secret);
  } while (!st_cas_weak_release(&span->xthread_free, &old,
                                ((uintptr_t)block << ST_REMOTE_LIST_SHIFT) |
                                    ((old & (ST_REMOTE_COUNT_MASK | ST_REMOTE_TAG_MASK)) +
                                     ST_REMOTE_COUNT_ONE + (old & ST_REMOTE_NOTIFY))));
  if (ST_UNLIKELY(old & ST_REMOTE_NOTIFY)) page_notify_owner(span);
}

void st__page_free_mt(st_span_t *span, st_block_t *block) { free_mt_with(span, block, 0); }

void st__page_free_mt_encoded(st_span_t *span, st_block_t *block) {
  free_mt_with(span, block, st__block_link_secret);
}

void st__page_wait_not_busy(st_span_t *span) {
  while ((st_load_acquire(&span->xthread_free) & ST_REMOTE_TAG_MASK) == ST_REMOTE_BUSY)
    st_cpu_relax();
}

bool st__page_try_park(st_span_t *span) {
  uintptr_t expected = st__page_remote_empty(ST_REMOTE_NORMAL);
  return atomic_compare_exchange_strong_explicit(&span->xthread_free, &expected,
                                                 expected | ST_REMOTE_NOTIFY, memory_order_acq_rel,
                                                 memory_order_relaxed);
}

void st__page_unpark(st_span_t *span) {
  uintptr_t old = st_load_acquire(&span->xthread_free);
  for (;;) {
    uintptr_t tag = old & ST_REMOTE_TAG_MASK;
    if (tag == ST_REMOTE_BUSY) {
      st_cpu_relax();
      old = st_load_acquire(&span->xthread_free);
    } else if (tag != ST_REMOTE_NOTIFY ||
               st_cas_weak_acq_rel(&span->xthread_free, &old, old & ~ST_REMOTE_TAG_MASK)) {
      return;
    }
  }
}

void st__page_unpark_forced(st_span_t *span) {
  uintptr_t old = st_load_relaxed(&span->xthread_free);
  st_store_relaxed(&span->xthread_free, old & ~ST_REMOTE_TAG_MASK);
}

st_span_t *st__page_take_reclaimed(st_span_owner *owner) {
  if (st_load_relaxed(&owner->xreclaim) == NULL) return NULL;
  return st_exchange_acq_rel(&owner->xreclaim, NULL);
}

void st__page_corrupt_block(const st_span_t *span, const st_block_t *block) {
  st__fatal("malloc(): corrupted free block %p (size class %u, %u bytes): written while free "
            "(use after free, or an overflow of the block before it)",
            (const void *)block, span->size_class, span->block_size);
}

void st__page_corrupt_link(const st_span_t *span, const st_block_t *block) {
  st__fatal("malloc(): corrupted free list at block %p (size class %u, %u bytes): its link "
            "was overwritten (use after free, or an overflow of the block before it)",
            (const void *)block, span->size_class, span->block_size);
}

void st__page_double_free(const st_span_t *span, const void *p, const char *fn) {
  st__fatal("%s(): double free of %p (size class %u, %u bytes)", fn, p, span->size_class,
            span->block_size);
}

/* Whether block is on list (a free list or a remote one), walking at most `bound` links (a
 * corrupt list may loop). */
static bool list_holds(const st_block_t *list, const st_block_t *block, uint32_t bound) {
  for (uint32_t i = 0; list != NULL && list != ST_FREE_LIST_END && i < bound;
       list = st__block_next(list), i++)
    if (list == block) return true;
  return false;
}

void st__page_check_double_free(const st_span_t *span, const st_block_t *block, const char *fn) {
  /* Remote frees only push in front of the remote list, and only the owner (the caller)
   * takes it, so its links are stable while it is walked. */
  const st_block_t *remote = st__page_remote_list(st_load_acquire(&span->xthread_free));
  if (list_holds(span->free, block, span->carved) || list_holds(remote, block, span->carved))
    st__page_double_free(span, block, fn);
}

void st__page_recount(st_span_t *span) {
  uint32_t listed = 0, carved = span->carved;
  for (const st_block_t *b = span->free; b != ST_FREE_LIST_END && listed < span->capacity;
       b = st__block_next(b)) {
    if (!st__page_is_block_start(span, b)) break; /* corrupt: validation will say where */
    uint32_t index = (uint32_t)(((uintptr_t)b - span->start) / span->block_size);
    if (index >= carved) carved = index + 1;
    listed++;
  }
  span->carved = carved;
  st_store_relaxed(&span->xused_bias, 0);
  st__span_set_used(span, carved - listed);
}

bool st__page_validate(const st_span_t *span, uint32_t pins) {
  uint32_t listed = 0;
  for (const st_block_t *b = span->free; b != ST_FREE_LIST_END; b = st__block_next(b)) {
    if (!st__page_is_block_start(span, b) || ++listed > span->carved) {
      st__report("heap validation: page: free list of span %p is corrupt at block %p",
                 (void *)span->start, (const void *)b);
      return false;
    }
  }
  if (span->carved > span->capacity || st__span_used(span) + listed != span->carved + pins) {
    st__report("heap validation: page: span %p counts used=%u free=%u carved=%u capacity=%u",
               (void *)span->start, st__span_used(span), listed, span->carved, span->capacity);
    return false;
  }
  return true;
}
