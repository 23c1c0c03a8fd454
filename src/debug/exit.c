/*
 * exit.c — what strata reports when the process exits (STRATA_DUMP_AT_EXIT, STRATA_STATS,
 * STRATA_LEAKS), in that order: the leak report comes last because a leak ends the
 * process with STRATA_LEAKS_EXITCODE (after flushing stdio), as LeakSanitizer does.
 * Runs as a destructor: after main returned or exit() was called and the program's atexit
 * handlers ran, before the stdio buffers are flushed.
 */
#include <stdio.h>
#include <unistd.h>

#include "base/options.h"
#include "base/report.h"
#include "core/thread.h"
#include "debug/debug.h"
#include "debug/leaks.h"
#include "debug/track.h"

/* The named file (appended to), or stderr; *opened tells whether to close it. */
static FILE *open_output(st_string_option_id option, bool *opened) {
  const char *path = st_option_string(option);
  *opened = false;
  if (path == NULL) return stderr;
  FILE *f = fopen(path, "a");
  if (f == NULL) {
    st__report("warning: cannot open %s=%s; writing to stderr", st__string_option_descs[option].env_name, path);
    return stderr;
  }
  *opened = true;
  return f;
}

static void write_dump(void) {
  const char *path = st_option_string(ST_STRING_OPTION_DUMP_AT_EXIT);
  if (path == NULL) return;
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    st__report("warning: cannot open STRATA_DUMP_AT_EXIT=%s", path);
    return;
  }
  st_heap_dump(f, ST_DUMP_JSON);
  fclose(f);
}

static void write_stats(void) {
  long mode = st_option(ST_OPTION_STATS);
  if (mode == 0) return;
  bool opened;
  FILE *f = open_output(ST_STRING_OPTION_STATS_FILE, &opened);
  st_stats_print(f, mode == 2 ? ST_STATS_JSON : ST_STATS_TEXT);
  if (opened) fclose(f);
}

__attribute__((destructor)) static void debug_report_at_exit(void) {
  if (!st__core_initialized()) return;
  /* Nothing asked for: return before touching the tracker, whose code is then never run. */
  if (st_option_string(ST_STRING_OPTION_DUMP_AT_EXIT) == NULL && st_option(ST_OPTION_STATS) == 0 &&
      st_option(ST_OPTION_LEAKS) == 0)
    return;
  st__track_set_busy(true); /* stdio's own buffers are not the program's leaks */
  write_dump();
  write_stats();
  st__track_set_busy(false);
  if (st_option(ST_OPTION_LEAKS) == 0) return;
  if (st__leaks_report(stderr) == 0) return;
  fflush(NULL);
  _exit((int)st_option(ST_OPTION_LEAKS_EXITCODE));
}
