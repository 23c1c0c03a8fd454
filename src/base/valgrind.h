/*
 * valgrind.h — Valgrind client requests, or nothing.
 *
 * Owns: the one place strata spells Valgrind's client requests. With Debian's valgrind
 * headers present at build time (STRATA_HAVE_VALGRIND) they compile to a few no-op
 * instructions that only Valgrind's CPU gives meaning to: inert, and cheap, outside it.
 * Without the headers every macro is empty and st_running_on_memcheck() is 0.
 */
#ifndef ST_BASE_VALGRIND_H
#define ST_BASE_VALGRIND_H

#if defined(STRATA_HAVE_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
/* Memcheck answers GET_VBITS on a readable word with 1; Valgrind's other tools (callgrind
 * counting the fast paths, for one) answer with the default, 0, and keep the fast paths. */
static inline int st_running_on_memcheck(void) {
  if (!RUNNING_ON_VALGRIND) return 0;
  unsigned long word = 0, vbits = 0;
  return VALGRIND_GET_VBITS(&word, &vbits, sizeof word) == 1;
}
#define ST_VG_MALLOCLIKE(p, size, zeroed) VALGRIND_MALLOCLIKE_BLOCK((p), (size), 0, (zeroed))
#define ST_VG_FREELIKE(p) VALGRIND_FREELIKE_BLOCK((p), 0)
#define ST_VG_DEFINED(p, size) VALGRIND_MAKE_MEM_DEFINED((p), (size))
#define ST_VG_NOACCESS(p, size) VALGRIND_MAKE_MEM_NOACCESS((p), (size))
#define ST_VG_UNDEFINED(p, size) VALGRIND_MAKE_MEM_UNDEFINED((p), (size))
/* Memory strata keeps its own metadata in: memcheck's leak check scans every readable word
 * of the process for pointers to blocks, and a descriptor's `start` is the address of the
 * first block of its span (the only block of a large one), which would make any such block
 * "still reachable" however lost it is. Unaddressable memory is not scanned; strata's own
 * accesses to it are not reported, and memcheck takes what they read as defined. */
#define ST_VG_HIDE_METADATA(p, size)                                                             \
  do {                                                                                            \
    VALGRIND_MAKE_MEM_NOACCESS((p), (size));                                                      \
    VALGRIND_DISABLE_ADDR_ERROR_REPORTING_IN_RANGE((p), (size));                                  \
  } while (0)
#else
static inline int st_running_on_memcheck(void) { return 0; }
#define ST_VG_MALLOCLIKE(p, size, zeroed) ((void)(p), (void)(size), (void)(zeroed))
#define ST_VG_FREELIKE(p) ((void)(p))
#define ST_VG_DEFINED(p, size) ((void)(p), (void)(size))
#define ST_VG_NOACCESS(p, size) ((void)(p), (void)(size))
#define ST_VG_UNDEFINED(p, size) ((void)(p), (void)(size))
#define ST_VG_HIDE_METADATA(p, size) ((void)(p), (void)(size))
#endif

#endif
