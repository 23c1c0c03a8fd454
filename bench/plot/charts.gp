# charts.gp — the three charts of a benchmark run, drawn by gnuplot from the data files
# bench/runner writes (charts.c). Called as
#   gnuplot -e "dir='DIR'; out='STEM'; title='NAME'; base='strata'; npeers=4; nallocs=5; \
#               threads=1; tmin=0.1; tmax=10" charts.gp
# (tmin, tmax: the y range of the time chart) and writes STEM-time.png, STEM-rss.png and (when threads=1) STEM-threads.png.
#   DIR/time.dat     workload, then each peer's median time / base's median time
#   DIR/rss.dat      workload, then each allocator's median peak RSS in MiB
#   DIR/threads.dat  thread count, then each allocator's median time in seconds
# Each file starts with a header line of column names; "?" marks a failed measurement.
# The base (strata, or glibc without strata) is always the runner's first allocator, so
# allocator k (0-based) is line type k+1 in every chart and keeps its colour throughout.

set terminal pngcairo size 1400,640 font "sans,10"
set datafile missing "?"
set grid ytics
set key outside right top
set style fill solid 0.85 border -1
set style data histograms
set style histogram clustered gap 1
set boxwidth 0.9
set xtics rotate by -35 scale 0 nomirror
set bmargin 6

# Time: log scale, so 2x faster and 2x slower look alike; the line at 1 is the base.
set output out.'-time.png'
set title sprintf("%s: median wall time of each peer / %s's (log scale; above 1 = %s faster)", title, base, base)
set ylabel sprintf("time / %s", base)
set logscale y 2
set yrange [tmin:tmax]
plot for [i=2:npeers+1] dir.'/time.dat' using i:xtic(1) title columnheader(i) lt i, \
     1 with lines lw 2 lc rgb "black" dt 2 notitle

# Peak RSS: log scale too, from the 2 MiB of small workloads to the GiB of threads-32.
set output out.'-rss.png'
set title sprintf("%s: median peak RSS (ru\\_maxrss) per workload (log scale)", title)
set ylabel "peak RSS, MiB"
set logscale y 10
set yrange [*:*]
plot for [i=2:nallocs+1] dir.'/rss.dat' using i:xtic(1) title columnheader(i) lt i-1

# Thread scaling: the threads-N workloads share a fixed total of work, so flat is perfect
# scaling up to the number of cores (2 here) and anything beyond is the machine's limit.
if (threads) {
  set terminal pngcairo size 1000,640 font "sans,10"
  set output out.'-threads.png'
  set title sprintf("%s: thread scaling (threads-N: the same total work in N threads)", title)
  set style data linespoints
  set xtics rotate by 0 2
  set bmargin 4
  set logscale x 2
  set logscale y 2
  set xlabel "threads"
  set ylabel "median wall time, s"
  set key inside left top
  plot for [i=2:nallocs+1] dir.'/threads.dat' using 1:i title columnheader(i) lt i-1 lw 2 pt 7
}
