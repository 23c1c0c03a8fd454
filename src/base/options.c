/*
 * options.c — parsing of the option table from the environment (see options.h).
 *
 * getenv and the hand-written number parser below never allocate, so this runs safely
 * inside the allocator's first initialisation.
 */
#include "base/options.h"

#include <stdlib.h>

#include "base/atomics.h"
#include "base/lock.h"
#include "base/report.h"

const st_option_desc st__option_descs[ST_OPTION_COUNT] = {
#define ST_OPTION_DESC(name, def, lo, hi, help) {"STRATA_" #name, def, lo, hi, help},
    ST_OPTION_LIST(ST_OPTION_DESC)
#undef ST_OPTION_DESC
};

long st__option_values[ST_OPTION_COUNT] = {
#define ST_OPTION_DEFAULT(name, def, lo, hi, help) def,
    ST_OPTION_LIST(ST_OPTION_DEFAULT)
#undef ST_OPTION_DEFAULT
};

const st_option_word st__option_words[] = {
#define ST_OPTION_WORD(name, word, value) {ST_OPTION_##name, word, value},
    ST_OPTION_WORDS(ST_OPTION_WORD)
#undef ST_OPTION_WORD
};
const int st__option_word_count = (int)ST_ARRAY_LEN(st__option_words);

const st_string_option_desc st__string_option_descs[ST_STRING_OPTION_COUNT] = {
#define ST_STRING_OPTION_DESC(name, help) {"STRATA_" #name, help},
    ST_STRING_OPTION_LIST(ST_STRING_OPTION_DESC)
#undef ST_STRING_OPTION_DESC
};

const char *st__string_option_values[ST_STRING_OPTION_COUNT];

static bool text_equals(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

static bool parse_option_word(int id, const char *text, long *out) {
  for (int i = 0; i < st__option_word_count; i++) {
    if (st__option_words[i].option == id && text_equals(text, st__option_words[i].word)) {
      *out = st__option_words[i].value;
      return true;
    }
  }
  return false;
}

/* Accepts a decimal integer (optionally negative) or yes/no/true/false/on/off. */
static bool parse_long(const char *text, long *out) {
  static const struct { const char *word; long value; } words[] = {
      {"yes", 1}, {"true", 1}, {"on", 1}, {"no", 0}, {"false", 0}, {"off", 0}};
  for (size_t i = 0; i < ST_ARRAY_LEN(words); i++) {
    if (text_equals(text, words[i].word)) {
      *out = words[i].value;
      return true;
    }
  }
  const char *p = text;
  bool negative = *p == '-';
  if (negative) p++;
  if (*p < '0' || *p > '9') return false;
  long value = 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (value > (__LONG_MAX__ - (*p - '0')) / 10) return false;
    value = value * 10 + (*p - '0');
  }
  if (*p != '\0') return false;
  *out = negative ? -value : value;
  return true;
}

/* Option id's value in the environment now; `warn` reports a value that does not parse. */
static long option_from_environment(int id, bool warn) {
  const st_option_desc *d = &st__option_descs[id];
  const char *text = getenv(d->env_name);
  long value = d->default_value;
  if (text == NULL || *text == '\0' || parse_option_word(id, text, &value)) return value;
  if (parse_long(text, &value) && value >= d->min && value <= d->max) return value;
  if (warn)
    st__report("warning: %s=\"%s\" is not a number in [%ld, %ld]; using the default %ld",
               d->env_name, text, d->min, d->max, d->default_value);
  return d->default_value;
}

long st__option_peek(st_option_id id) { return option_from_environment(id, false); }

void st__options_reload(void) {
  for (int id = 0; id < ST_OPTION_COUNT; id++) st__option_values[id] = option_from_environment(id, true);
  for (int id = 0; id < ST_STRING_OPTION_COUNT; id++) {
    const char *text = getenv(st__string_option_descs[id].env_name);
    st__string_option_values[id] = text != NULL && *text != '\0' ? text : NULL;
  }
}

static st_lock_t options_lock = ST_LOCK_INIT;
static st_atomic_int xoptions_read;

/* Several layers initialise on their first use, under their own locks and possibly at the
 * same time on different threads: one lock here keeps them from writing the table together. */
void st__options_init(void) {
  if (st_load_acquire(&xoptions_read)) return;
  st_lock_acquire(&options_lock);
  if (!st_load_relaxed(&xoptions_read)) {
    st__options_reload();
    st_store_release(&xoptions_read, 1);
  }
  st_lock_release(&options_lock);
}
