/*
 * fit.c — one boundary-tag heap and five ways to search its free blocks: first-fit,
 * next-fit, best-fit, worst-fit and segregated fits (backend.h).
 *
 * Owns: the block layout inside an arena region, splitting, immediate coalescing with both
 * neighbours, the index of free blocks (bins of doubly linked lists), and one search
 * function per policy. The five policies share every line except how a free block is
 * binned and how the bins are searched (struct fit_policy).
 *
 *   allocated block:  [ size|flags | cookie ][ payload: size - 16 bytes .............. ]
 *   free block:       [ size|flags | next   ][ prev | ......................... | size ]
 *                       ^ block (16-aligned)                              footer ^
 *   flags: FIT_ALLOC (this block is live), FIT_PREV_FREE (the block before is free, so its
 *   footer, the word just before this header, gives its size). Only free blocks carry a
 *   footer: a live block's neighbour never needs it.
 *   region data:      [ block | block | ... | block | epilogue header (size 0, ALLOC) ]
 *
 * Invariants: blocks tile the region's data exactly; no two free blocks are adjacent
 * (coalescing is immediate); every free block is in exactly one bin; a live block's cookie
 * is fit_cookie(block, size), so a pointer that is not a live block's payload is caught.
 */
#include <string.h>

#include "base/check.h"
#include "base/report.h"
#include "classic/backend.h"

#define FIT_ALLOC ((size_t)1)
#define FIT_PREV_FREE ((size_t)2)
#define FIT_FLAGS ((size_t)15)
#define FIT_HEADER 16
#define FIT_MIN_BLOCK 32 /* header, prev link and footer of a free block */
#define FIT_BINS 128
#define FIT_EXACT_MAX 1024 /* one bin per 16-byte size up to here */
#define FIT_COOKIE_KEY ((uintptr_t)0x9e3779b97f4a7c15ull)

typedef struct fit_block {
  size_t head;            /* size | flags */
  struct fit_block *next; /* free: next in bin; live: the cookie */
  struct fit_block *prev; /* free only: previous in bin */
} fit_block;

typedef struct fit_state fit_state;

typedef struct fit_policy {
  unsigned (*bin_of)(size_t size);
  bool sorted; /* bins kept in ascending size order */
  fit_block *(*search)(fit_state *s, size_t need);
} fit_policy;

struct fit_state {
  const fit_policy *policy; /* const after init */
  fit_block bins[FIT_BINS]; /* sentinels of circular lists */
  uint64_t nonempty[2];     /* bit b: bins[b] holds a block */
  fit_block *rover;         /* next-fit: where the next search starts (a free block or NULL) */
};

_Static_assert(sizeof(fit_state) <= ST_BACKEND_STATE_BYTES, "fit state fits the heap");

/* ---- blocks --------------------------------------------------------------------------- */

ST_INLINE size_t block_size(const fit_block *b) { return b->head & ~FIT_FLAGS; }
ST_INLINE fit_block *block_at(void *p, size_t offset) { return (fit_block *)((char *)p + offset); }
ST_INLINE fit_block *block_next(fit_block *b) { return block_at(b, block_size(b)); }
ST_INLINE size_t *block_footer(fit_block *b) { return (size_t *)((char *)b + block_size(b)) - 1; }
ST_INLINE uintptr_t fit_cookie(const fit_block *b, size_t size) {
  return ((uintptr_t)b ^ size) * FIT_COOKIE_KEY;
}

/* The block size that holds size payload bytes. */
static size_t block_size_for(size_t size) {
  size_t n = st_align_up(size + FIT_HEADER, 16);
  return n < FIT_MIN_BLOCK ? FIT_MIN_BLOCK : n;
}

static void mark_live(fit_block *b, size_t size) {
  b->head = size | FIT_ALLOC | (b->head & FIT_PREV_FREE);
  b->next = (fit_block *)fit_cookie(b, size);
  block_next(b)->head &= ~FIT_PREV_FREE;
}

/* ---- the index: bins of doubly linked free blocks -------------------------------------- */

static unsigned bin_single(size_t size) {
  ST_UNUSED(size);
  return 0;
}

/* One bin per 16-byte size up to FIT_EXACT_MAX, then four per power of two (bins hold
 * blocks in [lower bound, next bin's lower bound)). Used by best, worst and segregated. */
static unsigned bin_sized(size_t size) {
  if (size <= FIT_EXACT_MAX) return (unsigned)(size / 16);
  unsigned log = st_log2_floor(size);
  return FIT_EXACT_MAX / 16 + (log - 10) * 4 + (unsigned)((size >> (log - 2)) & 3);
}

