/*
 * leak_program.c — a program with one planted leak, run under STRATA_LEAKS=1 by
 * check_debug.py: the report must name planted_leak_site (built with -g -O0) and not the
 * blocks still referenced from a global or from another block.
 * Argument "clean": frees everything, so no leak is reported and the exit status is 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
  struct node *next;
  char payload[40];
};

static struct node *reachable_list; /* a root in .bss: its chain is not a leak */

__attribute__((noinline)) static void *planted_leak_site(void) {
  char *p = malloc(4321);
  memset(p, 'x', 4321);
  return p;
}

__attribute__((noinline)) static void build_reachable_list(void) {
  for (int i = 0; i < 10; i++) {
    struct node *n = malloc(sizeof *n);
    n->next = reachable_list;
    reachable_list = n;
  }
}

int main(int argc, char **argv) {
  int clean = argc > 1 && strcmp(argv[1], "clean") == 0;
  build_reachable_list();
  void *leaked = planted_leak_site();
  if (clean) free(leaked);
  leaked = NULL;
  printf("leak_program: done\n");
  return 0;
}
