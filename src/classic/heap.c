/*
 * heap.c — the classic heap shared by every classic strategy (see heap.h).
 *
 * Requests whose size plus alignment fit ST_REGION_ARENA_MAX go to the backend; when it has
 * no room the heap maps one more arena region and hands it over. Larger or more aligned
 * requests get a BIG region of their own, unmapped by their free. A free finds its region
 * by binary search in the region table, which is also what diagnoses pointers the heap
 * never handed out; the backend then checks the pointer against its own metadata.
 */
#include "classic/heap.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "base/atomics.h"
#include "base/check.h"
#include "base/report.h"
#include "os/os.h"

static const st_backend *const backends[ST_STRATEGY_COUNT] = {
    [ST_STRATEGY_FIRST_FIT] = &st__backend_first_fit,
    [ST_STRATEGY_NEXT_FIT] = &st__backend_next_fit,
    [ST_STRATEGY_BEST_FIT] = &st__backend_best_fit,
    [ST_STRATEGY_WORST_FIT] = &st__backend_worst_fit,
    [ST_STRATEGY_SEGREGATED] = &st__backend_segregated,
    [ST_STRATEGY_BUDDY] = &st__backend_buddy,
    [ST_STRATEGY_BITMAP] = &st__backend_bitmap,
};

static st_lock_t registry_lock = ST_LOCK_INIT;
static st_list_t registry = {&registry, &registry}; /* registry lock: every live heap */

const st_backend *st__classic_backend_of(st_strategy strategy) {
  return (unsigned)strategy < ST_STRATEGY_COUNT ? backends[strategy] : NULL;
}

void st__classic_init(st_classic_heap_t *h, st_strategy strategy, size_t limit_bytes,
                      const char *owner_name) {
  memset(h, 0, sizeof *h);
  st_lock_init(&h->lock);
  h->backend = st__classic_backend_of(strategy);
  h->strategy = strategy;
  h->limit_bytes = limit_bytes;
  h->owner_name = owner_name;
  h->backend->init(h->state);
}

void st__classic_register(st_classic_heap_t *h) {
  st_lock_acquire(&registry_lock);
  st_list_push_back(&registry, &h->registry_link);
  st_lock_release(&registry_lock);
}

void st__classic_destroy(st_classic_heap_t *h) {
  st_lock_acquire(&registry_lock);
  st_list_remove(&h->registry_link);
  st_lock_release(&registry_lock);
  st__region_table_release(&h->regions);
}

/* ---- accounting --------------------------------------------------------------------- */

static void account_alloc_locked(st_classic_heap_t *h, st_region_t *r, size_t usable) {
  r->used += usable;
  h->live_bytes += usable;
  h->live_blocks++;
  h->allocations++;
  if (h->live_bytes > h->peak_live_bytes) h->peak_live_bytes = h->live_bytes;
}

static void account_free_locked(st_classic_heap_t *h, st_region_t *r, size_t usable) {
  r->used -= usable;
  h->live_bytes -= usable;
  h->live_blocks--;
}

static bool within_limit_locked(const st_classic_heap_t *h, size_t more) {
  return h->limit_bytes == 0 || h->regions.mapped_bytes + more <= h->limit_bytes;
}

static bool add_region_locked(st_classic_heap_t *h, st_region_t *r) {
  if (st__region_table_add(&h->regions, r)) return true;
  st__region_unmap(r);
  return false;
}

static void unmap_region_locked(st_classic_heap_t *h, st_region_t *r) {
  st__region_table_remove(&h->regions, r);
  st__region_unmap(r);
}

/* ---- BIG blocks: one region each ------------------------------------------------------ */

static void *big_alloc_locked(st_classic_heap_t *h, size_t size, size_t align) {
  size_t page = st__os_page_size();
  size_t offset = align > ST_REGION_DATA_ALIGN ? align : ST_REGION_DATA_ALIGN;
  if (size > PTRDIFF_MAX - offset - page || !within_limit_locked(h, size + offset)) return NULL;
  st_region_t *r = st__region_map(size, align > page ? align : page, offset, ST_REGION_BIG);
  if (r == NULL || !add_region_locked(h, r)) return NULL;
  account_alloc_locked(h, r, (size_t)(r->end - r->data));
  return r->data;
}

static void big_check_locked(const st_classic_heap_t *h, const st_region_t *r, const void *p,
                             const char *fn) {
  ST_CHECK(p == r->data, "%s(): invalid pointer %p (inside the %zu-byte block at %p of %s)", fn, p,
           (size_t)(r->end - r->data), (void *)r->data, h->owner_name);
}

/* Grows or shrinks a BIG block's region with mremap: in place when the address space after
 * it is free, else onto a new mapping (pages move, nothing is copied). Blocks aligned
 * beyond the region header keep their alignment only in place, so they are not moved.
 * NULL when neither works (the block is untouched). */
