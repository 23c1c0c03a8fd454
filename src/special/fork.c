/*
 * fork.c — the fork handlers of the special allocators (see fork.h).
 */
#include "special/fork.h"

#include <pthread.h>

#include "base/atomics.h"
#include "special/chunk.h"
#include "special/handle.h"

static _Atomic(const st_special_fork_kind *) xkinds[ST_SPECIAL_FORK_KINDS];

static void fork_visit_lock(void *h, void *arg) {
  ((const st_special_fork_kind *)arg)->lock(h);
}

static void fork_visit_unlock(void *h, void *arg) {
  ((const st_special_fork_kind *)arg)->unlock(h);
}

/* The kinds registered, read once by prepare so that parent and child end what it began
 * even if a kind registers in between (it cannot: registration precedes its descriptors,
 * and prepare holds the registry lock, but the pairs stay exact anyway). */
static const st_special_fork_kind *fork_held[ST_SPECIAL_FORK_KINDS];

static void fork_prepare(void) {
  st__handle_fork_lock();
  for (int r = 0; r < ST_SPECIAL_FORK_KINDS; r++) {
    const st_special_fork_kind *k = st_load_acquire(&xkinds[r]);
    fork_held[r] = k;
    if (k == NULL) continue;
    for (int m = 0; m < 2; m++)
      if (k->magic[m] != 0) st__handle_foreach_locked(k->magic[m], fork_visit_lock, (void *)k);
  }
  for (int r = 0; r < ST_SPECIAL_FORK_KINDS; r++)
    if (fork_held[r] != NULL) fork_held[r]->lock_globals();
  st__chunk_index_fork_lock();
}

/* In the parent, and in the child (its only thread took every lock). */
static void fork_release(void) {
  st__chunk_index_fork_unlock();
  for (int r = ST_SPECIAL_FORK_KINDS - 1; r >= 0; r--)
    if (fork_held[r] != NULL) fork_held[r]->unlock_globals();
  for (int r = ST_SPECIAL_FORK_KINDS - 1; r >= 0; r--) {
    const st_special_fork_kind *k = fork_held[r];
    if (k == NULL) continue;
    for (int m = 1; m >= 0; m--)
      if (k->magic[m] != 0) st__handle_foreach_locked(k->magic[m], fork_visit_unlock, (void *)k);
  }
  st__handle_fork_unlock();
}

static void fork_child(void) {
  fork_release();
  for (int r = 0; r < ST_SPECIAL_FORK_KINDS; r++)
    if (fork_held[r] != NULL) fork_held[r]->child();
}

void st__special_fork_register(enum st_special_fork_rank rank, const st_special_fork_kind *kind) {
  static st_atomic_int xinstalled;
  if (kind != NULL) st_store_release(&xkinds[rank], kind);
  if (st_load_acquire(&xinstalled) == 0 && st_exchange_acq_rel(&xinstalled, 1) == 0)
    pthread_atfork(fork_prepare, fork_release, fork_child);
}