/* The first non-empty bin >= b, or FIT_BINS. */
static unsigned next_nonempty(const fit_state *s, unsigned b) {
  for (unsigned w = b / 64; w < 2; w++) {
    uint64_t bits = s->nonempty[w];
    if (w == b / 64) bits &= ~(uint64_t)0 << (b % 64);
    if (bits != 0) return w * 64 + st_ctz64(bits);
  }
  return FIT_BINS;
}

static void index_insert(fit_state *s, fit_block *f) {
  size_t size = block_size(f);
  unsigned b = s->policy->bin_of(size);
  fit_block *at = s->bins[b].next; /* insert before at */
  if (s->policy->sorted)
    while (at != &s->bins[b] && block_size(at) < size) at = at->next;
  f->next = at;
  f->prev = at->prev;
  at->prev->next = f;
  at->prev = f;
  s->nonempty[b / 64] |= (uint64_t)1 << (b % 64);
}

static void index_remove(fit_state *s, fit_block *f) {
  if (s->rover == f) s->rover = f->next;
  f->prev->next = f->next;
  f->next->prev = f->prev;
  unsigned b = s->policy->bin_of(block_size(f));
  if (s->bins[b].next == &s->bins[b]) s->nonempty[b / 64] &= ~((uint64_t)1 << (b % 64));
}

/* First block of at least need bytes from `from` to the end of bin b (sentinel excluded). */
static fit_block *scan_bin(fit_state *s, unsigned b, fit_block *from, size_t need) {
  for (fit_block *f = from; f != &s->bins[b]; f = f->next)
    if (block_size(f) >= need) return f;
  return NULL;
}

/* ---- the five searches ------------------------------------------------------------------ */

/* First-fit: one list, newest free block first; the first that fits. O(free blocks). */
static fit_block *search_first(fit_state *s, size_t need) {
  return scan_bin(s, 0, s->bins[0].next, need);
}

/* Next-fit: first-fit resuming where the last search ended, wrapping around once. */
static fit_block *search_next(fit_state *s, size_t need) {
  fit_block *head = &s->bins[0];
  fit_block *start = s->rover != NULL && s->rover != head ? s->rover : head->next;
  fit_block *f = scan_bin(s, 0, start, need);
  if (f == NULL) { /* wrap: from the head up to where we started */
    for (f = head->next; f != start && block_size(f) < need; f = f->next) {
    }
    if (f == start) f = NULL;
  }
  s->rover = f != NULL ? f->next : NULL;
  return f;
}

/* Best-fit: the size bins, each kept sorted by size. In need's bin the first block that
 * fits is the smallest that fits; any higher bin's first block is larger than all of it.
 * Exact bins hold one size, so they sort for free; a search or insertion walks at most one
 * bin of sizes within 25% of each other, instead of every free block. */
static fit_block *search_best(fit_state *s, size_t need) {
  unsigned b = bin_sized(need);
  fit_block *f = scan_bin(s, b, s->bins[b].next, need);
  if (f != NULL) return f;
  b = next_nonempty(s, b + 1);
  return b < FIT_BINS ? s->bins[b].next : NULL;
}

/* Worst-fit: the largest free block, the last of the highest non-empty bin. O(1). */
static fit_block *search_worst(fit_state *s, size_t need) {
  for (unsigned w = 2; w-- > 0;) {
    if (s->nonempty[w] == 0) continue;
    unsigned b = w * 64 + st_log2_floor(s->nonempty[w]);
    fit_block *f = s->bins[b].prev;
    return block_size(f) >= need ? f : NULL;
  }
  return NULL;
}

/* Segregated fits: the size bins, unsorted. A small request takes the first block of the
 * first non-empty bin >= its own, which always fits: O(1). Larger ones scan their own bin
 * first (its blocks may be a little smaller than need). */
static fit_block *search_segregated(fit_state *s, size_t need) {
  unsigned b = bin_sized(need);
  if (need > FIT_EXACT_MAX) {
    fit_block *f = scan_bin(s, b, s->bins[b].next, need);
    if (f != NULL) return f;
    b++;
  }
  b = next_nonempty(s, b);
  return b < FIT_BINS ? s->bins[b].next : NULL;
}

/* ---- free space: coalescing and splitting ---------------------------------------------- */

/* Makes [b, b + size) one free block, merged with a free neighbour on either side, and
 * indexes it. b's FIT_PREV_FREE flag must be current. */
