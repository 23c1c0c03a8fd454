/*
 * memory_layout.c — where things live in a process, and where strata's memory is.
 *
 *   cc memory_layout.c -lstrata -o memory_layout && ./memory_layout
 *   LD_PRELOAD=libstrata.so STRATA_STRATEGY=buddy ./memory_layout   (any strategy)
 *
 * A program's address space, from low to high addresses on x86-64 Linux:
 *   text   the machine code (read-only, executable)   — main() is here
 *   data   initialised globals                         — `greeting` below
 *   bss    zero-initialised globals (no file bytes)    — `counter` below
 *   heap   the "program break" that brk/sbrk move: glibc's malloc grows it; strata never
 *          does (it maps memory with mmap, so its blocks live in anonymous mappings)
 *   ...    shared libraries and anonymous mappings (mmap): strata's regions are here
 *   stack  locals of the running functions, near the top, growing down
 * The program prints one address of each kind, then every line of /proc/self/maps with the
 * sample addresses it contains, so each can be found in the map.
 */
#define _DEFAULT_SOURCE /* sbrk */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char etext, edata, end; /* set by the linker: ends of text, data and bss */

static const char greeting[] = "hello"; /* read-only data */
static int answer = 42;                 /* data */
static long counter;                    /* bss */

typedef struct sample {
  const char *what;
  uintptr_t addr;
} sample;

int main(void) {
  int local = 0;
  void *small = malloc(32), *medium = malloc(100000), *large = malloc(8u << 20);
  sample s[] = {
      {"text: main()", (uintptr_t)main},
      {"read-only data: greeting", (uintptr_t)greeting},
      {"data: answer", (uintptr_t)&answer},
      {"bss: counter", (uintptr_t)&counter},
      {"program break: sbrk(0)", (uintptr_t)sbrk(0)},
      {"malloc(32)", (uintptr_t)small},
      {"malloc(100000)", (uintptr_t)medium},
      {"malloc(8 MiB)", (uintptr_t)large},
      {"stack: a local", (uintptr_t)&local},
  };
  size_t n = sizeof s / sizeof s[0];
  printf("end of text %p, end of data %p, end of bss %p\n\n", (void *)&etext, (void *)&edata,
         (void *)&end);
  for (size_t i = 0; i < n; i++) printf("%-26s %#14lx\n", s[i].what, (unsigned long)s[i].addr);
  printf("\n/proc/self/maps (start-end perms offset dev inode path), with the samples inside:\n");
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return 1;
  char line[512];
  while (fgets(line, sizeof line, maps)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
    line[strcspn(line, "\n")] = '\0';
    printf("%s\n", line);
    for (size_t i = 0; i < n; i++)
      if (s[i].addr >= lo && s[i].addr < hi) printf("      ^ %s\n", s[i].what);
  }
  fclose(maps);
  printf("\nWith strata, the malloc samples sit in anonymous mappings (no path), not in\n"
         "[heap]: strata takes memory with mmap only. (%s %d %ld)\n",
         greeting, answer, counter);
  free(small);
  free(medium);
  free(large);
  return 0;
}
