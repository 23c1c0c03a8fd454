/*
 * harden.c — hardened mode (STRATA_HARDENED=1, docs/security.md): the checks that need
 * every malloc and free, in the debug route (debug.h).
 *
 * Owns: the per-process secret of the block checks, the canary and encoded size after each
 * block, fill on free, each thread's quarantine of freed blocks, and the guard page after
 * each LARGE and HUGE block. (The core does its part: encoded free-list links, shuffled
 * carving and a guard page at the end of each slab span, core/page.c.)
 *
 * A block as the core sees it, and as this file lays it out:
 *
 *   p ─► | program's `size` bytes | canary, >= 1 byte | encoded size, 8 bytes | guard page |
 *        └──────────────────────── usable (core size − guard) ────────────────┘
 *
 * The guard page exists exactly when the core's block is larger than GUARDED_MIN (LARGE
 * and HUGE spans from 32 KiB up; slab blocks never are), so free finds the layout from the
 * core's size alone. The size is stored XORed with a mix of the secret and the block's address, and
 * the canary bytes come from the same mix: an overflow cannot restore them without the
 * secret, and one that reaches the size word makes it decode to nonsense.
 *
 * A freed block's first word becomes the quarantine mark (the complement of its mix, which
 * only this file can compute) and the rest FILL_BYTE: all of it (request, canary, slack and
 * size word, the last two checked just before) when the block is at most
 * STRATA_HARDENED_FILL bytes (256 unless set; 0: any length), else that many bytes from
 * the start, the canary and size word left in place. It then waits in the freeing
 * thread's quarantine, a ring that needs no lock; once it is full (in blocks or in bytes)
 * its oldest blocks leave in a batch, in a random order, so reuse order is not
 * predictable; each must still read exactly as it was left (mark, fill, and any canary
 * and size word past the fill), else a write after free is reported, before the core
 * reuses it. The common slab malloc and free take paths that need no stack frame, which
 * the api's slow paths call directly in hardened mode alone (st__harden_malloc_small,
 * st__harden_free_small). A free that finds the mark is a double free. A freed LARGE
 * block goes through the same quarantine, marked and filled alike; when it leaves, it is
 * kept as one of the thread's spares for the next request of its length, or goes back to
 * the page heap with its guard page still set. HUGE blocks are unmapped at once (a later
 * write faults, and the core remembers the last few for double frees).
 *
 * realloc checks the block as free does, then keeps it in place when its core size allows
 * (sealing it again for the new size), or grows a guarded LARGE block into the free pages
 * after it, its guard page moving to the new end; otherwise it moves and the old block is
 * freed as by free.
 */
#include <pthread.h>
#include <string.h>

#include "base/options.h"
#include "base/report.h"
#include "core/heap.h"
#include "core/page.h"
#include "core/pageheap.h"
#include "core/pagemap.h"
#include "core/thread.h"
#include "debug/debug.h"
#include "os/os.h"

#define FILL_BYTE 0xdf
#define FILL_WORD (0x0101010101010101ULL * FILL_BYTE)
#define SIZE_WORD sizeof(uint64_t)
#define OVERHEAD (SIZE_WORD + 1) /* the size word and at least one canary byte */
/* Fills up to this many bytes are written and compared a word at a time, inline: for the
 * small blocks most programs free, the calls to memset and memcmp cost more than the work. */
#define FILL_INLINE_MAX 72
/* Slab blocks up to this size, filled whole (filled_bytes), are filled and checked by
 * fill_whole and whole_fill_intact: a short loop of 16-byte steps, inline. */
#define WHOLE_INLINE_MAX 128
#define QUARANTINE_SLOTS 64      /* blocks per thread */
#define QUARANTINE_BYTES ((size_t)4 << 20) /* per thread, of LARGE blocks' usable bytes */
#define QUARANTINE_LARGE_MAX ((size_t)256 << 10) /* larger LARGE blocks go back at once */
/* LARGE blocks that left the quarantine are kept for the thread's next LARGE malloc of the
 * same size: a guard page costs two mprotect calls (and a TLB shootdown) and the page heap
 * a lock, which programs cycling through one buffer size would pay on every malloc. 32
 * blocks, at most 2 MiB of them, per thread: 8 blocks left a program whose count of live
 * 32 KiB blocks wanders (bench/workloads/threads) a guard page for one malloc in ten. */
#define SPARE_SLOTS 32
#define SPARE_BYTES ((size_t)2 << 20)

/* A block leaving the quarantine, or a spare. */
typedef struct quarantined {
  void *p;
  st_span_t *span;
  size_t usable; /* what the program may use of it (no guard page) */
} quarantined;

/* A block in the quarantine's ring: two words, so the shuffle moves little. Its usable
 * bytes are found again when it leaves (held_usable). */
typedef struct held {
  void *p;
  st_span_t *span;
} held;

/* One thread's quarantine (owner only: no lock): a ring of QUARANTINE_SLOTS blocks, in
 * batches of QUARANTINE_BATCH consecutive frees. Each block takes a random place among
 * those of its batch already freed (an inside-out Fisher-Yates shuffle: one random word
 * per batch, 8 bits per block), so a batch's slots hold its blocks in a uniformly random
 * order. The free that fills the ring releases the oldest batch, checked and given back in
 * slot order (so the ring is never full between frees), as does one whose LARGE block
 * would take the LARGE blocks held past QUARANTINE_BYTES, before it: a block waits for at
 * least QUARANTINE_SLOTS - QUARANTINE_BATCH later frees of the thread, the order of reuse
 * is unpredictable, and the release needs no random pick. The batch is small on purpose:
 * releasing half the ring at once emptied whole slab spans, which went back to the page
 * heap and were taken again (a malloc(1024)+free loop: 17,189 new spans instead of 3).
 * Invariant: `released` is a multiple of QUARANTINE_BATCH, so a batch is released whole
 * (release_oldest realigns both counters when it empties the ring mid-batch). */
