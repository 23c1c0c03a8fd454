/*
 * stress.c — deterministic multi-thread stress of the malloc family (STYLE.md §10, §12).
 *
 * Owns: N worker slots, each run by a chain of short-lived threads ("generations"), so
 * threads exit and new ones start while the others keep allocating. Every slot draws its
 * operations from its own seeded PRNG: malloc/calloc/realloc/aligned_alloc/posix_memalign of
 * small (8 B..1 KiB), medium (1..256 KiB) and a few big (1..16 MiB) blocks, two in five past
 * the 8 MiB huge threshold (mapped on their own, reused from the cache of freed mappings,
 * resized by mremap). Every block is filled with a pattern derived from its id and verified
 * before it is freed or resized.
 * More than half of the releases go to another slot's mailbox (a mutex-protected array)
 * and are freed, or adopted and later resized, by that slot's thread: cross-thread frees.
 * At the end the main thread frees what is left (blocks whose owner threads have exited)
 * and, when strata is present, st_heap_validate() must return 0.
 * Built twice: -DSTRESS_STRATA calls st_* (linked to strata_prefixed or a sanitizer
 * variant); otherwise plain malloc/free, run under LD_PRELOAD with --expect-strata.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "check.h"
#include "strata.h"

#ifdef STRESS_STRATA
#define S_MALLOC st_malloc
#define S_CALLOC st_calloc
#define S_REALLOC st_realloc
#define S_FREE st_free
#define S_FREE_SIZED st_free_sized
#define S_ALIGNED_ALLOC st_aligned_alloc
#define S_POSIX_MEMALIGN st_posix_memalign
#define S_USABLE_SIZE st_usable_size
#else
#define S_MALLOC malloc
#define S_CALLOC calloc
#define S_REALLOC realloc
#define S_FREE free
#define S_FREE_SIZED(p, n) free(p)
#define S_ALIGNED_ALLOC aligned_alloc
#define S_POSIX_MEMALIGN posix_memalign
#define S_USABLE_SIZE malloc_usable_size
#endif

enum { LIVE_MAX = 256, MAILBOX_CAP = 512, ADOPT_MAX = 64, DRAIN_EVERY = 48, MAX_SLOTS = 64 };

typedef struct block {
  unsigned char *p; /* NULL: empty slot */
  size_t size;
  uint64_t id; /* seeds the pattern; unique in the run */
} block;

typedef struct mailbox {
  pthread_mutex_t lock;
  size_t count;             /* guarded by lock */
  block items[MAILBOX_CAP]; /* guarded by lock */
} mailbox;

/* One worker slot. Only the thread currently running the slot touches the fields below
 * the mailbox; pthread_join/pthread_create order successive generations.
 * Determinism: `rng` drives the slot's own operations on `live` and never depends on what
 * arrives in the mailbox, which varies with timing; `mail_rng` decides about arrivals. */
typedef struct slot {
  mailbox box;
  unsigned index;
  uint64_t rng, mail_rng;
  block live[LIVE_MAX];
  block adopted[ADOPT_MAX]; /* foreign blocks kept until the next drain, then resized */
  size_t n_adopted;
  uint64_t allocs, frees, sent, received, adopted_count, reallocs, huge;
} slot;

static struct config {
  unsigned threads, generations;
  unsigned long ops; /* per slot and generation */
  uint64_t seed;
} cfg = {8, 6, 6000, 42};

static slot *slots;

/* ---- deterministic randomness and patterns --------------------------------------------- */

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545f4914f6cdd1dull;
}
static uint64_t rng_below(uint64_t *s, uint64_t n) { return rng_next(s) % n; }

/* Log-uniform in [lo, hi]: each power-of-two band equally likely. */
static size_t rng_size(uint64_t *s, size_t lo, size_t hi) {
  unsigned lo_bits = 63u - (unsigned)__builtin_clzll(lo);
  unsigned hi_bits = 63u - (unsigned)__builtin_clzll(hi);
  size_t base = (size_t)1 << (lo_bits + rng_below(s, hi_bits - lo_bits + 1));
  size_t size = base + (size_t)rng_below(s, base);
  return size < lo ? lo : size > hi ? hi : size;
}

