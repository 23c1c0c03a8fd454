/*
 * misuse.c — death tests: each case misuses the allocator in one classic way and must end
 * with SIGABRT and strata's one-line diagnostic (docs/security.md has the table).
 *
 *   misuse default|hardened|classic
 * The mode names what the process runs (it sets STRATA_HARDENED; CTest sets STRATA_STRATEGY);
 * each case lists the modes that must catch it. Every case runs in a forked child.
 */
#include <pthread.h>
#include <sys/mman.h>

#include "check.h"
#include "strata.h"

enum { DEFAULT = 1, HARDENED = 2, CLASSIC = 4, ALL = 7 };
/* Cases that only the hardened mode with every freed byte filled catches
 * (STRATA_HARDENED_FILL=0 in the environment: the misuse-hardened-fill-all test). */
enum { HARDENED_FILL_ALL = 8 };

#define SMALL 32
#define MEDIUM (100 * 1024)
#define HUGE_BYTES ((size_t)100 << 20) /* above the 64 MiB huge threshold */

/* Hides where a pointer came from, so the compiler neither warns about nor removes the
 * misuse the case is about. */
static char *opaque(void *p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

static void *volatile sink;

static void free_stack_pointer(void *arg) {
  (void)arg;
  char on_stack[64] __attribute__((aligned(16))) = {0};
  st_free(opaque(on_stack));
}

static void free_foreign_mapping(void *arg) {
  (void)arg;
  void *p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  st_free(p);
}

static void free_interior_small(void *arg) {
  (void)arg;
  char *p = st_malloc(SMALL);
  st_free(opaque(p) + 16);
}

/* The inside of a slab block, freed by the thread that owns its span (the free fast path,
 * whose merged compare sees block starts: span.h, st__span_fast_thread_for), for blocks
 * whose size is not a power of two (48, 80, 3072, 6144, 12288) and ones that are (16;
 * 1000 asks for a 1024-byte block): the offsets of the first kind are multiples of the
 * size's power-of-two factor, so only a check of the whole size catches them; one byte
 * in is the smallest step inside a block. */
#define FREE_INTERIOR(size, offset)                                                                \
  static void free_interior_##size##_at_##offset(void *arg) {                                      \
    (void)arg;                                                                                     \
    char *p = st_malloc(size);                                                                     \
    st_free(opaque(p) + (offset));                                                                 \
  }
FREE_INTERIOR(16, 1)
FREE_INTERIOR(48, 1)
FREE_INTERIOR(48, 32)
FREE_INTERIOR(80, 64)
FREE_INTERIOR(1000, 1)
FREE_INTERIOR(1000, 512)
FREE_INTERIOR(3000, 1024)
FREE_INTERIOR(6000, 1)
FREE_INTERIOR(6000, 2048)
FREE_INTERIOR(12288, 4096)

static void free_interior_medium(void *arg) {
  (void)arg;
  char *p = st_malloc(MEDIUM);
  st_free(opaque(p) + 4096);
}

static void realloc_foreign(void *arg) {
  (void)arg;
  char on_stack[64] __attribute__((aligned(16))) = {0};
  sink = st_realloc(opaque(on_stack), 128);
}

static void usable_size_foreign(void *arg) {
  (void)arg;
  char on_stack[64] __attribute__((aligned(16))) = {0};
  sink = (void *)st_usable_size(opaque(on_stack));
}

static void double_free_small(void *arg) {
  (void)arg;
  void *p = st_malloc(SMALL);
  st_free(p);
  st_free(p);
}

/* p, q, p: the block is not on top of the free list any more. */
static void double_free_small_later(void *arg) {
  (void)arg;
  void *p = st_malloc(SMALL), *q = st_malloc(SMALL);
  st_free(p);
  st_free(q);
  st_free(p);
}

static void *free_it(void *p) {
  st_free(p);
  return NULL;
}

/* Freed by another thread (the remote list), then by the owner. */
static void double_free_small_remote(void *arg) {
  (void)arg;
  void *p = st_malloc(SMALL);
  pthread_t t;
  pthread_create(&t, NULL, free_it, p);
  pthread_join(t, NULL);
  st_free(p);
}

