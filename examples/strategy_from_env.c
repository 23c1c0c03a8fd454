/*
 * strategy_from_env.c — choosing a strategy from the environment: this program only calls
 * malloc and free, and runs on whichever strategy STRATA_STRATEGY names.
 *
 *   cc strategy_from_env.c -o strategy_from_env
 *   LD_PRELOAD=libstrata.so STRATA_STRATEGY=buddy ./strategy_from_env
 *   LD_PRELOAD=libstrata.so STRATA_STRATEGY=best-fit STRATA_VERBOSE=1 ./strategy_from_env
 *
 * Any program works the same way (LD_PRELOAD=libstrata.so STRATA_STRATEGY=bitmap python3).
 * The strategy is decided at the process's first allocation; a misspelt name prints a
 * warning listing the valid ones and the default allocator serves. When strata is
 * preloaded, st_strategy_current tells which strategy runs (looked up at run time, so the
 * program also runs, on glibc, without strata).
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  /* Sizes just above powers of two show the buddy system's rounding in the usable sizes. */
  size_t sizes[] = {24, 100, 1000, 1025, 5000, 70000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = malloc(sizes[i]);
    if (p == NULL) return 1;
    printf("malloc(%6zu) = %p, usable %zu\n", sizes[i], p, malloc_usable_size(p));
    free(p);
  }
  int (*current)(void) = NULL;
  const char *(*name)(int) = NULL;
  void *f = dlsym(RTLD_DEFAULT, "st_strategy_current"),
       *g = dlsym(RTLD_DEFAULT, "st_strategy_name");
  memcpy(&current, &f, sizeof f);
  memcpy(&name, &g, sizeof g);
  if (current && name)
    printf("strategy: %s\n", name(current()));
  else
    printf("strategy: glibc's malloc (libstrata.so is not preloaded)\n");
  return 0;
}