static size_t pick_size(slot *sl, uint64_t *rng) {
  uint64_t r = rng_below(rng, 1000);
  if (r < 800) return rng_size(rng, 8, 1024);
  if (r < 997) return rng_size(rng, 1025, 256 * 1024);
  sl->huge++;
  return rng_size(rng, 1 << 20, 16 << 20);
}

static uint64_t pattern_word(uint64_t id, size_t k) {
  uint64_t x = id * 0x9e3779b97f4a7c15ull + k;
  x ^= x >> 31;
  return x * 0xbf58476d1ce4e5b9ull;
}

/* Byte i of the block is byte (i % 8) of pattern_word(id, i / 8), so any prefix of a block
 * is well defined and realloc only has to fill the grown part. */
static unsigned char pattern_byte(uint64_t id, size_t i) {
  return (unsigned char)(pattern_word(id, i / 8) >> (8 * (i % 8)));
}

static void fill(unsigned char *p, size_t from, size_t to, uint64_t id) {
  size_t i = from;
  for (; i < to && i % 8 != 0; i++) p[i] = pattern_byte(id, i);
  for (; i + 8 <= to; i += 8) {
    uint64_t w = pattern_word(id, i / 8);
    memcpy(p + i, &w, 8);
  }
  for (; i < to; i++) p[i] = pattern_byte(id, i);
}

static void verify(const block *b, size_t len, const char *when) {
  for (size_t i = 0; i < len; i += 8) {
    uint64_t want = pattern_word(b->id, i / 8), got = 0;
    size_t n = len - i < 8 ? len - i : 8;
    memcpy(&got, b->p + i, n);
    if (n < 8) want &= ((uint64_t)1 << (8 * n)) - 1;
    if (got != want) {
      fprintf(stderr,
              "stress: block id %llu at %p (%zu bytes) corrupted at offset %zu %s: "
              "%#llx != %#llx\n",
              (unsigned long long)b->id, (void *)b->p, b->size, i, when, (unsigned long long)got,
              (unsigned long long)want);
      abort();
    }
  }
}

static void die(const char *what, size_t size) {
  fprintf(stderr, "stress: %s failed for %zu bytes (errno %d)\n", what, size, errno);
  abort();
}

/* ---- operations --------------------------------------------------------------------------- */

static void allocate(slot *sl, block *b) {
  size_t size = pick_size(sl, &sl->rng);
  uint64_t kind = rng_below(&sl->rng, 100);
  unsigned char *p;
  size_t align = 16;
  if (kind < 55) {
    p = S_MALLOC(size);
  } else if (kind < 70) {
    p = S_CALLOC(1, size);
    if (p)
      for (size_t i = 0; i < size; i += 509)
        if (p[i] != 0) die("calloc zeroing", size);
  } else if (kind < 80) {
    p = S_REALLOC(NULL, size);
  } else if (kind < 92) {
    align = (size_t)16 << rng_below(&sl->rng, rng_below(&sl->rng, 50) ? 9 : 13); /* ..64 KiB */
    p = S_ALIGNED_ALLOC(align, size);
  } else {
    align = (size_t)8 << rng_below(&sl->rng, 10);
    void *out = NULL;
    p = S_POSIX_MEMALIGN(&out, align, size) == 0 ? out : NULL;
  }
  if (p == NULL) die("allocation", size);
  if ((uintptr_t)p % (align < 16 ? 16 : align) != 0) die("alignment", size);
  if (S_USABLE_SIZE(p) < size) die("usable size", size);
  *b = (block){p, size, (uint64_t)sl->index << 40 | ++sl->allocs};
  fill(p, 0, size, b->id);
}

static void release_local(slot *sl, block *b) {
  verify(b, b->size, "before free");
  if (b->id & 1)
    S_FREE(b->p);
  else
    S_FREE_SIZED(b->p, b->size);
  sl->frees++;
  b->p = NULL;
}