#define QUARANTINE_BATCH 8
typedef struct quarantine {
  uint32_t freed;    /* blocks ever put in (mod 2^32): the next goes to slot freed % SLOTS */
  uint32_t released; /* blocks ever taken out: the oldest held is at released % SLOTS */
  size_t bytes;      /* the usable bytes of the LARGE blocks held; slab blocks count none
                        (QUARANTINE_SLOTS of at most ST_SMALL_MAX bytes stay far below) */
  uint64_t random;   /* xorshift64 state */
  uint64_t shuffle;  /* the random bits left for the batch being filled */
  held slot[QUARANTINE_SLOTS];
  uint32_t spare_count;
  size_t spare_bytes; /* the usable bytes of the spares */
  /* spare[i]'s length in pages, guard included: take_spare finds a length with one memchr
   * over these bytes instead of a loop over the entries. */
  uint8_t spare_pages[SPARE_SLOTS];
  quarantined spare[SPARE_SLOTS]; /* LARGE blocks out of the quarantine, guard page kept */
} quarantine;

_Static_assert((QUARANTINE_SLOTS & (QUARANTINE_SLOTS - 1)) == 0, "the ring's index is masked");
_Static_assert(QUARANTINE_SLOTS % QUARANTINE_BATCH == 0 && QUARANTINE_BATCH * 8 <= 64,
               "whole batches fill the ring; one random word shuffles a batch");
_Static_assert(QUARANTINE_BYTES / QUARANTINE_LARGE_MAX >= (size_t)2 * QUARANTINE_BATCH,
               "the byte limit never releases a part of a batch");
_Static_assert((QUARANTINE_LARGE_MAX >> ST_PAGE_SHIFT) + 2 <= UINT8_MAX,
               "a spare's length in pages (with its guard and rounding) fits spare_pages");

static uint64_t secret;           /* const after harden_init */
/* How many bytes from a freed block's start are filled and checked (STRATA_HARDENED_FILL;
 * SIZE_MAX for the whole block): const after harden_init. */
static size_t fill_limit;
/* The longest slab block whose fill covers it whole and is stored inline (WHOLE_INLINE_MAX,
 * or fill_limit if smaller): const after harden_init. */
static size_t inline_fill_max;
static st_atomic_int xinit_state; /* 0 none, 1 running, 2 done */
static pthread_key_t exit_key;    /* its destructor empties the exiting thread's quarantine */
/* The thread's quarantine, a block of the core's made at its first free; initial-exec TLS
 * (one pointer) so the free path reads it without a call. */
static __thread quarantine *tls_quarantine __attribute__((tls_model("initial-exec")));

static void quarantine_drain(void *arg);
static void quarantine_drain_at_exit(void);

/* Once, from the first hardened call. pthread_key_create does not allocate. */
static void harden_init(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&xinit_state, &expected, 1)) {
    while (st_load_acquire(&xinit_state) != 2) st_cpu_relax();
    return;
  }
  secret = st__os_random_seed() | 1;
  long fill = st_option(ST_OPTION_HARDENED_FILL);
  fill_limit = fill == 0 ? SIZE_MAX : (size_t)fill;
  inline_fill_max = fill_limit < WHOLE_INLINE_MAX ? fill_limit : WHOLE_INLINE_MAX;
  pthread_key_create(&exit_key, quarantine_drain);
  st__thread_set_exit_hook(quarantine_drain_at_exit);
  st_store_release(&xinit_state, 2);
}

ST_INLINE void harden_ready(void) {
  if (ST_UNLIKELY(st_load_acquire(&xinit_state) != 2)) harden_init();
}

/* The core's flag: set at its init from STRATA_HARDENED (off under memcheck). */
bool st__harden_enabled(void) { return st__page_hardened(); }

/* The block's own mix of the secret: its canary bytes and the key of its size word. */
ST_INLINE uint64_t block_mix(const void *p) {
  uint64_t x = ((uint64_t)(uintptr_t)p ^ secret) * 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 31);
}

/* The first offset in [from, to) whose byte is not byte (offset % 8) of pattern, or `to`.
 * The mark (at offset 0) is such a pattern, the canary's bytes are one with canary_pattern,
 * and the fill is one byte. Whole
 * words are compared, rotated to the offset's place; the bytes are looked at only for a
 * tail shorter than a word and to name the offset of a mismatch. Reads nothing past `to`. */
static size_t pattern_mismatch(const uint8_t *b, uint64_t pattern, size_t from, size_t to) {
  if (from >= to) return to;
  unsigned shift = (unsigned)(from & 7) * 8;
  uint64_t want = shift == 0 ? pattern : pattern >> shift | pattern << (64 - shift), word;
  size_t i = from;
  for (; i + sizeof word <= to; i += sizeof word) {
    memcpy(&word, b + i, sizeof word);
    if (word != want) goto find;
  }
find: /* the mismatching word, or the tail shorter than a word (never read past `to`) */
  for (; i < to; i++)
    if (b[i] != (uint8_t)(pattern >> (i & 7) * 8)) return i;
  return to;
}

