/*
 * report.h — messages to stderr that never allocate, and the fatal-error exit.
 *
 * Owns: the one place strata writes diagnostics. Formatting is done here on the stack
 * (a subset of printf: %s %d %u %zu %zx %x %p %%) because stdio may call malloc.
 * Every diagnostic is one line starting with "strata: ".
 */
#ifndef ST_BASE_REPORT_H
#define ST_BASE_REPORT_H

#include <stdarg.h>
#include <stddef.h>

#include "base/macros.h"

/* Writes "strata: <formatted>\n" to stderr. */
ST_HIDDEN void st__report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes the diagnostic, then abort()s. */
ST_HIDDEN ST_COLD ST_NOINLINE _Noreturn void st__fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Formats into buf (always NUL-terminated); returns the length written. */
ST_HIDDEN size_t st__format(char *buf, size_t cap, const char *fmt, va_list ap);
ST_HIDDEN size_t st__format_to(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
