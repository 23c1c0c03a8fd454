/* A program built against an installed strata, through pkg-config or find_package. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata.h>

int main(void) {
  char *a = st_malloc(100);
  char *b = malloc(100); /* the libc name: strata when linked with -lstrata */
  if (a == NULL || b == NULL) return 1;
  strcpy(a, "strata");
  strcpy(b, STRATA_VERSION);
  printf("%s %s %d\n", a, b, st_heap_validate());
  st_free(a);
  free(b);
  return 0;
}
