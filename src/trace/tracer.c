/*
 * tracer.c — the allocation tracer: libstrata-trace.so, strata with every call of the libc
 * malloc family recorded (trace/trace_format.h, docs/cli.md). `strata trace` preloads it.
 *
 * Owns: the libc names of this library variant (each calls strata's st__api_* function and
 * records one event), the per-thread event buffers and their flushing with write(2).
 * Does not own: allocation (api/), the file layout (trace_format.h), reading (cli/).
 * Never recurses into malloc: buffers come from st__os_map_aligned, the file name is formatted
 * by st__format_to, and a thread-local guard drops the events of any allocation made while
 * the tracer itself runs (in pthread_key_create or pthread_atfork, say).
 * Buffers: one per thread (TRACE_BUFFER_SIZE bytes, never reused, kept on a list), written
 * out as one chunk when full, when the thread exits (key destructor) and at process exit;
 * after the exit flush each event is written at once. Each buffer has a lock word: its
 * thread takes it around an append (uncontended but for the exit flush), the flush at exit
 * takes every buffer's. One file per process: the process `strata trace` started writes
 * STRATA_TRACE_FILE, every other (fork children, programs they exec) FILE.<pid>.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "base/atomics.h"
#include "base/report.h"
#include "os/os.h"
#include "strata.h"
#include "trace/trace_format.h"

#define ST_LIBC ST_EXPORT
#define TRACE_BUFFER_SIZE ((size_t)64 << 10)

typedef struct trace_buffer {
  struct trace_buffer *next; /* const once on the list */
  _Atomic int xlocked;       /* atomic: 1 while an append or a flush runs */
  uint32_t thread;           /* const after creation (reset in a fork child) */
  uint32_t events;           /* under xlocked: events since the last flush */
  size_t used;               /* under xlocked: bytes of events after the chunk header */
  uint64_t time0, last_ns;   /* under xlocked: the chunk's base time, the last event's */
  uintptr_t last_addr;       /* under xlocked: the previous address field */
  uint8_t data[];            /* chunk header, then events */
} trace_buffer;

enum { TRACE_CAPACITY = TRACE_BUFFER_SIZE - sizeof(trace_buffer) - TRACE_CHUNK_HEADER_SIZE };

enum { STATE_NEW, STATE_STARTING, STATE_ON, STATE_OFF };
static _Atomic int xstate = STATE_NEW;
static int trace_fd = -1;            /* const once STATE_ON (reopened in a fork child) */
static uint64_t start_ns;            /* const once STATE_ON */
static char base_path[4096];         /* STRATA_TRACE_FILE; const once STATE_ON */
static _Atomic(trace_buffer *) xbuffers; /* atomic: every thread's buffer, newest first */
static _Atomic uint32_t xthreads;    /* atomic: threads numbered so far */
static _Atomic int xdirect;          /* atomic: 1 after the exit flush: write each event */
static pthread_key_t exit_key;       /* its destructor flushes an exiting thread's buffer */

static __thread trace_buffer *tls_buffer;
static __thread int tls_inside; /* the tracer runs on this thread: record nothing */

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void write_all(const void *data, size_t size) {
  const uint8_t *p = data;
  while (size > 0) {
    ssize_t n = write(trace_fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      st__report("trace: write failed (errno %d); the trace is incomplete", errno);
      atomic_store(&xstate, STATE_OFF);
      return;
    }
    p += n;
    size -= (size_t)n;
  }
}

/* Opens this process's file and writes its header. */
static int open_file(int root) {
  char path[sizeof base_path + 24];
  if (root)
    st__format_to(path, sizeof path, "%s", base_path);
  else
    st__format_to(path, sizeof path, "%s.%d", base_path, (int)getpid());
  trace_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (trace_fd < 0) {
    st__report("trace: cannot write %s (errno %d); not tracing", path, errno);
    return 0;
  }
  trace_file_header h;
  memcpy(h.magic, TRACE_MAGIC, sizeof h.magic);
  h.version = TRACE_VERSION;
  h.pid = (uint32_t)getpid();
  h.start_ns = start_ns = now_ns();
  write_all(&h, sizeof h);
  return 1;
}

/* Called with the buffer locked. */
static void flush_locked(trace_buffer *b) {
  if (b->events == 0) return;
  trace_chunk_header h = {TRACE_CHUNK_MAGIC, b->thread, (uint32_t)b->used, b->events, b->time0};
  memcpy(b->data, &h, sizeof h);
  if (atomic_load(&xstate) == STATE_ON) write_all(b->data, TRACE_CHUNK_HEADER_SIZE + b->used);
  b->used = 0;
  b->events = 0;
  b->time0 = b->last_ns;
  b->last_addr = 0;
}

