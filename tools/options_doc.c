/*
 * options_doc.c — prints docs/options.md from the option table in src/base/options.h, so
 * the documentation cannot drift from the code (the docs_options test compares them).
 * Regenerate with: cmake --build build --target docs-options
 */
#include <stdio.h>

#include "base/options.h"

int main(void) {
  printf("# strata options\n\n");
  printf("Every option is an environment variable read once, when the first allocation\n"
         "initialises strata; a value that is not a number within the bounds gets a warning\n"
         "on stderr and the default. Booleans also accept yes/no, true/false, on/off.\n\n");
  printf("This file is generated from `src/base/options.h` by `tools/options_doc.c`.\n\n");
  printf("| variable | default | range | meaning |\n|---|---|---|---|\n");
  for (int i = 0; i < ST_OPTION_COUNT; i++) {
    const st_option_desc *d = &st__option_descs[i];
    printf("| `%s` | %ld | %ld .. %ld | %s |\n", d->env_name, d->default_value, d->min, d->max,
           d->help);
  }
  printf("\nWords accepted instead of a number:\n\n");
  for (int i = 0; i < st__option_word_count; i++) {
    const st_option_word *w = &st__option_words[i];
    printf("- `%s=%s` means %ld\n", st__option_descs[w->option].env_name, w->word, w->value);
  }
  printf("\nOptions whose value is a name or a path (unset or empty: off, or the default):\n\n"
         "| variable | meaning |\n|---|---|\n");
  for (int i = 0; i < ST_STRING_OPTION_COUNT; i++) {
    const st_string_option_desc *d = &st__string_option_descs[i];
    printf("| `%s` | %s |\n", d->env_name, d->help);
  }
  return 0;
}
