/*
 * gc_mark.h — the mark phase: conservative scanning with an explicit mark stack.
 *
 * Owns: the mark stack and the rule that turns a word into a marked object. No recursion:
 * an object found unmarked is marked at once and, unless atomic, its extent is pushed; the
 * drain pops extents and scans them. When the stack is full the push is dropped and an
 * overflow flag set; the drain then grows the stack (up to STRATA_GC_MARK_STACK_KB) and
 * rescans every marked object of the heap, which pushes whatever their dropped children
 * still lack, until a pass ends without overflow. Each pass marks at least one stack's
 * worth of new objects, so marking always terminates.
 * Calls: gc_heap (lookup), os (the stack's memory). Callers hold the GC lock.
 */
#ifndef ST_GC_GC_MARK_H
#define ST_GC_GC_MARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/macros.h"

/* Maps the initial mark stack; max_bytes bounds its growth. False when the kernel refuses. */
ST_HIDDEN bool st__gc_mark_init(size_t max_bytes);
/* Scans [lo, hi) word by word (lo rounded up, hi down to pointer alignment) and marks every
 * object a word points into. Reads memory the compiler may consider uninitialised (stacks). */
ST_HIDDEN void st__gc_mark_range(const void *lo, const void *hi);
/* Marks the object word points into, if any, and queues its contents. */
ST_HIDDEN void st__gc_mark_word(uintptr_t word);
/* Scans until the stack is empty and no overflow is pending. */
ST_HIDDEN void st__gc_mark_drain(void);
/* Overflow recoveries so far (for tests and statistics). */
ST_HIDDEN size_t st__gc_mark_overflows(void);

#endif
