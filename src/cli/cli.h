/*
 * cli.h — what the files of the strata command share (docs/cli.md).
 *
 * The command is a program, not part of libstrata: it starts other programs under an
 * allocator (src/harness/), never calls the allocator it measures, and links only the
 * prefixed library (for strategy names). One file per subcommand: run.c (run), compare.c
 * (compare), trace_cmd.c (trace, summary), replay.c (replay and its worker), views.c (heap,
 * stats); main.c dispatches and owns the helpers declared here. Single-threaded but for
 * the replay worker's threads.
 */
#ifndef ST_CLI_H
#define ST_CLI_H

#include <limits.h>
#include <stdio.h>

#include "harness/harness.h"

/* Exit status of a bad command line, and of the command's own failures. */
enum { CLI_EXIT_USAGE = 2, CLI_EXIT_FAILED = 1 };

/* One subcommand: its name, one line of help, its usage text and its entry point. */
typedef struct cli_command {
  const char *name, *summary, *usage;
  int (*main)(int argc, char **argv); /* argv[0] is the subcommand's name */
} cli_command;

/* Prints "strata NAME: message" and the subcommand's usage on stderr; exits 2. */
__attribute__((noreturn, format(printf, 2, 3))) void cli_usage_error(const cli_command *cmd,
                                                                      const char *fmt, ...);
/* Prints "strata: message" on stderr and exits with CLI_EXIT_FAILED. */
__attribute__((noreturn, format(printf, 1, 2))) void cli_fail(const char *fmt, ...);

/* Whether progress lines go to stderr: only when it is a terminal. */
int cli_progress_enabled(void);
/* One progress line, rewritten in place ("\r", cleared at the next cli_progress_done). */
__attribute__((format(printf, 1, 2))) void cli_progress(const char *fmt, ...);
void cli_progress_done(void);

/* Where the libraries this strata command belongs to are: libstrata.so (for run, compare,
 * replay) and libstrata-trace.so (for trace); "" when not found. Next to the executable
 * in a build tree, in ../LIBDIR when installed. */
const char *cli_strata_library(void);
const char *cli_trace_library(void);
/* The heap picture program (strata-heap-svg), or "" when not found. */
const char *cli_heap_svg_tool(void);

/* Parses a number in [lo, hi] for option `opt` of cmd, or exits 2. */
long cli_number(const cli_command *cmd, const char *opt, const char *text, long lo, long hi);

/* Resolves a comma-separated list of allocator specs (harness_alloc_find) into out[max];
 * unknown names exit 2, allocators that are not installed are listed on stderr with their
 * Debian package and left out. "all" means glibc and every peer and strata. Returns the
 * count of usable ones. */
int cli_allocators(const cli_command *cmd, const char *list, harness_alloc *out, int max);
/* The environment a program runs under a: LD_PRELOAD, and STRATA_STRATEGY for strata:NAME. */
char **cli_alloc_env(const harness_alloc *a);
/* "strata:NAME" for every strategy, in out[max]; returns the count. */
int cli_all_strategies(harness_alloc *out, int max);

/* Describes how a child ended in buf ("exit status 3", "killed by signal 11 (Segmentation
 * fault)", "not found"). */
const char *cli_describe_exit(const harness_exit *e, char *buf, size_t size);

/* "1.5 MiB"-style byte counts in buf. */
const char *cli_bytes(double bytes, char *buf, size_t size);

/* run.c: the option flags before PROGRAM into env[max_env] ("STRATA_X=value", NULL after
 * the last; *nenv counts them); returns PROGRAM's index in argv (argc: none). --help prints
 * the flags and exits 0; a bad flag or value exits 2. */
int cli_parse_strata_flags(const cli_command *cmd, int argc, char **argv, const char **env,
                           int max_env, int *nenv);
/* run.c: exits 127 with "PROGRAM: program not found" unless it can be run. */
void cli_check_program(const char *program);
/* run.c: waits for a program started by harness_spawn; reports a crash on stderr; returns
 * the status a shell would give (128 + signal when killed). */
int cli_finish_program(const char *program, pid_t pid);

extern const cli_command cli_run, cli_compare, cli_trace, cli_summary, cli_replay,
    cli_replay_worker, cli_heap, cli_stats;

#endif
