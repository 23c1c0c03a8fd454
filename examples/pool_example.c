/*
 * pool_example.c — a pool of fixed-size list nodes shared by two threads: a producer
 * allocates messages, a consumer frees them.
 *
 *   cc pool_example.c -lstrata -lpthread && ./a.out
 */
#include <pthread.h>
#include <stdio.h>

#include "strata.h"

typedef struct message {
  struct message *next;
  long value;
} message;

static st_pool_t *pool;
static message *queue; /* guarded by lock */
static int done;       /* guarded by lock */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;

static void *consumer(void *arg) {
  long *sum = arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    while (queue == NULL && !done) pthread_cond_wait(&ready, &lock);
    if (queue == NULL) break;
    message *m = queue;
    queue = m->next;
    *sum += m->value;
    st_pool_free(pool, m); /* freed by another thread than the one that allocated it */
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  pool = st_pool_create(sizeof(message), _Alignof(message), ST_POOL_THREAD_SAFE);
  if (pool == NULL) return 1;
  long sum = 0;
  pthread_t t;
  pthread_create(&t, NULL, consumer, &sum);
  for (long i = 1; i <= 100000; i++) {
    message *m = st_pool_alloc(pool);
    if (m == NULL) return 1;
    m->value = i;
    pthread_mutex_lock(&lock);
    m->next = queue;
    queue = m;
    pthread_cond_signal(&ready);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_lock(&lock);
  done = 1;
  pthread_cond_signal(&ready);
  pthread_mutex_unlock(&lock);
  pthread_join(t, NULL);
  st_pool_stats s;
  st_pool_stats_get(pool, &s);
  printf("sum %ld (expected %ld); pool: %zu live, %zu chunks, %zu bytes reserved\n", sum,
         100000L * 100001L / 2, s.live_objects, s.chunks, s.reserved_bytes);
  printf("after st_pool_trim: %zu bytes given back\n", st_pool_trim(pool));
  st_pool_destroy(pool);
  return sum == 100000L * 100001L / 2 ? 0 : 1;
}
