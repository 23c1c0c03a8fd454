/*
 * setenv_choice.c — a program that names its strategy with setenv before its first
 * allocation gets that strategy (the way bench/strategies' children choose theirs).
 *
 * strata's constructors run before main; none of them may read the option table, or a
 * STRATA_* variable set in main would be ignored. Usage: setenv_choice NAME.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "strata.h"

static const char *wanted;

static void case_setenv_before_first_allocation_decides(void) {
  CHECK_EQ(setenv("STRATA_STRATEGY", wanted, 1), 0);
  void *p = st_malloc(100);
  CHECK(p != NULL);
  st_free(p);
  CHECK(strcmp(st_strategy_name(st_strategy_current()), wanted) == 0);
}

int main(int argc, char **argv) {
  wanted = argc > 1 ? argv[1] : "buddy";
  RUN_CASE(case_setenv_before_first_allocation_decides);
  return check_summary();
}
