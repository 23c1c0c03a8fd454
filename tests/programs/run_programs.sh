#!/bin/sh
# run_programs.sh CASE LIBSTRATA WORKDIR — runs a real Debian program twice, with glibc's
# malloc and with LD_PRELOAD=LIBSTRATA, and passes when
#   - both runs print byte-identical stdout (every step also prints its exit status), and
#   - the strata run's stderr holds strata's exit line with spans > 0 (STRATA_VERBOSE=1),
#     so strata really served the program (with STRATA_STRATEGY set, the classic strategy's
#     line "strategy=NAME allocations=N" with N > 0 instead) (sort closes its own stderr before exiting, so
#     for sort the proof is libstrata.so mapped into a running, preloaded sort instead).
# CASE is one of: python perl git sort gcc tools cxx. Exits 77 (CTest skip) when the program is not
# installed, naming the Debian package to install.
# The case_* functions are called indirectly, as "case_$name":
# shellcheck disable=SC2317
set -u
[ $# -eq 3 ] || { echo "usage: $0 python|perl|git|sort|gcc|tools|cxx LIBSTRATA WORKDIR" >&2; exit 64; }
case_name=$1
lib=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
export LC_ALL=C TZ=UTC

skip() {
  echo "SKIP: $1 not found; install it with: apt-get install $2"
  exit 77
}
need() { command -v "$1" >/dev/null 2>&1 || skip "$1" "$2"; }

# ---- the cases: each prints to stdout what must not change under strata ---------------------

case_python() {
  PYTHONHASHSEED=0 PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1 "$python" "$here/workload.py"
  echo "python status $?"
}

case_perl() {
  perl -e '
    my %h;
    for my $i (1 .. 300000) { $h{"k" . ($i * 7919 % 1000003)} .= "v" x ($i % 13) }
    my ($sum, $count) = (0, 0);
    for my $k (sort keys %h) {
      $sum = ($sum * 33 + length($h{$k}) + length($k)) % 4294967296;
      $count++;
    }
    delete $h{$_} for grep { /7/ } keys %h;
    my @words = map { join "", reverse split //, $_ } sort keys %h;
    print "$count $sum ", scalar(keys %h), " ", length(join ",", @words), "\n";'
  echo "perl status $?"
}

case_git() {
  export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat PAGER=cat
  export GIT_AUTHOR_NAME=Strata GIT_AUTHOR_EMAIL=strata@example.invalid
  export GIT_COMMITTER_NAME=Strata GIT_COMMITTER_EMAIL=strata@example.invalid
  mkdir -p home
  git init -q -b main repo && cd repo || return 1
  i=1
  while [ "$i" -le 40 ]; do
    mkdir -p "dir$((i % 5))"
    seq "$i" $((i * 50)) > "dir$((i % 5))/file$i.txt"
    [ "$i" -gt 3 ] && seq 1 "$i" >> "dir$(((i - 3) % 5))/file$((i - 3)).txt"
    export GIT_AUTHOR_DATE="2024-01-01T00:$((i % 60)):00Z"
    export GIT_COMMITTER_DATE="$GIT_AUTHOR_DATE"
    git add -A && git commit -q -m "commit $i" || echo "commit $i failed"
    i=$((i + 1))
  done
  git log --stat
  echo "log status $?"
  git -c pack.threads=1 gc -q
  echo "gc status $?"
  git fsck --no-progress
  echo "fsck status $?"
  git count-objects -v | grep -E '^(count|in-pack|packs):'
  git rev-parse HEAD
  git log --format='%H %s' | tail -n 3
}

case_sort() {
  input="$work/input-sort.txt"
  sort "$input" | cksum
  echo "sort status $?"
  sort -n "$input" | cksum
  echo "sort -n status $?"
  # A 1 MiB buffer forces temporary files and merges; two threads sort in parallel.
  sort -t ' ' -k2,2 -k1,1n -S 1M --parallel=2 -T "$PWD" "$input" > sorted.txt
  echo "sort -k status $?"
  cksum < sorted.txt
  wc -l < sorted.txt
}

case_gcc() {
  cat > prog.c <<'EOC'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; char name[24]; unsigned value; };
#define FN(n) static unsigned f##n(unsigned x) { return x * (n + 1u) ^ (x >> (n % 7 + 1)); }
FN(0) FN(1) FN(2) FN(3) FN(4) FN(5) FN(6) FN(7) FN(8) FN(9) FN(10) FN(11) FN(12) FN(13)
int main(void) {
  struct node *head = NULL;
  unsigned h = 1;
  for (unsigned i = 0; i < 100000; i++) {
    struct node *n = malloc(sizeof *n);
    if (!n) return 1;
    snprintf(n->name, sizeof n->name, "node-%u", i);
    n->value = f0(i) + f3(i) + f7(i) + f13(i);
    n->next = head;
    head = n;
  }
  while (head) {
    struct node *next = head->next;
    h = h * 31 + head->value + (unsigned)strlen(head->name);
    free(head);
    head = next;
  }
  printf("%u %u %u\n", h, f1(h) + f2(h) + f4(h) + f5(h) + f6(h),
         f8(h) + f9(h) + f10(h) + f11(h) + f12(h));
  return 0;
}
EOC
  gcc -O2 -g -frandom-seed=strata -c prog.c -o prog.o
  echo "compile status $?"
  cksum < prog.o
  gcc prog.o -o prog
  echo "link status $?"
  ./prog
  echo "prog status $?"
}

# Small everyday tools, each a process of its own: ls, sed, awk, sort, tr, python3 -c.
case_tools() {
  mkdir -p tree/a/b tree/c
  seq 1 300 | while read -r i; do echo "$i" > "tree/$((i % 3 == 0 ? 1 : 0))$i.txt"; done
  for d in a a/b c; do seq 1 40 | sed "s|^|tree/$d/f|; s|$|.dat|" | xargs touch; done
  ls -R -p tree | cksum
  echo "ls status $?"
  ls -1 -S -r tree | head -n 5
  seq 1 60000 | sed -e 's/\([0-9]\)\([0-9]\)/\2\1/g' -e '/7/d' -e 's/^/n/' | cksum
  echo "sed status $?"
  awk 'BEGIN { x = 7; for (i = 0; i < 150000; i++) { x = (x * 48271) % 2147483647;
        printf "w%d %s\n", x % 3001, substr("lorem ipsum dolor sit amet", x % 20 + 1, x % 7) } }' \
    > words.txt
  awk '{ count[$1]++; text[$1] = text[$1] $2 } END { for (w in count) print w, count[w], length(text[w]) }' \
    words.txt | sort | cksum
  echo "awk status $?"
  sort -u -k2 words.txt | tr 'a-z' 'A-Z' | cksum
  echo "sort status $?"
  "$python" -c 'import collections, json
