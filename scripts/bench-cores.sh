#!/usr/bin/env bash
# Thread-per-core benchmark (issue 5): percore against tokio's multi-thread
# runtime, monoio and glommio on 1 and on 2 server cores, plus cross-core
# message throughput and ping-pong latency (cross-core-bench).
#
# Parts (PARTS, default both):
#   cross  the cross-core-bench program (bench/src/cross_core.rs): percore's
#          channel vs crossbeam between plain threads vs tokio mpsc, both ends
#          pinned to the first two CPUs of CPUS2.
#   echo   loopback echo, every server at every core count in CORE_COUNTS:
#            1 core : server on SERVER_CPU1 (0), percore's echo-client on
#                     CLIENT_CPU1 (1) with --cores 1;
#            2 cores: server on CPUS2 (0,1) with its 2 threads pinned one per
#                     CPU, and the client on the same CPUs with --cores 2, so
#                     client and server share the machine: the report gives the
#                     client's CPU seconds next to the server's.
#          Each server runs with --cores N --pin (tokio with --mt: one
#          multi-thread runtime with N workers). Cells (connections x message
#          size) in CELLS, ROUNDS rounds with the server order rotated each
#          round, a fresh server process per run; client req/s and latency,
#          server and client CPU (utime+stime, /proc/PID/stat) over a window
#          that skips WARMUP seconds. Medians, ratios vs tokio-mt at the same
#          core count, scaling 1 -> 2 cores per server.
#
# The report (markdown) goes to stdout and $OUT/report-<stamp>.md, the raw
# rows to $OUT/results-<stamp>.csv, logs beside them.
#
#   scripts/bench-cores.sh                  # full run, ~10 min on 2 cores
#   SMOKE=1 scripts/bench-cores.sh          # ~1 min after the build; numbers are only a smoke test
#   SERVERS="percore tokio-mt" CELLS="256x64" ROUNDS=5 scripts/bench-cores.sh
#   PARTS=cross scripts/bench-cores.sh      # only the cross-core messages
#
# Environment (defaults in brackets):
#   ROUNDS [3]  DURATION [8] seconds per run  WARMUP [1] seconds
#   CELLS ["256x64 256x1024"]  CORE_COUNTS ["1 2"]  PARTS ["cross echo"]
#   SERVERS ["percore tokio-mt monoio glommio"]; also tokio (tokio with N
#          current-thread runtimes and SO_REUSEPORT listeners) and raw (the
#          raw io_uring loop per core, the ceiling)
#   SERVER_CPU1 [0]  CLIENT_CPU1 [1]  CPUS2 [0,1]  (taskset CPU lists)
#   CROSS_ARGS [""] extra arguments of cross-core-bench, e.g. "--rounds 3"
#   BUILD [1] (0: use the binaries already built)  OUT [target/bench-cores]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if [[ "${SMOKE:-0}" == 1 ]]; then
    : "${ROUNDS:=1}" "${DURATION:=2}" "${CELLS:=256x64}"
    : "${CROSS_ARGS:=--rounds 1 --messages 100000 --round-trips 10000}"
fi
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-1}
CELLS=${CELLS:-"256x64 256x1024"}
CORE_COUNTS=${CORE_COUNTS:-"1 2"}
PARTS=${PARTS:-"cross echo"}
SERVERS=${SERVERS:-"percore tokio-mt monoio glommio"}
SERVER_CPU1=${SERVER_CPU1:-0}
CLIENT_CPU1=${CLIENT_CPU1:-1}
CPUS2=${CPUS2:-0,1}
CROSS_ARGS=${CROSS_ARGS:-}
BUILD=${BUILD:-1}
OUT=${OUT:-$REPO/target/bench-cores}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CLIENT=$TARGET_DIR/release/examples/echo-client

BENCH_NAME=bench-cores
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3
[[ $(nproc) -ge 2 ]] || log "warning: fewer than 2 CPUs, server and client share a core"

# --- servers ----------------------------------------------------------------
example_of() {
    case $1 in
        percore) echo echo-server ;;
        tokio | tokio-mt) echo peer-tokio-echo ;;
        monoio | glommio) echo "peer-$1-echo" ;;
        raw) echo peer-raw-uring-echo ;;
        *) die "unknown server '$1' (known: percore tokio-mt tokio monoio glommio raw)" ;;
    esac
}
# server_args NAME CORES: the flags after --addr
server_args() {
    local mt=()
    if [[ $1 == tokio-mt ]]; then mt=(--mt); fi
    echo "--cores $2 --pin ${mt[*]}"
}
server_cpus() { if (($1 == 1)); then echo "$SERVER_CPU1"; else echo "$CPUS2"; fi; }
client_cpus() { if (($1 == 1)); then echo "$CLIENT_CPU1"; else echo "$CPUS2"; fi; }

if [[ "$BUILD" == 1 ]]; then
    programs=()
    if [[ " $PARTS " == *" cross "* ]]; then programs+=(cross-core-bench); fi
    if [[ " $PARTS " == *" echo "* ]]; then
        for ex in $(for s in $SERVERS; do example_of "$s"; echo; done | sort -u); do
            programs+=("$ex")
        done
        programs+=(echo-client)
    fi
    build_programs "${programs[@]}"
