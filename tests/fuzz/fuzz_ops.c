/*
 * fuzz_ops.c — the operation-sequence fuzzer (STYLE.md §12), as a libFuzzer entry point.
 *
 * Owns: decoding input bytes into malloc-family operations over several heaps at once — the
 * process heap (st_*) and one first-class heap per classic strategy (st_heap_*) — and a
 * model of every live block that each result is held against: contents survive until free
 * and across realloc, calloc gives zeros, alignment and usable size are as promised, no two
 * live blocks (of any heap) overlap, invalid arguments give NULL with the documented errno,
 * a heap's visit reports exactly the model's blocks, and every layer's invariant walker
 * passes after every step. A broken promise prints one line and aborts, which libFuzzer
 * records as a crash. Each input starts from empty heaps and leaves nothing behind.
 * fuzz_replay.c runs the same entry point without libFuzzer (gcc builds, the corpus).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* 0: leave the bytes between the request and the usable size alone. Under Valgrind's memcheck
 * strata marks them inaccessible (docs/debugging.md), stricter than malloc_usable_size. */
extern int fuzz_write_slack;
int fuzz_write_slack = 1;

/* Heap 0 is the process heap; heaps 1..7 are st_heap_new() of first-fit .. bitmap. */
enum { HEAPS = ST_STRATEGY_COUNT, SLOTS = 24, OP_BYTES = 4 };
/* Contents are checked in full up to this many bytes, and sampled beyond it. */
enum { FULL_CHECK_BYTES = 8192, SAMPLE_STRIDE = 4093 };
/* What malloc promises on x86-64 and aarch64 Linux, as glibc does. */
enum { MALLOC_ALIGNMENT = 16 };

typedef struct block {
  unsigned char *p; /* NULL: slot empty */
  size_t size;      /* requested size: the model's bytes */
  size_t usable;    /* what usable_size reported at allocation */
  uint8_t seed;     /* contents are pattern(seed, offset) */
} block;

static struct {
  st_heap_t *heap[HEAPS]; /* [0] NULL: the process heap */
  block slot[HEAPS][SLOTS];
  size_t step;
} fz;

/* Impossible sizes, hidden from the compiler (it rejects literal ones). */
static volatile size_t impossible_size = (size_t)PTRDIFF_MAX + 1, half_size_max = SIZE_MAX / 2;

__attribute__((format(printf, 1, 2), noreturn)) static void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_ops: step %zu: ", fz.step);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

static const char *heap_name(int h) {
  return h == 0 ? "process" : st_strategy_name((st_strategy)h);
}

static unsigned char pattern(uint8_t seed, size_t i) {
  return (unsigned char)(seed ^ (i * 131u) ^ (i >> 9));
}

/* ---- The operations, per heap --------------------------------------------------------- */

static void *heap_malloc(int h, size_t n) {
  return h ? st_heap_malloc(fz.heap[h], n) : st_malloc(n);
}
static void *heap_calloc(int h, size_t c, size_t n) {
  return h ? st_heap_calloc(fz.heap[h], c, n) : st_calloc(c, n);
}
static void *heap_realloc(int h, void *p, size_t n) {
  return h ? st_heap_realloc(fz.heap[h], p, n) : st_realloc(p, n);
}
static void *heap_aligned(int h, size_t align, size_t n) {
  return h ? st_heap_aligned_alloc(fz.heap[h], align, n) : st_aligned_alloc(align, n);
}
static void heap_free(int h, void *p) { h ? st_heap_free(fz.heap[h], p) : st_free(p); }
static size_t heap_usable(int h, const void *p) {
  return h ? st_heap_usable_size(fz.heap[h], p) : st_usable_size(p);
}

/* ---- The model ------------------------------------------------------------------------ */

/* The offsets the model writes and checks: all of a small block; of a large one, the first
 * and last FULL_CHECK_BYTES / 2 and every SAMPLE_STRIDE-th byte between (fast enough for
 * megabyte blocks, and still touching every page). */
