/* Unit tests of the page heap: best fit, reuse of resident memory first, coalescing,
 * alignment, in-place resizing, purge timing with a fake clock, and out-of-memory with a
 * failing fake map. */
#include "../check.h"
#include "base/options.h"
#include "core/pageheap.h"
#include "core/pagemap.h"
#include "fake_os.h"

static st_pageheap_t *ph;

static st_span_t *alloc_span(size_t pages, size_t align, st_span_kind kind) {
  st__pageheap_lock(ph);
  st_span_t *s = st__pageheap_alloc_locked(ph, pages, align, kind);
  st__pageheap_unlock(ph);
  return s;
}

static void free_span(st_span_t *s) {
  st__pageheap_lock(ph);
  st__pageheap_free_locked(ph, s);
  st__pageheap_unlock(ph);
}

/* Purges every free span of the page heap under its lock. */
static void purge_everything(void) {
  st__pageheap_lock(ph);
  st__pageheap_purge_locked(ph, true);
  st__pageheap_unlock(ph);
}

static bool heap_valid(void) {
  st__pageheap_lock(ph);
  bool ok = st__pageheap_validate_locked(ph);
  st__pageheap_unlock(ph);
  return ok;
}

static size_t free_span_count(void) {
  size_t n = 0;
  st_list_t *pos, *tmp;
  for (size_t i = 0; i < ST_FREE_EXACT_PAGES; i++)
    st_list_for_each_safe(pos, tmp, &ph->free_exact[i]) n++;
  st_list_for_each_safe(pos, tmp, &ph->free_large) n++;
  return n;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void freeing_everything_coalesces_back_to_whole_regions(void) {
  enum { N = 400 };
  st_span_t *spans[N];
  for (int i = 0; i < N; i++) {
    size_t pages = 1 + next_random() % (i % 10 == 0 ? 600 : 40);
    spans[i] = alloc_span(pages, ST_PAGE_SIZE, i % 2 ? ST_SPAN_SLAB : ST_SPAN_LARGE);
    REQUIRE(spans[i] != NULL);
    CHECK_EQ(spans[i]->pages, pages);
    CHECK(st__pagemap_lookup((void *)spans[i]->start) == spans[i]);
  }
  CHECK(heap_valid());
  for (int i = N - 1; i > 0; i--) { /* free in a random order */
    int j = (int)(next_random() % (uint64_t)(i + 1));
    st_span_t *t = spans[i];
    spans[i] = spans[j];
    spans[j] = t;
  }
  for (int i = 0; i < N; i++) {
    free_span(spans[i]);
    if (i % 50 == 0) CHECK(heap_valid());
  }
  CHECK(heap_valid());
  CHECK_EQ(st__pages_to_bytes(ph->free_pages), ph->reserved_bytes);
  /* Dirty and clean spans merge only among themselves; once everything is purged, regions
   * may be adjacent and then merge, so at most one free span per region. */
  purge_everything();
  CHECK(heap_valid());
  CHECK_LE(free_span_count(), ph->reserved_bytes / ST_REGION_BYTES);
}

/* A recently freed (resident) span is reused before a clean one, even a better fitting
 * one: taking the clean span would fault in new pages while the dirty ones stay resident. */
static void resident_memory_is_reused_first(void) {
  purge_everything();
  st_span_t *fence0 = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *clean = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *fence1 = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *dirty = alloc_span(16, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *fence2 = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(fence0 != NULL && clean != NULL && fence1 != NULL && dirty != NULL && fence2 != NULL);
  uintptr_t clean_start = clean->start, dirty_start = dirty->start;
  free_span(clean);
  purge_everything();
  free_span(dirty);
  st_span_t *s = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(s != NULL);
  CHECK_EQ(s->start, dirty_start);
  CHECK(!s->zeroed);
  st_span_t *t = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE); /* the dirty rest, then clean */
  st_span_t *u = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(t != NULL && u != NULL);
  CHECK_EQ(t->start, dirty_start + st__pages_to_bytes(8));
  CHECK_EQ(u->start, clean_start);
  CHECK(u->zeroed);
  st_span_t *all[] = {fence0, fence1, fence2, s, t, u};
  for (size_t i = 0; i < ST_ARRAY_LEN(all); i++) free_span(all[i]);
  CHECK(heap_valid());
}

static void slab_spans_map_every_page_and_large_spans_the_first(void) {
  st_span_t *slab = alloc_span(16, ST_PAGE_SIZE, ST_SPAN_SLAB);
  st_span_t *large = alloc_span(16, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(slab != NULL && large != NULL);
  for (size_t i = 0; i < 16; i++) {
    CHECK(st__pagemap_lookup((char *)slab->start + st__pages_to_bytes(i) + 100) == slab);
    if (i > 0) CHECK(st__pagemap_lookup((char *)large->start + st__pages_to_bytes(i)) == NULL);
  }
  CHECK(st__pagemap_lookup((void *)large->start) == large);
  uintptr_t slab_start = slab->start;
  free_span(slab);
  free_span(large);
  CHECK(st__pagemap_lookup((void *)(slab_start + st__pages_to_bytes(5))) == NULL);
  CHECK(heap_valid());
}

static void aligned_spans_start_on_their_alignment(void) {
  static const size_t aligns[] = {ST_PAGE_SIZE, 65536, 1 << 20, 2 << 20, 8 << 20};
  st_span_t *spans[ST_ARRAY_LEN(aligns)];
  for (size_t i = 0; i < ST_ARRAY_LEN(aligns); i++) {
    spans[i] = alloc_span(3 + i, aligns[i], ST_SPAN_LARGE);
    REQUIRE(spans[i] != NULL);
    CHECK_ALIGNED(spans[i]->start, aligns[i]);
    CHECK_EQ(spans[i]->pages, 3 + i);
  }
  CHECK(heap_valid());
  for (size_t i = 0; i < ST_ARRAY_LEN(aligns); i++) free_span(spans[i]);
  CHECK(heap_valid());
}

static void large_spans_shrink_and_grow_in_place(void) {
  st_span_t *s = alloc_span(64, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(s != NULL);
  uintptr_t start = s->start;
  st__pageheap_lock(ph);
  st__pageheap_shrink_locked(ph, s, 10);
  CHECK_EQ(s->pages, 10);
  CHECK(st__pageheap_grow_locked(ph, s, 100));
  CHECK_EQ(s->pages, 100);
  CHECK_EQ(s->start, start);
  CHECK(st__pageheap_validate_locked(ph));
  st__pageheap_unlock(ph);
  /* A used right neighbour blocks growth. */
  st_span_t *fence = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(fence != NULL);
  st__pageheap_lock(ph);
  bool grew = fence->start == st__span_end(s) ? st__pageheap_grow_locked(ph, s, 200) : false;
  st__pageheap_unlock(ph);
  CHECK(!grew || fence->start != st__span_end(s));
  free_span(s);
  free_span(fence);
  CHECK(heap_valid());
}

/* Lets the fake clock run until the recent peak of memory in use has decayed away. */
static void forget_peak(void) {
  for (int i = 0; i < 40; i++) {
    fake.now_ms += 2000;
    st_span_t *s = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
    if (s != NULL) free_span(s);
  }
}

static void free_spans_are_purged_after_the_delay(void) {
  st__option_values[ST_OPTION_PURGE_DELAY_MS] = 100;
  purge_everything(); /* start clean */
  long purges = fake.purges;
  fake.now_ms = 5000;
  st_span_t *s = alloc_span(32, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(s != NULL);
  free_span(s); /* dirty at 5000 */
  CHECK_GE(ph->dirty_pages, 32);
  /* Not yet due: nothing is purged before the delay has passed. */
  fake.now_ms = 5099;
  st__pageheap_lock(ph);
  CHECK_EQ(st__pageheap_purge_locked(ph, false), 0);
  st__pageheap_unlock(ph);
  CHECK_EQ(fake.purges, purges);
  /* Due, but the heap was that large a moment ago and may grow back: kept. */
  fake.now_ms = 5101;
  st_span_t *t = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  CHECK_EQ(fake.purges, purges);
  CHECK_GE(ph->dirty_pages, 31); /* t was cut from the resident span */
  if (t != NULL) free_span(t);
  /* Once the recent peak has decayed, the next heap operation purges, without anyone
   * asking: everything but the 1-page spans freed younger than the delay. */
  forget_peak();
  CHECK_LT(purges, fake.purges);
  CHECK_LT(ph->dirty_pages, 32);
  /* The span freed at 5101 is younger than the delay; trim-style purging takes it too. */
  st__pageheap_lock(ph);
  st__pageheap_purge_locked(ph, true);
  CHECK_EQ(ph->dirty_pages, 0);
  CHECK(st__pageheap_validate_locked(ph));
  st__pageheap_unlock(ph);
}

static void a_collapse_purges_dirty_memory_at_once(void) {
  st__option_values[ST_OPTION_PURGE_DELAY_MS] = 1000000; /* the delay never passes here */
  st__option_values[ST_OPTION_PURGE_RETAIN_KB] = 1024;
  forget_peak();
  enum { N = 96 };
  st_span_t *spans[N];
  for (int i = 0; i < N; i++) {
    spans[i] = alloc_span(256, ST_PAGE_SIZE, ST_SPAN_SLAB); /* 1 MiB each, 96 MiB in all */
    REQUIRE(spans[i] != NULL);
  }
  for (int i = 0; i < N; i++) free_span(spans[i]);
  /* Everything was freed: at most the 1 MiB retained stays dirty. */
  CHECK_LE(ph->dirty_pages, 256);
  CHECK(heap_valid());
}

static void alloc_free_cycles_keep_their_dirty_memory(void) {
  st__option_values[ST_OPTION_PURGE_DELAY_MS] = 1000000;
  st__option_values[ST_OPTION_PURGE_RETAIN_KB] = 1024;
  forget_peak();
  purge_everything();
  long purges = fake.purges;
  enum { N = 16 };
  st_span_t *spans[N];
  for (int round = 0; round < 3; round++) { /* 16 MiB allocated and freed, three times */
    for (int i = 0; i < N; i++) {
      spans[i] = alloc_span(256, ST_PAGE_SIZE, ST_SPAN_SLAB);
      REQUIRE(spans[i] != NULL);
    }
    for (int i = 0; i < N; i++) free_span(spans[i]);
  }
  CHECK_EQ(fake.purges, purges);
  CHECK_GE(ph->dirty_pages, N * 256);
  CHECK(heap_valid());
}

static void a_refused_purge_keeps_the_span_dirty(void) {
  st_span_t *s = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(s != NULL);
  free_span(s);
  size_t dirty = ph->dirty_pages;
  CHECK_GE(dirty, 8);
  fake.purge_fails = true;
  st__pageheap_lock(ph);
  CHECK_EQ(st__pageheap_purge_locked(ph, true), 0);
  CHECK_EQ(ph->dirty_pages, dirty);
  CHECK(st__pageheap_validate_locked(ph));
  fake.purge_fails = false;
  CHECK_GE(st__pageheap_purge_locked(ph, true), 8 * ST_PAGE_SIZE);
  CHECK_EQ(ph->dirty_pages, 0);
  st__pageheap_unlock(ph);
  /* Memory known to be purged reads as zero, so calloc may skip clearing it. */
  s = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(s != NULL);
  CHECK(s->zeroed);
  free_span(s);
}

static void a_refused_map_gives_null_and_a_consistent_heap(void) {
  size_t reserved = ph->reserved_bytes;
  fake_fail_maps_after(0);
  /* Longer than any free span: the heap must map a region, and the kernel refuses. */
  st_span_t *s = alloc_span(st__bytes_to_pages(ST_REGION_BYTES) * 2, ST_PAGE_SIZE, ST_SPAN_LARGE);
  CHECK(s == NULL);
  CHECK_GE(fake.failed_maps, 1);
  CHECK_EQ(ph->reserved_bytes, reserved);
  CHECK(heap_valid());
  /* Small requests are still served from memory already mapped. */
  st_span_t *small = alloc_span(4, ST_PAGE_SIZE, ST_SPAN_SLAB);
  CHECK(small != NULL);
  if (small != NULL) free_span(small);
  fake_maps_never_fail();
  s = alloc_span(st__bytes_to_pages(ST_REGION_BYTES) * 2, ST_PAGE_SIZE, ST_SPAN_LARGE);
  CHECK(s != NULL);
  if (s != NULL) free_span(s);
  CHECK(heap_valid());
}

/* Writes the span's last page: a fault (the test dies) if its guard was left in place. */
static void touch_last_page(const st_span_t *s) {
  volatile char *last = (char *)st__span_end(s) - 1;
  *last = 1;
}

/* Hardened mode's guard pages: a freed span keeps its guard, the next span of its length
 * gets it back without a system call, a shorter one is carved from its front while the
 * rest keeps the guard, a free span below merges into a guarded one (the guard stays the
 * last page) but none above it until st_trim's purge lifts the guards. */
static void guard_pages_outlive_their_spans(void) {
  purge_everything();
  st_span_t *fence0 = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *slab = alloc_span(16, ST_PAGE_SIZE, ST_SPAN_SLAB);
  st_span_t *fence1 = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(fence0 != NULL && slab != NULL && fence1 != NULL);
  REQUIRE(st__pageheap_guard(slab, true));
  CHECK(slab->guarded);
  CHECK(st__pageheap_guard(slab, true)); /* already set: nothing to do */
  uintptr_t start = slab->start;
  free_span(slab);
  CHECK(heap_valid());
  st_span_t *again = alloc_span(16, ST_PAGE_SIZE, ST_SPAN_SLAB); /* same length: guard kept */
  REQUIRE(again != NULL);
  CHECK_EQ(again->start, start);
  CHECK(again->guarded);
  free_span(again);
  st_span_t *large = alloc_span(16, ST_PAGE_SIZE, ST_SPAN_LARGE); /* LARGE keeps it too */
  REQUIRE(large != NULL);
  CHECK_EQ(large->start, start);
  CHECK(large->guarded);
  REQUIRE(st__pageheap_guard(large, false));
  touch_last_page(large);
  REQUIRE(st__pageheap_guard(large, true));
  free_span(large);
  st_span_t *part = alloc_span(12, ST_PAGE_SIZE, ST_SPAN_LARGE); /* shorter: from the front */
  REQUIRE(part != NULL);
  CHECK_EQ(part->start, start);
  CHECK(!part->guarded);
  touch_last_page(part);
  st_span_t *rest = alloc_span(4, ST_PAGE_SIZE, ST_SPAN_LARGE); /* the rest, guard and all */
  REQUIRE(rest != NULL);
  CHECK_EQ(rest->start, start + st__pages_to_bytes(12));
  CHECK(rest->guarded);
  REQUIRE(st__pageheap_guard(rest, false));
  touch_last_page(rest); /* the guard page, lifted */
  REQUIRE(st__pageheap_guard(rest, true));
  free_span(part); /* below the guarded rest: they merge, the guard ending the span */
  free_span(rest);
  st_span_t *mine = st__pagemap_lookup((void *)start);
  REQUIRE(mine != NULL);
  CHECK(mine->guarded && mine->start == start && mine->pages == 16);
  CHECK(heap_valid());
  /* A free span below joins it; none above it does, until st_trim's purge. */
  free_span(fence0);
  free_span(fence1);
  mine = st__pagemap_lookup((void *)(start + st__pages_to_bytes(15))); /* its last page */
  st_span_t *right = st__pagemap_lookup((void *)(start + st__pages_to_bytes(16)));
  REQUIRE(mine != NULL && right != NULL);
  CHECK(mine->guarded && mine->start < start && st__span_end(mine) == start + st__pages_to_bytes(16));
  CHECK(right != mine && !right->guarded);
  CHECK(heap_valid());
  purge_everything();
  /* Its last page lies inside a merged span now, and can be written. */
  CHECK(st__pagemap_lookup((void *)(start + st__pages_to_bytes(15))) == NULL);
  ((volatile char *)start)[st__pages_to_bytes(16) - 1] = 1;
  CHECK(heap_valid());
}

/* Holds every span descriptor the shard can hand out while maps fail (the caller gives
 * them back with release_descriptors); returns how many. */
enum { HELD_MAX = 1 << 14 };
static st_span_t *held[HELD_MAX];
static size_t hold_every_descriptor(void) {
  size_t n = 0;
  fake_fail_maps_after(0);
  st__pageheap_lock(ph);
  while (n < HELD_MAX && (held[n] = st__pageheap_desc_alloc_locked(ph)) != NULL) n++;
  st__pageheap_unlock(ph);
  return n;
}

static void release_descriptors(size_t n) {
  st__pageheap_lock(ph);
  while (n > 0) st__pageheap_desc_free_locked(ph, held[--n]);
  st__pageheap_unlock(ph);
  fake_maps_never_fail();
}

static bool grow_guarded(st_span_t *s, size_t pages) {
  st__pageheap_lock(ph);
  bool grown = st__pageheap_grow_guarded_locked(ph, s, pages);
  st__pageheap_unlock(ph);
  return grown;
}

/* A guarded LARGE span growing over free spans with guards of their own: when no
 * descriptor can be had to cut the last one to length, nothing changes, and the free spans
 * keep their guards; once one can, the guards inside the run go and the new end is the
 * guard. */
static void a_failed_guarded_growth_keeps_every_guard(void) {
  purge_everything();
  st_span_t *s = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *a = alloc_span(4, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *b = alloc_span(8, ST_PAGE_SIZE, ST_SPAN_LARGE);
  st_span_t *fence = alloc_span(1, ST_PAGE_SIZE, ST_SPAN_LARGE);
  REQUIRE(s != NULL && a != NULL && b != NULL && fence != NULL);
  REQUIRE(a->start == st__span_end(s) && b->start == st__span_end(a) &&
          fence->start == st__span_end(b));
  REQUIRE(st__pageheap_guard(s, true) && st__pageheap_guard(a, true));
  uintptr_t a_start = a->start;
  free_span(a); /* stays apart from b: its guard would end up inside */
  free_span(b);
  a = st__pagemap_lookup((void *)a_start);
  REQUIRE(a != NULL && a->kind == ST_SPAN_FREE && a->guarded && a->pages == 4);
  size_t held_count = hold_every_descriptor();
  REQUIRE(held_count > 0 && held_count < HELD_MAX);
  CHECK(!grow_guarded(s, 14)); /* b must be cut: no descriptor */
  CHECK(s->pages == 8 && s->guarded);
  a = st__pagemap_lookup((void *)a_start);
  REQUIRE(a != NULL);
  CHECK(a->kind == ST_SPAN_FREE && a->guarded && a->pages == 4);
  release_descriptors(held_count);
  CHECK(heap_valid());
  REQUIRE(grow_guarded(s, 14));
  CHECK(s->pages == 14 && s->guarded);
  for (size_t i = 0; i + 1 < s->pages; i++) /* every page but the new guard, old guards too */
    ((volatile char *)s->start)[st__pages_to_bytes(i)] = 1;
  st_span_t *cut = st__pagemap_lookup((void *)st__span_end(s));
  REQUIRE(cut != NULL);
  CHECK(cut->kind == ST_SPAN_FREE && cut->pages == 6 && !cut->guarded);
  CHECK(heap_valid());
  free_span(s);
  free_span(fence);
  purge_everything();
  CHECK(heap_valid());
}

int main(void) {
  fake_os_install();
  st__options_init();
  st__pageheap_init();
  ph = st__pageheap_of_cpu(0);
  RUN_CASE(freeing_everything_coalesces_back_to_whole_regions);
  RUN_CASE(resident_memory_is_reused_first);
  RUN_CASE(slab_spans_map_every_page_and_large_spans_the_first);
  RUN_CASE(aligned_spans_start_on_their_alignment);
  RUN_CASE(large_spans_shrink_and_grow_in_place);
  RUN_CASE(free_spans_are_purged_after_the_delay);
  RUN_CASE(a_collapse_purges_dirty_memory_at_once);
  RUN_CASE(alloc_free_cycles_keep_their_dirty_memory);
  RUN_CASE(a_refused_purge_keeps_the_span_dirty);
  RUN_CASE(a_refused_map_gives_null_and_a_consistent_heap);
  RUN_CASE(guard_pages_outlive_their_spans);
  RUN_CASE(a_failed_guarded_growth_keeps_every_guard);
  return check_summary();
}