c = collections.Counter(line.split()[0] for line in open("words.txt"))
print(len(c), sum(c.values()), json.dumps(c.most_common(3)))'
  echo "python -c status $?"
}

# A threaded C++ program (tests/programs/threads.cpp), built once with glibc's malloc.
case_cxx() {
  "$work/threads"
  echo "threads status $?"
}

# ---- the harness ---------------------------------------------------------------------------

case $case_name in
  python)
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3  # not a pyenv shim
    else need python3 python3; python=$(command -v python3); fi ;;
  perl) need perl perl-base ;;
  git) need git git ;;
  sort) need sort coreutils; need awk mawk ;;
  gcc) need gcc gcc ;;
  tools)
    for tool in ls sed awk sort tr xargs seq; do need $tool coreutils; done
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3
    else need python3 python3; python=$(command -v python3); fi ;;
  cxx) need g++ g++ ;;
  *) echo "unknown case $case_name" >&2; exit 64 ;;
esac
need cksum coreutils

rm -rf "$work"
mkdir -p "$work" || exit 1
if [ "$case_name" = sort ]; then # 200k lines of numbers and words, the same for both runs
  awk 'BEGIN { x = 12345; for (i = 0; i < 200000; i++) { x = (x * 16807) % 2147483647;
        printf "%d w%d %s\n", x % 100000, x % 977,
               substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1, x % 9 + 1) } }' \
    > "$work/input-sort.txt" || exit 1
fi
if [ "$case_name" = cxx ]; then
  g++ -O1 -std=c++17 -pthread -o "$work/threads" "$here/threads.cpp" || exit 1
fi

# run MODE: runs the case in a fresh $work/run (the same path both times, so nothing that
# prints a path can differ), stdout to $work/MODE.out, stderr to $work/MODE.err.
run() {
  rm -rf "$work/run" && mkdir "$work/run" || exit 1
  if [ "$1" = strata ]; then
    (cd "$work/run" && export LD_PRELOAD="$lib" STRATA_VERBOSE=1 && "case_$case_name") \
      > "$work/$1.out" 2> "$work/$1.err"
  else
    (cd "$work/run" && "case_$case_name") > "$work/$1.out" 2> "$work/$1.err"
  fi
  echo "run: exit status $?" >> "$work/$1.out"
}

# sort closes stderr itself before exiting (gnulib's close_stdout), so strata's exit line
# cannot appear for it. Instead: a preloaded sort blocked on a FIFO must have libstrata.so
# mapped; the api-preload test proves a preloaded libstrata binds every libc malloc name.
sort_maps_libstrata() {
  fifo="$work/fifo"
  rm -f "$fifo" && mkfifo "$fifo" || return 1
  LD_PRELOAD="$lib" sort "$fifo" > /dev/null 2>&1 &
  pid=$!
  tries=0
  while [ $tries -lt 50 ] && ! grep -q libstrata "/proc/$pid/maps" 2>/dev/null; do
    sleep 0.1
    tries=$((tries + 1))
  done
  grep -q libstrata "/proc/$pid/maps" 2>/dev/null
  found=$?
  cat "$work/input-sort.txt" > "$fifo"
  wait "$pid"
  return $found
}

run glibc
run strata
fail=0
if ! cmp -s "$work/glibc.out" "$work/strata.out"; then
  echo "FAIL: stdout differs between glibc and strata (glibc < > strata):"
  diff "$work/glibc.out" "$work/strata.out" | head -n 40
  fail=1
fi
if [ "$case_name" = sort ]; then
  if ! sort_maps_libstrata; then
    echo "FAIL: libstrata.so is not mapped into a preloaded sort"
    fail=1
  fi
elif ! grep -Eq '^strata: exit pid=[0-9]+ (spans|strategy=[a-z-]+ allocations)=[1-9]' "$work/strata.err"; then
  echo "FAIL: no 'strata: exit ... spans=N' line with N > 0: strata did not serve $case_name"
  fail=1
fi
served=$(grep -c '^strata: exit pid=' "$work/strata.err")
echo "$case_name: $(wc -l < "$work/glibc.out") lines of output compared;" \
  "$served processes printed strata's exit line"
if [ $fail -ne 0 ]; then
  echo "--- stderr of the strata run (last 40 lines):"
  tail -n 40 "$work/strata.err"
fi
exit $fail