static size_t next_offset(size_t i, size_t n) {
  const size_t edge = FULL_CHECK_BYTES / 2;
  if (n <= FULL_CHECK_BYTES || i + 1 < edge || i + 1 >= n - edge) return i + 1;
  size_t sample = (i / SAMPLE_STRIDE + 1) * SAMPLE_STRIDE;
  return sample < n - edge ? sample : n - edge;
}

static void fill(block *b) {
  for (size_t i = 0; i < b->size; i = next_offset(i, b->size)) b->p[i] = pattern(b->seed, i);
}

/* Checks the first `upto` bytes of the model's contents (a realloc keeps a prefix). */
static void check_contents(int h, const block *b, size_t upto) {
  for (size_t i = 0; i < upto; i = next_offset(i, b->size)) {
    if (b->p[i] != pattern(b->seed, i))
      fuzz_fail("%s heap: block %p (size %zu) byte %zu is %#x, expected %#x", heap_name(h),
                (void *)b->p, b->size, i, b->p[i], pattern(b->seed, i));
  }
}

static void check_zero(int h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i = next_offset(i, n))
    if (p[i] != 0)
      fuzz_fail("%s heap: calloc block %p byte %zu is not zero", heap_name(h), (void *)p, i);
}

/* A fresh block: aligned, usable >= size, writable to its last usable byte, overlapping no
 * other live block of any heap. Records it in the slot and fills it. */
static void adopt(int h, block *b, unsigned char *p, size_t size, size_t align, uint8_t seed) {
  if ((uintptr_t)p % align != 0)
    fuzz_fail("%s heap: block %p of %zu bytes not aligned to %zu", heap_name(h), (void *)p, size,
              align);
  size_t usable = heap_usable(h, p);
  if (usable < size)
    fuzz_fail("%s heap: block %p usable size %zu < requested %zu", heap_name(h), (void *)p, usable,
              size);
  for (int oh = 0; oh < HEAPS; oh++)
    for (int s = 0; s < SLOTS; s++) {
      const block *o = &fz.slot[oh][s];
      if (o->p == NULL || o == b) continue;
      if (p < o->p + (o->usable ? o->usable : 1) && o->p < p + (usable ? usable : 1))
        fuzz_fail("%s heap: block %p+%zu overlaps %s heap block %p+%zu", heap_name(h), (void *)p,
                  usable, heap_name(oh), (void *)o->p, o->usable);
    }
  if (usable > 0 && fuzz_write_slack) p[usable - 1] = 0xA5; /* the usable size is the caller's */
  *b = (block){p, size, usable, seed};
  fill(b);
}

static void release(int h, block *b) {
  check_contents(h, b, b->size);
  heap_free(h, b->p);
  *b = (block){0};
}

/* An allocation that had to fail: NULL with the given errno. */
static void expect_failure(int h, const char *what, void *p, int err, int want) {
  if (p != NULL || err != want)
    fuzz_fail("%s heap: %s gave %p errno %d, expected NULL errno %d", heap_name(h), what, p, err,
              want);
}

/* ---- Decoding ----------------------------------------------------------------------- */

/* Two bytes of size, scaled by a two-bit class: tiny, small, medium, large. */
static size_t decode_size(unsigned cls, unsigned v) {
  switch (cls & 3) {
  case 0:
    return v & 0xFF;
  case 1:
    return v & 0x1FFF;
  case 2:
    return (size_t)v * 4;
  default:
    return (size_t)(v & 0xFF) << 12; /* up to 1 MiB, page multiples */
  }
}

typedef struct op {
  unsigned kind, heap, slot, cls, arg; /* arg: the two size bytes */
} op;

static void do_malloc(const op *o, block *b) {
  size_t n = decode_size(o->cls, o->arg);
  if (b->p) release((int)o->heap, b);
  if (o->cls == 3 && (o->arg & 0xFC00) == 0xFC00) { /* impossible sizes */
    errno = 0;
    void *p = heap_malloc((int)o->heap, impossible_size);
    expect_failure((int)o->heap, "malloc(PTRDIFF_MAX + 1)", p, errno, ENOMEM);
    return;
  }
  unsigned char *p = heap_malloc((int)o->heap, n);
  if (p == NULL)
    fuzz_fail("%s heap: malloc(%zu) failed, errno %d", heap_name((int)o->heap), n, errno);
  adopt((int)o->heap, b, p, n, MALLOC_ALIGNMENT, (uint8_t)o->arg);
}

