#!/usr/bin/env bash
# make install, then build programs against the installed files the ways a user would:
# pkg-config (shared and static) and CMake's find_package. Each must run, say what strata
# served (STRATA_VERBOSE=1 exit line) and print the expected line.
#   install_test.sh <build-dir> <this-dir>
set -euo pipefail
build=$1
here=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

expect_ok() { # program...
  local out err
  out=$(STRATA_VERBOSE=1 "$@" 2>"$work/err")
  err=$(cat "$work/err")
  [ "$out" = "strata $(sed -n 's/^#define STRATA_VERSION "\(.*\)"/\1/p' "$prefix/include/strata.h") 0" ] ||
    { echo "unexpected output from $*: $out"; exit 1; }
  grep -Eq 'strata: exit pid=[0-9]+ spans=[1-9]' <<<"$err" ||
    { echo "strata did not serve $*: $err"; exit 1; }
}

libdir=$(dirname "$(find "$prefix" -name libstrata.so | head -n 1)")
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  cc -o "$work/pc_shared" "$here/consumer.c" $(pkg-config --cflags --libs strata)
  LD_LIBRARY_PATH=$libdir expect_ok "$work/pc_shared"
  cc -o "$work/pc_static" "$here/consumer.c" $(pkg-config --cflags strata) \
    "$libdir/libstrata.a" $(pkg-config --static --libs-only-l strata | sed 's/-lstrata//')
  expect_ok "$work/pc_static"
  echo "install: pkg-config consumers ok"
else
  echo "install: pkg-config is missing (sudo apt-get install pkgconf); skipping that part"
fi

mkdir -p "$work/cmake"
cp "$here/CMakeLists.txt.in" "$work/cmake/CMakeLists.txt"
cp "$here/consumer.c" "$work/cmake/"
cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake/build" >/dev/null
LD_LIBRARY_PATH=$libdir expect_ok "$work/cmake/build/consumer_shared"
expect_ok "$work/cmake/build/consumer_static"
echo "install: find_package consumers ok"

# The strata command as installed: it finds the installed libraries (not the build's), and
# the man pages are where man looks.
for f in bin/strata bin/strata-heap-svg share/man/man1/strata.1 share/man/man3/strata.3; do
  [ -e "$prefix/$f" ] || { echo "install: $f missing"; exit 1; }
done
[ -e "$libdir/libstrata-trace.so" ] || { echo "install: libstrata-trace.so missing"; exit 1; }
preload=$("$prefix/bin/strata" run -- sh -c 'echo "$LD_PRELOAD"')
case $preload in
"$libdir"/libstrata.so*) ;;
*) echo "install: strata run preloads '$preload', not the installed library"; exit 1 ;;
esac
"$prefix/bin/strata" trace -o "$work/sort.trace" -- sort "$here/consumer.c" >/dev/null
"$prefix/bin/strata" summary "$work/sort.trace" | grep -q "peak live" ||
  { echo "install: the installed strata cannot trace"; exit 1; }
echo "install: strata command ok"

# The examples, built on their own against the installed package.
cmake -S "$here/../../examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/examples" >/dev/null
LD_LIBRARY_PATH=$libdir "$work/examples/example_arena" >/dev/null
echo "install: examples built against the installed package ok"
