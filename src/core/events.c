/*
 * events.c — the process-wide event counters and the fold of a thread's set (see events.h).
 */
#include "core/events.h"

st_event_counters st__events_shared;

static st_atomic_size xin_use_bytes, xpeak_in_use_bytes;

void st__events_in_use_add(size_t bytes) {
  size_t now = st_fetch_add_relaxed(&xin_use_bytes, bytes) + bytes;
  size_t peak = st_load_relaxed(&xpeak_in_use_bytes);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&xpeak_in_use_bytes, &peak, now,
                                                               memory_order_relaxed,
                                                               memory_order_relaxed)) {
  }
}

void st__events_in_use_sub(size_t bytes) { st_counter_sub(&xin_use_bytes, bytes); }

size_t st__events_peak_in_use(void) { return st_load_relaxed(&xpeak_in_use_bytes); }

static void fold_array(st_atomic_size *into, st_atomic_size *from, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t v = st_load_relaxed(&from[i]);
    if (v != 0) st_counter_add(&into[i], v);
    st_store_relaxed(&from[i], 0);
  }
}

void st__events_fold(st_event_counters *into, st_event_counters *other) {
  fold_array(into->xcount, other->xcount, ST_EVENT_COUNT);
  fold_array(into->xclass_refills, other->xclass_refills, ST_NUM_CLASSES);
}