/* Hands the block to another slot's mailbox; frees it here when that mailbox is full. */
static void release_remote(slot *sl, block *b) {
  verify(b, b->size, "before sending");
  slot *to = &slots[(sl->index + 1 + rng_below(&sl->rng, cfg.threads - 1)) % cfg.threads];
  pthread_mutex_lock(&to->box.lock);
  bool sent = to->box.count < MAILBOX_CAP;
  if (sent) to->box.items[to->box.count++] = *b;
  pthread_mutex_unlock(&to->box.lock);
  if (!sent) {
    release_local(sl, b);
    return;
  }
  sl->sent++;
  b->p = NULL;
}

static void resize(slot *sl, block *b, uint64_t *rng) {
  size_t size = pick_size(sl, rng);
  verify(b, b->size, "before realloc");
  unsigned char *p = S_REALLOC(b->p, size);
  if (p == NULL) die("realloc", size);
  if ((uintptr_t)p % 16 != 0) die("realloc alignment", size);
  size_t keep = b->size < size ? b->size : size;
  b->p = p;
  verify(b, keep, "after realloc");
  fill(p, keep, size, b->id);
  b->size = size;
  sl->reallocs++;
}

/* Resizes and frees the foreign blocks adopted at the last drain, then frees what other
 * threads sent since, adopting some of it for the next drain. */
static void drain_mailbox(slot *sl) {
  for (size_t i = 0; i < sl->n_adopted; i++) {
    resize(sl, &sl->adopted[i], &sl->mail_rng); /* realloc of another thread's block */
    release_local(sl, &sl->adopted[i]);
  }
  sl->n_adopted = 0;
  block got[MAILBOX_CAP];
  pthread_mutex_lock(&sl->box.lock);
  size_t n = sl->box.count;
  memcpy(got, sl->box.items, n * sizeof got[0]);
  sl->box.count = 0;
  pthread_mutex_unlock(&sl->box.lock);
  for (size_t i = 0; i < n; i++) {
    sl->received++;
    if (sl->n_adopted < ADOPT_MAX && rng_below(&sl->mail_rng, 100) < 30) {
      verify(&got[i], got[i].size, "on adoption");
      sl->adopted[sl->n_adopted++] = got[i];
      sl->adopted_count++;
    } else {
      release_local(sl, &got[i]);
    }
  }
}

static void *run_generation(void *arg) {
  slot *sl = arg;
  for (unsigned long op = 0; op < cfg.ops; op++) {
    block *b = &sl->live[rng_below(&sl->rng, LIVE_MAX)];
    uint64_t r = rng_below(&sl->rng, 100);
    if (b->p == NULL)
      allocate(sl, b);
    else if (r < 25)
      release_local(sl, b);
    else if (r < 55)
      release_remote(sl, b);
    else if (r < 80)
      resize(sl, b, &sl->rng);
    else
      verify(b, b->size, "while live");
    if (op % DRAIN_EVERY == 0) drain_mailbox(sl);
  }
  /* A quarter of the live blocks die with the thread; the rest outlive it and are freed or
   * resized by the slot's next thread. */
  for (size_t i = 0; i < LIVE_MAX; i += 4)
    if (sl->live[i].p) release_local(sl, &sl->live[i]);
  return NULL;
}

/* ---- driver -------------------------------------------------------------------------------- */

static void parse_args(int argc, char **argv, bool *expect_strata) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--expect-strata") == 0) {
      *expect_strata = true;
      continue;
    }
    if (i + 1 >= argc) goto usage;
    unsigned long v = strtoul(argv[i + 1], NULL, 10);
    if (strcmp(argv[i], "--threads") == 0 && v >= 2 && v <= MAX_SLOTS)
      cfg.threads = (unsigned)v;
    else if (strcmp(argv[i], "--generations") == 0 && v >= 1)
      cfg.generations = (unsigned)v;
    else if (strcmp(argv[i], "--ops") == 0 && v >= 1)
      cfg.ops = v;
    else if (strcmp(argv[i], "--seed") == 0)
      cfg.seed = v;
    else
      goto usage;
    i++;
  }
  return;
