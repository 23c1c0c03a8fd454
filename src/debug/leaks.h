/*
 * leaks.h — the leak report (see leaks.c).
 */
#ifndef ST_DEBUG_LEAKS_H
#define ST_DEBUG_LEAKS_H

#include <stdio.h>

#include "base/macros.h"

/* Marks what the roots reach, prints the unreachable blocks grouped by stack to f and
 * returns how many there are (0 when tracking is off). Call once, at exit. */
ST_HIDDEN size_t st__leaks_report(FILE *f);

#endif
