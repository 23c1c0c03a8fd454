/*
 * random — random sizes 8 B..32 KiB, a live set of ~10k blocks, replace-a-random-slot.
 *
 * Single-threaded: measures size-class lookup across many classes, reuse of freed blocks
 * in random order, and how much memory the allocator holds beyond the ~40 MB live set
 * (peak RSS / live bytes is the fragmentation the runner reports).
 * ops counts malloc calls. Usage: random [SCALE]
 */
#include "random_pattern.h"

int main(int argc, char **argv) {
  unsigned long scale = bench_start("random", argc, argv, "[SCALE]");
  uint64_t ops;
  uint64_t h = random_pattern_run(1, RANDOM_SLOTS, bench_scaled(RANDOM_STEPS_FULL, scale, 1), &ops);
  bench_result("random", ops, h);
  return 0;
}
