/* Unit tests of slab spans: lazy carving, remote frees from many threads, and the
 * park / notify / reclaim hand-over of full spans (page.h). */
#include <pthread.h>

#include "../check.h"
#include "base/options.h"
#include "core/page.h"
#include "core/pageheap.h"
#include "core/tcache.h"

static st_pageheap_t *ph;

static st_span_t *new_slab(unsigned cls, st_span_owner *owner) {
  st__pageheap_lock(ph);
  st_span_t *s = st__pageheap_alloc_locked(ph, st__class_span_pages[cls], ST_PAGE_SIZE, ST_SPAN_SLAB);
  st__pageheap_unlock(ph);
  if (s != NULL) st__page_format(s, cls, owner);
  return s;
}

static void drop_slab(st_span_t *s) {
  st__pageheap_lock(ph);
  st__pageheap_free_locked(ph, s);
  st__pageheap_unlock(ph);
}

static void *pop(st_span_t *s) {
  if (s->free == ST_FREE_LIST_END && st__page_collect(s) == 0 && !st__page_extend(s)) return NULL;
  st_block_t *b = s->free;
  s->free = b->next;
  b->key = 0; /* handed out: no longer marked free (span.h) */
  st__span_add_used(s, 1);
  return b;
}

/* The malloc fast path's one compare of the free mark also stops at the end of the list:
 * a drained span answers NULL instead of handing out the read-only terminator. */
static void the_fast_pop_stops_at_the_end_of_the_list(void) {
  st_span_owner owner = {NULL, 0};
  st_span_t *s = new_slab(1 /* 32 bytes */, &owner);
  REQUIRE(s != NULL);
  CHECK(s->free == ST_FREE_LIST_END);
  st_tcache_t tc = {.current = {[1] = s}};
  CHECK(st__tcache_pop(&tc, 1) == NULL);
  CHECK(st__page_extend(s));
  size_t n = 0;
  for (void *p; (p = st__tcache_pop(&tc, 1)) != NULL; n++) CHECK(st__page_is_block_start(s, p));
  CHECK_EQ(n, ST_PAGE_SIZE / 32);
  CHECK_EQ(st__span_used(s), n);
  CHECK(s->free == ST_FREE_LIST_END);
  CHECK(st__tcache_pop(&tc, 1) == NULL);
  CHECK(st__tcache_pop(&st__tcache_empty, 1) == NULL); /* a new thread's sentinel */
  st__span_set_used(s, 0);
  drop_slab(s);
}

/* A forked child's recount of a dead thread's span, for each place that thread may have
 * stopped between a list change and its count. */
static void a_recount_matches_the_free_list_wherever_the_owner_stopped(void) {
  st_span_owner owner = {NULL, 0};
  st_span_t *s = new_slab(1 /* 32 bytes */, &owner);
  REQUIRE(s != NULL);
  CHECK(st__page_extend(s));
  void *kept = pop(s), *second = pop(s);
  REQUIRE(kept != NULL && second != NULL);
  /* a pop that took the block off the list but did not count it */
  st_block_t *b = s->free;
  s->free = b->next;
  st__page_recount(s);
  CHECK(st__page_validate(s, 0));
  CHECK_EQ(st__span_used(s), 3u); /* kept, second and the half-popped block */
  /* a carve that threaded its batch before advancing `carved` */
  uint32_t carved = s->carved;
  CHECK(st__page_extend(s));
  s->carved = carved;
  st__page_recount(s);
  CHECK(st__page_validate(s, 0));
  CHECK_EQ(s->carved, 2 * carved);
  /* a parked span's count split between `xused` and its bias */
  st_store_relaxed(&s->xused, 1);
  st__page_recount(s);
  CHECK(st__page_validate(s, 0));
  CHECK_EQ(st_load_relaxed(&s->xused_bias), 0u);
  CHECK_EQ(st__span_used(s), 3u);
  st__span_set_used(s, 0);
  drop_slab(s);
}

