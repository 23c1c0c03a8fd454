/*
 * dlopen_lib.c — the shared library dlopen_loop.c loads and unloads over and over.
 *
 * Its constructor allocates with every family member and keeps the blocks; its destructor
 * checks and frees them, together with blocks the caller handed over. It also returns
 * blocks for the caller to free after the library is gone, and can run a thread of its own
 * that allocates and exits, so a thread whose code is about to be unmapped owned a cache.
 */
#include <pthread.h>
#include <stdlib.h>

#include "dlopen_lib.h"
#include "override_util.h"

enum { KEPT = 16, ADOPTED_MAX = 8 };

static void *kept[KEPT];
static size_t kept_size[KEPT];
static void *adopted[ADOPTED_MAX];
static size_t adopted_size[ADOPTED_MAX];
static uint32_t adopted_seed[ADOPTED_MAX];
static int adopted_count;
static int init_failed;

__attribute__((constructor)) static void dlo_init(void) {
  for (int i = 0; i < KEPT; i++) {
    size_t n = (size_t)(i + 1) * (size_t)(i + 1) * 97;
    void *p = NULL;
    switch (i % 5) {
    case 0:
      p = malloc(n);
      break;
    case 1:
      p = calloc(n, 1);
      for (size_t k = 0; p && k < n; k++) init_failed |= ((unsigned char *)p)[k] != 0;
      break;
    case 2:
      p = realloc(malloc(10), n);
      break;
    case 3:
      init_failed |= posix_memalign(&p, 256, n) != 0;
      break;
    case 4:
      p = aligned_alloc(4096, n);
      break;
    }
    if (p == NULL) {
      init_failed = 1;
      continue;
    }
    pattern_fill(p, n, (uint32_t)i);
    kept[i] = p;
    kept_size[i] = n;
  }
}

__attribute__((destructor)) static void dlo_fini(void) {
  for (int i = 0; i < KEPT; i++) {
    if (kept[i] && !pattern_ok(kept[i], kept_size[i], (uint32_t)i)) abort();
    free(kept[i]);
    kept[i] = NULL;
  }
  for (int i = 0; i < adopted_count; i++) {
    if (!pattern_ok(adopted[i], adopted_size[i], adopted_seed[i])) abort();
    free(adopted[i]);
  }
  adopted_count = 0;
}

int dlo_check(void) {
  if (init_failed) return 1;
  for (int i = 0; i < KEPT; i++)
    if (!kept[i] || !pattern_ok(kept[i], kept_size[i], (uint32_t)i)) return 2;
  return 0;
}

void *dlo_make(size_t n, uint32_t seed) {
  void *p = malloc(n);
  if (p) pattern_fill(p, n, seed);
  return p;
}

int dlo_adopt(void *p, size_t n, uint32_t seed) {
  if (adopted_count == ADOPTED_MAX) return -1;
  adopted[adopted_count] = p;
  adopted_size[adopted_count] = n;
  adopted_seed[adopted_count++] = seed;
  return 0;
}

static void *dlo_thread(void *arg) {
  void *blocks[64];
  for (int i = 0; i < 64; i++) blocks[i] = escape(malloc((size_t)(i + 1) * 40));
  for (int i = 0; i < 64; i++) free(blocks[i]);
  return arg;
}

int dlo_spawn(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, dlo_thread, NULL) != 0) return -1;
  return pthread_join(t, NULL);
}
