/*
 * trace_read.h — an allocation trace read back and resolved: what `strata summary` and
 * `strata replay` work from.
 *
 * Owns: decoding a trace file (trace/trace_format.h), giving each block an identity that
 * outlives the reuse of its address, ordering every event globally, and the figures the
 * summary prints. Memory for a trace comes from mmap (cli/bigmem.h), never from malloc, so
 * that loading a trace in a replay leaves the allocator under test untouched.
 * Identities: events are ordered by time; a free, and the start of a realloc, release their
 * address, an allocation and the end of a realloc bind theirs to a new block id (0, 1, ...).
 */
#ifndef ST_CLI_TRACE_READ_H
#define ST_CLI_TRACE_READ_H

#include <stdint.h>

#include "trace/trace_format.h"

enum { TRACE_NO_BLOCK = UINT32_MAX };

typedef struct trace_event {
  uint64_t time_ns;  /* since the traced process's start; a realloc's start */
  uint64_t end_ns;   /* a realloc's end; time_ns for the others */
  uint64_t size;     /* requested bytes (calloc: count * size) */
  uint64_t align;    /* MEMALIGN only */
  uint64_t addr;     /* the returned address, or the freed one; 0: failed */
  uint64_t old_addr; /* REALLOC only; 0: realloc(NULL, n) */
  uint32_t thread;   /* index into trace.threads */
  uint32_t block;    /* the block the op makes (or frees, for FREE), or TRACE_NO_BLOCK */
  uint32_t old_block; /* REALLOC: the block it releases, or TRACE_NO_BLOCK */
  uint32_t seq;      /* rank in the global order of the events' first instants */
  uint8_t op;        /* trace_op */
  uint8_t skip;      /* failed in the traced run (NULL result): a replay does not repeat it */
} trace_event;

typedef struct trace_thread {
  uint32_t number;  /* as in the file */
  uint64_t events;  /* how many of the trace's events are this thread's */
  uint64_t *index;  /* its events' indexes in trace.events, in its own order */
} trace_thread;

enum { TRACE_SIZE_BUCKETS = 48, TRACE_LIFE_BUCKETS = 12 };

typedef struct trace {
  uint32_t pid;
  trace_event *events; /* thread by thread, each in its own order */
  uint64_t nevents;
  trace_thread *threads;
  uint32_t nthreads;
  uint32_t nblocks;
  uint64_t op_count[TRACE_FREE + 1];
  uint64_t failed;            /* allocations that returned NULL */
  uint64_t unmatched_frees;   /* frees of addresses no traced allocation returned */
  uint64_t reused_live;       /* an address handed out while still live: clock skew */
  uint64_t peak_live_bytes;   /* the highest sum of requested sizes of live blocks */
  uint64_t peak_live_blocks;
  uint64_t end_live_bytes, end_live_blocks; /* never freed */
  uint64_t requested_bytes;   /* the sum of every request */
  uint64_t duration_ns;       /* first to last event */
  uint64_t size_hist[TRACE_SIZE_BUCKETS]; /* bucket b: sizes in [2^(b-1), 2^b), 0 in bucket 0 */
  uint64_t life_hist[TRACE_LIFE_BUCKETS]; /* bucket b: lifetimes under 10^b ns; last: longer */
  uint64_t *block_size;      /* requested bytes of each block */
} trace;

/* Reads and resolves a file. Returns 0, or -1 after one line on stderr naming the file and
 * what is wrong with it. */
int trace_load(const char *path, trace *t);

#endif
