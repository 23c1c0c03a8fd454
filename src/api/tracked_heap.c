/*
 * tracked_heap.c — default-strategy heaps: the process allocator's blocks, tracked per heap
 * (see tracked_heap.h).
 *
 * A pointer handed to a heap function is checked through its header: first that it is not
 * known to lie outside the process allocator's memory (st__dispatch_foreign), then the
 * header's cookie, which mixes the header's address with its heap: a block of another heap,
 * a freed block (the cookie is cleared at free) or a pointer into the middle of a block gets
 * a one-line diagnostic. Under the core a wild pointer into unmapped memory can fault while
 * its header is read, before any diagnostic (the pagemap cannot vouch for interior pages).
 *
 * Fork: the registry lock, then every heap's lock, are taken around fork and re-initialised
 * in the child (as classic/heap.c does for its heaps).
 */
#include "api/tracked_heap.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "api/api.h"
#include "api/dispatch.h"
#include "base/atomics.h"
#include "base/check.h"

#define COOKIE_KEY ((uintptr_t)0x9e3779b97f4a7c15ull)

typedef struct tracked_block {
  st_list_t link;   /* heap lock */
  uintptr_t cookie; /* const while live: block_cookie(); 0 once freed */
  size_t offset;    /* const: bytes from the allocation's start to the payload */
  size_t usable;    /* const: usable bytes from the payload on (read under the heap's lock,
                       which must not call into the allocator) */
  size_t unused;
} tracked_block;

_Static_assert(sizeof(tracked_block) % ST_MIN_ALIGN == 0, "the payload stays aligned");

static st_lock_t registry_lock = ST_LOCK_INIT;
static st_list_t registry = {&registry, &registry}; /* registry lock: every live heap */

static uintptr_t block_cookie(const tracked_block *b, const st_tracked_heap_t *h) {
  return ((uintptr_t)b ^ (uintptr_t)h) * COOKIE_KEY | 1;
}

static tracked_block *header_of(const void *p) { return (tracked_block *)p - 1; }
static void *payload_of(tracked_block *b) { return b + 1; }
static char *base_of(tracked_block *b) { return (char *)payload_of(b) - b->offset; }

/* The header of p, a live block of h, or a diagnostic naming fn. */
static tracked_block *checked_header(const st_tracked_heap_t *h, const void *p, const char *fn) {
  tracked_block *b = header_of(p);
  ST_CHECK(((uintptr_t)p & (ST_MIN_ALIGN - 1)) == 0 && !st__dispatch_foreign(p),
           "%s(): invalid pointer %p (not allocated by this heap)", fn, p);
  if (ST_UNLIKELY(b->cookie != block_cookie(b, h)))
    st__fatal("%s(): invalid pointer %p (double free, or not allocated by this heap)", fn, p);
  return b;
}

static size_t block_usable(const tracked_block *b) { return b->usable; }

/* ---- the list and counters, under the heap's lock ---------------------------------------- */

static bool link_block(st_tracked_heap_t *h, tracked_block *b) {
  size_t usable = b->usable, held = usable + b->offset;
  st_lock_acquire(&h->lock);
  bool fits = h->limit_bytes == 0 || h->held_bytes + held <= h->limit_bytes;
  if (fits) {
    b->cookie = block_cookie(b, h);
    st_list_push_front(&h->blocks, &b->link);
    h->live_bytes += usable;
    h->held_bytes += held;
    h->live_blocks++;
    h->allocations++;
    if (h->live_bytes > h->peak_live_bytes) h->peak_live_bytes = h->live_bytes;
    if (h->held_bytes > h->peak_held_bytes) h->peak_held_bytes = h->held_bytes;
  }
  st_lock_release(&h->lock);
  return fits;
}

static void unlink_block(st_tracked_heap_t *h, tracked_block *b) {
  size_t usable = b->usable;
  st_lock_acquire(&h->lock);
  b->cookie = 0;
  st_list_remove(&b->link);
  h->live_bytes -= usable;
  h->held_bytes -= usable + b->offset;
  h->live_blocks--;
  st_lock_release(&h->lock);
}

/* ---- entry points ------------------------------------------------------------------------ */

void st__tracked_init(st_tracked_heap_t *h, size_t limit_bytes) {
  memset(h, 0, sizeof *h);
  st_lock_init(&h->lock);
  h->limit_bytes = limit_bytes;
  st_list_init(&h->blocks);
  st_lock_acquire(&registry_lock);
  st_list_push_back(&registry, &h->registry_link);
  st_lock_release(&registry_lock);
}