static void release(fit_state *s, fit_block *b, size_t size) {
  fit_block *next = block_at(b, size);
  if (!(next->head & FIT_ALLOC)) {
    index_remove(s, next);
    size += block_size(next);
  }
  if (b->head & FIT_PREV_FREE) {
    size_t prev_size = *((size_t *)b - 1);
    b->head = 0; /* a stale header would let a second free of b pass for a live block */
    b = (fit_block *)((char *)b - prev_size); /* not block_at(b, 0 - n): that overflows */
    index_remove(s, b);
    size += prev_size;
  }
  b->head = size; /* the block before a free block is live */
  *block_footer(b) = size;
  block_next(b)->head |= FIT_PREV_FREE;
  index_insert(s, b);
}

/* Cuts a live block b down to size bytes, freeing the tail when it can hold a block. */
static void trim_tail(fit_state *s, fit_block *b, size_t size) {
  size_t have = block_size(b);
  if (have - size < FIT_MIN_BLOCK) return;
  b->head = size | (b->head & FIT_FLAGS);
  b->next = (fit_block *)fit_cookie(b, size);
  fit_block *tail = block_at(b, size);
  tail->head = (have - size) | FIT_ALLOC;
  release(s, tail, have - size);
}

static void *fit_alloc(void *state, size_t size, size_t align, size_t *usable) {
  fit_state *s = state;
  size_t want = block_size_for(size);
  /* An aligned request needs room for a free fragment in front of the aligned block. */
  size_t need = align <= 16 ? want : want + align + FIT_MIN_BLOCK;
  fit_block *f = s->policy->search(s, need);
  if (f == NULL) return NULL;
  index_remove(s, f);
  size_t have = block_size(f);
  f->head = have | FIT_ALLOC | (f->head & FIT_PREV_FREE);
  if (align > 16) {
    uintptr_t payload = st_align_up((uintptr_t)f + FIT_HEADER, align);
    if (payload - FIT_HEADER != (uintptr_t)f && payload - FIT_HEADER - (uintptr_t)f < FIT_MIN_BLOCK)
      payload += align;
    size_t front = payload - FIT_HEADER - (uintptr_t)f;
    if (front != 0) {
      fit_block *b = block_at(f, front);
      b->head = (have - front) | FIT_ALLOC;
      release(s, f, front); /* f's next is b, live: f merges backwards at most */
      f = b;
      have -= front;
      f->head = have | FIT_ALLOC | FIT_PREV_FREE;
    }
  }
  mark_live(f, have);
  trim_tail(s, f, want);
  *usable = block_size(f) - FIT_HEADER;
  return (char *)f + FIT_HEADER;
}

/* The live block whose payload is p, or a diagnostic. */
static fit_block *live_block(const st_region_t *r, const void *p, const char *fn) {
  fit_block *b = (fit_block *)((char *)p - FIT_HEADER);
  ST_CHECK((uintptr_t)p % 16 == 0 && (char *)b >= r->data && (char *)p < r->end - FIT_HEADER,
           "%s(): invalid pointer %p (not the start of a block)", fn, p);
  size_t size = block_size(b);
  if (!(b->head & FIT_ALLOC) && size >= FIT_MIN_BLOCK && (char *)b + size <= r->end &&
      *block_footer(b) == size)
    st__fatal("%s(): double free of %p (block of %zu bytes already free)", fn, p, size);
  ST_CHECK((b->head & FIT_ALLOC) && (uintptr_t)b->next == fit_cookie(b, size),
           "%s(): invalid pointer or double free of %p (not a live block)", fn, p);
  return b;
}

static size_t fit_free(void *state, st_region_t *r, void *p, const char *fn) {
  fit_block *b = live_block(r, p, fn);
  size_t size = block_size(b);
  release(state, b, size);
  return size - FIT_HEADER;
}

static size_t fit_usable(const void *state, const st_region_t *r, const void *p, const char *fn) {
  ST_UNUSED(state);
  return block_size(live_block(r, p, fn)) - FIT_HEADER;
}

/* Shrinks in place, or grows into a free block that follows. */
static bool fit_resize(void *state, st_region_t *r, void *p, size_t size, size_t *usable) {
  fit_state *s = state;
  fit_block *b = live_block(r, p, "realloc");
  size_t want = block_size_for(size), have = block_size(b);
  if (want > have) {
    fit_block *next = block_next(b);
    if ((next->head & FIT_ALLOC) || have + block_size(next) < want) return false;
    index_remove(s, next);
    have += block_size(next);
    b->head = have | (b->head & FIT_FLAGS);
    mark_live(b, have);
  }
  trim_tail(s, b, want);
  *usable = block_size(b) - FIT_HEADER;
  return true;
}

