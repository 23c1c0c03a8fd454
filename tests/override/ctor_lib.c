/*
 * ctor_lib.c — a shared library whose constructor allocates before main() runs.
 *
 * Under LD_PRELOAD (or when the program links libstrata) these are among the allocator's
 * very first calls, made from the dynamic loader's constructor phase: the allocator must
 * already work here without any help from main (DESIGN.md: "The library must work from the
 * first allocation of the dynamic loader's constructors onward").
 */
#include <stdlib.h>

#include "ctor_lib.h"
#include "override_util.h"

static void *blocks[CTOR_BLOCKS];
static size_t sizes[CTOR_BLOCKS];
static int failures = -1; /* -1: the constructor did not run */

__attribute__((constructor)) static void ctor_lib_init(void) {
  failures = 0;
  for (int i = 0; i < CTOR_BLOCKS; i++) {
    size_t n = (size_t)1 << (i % 20); /* 1 B .. 512 KiB */
    void *p = NULL;
    switch (i % 6) {
    case 0:
      p = malloc(n);
      break;
    case 1:
      p = calloc(1, n);
      for (size_t k = 0; p && k < n; k++) failures += ((unsigned char *)p)[k] != 0;
      break;
    case 2: /* grow, then shrink, checking the contents survive */
      p = malloc(16);
      if (p) pattern_fill(p, 16, 99), p = realloc(p, n + 1000);
      if (p && !pattern_ok(p, 16, 99)) failures++;
      if (p) p = realloc(p, n);
      break;
    case 3:
      failures += posix_memalign(&p, 64, n) != 0;
      break;
    case 4:
      p = aligned_alloc(4096, n);
      break;
    case 5:
      free(escape(malloc(n * 3))), p = malloc(n);
      break;
    }
    if (p == NULL) {
      failures++;
      continue;
    }
    pattern_fill(p, n, (uint32_t)i);
    blocks[i] = p;
    sizes[i] = n;
  }
}

int ctor_lib_result(void) {
  if (failures != 0) return failures;
  for (int i = 0; i < CTOR_BLOCKS; i++)
    if (!blocks[i] || !pattern_ok(blocks[i], sizes[i], (uint32_t)i)) return 1000 + i;
  return 0;
}

void *ctor_lib_block(int i, size_t *size) {
  *size = sizes[i];
  return blocks[i];
}
