/*
 * picture.h — the heap dump (st_heap_dump's text and JSON) of a classic heap (picture.c).
 */
#ifndef ST_CLASSIC_PICTURE_H
#define ST_CLASSIC_PICTURE_H

#include <stdio.h>

#include "classic/heap.h"
#include "strata.h"

/* Writes h's picture; 0, or -1 when the file fails or no memory is left for the copy. */
ST_HIDDEN int st__classic_dump(st_classic_heap_t *h, FILE *file, st_dump_format format);

#endif
