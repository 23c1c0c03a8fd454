/*
 * api_table.c — edge cases of the whole malloc family, one table run against any allocator.
 *
 * Owns: the expectations of DESIGN.md "Semantics every backend honours" as data and loops:
 * alignment, zero sizes, impossible sizes and errno, calloc zeroing, realloc contents and
 * failure, the aligned family's argument rules (glibc 2.36's, measured on this machine),
 * valloc/pvalloc, usable sizes, free_sized.
 * The allocator is chosen at compile time (API_STRATA: the st_* names; otherwise the libc
 * names) and called through a table of function pointers, so the compiler cannot fold
 * malloc(PTRDIFF_MAX) or drop a malloc/free pair. The same expectations pass against
 * glibc, which is the point: strata matches glibc.
 * Options: --expect-strata (libc build under LD_PRELOAD) also proves every libc name binds
 * to libstrata and agrees with st_usable_size.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "strata.h"

typedef struct alloc_api {
  const char *name;
  bool is_strata; /* st_* linked, or the libc names preloaded from libstrata */
  void *(*malloc_)(size_t);
  void *(*calloc_)(size_t, size_t);
  void *(*realloc_)(void *, size_t);
  void *(*reallocarray_)(void *, size_t, size_t);
  void (*free_)(void *);
  void (*free_sized_)(void *, size_t);
  void (*free_aligned_sized_)(void *, size_t, size_t);
  void *(*aligned_alloc_)(size_t, size_t);
  int (*posix_memalign_)(void **, size_t, size_t);
  void *(*memalign_)(size_t, size_t);
  void *(*valloc_)(size_t);
  void *(*pvalloc_)(size_t);
  size_t (*usable_size_)(void *);
  int (*trim_)(size_t);
  int (*heap_validate_)(void); /* NULL when the allocator has none */
  /* glibc's posix_memalign sets errno to ENOMEM when it fails for want of memory (measured
   * on glibc 2.36); strata's contract (strata.h) leaves errno alone in every case. */
  bool posix_memalign_enomem_sets_errno;
} alloc_api;

static alloc_api A;

static const size_t PAGE = 4096;
static const size_t MiB = (size_t)1 << 20;
#define PTRDIFF_MAX_PLUS_1 ((size_t)PTRDIFF_MAX + 1)
#define HALF_PLUS_1 ((size_t)1 << 63) /* SIZE_MAX/2 + 1: the largest power of two */

/* ---- helpers --------------------------------------------------------------------------- */

/* A byte pattern that depends on the offset and a seed, so a block that was moved, shifted
 * or overlapped by another shows a mismatch. */
static unsigned char pattern_byte(size_t i, unsigned seed) {
  return (unsigned char)(seed * 131u + i * 7u + (i >> 8) + (i >> 16));
}

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = pattern_byte(i, seed);
}

/* Returns the first differing offset, or SIZE_MAX when the pattern is intact. */
static size_t first_mismatch(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != pattern_byte(i, seed)) return i;
  return SIZE_MAX;
}

static bool all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i = 0;
  for (; i < n && (uintptr_t)(b + i) % 8 != 0; i++)
    if (b[i]) return false;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    if (w) return false;
  }
  for (; i < n; i++)
    if (b[i]) return false;
  return true;
}