static void blocks_are_carved_a_page_at_a_time(void) {
  st_span_owner owner = {NULL, 0};
  st_span_t *s = new_slab(1 /* 32 bytes */, &owner);
  REQUIRE(s != NULL);
  CHECK_EQ(s->capacity, st__span_bytes(s) / 32);
  CHECK(st__page_extend(s));
  CHECK_EQ(s->carved, ST_PAGE_SIZE / 32);
  size_t n = 0;
  for (st_block_t *b = s->free; b != ST_FREE_LIST_END; b = b->next) {
    CHECK(st__page_is_block_start(s, b));
    n++;
  }
  CHECK_EQ(n, ST_PAGE_SIZE / 32);
  CHECK(!st__page_is_block_start(s, (char *)s->start + 16));
  while (pop(s) != NULL) {
  }
  CHECK_EQ(st__span_used(s), s->capacity);
  CHECK_EQ(s->carved, s->capacity);
  CHECK(st__page_validate(s, 0));
  drop_slab(s);
}

typedef struct remote_job {
  st_span_t *span;
  void **blocks;
  size_t count;
} remote_job;

static void *free_remotely(void *arg) {
  remote_job *job = arg;
  for (size_t i = 0; i < job->count; i++) st__page_free_mt(job->span, job->blocks[i]);
  return NULL;
}

static void remote_frees_from_many_threads_lose_nothing(void) {
  enum { THREADS = 4 };
  st_span_owner owner = {NULL, 0};
  st_span_t *s = new_slab(0 /* 16 bytes */, &owner);
  REQUIRE(s != NULL);
  size_t cap = s->capacity;
  void **blocks = calloc(cap, sizeof *blocks);
  REQUIRE(blocks != NULL);
  for (size_t i = 0; i < cap; i++) blocks[i] = pop(s);
  CHECK(pop(s) == NULL);
  pthread_t t[THREADS];
  remote_job jobs[THREADS];
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (remote_job){s, blocks + i * (cap / THREADS), cap / THREADS};
    pthread_create(&t[i], NULL, free_remotely, &jobs[i]);
  }
  size_t collected = 0; /* the owner collects while the frees arrive */
  while (collected < cap) collected += st__page_collect(s);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  CHECK_EQ(collected, cap);
  CHECK_EQ(st__span_used(s), 0);
  CHECK(st__page_validate(s, 0));
  free(blocks);
  drop_slab(s);
}

static size_t list_length(const st_block_t *b) {
  size_t n = 0;
  for (; b != ST_FREE_LIST_END; b = b->next) n++;
  return n;
}

/* The owner takes a remote list by the count in the remote word, without walking it: into an
 * empty free list the remote list becomes the free list as it stands, into a non-empty one it
 * is joined in front. Either way every block comes back once, the counts agree and the list
 * ends in the terminator (which the fast pop relies on). */
static void a_collected_remote_list_becomes_or_joins_the_free_list(void) {
  st_span_owner owner = {NULL, 0};
  st_span_t *s = new_slab(2 /* 48 bytes */, &owner);
  REQUIRE(s != NULL);
  st_block_t *out[8];
  for (int i = 0; i < 8; i++) out[i] = pop(s);
  while (s->free != ST_FREE_LIST_END) REQUIRE(pop(s) != NULL); /* the carved page, all out */
  uint32_t used = st__span_used(s);
  CHECK_EQ(st__page_remote_count(st_load_relaxed(&s->xthread_free)), 0);
  for (int i = 0; i < 3; i++) st__page_free_mt(s, out[i]);
  CHECK_EQ(st__page_remote_count(st_load_relaxed(&s->xthread_free)), 3);
  CHECK(st__page_remote_list(st_load_relaxed(&s->xthread_free)) == out[2]);
  CHECK_EQ(st__page_collect(s), 3);
  CHECK(s->free == out[2]); /* taken as it stood */
  CHECK_EQ(list_length(s->free), 3);
  CHECK_EQ(st__span_used(s), used - 3);
  CHECK_EQ(st__page_remote_count(st_load_relaxed(&s->xthread_free)), 0);
  CHECK_EQ(st__page_collect(s), 0);

  CHECK(pop(s) == out[2]); /* two left on the free list; five more arrive remotely */
  for (int i = 3; i < 8; i++) st__page_free_mt(s, out[i]);
  CHECK_EQ(st__page_collect(s), 5);
  CHECK(s->free == out[7]);
  CHECK_EQ(list_length(s->free), 7);
  CHECK_EQ(st__span_used(s), used - 7);
  CHECK(st__page_validate(s, 0));
  st__span_set_used(s, 0);
  drop_slab(s);
}

