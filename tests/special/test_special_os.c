/*
 * test_special_os.c — the special allocators against fake os ops (tests/unit/fake_os.h):
 * when the kernel refuses memory, NULL with errno = ENOMEM and the allocator still
 * consistent and usable once memory comes back; and the pool's delayed release of empty
 * chunks, driven by the fake clock.
 */
#include <errno.h>

#include "fake_os.h"
#include "special_test.h"
#include "strata.h"

static void arena_oom(void) {
  st_arena_t *a = st_arena_create(&(st_arena_options){.chunk_size = 4096});
  REQUIRE(a != NULL);
  void *first = st_arena_alloc(a, 100);
  REQUIRE(first != NULL);
  fake_fail_maps_after(0);
  errno = 0;
  CHECK(st_arena_alloc(a, 8192) == NULL && errno == ENOMEM); /* needs a chunk */
  CHECK(st_arena_alloc(a, 100) != NULL);                     /* fits the current one */
  errno = 0;
  CHECK(st_arena_alloc(a, 1 << 20) == NULL && errno == ENOMEM); /* oversized */
  fake_maps_never_fail();
  st_arena_stats s;
  st_arena_stats_get(a, &s);
  CHECK_EQ(s.chunks, 1);
  CHECK(st_arena_alloc(a, 8192) != NULL);
  CHECK(st_arena_alloc(a, 1 << 20) != NULL);
  st_arena_destroy(a);
}

static void pool_oom(void) {
  st_pool_t *p = st_pool_create(1000, 0, 0);
  REQUIRE(p != NULL);
  fake_fail_maps_after(0);
  errno = 0;
  CHECK(st_pool_alloc(p) == NULL && errno == ENOMEM); /* the first chunk */
  fake_maps_never_fail();
  enum { N = 200 }; /* about 3 chunks of 64 objects */
  static void *objs[N];
  size_t n = 0;
  while (n < 100) REQUIRE((objs[n++] = st_pool_alloc(p)) != NULL);
  fake_fail_maps_after(0);
  size_t refused = 0;
  while (n < N) {
    errno = 0;
    void *o = st_pool_alloc(p);
    if (o == NULL) {
      refused += errno == ENOMEM;
      break;
    }
    objs[n++] = o;
  }
  CHECK_EQ(refused, 1);
  fake_maps_never_fail();
  while (n < N) REQUIRE((objs[n++] = st_pool_alloc(p)) != NULL);
  for (size_t i = 0; i < N; i++) st_pool_free(p, objs[i]);
  st_pool_stats s;
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.live_objects, 0);
  st_pool_destroy(p);
}

static long ctor_calls;
static void count_ctor(void *obj) {
  (void)obj;
  ctor_calls++;
}

static void slab_oom(void) {
  st_slab_cache_t *c = st_slab_create("oom", 64, 0, count_ctor, NULL);
  REQUIRE(c != NULL);
  fake_fail_maps_after(0);
  errno = 0;
  CHECK(st_slab_alloc(c) == NULL && errno == ENOMEM);
  CHECK_EQ(ctor_calls, 0);
  fake_maps_never_fail();
  void *o = st_slab_alloc(c);
  CHECK(o != NULL);
  CHECK_EQ(ctor_calls, 1);
  st_slab_free(c, o);
  st_slab_destroy(c);
}

/* Creating a handle may need a new block of descriptors: refused, it reports ENOMEM. */
static void handles_oom(void) {
  enum { MANY = 300 }; /* more than one 64 KiB block of 512-byte descriptors */
  static st_pool_t *pools[MANY];
  fake_fail_maps_after(0);
  size_t made = 0, refused = 0;
  for (size_t i = 0; i < MANY; i++) {
    errno = 0;
    pools[i] = st_pool_create(16, 0, 0);
    if (pools[i] != NULL) made++;
    else refused += errno == ENOMEM;
  }
  fake_maps_never_fail();
  CHECK_EQ(made + refused, MANY);
  CHECK_GT(refused, 0);
  for (size_t i = 0; i < MANY; i++) st_pool_destroy(pools[i]);
  st_pool_t *p = st_pool_create(16, 0, 0);
  CHECK(p != NULL);
  st_pool_destroy(p);
}

/* Empty chunks stay for the purge delay (250 ms by default), then go back, but one; the
 * sweeps that give them back run when a chunk empties, at most once per half delay. */
static void pool_release_after_delay(void) {
  st_pool_t *p = st_pool_create(4000, 0, 0); /* 16 objects per 64 KiB chunk */
  REQUIRE(p != NULL);
  enum { N = 160 };
  static void *objs[N];
  for (size_t i = 0; i < N; i++) REQUIRE((objs[i] = st_pool_alloc(p)) != NULL);
  st_pool_stats s;
  st_pool_stats_get(p, &s);
  size_t grown = s.chunks;
  CHECK_GE(grown, 10);
  for (size_t i = 0; i < N / 2; i++) st_pool_free(p, objs[i]);
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, grown); /* no time has passed: all kept */
  CHECK_GE(s.chunks_empty, 4);
  long maps = fake.maps;
  for (size_t i = 0; i < N / 2; i++) REQUIRE((objs[i] = st_pool_alloc(p)) != NULL);
  CHECK_EQ(fake.maps, maps); /* refilled from the empty chunks */
  for (size_t i = 0; i < N / 2; i++) st_pool_free(p, objs[i]);
  /* Chunk k holds objs[16k .. 16k+15] from the first fill; chunks 6 and 7 are not
   * current, and nor is any empty one (the current chunk is the last, still full). */
  st_pool_stats_get(p, &s);
  size_t empty_before = s.chunks_empty;
  fake.now_ms += 249;
  for (size_t i = 96; i < 112; i++) st_pool_free(p, objs[i]);
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, grown); /* nothing is 250 ms old yet */
  CHECK_EQ(s.chunks_empty, empty_before + 1);
  fake.now_ms += 125; /* the next sweep may run */
  for (size_t i = 112; i < 128; i++) st_pool_free(p, objs[i]);
  st_pool_stats_get(p, &s);
  /* Those empty since t0 went back; the two that emptied late stay, and so may one whose
   * emptying was timed only by this sweep (the first to empty after a sweep is not timed
   * at once: one empty chunk alone is always kept). */
  CHECK_GE(s.chunks_released, empty_before - 1);
  CHECK_LE(s.chunks_empty, 3);
  CHECK_EQ(s.chunks_empty + s.chunks_released, empty_before + 2);
  CHECK_EQ(s.chunks + s.chunks_released, grown);
  fake.now_ms += 1000;
  for (size_t i = 80; i < 96; i++) st_pool_free(p, objs[i]);
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks_empty, 1); /* all expired but the newest, which is kept */
  for (size_t i = 128; i < N; i++) st_pool_free(p, objs[i]);
  st_pool_destroy(p);
}

int main(void) {
  fake_os_install();
  RUN_CASE(arena_oom);
  RUN_CASE(pool_oom);
  RUN_CASE(slab_oom);
  RUN_CASE(handles_oom);
  RUN_CASE(pool_release_after_delay);
  return check_summary();
}
