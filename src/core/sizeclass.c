/*
 * sizeclass.c — the size-class tables, generated at compile time (see sizeclass.h).
 */
#include "core/sizeclass.h"

#define REPEAT8(X, base)                                                                        \
  X((base) + 0), X((base) + 1), X((base) + 2), X((base) + 3), X((base) + 4), X((base) + 5),     \
      X((base) + 6), X((base) + 7)
#define REPEAT64(X, base)                                                                       \
  REPEAT8(X, (base) + 0), REPEAT8(X, (base) + 8), REPEAT8(X, (base) + 16),                      \
      REPEAT8(X, (base) + 24), REPEAT8(X, (base) + 32), REPEAT8(X, (base) + 40),                \
      REPEAT8(X, (base) + 48), REPEAT8(X, (base) + 56)

#define REPEAT56(X, base)                                                                       \
  REPEAT8(X, (base) + 0), REPEAT8(X, (base) + 8), REPEAT8(X, (base) + 16),                      \
      REPEAT8(X, (base) + 24), REPEAT8(X, (base) + 32), REPEAT8(X, (base) + 40),                \
      REPEAT8(X, (base) + 48)

#define REPEAT512(X, base)                                                                      \
  REPEAT64(X, (base) + 0), REPEAT64(X, (base) + 64), REPEAT64(X, (base) + 128),                 \
      REPEAT64(X, (base) + 192), REPEAT64(X, (base) + 256), REPEAT64(X, (base) + 320),          \
      REPEAT64(X, (base) + 384), REPEAT64(X, (base) + 448)

#define SMALL_ENTRY(n) ST_SMALL_CLASS_OF((size_t)(n))
#define SIZE_ENTRY(c) (uint32_t) ST_CLASS_SIZE(c)
#define PAGES_ENTRY(c) (uint16_t)((ST_CLASS_SPAN_BYTES(c) + ST_PAGE_SIZE - 1) / ST_PAGE_SIZE)

const uint8_t st__class_of_small[ST_SMALL_FAST_MAX + 1] = {
    REPEAT512(SMALL_ENTRY, 0), REPEAT512(SMALL_ENTRY, 512), SMALL_ENTRY(1024)};
_Static_assert(ST_NUM_CLASSES == 56, "the tables below list 56 classes");
const uint32_t st__class_size[ST_NUM_CLASSES] = {REPEAT56(SIZE_ENTRY, 0)};
const uint16_t st__class_span_pages[ST_NUM_CLASSES] = {REPEAT56(PAGES_ENTRY, 0)};

_Static_assert(ST_CLASS_SIZE(ST_NUM_CLASSES - 1) == ST_SMALL_MAX, "the last class is ST_SMALL_MAX");
_Static_assert(ST_SMALL_CLASS_OF(ST_SMALL_FAST_MAX) == 31, "1024 bytes is class 31");
