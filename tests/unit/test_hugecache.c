/* Unit tests of the cache of freed huge mappings (core/hugecache.h): a huge request reuses
 * a freed block's resident pages (mincore), shorter requests give back the tail, longer
 * ones grow the mapping; nothing stays cached once strata maps or faults in new memory;
 * the size limit, st_trim, the purge delay (fake clock), a double free of a cached block,
 * and fork. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../check.h"
#include "base/options.h"
#include "core/hugecache.h"
#include "fake_os.h"
#include "strata.h"

#define MiB ((size_t)1 << 20)
#define PAGE ((size_t)4096)

static size_t cached_bytes(void) {
  st_stats s;
  st_stats_get(&s, sizeof s);
  return s.huge_cached_bytes;
}

static size_t map_calls(void) { return st_load_relaxed(&st__os_counters.xmap_calls); }

/* Pages of [p, p + size) resident now; SIZE_MAX when part of the range is not mapped. */
static size_t resident_pages(const void *p, size_t size) {
  static unsigned char vec[(256 * MiB) / PAGE];
  if (mincore((void *)p, size, vec) != 0) return SIZE_MAX;
  size_t n = 0;
  for (size_t i = 0; i < size / PAGE; i++) n += vec[i] & 1;
  return n;
}

static void write_pages(char *p, size_t size, char tag) {
  for (size_t i = 0; i < size; i += PAGE) p[i] = tag;
}

/* Allocates a block of `size` bytes, writes every page with tag and frees it (into the cache,
 * when it may hold it). */
static void free_written_block(size_t size, char tag) {
  char *p = st_malloc(size);
  REQUIRE(p != NULL);
  write_pages(p, size, tag);
  st_free(p);
}

/* Starts each case from an empty cache and purged page heaps, with the default options. */
static void reset(void) {
  st__option_values[ST_OPTION_PURGE_DELAY_MS] = 250;
  st__option_values[ST_OPTION_HUGE_CACHE_KB] = 65536;
  st_trim(0);
  REQUIRE(cached_bytes() == 0);
}

static void a_freed_block_is_reused_with_its_pages_resident(void) {
  reset();
  free_written_block(24 * MiB, 'a');
  CHECK_EQ(cached_bytes(), 24 * MiB);
  size_t maps = map_calls();
  char *q = st_malloc(24 * MiB);
  REQUIRE(q != NULL);
  CHECK_EQ(map_calls(), maps);                            /* no new mapping ... */
  CHECK_EQ(resident_pages(q, 24 * MiB), 24 * MiB / PAGE); /* ... and no page to fault */
  CHECK_EQ(cached_bytes(), 0);
  CHECK_EQ((uintptr_t)q % ST_OS_HUGE_PAGE_SIZE, 0);
  write_pages(q, 24 * MiB, 'b');
  CHECK_EQ(st_usable_size(q), 24 * MiB);
  st_free(q);
  CHECK_EQ(st_heap_validate(), 0);
}

static void a_shorter_request_gives_back_the_tail(void) {
  reset();
  char *p = st_malloc(40 * MiB);
  REQUIRE(p != NULL);
  write_pages(p, 40 * MiB, 'a');
  st_free(p);
  size_t maps = map_calls(), mapped = st_load_relaxed(&st__os_counters.xmapped);
  char *q = st_malloc(20 * MiB + 100);
  REQUIRE(q != NULL);
  CHECK_EQ(map_calls(), maps);
  CHECK(q == p); /* the cached mapping's start keeps its huge-page boundary */
  size_t kept = 20 * MiB + PAGE;
  CHECK_EQ(resident_pages(q, kept), kept / PAGE);
  CHECK_EQ(resident_pages(q + kept, 40 * MiB - kept), SIZE_MAX); /* the tail is unmapped */
  CHECK_EQ(mapped - st_load_relaxed(&st__os_counters.xmapped), 40 * MiB - kept);
  CHECK_EQ(cached_bytes(), 0);
  st_free(q);
}

