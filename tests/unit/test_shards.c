/* Unit tests of the page-heap shards' lazy set-up: a shard's lists are set up when a thread
 * cache is first given it, in index order, so a process that runs fewer threads than it
 * has shards (one per CPU) leaves the rest of the shard table untouched; walks over the
 * shards see exactly those set up. */
#include <stdlib.h>

#include "../check.h"
#include "base/options.h"
#include "core/pageheap.h"
#include "fake_os.h"

enum { SHARDS = 8 };

static bool shard_valid(st_pageheap_t *ph) {
  st__pageheap_lock(ph);
  bool ok = st__pageheap_validate_locked(ph);
  st__pageheap_unlock(ph);
  return ok;
}

static void only_the_first_shard_is_set_up_at_start(void) {
  CHECK_EQ(st__pageheap_shard_count(), 1u);
  st_pageheap_t *first = st__pageheap_of_cpu(0);
  CHECK(first->initialized && first->index == 0 && shard_valid(first));
  /* A thread without a cache takes a shard already set up, whatever its CPU. */
  CHECK(st__pageheap_of_cpu(SHARDS - 1) == first);
  CHECK_EQ(st__pageheap_shard_count(), 1u);
}

static void caches_set_up_shards_in_order_then_wrap(void) {
  st_pageheap_t *given[SHARDS + 1];
  for (unsigned i = 0; i < SHARDS + 1; i++) {
    given[i] = st__pageheap_for_new_cache();
    CHECK_EQ(given[i]->index, i % SHARDS);
    CHECK(given[i]->initialized && shard_valid(given[i]));
    CHECK_EQ(st__pageheap_shard_count(), i + 1 < SHARDS ? i + 1 : (unsigned)SHARDS);
  }
  CHECK(given[SHARDS] == given[0]);
  for (unsigned i = 0; i < SHARDS; i++) CHECK(st__pageheap_of_cpu((int)i) == given[i]);
  /* Every shard set up can be locked for a fork and released again. */
  st__pageheap_lock_all();
  st__pageheap_unlock_all();
  CHECK(shard_valid(given[SHARDS - 1]));
}

int main(void) {
  setenv("STRATA_SHARDS", "8", 1);
  fake_os_install();
  st__options_init();
  st__pageheap_init();
  RUN_CASE(only_the_first_shard_is_set_up_at_start);
  RUN_CASE(caches_set_up_shards_in_order_then_wrap);
  return check_summary();
}
