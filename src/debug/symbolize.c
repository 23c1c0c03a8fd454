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
  X(dwfl_linux_proc_find_elf) X(dwfl_standard_find_debuginfo) X(dwfl_module_nextcu)          \
  X(dwarf_haspc) X(dwarf_getsrc_die) X(dwarf_linesrc) X(dwarf_lineno)

static struct {
#define DWFL_POINTER(name) __typeof__(&name) name;
  DWFL_FUNCTIONS(DWFL_POINTER)
#undef DWFL_POINTER
} dw;

static void *libdw;
static Dwfl *dwfl;
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
  if (dwfl != NULL) return true;
  if (libdw == NULL && !libdw_load()) return false;
  callbacks.find_elf = dw.dwfl_linux_proc_find_elf;
  callbacks.find_debuginfo = dw.dwfl_standard_find_debuginfo;
  dwfl = dw.dwfl_begin(&callbacks);
  if (dwfl == NULL) return false;
  if (dw.dwfl_linux_proc_report(dwfl, getpid()) != 0 ||
      dw.dwfl_report_end(dwfl, NULL, NULL) != 0) {
    dw.dwfl_end(dwfl);
    dwfl = NULL;
  }
  return dwfl != NULL;
}

/* Objects without .debug_aranges (clang's default) defeat the address index behind
 * dwfl_module_getsrc: ask each compile unit whether it holds pc. */
static void line_from_units(Dwfl_Module *module, uintptr_t pc, st_symbol_t *out) {
  Dwarf_Addr bias;
  for (Dwarf_Die *unit = NULL; (unit = dw.dwfl_module_nextcu(module, unit, &bias)) != NULL;) {
    if (dw.dwarf_haspc(unit, pc - bias) != 1) continue;
    Dwarf_Line *line = dw.dwarf_getsrc_die(unit, pc - bias);
    if (line != NULL && dw.dwarf_lineno(line, &out->line) == 0)
      out->file = dw.dwarf_linesrc(line, NULL, NULL);
    return;
  }
}

static bool libdw_symbolize(uintptr_t pc, st_symbol_t *out) {
  if (dwfl == NULL) return false;
  Dwfl_Module *module = dw.dwfl_addrmodule(dwfl, pc);
  if (module == NULL) return false;
  out->function = dw.dwfl_module_addrname(module, pc);
  out->module = dw.dwfl_module_info(module, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  Dwfl_Line *line = dw.dwfl_module_getsrc(module, pc);
  if (line != NULL) out->file = dw.dwfl_lineinfo(line, NULL, &out->line, NULL, NULL, NULL);
  else line_from_units(module, pc, out);
  return true;
}

void st__symbolize_end(void) {
  if (dwfl != NULL) dw.dwfl_end(dwfl);
  dwfl = NULL;
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
