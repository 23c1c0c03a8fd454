/*
 * trace_read.c — decoding and resolving a trace file (trace_read.h).
 *
 * Three passes: decode every chunk into events (kept thread by thread in file order, which
 * is each thread's own order); sort the events' instants by time, releases before binds at
 * equal times; sweep them with a map from live address to block id, which gives every
 * event its blocks, its global rank and the summary's figures.
 */
#include "cli/trace_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/bigmem.h"

static int bad(const char *path, const char *what, uint64_t offset) {
  fprintf(stderr, "strata: %s: not a strata trace (%s at byte %llu)\n", path, what,
          (unsigned long long)offset);
  return -1;
}

/* ---- Decoding -------------------------------------------------------------------------- */

typedef struct decoder {
  trace *t;
  size_t event_cap, thread_cap;
  uint32_t *thread_of_number; /* thread number -> index + 1 (0: not seen) */
  size_t numbers_cap;
} decoder;

static uint32_t thread_index(decoder *d, uint32_t number) {
  if (number >= d->numbers_cap) {
    size_t cap = d->numbers_cap ? d->numbers_cap : 64;
    while (cap <= number) cap *= 2;
    d->thread_of_number = bigmem_grow(d->thread_of_number, d->numbers_cap * sizeof(uint32_t),
                                      cap * sizeof(uint32_t));
    d->numbers_cap = cap;
  }
  if (d->thread_of_number[number] == 0) {
    trace *t = d->t;
    if (t->nthreads == d->thread_cap) {
      size_t cap = d->thread_cap ? 2 * d->thread_cap : 16;
      t->threads = bigmem_grow(t->threads, d->thread_cap * sizeof *t->threads, cap * sizeof *t->threads);
      d->thread_cap = cap;
    }
    t->threads[t->nthreads].number = number;
    d->thread_of_number[number] = ++t->nthreads;
  }
  return d->thread_of_number[number] - 1;
}

static trace_event *new_event(decoder *d) {
  trace *t = d->t;
  if (t->nevents == d->event_cap) {
    size_t cap = d->event_cap ? 2 * d->event_cap : 4096;
    t->events = bigmem_grow(t->events, d->event_cap * sizeof *t->events, cap * sizeof *t->events);
    d->event_cap = cap;
  }
  return &t->events[t->nevents++];
}

/* One chunk's events; returns 0 when they do not decode exactly into its byte count. */
static int decode_chunk(decoder *d, const trace_chunk_header *h, const uint8_t *p) {
  const uint8_t *end = p + h->bytes;
  uint32_t thread = thread_index(d, h->thread);
  uint64_t time = h->time0_ns, addr = 0, dt, v;
  for (uint32_t i = 0; i < h->events; i++) {
    if (p == end || *p < TRACE_MALLOC || *p > TRACE_FREE) return 0;
    trace_event *e = new_event(d);
    memset(e, 0, sizeof *e);
    e->op = *p++;
    e->thread = thread;
    e->block = e->old_block = TRACE_NO_BLOCK;
    if (!trace_get_varint(&p, end, &dt)) return 0;
    e->time_ns = e->end_ns = time += dt;
    uint64_t *fields[4] = {NULL, NULL, NULL, NULL};
    switch (e->op) {
    case TRACE_MALLOC:
    case TRACE_CALLOC: fields[0] = &e->size, fields[1] = &e->addr; break;
    case TRACE_MEMALIGN: fields[0] = &e->align, fields[1] = &e->size, fields[2] = &e->addr; break;
    case TRACE_REALLOC:
      fields[0] = &e->old_addr, fields[1] = &e->size, fields[2] = &e->addr, fields[3] = &e->end_ns;
      break;
    case TRACE_FREE: fields[0] = &e->addr; break;
    }
    for (int f = 0; f < 4 && fields[f] != NULL; f++) {
      if (!trace_get_varint(&p, end, &v)) return 0;
      if (fields[f] == &e->addr || fields[f] == &e->old_addr) {
        addr += (uint64_t)trace_unzigzag(v);
        v = addr;
      }
      *fields[f] = v;
    }
    if (e->op == TRACE_REALLOC) e->end_ns += e->time_ns; /* the field holds the duration */
  }
  return p == end;
}

