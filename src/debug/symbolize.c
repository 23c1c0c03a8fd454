/*
 * symbolize.c — libdw through dlopen, or dladdr (see symbolize.h).
 */
#include "debug/symbolize.h"

#include <dlfcn.h>
#include <unistd.h>
#include <string.h>

#if defined(STRATA_HAVE_LIBDW)
#include <elfutils/libdwfl.h>

/* The libdwfl functions the report uses, resolved from libdw.so.1 at report time. */
#define DWFL_FUNCTIONS(X)                                                                      \
  X(dwfl_begin) X(dwfl_end) X(dwfl_linux_proc_report) X(dwfl_report_end) X(dwfl_addrmodule)    \
  X(dwfl_module_addrname) X(dwfl_module_getsrc) X(dwfl_lineinfo) X(dwfl_module_info)          \
  X(dwfl_linux_proc_find_elf) X(dwfl_standard_find_debuginfo)

static struct {
#define DWFL_POINTER(name) __typeof__(&name) name;
  DWFL_FUNCTIONS(DWFL_POINTER)
#undef DWFL_POINTER
} dw;

static void *libdw;
static Dwfl *session;
static Dwfl_Callbacks callbacks;

static bool libdw_load(void) {
  libdw = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
  if (libdw == NULL) return false;
  bool ok = true;
#define DWFL_RESOLVE(name) ok = ok && (*(void **)&dw.name = dlsym(libdw, #name)) != NULL;
  DWFL_FUNCTIONS(DWFL_RESOLVE)
#undef DWFL_RESOLVE
  return ok;
}

bool st__symbolize_begin(void) {
  if (session != NULL) return true;
  if (libdw == NULL && !libdw_load()) return false;
  callbacks.find_elf = dw.dwfl_linux_proc_find_elf;
  callbacks.find_debuginfo = dw.dwfl_standard_find_debuginfo;
  session = dw.dwfl_begin(&callbacks);
  if (session == NULL) return false;
  if (dw.dwfl_linux_proc_report(session, getpid()) != 0 ||
      dw.dwfl_report_end(session, NULL, NULL) != 0) {
    dw.dwfl_end(session);
    session = NULL;
  }
  return session != NULL;
}

static bool libdw_symbolize(uintptr_t pc, st_symbol_t *out) {
  if (session == NULL) return false;
  Dwfl_Module *module = dw.dwfl_addrmodule(session, pc);
  if (module == NULL) return false;
  out->function = dw.dwfl_module_addrname(module, pc);
  out->module = dw.dwfl_module_info(module, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  Dwfl_Line *line = dw.dwfl_module_getsrc(module, pc);
  if (line != NULL) out->file = dw.dwfl_lineinfo(line, NULL, &out->line, NULL, NULL, NULL);
  return true;
}

void st__symbolize_end(void) {
  if (session != NULL) dw.dwfl_end(session);
  session = NULL;
}
#else
bool st__symbolize_begin(void) { return false; }
static bool libdw_symbolize(uintptr_t pc, st_symbol_t *out) {
  (void)pc;
  (void)out;
  return false;
}
void st__symbolize_end(void) {}
#endif

void st__symbolize(uintptr_t addr, bool exact, st_symbol_t *out) {
  memset(out, 0, sizeof *out);
  uintptr_t pc = exact || addr == 0 ? addr : addr - 1;
  if (libdw_symbolize(pc, out) && out->function != NULL) return;
  Dl_info info;
  if (dladdr((void *)pc, &info) != 0) {
    if (out->function == NULL) out->function = info.dli_sname;
    if (out->module == NULL) out->module = info.dli_fname;
  }
}
