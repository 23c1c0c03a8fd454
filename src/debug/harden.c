/*
 * harden.c — hardened mode (STRATA_HARDENED=1, docs/security.md): the checks that need
 * every malloc and free, in the debug route (debug.h).
 *
 * Owns: the per-process secret, the canary and encoded size after each block, fill on
 * free, the quarantine of freed small blocks, and the guard page after each LARGE and
 * HUGE block. (The core does its part on its own slow paths: shuffled carving, page.c.)
 *
 * A block as the core sees it, and as this file lays it out:
 *
 *   p ─► | program's `size` bytes | canary, >= 1 byte | encoded size, 8 bytes | guard page |
 *        └──────────────────────── usable (core size − guard) ────────────────┘
 *
 * The guard page exists exactly when the core's block is larger than ST_SMALL_MAX (LARGE
 * and HUGE spans; slab blocks never are), so free finds the layout from the core's size
 * alone. The size is stored XORed with a mix of the secret and the block's address, and
 * the canary bytes come from the same mix: an overflow cannot restore them without the
 * secret, and one that reaches the size word makes it decode to nonsense.
 *
 * Freed small blocks are filled with FILL_BYTE and wait in the quarantine (stripes of
 * slots, one lock each, a thread uses one stripe); a block leaves it for a random slot's
 * newcomer, so reuse order is not predictable, and is checked to be still all FILL_BYTE:
 * a write after free is reported then. LARGE blocks go back at once (their pages may be
 * purged or merged; a second free finds them free in the page heap).
 */
#include <pthread.h>
#include <string.h>

#include "base/lock.h"
#include "base/options.h"
#include "base/report.h"
#include "base/valgrind.h"
#include "core/heap.h"
#include "debug/debug.h"
#include "os/os.h"

#define FILL_BYTE 0xdf
#define SIZE_WORD sizeof(uint64_t)
#define OVERHEAD (SIZE_WORD + 1) /* the size word and at least one canary byte */
#define STRIPES 8
#define SLOTS 64 /* blocks per stripe: 512 small blocks (<= 16 MiB) wait in all */

typedef struct quarantine_stripe {
  st_lock_t lock;
  uint32_t count;
  uint64_t random; /* xorshift64 state: which slot a newcomer takes */
  void *slot[SLOTS];
} quarantine_stripe;

static quarantine_stripe quarantine[STRIPES];
static uint64_t secret;          /* const after harden_init */
static st_atomic_int xinit_state; /* 0 none, 1 running, 2 done */
static st_atomic_size xnext_stripe;
static __thread unsigned tls_stripe; /* 1 + the thread's stripe; 0 before its first free */

static void harden_fork_prepare(void) {
  for (int i = 0; i < STRIPES; i++) st_lock_acquire(&quarantine[i].lock);
}
static void harden_fork_parent(void) {
  for (int i = STRIPES - 1; i >= 0; i--) st_lock_release(&quarantine[i].lock);
}

/* Once, from the first hardened allocation; the fork handlers are registered after the
 * state is published because pthread_atfork may allocate (and so come back here). */
static void harden_init(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&xinit_state, &expected, 1)) {
    while (st_load_acquire(&xinit_state) != 2) st_cpu_relax();
    return;
  }
  secret = st__os_random_seed() | 1;
  for (int i = 0; i < STRIPES; i++) {
    st_lock_init(&quarantine[i].lock);
    quarantine[i].random = secret ^ (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL;
  }
  st_store_release(&xinit_state, 2);
  pthread_atfork(harden_fork_prepare, harden_fork_parent, harden_fork_parent); /* child: as parent */
}

bool st__harden_enabled(void) {
  return st_option(ST_OPTION_HARDENED) != 0 && !st_running_on_memcheck();
}

/* The block's own mix of the secret: its canary bytes and the key of its size word. */
static uint64_t block_mix(const void *p) {
  uint64_t x = ((uint64_t)(uintptr_t)p ^ secret) * 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 31);
}

/* Canary byte at offset i is byte i % 8 of the block's mix, so whole words of the canary
 * are the mix itself (little-endian byte order, as on every target strata builds for). */
static uint8_t canary_byte(uint64_t mix, size_t offset) { return (uint8_t)(mix >> (offset & 7) * 8); }

/* The first offset in [from, to) whose byte is not the canary's, or `to`; to % 8 == 0. */
static size_t canary_mismatch(const uint8_t *b, uint64_t mix, size_t from, size_t to) {
  size_t i = from;
  for (; i < to && (i & 7) != 0; i++)
    if (b[i] != canary_byte(mix, i)) return i;
  for (; i < to; i += sizeof mix) {
    uint64_t word;
    memcpy(&word, b + i, sizeof word);
    if (word != mix) break;
  }
  for (; i < to; i++)
    if (b[i] != canary_byte(mix, i)) return i;
  return to;
}

/* What the program may use of a core block: all of it but the guard page. */
static size_t usable_of(size_t core_size) {
  return core_size > ST_SMALL_MAX ? core_size - ST_PAGE_SIZE : core_size;
}

static void *guard_of(void *p, size_t core_size) {
  return core_size > ST_SMALL_MAX ? (char *)p + core_size - ST_PAGE_SIZE : NULL;
}