static void lock(trace_buffer *b) {
  while (st_exchange_acq_rel(&b->xlocked, 1) != 0) sched_yield();
}
static void unlock(trace_buffer *b) { st_store_release(&b->xlocked, 0); }

static void on_thread_exit(void *arg) {
  trace_buffer *b = arg;
  lock(b);
  flush_locked(b);
  unlock(b);
}

/* The buffer of the calling thread, made on its first event; NULL if no memory. */
static trace_buffer *own_buffer(void) {
  if (tls_buffer != NULL) return tls_buffer;
  trace_buffer *b = st__os_map_aligned(TRACE_BUFFER_SIZE, st__os_page_size());
  if (b == NULL) return NULL;
  b->thread = atomic_fetch_add(&xthreads, 1) + 1;
  b->time0 = b->last_ns = now_ns() - start_ns;
  trace_buffer *head = atomic_load(&xbuffers);
  do b->next = head;
  while (!atomic_compare_exchange_weak(&xbuffers, &head, b));
  tls_buffer = b;
  pthread_setspecific(exit_key, b);
  return b;
}

/* Every buffer on the list: written out; called at exit (each event after is written at
 * once) and never concurrently with itself. */
__attribute__((destructor)) static void flush_all(void) {
  if (atomic_load(&xstate) != STATE_ON) return;
  tls_inside++;
  for (trace_buffer *b = atomic_load(&xbuffers); b != NULL; b = b->next) {
    lock(b);
    flush_locked(b);
    unlock(b);
  }
  atomic_store(&xdirect, 1);
  tls_inside--;
}

/* In a fork child: its own file, only the forking thread's buffer (emptied: the parent
 * writes what it held), and thread numbers from 1 again. */
static void on_fork_child(void) {
  if (atomic_load(&xstate) != STATE_ON) return;
  close(trace_fd);
  atomic_store(&xbuffers, NULL);
  atomic_store(&xthreads, 0);
  trace_buffer *b = tls_buffer;
  tls_buffer = NULL;
  if (!open_file(0)) {
    atomic_store(&xstate, STATE_OFF);
    return;
  }
  if (b != NULL) { /* reuse the forking thread's buffer as thread 1 */
    memset(b, 0, sizeof *b);
    b->thread = atomic_fetch_add(&xthreads, 1) + 1;
    atomic_store(&xbuffers, b);
    tls_buffer = b;
  }
}

/* The first event of the process decides: trace (STRATA_TRACE_FILE set, file open) or not.
 * Events of other threads while that runs are not recorded. */
static ST_NOINLINE ST_COLD int trace_start(void) {
  int expected = atomic_load(&xstate); /* not tracing: a load per call, no write */
  if (expected != STATE_NEW ||
      !atomic_compare_exchange_strong(&xstate, &expected, STATE_STARTING))
    return expected == STATE_ON;
  tls_inside++;
  const char *file = getenv("STRATA_TRACE_FILE");
  const char *parent = getenv("STRATA_TRACE_PARENT");
  int state = STATE_OFF;
  if (file != NULL && file[0] != '\0' && strlen(file) < sizeof base_path) {
    memcpy(base_path, file, strlen(file) + 1);
    char *end = NULL;
    long parent_pid = parent != NULL ? strtol(parent, &end, 10) : 0;
    int root = parent == NULL || (end != parent && *end == '\0' && parent_pid == (long)getppid());
    if (open_file(root) && pthread_key_create(&exit_key, on_thread_exit) == 0 &&
        pthread_atfork(NULL, NULL, on_fork_child) == 0)
      state = STATE_ON;
  }
  atomic_store(&xstate, state);
  tls_inside--;
  return state == STATE_ON;
}

static uint8_t *put_addr(trace_buffer *b, uint8_t *p, const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  p = trace_put_varint(p, trace_zigzag((int64_t)(a - b->last_addr)));
  b->last_addr = a;
  return p;
}

/* Appends one event: op, then up to three numbers and addresses in the order of the file
 * layout. `t` is the event's time (taken by the caller before or after the call). */