static size_t next_pow2(size_t x) {
  size_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

/* This process's address-space size in bytes (/proc/self/statm), 0 if unreadable. */
static size_t vm_size(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f && fscanf(f, "%lu", &pages) != 1) pages = 0;
  if (f) fclose(f);
  return pages * PAGE;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Writes the whole of a block of up to 256 KiB. Of a larger one: the first and last 64 KiB,
 * one byte in every page up to 4 MiB and one in every 16th page beyond (page faults cost
 * ~10 us here, and glibc's usable size of a block with a 64 MiB alignment is ~64 MiB). */
static void write_all(unsigned char *b, size_t n) {
  const size_t edge = 64 * 1024;
  if (n <= 4 * edge) {
    memset(b, 0x5a, n);
    return;
  }
  memset(b, 0x5a, edge);
  for (size_t i = edge; i < n - edge; i += i < 4 * MiB ? PAGE : 16 * PAGE) b[i] = 0x5a;
  memset(b + n - edge, 0x5a, edge);
}

/* Checks what every successful allocation must give: non-NULL, aligned, usable_size >= n
 * and the usable bytes writable (write_all, then read back). Returns p. */
static void *check_block(void *p, size_t n, size_t align, const char *what) {
  if (!CHECK_MSG(p != NULL, "%s(%zu) returned NULL", what, n)) return NULL;
  CHECK_MSG((uintptr_t)p % max_size(align, 16) == 0, "%s(%zu) = %p not aligned to %zu", what, n, p,
            max_size(align, 16));
  size_t usable = A.usable_size_(p);
  CHECK_MSG(usable >= n, "%s(%zu): usable size %zu", what, n, usable);
  write_all(p, usable);
  const unsigned char *b = p;
  CHECK_MSG(b[0] == 0x5a && b[usable ? usable - 1 : 0] == 0x5a, "%s(%zu)", what, n);
  return p;
}

/* Expects NULL with errno == want (errno is set to a sentinel first). */
#define CHECK_FAILS(call, want)                                                                    \
  do {                                                                                             \
    errno = 0;                                                                                     \
    void *got_ = (call);                                                                           \
    CHECK_MSG(got_ == NULL && errno == (want), "%s = %p errno %d, want NULL errno %d", #call,      \
              got_, errno, want);                                                                  \
    if (got_) A.free_(got_);                                                                       \
  } while (0)

/* ---- malloc and free ------------------------------------------------------------------- */

/* Every size 0..1100 at once, so overlapping blocks would corrupt each other's pattern. */
static void case_malloc_every_small_size(void) {
  enum { N = 1101 };
  static void *blocks[N];
  for (size_t n = 0; n < N; n++) {
    blocks[n] = check_block(A.malloc_(n), n, 16, "malloc");
    if (blocks[n]) fill(blocks[n], n, (unsigned)n);
  }
  for (size_t n = 0; n < N; n++) {
    if (!blocks[n]) continue;
    CHECK_MSG(first_mismatch(blocks[n], n, (unsigned)n) == SIZE_MAX, "block of %zu overwritten", n);
    A.free_(blocks[n]);
  }
}

/* Around every power of two from 2 KiB to 64 MiB: the class, span and huge boundaries. */
static void case_malloc_large_sweep(void) {
  for (unsigned k = 11; k <= 26; k++) {
    size_t base = (size_t)1 << k;
    size_t sizes[] = {base - 1, base + 1, base + base / 2 + 8, base, base + 16, base + base / 2};
    size_t count = k < 20 ? 6 : 3; /* fewer of the 1..96 MiB ones: page faults are slow here */
    for (size_t i = 0; i < count; i++) {
      void *p = check_block(A.malloc_(sizes[i]), sizes[i], 16, "malloc");
      A.free_(p);
    }
  }
}

static void case_malloc_zero_is_unique(void) {
  enum { N = 200 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = A.malloc_(0);
    REQUIRE(p[i] != NULL);
    CHECK_ALIGNED(p[i], 16);
    for (int j = 0; j < i; j++) CHECK_MSG(p[i] != p[j], "malloc(0) #%d == #%d", i, j);
  }
  for (int i = 0; i < N; i++) A.free_(p[i]);
  void *q = A.malloc_(0);
  REQUIRE(q != NULL);
  q = A.realloc_(q, 100); /* a zero-size block is a real block */
  REQUIRE(q != NULL);
  fill(q, 100, 1);
  CHECK(first_mismatch(q, 100, 1) == SIZE_MAX);
  A.free_(q);
}

static void case_free_null_and_errno(void) {
  errno = 4242;
  A.free_(NULL);
  CHECK_EQ(errno, 4242);
  size_t sizes[] = {1, 100, 5000, 100000, 3 * MiB, 20 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = A.malloc_(sizes[i]);
    REQUIRE(p != NULL);
    memset(p, 1, sizes[i]);
    errno = 4242;
    A.free_(p);
    CHECK_MSG(errno == 4242, "free of %zu bytes changed errno to %d", sizes[i], errno);
  }
  CHECK_EQ(A.usable_size_(NULL), 0);
}

static void case_impossible_sizes(void) {
  CHECK_FAILS(A.malloc_(PTRDIFF_MAX), ENOMEM);
  CHECK_FAILS(A.malloc_(PTRDIFF_MAX_PLUS_1), ENOMEM);
  CHECK_FAILS(A.malloc_(SIZE_MAX), ENOMEM);
  CHECK_FAILS(A.malloc_(SIZE_MAX - PAGE), ENOMEM);
  CHECK_FAILS(A.calloc_(1, PTRDIFF_MAX_PLUS_1), ENOMEM);
  CHECK_FAILS(A.valloc_(SIZE_MAX), ENOMEM);
  CHECK_FAILS(A.pvalloc_(SIZE_MAX), ENOMEM);
  CHECK_FAILS(A.pvalloc_(SIZE_MAX - PAGE), ENOMEM); /* rounding up to a page overflows */
  CHECK_FAILS(A.realloc_(NULL, PTRDIFF_MAX_PLUS_1), ENOMEM);
  /* The allocator still works afterwards. */
  A.free_(check_block(A.malloc_(64), 64, 16, "malloc after failures"));
}

/* ---- calloc ----------------------------------------------------------------------------- */

static void case_calloc_overflow(void) {
  const size_t pairs[][2] = {
      {HALF_PLUS_1, 2},
      {2, HALF_PLUS_1},
      {SIZE_MAX, SIZE_MAX},
      {(size_t)1 << 32, (size_t)1 << 32},
      {((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1}, /* = SIZE_MAX: fits, but > PTRDIFF_MAX */
      {SIZE_MAX / 3 + 1, 3},
      {PTRDIFF_MAX, 1},
      {1, PTRDIFF_MAX_PLUS_1}};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    CHECK_FAILS(A.calloc_(pairs[i][0], pairs[i][1]), ENOMEM);
  void *a = A.calloc_(0, 100), *b = A.calloc_(100, 0), *c = A.calloc_(0, SIZE_MAX);
  CHECK(a != NULL && b != NULL && c != NULL && a != b && b != c && a != c);
  A.free_(a);
  A.free_(b);
  A.free_(c);
}

/* Dirty blocks are freed and the same sizes calloc'ed again: the reused memory must be
 * zero. Small sizes are repeated so the freed blocks themselves come back. */
static void case_calloc_zeroes_reused_memory(void) {
  enum { N = 64 };
  void *blocks[N];
  size_t sizes[] = {1, 8, 16, 24, 48, 100, 256, 1000, 1024, 2048, 4000, 8192, 20000, 40000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t n = sizes[s];
    for (int i = 0; i < N; i++) {
      blocks[i] = A.malloc_(n);
      REQUIRE(blocks[i] != NULL);
      memset(blocks[i], 0xa5, A.usable_size_(blocks[i]));
    }
    for (int i = 0; i < N; i++) A.free_(blocks[i]);
    for (int i = 0; i < N; i++) {
      blocks[i] = A.calloc_(1, n);
      REQUIRE(blocks[i] != NULL);
      CHECK_MSG(all_zero(blocks[i], n), "calloc(1, %zu) after reuse is not zeroed", n);
      memset(blocks[i], 0xa5, n); /* dirty again for the next size */
    }
    for (int i = 0; i < N; i++) A.free_(blocks[i]);
  }
}

/* Large sizes 64 KiB..64 MiB, also with the element count split (count * size). */
static void case_calloc_large_zeroed(void) {
  for (size_t n = 64 * 1024; n <= 64 * MiB; n *= 2) {
    for (int round = 0; round < 2; round++) {
      void *dirty = A.malloc_(n + (size_t)round * 24);
      REQUIRE(dirty != NULL);
      memset(dirty, 0xa5, n);
      A.free_(dirty);
      void *p = round == 0 ? A.calloc_(1, n) : A.calloc_(n / 8, 8);
      REQUIRE(p != NULL);
      CHECK_ALIGNED(p, 16);
      CHECK_MSG(all_zero(p, n), "calloc of %zu bytes (round %d) not zeroed", n, round);
      memset(p, 0xa5, n);
      A.free_(p);
    }
  }
  A.trim_(0); /* purged memory must read as zero too */
  void *p = A.calloc_(1, 2 * MiB);
  REQUIRE(p != NULL);
  CHECK(all_zero(p, 2 * MiB));
  A.free_(p);
}

/* ---- realloc and reallocarray ---------------------------------------------------------- */

static void case_realloc_null_and_zero(void) {
  size_t sizes[] = {0, 1, 100, 5000, MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    A.free_(check_block(A.realloc_(NULL, sizes[i]), sizes[i], 16, "realloc(NULL)"));
  /* glibc: realloc(p, 0) frees p and returns NULL. Repeat with 1 MiB blocks so a leak
   * would show as address-space growth (300 MiB). */
  size_t before = vm_size();
  for (int i = 0; i < 300; i++) {
    char *p = A.malloc_(MiB);
    REQUIRE(p != NULL);
    p[0] = p[MiB - 1] = 1;
    errno = 0;
    void *q = A.realloc_(p, 0);
    CHECK_MSG(q == NULL, "realloc(p, 0) returned %p", q);
    if (q) A.free_(q);
  }
  CHECK_LE(vm_size(), before + 100 * MiB);
}

static void case_realloc_keeps_contents(void) {
  const size_t steps[] = {1,    7,           16,       17,        100,    1000,
                          1100, 4096,        5000,     64 * 1024, 100000, 256 * 1024 + 1,
                          MiB,  4 * MiB + 1, 16 * MiB, 64 * MiB};
  const size_t nsteps = sizeof steps / sizeof steps[0];
  char *p = NULL;
  size_t cur = 0;
  unsigned seed = 1;
  /* Up the ladder then down again: every step changes class, span size or huge mapping. */
  for (size_t k = 0; k < 2 * nsteps - 1; k++) {
    size_t n = k < nsteps ? steps[k] : steps[2 * nsteps - 2 - k];
    char *q = A.realloc_(p, n);
    if (!CHECK_MSG(q != NULL, "realloc to %zu", n)) break;
    CHECK_ALIGNED(q, 16);
    CHECK_GE(A.usable_size_(q), n);
    size_t keep = cur < n ? cur : n;
    size_t bad = first_mismatch(q, keep, seed);
    CHECK_MSG(bad == SIZE_MAX, "realloc %zu -> %zu lost byte %zu", cur, n, bad);
    fill(q, n, ++seed);
    p = q;
    cur = n;
  }
  A.free_(p);
  /* Shrinking in small steps inside one large block. */
  p = A.malloc_(300000);
  REQUIRE(p != NULL);
  fill(p, 300000, 9);
  for (size_t n = 300000; n > 100; n = n * 3 / 4) {
    p = A.realloc_(p, n);
    REQUIRE(p != NULL);
    CHECK_MSG(first_mismatch(p, n, 9) == SIZE_MAX, "shrink to %zu", n);
  }
  A.free_(p);
  /* An over-aligned block keeps its contents through realloc too. */
  p = A.aligned_alloc_(4096, 100);
  REQUIRE(p != NULL);
  fill(p, 100, 3);
  p = A.realloc_(p, 10000);
  REQUIRE(p != NULL);
  CHECK(first_mismatch(p, 100, 3) == SIZE_MAX);
  A.free_(p);
}

/* A failed realloc leaves the old block exactly as it was. */
static void case_realloc_failure_keeps_block(void) {
  size_t sizes[] = {24, 3000, 200000, 6 * MiB};
  size_t bad_sizes[] = {SIZE_MAX, PTRDIFF_MAX_PLUS_1, SIZE_MAX - 64};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = A.malloc_(sizes[i]);
    REQUIRE(p != NULL);
    fill(p, sizes[i], 5);
    for (size_t j = 0; j < sizeof bad_sizes / sizeof bad_sizes[0]; j++) {
      errno = 0;
      void *q = A.realloc_(p, bad_sizes[j]);
      CHECK_MSG(q == NULL && errno == ENOMEM, "realloc(%zu -> %zu) = %p errno %d", sizes[i],
                bad_sizes[j], q, errno);
      errno = 0;
      q = A.reallocarray_(p, HALF_PLUS_1, 2);
      CHECK_MSG(q == NULL && errno == ENOMEM, "reallocarray overflow = %p errno %d", q, errno);
    }
    CHECK_MSG(first_mismatch(p, sizes[i], 5) == SIZE_MAX, "block of %zu damaged", sizes[i]);
    A.free_(p);
  }
}

static void case_reallocarray(void) {
  CHECK_FAILS(A.reallocarray_(NULL, HALF_PLUS_1, 2), ENOMEM);
  CHECK_FAILS(A.reallocarray_(NULL, SIZE_MAX, SIZE_MAX), ENOMEM);
  char *p = A.reallocarray_(NULL, 10, 10);
  REQUIRE(p != NULL);
  fill(p, 100, 4);
  p = A.reallocarray_(p, 1000, 10);
  REQUIRE(p != NULL);
  CHECK(first_mismatch(p, 100, 4) == SIZE_MAX);
  CHECK_GE(A.usable_size_(p), 10000);
  p = A.reallocarray_(p, 5, 10);
  REQUIRE(p != NULL);
  CHECK(first_mismatch(p, 50, 4) == SIZE_MAX);
  A.free_(p);
}

/* ---- the aligned family ----------------------------------------------------------------- */

static void case_posix_memalign(void) {
  const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 96, 4097, HALF_PLUS_1 + 1, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *out = NULL;
    errno = 4242;
    int rc = A.posix_memalign_(&out, bad[i], 16);
    CHECK_MSG(rc == EINVAL && errno == 4242, "posix_memalign(%zu) rc %d errno %d", bad[i], rc,
              errno);
    if (rc == 0) A.free_(out);
  }
  const size_t sizes[] = {0, 1, 8, 100, 4096, 4097, MiB + 3};
  for (size_t align = sizeof(void *); align <= ((size_t)1 << 26); align *= 2) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      void *out = NULL;
      errno = 4242;
      int rc = A.posix_memalign_(&out, align, sizes[s]);
      CHECK_MSG(rc == 0 && errno == 4242, "posix_memalign(%zu, %zu) rc %d errno %d", align,
                sizes[s], rc, errno);
      if (rc == 0) A.free_(check_block(out, sizes[s], align, "posix_memalign"));
    }
  }
  const size_t nomem[][2] = {
      {64, SIZE_MAX}, {64, PTRDIFF_MAX_PLUS_1}, {4096, PTRDIFF_MAX}, {HALF_PLUS_1, 16}};
  for (size_t i = 0; i < sizeof nomem / sizeof nomem[0]; i++) {
    void *out = NULL;
    errno = 4242;
    int rc = A.posix_memalign_(&out, nomem[i][0], nomem[i][1]);
    int want_errno = A.posix_memalign_enomem_sets_errno ? ENOMEM : 4242;
    CHECK_MSG(rc == ENOMEM && errno == want_errno, "posix_memalign(%#zx, %#zx) rc %d errno %d",
              nomem[i][0], nomem[i][1], rc, errno);
    if (rc == 0) A.free_(out);
  }
}

/* aligned_alloc and memalign share glibc 2.36's rules: alignment 0..2^63 is rounded up to a
 * power of two (at least 16) and succeeds when memory allows; anything above 2^63 is EINVAL;
 * 2^63 itself can never be satisfied (ENOMEM). */
static void check_aligned_fn(void *(*fn)(size_t, size_t), const char *what) {
  const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 4095, 4096, 4097, 65539, MiB, 3 * MiB + 5};
  for (size_t align = 1; align <= ((size_t)1 << 26); align *= 2) {
    /* The small sizes with every alignment; the 1 and 3 MiB blocks with 1, 8, 64, ...
     * 256 KiB and every alignment from 1 MiB up, to keep the run short. */
    bool big = __builtin_ctzll(align) % 3 == 0 || align >= MiB;
    size_t count = sizeof sizes / sizeof sizes[0] - (big ? 0 : 2);
    for (size_t s = 0; s < count; s++)
      A.free_(check_block(fn(align, sizes[s]), sizes[s], align, what));
  }
  const size_t odd[] = {0, 3, 5, 6, 7, 12, 24, 48, 100, 1000, 3000, 4095, 4097, 65535, 100000};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
    A.free_(check_block(fn(odd[i], 40), 40, next_pow2(odd[i]), what));
  CHECK_FAILS(fn(HALF_PLUS_1 + 1, 10), EINVAL);
  CHECK_FAILS(fn(HALF_PLUS_1 + (HALF_PLUS_1 >> 1), 10), EINVAL);
  CHECK_FAILS(fn(SIZE_MAX, 10), EINVAL);
  CHECK_FAILS(fn(HALF_PLUS_1, 10), ENOMEM);
  CHECK_FAILS(fn((HALF_PLUS_1 >> 1) + 1, 10), ENOMEM); /* rounds up to 2^63 */
  CHECK_FAILS(fn(HALF_PLUS_1 >> 1, 10), ENOMEM);
  CHECK_FAILS(fn(64, SIZE_MAX), ENOMEM);
  CHECK_FAILS(fn(64, PTRDIFF_MAX), ENOMEM);
  CHECK_FAILS(fn(4096, PTRDIFF_MAX_PLUS_1), ENOMEM);
  CHECK_FAILS(fn(4096, SIZE_MAX - 4096), ENOMEM);
}