/* The canary: the CANARY_MAX bytes after the request, or fewer up to the size word. A
 * linear overflow changes its first byte; the rest of the slack is neither written nor
 * checked (it would cost a pass over up to a quarter of the block on every malloc and free). */
#define CANARY_MAX 8

ST_INLINE size_t canary_end(size_t size, size_t usable) {
  return size + CANARY_MAX < usable - SIZE_WORD ? size + CANARY_MAX : usable - SIZE_WORD;
}

/* Where the fill of a freed block of `usable` bytes ends: at its end when the block is at
 * most fill_limit bytes, over the request, the canary and size word (both checked at free
 * just before) and the slack between them, so the quarantine's check of the block is one
 * pass that needs neither the size nor the canary's place; else fill_limit bytes in (never
 * before the mark's end: the check starts there), the canary and size word left for that
 * check. */
ST_INLINE size_t filled_bytes(size_t usable) {
  if (ST_LIKELY(usable <= fill_limit)) return usable;
  return fill_limit > 8 ? fill_limit : 8;
}

/* The fill as the quarantine checks it: memcmp against this compares many bytes per step. */
static const uint8_t fill_bytes[1024] = {[0 ... 1023] = FILL_BYTE};


/* Fills bytes [8, filled) of a freed block (filled >= 8); its first word is the mark's,
 * written after. Up to FILL_INLINE_MAX bytes, words are stored from both ends towards the
 * middle, overlapping where they meet: no loop, and nothing written at `filled` or past it
 * (the canary may start there). The word that ends at `filled` may reach into the mark. */
ST_INLINE void fill_freed(uint8_t *b, size_t filled) {
  if (filled > FILL_INLINE_MAX) {
    memset(b + 8, FILL_BYTE, filled - 8);
    return;
  }
  const uint64_t word = FILL_WORD;
  memcpy(b + filled - 8, &word, 8);
  if (filled <= 16) return;
  memcpy(b + 8, &word, 8); /* [8, 16) and [filled - 8, filled): all of it up to 24 */
  if (filled <= 24) return;
  memcpy(b + 16, &word, 8), memcpy(b + filled - 16, &word, 8); /* up to 40 */
  if (filled <= 40) return;
  memcpy(b + 24, &word, 8), memcpy(b + 32, &word, 8); /* up to 72 */
  memcpy(b + filled - 24, &word, 8), memcpy(b + filled - 32, &word, 8);
}

/* The whole-block fill of a slab block: bytes [8, usable), usable a multiple of 16 (every
 * class is), the word at 8 and then 16 bytes a step. */
ST_INLINE void fill_whole(uint8_t *b, size_t usable) {
  const uint64_t word = FILL_WORD;
  memcpy(b + 8, &word, 8);
  for (size_t i = 16; i < usable; i += 16) memcpy(b + i, &word, 8), memcpy(b + i + 8, &word, 8);
}

ST_INLINE uint64_t fill_diff_at(const uint8_t *b, size_t offset) {
  uint64_t word;
  memcpy(&word, b + offset, sizeof word);
  return word ^ FILL_WORD;
}

/* Whether fill_whole's bytes still hold the fill. */
ST_INLINE bool whole_fill_intact(const uint8_t *b, size_t usable) {
  uint64_t diff = fill_diff_at(b, 8);
  for (size_t i = 16; i < usable; i += 16) diff |= fill_diff_at(b, i) | fill_diff_at(b, i + 8);
  return diff == 0;
}

/* fill_mismatch of a fill longer than FILL_INLINE_MAX: memcmp against the fill. */
static size_t long_fill_mismatch(const uint8_t *b, size_t filled) {
  for (size_t i = 8; i < filled; i += sizeof fill_bytes) {
    size_t n = filled - i < sizeof fill_bytes ? filled - i : sizeof fill_bytes;
    if (ST_UNLIKELY(memcmp(b + i, fill_bytes, n) != 0)) return pattern_mismatch(b, FILL_WORD, i, i + n);
  }
  return filled;
}

/* The first offset in [8, filled) that does not hold the fill, or `filled` (filled >= 8):
 * the words fill_freed stored, compared inline. */
ST_INLINE size_t fill_mismatch(const uint8_t *b, size_t filled) {
  if (filled > FILL_INLINE_MAX) return long_fill_mismatch(b, filled);
  if (filled == 8) return filled;
  /* The word ending at `filled` without the bytes of the mark it may cover. */
  uint64_t diff = fill_diff_at(b, filled - 8) >> (filled < 16 ? (16 - filled) * 8 : 0);
  if (filled > 16) diff |= fill_diff_at(b, 8);
  if (filled > 24) diff |= fill_diff_at(b, 16) | fill_diff_at(b, filled - 16);
  if (filled > 40)
    diff |= fill_diff_at(b, 24) | fill_diff_at(b, 32) | fill_diff_at(b, filled - 24) |
            fill_diff_at(b, filled - 32);
  return ST_LIKELY(diff == 0) ? filled : pattern_mismatch(b, FILL_WORD, 8, filled);
}

/* Blocks up to this size have no guard page of their own: a guard costs an mprotect pair
 * (and a TLB shootdown) per block, which made hardened threads-1 12 times slower than the
 * default mode once 16..32 KiB blocks became whole pages (8..32 KiB now, sizeclass.h);
 * like slab blocks, they keep the canary and size word, checked on free. */
#define GUARDED_MIN ((size_t)32 << 10)

/* What the program may use of a core block: all of it but the guard page. */
static size_t usable_of(size_t core_size) {
  return core_size > GUARDED_MIN ? core_size - ST_PAGE_SIZE : core_size;
}