static void record(trace_op op, uint64_t t, uint64_t n1, uint64_t n2, const void *a1,
                   const void *a2) {
  if (ST_UNLIKELY(atomic_load_explicit(&xstate, memory_order_acquire) != STATE_ON) &&
      !trace_start())
    return;
  if (tls_inside) return;
  tls_inside++;
  int saved_errno = errno; /* the traced call's errno is the program's */
  trace_buffer *b = own_buffer();
  if (b != NULL) {
    lock(b);
    t = t > start_ns ? t - start_ns : 0; /* the first event's time predates the start */
    uint8_t *p = b->data + TRACE_CHUNK_HEADER_SIZE + b->used;
    *p++ = (uint8_t)op;
    p = trace_put_varint(p, t >= b->last_ns ? t - b->last_ns : 0);
    b->last_ns = t > b->last_ns ? t : b->last_ns;
    switch (op) {
    case TRACE_MALLOC:
    case TRACE_CALLOC: p = put_addr(b, trace_put_varint(p, n1), a1); break;
    case TRACE_MEMALIGN: p = put_addr(b, trace_put_varint(trace_put_varint(p, n1), n2), a1); break;
    case TRACE_REALLOC: /* old address, size, new address, then the call's duration */
      p = put_addr(b, trace_put_varint(put_addr(b, p, a1), n1), a2);
      p = trace_put_varint(p, n2);
      break;
    case TRACE_FREE: p = put_addr(b, p, a1); break;
    }
    b->used = (size_t)(p - (b->data + TRACE_CHUNK_HEADER_SIZE));
    b->events++;
    if (b->used > TRACE_CAPACITY - TRACE_EVENT_MAX || atomic_load(&xdirect))
      flush_locked(b);
    unlock(b);
  }
  errno = saved_errno;
  tls_inside--;
}

static void *record_alloc(trace_op op, size_t size, void *p) {
  record(op, now_ns(), size, 0, p, NULL);
  return p;
}

static void *record_aligned(size_t alignment, size_t size, void *p) {
  record(TRACE_MEMALIGN, now_ns(), alignment, size, p, NULL);
  return p;
}

/* A free is recorded before it happens, an allocation after: in time order an address is
 * always released before it is handed out again, whichever threads do it. */
static void record_free(void *p) {
  if (p != NULL) record(TRACE_FREE, now_ns(), 0, 0, p, NULL);
}

/* A realloc releases its old address when it starts and hands out the new one when it
 * returns: both times are in the event (start, then the duration as the last field). */
static void *record_realloc(void *old, size_t total, void *p, uint64_t t0) {
  record(TRACE_REALLOC, t0, total, now_ns() - t0, old, p);
  return p;
}

/* C23 names that glibc 2.36's headers do not declare yet. */
ST_LIBC void free_sized(void *p, size_t size);
ST_LIBC void free_aligned_sized(void *p, size_t alignment, size_t size);

ST_LIBC void *malloc(size_t size) { return record_alloc(TRACE_MALLOC, size, st__api_malloc(size)); }
ST_LIBC void free(void *p) {
  record_free(p);
  st__api_free(p);
}
ST_LIBC void *calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return st__api_calloc(count, size);
  return record_alloc(TRACE_CALLOC, total, st__api_calloc(count, size));
}
ST_LIBC void *realloc(void *p, size_t size) {
  uint64_t t0 = now_ns();
  return record_realloc(p, size, st__api_realloc(p, size), t0);
}
ST_LIBC void *reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return st__api_reallocarray(p, count, size);
  uint64_t t0 = now_ns();
  return record_realloc(p, total, st__api_reallocarray(p, count, size), t0);
}
ST_LIBC int posix_memalign(void **out, size_t alignment, size_t size) {
  int err = st__api_posix_memalign(out, alignment, size);
  if (err == 0) record_aligned(alignment, size, *out);
  return err;
}
ST_LIBC void *aligned_alloc(size_t alignment, size_t size) {
  return record_aligned(alignment, size, st__api_memalign(alignment, size));
}
ST_LIBC void *memalign(size_t alignment, size_t size) {
  return record_aligned(alignment, size, st__api_memalign(alignment, size));
}
ST_LIBC void *valloc(size_t size) {
  return record_aligned(st__os_page_size(), size, st__api_valloc(size));
}
ST_LIBC void *pvalloc(size_t size) {
  return record_aligned(st__os_page_size(), size, st__api_pvalloc(size));
}
ST_LIBC size_t malloc_usable_size(void *p) { return st__api_usable_size(p); }
ST_LIBC int malloc_trim(size_t pad) { return st__api_trim(pad); }
ST_LIBC void free_sized(void *p, size_t size) {
  record_free(p);
  st__api_free_sized(p, size);
}
ST_LIBC void free_aligned_sized(void *p, size_t alignment, size_t size) {
  record_free(p);
  st__api_free_aligned_sized(p, alignment, size);
}
ST_LIBC void malloc_stats(void) { st_stats_print(stderr, ST_STATS_TEXT); }
