/*
 * sizeclass_doc.c — prints docs/sizeclasses.md: for every size class, the memory a block
 * costs beyond the request (rounding to the class, the span's unusable tail, metadata),
 * computed from the class table and the span layout, so the page cannot drift from the
 * code (the docs_sizeclasses test compares them).
 * Regenerate with: cmake --build build --target docs-sizeclasses
 */
#include <stdio.h>

#include "core/pagemap.h"
#include "core/sizeclass.h"
#include "core/span.h"

/* Pagemap bytes per page of a slab span: every page of a slab has its entry. */
#define PAGEMAP_ENTRY_BYTES sizeof(st_pagemap_entry)

static double percent(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0; }

int main(void) {
  printf("# Size classes: what a block costs beyond its request\n\n");
  printf("This file is generated from `src/core/sizeclass.h` and the span layout by\n"
         "`tools/sizeclass_doc.c` (`cmake --build build --target docs-sizeclasses`); a test\n"
         "fails when it is stale. `docs/memory.md` explains where the rest of the memory goes.\n\n");
  printf("Requests up to %zu bytes are rounded up to a class and served from slab spans; larger\n"
         "ones take whole %zu-byte pages from a page heap (waste under one page, metadata one\n"
         "%zu-byte descriptor and one pagemap entry per block).\n\n",
         ST_SMALL_MAX, ST_PAGE_SIZE, ST_SPAN_DESC_STRIDE);
  printf("Columns:\n\n"
         "- **requests**: the request sizes the class serves.\n"
         "- **worst / mean rounding**: internal fragmentation, the block bytes beyond the request:\n"
         "  for the smallest request of the class (in bytes and as a share of it), and as a share\n"
         "  of the requests' bytes with each request size of the class equally likely.\n"
         "- **span**: bytes of one slab span of the class, and the blocks it holds.\n"
         "- **tail**: bytes at the end of a span too short for a block, as a share of the span.\n"
         "- **metadata**: the span's descriptor (%zu bytes) and its pagemap entries (%zu bytes a\n"
         "  page), as a share of the span. Thread caches (a few KiB per thread) are left out:\n"
         "  they do not grow with the memory in use.\n\n",
         ST_SPAN_DESC_STRIDE, PAGEMAP_ENTRY_BYTES);
  printf("| class | block | requests | worst rounding | mean rounding | span | blocks | tail | "
         "metadata |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
  size_t lo = 1;
  for (unsigned c = 0; c < ST_NUM_CLASSES; c++) {
    size_t block = st__class_size[c];
    size_t span = st__pages_to_bytes(st__class_span_pages[c]);
    size_t blocks = span / block;
    size_t tail = span - blocks * block;
    size_t metadata = ST_SPAN_DESC_STRIDE + st__class_span_pages[c] * PAGEMAP_ENTRY_BYTES;
    double waste_sum = 0, request_sum = 0;
    for (size_t n = lo; n <= block; n++) {
      waste_sum += (double)(block - n);
      request_sum += (double)n;
    }
    printf("| %u | %zu | %zu..%zu | %zu B, %.1f%% | %.1f%% | %zu KiB | %zu | %.1f%% | %.2f%% |\n", c,
           block, lo, block, block - lo, percent((double)(block - lo), (double)lo), percent(waste_sum, request_sum),
           span >> 10, blocks, percent((double)tail, (double)span), percent((double)metadata, (double)span));
    lo = block + 1;
  }
  return 0;
}