static void do_calloc(const op *o, block *b) {
  size_t n = decode_size(o->cls, o->arg), count = o->cls == 3 ? 1 : 1 + (o->slot >> 5);
  if (b->p) release((int)o->heap, b);
  if (o->cls == 3 && (o->arg & 0xFC00) == 0xFC00) { /* count * size overflows */
    errno = 0;
    void *p = heap_calloc((int)o->heap, half_size_max, 3);
    expect_failure((int)o->heap, "calloc(SIZE_MAX / 2, 3)", p, errno, ENOMEM);
    return;
  }
  unsigned char *p = heap_calloc((int)o->heap, count, n);
  if (p == NULL) fuzz_fail("%s heap: calloc(%zu, %zu) failed", heap_name((int)o->heap), count, n);
  check_zero((int)o->heap, p, count * n);
  adopt((int)o->heap, b, p, count * n, MALLOC_ALIGNMENT, (uint8_t)(o->arg >> 3));
}

static void do_realloc(const op *o, block *b) {
  int h = (int)o->heap;
  size_t n = decode_size(o->cls, o->arg);
  if (o->cls == 3 && (o->arg & 0xFC00) == 0xFC00) { /* too big: the block must survive */
    errno = 0;
    void *p = heap_realloc(h, b->p, impossible_size);
    expect_failure(h, "realloc(p, PTRDIFF_MAX + 1)", p, errno, ENOMEM);
    if (b->p) check_contents(h, b, b->size);
    return;
  }
  if (b->p && n == 0) { /* frees and returns NULL, as glibc does */
    check_contents(h, b, b->size);
    void *p = heap_realloc(h, b->p, 0);
    if (p != NULL) fuzz_fail("%s heap: realloc(p, 0) returned %p, not NULL", heap_name(h), p);
    *b = (block){0};
    return;
  }
  unsigned char *p = heap_realloc(h, b->p, n);
  if (p == NULL) fuzz_fail("%s heap: realloc(%p, %zu) failed", heap_name(h), (void *)b->p, n);
  block moved = *b;
  moved.p = p;
  if (b->p) check_contents(h, &moved, b->size < n ? b->size : n);
  *b = (block){0}; /* the old address is gone; adopt() must not compare with it */
  adopt(h, b, p, n, MALLOC_ALIGNMENT, (uint8_t)(moved.seed + 1));
}

static void do_aligned(const op *o, block *b) {
  int h = (int)o->heap;
  size_t n = decode_size(o->cls & 1, o->arg), align = (size_t)1 << ((o->arg >> 8) % 17);
  if (b->p) release(h, b);
  if ((o->arg & 0xF000) == 0xF000) { /* not a power of two */
    errno = 0;
    unsigned char *p = heap_aligned(h, align * 3, n);
    if (h != 0) { /* a heap refuses it; aligned_alloc rounds it up, as glibc does */
      expect_failure(h, "aligned_alloc(3 << k, n)", p, errno, EINVAL);
      return;
    }
    if (p == NULL) fuzz_fail("aligned_alloc(%zu, %zu) failed", align * 3, n);
    adopt(h, b, p, n, align * 4, (uint8_t)o->arg);
    return;
  }
  unsigned char *p = heap_aligned(h, align, n);
  if (p == NULL) fuzz_fail("%s heap: aligned_alloc(%zu, %zu) failed", heap_name(h), align, n);
  adopt(h, b, p, n, align, (uint8_t)(o->arg * 7));
}

/* Usable size is stable, and the contents are intact. */
static void do_inspect(const op *o, block *b) {
  int h = (int)o->heap;
  if (b->p == NULL) {
    if (heap_usable(h, NULL) != 0) fuzz_fail("%s heap: usable_size(NULL) != 0", heap_name(h));
    return;
  }
  size_t usable = heap_usable(h, b->p);
  if (usable != b->usable)
    fuzz_fail("%s heap: usable size of %p changed from %zu to %zu", heap_name(h), (void *)b->p,
              b->usable, usable);
  check_contents(h, b, b->size);
}

