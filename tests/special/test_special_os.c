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

/* Frees 1024 times (one object allocated and freed), which runs exactly one release check:
 * the pool checks every 1024 frees (every 4 times as many frees as it has free slots and
 * chunks, when that is more: 4 * (160 + 10) = 680 at most here). */
static void pulse(st_pool_t *p) {
  for (int i = 0; i < 1024; i++) st_pool_free(p, st_pool_alloc(p));
}

/* Empty chunks go back once found empty by two checks STRATA_PURGE_DELAY_MS (250 ms by
 * default) apart; one is kept. */
static void pool_release_after_delay(void) {
  st_pool_t *p = st_pool_create(4000, 0, 0); /* 16 objects per 64 KiB chunk */
  REQUIRE(p != NULL);
  enum { N = 160 };
  static void *objs[N];
  for (size_t i = 0; i < N; i++) REQUIRE((objs[i] = st_pool_alloc(p)) != NULL);
  st_pool_stats s;
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, N / 16);
  for (size_t i = 0; i < N; i++) st_pool_free(p, objs[i]);
  pulse(p); /* t = 1000: every chunk is found empty and timed */
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, N / 16);
  CHECK_EQ(s.chunks_empty, N / 16);
  for (size_t i = 0; i < 48; i++) REQUIRE((objs[i] = st_pool_alloc(p)) != NULL); /* 3 chunks */
  fake.now_ms += 249;
  pulse(p); /* nothing is 250 ms old; the chunks in use forget their time */
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, N / 16);
  CHECK_EQ(s.chunks_released, 0);
  for (size_t i = 0; i < 48; i++) st_pool_free(p, objs[i]);
  fake.now_ms += 1;
  pulse(p); /* 250 ms: the chunks empty since t = 1000 go; the 3 in use in between stay */
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, 3);
  CHECK_EQ(s.chunks_released, N / 16 - 3);
  CHECK_EQ(s.live_objects, 0);
  fake.now_ms += 250;
  pulse(p); /* then those three, but the current chunk (the last one mapped, now empty) */
  st_pool_stats_get(p, &s);
  CHECK_EQ(s.chunks, 1);
  CHECK_EQ(s.chunks_empty, 1);
  long maps = fake.maps;
  for (size_t i = 0; i < 16; i++) REQUIRE((objs[i] = st_pool_alloc(p)) != NULL);
  CHECK_EQ(fake.maps, maps); /* the kept chunk serves a refill */
  for (size_t i = 0; i < 16; i++) st_pool_free(p, objs[i]);
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