fi

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
LOGS=$OUT/logs-$STAMP
mkdir -p "$LOGS"
CSV=$OUT/results-$STAMP.csv
CROSS_MD=$OUT/cross-$STAMP.md
META=$OUT/meta-$STAMP.txt
{
    meta_header
    echo "# ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CELLS='$CELLS' CORE_COUNTS='$CORE_COUNTS' SERVERS='$SERVERS' PARTS='$PARTS' SERVER_CPU1=$SERVER_CPU1 CLIENT_CPU1=$CLIENT_CPU1 CPUS2=$CPUS2 CROSS_ARGS='$CROSS_ARGS'"
} >"$META"

# --- cross-core messages ----------------------------------------------------
if [[ " $PARTS " == *" cross "* ]]; then
    bin=$(program_path cross-core-bench)
    [[ -x $bin ]] || die "$bin not built"
    log "cross-core-bench $CROSS_ARGS on CPUs $CPUS2"
    # shellcheck disable=SC2086 # CROSS_ARGS is a list of words
    taskset -c "$CPUS2" "$bin" $CROSS_ARGS >"$CROSS_MD" 2> >(tee "$LOGS/cross.log" >&2) ||
        die "cross-core-bench failed (see $LOGS/cross.log)"
fi

# --- echo -------------------------------------------------------------------
echo "round,server,cores,conns,size,buf,rps,mbps,p50_us,p99_us,p999_us,errors,server_cpu_s,client_cpu_s,window_s,server_cpus,client_cpus,client_cores" >"$CSV"
row() { # row FIELDS...: one CSV line
    local IFS=,
    echo "$*" >>"$CSV"
}

# One saturation run. run_load ROUND SERVER CORES CONNS SIZE
run_load() {
    local round=$1 server=$2 cores=$3 conns=$4 size=$5
    local buf win out s0 c0 t0 s1 c1 t1 scpus ccpus rps
    buf=$(buf_for "$size")
    win=$(sat_window "$DURATION" "$WARMUP")
    scpus=$(server_cpus "$cores") ccpus=$(client_cpus "$cores")
    out=$LOGS/r$round-$server-c$cores-${conns}x$size.out
    # shellcheck disable=SC2046 # server_args is a list of flags
    launch_server "$LOGS/$server-c$cores.log" "$scpus" "$(program_path "$(example_of "$server")")" \
        --buf "$buf" $(server_args "$server" "$cores")
    taskset -c "$ccpus" "$CLIENT" --addr "127.0.0.1:$PORT" --conns "$conns" --size "$size" \
        --duration "$DURATION" --cores "$cores" >"$out" 2>&1 &
    CPID=$!
    nap "$WARMUP"
    s0=$(cpu_ticks "$SPID") c0=$(cpu_ticks "$CPID") t0=$(now)
    nap "$win"
    s1=$(cpu_ticks "$SPID") c1=$(cpu_ticks "$CPID") t1=$(now)
    wait "$CPID" || log "client exited with status $? ($out)"
    CPID=""
    stop_server
    rps=$(result_field "$out" rps)
    [[ -n "$rps" ]] || log "no RESULT line from the client: $out"
    row "$round" "$server" "$cores" "$conns" "$size" "$buf" "$rps" "$(result_field "$out" mbps)" \
        "$(result_field "$out" p50_us)" "$(result_field "$out" p99_us)" "$(result_field "$out" p999_us)" \
        "$(result_field "$out" errors)" "$(ticks_to_s "$s0" "$s1")" "$(ticks_to_s "$c0" "$c1")" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
        "\"$scpus\"" "\"$ccpus\"" "$cores"
    log "r$round $server x$cores ${conns}x$size: rps=${rps:-?} p99=$(result_field "$out" p99_us)us"
}

if [[ " $PARTS " == *" echo "* ]]; then
    [[ -x "$CLIENT" ]] || die "load client $CLIENT not built"
    for s in $SERVERS; do
        [[ -x $(program_path "$(example_of "$s")") ]] || die "$(program_path "$(example_of "$s")") not built"
    done
    read -r -a SERVER_LIST <<<"$SERVERS"
    log "servers: $SERVERS; cores: $CORE_COUNTS; cells: $CELLS; rounds: $ROUNDS; results: $CSV"
    for ((round = 1; round <= ROUNDS; round++)); do
        order=$(rotate $((round - 1)) "${SERVER_LIST[@]}")
        for cores in $CORE_COUNTS; do
            for cell in $CELLS; do
                for server in $order; do
                    run_load "$round" "$server" "$cores" "${cell%x*}" "${cell#*x}"
                done
            done
        done
    done
fi

REPORT=$OUT/report-$STAMP.md
report_args=(--meta "$META")
if [[ -s "$CROSS_MD" ]]; then report_args+=(--cross "$CROSS_MD"); fi
if [[ " $PARTS " == *" echo "* ]]; then report_args+=("$CSV"); fi
python3 "$REPO/scripts/bench_cores_report.py" "${report_args[@]}" | tee "$REPORT"
log "raw results: $CSV; report: $REPORT; logs: $LOGS"