typedef struct park_job {
  st_span_t *span;
  _Atomic(st_block_t *) block; /* handed over by the owner, NULL once freed */
  atomic_int stop;
} park_job;

static void *free_when_handed(void *arg) {
  park_job *job = arg;
  while (!atomic_load(&job->stop)) {
    st_block_t *b = atomic_exchange(&job->block, NULL);
    if (b == NULL) continue;
    st__page_free_mt(job->span, b);
  }
  return NULL;
}

static void a_remote_free_hands_a_parked_span_back_to_its_owner(void) {
  st_span_owner owner = {NULL, 0};
  st_span_t *s = new_slab(ST_NUM_CLASSES - 1 /* 8 KiB: few blocks */, &owner);
  REQUIRE(s != NULL);
  park_job job = {.span = s};
  pthread_t t;
  pthread_create(&t, NULL, free_when_handed, &job);
  int handed_back = 0;
  for (int round = 0; round < 20000; round++) {
    void *b;
    void *last = NULL;
    while ((b = pop(s)) != NULL) last = b;
    REQUIRE(last != NULL);
    /* The owner parks the exhausted span, then a remote free must bring it back. */
    st__page_wait_not_busy(s);
    if (st__page_take_reclaimed(&owner) != NULL) handed_back++;
    if (!st__page_try_park(s)) continue; /* a free slipped in: it is on the remote list */
    atomic_store(&job.block, (st_block_t *)last);
    st_span_t *back;
    while ((back = st__page_take_reclaimed(&owner)) == NULL) {
    }
    CHECK(back == s);
    CHECK(back->reclaim_next == NULL);
    handed_back++;
    st__page_wait_not_busy(s);
    CHECK_EQ(st_load_relaxed(&s->xthread_free) & ST_REMOTE_TAG_MASK, ST_REMOTE_NORMAL);
    /* Free everything else locally so the next round starts from a full span. */
    CHECK_EQ(st__page_collect(s), 1);
  }
  atomic_store(&job.stop, 1);
  pthread_join(t, NULL);
  CHECK_GE(handed_back, 1);
  CHECK(st__page_validate(s, 0));
  drop_slab(s);
}

static void unparking_stops_the_hand_over(void) {
  st_span_owner owner = {NULL, 0};
  st_span_t *s = new_slab(3, &owner);
  REQUIRE(s != NULL);
  void *b;
  void *last = NULL;
  while ((b = pop(s)) != NULL) last = b;
  CHECK(st__page_try_park(s));
  st__page_unpark(s);
  st__page_free_mt(s, last);
  CHECK(st__page_take_reclaimed(&owner) == NULL);
  CHECK_EQ(st__page_collect(s), 1);
  drop_slab(s);
}

int main(void) {
  st__options_init();
  st__pageheap_init();
  ph = st__pageheap_of_cpu(0);
  RUN_CASE(the_fast_pop_stops_at_the_end_of_the_list);
  RUN_CASE(a_recount_matches_the_free_list_wherever_the_owner_stopped);
  RUN_CASE(blocks_are_carved_a_page_at_a_time);
  RUN_CASE(remote_frees_from_many_threads_lose_nothing);
  RUN_CASE(a_collected_remote_list_becomes_or_joins_the_free_list);
  RUN_CASE(a_remote_free_hands_a_parked_span_back_to_its_owner);
  RUN_CASE(unparking_stops_the_hand_over);
  return check_summary();
}