static int decode(const char *path, const uint8_t *data, size_t size, trace *t) {
  trace_file_header fh;
  if (size < sizeof fh) return bad(path, "file shorter than its header", 0);
  memcpy(&fh, data, sizeof fh);
  if (memcmp(fh.magic, TRACE_MAGIC, sizeof fh.magic) != 0) return bad(path, "no magic", 0);
  if (fh.version != TRACE_VERSION) {
    fprintf(stderr, "strata: %s: trace format version %u; this strata reads version %u\n", path,
            fh.version, TRACE_VERSION);
    return -1;
  }
  t->pid = fh.pid;
  decoder d = {.t = t};
  for (size_t off = sizeof fh; off < size;) {
    trace_chunk_header h;
    if (size - off < sizeof h) return bad(path, "cut chunk header", off);
    memcpy(&h, data + off, sizeof h);
    if (h.magic != TRACE_CHUNK_MAGIC) return bad(path, "bad chunk magic", off);
    if (h.bytes > size - off - sizeof h) return bad(path, "chunk runs past the end", off);
    if (!decode_chunk(&d, &h, data + off + sizeof h)) return bad(path, "bad event", off);
    off += sizeof h + h.bytes;
  }
  bigmem_free(d.thread_of_number, d.numbers_cap * sizeof(uint32_t));
  return 0;
}

/* ---- Resolving ------------------------------------------------------------------------- */

/* Live addresses -> block ids: open addressing, linear probing, backward-shift deletion. */
typedef struct addr_map {
  uint64_t *keys; /* 0: empty (address 0 is never live) */
  uint32_t *vals;
  size_t cap, count;
} addr_map;

static size_t slot_of(const addr_map *m, uint64_t key) {
  uint64_t h = key * 0x9e3779b97f4a7c15u;
  return (size_t)(h >> 20) & (m->cap - 1);
}

static size_t map_find(const addr_map *m, uint64_t key) {
  size_t i = slot_of(m, key);
  while (m->keys[i] != 0 && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  return i;
}

static void map_put(addr_map *m, uint64_t key, uint32_t val);

static void map_grow(addr_map *m) {
  addr_map old = *m;
  m->cap = old.cap ? 2 * old.cap : 1024;
  m->count = 0;
  m->keys = bigmem_alloc(m->cap * sizeof *m->keys);
  m->vals = bigmem_alloc(m->cap * sizeof *m->vals);
  for (size_t i = 0; i < old.cap; i++)
    if (old.keys[i] != 0) map_put(m, old.keys[i], old.vals[i]);
  bigmem_free(old.keys, old.cap * sizeof *old.keys);
  bigmem_free(old.vals, old.cap * sizeof *old.vals);
}

/* Binds key to val (callers unbind it first: a key is never bound twice). */
static void map_put(addr_map *m, uint64_t key, uint32_t val) {
  if (2 * (m->count + 1) > m->cap) map_grow(m);
  size_t i = map_find(m, key);
  m->count += m->keys[i] == 0;
  m->keys[i] = key;
  m->vals[i] = val;
}

/* Unbinds key; returns its block or TRACE_NO_BLOCK. */
static uint32_t map_take(addr_map *m, uint64_t key) {
  if (m->cap == 0) return TRACE_NO_BLOCK;
  size_t i = map_find(m, key);
  if (m->keys[i] == 0) return TRACE_NO_BLOCK;
  uint32_t val = m->vals[i];
  m->keys[i] = 0;
  m->count--;
  /* Move later entries of the probe run back over the hole when their home allows it. */
  for (size_t j = (i + 1) & (m->cap - 1); m->keys[j] != 0; j = (j + 1) & (m->cap - 1)) {
    size_t home = slot_of(m, m->keys[j]);
    if (((j - home) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
      m->keys[i] = m->keys[j], m->vals[i] = m->vals[j];
      m->keys[j] = 0;
      i = j;
    }
  }
  return val;
}

/* An instant: when an event releases (kind 0) or binds (kind 1) an address. */
typedef struct instant {
  uint64_t time;
  uint64_t event : 63;
  uint64_t kind : 1;
} instant;

static int cmp_instant(const void *a, const void *b) {
  const instant *x = a, *y = b;
  if (x->time != y->time) return x->time < y->time ? -1 : 1;
  if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
  return x->event < y->event ? -1 : x->event > y->event;
}

typedef struct resolver {
  trace *t;
  addr_map live;
  uint64_t *birth; /* per block: the time it was bound */
  size_t block_cap;
  uint64_t live_bytes, live_blocks;
  uint32_t next_seq;
} resolver;

static unsigned size_bucket(uint64_t size) {
  unsigned b = size == 0 ? 0 : 64 - (unsigned)__builtin_clzll(size);
  return b < TRACE_SIZE_BUCKETS ? b : TRACE_SIZE_BUCKETS - 1;
}

static void release(resolver *r, trace_event *e, uint64_t time) {
  uint64_t addr = e->op == TRACE_REALLOC ? e->old_addr : e->addr;
  if (addr == 0) return;
  if (e->op == TRACE_REALLOC && e->addr == 0 && e->size > 0) return; /* failed: old stays */
  uint32_t block = map_take(&r->live, addr);
  if (block == TRACE_NO_BLOCK) {
    r->t->unmatched_frees++;
    if (e->op == TRACE_FREE) e->skip = 1;
    return;
  }
  if (e->op == TRACE_FREE) e->block = block;
  else e->old_block = block;
  r->live_bytes -= r->t->block_size[block];
  r->live_blocks--;
  uint64_t life = time - r->birth[block];
  unsigned b = 0;
  for (uint64_t limit = 10; b + 1 < TRACE_LIFE_BUCKETS && life >= limit; limit *= 10) b++;
  r->t->life_hist[b]++;
}

static void bind(resolver *r, trace_event *e, uint64_t time) {
  trace *t = r->t;
  t->requested_bytes += e->size;
  t->size_hist[size_bucket(e->size)]++;
  if (e->addr == 0) {
    t->failed += e->size > 0 || e->op != TRACE_REALLOC;
    e->skip = e->op != TRACE_REALLOC || e->size > 0;
    return;
  }
  if (t->nblocks >= r->block_cap) {
    size_t cap = r->block_cap ? 2 * r->block_cap : 4096;
    t->block_size = bigmem_grow(t->block_size, r->block_cap * 8, cap * 8);
    r->birth = bigmem_grow(r->birth, r->block_cap * 8, cap * 8);
    r->block_cap = cap;
  }
  uint32_t block = t->nblocks++;
  uint32_t previous = map_take(&r->live, e->addr);
  if (previous != TRACE_NO_BLOCK) { /* only a clock going backwards between CPUs does this */
    t->reused_live++;
    r->live_bytes -= t->block_size[previous];
    r->live_blocks--;
  }
  map_put(&r->live, e->addr, block);
  e->block = block;
  t->block_size[block] = e->size;
  r->birth[block] = time;
  r->live_bytes += e->size;
  r->live_blocks++;
  if (r->live_bytes > t->peak_live_bytes) t->peak_live_bytes = r->live_bytes;
  if (r->live_blocks > t->peak_live_blocks) t->peak_live_blocks = r->live_blocks;
}

static void resolve(trace *t) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < t->nevents; i++) n += 1 + (t->events[i].op == TRACE_REALLOC);
  instant *in = bigmem_alloc(n * sizeof *in);
  n = 0;
  for (uint64_t i = 0; i < t->nevents; i++) {
    const trace_event *e = &t->events[i];
    t->op_count[e->op]++;
    if (e->op == TRACE_REALLOC) in[n++] = (instant){e->time_ns, i, 0};
    in[n++] = (instant){e->end_ns, i, e->op != TRACE_FREE};
  }
  qsort(in, n, sizeof *in, cmp_instant);
  resolver r = {.t = t};
  for (uint64_t k = 0; k < n; k++) {
    trace_event *e = &t->events[in[k].event];
    if (in[k].kind == 0 || e->op != TRACE_REALLOC) e->seq = r.next_seq++;
    if (in[k].kind == 0)
      release(&r, e, in[k].time);
    else
      bind(&r, e, in[k].time);
  }
  if (n > 0) t->duration_ns = in[n - 1].time - in[0].time;
  t->end_live_bytes = r.live_bytes;
  t->end_live_blocks = r.live_blocks;
  bigmem_free(in, n * sizeof *in);
  bigmem_free(r.birth, r.block_cap * 8);
  bigmem_free(r.live.keys, r.live.cap * sizeof *r.live.keys);
  bigmem_free(r.live.vals, r.live.cap * sizeof *r.live.vals);
}