static void case_aligned_alloc(void) {
  check_aligned_fn(A.aligned_alloc_, "aligned_alloc");
  void *p = A.aligned_alloc_(64, 0);
  CHECK(p != NULL);
  A.free_(p);
}

static void case_memalign(void) { check_aligned_fn(A.memalign_, "memalign"); }

static void case_valloc_pvalloc(void) {
  const size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000, MiB + 1, 5 * MiB + 3};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    A.free_(check_block(A.valloc_(sizes[i]), sizes[i], PAGE, "valloc"));
    size_t rounded = (sizes[i] + PAGE - 1) / PAGE * PAGE;
    A.free_(check_block(A.pvalloc_(sizes[i]), rounded, PAGE, "pvalloc")); /* whole pages */
  }
  A.free_(check_block(A.valloc_(0), 0, PAGE, "valloc(0)"));
  A.free_(check_block(A.pvalloc_(0), 0, PAGE, "pvalloc(0)"));
}

/* ---- sized frees, trim ------------------------------------------------------------------ */

static void case_free_sized(void) {
  errno = 4242;
  A.free_sized_(NULL, 0);
  A.free_aligned_sized_(NULL, 64, 0);
  size_t sizes[] = {0, 1, 16, 17, 500, 1024, 5000, 70000, 300000, 5 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = A.malloc_(sizes[i]);
    REQUIRE(p != NULL);
    A.free_sized_(p, sizes[i]);
    void *c = A.calloc_(sizes[i] ? sizes[i] / 4 + 1 : 0, 4);
    REQUIRE(c != NULL);
    A.free_sized_(c, sizes[i] ? (sizes[i] / 4 + 1) * 4 : 0);
    for (size_t align = 16; align <= 65536; align *= 16) {
      void *q = A.aligned_alloc_(align, sizes[i]);
      REQUIRE(q != NULL);
      A.free_aligned_sized_(q, align, sizes[i]);
    }
  }
  CHECK_EQ(errno, 4242);
  if (A.is_strata) { /* strata.h: size 0 means "unknown" and is accepted */
    void *p = A.malloc_(777);
    REQUIRE(p != NULL);
    A.free_sized_(p, 0);
  }
  A.free_(check_block(A.malloc_(5000), 5000, 16, "malloc after sized frees"));
}

