#!/usr/bin/env bash
# Loopback echo benchmark: percore's echo-server against tokio (current_thread),
# monoio, glommio and raw io_uring and epoll loops (bench/src/peers/), each server pinned
# to one core and percore's one-ring echo-client pinned to the other.
#
# Phases (PHASES, default all three):
#   sat   saturation: every cell (connections x message size), every server in
#         turn (order rotated each round), ROUNDS rounds; client req/s, MB/s,
#         latency percentiles, and server and client CPU (utime+stime from
#         /proc/PID/stat) over a window that skips WARMUP seconds.
#   rate  fixed offered rate (--rate): server CPU per request over one window,
#         then syscalls per request over a second window
#         (perf stat -e raw_syscalls:sys_enter -p PID), p99 from the client.
#         With 3 rounds or more the report adds the paired ratio: each round's
#         CPU per request over tokio's (or the first server's) in that round,
#         mean ± two standard errors, which cancels noise both runs shared.
#   mem   idle connections: server RSS before, and after IDLE_CONNS
#         connections have each echoed one 16-byte message and sit idle.
#
# Raw rows go to $OUT/results-<stamp>.csv, the markdown tables (medians,
# ratios vs tokio, the project's targets) to $OUT/report-<stamp>.md and stdout.
#
#   scripts/bench-echo.sh                   # full run, ~30-40 min on 2 cores
#   SMOKE=1 scripts/bench-echo.sh           # < 2 min, numbers are only a smoke test
#   SERVERS="percore tokio" CELLS="256x64 1000x1024" PHASES=sat ROUNDS=3 scripts/bench-echo.sh
#
# Environment (defaults in brackets):
#   ROUNDS [2]  DURATION [8] seconds per saturation run  WARMUP [1] seconds
#   PIPELINE [1] messages in flight per connection (echo-client --pipeline)
#   CONNS ["1 16 256 1000"]  SIZES ["64 1024 16384"]  CELLS [CONNS x SIZES], e.g. "16x64 256x1024"
#   SERVERS ["percore tokio monoio glommio raw"]; also percore-plain (echo-server --plain),
#          percore-epoll (echo-server on the epoll driver, PERCORE_DRIVER=epoll),
#          percore-default and percore-epoll-default (echo-server's own defaults: no --buf),
#          raw-epoll (a bare edge-triggered epoll loop, the readiness path's floor, as raw is
#          io_uring's: compare percore-epoll and tokio with it),
#          percore-minwait (echo-server --min-wait-us $MIN_WAIT_US: parks batch completions;
#          compare it with percore in the rate phase under PACING=even), and
#          NAME=PATH for another build of echo-server (an A/B: "percore old=/tmp/base/echo-server")
#   PHASES ["sat rate mem"]  PACING [burst]: echo-client --pacing for the rate phase (burst, even, poisson)
#   SPIN [0]: 1 adds echo-client --spin in the rate phase (even or poisson pacing: the client
#          spins for due times instead of sleeping, so its own wake-ups do not count as latency)
#   RATES ["100000 50000"] req/s  RATE_CELLS ["256x64 256x1024 1000x64 1000x1024"]
#   RATE_WINDOW [3] seconds for the CPU window and again for the perf window
#   MIN_WAIT_US [50] echo-server --min-wait-us for percore-minwait
#   SERVER_CORES [1]: N > 1 runs every server on N pinned cores (--cores N --pin; tokio
#          becomes its multi-thread runtime with N workers, --mt) and the client with
#          --cores N on the same CPUs (SERVER_CPU and CLIENT_CPU default to 0-(N-1)):
#          issue 16's fixed rate on two cores, e.g. SERVER_CORES=2 PHASES=rate
#   IDLE_CONNS [10000]  MEM_ROUNDS [ROUNDS]  MEM_SERVERS [SERVERS, plus percore-plain
#          (echo-server --plain) when percore is in SERVERS]  SERVER_CPU [0]  CLIENT_CPU [1]
#   BUILD [1] (0: use the binaries already built; 1 builds only the programs needed)  OUT [target/bench-echo]
#   CLIENT [echo-client in the build dir]: a load client with echo-client's
#          flags and RESULT line, e.g. for testing this script
#   DATA [$OUT/data-<stamp>]: where the run's medians go as the CSV files the charts
#          draw (scripts/charts.sh); DATA=docs/bench-data replaces the published ones
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if [[ "${SMOKE:-0}" == 1 ]]; then
    : "${ROUNDS:=1}" "${DURATION:=2}" "${CELLS:=16x64 256x1024}" "${RATES:=50000}"
    : "${RATE_CELLS:=256x64}" "${RATE_WINDOW:=1}" "${IDLE_CONNS:=2000}"
