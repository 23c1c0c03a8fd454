/*
 * bigmem.c — anonymous mappings for the strata command's big arrays (bigmem.h).
 */
#include "cli/bigmem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Noreturn void *refused(size_t size) {
  fprintf(stderr, "strata: cannot map %zu bytes: %s\n", size, strerror(errno));
  exit(1);
}

void *bigmem_alloc(size_t size) {
  if (size == 0) size = 1;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? refused(size) : p;
}

void *bigmem_grow(void *p, size_t old_size, size_t new_size) {
  if (p == NULL) return bigmem_alloc(new_size);
  void *q = mremap(p, old_size ? old_size : 1, new_size, MREMAP_MAYMOVE);
  return q == MAP_FAILED ? refused(new_size) : q;
}

void bigmem_free(void *p, size_t size) {
  if (p != NULL) munmap(p, size ? size : 1);
}
