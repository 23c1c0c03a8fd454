/*
 * fuzz_replay.c — runs a fuzz target's entry point without libFuzzer, so the checked-in
 * corpus and the named regression inputs run in every build (gcc included, and under the
 * sanitizer and Valgrind tiers).
 *
 *   fuzz_replay [--no-slack] [--random RUNS] [FILE | DIRECTORY]...
 *
 * Each file (and each regular file of each directory) is one input. --random adds RUNS
 * inputs from a fixed-seed generator (xorshift), a cheap search where clang is missing.
 * --no-slack: never write past the requested size (for memcheck, see fuzz_ops.c).
 * Exit status 0 when every input ran; a broken promise aborts inside the target.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int fuzz_write_slack;

enum { INPUT_LIMIT = 1 << 20, RANDOM_MAX_OPS = 400 };
static uint8_t input[INPUT_LIMIT];

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  size_t n = fread(input, 1, sizeof input, f);
  fclose(f);
  LLVMFuzzerTestOneInput(input, n);
  return 0;
}

static int run_directory(const char *path, size_t *inputs) {
  DIR *d = opendir(path);
  if (d == NULL) {
    perror(path);
    return 1;
  }
  int status = 0;
  char file[4096];
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    struct stat st;
    snprintf(file, sizeof file, "%s/%s", path, e->d_name);
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    status |= run_file(file);
    ++*inputs;
  }
  closedir(d);
  return status;
}

static void run_random(long runs) {
  uint64_t x = 0x9E3779B97F4A7C15u;
  for (long r = 0; r < runs; r++) {
    size_t n = 4 * (1 + (size_t)(x % RANDOM_MAX_OPS));
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      input[i] = (uint8_t)(x >> 24);
    }
    LLVMFuzzerTestOneInput(input, n);
  }
}

int main(int argc, char **argv) {
  int status = 0;
  size_t inputs = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (strcmp(argv[i], "--no-slack") == 0) {
      fuzz_write_slack = 0;
    } else if (strcmp(argv[i], "--random") == 0 && i + 1 < argc) {
      long runs = strtol(argv[++i], NULL, 10);
      run_random(runs);
      inputs += (size_t)runs;
    } else if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      status |= run_directory(argv[i], &inputs);
    } else {
      status |= run_file(argv[i]);
      inputs++;
    }
  }
  printf("fuzz_replay: %zu inputs ran\n", inputs);
  return status;
}