static void case_trim_and_validate(void) {
  void *big[16];
  for (int i = 0; i < 16; i++) {
    big[i] = A.malloc_(200000);
    REQUIRE(big[i] != NULL);
    memset(big[i], 1, 200000);
  }
  for (int i = 0; i < 16; i++) A.free_(big[i]);
  int rc = A.trim_(0);
  CHECK(rc == 0 || rc == 1);
  A.free_(check_block(A.malloc_(200000), 200000, 16, "malloc after trim"));
  if (A.heap_validate_) CHECK_EQ(A.heap_validate_(), 0);
}

/* ---- misuse that strata always detects (DESIGN.md "Always on and cheap") ------------- */

static char not_from_the_heap[64];
static void free_static_address(void *arg) { (void)arg, A.free_(not_from_the_heap + 16); }
static void free_interior_pointer(void *arg) {
  char *p = A.malloc_(100000);
  (void)arg, A.free_(p + 4096);
}
static void free_large_twice(void *arg) {
  void *p = A.malloc_(300000);
  (void)arg, A.free_(p), A.free_(p);
}
static void free_huge_twice(void *arg) {
  void *p = A.malloc_(30u << 20);
  (void)arg, A.free_(p), A.free_(p);
}

/* Each must end in a one-line "strata: ..." diagnostic and abort(). Only for strata: glibc
 * detects some of these too, with its own words. */
