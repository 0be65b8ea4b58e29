#!/usr/bin/env bash
# Redraws the PNG charts of BENCHMARKS.md and docs/bench-fs.md into
# docs/charts/ from the results in docs/bench-data/*.csv. Which rows of
# which file each chart draws is listed in tools/bench-charts/src/main.rs.
#
#   bash scripts/charts.sh [OUT_DIR]
#
# The CSV format (also at the top of tools/bench-charts/src/main.rs): a
# header row, then one row per measured cell and series (server, engine);
# fields separated by commas and never quoted; `date` (YYYY-MM-DD) and
# `commit` columns say where each row comes from, and each chart's caption
# lists them; values are plain numbers, an empty cell is no bar. Files:
#   echo-saturation.csv   date,commit,conns,size,server,req_per_s,client_bound,
#                         server_cpu_pct,client_cpu_pct,server_cpu_us_per_req,p99_us
#   echo-rate.csv         date,commit,rate,conns,size,server,sustained (1: delivered >= 95 %
#                         of the rate in most rounds; empty: not recorded),server_cpu_us_per_req,syscalls_per_req
#   echo-idle-memory.csv  date,commit,server,rss_before_mib,rss_after_mib,bytes_per_idle_conn,conns_open
#   http.csv              date,commit,path,server,req_per_s,p99_ms,errors,server_cpu_us_per_req
#   fs.csv                date,commit,test,engine,qd,iops,iops_run1,iops_run2
#                         (bench-fs.sh: date,commit,test,engine,qd,iops,mib_s)
# scripts/bench-echo.sh writes the three echo files of each run beside its
# report (DATA=docs/bench-data to replace the published ones);
# scripts/bench-fs.sh writes one run's rows as target/bench-fs.csv (fs.csv
# holds the mean of two runs in `iops`, each run in iops_run1/2); the HTTP rows
# are copied from the report of scripts/bench-http.sh.
#
# The drawing program is tools/bench-charts (plotters, bitmap backend only),
# its own workspace so that plotters never reaches the library crates or
# CI's builds. Labels need a TrueType font: DejaVu Sans from Debian's
# fonts-dejavu-core, or any .ttf named by CHART_FONT.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-docs/charts}"
font="${CHART_FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf}"
if [[ ! -r "$font" ]]; then
    echo "charts: no font at $font: apt-get install fonts-dejavu-core, or set CHART_FONT" >&2
    exit 1
fi
CHART_FONT="$font" cargo run --quiet --release --manifest-path tools/bench-charts/Cargo.toml -- "$out"
