/*
 * arena.c — bump allocation, freed all at once: st_arena_* (public API in strata.h).
 *
 * Owns: an arena's chunks, the bump pointer, marks and the byte cap. Calls: os/,
 * special/handle.h, base/. Not thread safe: one thread uses an arena at a time.
 *
 * Regular chunks form a stack, newest on top (`cur`); allocations bump `ptr` toward `end`
 * in the top chunk. The next regular chunk is twice the size of the last, up to
 * ARENA_MAX_CHUNK, so n bytes take O(log n) chunks. A request that does not fit and needs
 * more than a quarter of the next chunk gets an oversized chunk of its own, on a separate
 * list, so the top chunk keeps serving small requests. Every chunk gets a sequence number
 * when mapped; a mark is (top chunk, bytes used in it), and releasing to it unmaps every
 * chunk mapped after the mark's chunk (regular or oversized) and rewinds `ptr`, so the next
 * allocation lands where the first one after the mark did. The largest regular chunk a
 * release unmaps is kept instead as `spare` and is the next regular chunk if it is big
 * enough, so a loop of mark, allocate, release maps nothing after its first iteration
 * (and lands on the same addresses even when it outgrows the mark's chunk). Before the
 * first regular chunk a mark has chunk NULL and carries the sequence number in `used`.
 *
 *   chunk:  +-------------+-----------------------------+----------+
 *           | arena_chunk | allocations ...      top ─► | unused   |
 *           +-------------+-----------------------------+----------+
 *           0             ARENA_HEADER                  end of mapping (size)
 */
#define ST_ARENA_INLINE /* strata.h's inline st_arena_alloc becomes this file's external one */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/check.h"
#include "os/os.h"
#include "special/fork.h"
#include "special/handle.h"
#include "strata.h"

#define ARENA_DEFAULT_CHUNK ((size_t)64 * 1024)
#define ARENA_MAX_CHUNK ((size_t)64 * 1024 * 1024)
#define ARENA_MAX_REQUEST ((size_t)PTRDIFF_MAX / 2) /* beyond: ENOMEM before any arithmetic */

typedef struct arena_chunk {
  struct arena_chunk *prev; /* the next older chunk of the same kind */
  size_t size;              /* bytes mapped, header included */
  size_t seq;               /* order of mapping within the arena, from 1 */
  char *top;                /* bump position; for the top chunk, st_arena.ptr is current */
} arena_chunk;

#define ARENA_HEADER st_align_up(sizeof(arena_chunk), ST_MIN_ALIGN)

struct st_arena {
  uint64_t magic;         /* ST_MAGIC_ARENA while live (handle.h) */
  char *ptr, *end;        /* the bump region of cur; both NULL before the first chunk */
  arena_chunk *cur;       /* top of the regular chunk stack, or NULL */
  arena_chunk *oversized; /* chunks of one oversized allocation each, newest first */
  arena_chunk *spare;     /* a regular chunk released for reuse, or NULL */
  size_t next_size;       /* bytes of the next regular chunk */
  size_t max_chunk;       /* growth stops here */
  size_t max_bytes;       /* cap on reserved (0: none); const */
  size_t reserved;        /* bytes mapped for all chunks */
  size_t nchunks, noversized;
  size_t seq;             /* sequence number of the newest chunk */
};
_Static_assert(sizeof(struct st_arena) <= ST_HANDLE_SLOT_SIZE, "an arena fits a handle slot");
/* strata.h's inline st_arena_alloc reads the head of the arena as st_arena_fastpath */
_Static_assert(offsetof(struct st_arena, magic) == offsetof(struct st_arena_fastpath, magic) &&
                   offsetof(struct st_arena, ptr) == offsetof(struct st_arena_fastpath, ptr) &&
                   offsetof(struct st_arena, end) == offsetof(struct st_arena_fastpath, end),
               "the inline path's view of an arena");
_Static_assert(ST_MAGIC_ARENA == ST_ARENA_FASTPATH_MAGIC, "the inline path takes live arenas");
_Static_assert(ST_MIN_ALIGN == ST_ARENA_FASTPATH_ALIGN, "the inline path aligns like the library");
_Static_assert((uint32_t)ST_MAGIC_ARENA != (uint32_t)ST_MAGIC_DEAD &&
                   (uint32_t)ST_MAGIC_ARENA != (uint32_t)ST_MAGIC_POOL &&
                   (uint32_t)ST_MAGIC_ARENA != (uint32_t)ST_MAGIC_POOL_SHARED &&
                   (uint32_t)ST_MAGIC_ARENA != (uint32_t)ST_MAGIC_SLAB,
               "the inline path compares the magic's low half (strata.h)");

ST_INLINE char *chunk_data(arena_chunk *c) { return (char *)c + ARENA_HEADER; }

