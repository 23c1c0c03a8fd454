/*
 * events.h — the event counters behind the statistics (STYLE.md §9).
 *
 * Owns: one counter per event of ST_STATS_EVENTS (include/strata.h) plus refills per size
 * class. Every thread cache embeds a set that only its thread writes (a relaxed load and
 * store, no read-modify-write); events of threads without a cache of their own (the empty
 * sentinel, exited threads, the orphan cache) go to one process-wide set with atomic adds.
 * Readers merge all sets under the registry lock (core/stats.c); an exited thread's set is
 * folded into the process-wide one, so no event is lost. Only slow paths count.
 */
#ifndef ST_CORE_EVENTS_H
#define ST_CORE_EVENTS_H

#include "base/atomics.h"
#include "base/macros.h"
#include "core/sizeclass.h"
#include "strata.h"

/* 0 compiles the counting out; only the benchmark that measures its cost builds so
 * (bench/observability.sh). */
#ifndef ST_EVENTS_ENABLED
#define ST_EVENTS_ENABLED 1
#endif

typedef enum st_event {
#define ST_EVENT_ENUM(name, help) ST_EVENT_##name,
  ST_STATS_EVENTS(ST_EVENT_ENUM)
#undef ST_EVENT_ENUM
  ST_EVENT_COUNT
} st_event;

typedef struct st_event_counters {
  st_atomic_size xcount[ST_EVENT_COUNT];       /* one writer (its thread) or atomic adds */
  st_atomic_size xclass_refills[ST_NUM_CLASSES]; /* likewise */
} st_event_counters;

ST_HIDDEN extern st_event_counters st__events_shared;

/* Adds to a set only the calling thread writes. */
ST_INLINE void st__events_add_own(st_atomic_size *counter, size_t n) {
  st_store_relaxed(counter, st_load_relaxed(counter) + n);
}

/* Bytes in spans handed out plus huge mappings, and their highest value: the page heap
 * and the huge layer report every change (span-level paths, never per block). */
ST_HIDDEN void st__events_in_use_add(size_t bytes);
ST_HIDDEN void st__events_in_use_sub(size_t bytes);
ST_HIDDEN size_t st__events_peak_in_use(void);

/* Adds `other` into `into` (atomic adds: `into` may be the shared set) and clears it. */
ST_HIDDEN void st__events_fold(st_event_counters *into, st_event_counters *other);

#endif