static void case_misuse_dies_with_diagnostic(void) {
  expect_death(free_static_address, NULL, "strata: ");
  expect_death(free_interior_pointer, NULL, "strata: ");
  expect_death(free_large_twice, NULL, "strata: ");
  expect_death(free_huge_twice, NULL, "strata: ");
}

/* ---- wiring ----------------------------------------------------------------------------- */

#ifdef API_STRATA
static size_t st_usable_size_mut(void *p) { return st_usable_size(p); }
static void select_api(void) {
  A = (alloc_api){"strata (st_*)",
                  true,
                  st_malloc,
                  st_calloc,
                  st_realloc,
                  st_reallocarray,
                  st_free,
                  st_free_sized,
                  st_free_aligned_sized,
                  st_aligned_alloc,
                  st_posix_memalign,
                  st_memalign,
                  st_valloc,
                  st_pvalloc,
                  st_usable_size_mut,
                  st_trim,
                  st_heap_validate,
                  false};
}
#else
/* glibc 2.36 has no free_sized/free_aligned_sized; when the preloaded strata provides them
 * they are looked up, else these stand-ins call free. */
static void plain_free_sized(void *p, size_t n) {
  (void)n;
  free(p);
}
static void plain_free_aligned_sized(void *p, size_t a, size_t n) {
  (void)a, (void)n;
  free(p);
}
/* Stores dlsym(name) into the function pointer at slot when the symbol exists. */
static void lookup(const char *name, void *slot) {
  void *f = dlsym(RTLD_DEFAULT, name);
  if (f) memcpy(slot, &f, sizeof f);
}
static void select_api(void) {
  A = (alloc_api){"libc names",
                  false,
                  malloc,
                  calloc,
                  realloc,
                  reallocarray,
                  free,
                  plain_free_sized,
                  plain_free_aligned_sized,
                  aligned_alloc,
                  posix_memalign,
                  memalign,
                  valloc,
                  pvalloc,
                  malloc_usable_size,
                  malloc_trim,
                  NULL,
                  true};
  lookup("free_sized", &A.free_sized_);
  lookup("free_aligned_sized", &A.free_aligned_sized_);
  lookup("st_heap_validate", &A.heap_validate_);
  if (A.heap_validate_) { /* libstrata is in the process: its contract applies */
    A.name = "libc names from libstrata";
    A.is_strata = true;
    A.posix_memalign_enomem_sets_errno = false;
  }
}

