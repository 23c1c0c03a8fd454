/* ctor_lib.h — what ctor_main.c asks ctor_lib.c about its constructor's allocations. */
#ifndef STRATA_CTOR_LIB_H
#define STRATA_CTOR_LIB_H

#include <stddef.h>

enum { CTOR_BLOCKS = 60 };

int ctor_lib_result(void);                 /* 0: the constructor ran and its blocks are intact */
void *ctor_lib_block(int i, size_t *size); /* block i, for main to check and free */

#endif
