/*
 * check.h — the assertion helper every strata test uses (header only).
 *
 * Owns: CHECK / CHECK_EQ-style macros that print file:line and both values, a test-case
 * runner (in-process or forked) closing with one "N passed, N failed" line, and
 * expect_death, which requires a function to die of SIGABRT with a given stderr substring.
 * No framework: the code under test is the allocator, which the helper must not lean on
 * (it uses the stack, stdio and write(2) only). Checks are non-fatal, so one run shows every
 * broken row; REQUIRE ends the test case when going on would crash.
 */
#ifndef STRATA_TESTS_CHECK_H
#define STRATA_TESTS_CHECK_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Counters of the current process; a forked child has its own copy. */
static int check_failed_checks;                    /* failed CHECKs in the whole run */
static int check_case_failed;                      /* the current case saw a failure */
static int check_cases_passed, check_cases_failed; /* for the closing line */
enum { CHECK_PRINT_LIMIT = 40 };                   /* a broken loop must not flood the log */

__attribute__((format(printf, 3, 4))) static inline void check_fail_(const char *file, int line,
                                                                     const char *fmt, ...) {
  check_case_failed = 1;
  if (++check_failed_checks > CHECK_PRINT_LIMIT) return;
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout); /* keep stdout and stderr lines in order in the CTest log */
  fprintf(stderr, "%s:%d: FAILED: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (check_failed_checks == CHECK_PRINT_LIMIT) fputs("(further failures not printed)\n", stderr);
}

#define CHECK(cond) ((cond) ? 1 : (check_fail_(__FILE__, __LINE__, "CHECK(%s)", #cond), 0))
/* Like CHECK, with a printf-style explanation of the row being tested. */
#define CHECK_MSG(cond, fmt, ...)                                                                  \
  ((cond) ? 1 : (check_fail_(__FILE__, __LINE__, "CHECK(%s): " fmt, #cond, __VA_ARGS__), 0))
/* Integer and pointer comparisons: both operands are shown in decimal and hex. */
static inline int check_cmp_(const char *file, int line, const char *op, int ok, const char *ea,
                             const char *eb, uintmax_t a, uintmax_t b) {
  if (!ok) check_fail_(file, line, "%s %s %s: %ju (%#jx) vs %ju (%#jx)", ea, op, eb, a, a, b, b);
  return ok;
}
/* Each operand is evaluated once (a statement expression, gcc and clang) and stringified
 * by the public macro, before expansion (so errno prints as "errno"). */
#define CHECK_OP_(a, op, b, ea, eb)                                                                \
  __extension__({                                                                                  \
    uintmax_t check_a_ = (uintmax_t)(a), check_b_ = (uintmax_t)(b);                                \
    check_cmp_(__FILE__, __LINE__, #op, check_a_ op check_b_, ea, eb, check_a_, check_b_);         \
  })
#define CHECK_EQ(a, b) CHECK_OP_(a, ==, b, #a, #b)
#define CHECK_NE(a, b) CHECK_OP_(a, !=, b, #a, #b)
#define CHECK_LE(a, b) CHECK_OP_(a, <=, b, #a, #b)
#define CHECK_GE(a, b) CHECK_OP_(a, >=, b, #a, #b)
#define CHECK_GT(a, b) CHECK_OP_(a, >, b, #a, #b)
#define CHECK_LT(a, b) CHECK_OP_(a, <, b, #a, #b)
#define CHECK_ALIGNED(p, align) CHECK_EQ((uintptr_t)(p) % (uintptr_t)(align), 0)

/* Stops the current test case (the function must return void). */
#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!CHECK(cond)) return;                                                                      \
  } while (0)

/* Runs one test case and reports it; cases are `static void name(void)`. */
#define RUN_CASE(fn) check_run_case_(#fn, fn)
static inline void check_run_case_(const char *name, void (*fn)(void)) {
  check_case_failed = 0;
  fn();
  check_case_failed ? check_cases_failed++ : check_cases_passed++;
  printf("[%s] %s\n", check_case_failed ? "FAIL" : " ok ", name);
  fflush(stdout);
}

/* Runs one test case in a forked child: a crash fails that case and the next ones still run. */
#define RUN_CASE_FORKED(fn) check_run_case_forked_(#fn, fn)
static inline void check_run_case_forked_(const char *name, void (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    check_failed_checks = 0;
    fn();
    fflush(stdout);
    _exit(check_failed_checks ? 1 : 0);
  }
  int status = 0; /* the case's exit status, or the signal that killed it */
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
  int ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  ok ? check_cases_passed++ : check_cases_failed++;
  if (pid > 0 && WIFSIGNALED(status))
    fprintf(stderr, "%s: killed by %s\n", name, strsignal(WTERMSIG(status)));
  printf("[%s] %s\n", ok ? " ok " : "FAIL", name);
  fflush(stdout);
}

/* The closing line CTest logs and CI reads; returns the process exit status. */
static inline int check_summary(void) {
  printf("%d passed, %d failed\n", check_cases_passed, check_cases_failed);
  fflush(stdout);
  return check_cases_failed || check_failed_checks ? 1 : 0;
}

/* Runs fn(arg) in a forked child with stderr to a pipe; passes (returns 1) when the child
 * dies of SIGABRT and its stderr contains `expected`. */
#define expect_death(fn, arg, expected)                                                            \
  check_expect_death_(__FILE__, __LINE__, #fn, fn, arg, expected)
static inline int check_expect_death_(const char *file, int line, const char *name,
                                      void (*fn)(void *), void *arg, const char *expected) {
  int fds[2];
  fflush(NULL);
  if (pipe(fds) != 0) return CHECK(!"pipe() failed");
  pid_t pid = fork();
  if (pid < 0) return CHECK(!"fork() failed");
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    dup2(fds[1], STDERR_FILENO), close(fds[0]), close(fds[1]);
    fn(arg);
    _exit(0); /* fn was supposed to abort */
  }
  close(fds[1]);
  char buf[4096], sink[512];
  size_t len = 0;
  ssize_t n;
  do { /* drain even when buf is full, so the child never blocks on a full pipe */
    size_t room = sizeof buf - 1 - len;
    n = room ? read(fds[0], buf + len, room) : read(fds[0], sink, sizeof sink);
    if (n > 0 && room) len += (size_t)n;
  } while (n > 0 || (n < 0 && errno == EINTR));
  buf[len] = '\0';
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
  int died = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  int said = strstr(buf, expected) != NULL;
  if (!died || !said)
    check_fail_(file, line, "expect_death(%s): %s (status %#x); wanted \"%s\" in stderr:\n%s", name,
                died ? "aborted" : "did not abort", (unsigned)status, expected, buf);
  return died && said;
}
#endif
