/*
 * leaks.c — the leak report at exit (STRATA_LEAKS=1, docs/debugging.md).
 *
 * A block is a leak when no pointer to it can be found from the roots strata can see:
 * the writable segments of every loaded object (data, bss: dl_iterate_phdr) and the
 * calling thread's stack, then transitively the contents of every block reached (a
 * conservative mark: any aligned word holding an address inside a block keeps it; for
 * large and huge blocks, an address in the block's first page). Not scanned: stacks and
 * registers of other threads still running at exit, thread-local storage, and memory
 * mapped outside strata, so blocks only referenced from there are reported too.
 * Leaks are grouped by allocation stack, largest total first, symbolized with libdw.
 */
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "base/options.h"
#include "core/page.h"
#include "core/pagemap.h"
#include "debug/debug.h"
#include "debug/leaks.h"
#include "debug/symbolize.h"
#include "debug/track.h"

extern void *__libc_stack_end;

/* ---- marking -------------------------------------------------------------------------- */

typedef struct mark_state {
  st_record_t **work; /* records reached whose contents are not scanned yet */
  size_t top, cap;
} mark_state;

/* The record of the block that contains addr, or NULL. */
static st_record_t *block_at(uintptr_t addr) {
  st_span_t *span = st__pagemap_lookup((const void *)addr);
  if (span == NULL) return NULL;
  uintptr_t start;
  if (span->kind == ST_SPAN_SLAB) {
    if (span->block_size == 0) return NULL;
    start = span->start + (addr - span->start) / span->block_size * span->block_size;
  } else if (span->kind == ST_SPAN_LARGE || span->kind == ST_SPAN_HUGE) {
    start = span->start;
  } else {
    return NULL;
  }
  st_record_t *r = st__track_find_locked(start);
  return r != NULL && addr < start + (r->size == 0 ? 1 : r->size) ? r : NULL;
}

static void scan_range(mark_state *m, uintptr_t from, uintptr_t to) {
  from = st_align_up(from, sizeof(void *));
  for (uintptr_t a = from; a + sizeof(void *) <= to; a += sizeof(void *)) {
    uintptr_t word = *(const uintptr_t *)a;
    if (word < 4096) continue;
    st_record_t *r = block_at(word);
    if (r == NULL || r->reachable) continue;
    r->reachable = true;
    if (m->top < m->cap) m->work[m->top++] = r;
  }
}

static void drain(mark_state *m) {
  while (m->top > 0) {
    st_record_t *r = m->work[--m->top];
    scan_range(m, ~r->addr, ~r->addr + r->size);
  }
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  mark_state *m = arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    scan_range(m, start, start + ph->p_memsz);
    drain(m);
  }
  return 0;
}

typedef struct mark_job {
  mark_state m;
  uintptr_t stack_low;
} mark_job;

static void clear_mark(st_record_t *r, void *arg) {
  (void)arg;
  r->reachable = false;
}

static void mark_locked(void *arg) {
  mark_job *job = arg;
  dl_iterate_phdr(scan_object, &job->m);
  /* The main thread's stack, when the report runs on it (exit from main or a destructor). */
  uintptr_t stack_end = (uintptr_t)__libc_stack_end;
  if (job->stack_low < stack_end && stack_end - job->stack_low < ((size_t)64 << 20)) {
    scan_range(&job->m, job->stack_low, stack_end);
    drain(&job->m);
  }
}

/* ---- grouping and printing ------------------------------------------------------------ */

typedef struct group_state {
  const st_stack_t **groups; /* distinct stacks with leaks */
  size_t count, cap;
  size_t bytes, blocks, no_stack_bytes, no_stack_blocks;
} group_state;

static void group_record(st_record_t *r, void *arg) {
  group_state *g = arg;
  if (r->reachable) return;
  g->bytes += r->size;
  g->blocks++;
  st_stack_t *s = (st_stack_t *)r->stack;
  if (s == NULL) {
    g->no_stack_bytes += r->size;
    g->no_stack_blocks++;
    return;
  }
  if (s->leak_blocks == 0 && g->count < g->cap) g->groups[g->count++] = s;
  s->leak_bytes += r->size;
  s->leak_blocks++;
}

/* Shell sort, largest first (qsort may allocate). */
static void sort_groups(const st_stack_t **a, size_t n) {
  for (size_t gap = n / 2; gap > 0; gap /= 2) {
    for (size_t i = gap; i < n; i++) {
      const st_stack_t *x = a[i];
      size_t j = i;
      for (; j >= gap && a[j - gap]->leak_bytes < x->leak_bytes; j -= gap) a[j] = a[j - gap];
      a[j] = x;
    }
  }
}

static const char *const allocator_names[] = {"malloc", "calloc", "realloc", "reallocarray",
                                              "aligned_alloc", "memalign", "posix_memalign",
                                              "valloc", "pvalloc"};

