/*
 * list.h — intrusive doubly linked lists.
 *
 * Owns: list links embedded in the structs they chain (spans, thread caches). A list head
 * is a sentinel node pointing to itself when empty, so insertion and removal never branch
 * on emptiness. Not thread safe: the owner of the list serialises access.
 */
#ifndef ST_BASE_LIST_H
#define ST_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/macros.h"

typedef struct st_list {
  struct st_list *next, *prev;
} st_list_t;

#define ST_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

ST_INLINE void st_list_init(st_list_t *head) { head->next = head->prev = head; }
ST_INLINE bool st_list_empty(const st_list_t *head) { return head->next == head; }
/* A node not on any list has both links NULL (see st_list_remove). */
ST_INLINE bool st_list_linked(const st_list_t *node) { return node->next != NULL; }

ST_INLINE void st_list_push_front(st_list_t *head, st_list_t *node) {
  node->next = head->next;
  node->prev = head;
  head->next->prev = node;
  head->next = node;
}

ST_INLINE void st_list_push_back(st_list_t *head, st_list_t *node) {
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}

ST_INLINE void st_list_remove(st_list_t *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->next = node->prev = NULL;
}

#define st_list_for_each_safe(pos, tmp, head)                                                   \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

/* Moves every node of `from` except `keep` (which may be NULL or not on the list) to the
 * front of `into`. */
ST_INLINE void st_list_move_all_but(st_list_t *from, st_list_t *into, const st_list_t *keep) {
  st_list_t *pos, *tmp;
  st_list_for_each_safe(pos, tmp, from) {
    if (pos == keep) continue;
    st_list_remove(pos);
    st_list_push_front(into, pos);
  }
}

#endif
