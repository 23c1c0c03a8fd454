# strategies.gp — the charts of the strategy comparison (bench/strategies/compare.c), drawn
# from the data files it writes beside its CSV. Called as
#   gnuplot -e "stem='STEM'; n=8" strategies.gp
# and writes STEM-time.png, STEM-rss.png and STEM-frag.png. Each STEM-<m>.dat has a header
# line (workload, then one column per strategy) and one line per workload.
set terminal pngcairo size 1400,600 font "sans,10"
set grid ytics
set key outside right top
set style fill solid 0.85 border -1
set style data histograms
set style histogram clustered gap 1
set boxwidth 0.9
set xtics scale 0 nomirror

set output stem.'-time.png'
set title "Median wall time per workload and strategy (log scale; lower is better)"
set ylabel "seconds"
set logscale y 10
plot for [i=2:n+1] stem.'-time.dat' using i:xtic(1) title columnheader(i)

unset logscale y
set output stem.'-rss.png'
set title "Median peak resident memory per workload and strategy (lower is better)"
set ylabel "MiB"
plot for [i=2:n+1] stem.'-rss.dat' using i:xtic(1) title columnheader(i)

set output stem.'-frag.png'
set title "Fragmentation: peak RSS growth / peak live requested bytes (1 is perfect; log scale)"
set ylabel "ratio"
set logscale y 2
plot for [i=2:n+1] stem.'-frag.dat' using i:xtic(1) title columnheader(i)