/* Frames of strata itself: its st_ functions, the libc names it defines, its library. */
static bool is_own_frame(const st_symbol_t *sym) {
  if (sym->module != NULL && strstr(sym->module, "libstrata") != NULL) return true;
  if (sym->function == NULL) return false;
  if (strncmp(sym->function, "st_", 3) == 0) return true;
  for (size_t i = 0; i < ST_ARRAY_LEN(allocator_names); i++) {
    if (strcmp(sym->function, allocator_names[i]) == 0) return true;
  }
  return false;
}

/* glibc's own memory that it keeps where the scan cannot see: the dynamic thread vector of
 * each thread lives in the thread's control block, which glibc caches with the stack of
 * an exited thread for reuse. */
static const char *const suppressed_functions[] = {"_dl_allocate_tls", "allocate_dtv",
                                                   "_dl_resize_dtv"};

static bool is_suppressed(const st_stack_t *s) {
  st_symbol_t sym;
  for (uint32_t i = 0; i < s->depth; i++) {
    st__symbolize(s->frames[i], false, &sym);
    for (size_t k = 0; sym.function != NULL && k < ST_ARRAY_LEN(suppressed_functions); k++) {
      if (strcmp(sym.function, suppressed_functions[k]) == 0) return true;
    }
  }
  return false;
}

/* Drops the suppressed groups from the list and the totals. */
static void suppress_groups(group_state *g) {
  size_t kept = 0;
  for (size_t i = 0; i < g->count; i++) {
    const st_stack_t *s = g->groups[i];
    if (is_suppressed(s)) {
      g->bytes -= s->leak_bytes;
      g->blocks -= s->leak_blocks;
    } else {
      g->groups[kept++] = s;
    }
  }
  g->count = kept;
}

static void print_stack(FILE *f, const st_stack_t *s) {
  uint32_t i = 0, shown = 0;
  st_symbol_t sym;
  while (i < s->depth) { /* skip strata's own frames on top */
    st__symbolize(s->frames[i], false, &sym);
    if (!is_own_frame(&sym)) break;
    i++;
  }
  for (; i < s->depth && shown < (uint32_t)st_option(ST_OPTION_LEAKS_DEPTH); i++, shown++) {
    st__symbolize(s->frames[i], false, &sym);
    fprintf(f, "    #%u 0x%zx in %s", shown, (size_t)s->frames[i],
            sym.function != NULL ? sym.function : "??");
    if (sym.file != NULL) fprintf(f, " %s:%d", sym.file, sym.line);
    else if (sym.module != NULL) fprintf(f, " (%s)", sym.module);
    fputc('\n', f);
  }
}

size_t st__leaks_report(FILE *f) {
  if (!st__track_enabled()) return 0;
  mark_job job = {.stack_low = (uintptr_t)__builtin_frame_address(0)};
  size_t live = st__track_live_count();
  job.m.cap = live + 1;
  job.m.work = st__track_map(job.m.cap * sizeof(*job.m.work));
  group_state g = {.cap = live + 1};
  g.groups = st__track_map(g.cap * sizeof(*g.groups));
  if (job.m.work == NULL || g.groups == NULL) {
    fprintf(f, "strata: leak check skipped: out of memory\n");
    return 0;
  }
  st__track_for_each(clear_mark, NULL);
  st__track_locked(mark_locked, &job);
  st__track_for_each(group_record, &g);
  st__track_set_busy(true);
  bool full = g.blocks != 0 && st__symbolize_begin();
  if (g.blocks != 0) suppress_groups(&g);
  if (g.blocks != 0) {
    sort_groups(g.groups, g.count);
    fprintf(f, "\n=================================================================\n"
               "strata: detected memory leaks%s\n",
            full ? "" : " (no libdw: function names of exported symbols only)");
    for (size_t i = 0; i < g.count; i++) {
      fprintf(f, "\nLeak of %zu byte(s) in %zu object(s) allocated from:\n",
              g.groups[i]->leak_bytes, g.groups[i]->leak_blocks);
      print_stack(f, g.groups[i]);
    }
    if (g.no_stack_blocks != 0)
      fprintf(f, "\nLeak of %zu byte(s) in %zu object(s) allocated without a recorded stack\n",
              g.no_stack_bytes, g.no_stack_blocks);
    fprintf(f, "\nSUMMARY: strata: %zu byte(s) leaked in %zu allocation(s).\n", g.bytes, g.blocks);
  }
  st__symbolize_end();
  st__track_set_busy(false);
  st__track_unmap(job.m.work, job.m.cap * sizeof(*job.m.work));
  st__track_unmap(g.groups, g.cap * sizeof(*g.groups));
  return g.blocks;
}
