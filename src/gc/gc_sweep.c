/*
 * gc_sweep.c — eager sweep of the block metadata (gc_sweep.h).
 *
 * Partial blocks are pushed in descending address order so that allocation, which pops
 * them, fills the lowest addresses first and empty blocks tend to cluster at the top.
 */
#include "gc/gc_sweep.h"

#include "gc/gc_heap.h"

/* Sweeps one small block; returns its survivors. */
static size_t sweep_small(st_gc_block *b, uint32_t epoch) {
  size_t live = 0;
  for (size_t w = 0; w < ST_GC_BITMAP_WORDS; w++) {
    live += (size_t)__builtin_popcountll(b->mark[w]);
    b->alloc[w] = b->mark[w];
    b->mark[w] = 0;
  }
  if (live == 0) {
    st__gc_release_blocks(b, epoch);
  } else if (live < b->nobjs) {
    st_gc_class *c = &st__gc_heap->classes[b->atomic][b->cls];
    b->next_partial = c->partial;
    b->on_partial = true;
    c->partial = b;
  }
  return live;
}

static void sweep_arena(st_gc_arena *a, uint32_t epoch, st_gc_sweep_result *r) {
  for (size_t i = a->high_water; i-- > 0;) {
    st_gc_block *b = &a->desc[i];
    if (b->kind == ST_GC_BLOCK_SMALL) {
      size_t live = sweep_small(b, epoch);
      r->live_objects += live;
      r->live_bytes += live * b->obj_size;
    } else if (b->kind == ST_GC_BLOCK_LARGE) {
      if (b->mark[0] & 1) {
        b->mark[0] = 0;
        r->live_objects++;
        r->live_bytes += (size_t)b->run << ST_GC_BLOCK_SHIFT;
      } else {
        st__gc_release_blocks(b, epoch);
      }
    }
  }
}

st_gc_sweep_result st__gc_sweep(uint32_t epoch) {
  st_gc_sweep_result r = {0, 0};
  for (size_t i = 0; i < st__gc_heap->arena_count; i++)
    sweep_arena(&st__gc_heap->arenas[i], epoch, &r);
  return r;
}
