/*
 * fork.h — fork() safety of the special allocators (special/ layer).
 *
 * Owns: the pthread_atfork handlers of arenas, pools and slab caches, and the order in
 * which they take the locks. A thread that forks while another holds one of those locks
 * would leave it held for ever in the child, whose next call on that allocator would
 * deadlock. So prepare takes every lock, in one fixed order that the code never inverts:
 *
 *   1. the descriptor registry's lock (handle.c), which also freezes the set of live
 *      descriptors walked next;
 *   2. kind by kind, in rank order (slab caches, then pools: a cache's lock is held while
 *      it takes an internal pool's), the lock of every live descriptor of the kind;
 *   3. each kind's leaf locks (`lock_globals`: its list of threads);
 *   4. the chunk index's lock (taken under a pool's or a cache's lock to map a chunk).
 *
 * The parent releases them in reverse order; so does the child, whose only thread is the
 * one that took them. Then each kind's `child` hook runs, lock by lock as usual: it gives
 * back what the threads that did not survive the fork held (shared pools' per-thread
 * caches, slab caches' magazines and front), so that nothing is lost and no later thread
 * of the child mistakes their state for its own.
 * Calls: special/handle.h, special/chunk.h, base/.
 */
#ifndef ST_SPECIAL_FORK_H
#define ST_SPECIAL_FORK_H

#include <stdint.h>

#include "base/macros.h"

/* One kind of descriptor with locks. */
typedef struct st_special_fork_kind {
  uint64_t magic[2];            /* the magic words of its live descriptors (0: unused) */
  void (*lock)(void *h);        /* takes descriptor h's lock */
  void (*unlock)(void *h);      /* releases it */
  void (*lock_globals)(void);   /* takes the kind's leaf locks */
  void (*unlock_globals)(void); /* releases them */
  void (*child)(void);          /* in the child, every lock released: the dead threads' part */
} st_special_fork_kind;

/* The ranks of the kinds: the order in which prepare takes their locks. */
enum st_special_fork_rank { ST_SPECIAL_FORK_SLAB, ST_SPECIAL_FORK_POOL, ST_SPECIAL_FORK_KINDS };

/* Installs the fork handlers (once per process) and, when kind is not NULL, the kind at
 * rank (*kind must stay valid). Call it before a descriptor of the kind exists, with no
 * lock held: pthread_atfork may allocate. */
ST_HIDDEN void st__special_fork_register(enum st_special_fork_rank rank,
                                         const st_special_fork_kind *kind);

#endif
