/*
 * options.h — the run-time option table (STYLE.md §9).
 *
 * Owns: the one list of options. The X-macro generates the enum, the defaults, the
 * environment names (STRATA_<NAME>) and the help text, so they cannot drift apart.
 * Options are read once, from the environment, without allocating; a bad value gets a
 * warning and the default. Reads after st__options_init are plain loads.
 */
#ifndef ST_BASE_OPTIONS_H
#define ST_BASE_OPTIONS_H

#include <stdbool.h>

#include "base/macros.h"

/* Builds configured with -DSTRATA_HARDENED_DEFAULT=ON run hardened unless STRATA_HARDENED=0. */
#ifndef ST_HARDENED_DEFAULT
#define ST_HARDENED_DEFAULT 0
#endif

/* X(ENUM_NAME, default, min, max, help) — every value is a long. */
#define ST_OPTION_LIST(X)                                                                       \
  X(VERBOSE, 0, 0, 2, "Print warnings (1) and a summary line at exit (1) or more detail (2)")  \
  X(PURGE_DELAY_MS, 250, -1, 3600000,                                                            \
    "Milliseconds a free span stays resident before it is purged; 0 purges at once, -1 never")  \
  X(PURGE_RETAIN_KB, 4096, 0, 1048576,                                                          \
    "After memory in use collapses below 1/32 of a recent peak, dirty free memory a shard "    \
    "keeps (at least 1/8 of the pages in use); more is purged at once")                         \
  X(PURGE_LAZY, 0, 0, 1,                                                                        \
    "Purge with MADV_FREE (the kernel reclaims the pages only under memory pressure) "          \
    "instead of MADV_DONTNEED")                                                                 \
  X(HUGE_THRESHOLD_KB, 8192, 256, 1048576,                                                       \
    "Requests above this many KiB are mapped directly and unmapped on free")                    \
  X(HUGE_PAGES, 1, 0, 1,                                                                        \
    "Ask the kernel for transparent huge pages (MADV_HUGEPAGE) on blocks mapped directly: "     \
    "one page fault per 2 MiB instead of per 4 KiB; a sparsely written block becomes "          \
    "resident 2 MiB at a time")                                                                 \
  X(HUGE_CACHE_KB, 65536, 0, 1048576,                                                           \
    "Freed huge blocks up to this many KiB (in all) stay mapped for the next huge request, "   \
    "until the purge delay passes or strata maps new memory; 0 unmaps each one at its free")   \
  X(SHARDS, 0, 0, 64, "Number of page-heap shards; 0 means one per CPU the process may use") \
  X(GC_GROWTH_PERCENT, 100, 10, 10000,                                                          \
    "Garbage collector: collect when the bytes allocated since the last collection reach "     \
    "this percentage of the bytes that survived it")                                           \
  X(GC_MIN_TRIGGER_KB, 4096, 64, 4194304,                                                       \
    "Garbage collector: never collect automatically before this many KiB were allocated "     \
    "since the last collection")                                                               \
  X(GC_HEAP_LIMIT_MB, 0, 0, 16777216,                                                           \
    "Garbage collector: initial heap limit in MiB (0 = none); st_gc_set_heap_limit changes it") \
  X(GC_MARK_STACK_KB, 16384, 4, 1048576,                                                        \
    "Garbage collector: the mark stack grows up to this many KiB; beyond it marking "          \
    "recovers by rescanning the heap")                                                         \
  X(GC_PURGE_CYCLES, 4, 1, 1000000,                                                             \
    "Garbage collector: a free block left unused for this many collections is purged "         \
    "(its memory goes back to the kernel)")                                                    \
  X(STATS, 0, 0, 2, "Print statistics at exit: 1 (or text) a table, 2 (or json) one JSON object") \
  X(LEAKS, 0, 0, 1,                                                                             \
    "Record each block's allocation call stack and report unreachable blocks at exit as leaks") \
  X(LEAKS_EXITCODE, 23, 0, 255, "Exit status of a process in which STRATA_LEAKS found leaks") \
  X(LEAKS_DEPTH, 16, 1, 64, "Call stack frames recorded per block with STRATA_LEAKS")         \
  X(HARDENED, ST_HARDENED_DEFAULT, 0, 1,                                                        \
    "Hardened mode: canaries, fill on free, a quarantine, guard pages and shuffled slabs "      \
    "(docs/security.md); the default is 1 in builds with STRATA_HARDENED_DEFAULT")             \
  X(HARDENED_FILL, 256, 0, 1048576,                                                              \
    "Hardened mode: bytes at the start of a freed block that are filled, and checked for "      \
    "writes after free when the block leaves the quarantine (its mark, canary and size word "   \
    "are always checked); 0 fills and checks the whole block")