fi
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-1}
PIPELINE=${PIPELINE:-1}
PACING=${PACING:-burst}
SPIN=${SPIN:-0}
MIN_WAIT_US=${MIN_WAIT_US:-50}
CONNS=${CONNS:-"1 16 256 1000"}
SIZES=${SIZES:-"64 1024 16384"}
CELLS=${CELLS:-}
SERVERS=${SERVERS:-"percore tokio monoio glommio raw"}
PHASES=${PHASES:-"sat rate mem"}
RATES=${RATES:-"100000 50000"}
RATE_CELLS=${RATE_CELLS:-"256x64 256x1024 1000x64 1000x1024"}
RATE_WINDOW=${RATE_WINDOW:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
MEM_ROUNDS=${MEM_ROUNDS:-$ROUNDS}
# The memory phase also measures percore's per-connection-buffer mode
# (echo-server --plain) beside its default provided-buffer ring, where an
# idle connection holds no receive buffer.
if [[ -z "${MEM_SERVERS+x}" ]]; then
    MEM_SERVERS=$SERVERS
    if [[ " $SERVERS " == *" percore "* && " $SERVERS " != *" percore-plain "* ]]; then
        MEM_SERVERS="$SERVERS percore-plain"
    fi
fi
SERVER_CORES=${SERVER_CORES:-1}
if ((SERVER_CORES > 1)); then
    # On a 2-CPU machine the client has no CPUs of its own: both share them.
    SERVER_CPU=${SERVER_CPU:-0-$((SERVER_CORES - 1))}
    CLIENT_CPU=${CLIENT_CPU:-$SERVER_CPU}
fi
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-$REPO/target/bench-echo}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
CLIENT_SET=${CLIENT:+1}
CLIENT=${CLIENT:-$TARGET_DIR/release/examples/echo-client}

if [[ -z "$CELLS" ]]; then
    for c in $CONNS; do for s in $SIZES; do CELLS+="${c}x${s} "; done; done
fi

BENCH_NAME=bench-echo
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

# --- tools ------------------------------------------------------------------
command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3
if [[ " $PHASES " == *" rate "* ]]; then
    if ! perf stat -e raw_syscalls:sys_enter -x, -- true >/dev/null 2>&1; then
        need_apt linux-perf
        perf stat -e raw_syscalls:sys_enter -x, -- true >/dev/null 2>&1 ||
            die "perf cannot count raw_syscalls:sys_enter (check /proc/sys/kernel/perf_event_paranoid and tracefs)"
    fi
fi
[[ $(nproc) -ge 2 ]] || log "warning: fewer than 2 CPUs, server and client share a core"
# Servers and the idle client inherit this: IDLE_CONNS sockets each, plus slack.
if (($(ulimit -n) < IDLE_CONNS + 1000)); then
    ulimit -n $((IDLE_CONNS + 1000)) 2>/dev/null ||
        log "warning: ulimit -n is $(ulimit -n), below IDLE_CONNS=$IDLE_CONNS + 1000; the mem phase may hit EMFILE"
fi

# --- build ------------------------------------------------------------------
example_of() {
    case $1 in
        percore | percore-plain | percore-epoll | percore-default | percore-epoll-default | percore-minwait) echo echo-server ;;
        tokio | monoio | glommio) echo "peer-$1-echo" ;;
        raw) echo peer-raw-uring-echo ;;
        raw-epoll) echo peer-raw-epoll-echo ;;
        *) die "unknown server '$1' (known: percore percore-plain percore-epoll percore-default percore-epoll-default percore-minwait tokio monoio glommio raw raw-epoll)" ;;
    esac
}
name_of() { echo "${1%%=*}"; }
server_bin() {
    case $1 in
        *=*) echo "${1#*=}" ;;
        *) program_path "$(example_of "$1")" ;;
    esac
}
if [[ "$BUILD" == 1 ]]; then
    # Only the programs this run needs, so an unrelated one cannot break it.
    programs=()
    for ex in $(for s in $SERVERS $MEM_SERVERS; do [[ $s == *=* ]] || example_of "$s"; echo; done | sort -u); do
        programs+=("$ex")
    done
    [[ -n "${CLIENT_SET:-}" ]] || programs+=(echo-client)
    build_programs "${programs[@]}"
