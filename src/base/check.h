/*
 * check.h — graded checks (STYLE.md §8).
 *
 * ST_CHECK(cond, fmt, ...): always on; for cheap checks whose failure would otherwise
 *   corrupt memory. Ends in a one-line diagnostic and abort().
 * ST_ASSERT(level, cond): internal invariants, active when ST_DEBUG >= level (1..3).
 *   Disabled assertions still compile their expression so they cannot rot.
 */
#ifndef ST_BASE_CHECK_H
#define ST_BASE_CHECK_H

#include "base/macros.h"
#include "base/report.h"

#ifndef ST_DEBUG
#define ST_DEBUG 0
#endif

#define ST_CHECK(cond, ...)                                                                     \
  do {                                                                                          \
    if (ST_UNLIKELY(!(cond))) st__fatal(__VA_ARGS__);                                           \
  } while (0)

#define ST_ASSERT(level, cond)                                                                  \
  do {                                                                                          \
    if (ST_DEBUG >= (level) && ST_UNLIKELY(!(cond)))                                            \
      st__fatal("internal assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__);           \
  } while (0)

#endif