static void seal(void *p, size_t size, size_t usable) {
  uint64_t mix = block_mix(p);
  uint8_t *b = p;
  size_t i = size, end = usable - SIZE_WORD;
  for (; i < end && (i & 7) != 0; i++) b[i] = canary_byte(mix, i);
  for (; i < end; i += sizeof mix) memcpy(b + i, &mix, sizeof mix);
  uint64_t word = (uint64_t)size ^ mix;
  memcpy((char *)p + usable - SIZE_WORD, &word, SIZE_WORD);
}

void *st__harden_malloc(size_t size, size_t align, bool zero) {
  if (ST_UNLIKELY(st_load_acquire(&xinit_state) != 2)) harden_init();
  size_t need = size + OVERHEAD;
  if (need < size) return NULL;
  if (need > ST_SMALL_MAX && __builtin_add_overflow(need, ST_PAGE_SIZE, &need)) return NULL;
  void *p = align == 0 ? st__core_malloc(need, false) : st__core_malloc_aligned(need, align);
  if (p == NULL) return NULL;
  size_t core_size = st__core_usable_size(p, "malloc");
  void *guard = guard_of(p, core_size);
  if (guard != NULL && !st__os_protect(guard, ST_PAGE_SIZE, false)) {
    st__core_free(p, NULL, "malloc");
    return NULL;
  }
  if (zero) memset(p, 0, size);
  seal(p, size, usable_of(core_size));
  return p;
}

/* Ends the program if a quarantined block p (a slab block: a multiple of 16 bytes) was
 * written after its free. Compares words: this runs for every free. */
static void check_fill(const void *p, const char *fn) {
  size_t usable = st__core_usable_size(p, fn);
  const uint64_t fill = 0x0101010101010101ULL * FILL_BYTE;
  for (size_t i = 0; i < usable; i += sizeof fill) {
    uint64_t word;
    memcpy(&word, (const char *)p + i, sizeof word);
    if (ST_UNLIKELY(word != fill))
      st__fatal("%s(): use after free: block %p (%zu bytes) was written near offset %zu after "
                "it was freed",
                fn, p, usable, i);
  }
}

static bool in_quarantine(const void *p) {
  bool found = false;
  for (int s = 0; s < STRIPES && !found; s++) {
    st_lock_acquire(&quarantine[s].lock);
    for (uint32_t i = 0; i < quarantine[s].count && !found; i++) found = quarantine[s].slot[i] == p;
    st_lock_release(&quarantine[s].lock);
  }
  return found;
}

/* The requested size of live block p after checking its canary and size word; core_size:
 * the core's size of the block. */
static size_t checked_size(const void *p, const char *fn, size_t *core_size) {
  *core_size = st__core_usable_size(p, fn); /* invalid pointers end here */
  size_t usable = usable_of(*core_size);
  const uint8_t *b = p;
  if (b[0] == FILL_BYTE && b[usable - 1] == FILL_BYTE && in_quarantine(p))
    st__fatal("%s(): double free of %p (the block is in the quarantine)", fn, p);
  uint64_t mix = block_mix(p), word;
  memcpy(&word, b + usable - SIZE_WORD, SIZE_WORD);
  size_t size = (size_t)(word ^ mix);
  if (ST_UNLIKELY(size > usable - OVERHEAD))
    st__fatal("%s(): heap overflow past block %p: its size word at offset %zu was overwritten",
              fn, p, usable - SIZE_WORD);
  size_t bad = canary_mismatch(b, mix, size, usable - SIZE_WORD);
  if (ST_UNLIKELY(bad != usable - SIZE_WORD))
    st__fatal("%s(): heap overflow: block %p of %zu bytes was written at offset %zu, past its end",
              fn, p, size, bad);
  return size;
}

size_t st__harden_size(const void *p, const char *fn) {
  size_t core_size;
  return checked_size(p, fn, &core_size);
}

static quarantine_stripe *my_stripe(void) {
  if (tls_stripe == 0) tls_stripe = 1 + (unsigned)(st_fetch_add_relaxed(&xnext_stripe, 1) % STRIPES);
  return &quarantine[tls_stripe - 1];
}

/* Puts p in the quarantine; returns the block it displaced (or NULL) for the caller to free. */
static void *quarantine_swap(void *p) {
  quarantine_stripe *q = my_stripe();
  void *out = NULL;
  st_lock_acquire(&q->lock);
  if (q->count < SLOTS) {
    q->slot[q->count++] = p;
  } else {
    uint64_t x = q->random;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    q->random = x;
    uint32_t i = (uint32_t)(x % SLOTS);
    out = q->slot[i];
    q->slot[i] = p;
  }
  st_lock_release(&q->lock);
  return out;
}

void st__harden_free(void *p, st_span_t *span, const char *fn) {
  size_t core_size;
  checked_size(p, fn, &core_size);
  void *guard = guard_of(p, core_size);
  if (guard != NULL) { /* LARGE or HUGE: back at once, readable again for the page heap */
    if (!st__os_protect(guard, ST_PAGE_SIZE, true))
      st__fatal("%s(): cannot lift the guard page of block %p", fn, p);
    st__core_free(p, span, fn);
    return;
  }
  memset(p, FILL_BYTE, core_size);
  void *out = quarantine_swap(p);
  if (out == NULL) return;
  check_fill(out, fn);
  st__core_free(out, NULL, fn);
}
