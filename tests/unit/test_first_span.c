/* A thread's first slab span of a size class, when the page heap lays it on resident pages
 * (a freed block's), gives the pages past its first carve back to the kernel
 * (st__page_release_uncarved, called by the thread cache); the thread's later spans of the
 * class, and spans on clean memory, are left as they are; a purge the kernel refuses leaves
 * the span resident and fully usable. Each case runs in a thread of its own, so that its
 * cache takes its first spans there. Residency is read with mincore(2). */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "../check.h"
#include "fresh_thread.h"
#include "core/pagemap.h"
#include "core/sizeclass.h"
#include "fake_os.h"
#include "strata.h"

#define BLOCK ((size_t)1024) /* a class whose span is 16 pages (64 KiB) */
#define SPAN_BLOCKS 64        /* blocks in such a span; one page is carved at a time */

static size_t span_pages(void) { return st__class_span_pages[st__size_to_class(BLOCK)]; }

/* Resident pages among `pages` pages (at most 64) from addr; SIZE_MAX if mincore failed. */
static size_t resident_pages(const void *addr, size_t pages) {
  unsigned char vec[64];
  if (!CHECK(pages <= sizeof vec) || !CHECK(mincore((void *)addr, pages * ST_PAGE_SIZE, vec) == 0))
    return SIZE_MAX;
  size_t n = 0;
  for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
  return n;
}

/* Leaves a resident free span of exactly one slab span's length on the calling thread's
 * page heap (a large block written and freed: too long for the thread's stock of freed
 * pages), where that thread's next new slab span is laid. Returns its address. */
static char *leave_dirty_span(void) {
  size_t bytes = span_pages() * ST_PAGE_SIZE;
  char *p = st_malloc(bytes);
  if (!CHECK(p != NULL)) return NULL;
  memset(p, 0x5a, bytes);
  st_free(p);
  return p;
}

static void first_span_thread(void) {
  /* The thread's cache; the block stays out so that its class's span is not given back
   * idle (tcache_release_idle) where the next span is expected. */
  void *keep = st_malloc(16);
  char *dirty = leave_dirty_span();
  REQUIRE(dirty != NULL);
  REQUIRE(resident_pages(dirty, span_pages()) == span_pages());
  REQUIRE(span_pages() * ST_PAGE_SIZE == SPAN_BLOCKS * BLOCK);
  long purges = fake.purges;
  size_t purged = fake.purged_bytes;
  char *block = st_malloc(BLOCK);
  CHECK(block == dirty); /* the span lies on the freed block's pages */
  CHECK_EQ(fake.purges, purges + 1);
  CHECK_EQ(fake.purged_bytes, purged + (span_pages() - 1) * ST_PAGE_SIZE);
  CHECK_EQ(resident_pages(dirty, span_pages()), 1); /* the first carve's page */
  /* The rest of the span still serves blocks: fresh zero pages fault in as they are carved. */
  char *more[SPAN_BLOCKS - 1];
  for (int i = 0; i < SPAN_BLOCKS - 1; i++) {
    more[i] = st_malloc(BLOCK);
    REQUIRE(more[i] != NULL);
    CHECK(st__pagemap_lookup(more[i]) == st__pagemap_lookup(block));
    memset(more[i], i, BLOCK);
  }
  CHECK_EQ(resident_pages(dirty, span_pages()), span_pages());
  /* The span is full: the class's next span is not the thread's first, and keeps its pages. */
  char *dirty2 = leave_dirty_span();
  purges = fake.purges;
  char *next = st_malloc(BLOCK);
  CHECK(next == dirty2);
  CHECK_EQ(fake.purges, purges);
  CHECK_EQ(resident_pages(dirty2, span_pages()), span_pages());
  for (int i = 0; i < SPAN_BLOCKS - 1; i++) st_free(more[i]);
  st_free(block);
  st_free(next);
  st_free(keep);
}

static void first_span_on_resident_pages_gives_them_back(void) {
  run_in_new_thread(first_span_thread);
}

static void clean_span_thread(void) {
  st_free(st_malloc(16));
  st_trim(0); /* every free span of the page heaps is purged: clean */
  long purges = fake.purges;
  char *block = st_malloc(BLOCK);
  REQUIRE(block != NULL);
  CHECK_EQ(fake.purges, purges); /* known zero: nothing to give back */
  st_free(block);
}

static void first_span_on_clean_pages_is_left_alone(void) { run_in_new_thread(clean_span_thread); }

static void refused_thread(void) {
  st_free(st_malloc(16));
  char *dirty = leave_dirty_span();
  REQUIRE(dirty != NULL);
  fake.purge_fails = true;
  char *blocks[SPAN_BLOCKS];
  for (int i = 0; i < SPAN_BLOCKS; i++) blocks[i] = st_malloc(BLOCK);
  fake.purge_fails = false;
  for (int i = 0; i < SPAN_BLOCKS; i++) {
    REQUIRE(blocks[i] != NULL);
    memset(blocks[i], i, BLOCK);
  }
  CHECK(blocks[0] == dirty);
  CHECK_EQ(resident_pages(dirty, span_pages()), span_pages());
  for (int i = 0; i < SPAN_BLOCKS; i++) {
    CHECK_EQ((unsigned char)blocks[i][BLOCK - 1], (unsigned)i);
    st_free(blocks[i]);
  }
}

static void refused_purge_leaves_the_span_usable(void) { run_in_new_thread(refused_thread); }

int main(void) {
  fake_os_install();
  RUN_CASE(first_span_on_resident_pages_gives_them_back);
  RUN_CASE(first_span_on_clean_pages_is_left_alone);
  RUN_CASE(refused_purge_leaves_the_span_usable);
  return check_summary();
}