usage:
  fprintf(stderr, "usage: stress [--threads 2..64] [--generations G] [--ops N] [--seed S] "
                  "[--expect-strata]\n");
  exit(64);
}

static void run_all_generations(void) {
  pthread_t tids[MAX_SLOTS];
  /* Slot s's generation g starts right after its generation g-1 is joined, while the other
   * slots are still busy, so thread exits and starts interleave with allocation. */
  for (unsigned g = 0; g < cfg.generations; g++)
    for (unsigned s = 0; s < cfg.threads; s++) {
      if (g > 0) CHECK_EQ(pthread_join(tids[s], NULL), 0);
      CHECK_EQ(pthread_create(&tids[s], NULL, run_generation, &slots[s]), 0);
    }
  for (unsigned s = 0; s < cfg.threads; s++) CHECK_EQ(pthread_join(tids[s], NULL), 0);
}

static int (*find_validate(void))(void) {
#ifdef STRESS_STRATA
  return st_heap_validate;
#else
  int (*fn)(void) = NULL;
  void *sym = dlsym(RTLD_DEFAULT, "st_heap_validate");
  memcpy(&fn, &sym, sizeof sym);
  return fn;
#endif
}

static bool expect_strata;

static void case_stress(void) {
  static slot slot_storage[MAX_SLOTS]; /* not malloc'ed: the test's own state stays out of
                                          the allocator under test */
  slots = slot_storage;
  for (unsigned s = 0; s < cfg.threads; s++) {
    slots[s].index = s;
    slots[s].rng = (cfg.seed + 1) * 0x9e3779b97f4a7c15ull ^ (s + 1) * 0xd1b54a32d192ed03ull;
    slots[s].mail_rng = slots[s].rng ^ 0x5851f42d4c957f2dull;
    pthread_mutex_init(&slots[s].box.lock, NULL);
  }
  run_all_generations();

  uint64_t allocs = 0, frees = 0, sent = 0, received = 0, adopted = 0, reallocs = 0, huge = 0;
  for (unsigned s = 0; s < cfg.threads; s++) { /* the main thread frees what is left */
    drain_mailbox(&slots[s]);
    drain_mailbox(&slots[s]); /* the blocks the first drain adopted */
    for (size_t i = 0; i < LIVE_MAX; i++)
      if (slots[s].live[i].p) release_local(&slots[s], &slots[s].live[i]);
  }
  for (unsigned s = 0; s < cfg.threads; s++) {
    slot *sl = &slots[s];
    allocs += sl->allocs, frees += sl->frees, sent += sl->sent, received += sl->received;
    adopted += sl->adopted_count, reallocs += sl->reallocs, huge += sl->huge;
  }
  printf("stress: threads=%u generations=%u ops=%lu allocs=%llu frees=%llu reallocs=%llu "
         "sent=%llu adopted=%llu huge=%llu\n",
         cfg.threads, cfg.generations, cfg.ops, (unsigned long long)allocs,
         (unsigned long long)frees, (unsigned long long)reallocs, (unsigned long long)sent,
         (unsigned long long)adopted, (unsigned long long)huge);
  CHECK_EQ(allocs, frees); /* nothing lost in the mailboxes */
  CHECK_EQ(sent, received);
  CHECK_GE(sent * 5, frees); /* at least ~20% of blocks were freed by another thread */
  CHECK(huge > 0 && adopted > 0 && reallocs > 0);

  int (*validate)(void) = find_validate();
  if (expect_strata) {
    Dl_info info;
    CHECK(validate != NULL);
    CHECK(dladdr((void *)malloc, &info) && strstr(info.dli_fname, "libstrata") != NULL);
  }
  if (validate) CHECK_EQ(validate(), 0);
}

int main(int argc, char **argv) {
  parse_args(argc, argv, &expect_strata);
  RUN_CASE(case_stress);
  return check_summary();
}
