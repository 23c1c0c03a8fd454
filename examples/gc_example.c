/*
 * gc_example.c — a program that never frees: strata's garbage collector reclaims for it.
 *
 * It builds a sorted list of words many times over; each rebuild drops the previous list
 * without a single free. The list cells hold pointers (st_gc_malloc, scanned), the words are
 * plain bytes (st_gc_malloc_atomic, never scanned). A global keeps the current list alive;
 * a finalizer counts the cells reclaimed. At the end, the heap is a small multiple of the
 * live list although the program allocated far more.
 * Build: cc gc_example.c $(pkg-config --cflags --libs strata)
 */
#include <stdio.h>
#include <string.h>

#include "strata.h"

typedef struct cell {
  struct cell *next;
  char *word; /* atomic: holds no pointers */
} cell;

static cell *current; /* a root: the data segment is scanned */
static size_t reclaimed;

static void count_reclaimed(void *obj, void *data) {
  (void)obj, (void)data;
  reclaimed++;
}

static char *gc_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = st_gc_malloc_atomic(n);
  if (copy != NULL) memcpy(copy, s, n);
  return copy;
}

/* Inserts a copy of word in sorted order into the list at *head. */
static int insert_sorted(cell **head, const char *word) {
  cell *c = st_gc_malloc(sizeof *c);
  if (c == NULL || (c->word = gc_strdup(word)) == NULL) return -1;
  while (*head != NULL && strcmp((*head)->word, word) < 0) head = &(*head)->next;
  c->next = *head;
  *head = c;
  return 0;
}

int main(void) {
  static const char *words[] = {"pear", "apple", "fig", "kiwi", "plum", "cherry", "lime", "date"};
  char word[32];
  for (int round = 0; round < 2000; round++) {
    cell *list = NULL;
    for (int i = 0; i < 200; i++) {
      snprintf(word, sizeof word, "%s-%03d", words[(i * 5 + round) % 8], i % 100);
      if (insert_sorted(&list, word) != 0) return 1;
    }
    if (round % 500 == 0) st_gc_register_finalizer(list, count_reclaimed, NULL);
    current = list; /* the previous list becomes garbage */
  }
  current = NULL;
  st_gc_collect();
  st_gc_collect();
  st_gc_stats stats;
  st_gc_get_stats(&stats);
  printf("allocated %zu KiB in all; heap now %zu KiB; %zu collections; "
         "longest pause %.2f ms; finalized heads %zu\n",
         stats.allocated_bytes >> 10, stats.heap_bytes >> 10, stats.collections,
         (double)stats.max_pause_ns / 1e6, reclaimed);
  return stats.collections > 0 && stats.heap_bytes < stats.allocated_bytes / 4 ? 0 : 1;
}