static void a_longer_request_grows_a_cached_mapping(void) {
  reset();
  free_written_block(16 * MiB, 'a');
  char *q = st_malloc(40 * MiB);
  REQUIRE(q != NULL);
  CHECK_EQ((uintptr_t)q % ST_OS_HUGE_PAGE_SIZE, 0);
  /* The old pages moved (in place or onto a new mapping), untouched: only the rest faults. */
  CHECK_EQ(resident_pages(q, 16 * MiB), 16 * MiB / PAGE);
  CHECK_EQ(q[16 * MiB - PAGE], 'a');
  CHECK_EQ(cached_bytes(), 0);
  write_pages(q, 40 * MiB, 'b');
  st_free(q);
  /* A mapping that ends past a huge-page boundary keeps the pages up to the boundary: the
   * rest of that 2 MiB faults once, as a huge page. */
  st_trim(0);
  free_written_block(17 * MiB + 100, 'c');
  q = st_malloc(40 * MiB);
  REQUIRE(q != NULL);
  CHECK_EQ(resident_pages(q, 16 * MiB), 16 * MiB / PAGE);
  CHECK_EQ(q[16 * MiB - PAGE], 'c');
  write_pages(q, 40 * MiB, 'd');
  st_free(q);
  CHECK_EQ(st_heap_validate(), 0);
}

static void nothing_stays_cached_beside_new_memory(void) {
  reset();
  /* calloc maps afresh (a cached block is not zero) and releases the cache first. */
  free_written_block(24 * MiB, 'a');
  CHECK_EQ(cached_bytes(), 24 * MiB);
  char *z = st_calloc(1, 24 * MiB);
  REQUIRE(z != NULL);
  CHECK_EQ(cached_bytes(), 0);
  CHECK_EQ(z[0], 0);
  CHECK_EQ(z[12 * MiB], 0);
  st_free(z);
  /* A page-heap span whose pages are not resident (st_trim purged them all). */
  st_trim(0);
  char *p = st_malloc(24 * MiB);
  REQUIRE(p != NULL);
  st_free(p);
  CHECK_EQ(cached_bytes(), 24 * MiB);
  char *large = st_malloc(3 * MiB);
  REQUIRE(large != NULL);
  CHECK_EQ(cached_bytes(), 0);
  st_free(large);
  /* A huge request on a boundary no cached mapping starts on maps afresh. */
  p = st_malloc(24 * MiB);
  REQUIRE(p != NULL);
  st_free(p);
  size_t align = 512 * MiB;
  if ((uintptr_t)p % align != 0) {
    CHECK_EQ(cached_bytes(), 24 * MiB);
    char *a = st_aligned_alloc(align, 16 * MiB);
    REQUIRE(a != NULL);
    CHECK_EQ((uintptr_t)a % align, 0);
    CHECK_EQ(cached_bytes(), 0);
    st_free(a);
  }
}

static void long_blocks_are_unmapped_at_once_and_the_total_is_bounded(void) {
  reset();
  char *p = st_malloc(100 * MiB); /* above STRATA_HUGE_CACHE_KB */
  REQUIRE(p != NULL);
  write_pages(p, 100 * MiB, 'a');
  st_free(p);
  CHECK_EQ(cached_bytes(), 0);
  CHECK_EQ(resident_pages(p, 100 * MiB), SIZE_MAX);
  char *b[3];
  for (int i = 0; i < 3; i++) REQUIRE((b[i] = st_malloc(30 * MiB)) != NULL);
  for (int i = 0; i < 3; i++) st_free(b[i]);
  CHECK_EQ(cached_bytes(), 60 * MiB); /* the oldest left to make room for the last */
  CHECK_EQ(resident_pages(b[0], 30 * MiB), SIZE_MAX);
  CHECK(st__hugecache_holds(b[1]) && st__hugecache_holds(b[2]));
  st_trim(0);
  st__option_values[ST_OPTION_HUGE_CACHE_KB] = 0; /* off */
  p = st_malloc(24 * MiB);
  REQUIRE(p != NULL);
  st_free(p);
  CHECK_EQ(cached_bytes(), 0);
  st__option_values[ST_OPTION_HUGE_CACHE_KB] = 65536;
}

static void trim_releases_the_cache(void) {
  reset();
  char *p = st_malloc(24 * MiB);
  REQUIRE(p != NULL);
  write_pages(p, 24 * MiB, 'a');
  st_free(p);
  CHECK_EQ(cached_bytes(), 24 * MiB);
  CHECK_EQ(st_trim(0), 1);
  CHECK_EQ(cached_bytes(), 0);
  CHECK_EQ(resident_pages(p, 24 * MiB), SIZE_MAX);
}