static void *big_resize_locked(st_classic_heap_t *h, st_region_t *r, size_t size) {
  size_t offset = (size_t)(r->data - (char *)r), page = st__os_page_size();
  if (size > PTRDIFF_MAX - offset - page) return NULL;
  size_t total = st_align_up(offset + size, page), old_total = r->size;
  if (total > old_total && !within_limit_locked(h, total - old_total)) return NULL;
  st__region_table_remove(&h->regions, r); /* frees the entry the result takes */
  st_region_t *moved = st__os_remap(r, old_total, total, NULL);
  if (moved == NULL && offset == ST_REGION_DATA_ALIGN) {
    void *target = st__os_map_aligned(total, page);
    if (target != NULL && (moved = st__os_remap(r, old_total, total, target)) == NULL)
      st__os_unmap(target, total);
  }
  if (moved == NULL) {
    ST_CHECK(st__region_table_add(&h->regions, r), "a table entry was just freed");
    return NULL;
  }
  moved->size = total;
  moved->data = (char *)moved + offset;
  moved->end = (char *)moved + total;
  ST_CHECK(st__region_table_add(&h->regions, moved), "a table entry was just freed");
  h->live_bytes += (total - old_total);
  if (h->live_bytes > h->peak_live_bytes) h->peak_live_bytes = h->live_bytes;
  return moved->data;
}

/* ---- arena regions -------------------------------------------------------------------- */

static bool grow_locked(st_classic_heap_t *h) {
  if (!within_limit_locked(h, ST_REGION_ARENA_BYTES)) return false;
  st_region_t *r = st__region_map(ST_REGION_ARENA_BYTES - ST_REGION_DATA_ALIGN,
                                  ST_REGION_ARENA_BYTES, ST_REGION_DATA_ALIGN, ST_REGION_ARENA);
  if (r == NULL || !add_region_locked(h, r)) return false;
  h->backend->add_region(h->state, r);
  return true;
}

/* An arena region became empty: keep it as the spare, or give it back if there is one. */
static void region_emptied_locked(st_classic_heap_t *h, st_region_t *r) {
  if (h->spare == NULL) {
    h->spare = r;
    return;
  }
  h->backend->remove_region(h->state, r);
  unmap_region_locked(h, r);
}

static void *alloc_locked(st_classic_heap_t *h, size_t size, size_t align) {
  if (size == 0) size = 1; /* a unique pointer */
  if (size > ST_REGION_ARENA_MAX || size + align > ST_REGION_ARENA_MAX)
    return big_alloc_locked(h, size, align);
  size_t usable;
  void *p = h->backend->alloc(h->state, size, align, &usable);
  if (p == NULL) {
    if (!grow_locked(h)) return NULL;
    p = h->backend->alloc(h->state, size, align, &usable);
    ST_CHECK(p != NULL, "%s: a fresh region cannot serve %zu bytes", h->backend->name, size);
  }
  st_region_t *r = st__region_table_find(&h->regions, p);
  if (r == h->spare) h->spare = NULL;
  account_alloc_locked(h, r, usable);
  return p;
}

/* The region holding p, or a diagnostic. */
static st_region_t *region_of_locked(st_classic_heap_t *h, const void *p, const char *fn) {
  st_region_t *r = st__region_table_find(&h->regions, p);
  if (ST_UNLIKELY(r == NULL))
    st__fatal("%s(): invalid pointer %p (not allocated by %s)", fn, p, h->owner_name);
  return r;
}

static void free_locked(st_classic_heap_t *h, void *p, const char *fn) {
  st_region_t *r = region_of_locked(h, p, fn);
  if (r->kind == ST_REGION_BIG) {
    big_check_locked(h, r, p, fn);
    account_free_locked(h, r, (size_t)(r->end - r->data));
    unmap_region_locked(h, r);
    return;
  }
  account_free_locked(h, r, h->backend->free(h->state, r, p, fn));
  if (r->used == 0) region_emptied_locked(h, r);
}

static size_t usable_locked(st_classic_heap_t *h, const void *p, const char *fn) {
  st_region_t *r = region_of_locked(h, p, fn);
  if (r->kind == ST_REGION_BIG) {
    big_check_locked(h, r, p, fn);
    return (size_t)(r->end - r->data);
  }
  return h->backend->usable(h->state, r, p, fn);
}

/* ---- entry points --------------------------------------------------------------------- */

void *st__classic_malloc(st_classic_heap_t *h, size_t size, size_t align, bool zero) {
  if (align < ST_MIN_ALIGN) align = ST_MIN_ALIGN;
  st_lock_acquire(&h->lock);
  void *p = alloc_locked(h, size, align);
  st_lock_release(&h->lock);
  /* BIG regions are fresh mappings, already zero. */
  if (p != NULL && zero && size <= ST_REGION_ARENA_MAX) memset(p, 0, size);
  return p;
}

void st__classic_free(st_classic_heap_t *h, void *p, const char *fn) {
  if (p == NULL) return;
  int saved = errno;
  st_lock_acquire(&h->lock);
  free_locked(h, p, fn);
  st_lock_release(&h->lock);
  errno = saved;
}

