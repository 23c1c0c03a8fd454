/*
 * dlopen_loop.c — dlopen/dlclose of a library that allocates in its constructor and frees in
 * its destructor, many times over (argv[1] is the library's path).
 *
 * Each round: dlopen, check the constructor's blocks, take blocks the library allocates,
 * hand it blocks of ours to free in its destructor, let it run a thread, dlclose. Blocks
 * made by the library are checked and freed after it has been unloaded, a few rounds later.
 */
#include <dlfcn.h>
#include <stdlib.h>

#include "check.h"
#include "dlopen_lib.h"
#include "override_util.h"

enum { ROUNDS = 300, MADE = 4, DELAY = 3 };

static const char *lib_path;

/* Resolves name from handle into the function pointer at slot. */
static bool resolve(void *handle, const char *name, void *slot) {
  void *sym = dlsym(handle, name);
  if (sym) memcpy(slot, &sym, sizeof sym);
  return CHECK_MSG(sym != NULL, "dlsym(%s): %s", name, dlerror());
}

static void case_dlopen_dlclose_loop(void) {
  static void *made[DELAY][MADE];
  static size_t made_size[DELAY][MADE];
  for (unsigned round = 0; round < ROUNDS; round++) {
    void *h = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(CHECK_MSG(h != NULL, "dlopen: %s", dlerror()));
    int (*check)(void), (*spawn)(void), (*adopt)(void *, size_t, uint32_t);
    void *(*make)(size_t, uint32_t);
    REQUIRE(resolve(h, "dlo_check", &check) && resolve(h, "dlo_make", &make) &&
            resolve(h, "dlo_adopt", &adopt) && resolve(h, "dlo_spawn", &spawn));
    CHECK_EQ(check(), 0);
    unsigned slot = round % DELAY;
    for (unsigned i = 0; i < MADE; i++) { /* the library's blocks from DELAY rounds ago */
      if (made[slot][i]) CHECK(pattern_ok(made[slot][i], made_size[slot][i], round - DELAY + i));
      free(made[slot][i]);
      made_size[slot][i] = 24 + (size_t)(round % 7) * 1000 * (i + 1) * (i + 1);
      made[slot][i] = make(made_size[slot][i], round + i);
      CHECK(made[slot][i] != NULL);
    }
    for (unsigned i = 0; i < 3; i++) {
      size_t n = 100 + (size_t)i * 30000;
      void *p = malloc(n);
      REQUIRE(p != NULL);
      pattern_fill(p, n, round * 3 + i);
      CHECK_EQ(adopt(p, n, round * 3 + i), 0);
    }
    if (round % 10 == 0) CHECK_EQ(spawn(), 0);
    CHECK_EQ(dlclose(h), 0);
  }
  for (unsigned s = 0; s < DELAY; s++)
    for (unsigned i = 0; i < MADE; i++) free(made[s][i]);
  CHECK_EQ(strata_validate(), 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s path/to/libdlopen_lib.so\n", argv[0]);
    return 64;
  }
  lib_path = argv[1];
  RUN_CASE(case_dlopen_dlclose_loop);
  return check_summary();
}