/* The canary is the mix itself, stored as one word at the request's end: canary byte i
 * (offset size + i) is byte i of the mix, little-endian as on every target strata builds
 * for. The same bytes as a pattern_mismatch pattern (byte offset % 8): */
ST_INLINE uint64_t canary_pattern(uint64_t mix, size_t size) {
  unsigned shift = (unsigned)(size & 7) * 8;
  return shift == 0 ? mix : mix << shift | mix >> (64 - shift);
}

ST_INLINE void seal(void *p, size_t size, size_t usable) {
  uint64_t mix = block_mix(p);
  uint8_t *b = p;
  /* One word from the request's end (size + 8 <= usable): canary bytes, then the size word
   * over what passed the canary's end. */
  memcpy(b + size, &mix, sizeof mix);
  uint64_t word = (uint64_t)size ^ mix;
  memcpy(b + usable - SIZE_WORD, &word, SIZE_WORD);
}

/* Whether the canary of a block of `size` requested bytes and `usable` in all reads as seal
 * left it: one word at the request's end (inside the block: size + 8 <= usable), masked
 * to the canary's bytes when the size word covers some of it. */
ST_INLINE bool canary_intact(const uint8_t *b, size_t size, size_t usable, uint64_t mix) {
  uint64_t word;
  memcpy(&word, b + size, sizeof word);
  uint64_t diff = word ^ mix;
  size_t bytes = usable - SIZE_WORD - size; /* >= 1 */
  return (bytes >= sizeof word ? diff : diff << (64 - bytes * 8)) == 0;
}

/* Whether canary bytes [from, end) read as seal left them, from >= size (the fill may have
 * covered the first ones), end = canary_end(size, usable). */
ST_INLINE bool canary_tail_intact(const uint8_t *b, size_t size, size_t from, size_t end,
                                  uint64_t mix) {
  if (from >= end) return true;
  uint64_t word;
  memcpy(&word, b + from, sizeof word); /* from < end <= usable - SIZE_WORD: in the block */
  uint64_t diff = word ^ mix >> (from - size) * 8; /* from - size < 8 */
  size_t bytes = end - from;
  return (bytes >= sizeof word ? diff : diff << (64 - bytes * 8)) == 0;
}

/* LARGE and HUGE blocks, and aligned ones: through the core's general entry points. */
/* A spare LARGE block of exactly `bytes` (guard included, whole pages of at most
 * QUARANTINE_LARGE_MAX + 2 pages) on an `align` boundary (1 for malloc's), or NULL. */
static void *take_spare(size_t bytes, size_t align) {
  quarantine *q = tls_quarantine;
  if (q == NULL) return NULL;
  const uint8_t *first = q->spare_pages, *end = first + q->spare_count;
  int pages = (int)(bytes >> ST_PAGE_SHIFT);
  for (const uint8_t *at = first; at < end && (at = memchr(at, pages, (size_t)(end - at))) != NULL; at++) {
    uint32_t i = (uint32_t)(at - first), last;
    void *p = q->spare[i].p;
    if (((uintptr_t)p & (align - 1)) != 0) continue;
    q->spare_bytes -= q->spare[i].usable;
    last = --q->spare_count;
    q->spare[i] = q->spare[last];
    q->spare_pages[i] = q->spare_pages[last];
    return p;
  }
  return NULL;
}

/* Gives block p of span (core_size bytes) its guard page (on) or none; false when the
 * kernel refuses a guard. A LARGE span may come from the page heap with its guard still set (it keeps the
 * guard of a span freed at the same length, core/pageheap.c), which then costs nothing. */
static bool set_guard(void *p, st_span_t *span, size_t core_size, bool on) {
  if (span->kind == ST_SPAN_LARGE) return st__pageheap_guard(span, on);
  return !on || st__os_protect((char *)p + core_size - ST_PAGE_SIZE, ST_PAGE_SIZE, false);
}

static void *harden_malloc_pages(size_t need, size_t size, size_t align, bool zero) {
  if (need > GUARDED_MIN && __builtin_add_overflow(need, ST_PAGE_SIZE, &need)) return NULL;
  void *p = need > ST_SMALL_MAX && need <= QUARANTINE_LARGE_MAX + ST_PAGE_SIZE
                ? take_spare(st_align_up(need, ST_PAGE_SIZE), align == 0 ? 1 : align)
                : NULL;
  if (p != NULL) {
    if (zero) memset(p, 0, size);
    seal(p, size, usable_of(st_align_up(need, ST_PAGE_SIZE)));
    return p;
  }
  p = align == 0 ? st__core_malloc(need, false) : st__core_malloc_aligned(need, align);
  if (p == NULL) return NULL;
  st_span_t *span = st__pagemap_lookup(p);
  size_t core_size = st__core_usable_size_of(p, span, "malloc");
  if (!set_guard(p, span, core_size, core_size > GUARDED_MIN)) {
    st__core_free(p, NULL, "malloc");
    return NULL;
  }
  if (zero) memset(p, 0, size);
  seal(p, size, usable_of(core_size));
  return p;
}

/* Every hardened malloc but the common case below. */
ST_NOINLINE static void *harden_malloc_general(size_t size, size_t align, bool zero) {
  harden_ready();
  size_t need = size + OVERHEAD;
  if (need < size) return NULL;
  if (align != 0 || need > ST_SMALL_MAX) return harden_malloc_pages(need, size, align, zero);
  unsigned cls = st__size_to_class(need);
  void *p = st__core_small_alloc_hardened(cls);
  if (p == NULL) return NULL;
  if (zero) memset(p, 0, size);
  seal(p, size, st__class_size[cls]);
  return p;
}

