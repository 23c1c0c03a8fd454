/*
 * fresh_thread.h — runs a test body in a new thread and waits for it, so that the body
 * starts with a thread cache of its own (no span, no stock) and its cache is abandoned when
 * it returns.
 */
#ifndef STRATA_TESTS_FRESH_THREAD_H
#define STRATA_TESTS_FRESH_THREAD_H

#include <pthread.h>

#include "../check.h"

typedef struct fresh_thread_body {
  void (*fn)(void);
} fresh_thread_body;

static void *fresh_thread_main(void *arg) {
  ((const fresh_thread_body *)arg)->fn();
  return NULL;
}

static inline void run_in_new_thread(void (*fn)(void)) {
  fresh_thread_body b = {fn};
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, fresh_thread_main, &b) == 0);
  REQUIRE(pthread_join(t, NULL) == 0);
}

#endif