static void double_free_medium(void *arg) {
  (void)arg;
  void *p = st_malloc(MEDIUM), *q = st_malloc(MEDIUM);
  st_free(p);
  st_free(q);
  st_free(p);
}

static void double_free_huge(void *arg) {
  (void)arg;
  void *p = st_malloc(HUGE_BYTES);
  st_free(p);
  st_free(p);
}

/* Short enough to be kept for reuse when freed (default mode; hardened mode unmaps it). */
static void double_free_huge_cached(void *arg) {
  (void)arg;
  void *p = st_malloc((size_t)24 << 20);
  st_free(p);
  st_free(p);
}

static void realloc_freed(void *arg) {
  (void)arg;
  void *p = st_malloc(SMALL);
  st_free(p);
  sink = st_realloc(p, 64);
}

/* Hardened mode checks a block's fill when it leaves the quarantine: free enough others. */
static void churn(void) {
  for (int i = 0; i < 4096; i++) st_free(st_malloc(SMALL));
}

static void write_after_free_then_malloc(void *arg) {
  (void)arg;
  char *p = st_malloc(SMALL);
  st_free(p);
  memset(opaque(p), 'A', SMALL);
  sink = st_malloc(SMALL);
  churn();
}

/* Two neighbouring blocks a, b = a + size (the carving order makes them easy to find). */
static char *neighbours(char **b) {
  char *prev = st_malloc(SMALL);
  for (int i = 0; i < 1000; i++) {
    char *next = st_malloc(SMALL);
    if (next == prev + SMALL) {
      *b = next;
      return prev;
    }
    prev = next;
  }
  return NULL;
}

/* 16 bytes past a block: the free neighbour's link and mark in the default mode, the
 * canary and size word in the hardened one. */
static void overflow_16_bytes(void *arg) {
  (void)arg;
  char *b = NULL, *a = neighbours(&b);
  if (a == NULL) a = st_malloc(SMALL); /* hardened: shuffled, but the canary is in the block */
  else st_free(b);
  memset(opaque(a) + SMALL, 'A', 16);
  st_free(a);
  sink = st_malloc(SMALL);
  churn();
}

/* A 1-byte overflow that changes the byte: a constant would equal the (random) canary
 * byte there one run in 256, and the overflow would rightly go unseen. */
static void change_byte(char *c) { *c = (char)~*c; }

static void overflow_1_byte(void *arg) {
  (void)arg;
  char *p = opaque(st_malloc(SMALL - 8)); /* the canary follows the request, not the class */
  change_byte(&p[SMALL - 8]);
  st_free(p);
}

static void overflow_1_byte_medium(void *arg) {
  (void)arg;
  char *p = opaque(st_malloc(MEDIUM));
  change_byte(&p[MEDIUM]);
  st_free(p);
}

/* A write into a free block that aims its free-list link at the stack, once the block has
 * left the quarantine (hardened) and sits on its span's list: the default mode follows the
 * plain link and finds no free mark there; the hardened one decodes a link that leaves the
 * span. Blocks of another class push it out of the quarantine. */
static void aim_free_list(void *arg) {
  (void)arg;
  static char target[64] __attribute__((aligned(16)));
  char *p = st_malloc(SMALL);
  st_free(p);
  for (int i = 0; i < 4096; i++) st_free(st_malloc(3 * SMALL));
  void *aim = opaque(target);
  memcpy(opaque(p), &aim, sizeof aim);
  for (int i = 0; i < 64; i++) sink = st_malloc(SMALL);
}

/* Hardened: a freed slab block is filled whole, so a write after free into its slack (past
 * the request's canary, before the size word) shows when it leaves the quarantine. 40 bytes
 * and the 9 of canary and size word take a 64-byte block: the canary ends at 48, the size
 * word starts at 56. */
static void write_after_free_slack(void *arg) {
  (void)arg;
  char *p = st_malloc(40);
  st_free(p);
  opaque(p)[50] = 'A';
  churn();
}

