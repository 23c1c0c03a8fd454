#!/usr/bin/env python3
"""check_debug.py — checks of strata's observability that need a real parser or a child
process: statistics JSON (python's json), the leak report, memcheck with strata preloaded,
the heap dump and its SVG picture, and that docs/stats.md names every statistic.

usage: check_debug.py MODE ARGS...   (see the functions below; CTest passes the paths)
Exit 0 on success, 1 with a message per failed check, 77 when a tool is missing (skip).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAILED:", what)


def stats_names(header):
    """Field names of the X-macro lists in strata.h, in order, per list."""
    text = open(header).read()
    lists = {}
    for name in ("ST_STATS_FIELDS", "ST_STATS_EVENTS", "ST_STATS_CLASS_FIELDS"):
        body = re.search(r"#define %s\(X\)(.*?)\n\n" % name, text, re.S).group(1)
        lists[name] = re.findall(r"X\((\w+),", body)
    return lists


def run(cmd, env=None, timeout=120):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=timeout)


def mode_stats_json(program, lib, header):
    names = stats_names(header)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "stats.json")
        r = run([program], {"LD_PRELOAD": lib, "STRATA_STATS": "json", "STRATA_STATS_FILE": path})
        check(r.returncode == 0, f"{program} exits 0 with STRATA_STATS=json (got {r.returncode})")
        stats = json.load(open(path))
    for name in names["ST_STATS_FIELDS"] + names["ST_STATS_EVENTS"]:
        check(isinstance(stats.get(name), int), f"JSON has integer field {name}")
    check(stats["version"] == 1, "JSON version 1")
    check(stats["live_bytes"] == stats["small_live_bytes"] + stats["large_live_bytes"]
          + stats["huge_live_bytes"], "live_bytes is the sum of its parts")
    check(stats["committed_bytes"] <= stats["mapped_bytes"], "committed <= mapped")
    check(0.0 <= stats["fragmentation"] <= 1.0, "fragmentation in [0, 1]")
    check(len(stats["classes"]) > 0, "some size class in use")
    for k in stats["classes"]:
        for name in names["ST_STATS_CLASS_FIELDS"] + ["class", "fill"]:
            check(name in k, f"class entry has {name}")
        check(k["blocks_live"] <= k["blocks_capacity"], "class live <= capacity")
    check(sum(k["refills"] for k in stats["classes"]) == stats["refills"],
          "refills is the sum of the classes")
    r = run([program], {"LD_PRELOAD": lib, "STRATA_STATS": "1"})
    check("strata statistics (version 1)" in r.stderr and "live_bytes" in r.stderr,
          "STRATA_STATS=1 prints the text table to stderr")
    r = run([program], {"LD_PRELOAD": lib, "STRATA_STATS": "yaml"})
    check("STRATA_STATS" in r.stderr and "warning" in r.stderr, "a bad STRATA_STATS warns")


def mode_leaks(program, lib):
    env = {"LD_PRELOAD": lib, "STRATA_LEAKS": "1", "STRATA_LEAKS_EXITCODE": "42"}
    r = run([program], env)
    report = r.stderr
    check(r.returncode == 42, f"exit status is STRATA_LEAKS_EXITCODE (got {r.returncode})")
    check("leak_program: done" in r.stdout, "the program's stdout is flushed before the exit")
    check("Leak of 4321 byte(s) in 1 object(s)" in report, "the planted leak's size is reported")
    frames = re.findall(r"#0 0x[0-9a-f]+ in (\w+) (\S+)", report)
    check(any(f == "planted_leak_site" and "leak_program.c:" in loc for f, loc in frames),
          "the first frame names planted_leak_site with its file:line")
    check("build_reachable_list" not in report, "blocks reachable from a global are not leaks")
    check("SUMMARY: strata: 4321 byte(s) leaked in 1 allocation(s)." in report, "summary line")
    r = run([program, "clean"], env)
    check(r.returncode == 0 and "detected memory leaks" not in r.stderr,
          f"no leak, no report, exit 0 (got {r.returncode}: {r.stderr[-300:]})")
    if failures:
        print(report)


def mode_memcheck(program, lib):
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("SKIP: valgrind not installed (apt-get install -y valgrind)")
        sys.exit(77)
    r = run([valgrind, "--trace-children=yes", "--leak-check=full", "--soname-synonyms=somalloc=NONE",
             "env", f"LD_PRELOAD={lib}", program], timeout=300)
    out = r.stderr
    check("memcheck_program: done" in r.stdout, "the program ran to its end")
    check(re.search(r"4,000 bytes in 1 blocks are definitely lost", out) is not None,
          "memcheck reports the planted leak as definitely lost")
    check(re.search(r"definitely lost.*\n(==\d+==.*\n)*?==\d+==\s+by 0x[0-9A-F]+: memcheck_planted_leak",
                    out) is not None, "the leak's stack names memcheck_planted_leak")
    check(re.search(r"100,000 bytes in 1 blocks are definitely lost", out) is not None,
          "memcheck reports the planted large leak as definitely lost")
    check(re.search(r"definitely lost: 104,000 bytes in 2 blocks", out) is not None,
          "nothing else is definitely lost")
    check("40 bytes inside a block of size 64 free'd" in out, "memcheck reports the read after free")
    check("2 bytes after a block of size 10 alloc'd" in out, "memcheck reports the read past the end")
    if failures:
        print(out)


def mode_dump(program, renderer):
    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, n) for n in ("heap.txt", "heap.json", "stats.json", "heap.svg",
                                              "heap.png")]
        r = run([program] + paths[:3])
        check(r.returncode == 0, f"dump program exits 0 (got {r.returncode}: {r.stderr})")
        info = dict(re.findall(r"(\w+)=(\d+)", r.stdout.split("mallinfo2:")[1].splitlines()[0]))
        check(info.get("hblks") == "1" and info.get("hblkhd") == str(70 << 20),
              f"mallinfo2 counts the huge block ({info})")
        check(int(info.get("uordblks", 0)) >= 300000, "mallinfo2 counts the large block in uordblks")
        check("strata statistics (version 1)" in r.stderr, "malloc_stats prints strata's table")
        text = open(paths[0]).read()
        dump = json.load(open(paths[1]))
        json.load(open(paths[2]))
        kinds = {s["kind"] for s in dump["spans"]}
        check({"slab", "large", "huge", "free"} <= kinds, f"every kind of span appears ({kinds})")
        slabs = [s for s in dump["spans"] if s["kind"] == "slab"]
        check(all(set(s["map"]) <= set("#._") for s in slabs), "slab maps use # . _ only")
        check(any("#" in s["map"] and "." in s["map"] for s in slabs),
              "some slab shows live and free blocks")
        check(all(len(s["map"]) == min(s["capacity"], 4096) for s in slabs), "one char per block")
        starts = [s["start"] for s in dump["spans"]]
        check(starts == sorted(starts), "spans in address order")
        check(" slab " in text and "|" in text and "#" in text, "text form has slab rows")
        r = run([sys.executable, renderer, paths[1], paths[3]])
        check(r.returncode == 0, f"renderer exits 0 ({r.stderr})")
        svg = ET.parse(paths[3]).getroot()
        check(svg.tag.endswith("svg") and len(list(svg)) > len(dump["spans"]), "the SVG has cells")
        if shutil.which("rsvg-convert"):
            r = run([sys.executable, renderer, paths[1], paths[3], "--png", paths[4]])
            check(r.returncode == 0 and open(paths[4], "rb").read(8) == b"\x89PNG\r\n\x1a\n",
                  "PNG written by rsvg-convert")
        else:
            print("note: rsvg-convert missing (apt-get install -y librsvg2-bin): PNG not checked")


def mode_docs(header, doc):
    names = stats_names(header)
    text = open(doc).read()
    for group in names.values():
        for name in group:
            check(f"`{name}`" in text, f"docs/stats.md describes `{name}`")


def main():
    modes = {"stats-json": mode_stats_json, "leaks": mode_leaks, "memcheck": mode_memcheck,
             "dump": mode_dump, "docs": mode_docs}
    modes[sys.argv[1]](*sys.argv[2:])
    print(f"check_debug {sys.argv[1]}: {len(failures)} failed check(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
