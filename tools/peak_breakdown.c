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
 * adds one line per size class. PEAK_BREAKDOWN_SHARDS=1 adds, per page-heap shard, the pages
 * of its slab, large and free spans that are resident (mincore(2) over each span of a JSON
 * heap dump taken right after the snapshot), and the anonymous memory outside every span
 * (descriptors, pagemap, thread caches, stacks). The dump writes through a static buffer,
 * so the sampler still never allocates and takes no shard from the program's threads. The sampler never allocates, so it adds only its stack to
 * what it measures; the snapshot takes every page-heap lock, which slows the program a
 * little. Diagnostic only: never linked into the library.
 */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* PEAK_BREAKDOWN_SHARDS: resident pages per shard and span kind at the snapshot. */
#define MAX_SHARDS 64
enum { KIND_FREE, KIND_SLAB, KIND_LARGE, KIND_HUGE, KINDS };
static const char *const kind_names[KINDS] = {"free", "slab", "large", "huge"};
static FILE *dump_file;                      /* opened at start: the sampler never calls fopen */
static size_t best_resident[MAX_SHARDS][KINDS]; /* bytes, at the kept snapshot */
static size_t best_spans[MAX_SHARDS][KINDS];
static size_t best_anon_bytes;              /* RssAnon at the kept snapshot */
static unsigned best_shards;                /* shards seen in the dump */

/* Reads a /proc file into buf (NUL-terminated) with open/read, which do not allocate;
 * false when it cannot. */
static bool read_proc(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return true;
}

static size_t resident_bytes(void) {
  char buf[128];
  if (!read_proc("/proc/self/statm", buf, sizeof buf)) return 0;
  unsigned long size = 0, resident = 0;
  if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
  return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t anon_resident_bytes(void) {
  char buf[2048];
  if (!read_proc("/proc/self/status", buf, sizeof buf)) return 0;
  const char *at = strstr(buf, "RssAnon:");
  unsigned long kib = 0;
  return at != NULL && sscanf(at, "RssAnon: %lu", &kib) == 1 ? (size_t)kib << 10 : 0;
}

static size_t span_resident_bytes(uintptr_t start, size_t bytes) {
  static unsigned char vec[1 << 16];
  size_t page = (size_t)sysconf(_SC_PAGESIZE), resident = 0;
  for (size_t done = 0; done < bytes;) {
    size_t chunk = bytes - done < sizeof vec * page ? bytes - done : sizeof vec * page;
    if (mincore((void *)(start + done), chunk, vec) != 0) return resident;
    for (size_t i = 0; i < chunk / page; i++) resident += (vec[i] & 1) * page;
    done += chunk;
  }
  return resident;
}

/* Dumps the heap as JSON into dump_file and adds up every span's resident pages by shard
 * and kind. */
static void take_shard_snapshot(void) {
  static size_t resident[MAX_SHARDS][KINDS], spans[MAX_SHARDS][KINDS];
  memset(resident, 0, sizeof resident);
  memset(spans, 0, sizeof spans);
  int fd = fileno(dump_file);
  rewind(dump_file);
  if (ftruncate(fd, 0) != 0 || st_heap_dump(dump_file, ST_DUMP_JSON) != 0) return;
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0) return;
  const char *text = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (text == MAP_FAILED) return;
  const char *end = text + size, *key = "{\"start\": ";
  unsigned shards = 0;
  for (const char *at = text; (at = memmem(at, (size_t)(end - at), key, strlen(key))) != NULL; at++) {
    size_t start, pages;
    unsigned shard;
    char kind[8];
    if (sscanf(at, "{\"start\": %zu, \"pages\": %zu, \"kind\": \"%7[a-z]\", \"shard\": %u", &start,
               &pages, kind, &shard) != 4 || shard >= MAX_SHARDS)
      continue;
    int k = 0;
    while (k < KINDS && strcmp(kind, kind_names[k]) != 0) k++;
    if (k == KINDS) continue;
    resident[shard][k] += span_resident_bytes(start, pages * (size_t)sysconf(_SC_PAGESIZE));
    spans[shard][k]++;
    if (shard + 1 > shards) shards = shard + 1;
  }
  munmap((void *)text, (size_t)size);
  if (getenv("PEAK_BREAKDOWN_SERIES") != NULL) {
    fprintf(stderr, "series rss %zu KiB", resident_bytes() >> 10);
    for (unsigned i = 0; i < shards; i++)
      fprintf(stderr, " | shard %u slab %zu large %zu free %zu", i, resident[i][KIND_SLAB] >> 10,
              resident[i][KIND_LARGE] >> 10, resident[i][KIND_FREE] >> 10);
    fprintf(stderr, "\n");
  }
  memcpy(best_resident, resident, sizeof resident);
  memcpy(best_spans, spans, sizeof spans);
  best_shards = shards;
  best_anon_bytes = anon_resident_bytes();
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
      if (dump_file != NULL) take_shard_snapshot();
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
  if (dump_file != NULL) {
    size_t in_spans = 0;
    fprintf(stderr, "  shard  kind   spans  resident KiB\n");
    for (unsigned i = 0; i < best_shards; i++) {
      for (int k = 0; k < KINDS; k++) {
        if (best_spans[i][k] == 0) continue;
        fprintf(stderr, "  %5u  %-5s %6zu  %12zu\n", i, kind_names[k], best_spans[i][k],
                best_resident[i][k] >> 10);
        in_spans += best_resident[i][k];
      }
    }
    fprintf(stderr, "  anonymous resident %zu KiB, in spans %zu KiB, outside spans %zu KiB\n",
            best_anon_bytes >> 10, in_spans >> 10,
            best_anon_bytes > in_spans ? (best_anon_bytes - in_spans) >> 10 : 0);
  }
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
  static char dump_buffer[1 << 16];
  if (getenv("PEAK_BREAKDOWN_SHARDS") != NULL && (dump_file = tmpfile()) != NULL)
    setvbuf(dump_file, dump_buffer, _IOFBF, sizeof dump_buffer);
  if (pthread_create(&sampler_thread, NULL, sampler, (void *)(size_t)ms) == 0)
    sampling = 1;
  else
    fprintf(stderr, "peak_breakdown: cannot start the sampling thread\n");
}