/* Under LD_PRELOAD: every libc name must resolve into libstrata, and malloc_usable_size must
 * be strata's own answer. */
static void case_libc_names_come_from_strata(void) {
  const char *names[] = {"malloc",
                         "calloc",
                         "realloc",
                         "reallocarray",
                         "free",
                         "posix_memalign",
                         "aligned_alloc",
                         "memalign",
                         "valloc",
                         "pvalloc",
                         "malloc_usable_size",
                         "malloc_trim",
                         "free_sized",
                         "free_aligned_sized"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void *sym = dlsym(RTLD_DEFAULT, names[i]);
    Dl_info info;
    CHECK_MSG(sym != NULL && dladdr(sym, &info) && info.dli_fname &&
                  strstr(info.dli_fname, "libstrata") != NULL,
              "%s resolves to %s", names[i], sym && dladdr(sym, &info) ? info.dli_fname : "?");
  }
  Dl_info info;
  CHECK(dladdr((void *)malloc, &info) && strstr(info.dli_fname, "libstrata") != NULL);
  size_t (*st_usable)(const void *) = NULL;
  lookup("st_usable_size", &st_usable);
  REQUIRE(st_usable != NULL);
  for (size_t n = 1; n < 100000; n = n * 3 + 1) {
    void *p = malloc(n);
    REQUIRE(p != NULL);
    CHECK_EQ(malloc_usable_size(p), st_usable(p));
    free(p);
  }
}
#endif

