/*
 * fake_os.h — os ops for unit tests: the kernel's, plus a map that fails on demand, a
 * huge-page advice that can be refused and a clock the test moves by hand (STYLE.md §11).
 */
#ifndef STRATA_TESTS_FAKE_OS_H
#define STRATA_TESTS_FAKE_OS_H

#include <errno.h>
#include <stdbool.h>

#include "os/os.h"

static struct {
  const st_os_ops *kernel;
  long maps_until_failure; /* < 0: never fail; 0: fail every map from now on */
  long maps, failed_maps, purges;
  bool purge_fails;
  bool remap_fails; /* every remap refused (the caller must copy instead) */
  bool huge_advice_fails; /* every MADV_HUGEPAGE refused (no THP in the kernel) */
  long huge_advices;      /* MADV_HUGEPAGE calls the kernel accepted */
  size_t huge_advised_bytes;
  size_t purged_bytes;
  uint64_t now_ms;
} fake;

static void *fake_map(size_t size) {
  if (fake.maps_until_failure == 0) {
    fake.failed_maps++;
    errno = ENOMEM;
    return NULL;
  }
  if (fake.maps_until_failure > 0) fake.maps_until_failure--;
  fake.maps++;
  return fake.kernel->map(size);
}

static bool fake_unmap(void *addr, size_t size) { return fake.kernel->unmap(addr, size); }

static bool fake_purge(void *addr, size_t size, bool lazy) {
  if (fake.purge_fails) {
    errno = EAGAIN;
    return false;
  }
  fake.purges++;
  fake.purged_bytes += size;
  return fake.kernel->purge(addr, size, lazy);
}

static void *fake_remap(void *addr, size_t old_size, size_t new_size, void *target) {
  if (fake.remap_fails) {
    errno = ENOMEM;
    return NULL;
  }
  return fake.kernel->remap(addr, old_size, new_size, target);
}

static uint64_t fake_now_ms(void) { return fake.now_ms; }

static bool fake_advise_huge_pages(void *addr, size_t size) {
  if (fake.huge_advice_fails) {
    errno = EINVAL;
    return false;
  }
  fake.huge_advices++;
  fake.huge_advised_bytes += size;
  return fake.kernel->advise_huge_pages(addr, size);
}

static const st_os_ops fake_ops = {fake_map,   fake_unmap,  fake_purge,
                                   fake_remap, fake_now_ms, fake_advise_huge_pages};

/* Installs the fake ops; maps never fail until fake_fail_maps_after() says so. */
static inline void fake_os_install(void) {
  fake.kernel = st__os_kernel_ops();
  fake.maps_until_failure = -1;
  fake.now_ms = 1000;
  st__os_set_ops(&fake_ops);
}

static inline void fake_fail_maps_after(long n) { fake.maps_until_failure = n; }
static inline void fake_maps_never_fail(void) { fake.maps_until_failure = -1; }

#endif
