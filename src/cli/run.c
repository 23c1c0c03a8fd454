/*
 * run.c — `strata run [OPTIONS] [--] PROGRAM ARGS`: runs a program on strata (LD_PRELOAD)
 * with strata's options given as flags, and exits with the program's status.
 *
 * Owns: the mapping from flags to STRATA_* variables. It is generated from the option table
 * (src/base/options.h, X-macros only: nothing of libstrata is called), so every option has
 * its flag: STRATA_PURGE_DELAY_MS is --purge-delay-ms=N. A few flags are shorter or take no
 * value: --strategy=NAME, --purge-delay=MS, and an option flag without "=VALUE" means 1.
 * Values are checked against the table's bounds here, so a bad one is a usage error (exit
 * 2) rather than a warning in the program's output.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/options.h"
#include "cli/cli.h"
#include "strata.h"

typedef struct flag_desc {
  const char *env;  /* STRATA_ name */
  long lo, hi;      /* bounds; lo > hi for a string (a path) */
  const char *help;
} flag_desc;

static const flag_desc flag_table[] = {
#define FLAG_NUMBER(name, def, lo, hi, help) {"STRATA_" #name, lo, hi, help},
    ST_OPTION_LIST(FLAG_NUMBER)
#undef FLAG_NUMBER
#define FLAG_STRING(name, help) {"STRATA_" #name, 1, 0, help},
    ST_STRING_OPTION_LIST(FLAG_STRING)
#undef FLAG_STRING
};

static const struct {
  const char *env, *word;
} word_table[] = {
#define FLAG_WORD(name, word, value) {"STRATA_" #name, word},
    ST_OPTION_WORDS(FLAG_WORD)
#undef FLAG_WORD
};

/* Short names for the flags people type most. */
static const struct {
  const char *flag, *env;
} alias_table[] = {
    {"purge-delay", "STRATA_PURGE_DELAY_MS"},
    {"huge-threshold", "STRATA_HUGE_THRESHOLD_KB"},
};

/* The flag spelling of an environment name: STRATA_PURGE_DELAY_MS -> purge-delay-ms. */
static void flag_name(const char *env, char *out, size_t size) {
  size_t i = 0;
  for (const char *p = env + 7; *p != '\0' && i + 1 < size; p++)
    out[i++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
  out[i] = '\0';
}

static const flag_desc *find_flag_env(const char *env) {
  for (size_t i = 0; i < sizeof flag_table / sizeof flag_table[0]; i++)
    if (strcmp(flag_table[i].env, env) == 0) return &flag_table[i];
  return NULL;
}

static const flag_desc *find_flag(const char *name, size_t len) {
  char env[64];
  for (size_t i = 0; i < sizeof alias_table / sizeof alias_table[0]; i++)
    if (strlen(alias_table[i].flag) == len && strncmp(name, alias_table[i].flag, len) == 0)
      return find_flag_env(alias_table[i].env);
  for (size_t i = 0; i < sizeof flag_table / sizeof flag_table[0]; i++) {
    flag_name(flag_table[i].env, env, sizeof env);
    if (strlen(env) == len && strncmp(env, name, len) == 0) return &flag_table[i];
  }
  return NULL;
}

static int value_ok(const flag_desc *f, const char *value) {
  if (f->lo > f->hi) return value[0] != '\0';
  for (size_t i = 0; i < sizeof word_table / sizeof word_table[0]; i++)
    if (strcmp(word_table[i].env, f->env) == 0 && strcmp(word_table[i].word, value) == 0) return 1;
  static const char *const booleans[] = {"yes", "no", "true", "false", "on", "off"};
  if (f->lo == 0 && f->hi == 1)
    for (size_t i = 0; i < sizeof booleans / sizeof booleans[0]; i++)
      if (strcmp(value, booleans[i]) == 0) return 1;
  char *end;
  long v = strtol(value, &end, 10);
  return end != value && *end == '\0' && v >= f->lo && v <= f->hi;
}

/* "default first-fit ..." from the library's own names. */
static const char *strategy_names(void) {
  static char names[256];
  size_t n = 0;
  for (int s = 0; s < ST_STRATEGY_COUNT && n < sizeof names; s++)
    n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", s ? " " : "",
                          st_strategy_name((st_strategy)s));
  return names;
}

