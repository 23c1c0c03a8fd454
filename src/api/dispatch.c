/*
 * dispatch.c — the process's strategy, decided once (see dispatch.h), and the public
 * functions that name strategies.
 *
 * The decision runs inside the first allocation, possibly the dynamic loader's: it reads
 * STRATA_STRATEGY from the option table (base/options.h: getenv, no allocation) and compares
 * bytes. The process heap is static, so a classic strategy needs no memory to start either.
 *
 * Fork: a thread may fork while another is deciding, so the decision's lock and the process
 * heap's lock are taken around every fork (prepare) and re-initialised in the child. The
 * handlers are registered by a constructor, before the program's threads exist, and again
 * (once) after the first decision in case an allocation came first: pthread_atfork may call
 * malloc, so it is never called with a strata lock held.
 * Lock order: decide_lock, then the process heap's lock (classic/heap.h: the registry of
 * st_heap_new heaps and their locks are independent of both).
 */
#include "api/dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "base/lock.h"
#include "base/options.h"
#include "base/report.h"
#include "core/thread.h"
#include "classic/picture.h"

st_atomic_int st__dispatch_xmode;

static st_lock_t decide_lock = ST_LOCK_INIT;
static st_strategy process_strategy;   /* const once decided */
static st_classic_heap_t process_heap; /* serves the process when the mode is CLASSIC */

static const char *const strategy_names[ST_STRATEGY_COUNT] = {
    "default", "first-fit", "next-fit", "best-fit", "worst-fit", "segregated", "buddy", "bitmap"};

const char *st_strategy_name(st_strategy strategy) {
  return (unsigned)strategy < ST_STRATEGY_COUNT ? strategy_names[strategy] : NULL;
}

static bool same_text(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

int st_strategy_from_name(const char *name, st_strategy *out) {
  for (int s = 0; name != NULL && s < ST_STRATEGY_COUNT; s++) {
    if (same_text(name, strategy_names[s])) {
      *out = (st_strategy)s;
      return 0;
    }
  }
  return EINVAL;
}

static st_strategy strategy_from_options(void) {
  const char *text = st_option_string(ST_STRING_OPTION_STRATEGY);
  st_strategy s = ST_STRATEGY_DEFAULT;
  if (text == NULL || st_strategy_from_name(text, &s) == 0) return s;
  st__report("warning: STRATA_STRATEGY=\"%s\" is not a strategy (valid: default first-fit "
             "next-fit best-fit worst-fit segregated buddy bitmap); using the default (default)",
             text);
  return ST_STRATEGY_DEFAULT;
}

static void fork_handlers_once(void);

static int decide(void) {
  static int decided = ST_DISPATCH_UNDECIDED; /* decide_lock */
  st_lock_acquire(&decide_lock);
  if (decided == ST_DISPATCH_UNDECIDED) {
    st__options_init();
    process_strategy = strategy_from_options();
    decided = ST_DISPATCH_CORE;
    if (process_strategy != ST_STRATEGY_DEFAULT) {
      st__classic_init(&process_heap, process_strategy, 0, "strata");
      decided = ST_DISPATCH_CLASSIC;
      /* Under decide_lock, which fork_prepare holds while it decides whether to take the
       * process heap's lock too. */
      st_store_release(&st__dispatch_xmode, ST_DISPATCH_CLASSIC);
    }
  }
  int mode = decided;
  st_lock_release(&decide_lock);
  fork_handlers_once();
  /* A thread that reads CORE routes every slow-path call by the core's debug flags
   * (STRATA_HARDENED, STRATA_LEAKS, memcheck: debug.h), so the core starts before CORE is
   * published: a block handed out by the plain route while another thread was still starting
   * the core would lack its hardened canary and size word, and its first check would report
   * an overflow. Outside decide_lock: the core's fork handler takes its init lock, and ours
   * decide_lock, in an order this thread must not depend on. */
  if (mode == ST_DISPATCH_CORE) {
    st__core_ensure_init();
    st_store_release(&st__dispatch_xmode, ST_DISPATCH_CORE);
  }
  return mode;
}

/* ---- fork ------------------------------------------------------------------------------ */

static void fork_prepare(void) {
  st_lock_acquire(&decide_lock);
  if (st_load_relaxed(&st__dispatch_xmode) == ST_DISPATCH_CLASSIC)
    st_lock_acquire(&process_heap.lock);
}

static void fork_parent(void) {
  if (st_load_relaxed(&st__dispatch_xmode) == ST_DISPATCH_CLASSIC)
    st_lock_release(&process_heap.lock);
  st_lock_release(&decide_lock);
}

static void fork_handlers_once(void) {
  static st_atomic_int xregistered;
  if (st_load_acquire(&xregistered) == 0 && st_exchange_acq_rel(&xregistered, 1) == 0)
    /* The child's only thread took the locks: it releases them as the parent does
     * (re-initialising a held mutex is what ThreadSanitizer reports as a double lock). */
    pthread_atfork(fork_prepare, fork_parent, fork_parent);
}

__attribute__((constructor)) static void dispatch_register_fork_handlers(void) {
  fork_handlers_once();
}

st_classic_heap_t *st__dispatch_classic_slow(void) {
  int mode = st_load_acquire(&st__dispatch_xmode);
  if (mode == ST_DISPATCH_UNDECIDED) mode = decide();
  return mode == ST_DISPATCH_CLASSIC ? &process_heap : NULL;
}

st_strategy st_strategy_current(void) {
  st__dispatch_classic();
  return process_strategy;
}

/* STRATA_VERBOSE under a classic strategy: one line at exit that says what it served (the
 * core prints its own line). */
__attribute__((destructor)) static void classic_report_at_exit(void) {
  if (st_load_acquire(&st__dispatch_xmode) != ST_DISPATCH_CLASSIC ||
      st_option(ST_OPTION_VERBOSE) < 1)
    return;
  st_heap_stats s;
  st__classic_stats(&process_heap, &s);
  st__report("exit pid=%d strategy=%s allocations=%zu live=%zu peak_mapped=%zu", (int)getpid(),
             st_strategy_name(process_strategy), s.allocations, s.live_bytes, s.peak_mapped_bytes);
}

/* The picture of whichever heap serves the process. */
int st_heap_dump(FILE *file, st_dump_format format) {
  st_classic_heap_t *h = st__dispatch_classic();
  return h != NULL ? st__classic_dump(h, file, format) : st__debug_heap_dump(file, format);
}

bool st__dispatch_foreign(const void *p) {
  st_classic_heap_t *h = st__dispatch_classic();
  return h != NULL && !st__classic_owns(h, p);
}

void st__dispatch_process_stats(st_heap_stats *out) {
  if (st__dispatch_classic() != NULL)
    st__classic_stats(&process_heap, out);
  else
    *out = (st_heap_stats){.strategy = ST_STRATEGY_DEFAULT};
}