/* Hardened: a medium block waits in the quarantine too; the write shows when it leaves. */
static void write_after_free_medium(void *arg) {
  (void)arg;
  char *p = st_malloc(MEDIUM);
  st_free(p);
  opaque(p)[100] = 'A';
  for (int i = 0; i < 2000; i++) st_free(st_malloc(MEDIUM + 4096));
}

/* Hardened, with the whole block filled: a write far from the start of a freed block. By
 * default only the first STRATA_HARDENED_FILL (256) bytes are filled and checked. */
static void write_after_free_deep(void *arg) {
  (void)arg;
  char *p = st_malloc(MEDIUM);
  st_free(p);
  opaque(p)[MEDIUM / 2] = 'A';
  for (int i = 0; i < 2000; i++) st_free(st_malloc(MEDIUM + 4096));
}

/* Hardened: realloc in place moves the canary to the new end, grown or shrunk. */
static void overflow_1_byte_after_realloc_grow(void *arg) {
  (void)arg;
  char *p = st_realloc(st_malloc(40), 50); /* the same 64-byte block, with its overhead */
  change_byte(&opaque(p)[50]);
  st_free(p);
}

static void overflow_1_byte_after_realloc_shrink(void *arg) {
  (void)arg;
  char *p = st_realloc(st_malloc(100), 60);
  change_byte(&opaque(p)[60]);
  st_free(p);
}

static void overflow_1_byte_after_large_grow(void *arg) {
  (void)arg;
  char *p = st_realloc(st_malloc(MEDIUM), 3 * MEDIUM); /* grows into the pages after it */
  change_byte(&opaque(p)[3 * MEDIUM]);
  st_free(p);
}

/* Hardened: the guard page moves with a LARGE block grown in place. */
static void overflow_into_guard_page_after_grow(void *arg) {
  (void)arg;
  char *p = opaque(st_realloc(st_malloc(MEDIUM), 3 * MEDIUM));
  memset(p, 'A', 3 * MEDIUM + 8192);
}

/* Hardened: the guard page at the end of each slab span stops an overflow that runs off
 * the span's last block (at most one span, 64 KiB for this class, away). */
static void overflow_off_slab_span(void *arg) {
  (void)arg;
  memset(opaque(st_malloc(SMALL)), 'A', 256 << 10);
}

/* Hardened: the guard page after a medium block stops a long overflow at once. */
static void overflow_into_guard_page(void *arg) {
  (void)arg;
  char *p = opaque(st_malloc(MEDIUM));
  memset(p, 'A', MEDIUM + 8192);
}

typedef struct death_case {
  const char *name;
  void (*fn)(void *);
  int modes;
  const char *expected[3]; /* the diagnostic in the default, hardened and classic modes */
} death_case;