static void print_flags(FILE *out) {
  fprintf(out, "  --%-24s STRATA_STRATEGY: %s\n", "strategy=NAME", strategy_names());
  for (size_t i = 0; i < sizeof flag_table / sizeof flag_table[0]; i++) {
    char name[64], spelled[80];
    flag_name(flag_table[i].env, name, sizeof name);
    snprintf(spelled, sizeof spelled, "%s%s", name, flag_table[i].lo > flag_table[i].hi ? "=PATH" : "[=N]");
    fprintf(out, "  --%-24s %s\n", spelled, flag_table[i].env);
  }
  fprintf(out, "  --purge-delay=MS, --huge-threshold=KB: short for the -ms and -kb flags\n");
}

/* Parses the option flags before PROGRAM into env[] ("NAME=value" strings); returns the
 * index of PROGRAM in argv. Shared by `run` and `trace`. */
int cli_parse_strata_flags(const cli_command *cmd, int argc, char **argv, const char **env,
                           int max_env, int *nenv) {
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) return i + 1;
    if (strncmp(a, "--", 2) != 0) return i;
    if (strcmp(a, "--help") == 0) {
      printf("usage: %s\noptions (each sets a STRATA_* variable, docs/options.md):\n", cmd->usage);
      print_flags(stdout);
      exit(0);
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const char *value = eq ? eq + 1 : "1";
    char *setting;
    if (len == 8 && strncmp(name, "strategy", 8) == 0) {
      st_strategy s;
      if (eq == NULL || st_strategy_from_name(value, &s) != 0)
        cli_usage_error(cmd, "--strategy wants one of %s", strategy_names());
      if (asprintf(&setting, "STRATA_STRATEGY=%s", value) < 0) cli_fail("out of memory");
    } else {
      const flag_desc *f = find_flag(name, len);
      if (f == NULL) cli_usage_error(cmd, "unknown option %s", a);
      if (f->lo > f->hi && eq == NULL) cli_usage_error(cmd, "%s wants =PATH", a);
      if (!value_ok(f, value))
        cli_usage_error(cmd, "bad value '%s' for %.*s (%s)", value, (int)len + 2, a, f->help);
      if (asprintf(&setting, "%s=%s", f->env, value) < 0) cli_fail("out of memory");
    }
    if (*nenv + 1 >= max_env) cli_usage_error(cmd, "too many options");
    env[(*nenv)++] = setting;
    env[*nenv] = NULL;
  }
  return i;
}

/* Waits for the program, says how it ended if it did not end normally, and returns the
 * exit status a shell would give it (128 + signal when killed). */
int cli_finish_program(const char *program, pid_t pid) {
  harness_exit e;
  if (harness_wait(pid, &e) != 0) cli_fail("lost %s: %s", program, strerror(errno));
  char why[128];
  if (e.signaled) {
    fprintf(stderr, "strata: %s %s\n", program, cli_describe_exit(&e, why, sizeof why));
    return 128 + e.code;
  }
  return e.code;
}

/* The program must exist before anything runs: a clear message and 127, as a shell. */
void cli_check_program(const char *program) {
  if (!harness_on_path(program)) {
    fprintf(stderr, "strata: %s: program not found\n", program);
    exit(127);
  }
}

static int run_main(int argc, char **argv) {
  const char *env[64] = {NULL};
  int nenv = 0;
  int first = cli_parse_strata_flags(&cli_run, argc, argv, env, 64, &nenv);
  if (first >= argc) cli_usage_error(&cli_run, "no program to run");
  const char *lib = cli_strata_library();
  if (lib[0] == '\0') cli_fail("libstrata.so not found beside the strata command");
  cli_check_program(argv[first]);
  char **envp = harness_env(lib, env);
  /* Like a shell running a foreground job: the terminal's signals reach the program (same
   * process group); this process waits them out. */
  pid_t pid = harness_spawn(argv + first, envp, -1, -1, 0);
  if (pid < 0) cli_fail("fork: %s", strerror(errno));
  /* Set after the fork: an ignored signal would stay ignored in the program. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  return cli_finish_program(argv[first], pid);
}

const cli_command cli_run = {
    "run", "run a program on strata, with strata's options as flags",
    "strata run [--strategy=NAME] [--stats[=json]] [--leaks] [--OPTION[=VALUE]]... [--] PROGRAM "
    "[ARGS...]\n",
    run_main};
