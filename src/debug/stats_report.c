/*
 * stats_report.c — the public statistics: st_stats_get and the text and JSON reports.
 *
 * Owns: completing the core's snapshot with what the debug layer knows (requests of small
 * blocks while blocks are tracked) and writing it out. Both reports walk the X-macro
 * lists of include/strata.h, so a new field shows up in the struct, the table and the
 * JSON at once, under the same name (docs/stats.md lists them; a test checks).
 */
#include <string.h>

#include "core/stats.h"
#include "debug/debug.h"
#include "strata.h"

void st__debug_stats(st_stats *out) {
  st__core_stats(out);
  st__track_requests(&out->small_requested_bytes, &out->requests_tracked);
}

int st_stats_get(st_stats *out, size_t size) {
  if (out == NULL || size < offsetof(st_stats, class_count) + sizeof out->class_count) return -1;
  st_stats full;
  st__debug_stats(&full);
  memcpy(out, &full, size < sizeof full ? size : sizeof full);
  return 0;
}

static double fill_ratio(const st_stats_class *k) {
  return k->blocks_capacity == 0 ? 0.0 : (double)k->blocks_live / (double)k->blocks_capacity;
}

static bool class_in_use(const st_stats_class *k) { return k->spans != 0 || k->refills != 0; }

static void print_text(FILE *f, const st_stats *s) {
  fprintf(f, "strata statistics (version %u)\n", s->version);
#define ST_PRINT_TEXT(name, help) fprintf(f, "  %-22s %16zu  %s\n", #name, s->name, help);
  ST_STATS_FIELDS(ST_PRINT_TEXT)
#undef ST_PRINT_TEXT
  fprintf(f, "  %-22s %16.4f  %s\n", "fragmentation", s->fragmentation,
          "1 - live_bytes / committed_bytes");
  fprintf(f, "size classes in use:\n  %5s", "class");
#define ST_PRINT_HEAD(name, help) fprintf(f, " %15s", #name);
  ST_STATS_CLASS_FIELDS(ST_PRINT_HEAD)
#undef ST_PRINT_HEAD
  fprintf(f, " %7s\n", "fill");
  for (unsigned c = 0; c < s->class_count; c++) {
    const st_stats_class *k = &s->classes[c];
    if (!class_in_use(k)) continue;
    fprintf(f, "  %5u", c);
#define ST_PRINT_CLASS(name, help) fprintf(f, " %15zu", k->name);
    ST_STATS_CLASS_FIELDS(ST_PRINT_CLASS)
#undef ST_PRINT_CLASS
    fprintf(f, " %6.1f%%\n", 100.0 * fill_ratio(k));
  }
}

static void print_json(FILE *f, const st_stats *s) {
  fprintf(f, "{\"version\": %u", s->version);
#define ST_PRINT_JSON(name, help) fprintf(f, ", \"%s\": %zu", #name, s->name);
  ST_STATS_FIELDS(ST_PRINT_JSON)
#undef ST_PRINT_JSON
  fprintf(f, ", \"fragmentation\": %.6f, \"classes\": [", s->fragmentation);
  const char *sep = "";
  for (unsigned c = 0; c < s->class_count; c++) {
    const st_stats_class *k = &s->classes[c];
    if (!class_in_use(k)) continue;
    fprintf(f, "%s{\"class\": %u", sep, c);
#define ST_PRINT_JSON_CLASS(name, help) fprintf(f, ", \"%s\": %zu", #name, k->name);
    ST_STATS_CLASS_FIELDS(ST_PRINT_JSON_CLASS)
#undef ST_PRINT_JSON_CLASS
    fprintf(f, ", \"fill\": %.6f}", fill_ratio(k));
    sep = ", ";
  }
  fprintf(f, "]}\n");
}

int st_stats_print(FILE *file, st_stats_format format) {
  if (file == NULL || (format != ST_STATS_TEXT && format != ST_STATS_JSON)) return -1;
  st_stats s;
  st__debug_stats(&s);
  if (format == ST_STATS_TEXT) print_text(file, &s);
  else print_json(file, &s);
  return fflush(file) == 0 && !ferror(file) ? 0 : -1;
}
