/*
 * sizeclass.h — size classes of small blocks and the geometry of pages.
 *
 * Owns: the mapping from a request size to a class, each class's block size and the
 * number of pages of its slab spans. Classes step by 16 bytes up to 128, then by 1/8 of
 * the power of two below (8 classes per doubling) up to ST_SMALL_MAX, so a request
 * n >= 128 wastes at most (step - 1) / n < 12.5%; below 128 the waste is under the
 * 16-byte alignment quantum. Larger requests are whole pages (waste < 4 KiB / 8 KiB).
 * ST_SMALL_MAX is 8 KiB rather than more because a slab span of bigger blocks holds so
 * few of them (8 blocks, 128 KiB for 16 KiB) that the free blocks of partly used spans
 * dominated resident memory under random frees and cross-thread traffic; as whole pages
 * from the page heap, a freed block's pages serve any size at once (blocks of 8..16 KiB
 * as pages lowered the peak of `server` from 23.6 to 20.4 MiB: docs/memory.md).
 * The tables are generated at compile time from the formulas below; docs/memory.md
 * lists every class's waste and metadata (tools/sizeclass_doc.c).
 */
#ifndef ST_CORE_SIZECLASS_H
#define ST_CORE_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

#define ST_PAGE_SHIFT 12
#define ST_PAGE_SIZE ((size_t)1 << ST_PAGE_SHIFT)
#define ST_SMALL_MAX ((size_t)8192)       /* largest size served from slab spans */
#define ST_SMALL_FAST_MAX ((size_t)1024)  /* largest size whose class is one table load */
#define ST_NUM_CLASSES 56
#define ST_SLAB_MIN_BYTES ((size_t)65536)        /* smallest slab span of blocks below 2 KiB */
#define ST_SLAB_MEDIUM_BLOCK ((size_t)2048)      /* from this block size up, smaller spans: */
#define ST_SLAB_MEDIUM_MIN_BYTES ((size_t)32768) /* their smallest slab span */
#define ST_SLAB_MIN_BLOCKS 8                     /* bounds the unusable tail to 1/8 of a span */

/* The tables are constant expressions so that every thread may read them from its very
 * first malloc, before any initialisation has run. */
/* a - b, or 0 when b > a: keeps the unselected arms of the macros below from wrapping. */
#define ST_SUB0(a, b) ((a) > (b) ? (a) - (b) : 0)
#define ST_CLASS_GROUP_BASE(c) ((size_t)128 << (ST_SUB0(c, 8) / 8))
#define ST_CLASS_SIZE(c)                                                                        \
  ((c) < 8 ? (size_t)16 * ((c) + 1)                                                             \
           : ST_CLASS_GROUP_BASE(c) + (ST_SUB0(c, 8) % 8 + 1) * (ST_CLASS_GROUP_BASE(c) / 8))
/* Blocks of 2 KiB and more get smaller spans: 32 KiB, or 8 blocks where that is more (from
 * 4 KiB up; a whole number of pages, so no tail). Under random frees a thread's partly used
 * spans of these classes held most of its free slab memory; spans of 8 to 16 blocks strand
 * fewer free blocks, at the cost of more refills (docs/memory.md). */
#define ST_CLASS_MIN_SPAN_BYTES(c)                                                              \
  (ST_CLASS_SIZE(c) >= ST_SLAB_MEDIUM_BLOCK ? ST_SLAB_MEDIUM_MIN_BYTES : ST_SLAB_MIN_BYTES)
#define ST_CLASS_SPAN_BYTES(c)                                                                  \
  (ST_CLASS_SIZE(c) * ST_SLAB_MIN_BLOCKS > ST_CLASS_MIN_SPAN_BYTES(c)                           \
       ? ST_CLASS_SIZE(c) * ST_SLAB_MIN_BLOCKS                                                  \
       : ST_CLASS_MIN_SPAN_BYTES(c))
/* Class of n <= ST_SMALL_FAST_MAX as a constant expression (see st__size_to_class). */
#define ST_SMALL_CLASS_OF(n)                                                                    \
  ((n) <= 128   ? ST_SUB0(n, 1) / 16                                                            \
   : (n) <= 256 ? 8 + ST_SUB0(n, 129) / 16                                                      \
   : (n) <= 512 ? 16 + ST_SUB0(n, 257) / 32                                                     \
                : 24 + ST_SUB0(n, 513) / 64)

ST_HIDDEN extern const uint8_t st__class_of_small[ST_SMALL_FAST_MAX + 1];
ST_HIDDEN extern const uint32_t st__class_size[ST_NUM_CLASSES];
ST_HIDDEN extern const uint16_t st__class_span_pages[ST_NUM_CLASSES];

/* Class of a request; size <= ST_SMALL_MAX. */
ST_INLINE unsigned st__size_to_class(size_t size) {
  if (size <= 128) return size == 0 ? 0 : (unsigned)((size - 1) >> 4);
  unsigned k = st_log2_floor(size - 1); /* 2^k < size <= 2^(k+1) */
  size_t step_shift = k - 3;
  return 8 + (k - 7) * 8 + (unsigned)(((size - 1) - ((size_t)1 << k)) >> step_shift);
}

/* The class of the smallest block of at least `size` bytes whose size is a multiple of
 * `align` (a power of two up to ST_PAGE_SIZE; size <= ST_SMALL_MAX): slab spans start on
 * a page, so every block of that class lies on the boundary. It is the class of m, the
 * request (at least 1) rounded up to the alignment: where the class step is below the
 * alignment, m is a multiple of the step and so itself a class size; where the step is at
 * least the alignment, every class size is a multiple of the step, hence of the alignment.
 * No class in between is a multiple of the alignment, since none lies in [size, m). */
ST_INLINE unsigned st__aligned_class(size_t size, size_t align) {
  return st__size_to_class(st_align_up(size == 0 ? 1 : size, align));
}

/* The table lookup the malloc fast path uses; size <= ST_SMALL_FAST_MAX. One entry per
 * byte (1 KiB) rather than per 16 bytes: indexing by the size itself saves the rounding
 * add and shift on every malloc. */
ST_INLINE unsigned st__small_class(size_t size) { return st__class_of_small[size]; }

ST_INLINE size_t st__pages_to_bytes(size_t pages) { return pages << ST_PAGE_SHIFT; }
ST_INLINE size_t st__bytes_to_pages(size_t bytes) { return (bytes + ST_PAGE_SIZE - 1) >> ST_PAGE_SHIFT; }

#endif