void st__tracked_destroy(st_tracked_heap_t *h) {
  st_lock_acquire(&registry_lock);
  st_list_remove(&h->registry_link);
  st_lock_release(&registry_lock);
  /* The heap is being destroyed: no other thread may use it, so the list is ours, and
   * each link is read before its block is freed. */
  for (st_list_t *pos = h->blocks.next; pos != &h->blocks;) {
    tracked_block *b = ST_CONTAINER_OF(pos, tracked_block, link);
    pos = pos->next;
    b->cookie = 0;
    st__api_free(base_of(b));
  }
  st_list_init(&h->blocks);
}

void *st__tracked_malloc(st_tracked_heap_t *h, size_t size, size_t align, bool zero) {
  size_t offset = st_align_up(sizeof(tracked_block), align);
  if (size > PTRDIFF_MAX - offset) return NULL;
  int saved = errno;
  char *base = align <= ST_MIN_ALIGN ? st__api_malloc(size + offset)
                                     : st__api_memalign(align, size + offset);
  errno = saved;
  if (base == NULL) return NULL;
  tracked_block *b = header_of(base + offset);
  b->offset = offset;
  b->usable = st__api_usable_size(base) - offset;
  if (!link_block(h, b)) {
    st__api_free(base);
    return NULL;
  }
  if (zero) memset(payload_of(b), 0, size);
  return payload_of(b);
}

void st__tracked_free(st_tracked_heap_t *h, void *p, const char *fn) {
  if (p == NULL) return;
  tracked_block *b = checked_header(h, p, fn);
  unlink_block(h, b);
  st__api_free(base_of(b)); /* keeps errno */
}

/* Within the block's capacity: in place. Otherwise the allocation is resized by the
 * allocator (which may move it) and linked again; on failure the old block stays linked. */
void *st__tracked_realloc(st_tracked_heap_t *h, void *p, size_t size) {
  tracked_block *b = checked_header(h, p, "st_heap_realloc");
  size_t usable = block_usable(b), offset = b->offset;
  if (size <= usable) return p;
  if (size > PTRDIFF_MAX - offset) return NULL;
  /* The payload's alignment: the largest power of two dividing the offset. */
  void *q = st__tracked_malloc(h, size, offset & -offset, false);
  if (q == NULL) return NULL;
  memcpy(q, p, usable);
  st__tracked_free(h, p, "st_heap_realloc");
  return q;
}

size_t st__tracked_usable_size(st_tracked_heap_t *h, const void *p, const char *fn) {
  return p == NULL ? 0 : block_usable(checked_header(h, p, fn));
}

void st__tracked_visit(st_tracked_heap_t *h, st_heap_visitor fn, void *arg) {
  st_lock_acquire(&h->lock);
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &h->blocks) {
    tracked_block *b = ST_CONTAINER_OF(pos, tracked_block, link);
    fn(payload_of(b), block_usable(b), arg);
  }
  st_lock_release(&h->lock);
}

void st__tracked_stats(st_tracked_heap_t *h, st_heap_stats *out) {
  st_lock_acquire(&h->lock);
  *out = (st_heap_stats){.strategy = ST_STRATEGY_DEFAULT,
                         .mapped_bytes = h->held_bytes,
                         .peak_mapped_bytes = h->peak_held_bytes,
                         .live_bytes = h->live_bytes,
                         .peak_live_bytes = h->peak_live_bytes,
                         .live_blocks = h->live_blocks,
                         .allocations = h->allocations,
                         .regions = 0};
  st_lock_release(&h->lock);
}

bool st__tracked_validate(st_tracked_heap_t *h) {
  st_lock_acquire(&h->lock);
  size_t blocks = 0, live = 0;
  bool ok = true;
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &h->blocks) {
    tracked_block *b = ST_CONTAINER_OF(pos, tracked_block, link);
    if (b->cookie != block_cookie(b, h) || b->link.next->prev != &b->link) {
      st__report("st_heap_check(): block %p has a damaged header", payload_of(b));
      ok = false;
      break;
    }
    blocks++;
    live += block_usable(b);
  }
  if (ok && (blocks != h->live_blocks || live != h->live_bytes)) {
    st__report("st_heap_check(): %zu blocks of %zu bytes linked, %zu of %zu counted", blocks,
               live, h->live_blocks, h->live_bytes);
    ok = false;
  }
  st_lock_release(&h->lock);
  return ok;
}

/* ---- fork ------------------------------------------------------------------------------ */

static void fork_prepare(void) {
  st_lock_acquire(&registry_lock);
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &registry)
      st_lock_acquire(&ST_CONTAINER_OF(pos, st_tracked_heap_t, registry_link)->lock);
}

static void fork_parent(void) {
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &registry)
      st_lock_release(&ST_CONTAINER_OF(pos, st_tracked_heap_t, registry_link)->lock);
  st_lock_release(&registry_lock);
}

/* A constructor: before the program's threads, never inside an allocation. */
__attribute__((constructor)) static void tracked_register_fork_handlers(void) {
  pthread_atfork(fork_prepare, fork_parent, fork_parent); /* child: its only thread took them */
}