static const death_case cases[] = {
    {"free_stack_pointer", free_stack_pointer, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_foreign_mapping", free_foreign_mapping, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_small", free_interior_small, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_16_at_1", free_interior_16_at_1, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_48_at_1", free_interior_48_at_1, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_48_at_32", free_interior_48_at_32, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_80_at_64", free_interior_80_at_64, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_1000_at_1", free_interior_1000_at_1, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_1000_at_512", free_interior_1000_at_512, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_3000_at_1024", free_interior_3000_at_1024, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_6000_at_1", free_interior_6000_at_1, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_6000_at_2048", free_interior_6000_at_2048, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_12288_at_4096", free_interior_12288_at_4096, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"free_interior_medium", free_interior_medium, ALL,
     {"free(): invalid pointer", "free(): invalid pointer", "free(): invalid pointer"}},
    {"realloc_foreign", realloc_foreign, ALL,
     {"realloc(): invalid pointer", "realloc(): invalid pointer", "realloc(): invalid pointer"}},
    {"usable_size_foreign", usable_size_foreign, DEFAULT | HARDENED,
     {"malloc_usable_size(): invalid pointer", "malloc_usable_size(): invalid pointer", ""}},
    {"double_free_small", double_free_small, ALL,
     {"free(): double free of", "free(): double free of", "free(): double free"}},
    {"double_free_small_later", double_free_small_later, ALL,
     {"free(): double free of", "free(): double free of", "free(): double free"}},
    {"double_free_small_remote", double_free_small_remote, ALL,
     {"free(): double free of", "free(): double free of", "free(): double free"}},
    {"double_free_medium", double_free_medium, ALL,
     {"free(): double free", "free(): double free", "free(): double free"}},
    {"double_free_huge", double_free_huge, DEFAULT | HARDENED,
     {"free(): double free of", "free(): double free of", ""}},
    {"double_free_huge_cached", double_free_huge_cached, DEFAULT | HARDENED,
     {"free(): double free of", "free(): double free of", ""}},
    {"realloc_freed", realloc_freed, ALL,
     {"realloc(): double free of", "realloc(): double free of", "realloc(): double free"}},
    {"write_after_free_then_malloc", write_after_free_then_malloc, DEFAULT | HARDENED,
     {"malloc(): corrupted free block", "use after free", ""}},
    {"overflow_16_bytes", overflow_16_bytes, DEFAULT | HARDENED,
     {"malloc(): corrupted free block", "free(): heap overflow", ""}},
    {"overflow_1_byte", overflow_1_byte, HARDENED, {"", "free(): heap overflow", ""}},
    {"overflow_1_byte_medium", overflow_1_byte_medium, HARDENED, {"", "free(): heap overflow", ""}},
    {"overflow_into_guard_page", overflow_into_guard_page, HARDENED, {"", "", ""}},
    {"overflow_into_guard_page_after_grow", overflow_into_guard_page_after_grow, HARDENED,
     {"", "", ""}},
    {"overflow_1_byte_after_realloc_grow", overflow_1_byte_after_realloc_grow, HARDENED,
     {"", "free(): heap overflow", ""}},
    {"overflow_1_byte_after_realloc_shrink", overflow_1_byte_after_realloc_shrink, HARDENED,
     {"", "free(): heap overflow", ""}},
    {"overflow_1_byte_after_large_grow", overflow_1_byte_after_large_grow, HARDENED,
     {"", "free(): heap overflow", ""}},
    {"overflow_off_slab_span", overflow_off_slab_span, HARDENED, {"", "", ""}},
    {"aim_free_list", aim_free_list, DEFAULT | HARDENED,
     {"malloc(): corrupted free block", "malloc(): corrupted free list", ""}},
    {"write_after_free_medium", write_after_free_medium, HARDENED, {"", "free(): use after free", ""}},
    {"write_after_free_slack", write_after_free_slack, HARDENED,
     {"", "free(): use after free: block", ""}},
    {"write_after_free_deep", write_after_free_deep, HARDENED_FILL_ALL,
     {"", "free(): use after free", ""}},
};

/* A guard page ends the program with SIGSEGV, not a diagnostic: checked apart. */
static int dies_of_segv(void (*fn)(void *)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    fn(NULL);
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

int main(int argc, char **argv) {
  const char *names[] = {"default", "hardened", "classic"};
  int index = -1;
  for (int i = 0; i < 3; i++)
    if (argc == 2 && strcmp(argv[1], names[i]) == 0) index = i;
  if (index < 0) {
    fprintf(stderr, "usage: misuse default|hardened|classic\n");
    return 2;
  }
  /* Before the first st_* call, which reads the options (the strategy comes from CTest). */
  if (index < 2) setenv("STRATA_HARDENED", index == 1 ? "1" : "0", 1);
  const char *fill = getenv("STRATA_HARDENED_FILL");
  int modes = 1 << index | (index == 1 && fill != NULL && strcmp(fill, "0") == 0 ? HARDENED_FILL_ALL : 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const death_case *c = &cases[i];
    if (!(c->modes & modes)) continue;
    check_case_failed = 0;
    if (c->fn == overflow_into_guard_page || c->fn == overflow_off_slab_span ||
        c->fn == overflow_into_guard_page_after_grow)
      CHECK(dies_of_segv(c->fn));
    else check_expect_death_(__FILE__, __LINE__, c->name, c->fn, NULL, c->expected[index]);
    check_case_failed ? check_cases_failed++ : check_cases_passed++;
    printf("[%s] %s\n", check_case_failed ? "FAIL" : " ok ", c->name);
  }
  return check_summary();
}
