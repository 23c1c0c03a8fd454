/* Unit tests of the option table: parsing, bounds and bad values. (tools/options_doc.c
 * generates docs/options.md from the same table; the docs_options test keeps it current.) */
#include "../check.h"
#include "base/options.h"

static void values_are_read_from_the_environment(void) {
  setenv("STRATA_PURGE_DELAY_MS", "1234", 1);
  setenv("STRATA_VERBOSE", "yes", 1);
  setenv("STRATA_SHARDS", "-5", 1); /* below the minimum: default */
  setenv("STRATA_HUGE_THRESHOLD_KB", "12abc", 1); /* not a number: default */
  st__options_reload();
  CHECK_EQ(st_option(ST_OPTION_PURGE_DELAY_MS), 1234);
  CHECK_EQ(st_option(ST_OPTION_VERBOSE), 1);
  CHECK_EQ(st_option(ST_OPTION_SHARDS), st__option_descs[ST_OPTION_SHARDS].default_value);
  CHECK_EQ(st_option(ST_OPTION_HUGE_THRESHOLD_KB),
           st__option_descs[ST_OPTION_HUGE_THRESHOLD_KB].default_value);
  setenv("STRATA_VERBOSE", "off", 1);
  setenv("STRATA_PURGE_DELAY_MS", "-1", 1);
  st__options_reload();
  CHECK_EQ(st_option(ST_OPTION_VERBOSE), 0);
  CHECK_EQ(st_option(ST_OPTION_PURGE_DELAY_MS), -1);
}

static void defaults_lie_within_bounds(void) {
  for (int i = 0; i < ST_OPTION_COUNT; i++) {
    const st_option_desc *d = &st__option_descs[i];
    CHECK_MSG(d->min <= d->default_value && d->default_value <= d->max, "%s", d->env_name);
    CHECK(strncmp(d->env_name, "STRATA_", 7) == 0);
    CHECK(d->help != NULL && d->help[0] != '\0');
  }
}

int main(void) {
  RUN_CASE(values_are_read_from_the_environment);
  RUN_CASE(defaults_lie_within_bounds);
  return check_summary();
}