fi
for s in $SERVERS $MEM_SERVERS; do
    [[ -x $(server_bin "$s") ]] || die "$(server_bin "$s") not built"
done
if [[ " $PHASES " == *" sat "* || " $PHASES " == *" rate "* ]]; then
    [[ -x "$CLIENT" ]] || die "load client $CLIENT not built"
fi

# --- helpers ----------------------------------------------------------------
start_server() { # start_server NAME BUF: sets SPID and PORT
    local args=(--buf "$2")
    local driver=${PERCORE_DRIVER:-}
    if [[ $1 == percore-plain ]]; then args+=(--plain); fi
    if [[ $1 == percore-epoll* ]]; then driver=epoll; fi
    if [[ $1 == percore-minwait ]]; then args+=(--min-wait-us "$MIN_WAIT_US"); fi
    # echo-server's own defaults, no buffer size given (issue 16's proof).
    if [[ $1 == percore-default || $1 == percore-epoll-default ]]; then args=(); fi
    if ((SERVER_CORES > 1)); then
        args+=(--cores "$SERVER_CORES" --pin)
        if [[ $1 == tokio ]]; then args+=(--mt); fi
    fi
    PERCORE_DRIVER=$driver launch_server "$LOGS/$(name_of "$1").log" "$SERVER_CPU" "$(server_bin "$1")" "${args[@]}"
}

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
LOGS=$OUT/logs-$STAMP
mkdir -p "$LOGS"
CSV=$OUT/results-$STAMP.csv
echo "phase,round,server,conns,size,buf,rate,rps,delivered_rps,mbps,p50_us,p99_us,p999_us,errors,server_cpu_s,client_cpu_s,window_s,syscalls,perf_window_s,rss_before_kb,rss_after_kb,idle_conns" >"$CSV"
row() { # row FIELDS...: one CSV line
    local IFS=,
    echo "$*" >>"$CSV"
}

# One load run. run_load PHASE ROUND SERVER CONNS SIZE RATE
run_load() {
    local phase=$1 round=$2 spec=$3 conns=$4 size=$5 rate=$6 server
    server=$(name_of "$spec")
    local buf dur win out s0 c0 t0 s1 c1 t1 syscalls="" pwin="" rate_args=()
    buf=$(buf_for "$size")
    if [[ $phase == sat ]]; then
        dur=$DURATION
        win=$(sat_window "$DURATION" "$WARMUP")
    else
        win=$RATE_WINDOW
        dur=$(awk -v w="$WARMUP" -v r="$RATE_WINDOW" 'BEGIN { print w + 2 * r + 1 }')
        rate_args=(--rate "$rate" --pacing "$PACING")
        [[ $SPIN == 1 ]] && rate_args+=(--spin)
    fi
    out=$LOGS/$phase-r$round-$server-${conns}x$size-$rate.out
    start_server "$spec" "$buf"
    taskset -c "$CLIENT_CPU" "$CLIENT" --addr "127.0.0.1:$PORT" --conns "$conns" --size "$size" \
        --duration "$dur" --pipeline "$PIPELINE" --cores "$SERVER_CORES" "${rate_args[@]}" >"$out" 2>&1 &
    CPID=$!
    nap "$WARMUP"
    s0=$(cpu_ticks "$SPID") c0=$(cpu_ticks "$CPID") t0=$(now)
    nap "$win"
    s1=$(cpu_ticks "$SPID") c1=$(cpu_ticks "$CPID") t1=$(now)
    if [[ $phase == rate ]]; then
        local perf_out=$LOGS/$phase-r$round-$server-${conns}x$size-$rate.perf
        # perf counts from when it starts `sleep` until sleep exits, so the
        # window is RATE_WINDOW exactly (perf's own start-up is not in it).
        perf stat -x, -e raw_syscalls:sys_enter -p "$SPID" -- sleep "$RATE_WINDOW" 2>"$perf_out" >/dev/null &
        PERF_PID=$!
        wait "$PERF_PID" || true
        PERF_PID=""
        syscalls=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$perf_out")
        pwin=$RATE_WINDOW
    fi
    wait "$CPID" || log "client exited with status $? ($out)"
    CPID=""
    stop_server
    local rps
    rps=$(result_field "$out" rps)
    if [[ -z "$rps" ]]; then
        log "no RESULT line from the client: $out"
    fi
    row "$phase" "$round" "$server" "$conns" "$size" "$buf" "$rate" "$rps" \
        "$(delivered_rps "$out")" "$(result_field "$out" mbps)" "$(result_field "$out" p50_us)" "$(result_field "$out" p99_us)" \
        "$(result_field "$out" p999_us)" "$(result_field "$out" errors)" \
        "$(ticks_to_s "$s0" "$s1")" "$(ticks_to_s "$c0" "$c1")" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
        "$syscalls" "$pwin" "" "" ""
    log "$phase r$round $server ${conns}x$size${rate:+ @$rate}: rps=${rps:-?} delivered=$(delivered_rps "$out") p99=$(result_field "$out" p99_us)us"
}

