/*
 * common.h — helpers shared by strata's benchmark workloads (header only).
 *
 * Owns: the seeded xorshift generator, the size distributions, the fill/verify pattern that
 * makes every block's pages resident and its contents checkable, the checksum mix, argument
 * parsing and the one result line each workload prints.
 * Does not own: the timing the comparison rests on (the runner times whole processes; a
 * workload may add its own clock readings, see bench_now) or any allocator choice (the
 * workloads call plain malloc/free; LD_PRELOAD picks the allocator).
 * Invariants: everything is deterministic given the seed, so the checksummed part of the
 * result line (workload, ops, checksum) is identical under every correct allocator; a
 * block's contents never depend on its address. Measured fields (times, RSS) follow the
 * checksum on the same line and are never compared.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One word is written per page so the kernel must back every page of a block: peak RSS then
 * reflects what a program that uses its memory would see, at a fraction of memset's cost. */
#define BENCH_PAGE 4096u

static const char *bench_name = "?"; /* set once by bench_start, read by the diagnostics */

/* xorshift64* (Marsaglia, Vigna): tiny, fast, and identical on every platform. */
typedef struct bench_rng {
  uint64_t s; /* never zero */
} bench_rng;

static inline bench_rng bench_rng_seed(uint64_t seed) {
  bench_rng r = {seed * 0x9e3779b97f4a7c15ull | 1u};
  return r;
}

static inline uint64_t bench_rng_next(bench_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n); the modulo bias is irrelevant for benchmarking. */
static inline uint64_t bench_rng_below(bench_rng *r, uint64_t n) { return bench_rng_next(r) % n; }

/* Log-uniform size in [lo, hi]: every power-of-two band is equally likely, as in real
 * programs where small blocks dominate counts and large ones dominate bytes. */
static inline size_t bench_size_log_uniform(bench_rng *r, size_t lo, size_t hi) {
  unsigned lo_bits = 63u - (unsigned)__builtin_clzll(lo);
  unsigned hi_bits = 63u - (unsigned)__builtin_clzll(hi);
  unsigned band = lo_bits + (unsigned)bench_rng_below(r, hi_bits - lo_bits + 1u);
  size_t base = (size_t)1 << band;
  size_t size = base + (size_t)bench_rng_below(r, base);
  return size < lo ? lo : size > hi ? hi : size;
}

/* Order-sensitive 64-bit mix (a multiply-xorshift step), cheap and good enough to make any
 * difference in the data show in the final checksum. */
static inline uint64_t bench_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

/* Makes the compiler believe p escapes and memory changed, so it can neither delete a
 * malloc/free pair nor forward stored values into later loads of the block. */
static inline void bench_escape(const void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static inline void bench_die(const char *what) {
  fprintf(stderr, "workload %s: %s\n", bench_name, what);
  exit(2);
}

static inline void *bench_malloc(size_t size) {
  void *p = malloc(size);
  if (p == NULL) bench_die("malloc returned NULL");
  bench_escape(p);
  return p;
}

static inline unsigned char bench_tail_byte(uint64_t tag) {
  return (unsigned char)(tag >> 56) ^ 0xa5u;
}

/* The last byte gets its own mark unless it falls inside the last page word, which happens
 * exactly when size - 8 is a multiple of the page (the 8-byte block, for one). */
static inline int bench_has_tail(size_t size) { return (size - 8) % BENCH_PAGE != 0; }

/* Writes tag at offset 0 and at every page boundary inside the block, plus a tail byte.
 * Requires size >= 8. */
static inline void bench_fill(void *p, size_t size, uint64_t tag) {
  unsigned char *b = p;
  for (size_t off = 0; off + 8 <= size; off += BENCH_PAGE) memcpy(b + off, &tag, 8);
  if (bench_has_tail(size)) b[size - 1] = bench_tail_byte(tag);
}

static inline void bench_corrupt(const void *p, size_t size, size_t off) {
  fprintf(stderr, "workload %s: block %p of %zu bytes corrupted at offset %zu\n", bench_name, p,
          size, off);
  exit(3);
}

/* Reads back what bench_fill wrote, exits on any difference, and folds it into h. */
static inline uint64_t bench_check(const void *p, size_t size, uint64_t tag, uint64_t h) {
  const unsigned char *b = p;
  for (size_t off = 0; off + 8 <= size; off += BENCH_PAGE) {
    uint64_t v;
    memcpy(&v, b + off, 8);
    if (v != tag) bench_corrupt(p, size, off);
    h = bench_mix(h, v);
  }
  if (bench_has_tail(size)) {
    if (b[size - 1] != bench_tail_byte(tag)) bench_corrupt(p, size, size - 1);
    h = bench_mix(h, b[size - 1]);
  }
  return bench_mix(h, size);
}

/* SCALE (argv[1]) is a percentage of the full run: 100 is what `make bench` uses, 1 is a
 * smoke test. Parses it; 100 when absent. */
static inline unsigned long bench_start(const char *name, int argc, char **argv,
                                        const char *usage) {
  bench_name = name;
  if (argc < 2) return 100;
  char *end;
  unsigned long scale = strtoul(argv[1], &end, 10);
  if (*end != '\0' || scale == 0 || scale > 100000) {
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    exit(64);
  }
  return scale;
}

/* A count that is `full` at scale 100 and proportional to the scale, but at least `min`:
 * enough that even a smoke test reaches every size the workload is meant to exercise. */
static inline uint64_t bench_scaled(uint64_t full, unsigned long scale, uint64_t min) {
  uint64_t n = full * scale / 100;
  return n < min ? min : n;
}

/* Seconds on CLOCK_MONOTONIC, for the rates a workload measures itself (pool-*). */
static inline double bench_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline void bench_sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* A "Key:   123 kB" line of /proc/self/status (VmRSS, VmHWM), in KiB; read with open/read
 * so that no stdio buffer is allocated from the allocator being measured. -1 if
 * unavailable. */
static inline long bench_status_kib(const char *key) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  size_t klen = strlen(key);
  for (char *p = buf; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, key, klen) == 0 && p[klen] == ':') return strtol(p + klen + 1, NULL, 10);
  return -1;
}

/* The one line the runner parses: `workload= ops= checksum=` are compared across
 * allocators; `measured` (space-separated key=number fields, or "") is appended after them
 * for the runner to tabulate, and differs from run to run. */
static inline void bench_result_measured(const char *name, uint64_t ops, uint64_t checksum,
                                         const char *measured) {
  printf("workload=%s ops=%llu checksum=%016llx%s%s\n", name, (unsigned long long)ops,
         (unsigned long long)checksum, measured[0] != '\0' ? " " : "", measured);
  fflush(stdout);
}

static inline void bench_result(const char *name, uint64_t ops, uint64_t checksum) {
  bench_result_measured(name, ops, checksum, "");
}

#endif
