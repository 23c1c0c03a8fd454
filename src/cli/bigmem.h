/*
 * bigmem.h — arrays for the strata command's large data (traces, replay slots), mapped
 * straight from the kernel so that a replay's own bookkeeping never goes through the
 * allocator it measures. The strata command is a program, not part of libstrata: it may
 * map memory itself (tools/check_layers.sh allows it for cli/ only).
 */
#ifndef ST_CLI_BIGMEM_H
#define ST_CLI_BIGMEM_H

#include <stddef.h>

/* size zeroed bytes, or exits with a message when the kernel refuses: never NULL. */
__attribute__((returns_nonnull)) void *bigmem_alloc(size_t size);
/* Grows a bigmem_alloc block from old_size to new_size bytes (the new part zeroed). */
__attribute__((returns_nonnull)) void *bigmem_grow(void *p, size_t old_size, size_t new_size);
void bigmem_free(void *p, size_t size);

#endif
