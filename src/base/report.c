/*
 * report.c — allocation-free formatting and the fatal-error path (see report.h).
 */
#include "base/report.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct format_out {
  char *buf;
  size_t cap; /* includes the terminating NUL */
  size_t len;
} format_out;

static void out_char(format_out *o, char c) {
  if (o->len + 1 < o->cap) o->buf[o->len++] = c;
}

static void out_str(format_out *o, const char *s) {
  if (s == NULL) s = "(null)";
  while (*s) out_char(o, *s++);
}

static void out_unsigned(format_out *o, uintmax_t v, unsigned base) {
  char digits[32];
  int n = 0;
  do {
    unsigned d = (unsigned)(v % base);
    digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v != 0);
  while (n > 0) out_char(o, digits[--n]);
}

static void out_signed(format_out *o, intmax_t v) {
  if (v < 0) {
    out_char(o, '-');
    out_unsigned(o, (uintmax_t)(-(v + 1)) + 1, 10);
  } else {
    out_unsigned(o, (uintmax_t)v, 10);
  }
}

/* Handles one conversion after '%'; returns the position after it. */
static const char *out_conversion(format_out *o, const char *f, va_list *ap) {
  int size_mod = 0, long_mod = 0;
  if (*f == 'z') size_mod = 1, f++;
  while (*f == 'l') long_mod++, f++;
  switch (*f) {
  case 's': out_str(o, va_arg(*ap, const char *)); break;
  case 'c': out_char(o, (char)va_arg(*ap, int)); break;
  case 'p':
    out_str(o, "0x");
    out_unsigned(o, (uintptr_t)va_arg(*ap, void *), 16);
    break;
  case 'd':
    if (size_mod) out_signed(o, (intmax_t)va_arg(*ap, ptrdiff_t));
    else if (long_mod) out_signed(o, (intmax_t)va_arg(*ap, long));
    else out_signed(o, va_arg(*ap, int));
    break;
  case 'u':
  case 'x': {
    unsigned base = *f == 'x' ? 16 : 10;
    if (size_mod) out_unsigned(o, va_arg(*ap, size_t), base);
    else if (long_mod) out_unsigned(o, va_arg(*ap, unsigned long), base);
    else out_unsigned(o, va_arg(*ap, unsigned), base);
    break;
  }
  case '%': out_char(o, '%'); break;
  case '\0': return f;
  default: out_char(o, '?'); break;
  }
  return f + 1;
}

size_t st__format(char *buf, size_t cap, const char *fmt, va_list ap) {
  format_out o = {buf, cap, 0};
  va_list args;
  va_copy(args, ap);
  while (*fmt) {
    if (*fmt == '%') fmt = out_conversion(&o, fmt + 1, &args);
    else out_char(&o, *fmt++);
  }
  va_end(args);
  if (cap > 0) buf[o.len] = '\0';
  return o.len;
}

size_t st__format_to(char *buf, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = st__format(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

static void report_line(const char *fmt, va_list ap) {
  char line[512] = "strata: ";
  size_t n = 8 + st__format(line + 8, sizeof line - 9, fmt, ap);
  line[n++] = '\n';
  for (size_t off = 0; off < n;) {
    ssize_t w = write(STDERR_FILENO, line + off, n - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
}

void st__report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_line(fmt, ap);
  va_end(ap);
}

void st__fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report_line(fmt, ap);
  va_end(ap);
  abort();
}