# One idle-memory run. run_mem ROUND SERVER
run_mem() {
    local round=$1 spec=$2 server before after out ok i
    server=$(name_of "$spec")
    out=$LOGS/mem-r$round-$server.out
    start_server "$spec" 4096
    sleep 0.3
    before=$(rss_kb "$SPID")
    taskset -c "$CLIENT_CPU" python3 "$REPO/scripts/bench_idle.py" --addr "127.0.0.1:$PORT" \
        --conns "$IDLE_CONNS" --size 16 --hold 120 >"$out" 2>&1 &
    HPID=$!
    for ((i = 0; i < 1200; i++)); do
        grep -qs '^READY' "$out" && break
        kill -0 "$HPID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^READY' "$out" || die "idle client did not finish connecting ($out)"
    sleep 0.5
    after=$(rss_kb "$SPID")
    ok=$(sed -n 's/^READY ok=\([0-9]*\).*/\1/p' "$out")
    kill -TERM "$HPID" 2>/dev/null || true
    wait "$HPID" 2>/dev/null || true
    HPID=""
    stop_server
    row mem "$round" "$server" "$IDLE_CONNS" 16 4096 "" "" "" "" "" "" "" \
        "$(sed -n 's/^READY .*errors=\([0-9]*\).*/\1/p' "$out")" "" "" "" "" "" "$before" "$after" "$ok"
    log "mem r$round $server: rss ${before} KiB -> ${after} KiB with $ok idle connections"
}

# --- run --------------------------------------------------------------------
read -r -a SERVER_LIST <<<"$SERVERS"
read -r -a MEM_SERVER_LIST <<<"$MEM_SERVERS"
log "servers: $SERVERS; phases: $PHASES; rounds: $ROUNDS; results: $CSV"
{
    meta_header
    echo "# ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP PIPELINE=$PIPELINE CELLS='$CELLS' SERVERS='$SERVERS' RATES='$RATES' RATE_CELLS='$RATE_CELLS' RATE_WINDOW=$RATE_WINDOW MIN_WAIT_US=$MIN_WAIT_US IDLE_CONNS=$IDLE_CONNS MEM_SERVERS='$MEM_SERVERS' SERVER_CORES=$SERVER_CORES SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU"
} >"$OUT/meta-$STAMP.txt"

for ((round = 1; round <= ROUNDS; round++)); do
    order=$(rotate $((round - 1)) "${SERVER_LIST[@]}")
    if [[ " $PHASES " == *" sat "* ]]; then
        for cell in $CELLS; do
            for server in $order; do
                run_load sat "$round" "$server" "${cell%x*}" "${cell#*x}" ""
            done
        done
    fi
    if [[ " $PHASES " == *" rate "* ]]; then
        for rate in $RATES; do
            for cell in $RATE_CELLS; do
                for server in $order; do
                    run_load rate "$round" "$server" "${cell%x*}" "${cell#*x}" "$rate"
                done
            done
        done
    fi
done
if [[ " $PHASES " == *" mem "* ]]; then
    for ((round = 1; round <= MEM_ROUNDS; round++)); do
        for server in $(rotate $((round - 1)) "${MEM_SERVER_LIST[@]}"); do
            run_mem "$round" "$server"
        done
    done
fi

REPORT=$OUT/report-$STAMP.md
DATA=${DATA:-$OUT/data-$STAMP}
python3 "$REPO/scripts/bench_report.py" --meta "$OUT/meta-$STAMP.txt" --data "$DATA" "$CSV" | tee "$REPORT"
log "raw results: $CSV; report: $REPORT; chart data: $DATA; logs: $LOGS"
