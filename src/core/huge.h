/*
 * huge.h — blocks above the huge threshold, mapped directly from the kernel.
 *
 * Owns: mapping, unmapping and mremap-resizing of huge blocks. Each has a HUGE span
 * descriptor (from the page heap's descriptor pool) whose first page is in the pagemap.
 * A freed huge block's mapping is unmapped, or kept for the next huge request by the
 * cache of freed mappings (hugecache.h), which never holds memory while strata maps more.
 */
#ifndef ST_CORE_HUGE_H
#define ST_CORE_HUGE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/span.h"

/* A block of at least size bytes aligned to align (power of two); NULL on failure. zero: it
 * must read as zero (a fresh mapping, never a reused one). */
ST_HIDDEN void *st__huge_alloc(size_t size, size_t align, bool zero);
ST_HIDDEN void st__huge_free(st_span_t *span);
/* Resizes in place or moves with mremap; NULL (block untouched) on failure. */
ST_HIDDEN void *st__huge_resize(st_span_t *span, size_t size);
ST_HIDDEN size_t st__huge_count(void);
/* Whether p started one of the last 16 huge blocks freed (their mapping may be in use
 * again). */
ST_HIDDEN bool st__huge_recently_freed(const void *p);

#endif