typedef struct visit_count {
  int heap;
  size_t blocks;
} visit_count;

static void visit_one(const void *p, size_t usable, void *arg) {
  visit_count *v = arg;
  for (int s = 0; s < SLOTS; s++)
    if (fz.slot[v->heap][s].p == p) {
      if (fz.slot[v->heap][s].usable != usable)
        fuzz_fail("%s heap: visit reports %p with %zu usable bytes, not %zu", heap_name(v->heap), p,
                  usable, fz.slot[v->heap][s].usable);
      v->blocks++;
      return;
    }
  fuzz_fail("%s heap: visit reports %p, which is not live", heap_name(v->heap), p);
}

/* A whole-heap operation: visit against the model, or destroy with live blocks and start a
 * new heap of the same strategy; on the process heap, trim. */
static void do_heap_op(const op *o) {
  int h = (int)o->heap;
  if (h == 0) {
    st_trim(0);
    return;
  }
  if (o->arg & 1) {
    visit_count v = {h, 0};
    size_t live = 0;
    st_heap_visit(fz.heap[h], visit_one, &v);
    for (int s = 0; s < SLOTS; s++) live += fz.slot[h][s].p != NULL;
    if (v.blocks != live)
      fuzz_fail("%s heap: visit saw %zu blocks, %zu live", heap_name(h), v.blocks, live);
    return;
  }
  st_heap_destroy(fz.heap[h]);
  memset(fz.slot[h], 0, sizeof fz.slot[h]);
  st_heap_options opts = {ST_HEAP_OPTIONS_VERSION, (st_strategy)h, 0};
  fz.heap[h] = st_heap_new(&opts);
  if (fz.heap[h] == NULL) fuzz_fail("st_heap_new(%s) failed after destroy", heap_name(h));
}

/* Byte 0: kind (3 bits) | heap (3 bits) | size class (2 bits); byte 1: slot (low 5 bits,
 * modulo SLOTS) and calloc's count (high 3 bits); bytes 2-3: size and alignment. */
static void run_op(const uint8_t *in) {
  op o = {in[0] & 7u, (in[0] >> 3) & 7u, in[1], in[0] >> 6, (unsigned)in[2] | (unsigned)in[3] << 8};
  block *b = &fz.slot[o.heap][o.slot % SLOTS];
  switch (o.kind) {
  case 0:
  case 1:
    do_malloc(&o, b);
    break;
  case 2:
    do_calloc(&o, b);
    break;
  case 3:
    do_realloc(&o, b);
    break;
  case 4:
    do_aligned(&o, b);
    break;
  case 5:
    if (b->p) release((int)o.heap, b);
    break;
  case 6:
    do_inspect(&o, b);
    break;
  default:
    do_heap_op(&o);
    break;
  }
  if (st_heap_validate() != 0)
    fuzz_fail("st_heap_validate failed after a %s heap op", heap_name((int)o.heap));
  if (o.heap != 0 && st_heap_check(fz.heap[o.heap]) != 0)
    fuzz_fail("st_heap_check(%s) failed", heap_name((int)o.heap));
}

static void heaps_open(void) {
  for (int h = 1; h < HEAPS; h++) {
    st_heap_options opts = {ST_HEAP_OPTIONS_VERSION, (st_strategy)h, 0};
    fz.heap[h] = st_heap_new(&opts);
    if (fz.heap[h] == NULL) fuzz_fail("st_heap_new(%s) failed", heap_name(h));
  }
}

/* Frees every live block (checking it one last time) and destroys the heaps. */
static void heaps_close(void) {
  for (int h = 0; h < HEAPS; h++) {
    for (int s = 0; s < SLOTS; s++)
      if (fz.slot[h][s].p) release(h, &fz.slot[h][s]);
    if (h != 0) st_heap_destroy(fz.heap[h]);
    fz.heap[h] = NULL;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  heaps_open();
  for (fz.step = 0; size >= OP_BYTES; data += OP_BYTES, size -= OP_BYTES, fz.step++) run_op(data);
  heaps_close();
  if (st_heap_validate() != 0) fuzz_fail("st_heap_validate failed after freeing everything");
  return 0;
}
