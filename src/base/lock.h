/*
 * lock.h — the mutex strata takes where memory is mapped or returned.
 *
 * Owns: a thin wrapper over pthread_mutex (futex based, never allocates, usable before
 * main). Functions that require a lock held end in `_locked` (STYLE.md §14). Locks are
 * re-initialised in a forked child (see thread.c), never "unlocked" by a thread that
 * did not take them.
 */
#ifndef ST_BASE_LOCK_H
#define ST_BASE_LOCK_H

#include <pthread.h>
#include <stdbool.h>

#include "base/macros.h"

typedef struct st_lock {
  pthread_mutex_t mutex;
} st_lock_t;

#define ST_LOCK_INIT {PTHREAD_MUTEX_INITIALIZER}

ST_INLINE void st_lock_init(st_lock_t *l) { pthread_mutex_init(&l->mutex, NULL); }
ST_INLINE void st_lock_acquire(st_lock_t *l) { pthread_mutex_lock(&l->mutex); }
ST_INLINE void st_lock_release(st_lock_t *l) { pthread_mutex_unlock(&l->mutex); }
/* Acquires the lock if no one holds it; false, without waiting, if someone does. */
ST_INLINE bool st_lock_try_acquire(st_lock_t *l) { return pthread_mutex_trylock(&l->mutex) == 0; }

#endif
