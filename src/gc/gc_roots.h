/*
 * gc_roots.h — where marking starts: the calling thread, loaded objects' data, registered
 * ranges.
 *
 * Owns: the table of ranges registered with st_gc_add_roots and the discovery of the other
 * roots at each collection: the registers and stack of the calling thread (from the current
 * frame to the top reported by pthread_getattr_np) and the writable PT_LOAD segments of every
 * loaded object (dl_iterate_phdr: data and bss of the program and its libraries). The
 * shared object strata itself is skipped: its data holds only the collector's pointers to
 * metadata, never to objects. Other threads' stacks and registers are NOT roots.
 * Calls: gc_mark, os. Callers hold the GC lock.
 */
#ifndef ST_GC_GC_ROOTS_H
#define ST_GC_GC_ROOTS_H

#include <stdbool.h>

#include "base/macros.h"

/* Registers [lo, hi); false (nothing changed) when the table cannot grow. */
ST_HIDDEN bool st__gc_roots_add(const void *lo, const void *hi);
/* Unregisters [lo, hi): registered ranges inside it are dropped, overlapping ones trimmed.
 * False when trimming had to split a range and the table cannot grow. */
ST_HIDDEN bool st__gc_roots_remove(const void *lo, const void *hi);
/* Marks from every root (does not drain the mark stack). */
ST_HIDDEN void st__gc_roots_mark(void);

#endif