/* The common case, a small malloc whose class's current span has a free block, by a
 * thread that has its cache once harden_init has run: calls nothing but what ends the
 * program (a corrupted list), so it needs no stack frame. NULL, nothing changed, for every
 * other case. */
ST_INLINE void *malloc_small(size_t size) {
  st_tcache_t *tc = st__tls_hidden_tcache;
  if (ST_UNLIKELY(tc == NULL || size > ST_SMALL_MAX - OVERHEAD || st_load_acquire(&xinit_state) != 2))
    return NULL;
  size_t need = size + OVERHEAD;
  /* A table load where it can, for the sizes most programs ask for. */
  unsigned cls = need <= ST_SMALL_FAST_MAX ? st__class_of_small[need] : st__size_to_class(need);
  st_span_t *span = tc->current[cls];
  if (ST_UNLIKELY(span->free == ST_FREE_LIST_END)) return NULL;
  void *p = st__tcache_pop_encoded(span);
  seal(p, size, st__class_size[cls]);
  return p;
}

/* st__harden_malloc_small when malloc_small declines: a refill of the class's span, or a
 * LARGE block of up to QUARANTINE_LARGE_MAX bytes (a spare, most of the time), for a
 * thread that has its cache once harden_init has run, without the dispatch and a second
 * malloc_small; NULL (the caller's full route then tries again) for every other case. */
ST_NOINLINE static void *malloc_declined(size_t size) {
  if (st__tls_hidden_tcache == NULL || size > QUARANTINE_LARGE_MAX ||
      st_load_acquire(&xinit_state) != 2)
    return NULL;
  return harden_malloc_general(size, 0, false);
}

void *st__harden_malloc_small(size_t size) {
  void *p = malloc_small(size);
  return ST_LIKELY(p != NULL) ? p : malloc_declined(size);
}

void *st__harden_malloc(size_t size, size_t align, bool zero) {
  void *p = align == 0 && !zero ? malloc_small(size) : NULL;
  return ST_LIKELY(p != NULL) ? p : harden_malloc_general(size, align, zero);
}

ST_COLD ST_NOINLINE _Noreturn static void quarantined_twice(const void *p, const char *fn) {
  st__fatal("%s(): double free of %p (the block is in the quarantine)", fn, p);
}

ST_COLD ST_NOINLINE _Noreturn static void written_after_free(const void *p, size_t bytes,
                                                            size_t offset) {
  st__fatal("free(): use after free: block %p (%zu bytes) was written near offset %zu after "
            "it was freed",
            p, bytes, offset);
}

ST_COLD ST_NOINLINE _Noreturn static void size_word_overwritten(const void *p, size_t usable,
                                                                const char *fn) {
  st__fatal("%s(): heap overflow past block %p: its size word at offset %zu was overwritten", fn,
            p, usable - SIZE_WORD);
}

ST_COLD ST_NOINLINE _Noreturn static void written_past_end(const void *p, size_t size,
                                                           size_t usable, uint64_t mix,
                                                           const char *fn) {
  st__fatal("%s(): heap overflow: block %p of %zu bytes was written at offset %zu, past its end",
            fn, p, size, pattern_mismatch(p, canary_pattern(mix, size), size, canary_end(size, usable)));
}

/* The requested size of live block p of `usable` bytes (no guard) after checking that it
 * is not in the quarantine, then its size word and canary. */
ST_INLINE size_t checked_size(const void *p, size_t usable, uint64_t mix, const char *fn) {
  const uint8_t *b = p;
  uint64_t first, word;
  memcpy(&first, b, sizeof first);
  if (ST_UNLIKELY(first == ~mix)) quarantined_twice(p, fn);
  memcpy(&word, b + usable - SIZE_WORD, SIZE_WORD);
  size_t size = (size_t)(word ^ mix);
  if (ST_UNLIKELY(size > usable - OVERHEAD)) size_word_overwritten(p, usable, fn);
  if (ST_UNLIKELY(!canary_intact(b, size, usable, mix))) written_past_end(p, size, usable, mix, fn);
  return size;
}

ST_COLD ST_NOINLINE _Noreturn static void invalid_pointer(const void *p, const st_span_t *span,
                                                         const char *fn) {
  st__fatal("%s(): invalid pointer %p (inside a %u-byte block)", fn, p, span->block_size);
}

/* Slab block p of span: the checks every use of a block the program passes in makes
 * (invalid pointer, double free, overflow); returns its requested size. */
ST_INLINE size_t small_checked_size(const void *p, st_span_t *span, uint64_t mix, const char *fn) {
  if (ST_UNLIKELY(!st__span_is_block(span, (uintptr_t)p))) /* p is on span: no range check */
    invalid_pointer(p, span, fn);
  if (ST_UNLIKELY(((const st_block_t *)p)->key == st__block_key(span)))
    st__core_small_check_not_free(p, span, fn);
  return checked_size(p, span->block_size, mix, fn);
}

size_t st__harden_size(const void *p, const char *fn) {
  harden_ready();
  st_span_t *span = st__pagemap_lookup(p);
  if (span != NULL && span->kind == ST_SPAN_SLAB) return small_checked_size(p, span, block_mix(p), fn);
  size_t core_size = st__core_usable_size(p, fn); /* invalid pointers end here */
  return checked_size(p, usable_of(core_size), block_mix(p), fn);
}

