/*
 * views.c — `strata heap DUMP.json [-o OUT.svg] [--png OUT.png]` draws a heap dump
 * (STRATA_DUMP_AT_EXIT, st_heap_dump) with strata-heap-svg, and `strata stats FILE`
 * pretty-prints statistics written as JSON (STRATA_STATS=json, st_stats_print; docs/stats.md):
 * one table of the figures, byte counts also in KiB/MiB, and the size classes as columns.
 *
 * Owns: a small JSON reader for that shape (objects of numbers, strings and arrays of such
 * objects; several objects one after another, as STRATA_STATS_FILE appends them).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* ---- heap -------------------------------------------------------------------------------- */

static const char heap_usage[] = "strata heap DUMP.json [-o OUT.svg] [--png OUT.png]\n";

static int heap_main(int argc, char **argv) {
  const char *dump = NULL, *svg = NULL, *png = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0) {
      printf("usage: %s", heap_usage);
      return 0;
    }
    if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--png") == 0) && i + 1 < argc) {
      *(argv[i][1] == 'o' ? &svg : &png) = argv[i + 1];
      i++;
    } else if (argv[i][0] != '-' && dump == NULL) {
      dump = argv[i];
    } else {
      cli_usage_error(&cli_heap, "unexpected argument %s", argv[i]);
    }
  }
  if (dump == NULL) cli_usage_error(&cli_heap, "no dump file");
  char out[PATH_MAX];
  if (svg == NULL) { /* heap.json -> heap.svg */
    size_t n = strlen(dump);
    if (n > 5 && strcmp(dump + n - 5, ".json") == 0) n -= 5;
    snprintf(out, sizeof out, "%.*s.svg", (int)n, dump);
    svg = out;
  }
  const char *tool = cli_heap_svg_tool();
  if (tool[0] == '\0') cli_fail("strata-heap-svg not found beside the strata command");
  if (!harness_on_path("python3"))
    cli_fail("strata heap needs python3 (sudo apt-get install python3)");
  char *args[] = {(char *)"python3", (char *)tool, (char *)dump, (char *)svg,
                  png ? (char *)"--png" : NULL, (char *)png, NULL};
  const char *none[] = {NULL};
  pid_t pid = harness_spawn(args, harness_env("", none), -1, -1, 0);
  if (pid < 0) cli_fail("fork: %s", strerror(errno));
  int status = cli_finish_program("strata-heap-svg", pid);
  if (status == 0) printf("heap picture written to %s%s%s\n", svg, png ? " and " : "", png ? png : "");
  return status == 0 ? 0 : CLI_EXIT_FAILED;
}

const cli_command cli_heap = {"heap", "draw a heap dump (STRATA_DUMP_AT_EXIT) as SVG or PNG",
                              heap_usage, heap_main};

/* ---- stats ------------------------------------------------------------------------------- */

typedef struct json {
  const char *p, *start, *file;
} json;

static void json_fail(json *j, const char *what) {
  cli_fail("%s: not statistics JSON (%s at byte %ld)", j->file, what, (long)(j->p - j->start));
}

static void skip_space(json *j) {
  while (isspace((unsigned char)*j->p)) j->p++;
}

static int accept(json *j, char c) {
  skip_space(j);
  if (*j->p != c) return 0;
  j->p++;
  return 1;
}

static void expect(json *j, char c) {
  char what[32];
  snprintf(what, sizeof what, "expected '%c'", c);
  if (!accept(j, c)) json_fail(j, what);
}

/* A string without escapes (the only kind strata writes) into out[size]. */
static void string(json *j, char *out, size_t size) {
  expect(j, '"');
  size_t n = strcspn(j->p, "\"\\");
  if (j->p[n] != '"') json_fail(j, "unsupported string");
  snprintf(out, size, "%.*s", (int)n, j->p);
  j->p += n + 1;
}

/* A scalar (number, string, true, false, null) as text into out[size]. */
static void scalar(json *j, char *out, size_t size) {
  skip_space(j);
  if (*j->p == '"') {
    string(j, out, size);
    return;
  }
  size_t n = strspn(j->p, "0123456789+-.eEtruefalsn");
  if (n == 0) json_fail(j, "expected a value");
  snprintf(out, size, "%.*s", (int)n, j->p);
  j->p += n;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Prints an array of flat objects as a table: a header from the first object's keys. */
static void table(json *j, const char *name) {
  printf("\n%s\n", name);
  int row = 0;
  if (accept(j, ']')) return;
  do {
    expect(j, '{');
    char header[1024] = "", line[1024] = "";
    size_t h = 0, l = 0;
    if (!accept(j, '}')) do {
        char key[64], value[64];
        string(j, key, sizeof key);
        expect(j, ':');
        scalar(j, value, sizeof value);
        int width = (int)strlen(key) > 8 ? (int)strlen(key) : 8;
        if (h < sizeof header) h += (size_t)snprintf(header + h, sizeof header - h, " %*s", width, key);
        if (l < sizeof line) l += (size_t)snprintf(line + l, sizeof line - l, " %*s", width, value);
      } while (accept(j, ','));
    expect(j, '}');
    if (row++ == 0) printf("%s\n", header);
    printf("%s\n", line);
  } while (accept(j, ','));
  expect(j, ']');
}

static void object(json *j, int index) {
  expect(j, '{');
  printf("%sstatistics%s\n", index ? "\n" : "", index ? " (next snapshot)" : "");
  if (accept(j, '}')) return;
  do {
    char key[64], value[64], human[32];
    string(j, key, sizeof key);
    expect(j, ':');
    skip_space(j);
    if (accept(j, '[')) {
      table(j, key);
      continue;
    }
    scalar(j, value, sizeof value);
    if (ends_with(key, "_bytes"))
      printf("  %-26s %16s  %s\n", key, value, cli_bytes(strtod(value, NULL), human, sizeof human));
    else
      printf("  %-26s %16s\n", key, value);
  } while (accept(j, ','));
  expect(j, '}');
}

static int stats_main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--help") == 0) {
    printf("usage: %s", cli_stats.usage);
    return 0;
  }
  if (argc != 2) cli_usage_error(&cli_stats, "one statistics file, please");
  FILE *f = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "r");
  if (f == NULL) cli_fail("cannot read %s: %s", argv[1], strerror(errno));
  char *text = NULL;
  size_t len = 0;
  if (getdelim(&text, &len, '\0', f) < 0) cli_fail("%s is empty", argv[1]);
  if (f != stdin) fclose(f);
  json j = {text, text, argv[1]};
  int n = 0;
  /* STRATA_STATS_FILE appends: read every object, skipping text between them */
  for (skip_space(&j); *j.p != '\0'; skip_space(&j)) {
    if (*j.p != '{') json_fail(&j, "expected '{'");
    object(&j, n++);
  }
  if (n == 0) cli_fail("%s holds no statistics", argv[1]);
  free(text);
  return 0;
}

const cli_command cli_stats = {"stats", "pretty-print statistics written as JSON (STRATA_STATS=json)",
                               "strata stats FILE|-\n", stats_main};