int main(int argc, char **argv) {
  select_api();
  /* Hide the table's contents from the optimizer: clang 14 assumes a call it knows to be
   * malloc never writes errno, which would fold every errno check here to its old value. */
  __asm__ volatile("" : : "r"(&A) : "memory");
  fprintf(stderr, "api_table: testing %s\n", A.name);
#ifndef API_STRATA
  if (argc > 1 && strcmp(argv[1], "--expect-strata") == 0) {
    RUN_CASE_FORKED(case_libc_names_come_from_strata);
    CHECK_MSG(A.is_strata, "%s", "st_heap_validate not found: libstrata is not preloaded");
  }
#else
  (void)argc, (void)argv;
#endif
  RUN_CASE_FORKED(case_malloc_every_small_size);
  RUN_CASE_FORKED(case_malloc_large_sweep);
  RUN_CASE_FORKED(case_malloc_zero_is_unique);
  RUN_CASE_FORKED(case_free_null_and_errno);
  RUN_CASE_FORKED(case_impossible_sizes);
  RUN_CASE_FORKED(case_calloc_overflow);
  RUN_CASE_FORKED(case_calloc_zeroes_reused_memory);
  RUN_CASE_FORKED(case_calloc_large_zeroed);
  RUN_CASE_FORKED(case_realloc_null_and_zero);
  RUN_CASE_FORKED(case_realloc_keeps_contents);
  RUN_CASE_FORKED(case_realloc_failure_keeps_block);
  RUN_CASE_FORKED(case_reallocarray);
  RUN_CASE_FORKED(case_posix_memalign);
  RUN_CASE_FORKED(case_aligned_alloc);
  RUN_CASE_FORKED(case_memalign);
  RUN_CASE_FORKED(case_valloc_pvalloc);
  RUN_CASE_FORKED(case_free_sized);
  RUN_CASE_FORKED(case_trim_and_validate);
  if (A.is_strata) RUN_CASE_FORKED(case_misuse_dies_with_diagnostic);
  return check_summary();
}