/* ---- the quarantine -------------------------------------------------------------------- */

static void large_release(void *p, st_span_t *span);

/* The part of check_untouched for a block longer than inline_fill_max: its fill, and past
 * the fill (when it ends before the block) the size word and the canary bytes it did not
 * cover. */
ST_NOINLINE static void check_long_untouched(const uint8_t *b, size_t usable, uint64_t mix) {
  size_t filled = filled_bytes(usable);
  size_t bad = fill_mismatch(b, filled);
  if (ST_UNLIKELY(bad != filled)) written_after_free(b, usable, bad);
  if (ST_LIKELY(filled == usable)) return; /* the fill covered the canary and size word */
  uint64_t word;
  memcpy(&word, b + usable - SIZE_WORD, SIZE_WORD);
  size_t size = (size_t)(word ^ mix);
  if (ST_UNLIKELY(size > usable - OVERHEAD)) written_after_free(b, usable, usable - SIZE_WORD);
  size_t from = size > filled ? size : filled, end = canary_end(size, usable);
  if (ST_UNLIKELY(!canary_tail_intact(b, size, from, end, mix)))
    written_after_free(b, usable, pattern_mismatch(b, canary_pattern(mix, size), from, end));
}

/* Ends the program unless block b (`usable` bytes) reads as quarantine_block left it: the
 * mark, the fill, and past the fill the canary and the size word. */
ST_INLINE void check_untouched(const uint8_t *b, size_t usable) {
  uint64_t mix = block_mix(b), first;
  memcpy(&first, b, sizeof first);
  if (ST_UNLIKELY(first != ~mix)) written_after_free(b, usable, pattern_mismatch(b, ~mix, 0, 8));
  if (ST_LIKELY(usable <= inline_fill_max)) { /* a slab block, filled whole by fill_whole */
    if (ST_UNLIKELY(!whole_fill_intact(b, usable)))
      written_after_free(b, usable, pattern_mismatch(b, FILL_WORD, 8, usable));
    return;
  }
  check_long_untouched(b, usable, mix);
}

/* A LARGE block out of the quarantine: kept as a spare, or back to the page heap. */
ST_NOINLINE static void large_leaves_quarantine(quarantined q) {
  /* The core writes nothing into a LARGE block: the mark must not outlive the quarantine,
   * or the block's next life at this address would look freed. */
  memset(q.p, 0, sizeof(uint64_t));
  quarantine *mine = tls_quarantine;
  bool guarded_as_malloc_sets = q.span->guarded == (st__span_bytes(q.span) > GUARDED_MIN);
  if (mine != NULL && guarded_as_malloc_sets && mine->spare_count < SPARE_SLOTS &&
      mine->spare_bytes + q.usable <= SPARE_BYTES) {
    mine->spare_bytes += q.usable;
    mine->spare_pages[mine->spare_count] = (uint8_t)q.span->pages;
    mine->spare[mine->spare_count++] = q;
    return;
  }
  large_release(q.p, q.span);
}

/* A block leaves the quarantine: checked to read as it was left, then back to the core. */
ST_INLINE void quarantine_release(quarantined q) {
  check_untouched(q.p, q.usable);
  if (ST_LIKELY(q.span->kind == ST_SPAN_SLAB)) st__core_small_free_hardened(q.p, q.span);
  else large_leaves_quarantine(q);
}

/* LARGE or HUGE block p goes back to the core: a LARGE span keeps its guard page in the
 * page heap, a HUGE block's goes with its mapping. */
static void large_release(void *p, st_span_t *span) { st__core_free(p, span, "free"); }

ST_INLINE uint64_t next_random(quarantine *q) {
  uint64_t x = q->random;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return q->random = x;
}

/* The calling thread's quarantine, made at its first free; NULL when out of memory. */
ST_NOINLINE static quarantine *new_quarantine(void) {
  unsigned cls = st__size_to_class(sizeof(quarantine));
  quarantine *q = st__core_small_alloc(cls);
  if (q == NULL) return NULL;
  memset(q, 0, sizeof *q);
  q->random = secret ^ (uint64_t)(uintptr_t)q;
  tls_quarantine = q;
  pthread_setspecific(exit_key, q); /* may allocate: the quarantine is in place */
  return q;
}

/* Out of memory for a quarantine: block p of span goes back at once, checked. */
ST_NOINLINE static void release_unquarantined(void *p, st_span_t *span, size_t bytes) {
  quarantine_release((quarantined){p, span, bytes});
}

ST_INLINE uint32_t quarantine_count(const quarantine *q) { return q->freed - q->released; }

/* The usable bytes of a block in the ring, as its free found them: a LARGE block's from
 * its span's length, which stays as it was while the block is held (the span is the
 * thread's until the block leaves; only realloc resizes a span, and a held block is no
 * longer the program's to pass in). */
ST_INLINE size_t held_usable(held h) {
  return ST_LIKELY(h.span->kind == ST_SPAN_SLAB) ? h.span->block_size : usable_of(st__span_bytes(h.span));
}

/* The oldest batch (or all blocks, if fewer) leaves the quarantine, checked and released
 * in slot order, which the shuffle at quarantine_add made random. */