/* In place when the backend can resize the block (or a BIG block keeps at least half its
 * size); otherwise allocate, copy and free, all under the lock. */
static void *realloc_locked(st_classic_heap_t *h, void *p, size_t size) {
  st_region_t *r = region_of_locked(h, p, "realloc");
  size_t old = usable_locked(h, p, "realloc");
  if (r->kind == ST_REGION_BIG) {
    if (size <= old && size > old / 2) return p;
    void *q = size > ST_REGION_ARENA_MAX ? big_resize_locked(h, r, size) : NULL;
    if (q != NULL) return q;
  } else if (size + ST_MIN_ALIGN <= ST_REGION_ARENA_MAX) {
    size_t now;
    if (h->backend->resize(h->state, r, p, size, &now)) {
      r->used -= old;
      h->live_bytes -= old;
      h->live_blocks--;
      account_alloc_locked(h, r, now);
      h->allocations--;
      return p;
    }
  }
  void *q = alloc_locked(h, size, ST_MIN_ALIGN);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  free_locked(h, p, "realloc");
  return q;
}

void *st__classic_realloc(st_classic_heap_t *h, void *p, size_t size) {
  st_lock_acquire(&h->lock);
  void *q = realloc_locked(h, p, size);
  st_lock_release(&h->lock);
  return q;
}

size_t st__classic_usable_size(st_classic_heap_t *h, const void *p, const char *fn) {
  if (p == NULL) return 0;
  st_lock_acquire(&h->lock);
  size_t n = usable_locked(h, p, fn);
  st_lock_release(&h->lock);
  return n;
}

bool st__classic_owns(st_classic_heap_t *h, const void *p) {
  st_lock_acquire(&h->lock);
  bool owned = st__region_table_find(&h->regions, p) != NULL;
  st_lock_release(&h->lock);
  return owned;
}

bool st__classic_trim(st_classic_heap_t *h) {
  st_lock_acquire(&h->lock);
  st_region_t *r = h->spare;
  if (r != NULL) {
    h->spare = NULL;
    h->backend->remove_region(h->state, r);
    unmap_region_locked(h, r);
  }
  st_lock_release(&h->lock);
  return r != NULL;
}

bool st__classic_validate(st_classic_heap_t *h) {
  st_lock_acquire(&h->lock);
  bool ok = true;
  size_t live = 0, blocks = 0;
  for (size_t i = 0; ok && i < h->regions.count; i++) {
    st_region_t *r = h->regions.items[i];
    ok = r->magic == ST_REGION_MAGIC;
    if (ok && r->kind == ST_REGION_ARENA) ok = h->backend->validate(h->state, r);
    live += r->kind == ST_REGION_BIG ? (size_t)(r->end - r->data) : r->used;
    blocks += r->kind == ST_REGION_BIG;
    if (!ok) st__report("%s: region %p is inconsistent", h->backend->name, (void *)r);
  }
  if (ok && (live != h->live_bytes || blocks > h->live_blocks)) {
    st__report("%s: live bytes %zu in regions, %zu counted", h->backend->name, live, h->live_bytes);
    ok = false;
  }
  st_lock_release(&h->lock);
  return ok;
}

void st__classic_visit(st_classic_heap_t *h, st_heap_visitor fn, void *arg) {
  st_lock_acquire(&h->lock);
  for (size_t i = 0; i < h->regions.count; i++) {
    st_region_t *r = h->regions.items[i];
    if (r->kind == ST_REGION_BIG)
      fn(r->data, (size_t)(r->end - r->data), arg);
    else
      h->backend->visit(h->state, r, fn, arg);
  }
  st_lock_release(&h->lock);
}

void st__classic_stats(st_classic_heap_t *h, st_heap_stats *out) {
  st_lock_acquire(&h->lock);
  *out = (st_heap_stats){.strategy = h->strategy,
                         .mapped_bytes = h->regions.mapped_bytes,
                         .peak_mapped_bytes = h->regions.peak_mapped,
                         .live_bytes = h->live_bytes,
                         .peak_live_bytes = h->peak_live_bytes,
                         .live_blocks = h->live_blocks,
                         .allocations = h->allocations,
                         .regions = h->regions.count};
  st_lock_release(&h->lock);
}

/* ---- fork: no heap lock may be held across it ------------------------------------------ */

static void fork_prepare(void) {
  st_lock_acquire(&registry_lock);
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &registry)
      st_lock_acquire(&ST_CONTAINER_OF(pos, st_classic_heap_t, registry_link)->lock);
}

static void fork_parent(void) {
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, &registry)
      st_lock_release(&ST_CONTAINER_OF(pos, st_classic_heap_t, registry_link)->lock);
  st_lock_release(&registry_lock);
}

void st__classic_fork_handlers_once(void) {
  static st_atomic_int xregistered;
  /* The child's only thread took the locks: it releases them as the parent does. */
  if (st_exchange_acq_rel(&xregistered, 1) == 0)
    pthread_atfork(fork_prepare, fork_parent, fork_parent);
}
