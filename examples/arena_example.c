/*
 * arena_example.c — a per-request arena: parse a line into tokens allocated from an arena,
 * use them, and drop everything in one call. A mark rewinds scratch work within a request.
 *
 *   cc arena_example.c -lstrata && ./a.out
 */
#include <stdio.h>
#include <string.h>

#include "strata.h"

typedef struct token {
  const char *text;
  struct token *next;
} token;

/* Splits line at spaces; every token and its text live in the arena. */
static token *tokenize(st_arena_t *a, const char *line) {
  token *head = NULL, **tail = &head;
  for (const char *p = line; *p;) {
    while (*p == ' ') p++;
    size_t n = strcspn(p, " ");
    if (n == 0) break;
    token *t = st_arena_alloc(a, sizeof *t);
    char *text = st_arena_alloc(a, n + 1);
    if (t == NULL || text == NULL) return NULL;
    memcpy(text, p, n);
    text[n] = '\0';
    *t = (token){text, NULL};
    *tail = t, tail = &t->next;
    p += n;
  }
  return head;
}

int main(void) {
  st_arena_t *a = st_arena_create(&(st_arena_options){.chunk_size = 4096, .max_bytes = 1 << 20});
  if (a == NULL) return 1;
  const char *requests[] = {"GET /index.html HTTP/1.1", "POST /api/items HTTP/1.1",
                            "GET /favicon.ico HTTP/1.0"};
  for (size_t r = 0; r < sizeof requests / sizeof requests[0]; r++) {
    token *t = tokenize(a, requests[r]);
    st_arena_mark_t scratch = st_arena_mark(a);
    char *upper = st_arena_strdup(a, t->text); /* scratch work, released below */
    for (char *c = upper; *c; c++) *c = (char)(*c | 0x20);
    printf("request %zu: method %s (%s), path %s\n", r, t->text, upper, t->next->text);
    st_arena_release(a, scratch);
    st_arena_stats s;
    st_arena_stats_get(a, &s);
    printf("  arena: %zu bytes used, %zu reserved in %zu chunks\n", s.used_bytes,
           s.reserved_bytes, s.chunks);
    st_arena_reset(a); /* the whole request's memory at once */
  }
  st_arena_destroy(a);
  return 0;
}