st_arena_t *st_arena_create(const st_arena_options *opts) {
  size_t page = st__os_page_size();
  size_t chunk = opts != NULL && opts->chunk_size != 0 ? opts->chunk_size : ARENA_DEFAULT_CHUNK;
  if (chunk > ARENA_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  /* arenas take no lock of their own, but create and destroy take the registry's */
  st__special_fork_register(ST_SPECIAL_FORK_POOL, NULL);
  st_arena_t *a = st__handle_new(ST_MAGIC_ARENA);
  if (a == NULL) return NULL;
  a->next_size = st_align_up(chunk < page ? page : chunk, page);
  a->max_chunk = a->next_size > ARENA_MAX_CHUNK ? a->next_size : ARENA_MAX_CHUNK;
  a->max_bytes = opts != NULL ? opts->max_bytes : 0;
  st__handle_publish(a, ST_MAGIC_ARENA);
  return a;
}

/* Maps a chunk of at least `need` bytes after the header (`want` bytes if the cap allows);
 * NULL with errno = ENOMEM past max_bytes or when the kernel refuses. */
static void arena_unmap_chunk(st_arena_t *a, arena_chunk *c);

static arena_chunk *arena_map_chunk(st_arena_t *a, size_t need, size_t want) {
  size_t page = st__os_page_size();
  if (a->spare != NULL && a->max_bytes != 0 && want + need > a->max_bytes - a->reserved) {
    arena_unmap_chunk(a, a->spare); /* the cap counts it: make room */
    a->spare = NULL;
  }
  size_t least = st_align_up(ARENA_HEADER + need, page);
  size_t bytes = want > least ? want : least;
  if (a->max_bytes != 0 && bytes > a->max_bytes - a->reserved) {
    size_t room = a->max_bytes > a->reserved ? a->max_bytes - a->reserved : 0;
    bytes = room / page * page;
    if (bytes < least) {
      errno = ENOMEM;
      return NULL;
    }
  }
  arena_chunk *c = st__os_map_aligned(bytes, page);
  if (c == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  c->size = bytes;
  c->seq = ++a->seq;
  c->top = chunk_data(c);
  a->reserved += bytes;
  a->nchunks++;
  return c;
}

static void arena_unmap_chunk(st_arena_t *a, arena_chunk *c) {
  a->reserved -= c->size;
  a->nchunks--;
  st__os_unmap(c, c->size);
}

/* A regular chunk leaves the stack: it becomes the spare if it is the largest seen. */
static void arena_retire_chunk(st_arena_t *a, arena_chunk *c) {
  if (a->spare != NULL && a->spare->size >= c->size) {
    arena_unmap_chunk(a, c);
    return;
  }
  if (a->spare != NULL) arena_unmap_chunk(a, a->spare);
  a->spare = c;
}

/* A new top chunk with room for need bytes: the spare if it is large enough. */
static arena_chunk *arena_new_top_chunk(st_arena_t *a, size_t need) {
  arena_chunk *c = a->spare;
  if (c != NULL && c->size - ARENA_HEADER >= need) {
    a->spare = NULL;
    c->seq = ++a->seq;
    c->top = chunk_data(c);
    return c;
  }
  c = arena_map_chunk(a, need, a->next_size);
  if (c != NULL && a->next_size < a->max_chunk) a->next_size *= 2;
  return c;
}

ST_INLINE void *arena_take(char **ptr, size_t size, size_t align) {
  char *p = (char *)st_align_up((uintptr_t)*ptr, align);
  *ptr = p + size;
  return p;
}

/* The request does not fit the top chunk: an oversized chunk, or a new top chunk. */
static ST_NOINLINE void *arena_alloc_slow(st_arena_t *a, size_t size, size_t align) {
  if (size > ARENA_MAX_REQUEST || align > ARENA_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = size + (align > ST_MIN_ALIGN ? align - ST_MIN_ALIGN : 0);
  if (need > a->next_size / 4) {
    arena_chunk *c = arena_map_chunk(a, need, 0);
    if (c == NULL) return NULL;
    c->prev = a->oversized;
    a->oversized = c;
    a->noversized++;
    return arena_take(&c->top, size, align);
  }
  arena_chunk *c = arena_new_top_chunk(a, need);
  if (c == NULL) return NULL;
  if (a->cur != NULL) a->cur->top = a->ptr;
  c->prev = a->cur;
  a->cur = c;
  a->ptr = chunk_data(c);
  a->end = (char *)c + c->size;
  return arena_take(&a->ptr, size, align);
}

/* The fast path: align the bump pointer, check the room, bump. */
ST_INLINE void *arena_alloc_inline(st_arena_t *a, size_t size, size_t align, const char *fn) {
  st__handle_check(a, ST_MAGIC_ARENA, fn);
  uintptr_t p = st_align_up((uintptr_t)a->ptr, align), end = (uintptr_t)a->end;
  if (ST_LIKELY(p <= end && size <= end - p && size != 0)) {
    a->ptr = (char *)p + size;
    return (void *)p;
  }
  if (size == 0) {
    errno = EINVAL;
    return NULL;
  }
  return arena_alloc_slow(a, size, align);
}

/* NULL, a dead handle, size 0, or no room in the current chunk. */
void *st_arena_alloc_slow(st_arena_t *a, size_t size) {
  if (ST_UNLIKELY(a == NULL)) {
    errno = EINVAL;
    return NULL;
  }
  return arena_alloc_inline(a, size, ST_MIN_ALIGN, "st_arena_alloc");
}

void *st_arena_alloc_aligned(st_arena_t *a, size_t size, size_t align) {
  if (a == NULL || !st_is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  if (align > ARENA_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  return arena_alloc_inline(a, size, align, "st_arena_alloc_aligned");
}

void *st_arena_calloc(st_arena_t *a, size_t n, size_t size) {
  size_t bytes;
  if (a == NULL || n == 0 || size == 0) {
    errno = EINVAL;
    return NULL;
  }
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = arena_alloc_inline(a, bytes, ST_MIN_ALIGN, "st_arena_calloc");
  return p != NULL ? memset(p, 0, bytes) : NULL; /* rewound memory is not zero */
}

char *st_arena_strdup(st_arena_t *a, const char *s) {
  if (a == NULL || s == NULL) {
    errno = EINVAL;
    return NULL;
  }
  size_t len = strlen(s) + 1;
  char *p = arena_alloc_inline(a, len, 1, "st_arena_strdup");
  return p != NULL ? memcpy(p, s, len) : NULL;
}

st_arena_mark_t st_arena_mark(st_arena_t *a) {
  st__handle_check(a, ST_MAGIC_ARENA, "st_arena_mark");
  if (a->cur == NULL) return (st_arena_mark_t){NULL, a->seq};
  return (st_arena_mark_t){a->cur, (size_t)(a->ptr - chunk_data(a->cur))};
}

/* Unmaps the oversized chunks mapped after sequence number seq. */
static void arena_drop_oversized_after(st_arena_t *a, size_t seq) {
  while (a->oversized != NULL && a->oversized->seq > seq) {
    arena_chunk *c = a->oversized;
    a->oversized = c->prev;
    a->noversized--;
    arena_unmap_chunk(a, c);
  }
}

/* The mark's chunk must be on the stack and its position not past the chunk's top. */
static bool arena_mark_valid(st_arena_t *a, st_arena_mark_t m) {
  if (m.chunk == NULL) return m.used <= a->seq;
  for (arena_chunk *c = a->cur; c != NULL; c = c->prev) {
    char *top = c == a->cur ? a->ptr : c->top;
    if (c == m.chunk) return m.used <= (size_t)(top - chunk_data(c));
  }
  return false;
}

void st_arena_release(st_arena_t *a, st_arena_mark_t mark) {
  st__handle_check(a, ST_MAGIC_ARENA, "st_arena_release");
  if (ST_UNLIKELY(!arena_mark_valid(a, mark)))
    st__fatal("st_arena_release(): mark (%p, %zu) is not a position of arena %p (released "
              "already, or taken from another arena?)",
              mark.chunk, mark.used, (void *)a);
  while (a->cur != mark.chunk) {
    arena_chunk *c = a->cur;
    a->cur = c->prev;
    arena_retire_chunk(a, c);
  }
  arena_chunk *c = a->cur;
  arena_drop_oversized_after(a, c != NULL ? c->seq : mark.used);
  a->ptr = c != NULL ? chunk_data(c) + mark.used : NULL;
  a->end = c != NULL ? (char *)c + c->size : NULL;
}

void st_arena_reset(st_arena_t *a) {
  st__handle_check(a, ST_MAGIC_ARENA, "st_arena_reset");
  arena_drop_oversized_after(a, 0);
  if (a->spare != NULL) arena_unmap_chunk(a, a->spare);
  a->spare = NULL;
  arena_chunk *keep = a->cur;
  if (keep == NULL) return;
  while (keep->prev != NULL) {
    arena_chunk *c = keep->prev;
    keep->prev = c->prev;
    arena_unmap_chunk(a, c);
  }
  a->ptr = chunk_data(keep);
}

void st_arena_destroy(st_arena_t *a) {
  if (a == NULL) return;
  st__handle_check(a, ST_MAGIC_ARENA, "st_arena_destroy");
  st_arena_reset(a);
  if (a->cur != NULL) arena_unmap_chunk(a, a->cur);
  st__handle_retire(a);
}

void st_arena_stats_get(st_arena_t *a, st_arena_stats *out) {
  st__handle_check(a, ST_MAGIC_ARENA, "st_arena_stats_get");
  *out = (st_arena_stats){.reserved_bytes = a->reserved, .chunks = a->nchunks,
                          .oversized = a->noversized};
  if (a->cur != NULL) a->cur->top = a->ptr;
  for (arena_chunk *c = a->cur; c != NULL; c = c->prev) out->used_bytes += c->top - chunk_data(c);
  for (arena_chunk *c = a->oversized; c != NULL; c = c->prev)
    out->used_bytes += c->top - chunk_data(c);
}