static void release_oldest(quarantine *q) {
  uint32_t count = quarantine_count(q), n = count < QUARANTINE_BATCH ? count : QUARANTINE_BATCH;
  uint32_t first = q->released;
  q->released = first + n;
  /* Emptied mid-batch (a thread's exit, or a free without room): both counters move on to
   * the next batch, so the next block starts a batch of its own. */
  if (q->released == q->freed) q->freed = q->released = st_align_up(q->freed, QUARANTINE_BATCH);
  for (uint32_t i = first; i != first + n; i++) {
    held out = q->slot[i % QUARANTINE_SLOTS];
    size_t usable = held_usable(out);
    if (out.span->kind != ST_SPAN_SLAB) q->bytes -= usable;
    quarantine_release((quarantined){out.p, out.span, usable});
  }
}

/* Makes room for a LARGE block of `bytes`: the oldest leave while the LARGE bytes held
 * would pass QUARANTINE_BYTES. */
ST_NOINLINE static void quarantine_make_room(quarantine *q, size_t bytes) {
  do release_oldest(q);
  while (quarantine_count(q) > 0 && q->bytes + bytes > QUARANTINE_BYTES);
}

/* The end of a free that filled the ring (a tail call from free_small). */
ST_NOINLINE static bool release_after_free(quarantine *q) {
  release_oldest(q);
  return true;
}

/* Puts `in` in the ring (never full between frees), in a random place among its batch's
 * blocks: the block that held that place moves to the new slot. The caller releases the
 * oldest batch when the ring is then full. */
ST_INLINE void quarantine_add(quarantine *q, held in) {
  uint32_t n = q->freed++, k = n % QUARANTINE_BATCH; /* k blocks of the batch came before */
  if (k == 0) q->shuffle = next_random(q);
  uint32_t place = n - k + (uint32_t)(((q->shuffle & 0xff) * (k + 1)) >> 8);
  q->shuffle >>= 8;
  q->slot[n % QUARANTINE_SLOTS] = q->slot[place % QUARANTINE_SLOTS];
  q->slot[place % QUARANTINE_SLOTS] = in;
}

/* Holds block p of span (`usable` bytes); without a quarantine it goes back at once. */
ST_INLINE void quarantine_put(void *p, st_span_t *span, size_t usable) {
  quarantine *q = tls_quarantine;
  if (ST_UNLIKELY(q == NULL) && (q = new_quarantine()) == NULL) {
    release_unquarantined(p, span, usable);
    return;
  }
  size_t bytes = span->kind == ST_SPAN_SLAB ? 0 : usable;
  if (ST_UNLIKELY(q->bytes + bytes > QUARANTINE_BYTES)) quarantine_make_room(q, bytes);
  q->bytes += bytes;
  quarantine_add(q, (held){p, span});
  if (ST_UNLIKELY(quarantine_count(q) == QUARANTINE_SLOTS)) release_oldest(q);
}

/* Thread exit: every block goes back. */
static void quarantine_drain(void *arg) {
  quarantine *q = arg;
  tls_quarantine = NULL;
  while (quarantine_count(q) > 0) release_oldest(q);
  for (uint32_t i = 0; i < q->spare_count; i++)
    large_release(q->spare[i].p, q->spare[i].span);
  st__core_small_free_checked(q, st__pagemap_lookup(q));
}

/* The core's thread exit, before it drops the thread's cache (st__thread_set_exit_hook): the
 * quarantine drains through that cache, and its key's destructor then has nothing left to do.
 * A thread whose cache went first (a quarantine made after the core's exit) drains in the
 * destructor, its blocks then going back as remote frees. */
static void quarantine_drain_at_exit(void) {
  quarantine *q = tls_quarantine;
  if (q == NULL) return;
  pthread_setspecific(exit_key, NULL);
  quarantine_drain(q);
}

/* ---- free ------------------------------------------------------------------------------ */

/* Fills the block (filled_bytes), marks it and quarantines it. */
ST_INLINE void quarantine_block(void *p, st_span_t *span, uint64_t mix, size_t usable) {
  fill_freed(p, filled_bytes(usable));
  uint64_t mark = ~mix;
  memcpy(p, &mark, sizeof mark);
  quarantine_put(p, span, usable);
}

/* Checked block p of span (`size` requested, `usable` bytes) leaves the program: slab
 * blocks and LARGE blocks up to QUARANTINE_LARGE_MAX are quarantined, the others go back. */
static void release_checked(void *p, st_span_t *span, uint64_t mix, size_t usable) {
  if (span->kind == ST_SPAN_SLAB || (span->kind == ST_SPAN_LARGE && usable <= QUARANTINE_LARGE_MAX))
    quarantine_block(p, span, mix, usable);
  else
    large_release(p, span);
}

/* A LARGE or HUGE block the program passes in, checked: its span, usable bytes and size. */
static size_t pages_checked_size(const void *p, st_span_t **span, size_t *usable, uint64_t mix,
                                 const char *fn) {
  if (*span == NULL) *span = st__pagemap_lookup(p);
  *usable = usable_of(st__core_usable_size_of(p, *span, fn)); /* invalid pointers end here */
  return checked_size(p, *usable, mix, fn);
}

ST_NOINLINE static void harden_free_pages(void *p, st_span_t *span, const char *fn) {
  uint64_t mix = block_mix(p);
  size_t usable;
  pages_checked_size(p, &span, &usable, mix, fn); /* the size only matters to the checks */
  release_checked(p, span, mix, usable);
}

/* Every hardened free but the common case below. */
ST_NOINLINE static void harden_free_general(void *p, st_span_t *span, const char *fn) {
  harden_ready();
  if (ST_LIKELY(span != NULL && span->kind == ST_SPAN_SLAB)) {
    uint64_t mix = block_mix(p);
    small_checked_size(p, span, mix, fn);
    quarantine_block(p, span, mix, span->block_size);
    return;
  }
  harden_free_pages(p, span, fn);
}

