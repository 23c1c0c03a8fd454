/*
 * page.c — slab spans (see page.h for the protocol of remote frees).
 *
 * Carving: a fresh span's blocks are threaded onto the free list one OS page's worth at
 * a time, so a span that serves a few blocks touches a few pages, not 64 KiB.
 */
#include "core/page.h"

#include "base/check.h"
#include "core/sizeclass.h"

#define CARVE_BYTES ST_PAGE_SIZE

void st__page_format(st_span_t *span, unsigned cls, st_span_owner *owner) {
  span->size_class = (uint8_t)cls;
  span->block_size = st__class_size[cls];
  span->capacity = (uint32_t)(st__span_bytes(span) / span->block_size);
  span->carved = 0;
  span->free = NULL;
  st__span_set_used(span, 0);
  span->in_full = 0;
  span->reclaim_next = NULL;
  st_store_relaxed(&span->xthread_free, ST_REMOTE_NORMAL);
  st_store_relaxed(&span->xowner, owner);
  st_store_relaxed(&span->xfast_owner, owner);
}

bool st__page_extend(st_span_t *span) {
  uint32_t left = span->capacity - span->carved;
  if (left == 0) return false;
  uint32_t batch = (uint32_t)(CARVE_BYTES / span->block_size);
  if (batch == 0) batch = 1;
  if (batch > left) batch = left;
  char *first = (char *)span->start + (size_t)span->carved * span->block_size;
  char *block = first;
  for (uint32_t i = 1; i < batch; i++, block += span->block_size)
    ((st_block_t *)block)->next = (st_block_t *)(block + span->block_size);
  ((st_block_t *)block)->next = span->free;
  span->free = (st_block_t *)first;
  span->carved += batch;
  return true;
}

uint32_t st__page_collect(st_span_t *span) {
  uintptr_t old = st_load_relaxed(&span->xthread_free);
  do {
    if ((old & ~ST_REMOTE_TAG_MASK) == 0) return 0;
  } while (!st_cas_weak_acq_rel(&span->xthread_free, &old, old & ST_REMOTE_TAG_MASK));
  st_block_t *head = (st_block_t *)(old & ~ST_REMOTE_TAG_MASK), *tail = head;
  uint32_t count = 1;
  while (tail->next != NULL) {
    tail = tail->next;
    count++;
  }
  ST_CHECK(count <= st__span_used(span), "free(): double free detected in a %u-byte block span at %p",
           span->block_size, (void *)span->start);
  tail->next = span->free;
  span->free = head;
  st__span_add_used(span, -(int32_t)count);
  return count;
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

void st__page_free_mt(st_span_t *span, st_block_t *block) {
  uintptr_t old = st_load_relaxed(&span->xthread_free), tag;
  do {
    tag = old & ST_REMOTE_TAG_MASK;
    block->next = (st_block_t *)(old & ~ST_REMOTE_TAG_MASK);
  } while (!st_cas_weak_release(&span->xthread_free, &old,
                                (uintptr_t)block | (tag == ST_REMOTE_NOTIFY ? ST_REMOTE_BUSY : tag)));
  if (ST_UNLIKELY(tag == ST_REMOTE_NOTIFY)) page_notify_owner(span);
}

void st__page_wait_not_busy(st_span_t *span) {
  while ((st_load_acquire(&span->xthread_free) & ST_REMOTE_TAG_MASK) == ST_REMOTE_BUSY)
    st_cpu_relax();
}

bool st__page_try_park(st_span_t *span) {
  uintptr_t expected = ST_REMOTE_NORMAL;
  return atomic_compare_exchange_strong_explicit(&span->xthread_free, &expected,
                                                 ST_REMOTE_NOTIFY, memory_order_acq_rel,
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

bool st__page_validate(const st_span_t *span, uint32_t pins) {
  uint32_t listed = 0;
  for (const st_block_t *b = span->free; b != NULL; b = b->next) {
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