static void cached_mappings_leave_after_the_purge_delay(void) {
  reset();
  st__option_values[ST_OPTION_PURGE_DELAY_MS] = 100;
  /* A dirty span of 64 KiB, so the probes below take resident pages (which keep the cache). */
  st_free(st_malloc(64 << 10));
  fake.now_ms = 5000;
  char *p = st_malloc(24 * MiB);
  REQUIRE(p != NULL);
  st_free(p);
  CHECK_EQ(cached_bytes(), 24 * MiB);
  fake.now_ms = 5099;
  st_free(st_malloc(64 << 10)); /* a page-heap operation looks at the cache */
  CHECK_EQ(cached_bytes(), 24 * MiB);
  fake.now_ms = 5100;
  st_free(st_malloc(64 << 10));
  CHECK_EQ(cached_bytes(), 0);
  CHECK_EQ(resident_pages(p, 24 * MiB), SIZE_MAX);
  /* A delay of 0 purges at once: nothing is cached. */
  st__option_values[ST_OPTION_PURGE_DELAY_MS] = 0;
  st_free(st_malloc(24 * MiB));
  CHECK_EQ(cached_bytes(), 0);
  st__option_values[ST_OPTION_PURGE_DELAY_MS] = 250;
}

static void free_twice(void *arg) {
  (void)arg;
  void *p = st_malloc(24 * MiB);
  st_free(p);
  if (!st__hugecache_holds(p)) _exit(3); /* not the case under test */
  st_free(p);
}

static void realloc_freed(void *arg) {
  (void)arg;
  void *p = st_malloc(24 * MiB);
  st_free(p);
  void *volatile q = st_realloc(p, 30 * MiB);
  (void)q;
}

static void a_double_free_of_a_cached_block_is_reported(void) {
  reset();
  CHECK(expect_death(free_twice, NULL, "free(): double free of 0x"));
  CHECK(expect_death(free_twice, NULL, "(a freed huge block kept for reuse)"));
  CHECK(expect_death(realloc_freed, NULL, "realloc(): double free of 0x"));
}

/* A thread that frees and allocates huge blocks in turn, while the main thread forks. */
static volatile int churn_stop;
static void *churn(void *arg) {
  (void)arg;
  while (!churn_stop) {
    char *p = st_malloc(12 * MiB);
    if (p != NULL) p[0] = 1;
    st_free(p);
  }
  return NULL;
}

static void the_cache_survives_fork(void) {
  reset();
  free_written_block(24 * MiB, 'a');
  CHECK_EQ(cached_bytes(), 24 * MiB);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) { /* the child inherits the mapping and reuses it */
    size_t maps = map_calls();
    char *q = st_malloc(24 * MiB);
    int ok = q != NULL && map_calls() == maps && resident_pages(q, 24 * MiB) == 24 * MiB / PAGE;
    if (q != NULL) write_pages(q, 24 * MiB, 'c');
    st_free(q);
    ok = ok && cached_bytes() == 24 * MiB && st_trim(0) == 1 && cached_bytes() == 0;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(pid > 0 && waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* The parent's cache is its own: still there, its pages untouched by the child. */
  CHECK_EQ(cached_bytes(), 24 * MiB);
  char *q = st_malloc(24 * MiB);
  REQUIRE(q != NULL);
  CHECK_EQ(q[PAGE], 'a');
  st_free(q);
  /* Forks while another thread uses the cache: every child can use it too. */
  pthread_t t;
  churn_stop = 0;
  REQUIRE(pthread_create(&t, NULL, churn, NULL) == 0);
  for (int i = 0; i < 20; i++) {
    pid = fork();
    if (pid == 0) {
      alarm(10); /* a lock left held across fork would hang here */
      char *r = st_malloc(12 * MiB);
      if (r != NULL) r[0] = 1;
      st_free(r);
      st_trim(0);
      _exit(r != NULL && cached_bytes() == 0 ? 0 : 1);
    }
    REQUIRE(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  churn_stop = 1;
  pthread_join(t, NULL);
}

int main(void) {
  unsetenv("STRATA_HUGE_CACHE_KB");
  unsetenv("STRATA_PURGE_DELAY_MS");
  unsetenv("STRATA_HARDENED");
  st__options_reload();
  fake_os_install();
  st_free(st_malloc(1)); /* initialised: the option values the cases set stay set */
  RUN_CASE(a_freed_block_is_reused_with_its_pages_resident);
  RUN_CASE(a_shorter_request_gives_back_the_tail);
  RUN_CASE(a_longer_request_grows_a_cached_mapping);
  RUN_CASE(nothing_stays_cached_beside_new_memory);
  RUN_CASE(long_blocks_are_unmapped_at_once_and_the_total_is_bounded);
  RUN_CASE(trim_releases_the_cache);
  RUN_CASE(cached_mappings_leave_after_the_purge_delay);
  RUN_CASE(a_double_free_of_a_cached_block_is_reported);
  RUN_CASE(the_cache_survives_fork);
  return check_summary();
}