/* free_small's end for checked slab block p of span longer than inline_fill_max, in the
 * thread's quarantine q: the fill by fill_freed (memset), the mark, the ring. A tail call,
 * so the common case saves no register for it. */
ST_NOINLINE static bool quarantine_long_slab_block(quarantine *q, void *p, st_span_t *span,
                                                   uint64_t mark) {
  fill_freed(p, filled_bytes(span->block_size));
  memcpy(p, &mark, sizeof mark);
  quarantine_add(q, (held){p, span});
  if (ST_UNLIKELY(quarantine_count(q) == QUARANTINE_SLOTS)) release_oldest(q);
  return true;
}

/* A LARGE block freed by a thread that has a quarantine: free_small's tail call, so the
 * api's free reaches harden_free_pages without the dispatch and a second free_small. */
ST_NOINLINE static bool free_large(void *p, st_span_t *span, const char *fn) {
  harden_free_pages(p, span, fn);
  return true;
}

/* The common case, the free of a slab block that does not carry the free mark by a thread
 * that has a quarantine (so harden_init has run), calls nothing but what ends the program
 * unless it fills the ring or the block is long (so it needs no stack frame): the checks
 * of small_checked_size, the fill (stored inline up to inline_fill_max bytes), the block
 * put in the ring. A LARGE block of such a thread goes to free_large. False, nothing
 * changed, for every other case; span may be &st__pagemap.none (whose kind is FREE). */
ST_INLINE bool free_small(void *p, st_span_t *span, const char *fn) {
  quarantine *q = tls_quarantine;
  if (ST_UNLIKELY(q == NULL || span->kind != ST_SPAN_SLAB))
    return q != NULL && span->kind == ST_SPAN_LARGE && free_large(p, span, fn);
  if (ST_UNLIKELY(!st__span_is_block(span, (uintptr_t)p))) invalid_pointer(p, span, fn);
  if (ST_UNLIKELY(((const st_block_t *)p)->key == st__block_key(span))) return false;
  size_t usable = span->block_size;
  uint64_t mix = block_mix(p);
  checked_size(p, usable, mix, fn);
  uint64_t mark = ~mix;
  if (ST_UNLIKELY(usable > inline_fill_max)) return quarantine_long_slab_block(q, p, span, mark);
  fill_whole(p, usable);
  memcpy(p, &mark, sizeof mark);
  quarantine_add(q, (held){p, span});
  if (ST_UNLIKELY(quarantine_count(q) == QUARANTINE_SLOTS)) return release_after_free(q);
  return true;
}

bool st__harden_free_small(void *p, st_span_t *span) { return free_small(p, span, "free"); }

void st__harden_free(void *p, st_span_t *span, const char *fn) {
  if (span == NULL || !free_small(p, span, fn)) harden_free_general(p, span, fn);
}

/* ---- realloc --------------------------------------------------------------------------- */

/* Whether checked block p of span (`usable` bytes without its guard) takes `need` bytes
 * (request and overhead) where it is; then it is sealed for its new size. In place: within
 * the block unless that would waste more than half of it (slab blocks of up to 128 bytes
 * whatever the waste, as the core's realloc), and LARGE blocks growing into the free pages
 * after them, their guard page moving along. */
static bool resized_in_place(void *p, st_span_t *span, size_t size, size_t need, size_t usable) {
  bool slab = span->kind == ST_SPAN_SLAB;
  if (need <= usable && (need >= usable / 2 || (slab && usable <= 128)) && (slab || need > ST_SMALL_MAX)) {
    seal(p, size, usable);
    /* What the core holds for the program, as harden_malloc_pages asked it (guard included). */
    if (!slab) st__core_set_requested(span, need + (st__core_usable_size(p, "realloc") - usable));
    return true;
  }
  size_t bytes = st_align_up(need, ST_PAGE_SIZE) + ST_PAGE_SIZE; /* with the guard */
  if (slab || need <= usable || usable <= GUARDED_MIN || !st__core_large_grow_guarded(span, bytes))
    return false;
  seal(p, size, usable_of(bytes));
  st__core_set_requested(span, need + ST_PAGE_SIZE);
  return true;
}

void *st__harden_realloc(void *p, size_t size) {
  harden_ready();
  st_span_t *span = st__pagemap_lookup(p);
  uint64_t mix = block_mix(p);
  size_t usable, old;
  if (span != NULL && span->kind == ST_SPAN_SLAB) {
    usable = span->block_size;
    old = small_checked_size(p, span, mix, "realloc");
  } else {
    old = pages_checked_size(p, &span, &usable, mix, "realloc");
  }
  size_t need = size + OVERHEAD;
  bool in_place = need > size && resized_in_place(p, span, size, need, usable);
  st__core_count_realloc(in_place);
  if (in_place) return p;
  void *q = st__harden_malloc(size, 0, false);
  if (q == NULL) return NULL;
  memcpy(q, p, old < size ? old : size);
  /* A block that grew out of its LARGE span rarely meets a request of its old length
   * again, and a free span that keeps its guard page merges with no neighbour: freed so
   * one after another, they fragmented the page heap (realloc 100: 5 regions mapped
   * instead of 1). The guard goes (one mprotect beside the copy) and the span merges. */
  if (span->kind == ST_SPAN_LARGE && span->guarded) st__pageheap_guard(span, false);
  release_checked(p, span, mix, usable);
  return q;
}
