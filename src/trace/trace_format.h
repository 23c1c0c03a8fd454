/*
 * trace_format.h — the layout of an allocation trace file (docs/cli.md, "Trace format"),
 * shared by the tracer that writes it (trace/tracer.c) and the strata command that reads
 * it (cli/trace_read.c).
 *
 * A file is a header, then chunks in the order threads flushed them. A chunk holds the
 * events one thread recorded since its previous chunk, in that thread's order:
 *
 *   file header (24 bytes, little-endian)   chunk header (24 bytes)
 *   +--------+------+------+--------+       +-------+--------+-------+--------+---------+
 *   | "STRATRC" 0 | ver | pid  | start  |   | magic | thread | bytes | events | time0   |
 *   |   8 bytes   | u32 | u32  | u64 ns |   |  u32  |  u32   |  u32  |  u32   | u64 ns  |
 *   +-------------+-----+------+--------+   +-------+--------+-------+--------+---------+
 *
 * then `bytes` bytes of events, each an op byte followed by unsigned LEB128 varints:
 *   dt    nanoseconds since the previous event of the chunk (the first: since time0)
 *   MALLOC, CALLOC   size, address
 *   MEMALIGN         alignment, size, address
 *   REALLOC          old address, size, address
 *   FREE             address
 * Addresses are zigzag-encoded differences from the previous address field of the chunk
 * (starting from 0); address 0 is a failed request (NULL). CALLOC's size is count * size.
 * Times count from the file header's start (CLOCK_MONOTONIC of the traced process).
 */
#ifndef ST_TRACE_FORMAT_H
#define ST_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define TRACE_MAGIC "STRATRC"  /* 7 characters and a NUL: 8 bytes */
#define TRACE_VERSION 1u
#define TRACE_CHUNK_MAGIC 0x4b4e4843u /* "CHNK" read as little-endian */

enum { TRACE_HEADER_SIZE = 24, TRACE_CHUNK_HEADER_SIZE = 24 };
/* The longest encoding of one event: op byte and five 10-byte varints (REALLOC). */
enum { TRACE_EVENT_MAX = 1 + 5 * 10 };

typedef enum trace_op {
  TRACE_MALLOC = 1,
  TRACE_CALLOC = 2,
  TRACE_MEMALIGN = 3, /* aligned_alloc, memalign, posix_memalign, valloc, pvalloc */
  TRACE_REALLOC = 4,  /* reallocarray too */
  TRACE_FREE = 5,     /* free_sized and free_aligned_sized too; free(NULL) is not recorded */
} trace_op;

typedef struct trace_file_header {
  char magic[8];
  uint32_t version;
  uint32_t pid;
  uint64_t start_ns;
} trace_file_header;

typedef struct trace_chunk_header {
  uint32_t magic;
  uint32_t thread; /* 1 for the first thread that allocated, then in order of first event */
  uint32_t bytes;
  uint32_t events;
  uint64_t time0_ns;
} trace_chunk_header;

_Static_assert(sizeof(trace_file_header) == TRACE_HEADER_SIZE, "file header layout");
_Static_assert(sizeof(trace_chunk_header) == TRACE_CHUNK_HEADER_SIZE, "chunk header layout");

static inline uint8_t *trace_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

static inline uint64_t trace_zigzag(int64_t v) {
  /* All ones for a negative v, without shifting a signed value. */
  return ((uint64_t)v << 1) ^ ((uint64_t)0 - ((uint64_t)v >> 63));
}

static inline int64_t trace_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Decodes one varint from [*p, end); returns 0 when it runs past end or past 64 bits. */
static inline int trace_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return 1;
    }
  }
  return 0;
}

#endif