static void index_threads(trace *t) {
  for (uint64_t i = 0; i < t->nevents; i++) t->threads[t->events[i].thread].events++;
  for (uint32_t k = 0; k < t->nthreads; k++) {
    t->threads[k].index = bigmem_alloc(t->threads[k].events * sizeof(uint64_t));
    t->threads[k].events = 0;
  }
  for (uint64_t i = 0; i < t->nevents; i++) {
    trace_thread *th = &t->threads[t->events[i].thread];
    th->index[th->events++] = i;
  }
}

int trace_load(const char *path, trace *t) {
  memset(t, 0, sizeof *t);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "strata: cannot read %s: %s\n", path, strerror(errno));
    return -1;
  }
  struct stat sb;
  int rc = -1;
  if (fstat(fd, &sb) == 0) {
    size_t size = (size_t)sb.st_size;
    uint8_t *data = bigmem_alloc(size);
    size_t got = 0;
    for (ssize_t n; got < size && (n = read(fd, data + got, size - got)) != 0; got += n > 0 ? (size_t)n : 0)
      if (n < 0 && errno != EINTR) break;
    rc = got == size ? decode(path, data, size, t) : bad(path, "short read", got);
    bigmem_free(data, size);
  }
  close(fd);
  if (rc == 0) {
    resolve(t);
    index_threads(t);
  }
  return rc;
}
