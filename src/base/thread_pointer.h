/*
 * thread_pointer.h — the calling thread's identity as the C library's thread pointer.
 *
 * Owns: reading the thread pointer and comparing a value with it. On x86-64 the thread
 * pointer is the word at %fs:0 (the thread control block points at itself there), so the
 * compare is one instruction with a memory operand and needs no TLS offset from the GOT.
 * Invariant the callers rely on: two live threads never have the same thread pointer, but
 * a new thread may get the one of a thread that has exited (its control block is reused):
 * whatever a thread stores under its identity it takes back before it exits. It is never 0.
 */
#ifndef ST_BASE_THREAD_POINTER_H
#define ST_BASE_THREAD_POINTER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/macros.h"

ST_INLINE uintptr_t st_thread_pointer(void) {
#if defined(__x86_64__)
  uintptr_t self;
  __asm__("mov %%fs:0, %0" : "=r"(self));
  return self;
#else
  return (uintptr_t)__builtin_thread_pointer();
#endif
}

/* Whether id is the calling thread's st_thread_pointer(). Not volatile: the value cannot
 * change while the thread runs, so the compiler may merge or move the read. */
ST_INLINE bool st_is_thread_pointer(uintptr_t id) {
#if defined(__x86_64__)
  bool same;
  __asm__("cmp %%fs:0, %1" : "=@ccz"(same) : "r"(id));
  return same;
#else
  return id == st_thread_pointer();
#endif
}

#endif
