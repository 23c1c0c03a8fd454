/* dlopen_lib.h — what dlopen_loop.c looks up in dlopen_lib.c (see there). */
#ifndef STRATA_DLOPEN_LIB_H
#define STRATA_DLOPEN_LIB_H

#include <stddef.h>
#include <stdint.h>

int dlo_check(void);                             /* 0 when the constructor's blocks are intact */
void *dlo_make(size_t n, uint32_t seed);         /* a patterned block for the caller to free */
int dlo_adopt(void *p, size_t n, uint32_t seed); /* the destructor checks and frees p */
int dlo_spawn(void);                             /* runs and joins an allocating thread */

#endif
