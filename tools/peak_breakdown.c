/*
 * peak_breakdown.c — where strata's memory is at a program's peak of resident memory.
 *
 * Built as libpeak_breakdown.so and preloaded together with libstrata.so:
 *
 *   LD_PRELOAD="build/libstrata.so build/tools/libpeak_breakdown.so" PROGRAM ARGS...
 *
 * A thread samples the process's resident memory (/proc/self/statm) every
 * PEAK_BREAKDOWN_MS milliseconds (default 20) and, whenever it exceeds its last snapshot's
 * by more than 1/200, takes a snapshot with st_stats_get: the snapshot kept is the first
 * within 0.5% of the peak (a program that never purges stays at its peak while it frees
 * everything, and a snapshot then would show nothing live). At exit it prints to stderr one
 * line per kind of memory (docs/memory.md names them) for that snapshot: live blocks, free
 * blocks in thread-owned spans, spans' tails, free dirty pages, metadata, and the resident
 * memory none of these explain (the program's image and stacks). The figures are upper
 * bounds of what is resident: a slab span's blocks count whole although the ones never
 * handed out were never touched, and metadata counts as mapped. PEAK_BREAKDOWN_CLASSES=1
 * adds one line per size class. The sampler never allocates, so it adds only its stack to
 * what it measures; the snapshot takes every page-heap lock, which slows the program a
 * little. Diagnostic only: never linked into the library.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

static st_stats best;          /* the first snapshot within 0.5% of the peak */
static size_t best_rss_bytes;  /* resident memory when it was taken */
static size_t peak_rss_bytes;  /* the highest sample */
static size_t start_rss_bytes; /* resident memory when the sampler started */
static atomic_int stopping;
static pthread_t sampler_thread;
static int sampling; /* 1 while sampler_thread runs */

static size_t resident_bytes(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long size = 0, resident = 0;
  if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void *sampler(void *arg) {
  static st_stats snap;
  long ms = (long)(size_t)arg;
  struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  while (!atomic_load(&stopping)) {
    size_t before = resident_bytes();
    if (before > peak_rss_bytes) peak_rss_bytes = before;
    if (before > best_rss_bytes + best_rss_bytes / 200) {
      st_stats_get(&snap, sizeof snap);
      size_t after = resident_bytes();
      best = snap;
      best_rss_bytes = after > before ? after : before;
    }
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static void line(const char *what, size_t bytes) {
  fprintf(stderr, "  %-44s %9.1f MiB %5.1f%%\n", what, (double)bytes / 1048576.0,
          best_rss_bytes ? 100.0 * (double)bytes / (double)best_rss_bytes : 0.0);
}

__attribute__((destructor)) static void report(void) {
  if (!sampling) return;
  atomic_store(&stopping, 1);
  pthread_join(sampler_thread, NULL);
  const st_stats *s = &best;
  size_t accounted = s->live_bytes + s->thread_cached_bytes + s->abandoned_free_bytes +
                     s->slab_tail_bytes + s->free_dirty_bytes + s->huge_cached_bytes +
                     s->metadata_bytes;
  fprintf(stderr,
          "peak_breakdown: resident at the snapshot %.1f MiB (highest sample %.1f MiB, at start "
          "%.1f MiB)\n",
          (double)best_rss_bytes / 1048576.0, (double)peak_rss_bytes / 1048576.0,
          (double)start_rss_bytes / 1048576.0);
  line("live blocks (block sizes)", s->live_bytes);
  line("  of which large blocks' requests", s->large_requested_bytes);
  line("free blocks in thread-owned spans + stock", s->thread_cached_bytes);
  line("free blocks in spans of exited threads", s->abandoned_free_bytes);
  line("slab span tails", s->slab_tail_bytes);
  line("free page-heap pages not purged (dirty)", s->free_dirty_bytes);
  line("freed huge blocks kept mapped for reuse", s->huge_cached_bytes);
  line("metadata (mapped; resident where touched)", s->metadata_bytes);
  if (best_rss_bytes >= accounted)
    line("resident beyond these: program, stacks", best_rss_bytes - accounted);
  else
    line("counted above but not resident", accounted - best_rss_bytes);
  fprintf(stderr, "  (free blocks include those never handed out, which were never touched)\n");
  fprintf(stderr, "  (committed %.1f MiB, in use peak %.1f MiB, spans slab %zu large %zu)\n",
          (double)s->committed_bytes / 1048576.0, (double)s->peak_in_use_bytes / 1048576.0,
          s->spans_slab, s->spans_large);
  if (getenv("PEAK_BREAKDOWN_CLASSES") == NULL) return;
  fprintf(stderr, "  class  block  spans  span KiB  live KiB  free KiB\n");
  for (unsigned c = 0; c < s->class_count && c < ST_STATS_MAX_CLASSES; c++) {
    const st_stats_class *k = &s->classes[c];
    if (k->spans == 0) continue;
    size_t span_bytes = k->pages * (size_t)sysconf(_SC_PAGESIZE), live = k->blocks_live * k->block_size;
    fprintf(stderr, "  %5u %6zu %6zu %9zu %9zu %9zu\n", c, k->block_size, k->spans,
            span_bytes >> 10, live >> 10, (span_bytes - live) >> 10);
  }
}

__attribute__((constructor)) static void start(void) {
  const char *env = getenv("PEAK_BREAKDOWN_MS");
  long ms = env != NULL ? atol(env) : 20;
  if (ms <= 0) ms = 20;
  start_rss_bytes = resident_bytes();
  if (pthread_create(&sampler_thread, NULL, sampler, (void *)(size_t)ms) == 0)
    sampling = 1;
  else
    fprintf(stderr, "peak_breakdown: cannot start the sampling thread\n");
}
