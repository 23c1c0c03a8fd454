/* Unit tests of the size classes: the smallest fitting class, bounded waste, span
 * geometry. */
#include "../check.h"
#include "core/sizeclass.h"

static void every_size_gets_the_smallest_fitting_class(void) {
  for (size_t n = 0; n <= ST_SMALL_MAX; n++) {
    unsigned c = st__size_to_class(n);
    if (!CHECK_LT(c, ST_NUM_CLASSES)) return;
    CHECK_MSG(st__class_size[c] >= n, "size %zu class %u", n, c);
    CHECK_MSG(c == 0 || st__class_size[c - 1] < n, "size %zu class %u not smallest", n, c);
    if (n <= ST_SMALL_FAST_MAX) CHECK_EQ(st__small_class(n), c);
  }
}

/* Every block of the aligned class lies on the boundary (slab spans start on a page), and
 * no smaller class whose blocks all would holds the request. */
static void aligned_requests_get_the_smallest_aligned_class(void) {
  for (size_t align = 32; align <= ST_PAGE_SIZE; align *= 2) {
    for (size_t n = 0; n <= ST_SMALL_MAX; n++) {
      unsigned c = st__aligned_class(n, align);
      if (!CHECK_LT(c, ST_NUM_CLASSES)) return;
      if (!CHECK_MSG(st__class_size[c] >= n && st__class_size[c] % align == 0,
                     "size %zu align %zu class %u", n, align, c))
        return;
      for (unsigned d = st__size_to_class(n); d < c; d++)
        if (!CHECK_MSG(st__class_size[d] % align != 0, "size %zu align %zu: class %u fits", n,
                       align, d))
          return;
    }
  }
}

static void waste_is_at_most_one_eighth_from_128_bytes(void) {
  for (size_t n = 128; n <= ST_SMALL_MAX; n++) {
    size_t block = st__class_size[st__size_to_class(n)];
    CHECK_MSG((block - n) * 8 <= n, "size %zu gets %zu", n, block);
  }
  /* Below 128 bytes the classes are the 16-byte alignment quantum apart. */
  for (size_t n = 1; n < 128; n++) CHECK_LT(st__class_size[st__size_to_class(n)] - n, 16);
}

static void classes_are_aligned_and_increasing(void) {
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    CHECK_EQ(st__class_size[c] % 16, 0);
    if (c > 0) CHECK_LT(st__class_size[c - 1], st__class_size[c]);
  }
  CHECK_EQ(st__class_size[ST_NUM_CLASSES - 1], ST_SMALL_MAX);
}

static void spans_hold_enough_blocks_with_a_small_tail(void) {
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    size_t bytes = st__pages_to_bytes(st__class_span_pages[c]);
    size_t blocks = bytes / st__class_size[c];
    CHECK_GE(blocks, ST_SLAB_MIN_BLOCKS);
    CHECK_MSG((bytes - blocks * st__class_size[c]) * 8 <= bytes, "class %u tail", c);
  }
}

/* Blocks of 2 KiB and more sit in spans of 32 KiB, or of exactly 8 blocks where that is
 * more (every class from 4 KiB up, whose 8 blocks fill whole pages): few blocks per span, so
 * a thread's partly used spans of these classes hold few free blocks. */
static void medium_classes_have_small_spans(void) {
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    size_t block = st__class_size[c], bytes = st__pages_to_bytes(st__class_span_pages[c]);
    if (block < ST_SLAB_MEDIUM_BLOCK) {
      CHECK_EQ(bytes, ST_SLAB_MIN_BYTES);
    } else if (block * ST_SLAB_MIN_BLOCKS <= ST_SLAB_MEDIUM_MIN_BYTES) {
      CHECK_EQ(bytes, ST_SLAB_MEDIUM_MIN_BYTES);
    } else {
      CHECK_EQ(bytes, block * ST_SLAB_MIN_BLOCKS);
    }
  }
}

int main(void) {
  RUN_CASE(every_size_gets_the_smallest_fitting_class);
  RUN_CASE(aligned_requests_get_the_smallest_aligned_class);
  RUN_CASE(waste_is_at_most_one_eighth_from_128_bytes);
  RUN_CASE(classes_are_aligned_and_increasing);
  RUN_CASE(spans_hold_enough_blocks_with_a_small_tail);
  RUN_CASE(medium_classes_have_small_spans);
  return check_summary();
}
