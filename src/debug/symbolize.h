/*
 * symbolize.h — return addresses to function, file and line, for the leak report.
 *
 * Owns: loading libdw (elfutils) with dlopen when a report is printed, so processes that
 * never report never load it, and falling back to dladdr (exported names only) when libdw
 * or its headers are missing. Runs at exit, outside every strata lock: it may allocate
 * (those allocations are not recorded: the caller marks the thread busy).
 */
#ifndef ST_DEBUG_SYMBOLIZE_H
#define ST_DEBUG_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

typedef struct st_symbol {
  const char *function; /* NULL when unknown */
  const char *module;   /* path of the object, or NULL */
  const char *file;     /* source file, or NULL without debug info */
  int line;
} st_symbol_t;

/* Opens the symbolizer for this process; false when only dladdr is available. */
ST_HIDDEN bool st__symbolize_begin(void);
/* Fills *out for addr (a return address: the call site is looked up at addr - 1 unless
 * `exact`). Strings stay valid until st__symbolize_end. */
ST_HIDDEN void st__symbolize(uintptr_t addr, bool exact, st_symbol_t *out);
ST_HIDDEN void st__symbolize_end(void);

#endif