/* Options that take a word for a number: X(ENUM_NAME, word, value). */
#define ST_OPTION_WORDS(X)                                                                      \
  X(STATS, "text", 1)                                                                           \
  X(STATS, "json", 2)

/* Options whose value is a string (a name or a path): X(ENUM_NAME, help). Unset or empty is
 * NULL. The layer that reads a name checks it and warns (STRATEGY: api/dispatch.c). */
#define ST_STRING_OPTION_LIST(X)                                                                \
  X(STRATEGY, "The allocation strategy serving the process: default, first-fit, next-fit, "    \
    "best-fit, worst-fit, segregated, buddy or bitmap (docs/strategies.md); an unknown name "  \
    "gets a warning listing the valid ones, and the default")                                  \
  X(STATS_FILE, "File the exit statistics are written to (appended) instead of stderr")       \
  X(DUMP_AT_EXIT, "File a JSON heap dump (st_heap_dump) is written to at exit")

typedef enum st_option_id {
#define ST_OPTION_ENUM(name, def, lo, hi, help) ST_OPTION_##name,
  ST_OPTION_LIST(ST_OPTION_ENUM)
#undef ST_OPTION_ENUM
  ST_OPTION_COUNT
} st_option_id;

typedef enum st_string_option_id {
#define ST_STRING_OPTION_ENUM(name, help) ST_STRING_OPTION_##name,
  ST_STRING_OPTION_LIST(ST_STRING_OPTION_ENUM)
#undef ST_STRING_OPTION_ENUM
  ST_STRING_OPTION_COUNT
} st_string_option_id;

typedef struct st_option_word {
  int option;       /* st_option_id */
  const char *word; /* accepted instead of a number */
  long value;
} st_option_word;

typedef struct st_string_option_desc {
  const char *env_name;
  const char *help;
} st_string_option_desc;

typedef struct st_option_desc {
  const char *env_name; /* "STRATA_VERBOSE" */
  long default_value;
  long min, max;
  const char *help;
} st_option_desc;

ST_HIDDEN extern long st__option_values[ST_OPTION_COUNT];
ST_HIDDEN extern const st_option_desc st__option_descs[ST_OPTION_COUNT];
ST_HIDDEN extern const st_option_word st__option_words[];
ST_HIDDEN extern const int st__option_word_count;
ST_HIDDEN extern const st_string_option_desc st__string_option_descs[ST_STRING_OPTION_COUNT];
ST_HIDDEN extern const char *st__string_option_values[ST_STRING_OPTION_COUNT];

/* Reads every STRATA_* variable, once per process: the core, the dispatch and the collector each
 * call it before their first use, from any thread; later calls return at once. */
ST_HIDDEN void st__options_init(void);
/* Reads the environment again (tests that change it; single-threaded). */
ST_HIDDEN void st__options_reload(void);
/* One option's value in the environment now, leaving the table unread: for a constructor,
 * which runs before main and so before a program that sets STRATA_* with setenv (a forked
 * child choosing its strategy, say) has done so. */
ST_HIDDEN long st__option_peek(st_option_id id);

ST_INLINE long st_option(st_option_id id) { return st__option_values[id]; }
/* The environment's string (not copied: environ outlives every caller), or NULL. */
ST_INLINE const char *st_option_string(st_string_option_id id) { return st__string_option_values[id]; }

#endif