/* ---- regions ------------------------------------------------------------------------------ */

static void fit_add_region(void *state, st_region_t *r) {
  fit_block *first = (fit_block *)r->data;
  size_t size = (size_t)(r->end - r->data) - FIT_HEADER;
  fit_block *epilogue = block_at(first, size);
  epilogue->head = 0 | FIT_ALLOC;
  first->head = size | FIT_ALLOC;
  release(state, first, size);
}

static void fit_remove_region(void *state, st_region_t *r) {
  fit_block *first = (fit_block *)r->data;
  ST_CHECK(!(first->head & FIT_ALLOC) && r->data + block_size(first) == r->end - FIT_HEADER,
           "fit: removing region %p, which is not empty", (void *)r);
  index_remove(state, first);
}

static bool fit_validate(const void *state, const st_region_t *r) {
  ST_UNUSED(state);
  bool prev_free = false;
  size_t live = 0;
  fit_block *b = (fit_block *)r->data;
  for (;;) {
    size_t size = block_size(b);
    if (((b->head & FIT_PREV_FREE) != 0) != prev_free) {
      st__report("fit: block %p: prev-free flag is wrong", (void *)b);
      return false;
    }
    if (size == 0) break; /* the epilogue */
    if (size % 16 != 0 || size < FIT_MIN_BLOCK || (char *)b + size > r->end - FIT_HEADER) {
      st__report("fit: block %p: bad size %zu", (void *)b, size);
      return false;
    }
    bool is_free = !(b->head & FIT_ALLOC);
    if (is_free && (prev_free || *block_footer(b) != size || b->next->prev != b)) {
      st__report("fit: free block %p: neighbour free, footer or links wrong", (void *)b);
      return false;
    }
    if (!is_free && (uintptr_t)b->next != fit_cookie(b, size)) {
      st__report("fit: live block %p: cookie overwritten", (void *)b);
      return false;
    }
    if (!is_free) live += size - FIT_HEADER;
    prev_free = is_free;
    b = block_at(b, size);
  }
  if ((char *)b != r->end - FIT_HEADER || live != r->used) {
    st__report("fit: region %p: blocks end at %p, live %zu (expected %zu)", (void *)r, (void *)b,
               live, r->used);
    return false;
  }
  return true;
}

static void fit_visit(const void *state, const st_region_t *r, st_heap_visitor fn, void *arg) {
  ST_UNUSED(state);
  for (fit_block *b = (fit_block *)r->data; block_size(b) != 0; b = block_next(b))
    if (b->head & FIT_ALLOC) fn((char *)b + FIT_HEADER, block_size(b) - FIT_HEADER, arg);
}

/* ---- the five backends ------------------------------------------------------------------ */

static const fit_policy policy_first = {bin_single, false, search_first};
static const fit_policy policy_next = {bin_single, false, search_next};
static const fit_policy policy_best = {bin_sized, true, search_best};
static const fit_policy policy_worst = {bin_sized, true, search_worst};
static const fit_policy policy_segregated = {bin_sized, false, search_segregated};

static void fit_init(fit_state *s, const fit_policy *policy) {
  memset(s, 0, sizeof *s);
  s->policy = policy;
  for (unsigned b = 0; b < FIT_BINS; b++) s->bins[b].next = s->bins[b].prev = &s->bins[b];
}

#define FIT_BACKEND(var, label, policy)                                                            \
  static void init_##policy(void *state) { fit_init(state, &policy); }                             \
  const st_backend var = {.name = label,                                                           \
                          .init = init_##policy,                                                   \
                          .add_region = fit_add_region,                                            \
                          .remove_region = fit_remove_region,                                      \
                          .alloc = fit_alloc,                                                      \
                          .free = fit_free,                                                        \
                          .usable = fit_usable,                                                    \
                          .resize = fit_resize,                                                    \
                          .validate = fit_validate,                                                \
                          .visit = fit_visit}

FIT_BACKEND(st__backend_first_fit, "first-fit", policy_first);
FIT_BACKEND(st__backend_next_fit, "next-fit", policy_next);
FIT_BACKEND(st__backend_best_fit, "best-fit", policy_best);
FIT_BACKEND(st__backend_worst_fit, "worst-fit", policy_worst);
FIT_BACKEND(st__backend_segregated, "segregated", policy_segregated);
