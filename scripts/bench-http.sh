#!/usr/bin/env bash
# HTTP/1.1 benchmark, keep-alive connections on loopback, each server pinned
# to SERVER_CPUS and the load client to WRK_CPUS; the servers take turns,
# ROUNDS interleaved rounds (the order flips each round). Two modes:
#
#   MODE=sat (default)  saturation: wrk, closed loop, req/s and p99; server
#       CPU per request over the run. Servers: examples/http-server (hyper on
#       percore) against bench/src/peers/tokio_http.rs (the same hyper service
#       on tokio's multi-thread runtime with as many workers).
#   MODE=rate  fixed offered rate: http-load (bench/src/http_load.rs, percore's paced
#       HTTP/1.1 client, --pacing even) offers each of RATES req/s over CONNS
#       connections; server CPU per request over a WINDOW-second window
#       (utime+stime from /proc/PID/stat), then syscalls and context
#       switches per request over a second window (perf stat -e
#       raw_syscalls:sys_enter,context-switches -p PID), p99 from the client.
#       Servers: examples/axum-server (axum on percore_net::serve) against
#       bench/src/peers/tokio_axum.rs (the same routes on axum::serve, tokio
#       multi-thread runtime with CORES workers). Context switches per
#       request are the server's sleeps and wake-ups: on a VM each costs far
#       more CPU than the request's syscalls and instructions (measured for
#       issue 14 on the 2-vCPU VM: 20-40 µs of utime+stime per wake-up,
#       about half of it outside what perf's task-clock and cpu-clock
#       samples see), so where two servers wake as often, their CPU per
#       request is about the same whatever their syscall counts.
#
#   MODE=client  the pooled HTTP client: http-load --client pooled
#       (percore-net's pooled client, hyper-util's Client on percore) against
#       --client tokio-pooled (hyper-util's Client with its HttpConnector on a
#       tokio current-thread runtime), closed loop, CONNS requests in flight on
#       one client core, keep-alive connections to one server
#       (examples/http-server on SERVER_CPUS); req/s, p99, and the client's
#       CPU per request (perf stat -e task-clock over the whole client run).
#
#   MODE=callgrind  user-space instructions per request, load-independent
#       (for machines without hardware counters, or shared ones): each server
#       runs under valgrind --tool=callgrind for an http-load run of
#       CG_SHORT [3] s and again of CG_LONG [9] s at RATES [300] req/s (low:
#       one request per wake-up, and valgrind is ~50x slower); (instructions
#       of the long run - of the short one) / (requests of the long - of the
#       short), so start-up and connection set-up cancel. Requests are
#       counted exactly, as calls of CG_PER_REQUEST
#       [MethodRouter<S,E>::call_with_state: axum's router, in both axum
#       servers]. Prints instructions per request and the largest
#       differences by function against the last server. The count is
#       load-independent only while the server wakes for each request (p50
#       in the log lines well under 1 ms): on a busy machine requests batch
#       and every server's count drops; use FIFO=1 there.
#
#   scripts/bench-http.sh                              # saturation, 5 rounds x 10 s per server and path
#   MODE=rate scripts/bench-http.sh                    # axum on percore vs tokio at 10k and 20k req/s, 64 conns,
#                                                      # even and burst pacing, 3 rounds (~4 min)
#   ROUNDS=1 DURATION=2 scripts/bench-http.sh          # smoke run
#   MODE=rate ROUNDS=1 WINDOW=1 RATES=10000 scripts/bench-http.sh   # rate smoke run
#   CORES=2 SERVER_CPUS=0-1 WRK_CPUS=2-3 WRK_THREADS=2 scripts/bench-http.sh
#   FIFO=1 MODE=callgrind scripts/bench-http.sh        # axum: instructions/request, percore vs tokio (~1 min)
#   MODE=rate SERVERS="axum axum-minwait axum-tokio" scripts/bench-http.sh   # with the min-wait batching
#   MODE=client scripts/bench-http.sh                  # pooled clients: percore vs hyper-util on tokio,
#                                                      # 16 in flight, 3 rounds x 10 s (~1 min)
#
# Environment (defaults in brackets):
#   MODE [sat]  CORES [1]  server cores (percore --cores, tokio worker threads)
#   SERVER_CPUS [0 .. CORES-1]  WRK_CPUS [the next CPU]: the load client's CPUs
#   SERVERS [sat: "percore tokio", rate: "axum axum-tokio", client: "percore"]: percore = http-server,
#     tokio = peer-tokio-http, axum = axum-server, axum-tokio = peer-tokio-axum,
#     axum-minwait = axum-server with PERCORE_MIN_WAIT_US=$MIN_WAIT_US in its
#     environment (Builder::min_wait: each park waits up to that long for a
#     batch, for up to that much latency: fewer wake-ups under even load,
#     but under bursty load a sleep per batch more, as the park after a
#     batch waits out the min-wait);
#     NAME=PATH adds another build of a server, e.g. "axum axum-tokio
#     base=/tmp/axum-server-main" for an A/B of a change
#   BASELINE [axum-tokio if in SERVERS, else tokio; client: tokio-pooled]: the ratios divide by
#   CLIENTS [client: "pooled tokio-pooled"]: the --client values of http-load to compare
#   PATHS [sat: "/ /json", rate: "/"]  ROUNDS [sat: 5, rate: 3]
#   sat:  CONNS [256]  DURATION [10] seconds per run  WRK_THREADS [1]
#   client: CONNS [16] requests in flight  DURATION [10]
#   rate: CONNS [64]  RATES ["10000 20000"] req/s  WINDOW [3] seconds for the
#         CPU window and again for the perf window  WARMUP [1] seconds
#         PACING ["even burst"]: http-load --pacing for each rate, one or more of
#         even (requests 1/rate apart: the server wakes for each one),
#         burst (each connection on its own period, released in 1 ms ticks:
#         batches) and poisson
#   FIFO [0]: 1 runs the servers and http-load SCHED_FIFO (chrt -f 10, needs
#         root), so that other work on a shared machine does not delay them;
#         the servers then wake for each request as on an idle machine.
#         It does not keep other work off the servers' CPU while they sleep:
#         each wake-up then switches from another process, which on the
#         2-vCPU VM raised both axum servers' CPU per request by half
#         (20 -> 30 µs at 20k even, a nice-19 busy loop on CPU 0). Compare
#         servers in one run only, on an otherwise idle machine.
#   MIN_WAIT_US [50]: the min-wait of axum-minwait, in µs
#   BUILD [1]  OUT [target/bench-http]
#
# wrk and perf (Debian packages wrk, linux-perf) are installed with apt-get
# when missing and needed. Raw rows go to $OUT/results-<stamp>.csv; the
# markdown table (medians, ratios to BASELINE) to $OUT/report-<stamp>.md and stdout.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

MODE=${MODE:-sat}
CORES=${CORES:-1}
SERVER_CPUS=${SERVER_CPUS:-$(if ((CORES == 1)); then echo 0; else echo "0-$((CORES - 1))"; fi)}
WRK_CPUS=${WRK_CPUS:-$CORES}
WRK_THREADS=${WRK_THREADS:-1}
case $MODE in
    sat)
        CONNS=${CONNS:-256}
        ROUNDS=${ROUNDS:-5}
        PATHS=${PATHS:-"/ /json"}
        SERVERS=${SERVERS:-"percore tokio"}
        ;;
    rate)
        CONNS=${CONNS:-64}
        ROUNDS=${ROUNDS:-3}
        PATHS=${PATHS:-"/"}
        SERVERS=${SERVERS:-"axum axum-tokio"}
        ;;
    callgrind)
        CONNS=${CONNS:-64}
        ROUNDS=${ROUNDS:-1}
        PATHS=${PATHS:-"/"}
        SERVERS=${SERVERS:-"axum axum-tokio"}
        RATES=${RATES:-300}
        ;;
    client)
        CONNS=${CONNS:-16}
        ROUNDS=${ROUNDS:-3}
        PATHS=${PATHS:-"/"}
        SERVERS=${SERVERS:-"percore"}
        CLIENTS=${CLIENTS:-"pooled tokio-pooled"}
        BASELINE=${BASELINE:-tokio-pooled}
        ;;
    *)
        echo "bench-http: MODE=$MODE: sat, rate, client or callgrind" >&2
        exit 2
        ;;
esac
DURATION=${DURATION:-10}
RATES=${RATES:-"10000 20000"}
WINDOW=${WINDOW:-3}
WARMUP=${WARMUP:-1}
PACING=${PACING:-"even burst"}
if [[ -z "${BASELINE:-}" ]]; then
    if [[ " $SERVERS " == *" axum-tokio "* ]]; then BASELINE=axum-tokio; else BASELINE=tokio; fi
fi
MIN_WAIT_US=${MIN_WAIT_US:-50}
BUILD=${BUILD:-1}
OUT=${OUT:-$REPO/target/bench-http}

BENCH_NAME=bench-http
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"
LOAD=$(program_path http-load)

CLIENT_PREFIX=()
if [[ ${FIFO:-0} == 1 ]]; then
    SERVER_PREFIX=(chrt -f 10)
    CLIENT_PREFIX=(chrt -f 10)
fi

# --- tools ------------------------------------------------------------------
if [[ $MODE == sat ]]; then
    command -v wrk >/dev/null || need_apt wrk
elif [[ $MODE == callgrind ]]; then
    command -v valgrind >/dev/null || need_apt valgrind
elif ! perf stat -e raw_syscalls:sys_enter -x, -- true >/dev/null 2>&1; then
    need_apt linux-perf
    perf stat -e raw_syscalls:sys_enter -x, -- true >/dev/null 2>&1 ||
        die "perf cannot count raw_syscalls:sys_enter (check /proc/sys/kernel/perf_event_paranoid and tracefs)"
fi
command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3
[[ $(nproc) -gt $CORES ]] || log "warning: no CPU left for the load client; it shares the servers' CPUs"

example_of() {
    case $1 in
        percore) echo http-server ;;
        tokio) echo peer-tokio-http ;;
        axum | axum-minwait) echo axum-server ;;
        axum-tokio) echo peer-tokio-axum ;;
        *) die "unknown server '$1' (known: percore tokio axum axum-minwait axum-tokio, or NAME=PATH)" ;;
    esac
}
name_of() { echo "${1%%=*}"; }
bin_of() {
    case $1 in
        *=*) echo "${1#*=}" ;;
        *) program_path "$(example_of "$1")" ;;
    esac
}
if [[ "$BUILD" == 1 ]]; then
    programs=()
    for ex in $(for s in $SERVERS; do [[ $s == *=* ]] || example_of "$s"; echo; done | sort -u); do
        programs+=("$ex")
    done
    [[ $MODE != sat ]] && programs+=(http-load)
    build_programs "${programs[@]}"
fi
for s in $SERVERS; do [[ -x $(bin_of "$s") ]] || die "$(bin_of "$s") not built"; done
[[ $MODE == sat || -x $LOAD ]] || die "$LOAD not built"

# What comes before a server's binary on its command line: SERVER_PREFIX,
# then for axum-minwait its min-wait (the server's environment only: the
# load client is a percore program too).
prefix_of() { # prefix_of SERVER: sets PREFIX
    PREFIX=("${SERVER_PREFIX[@]}")
    if [[ $1 == axum-minwait ]]; then PREFIX+=(env "PERCORE_MIN_WAIT_US=$MIN_WAIT_US"); fi
}
start_server() { # start_server SERVER: sets SPID and PORT
    local PREFIX SERVER_PREFIX=("${SERVER_PREFIX[@]}")
    prefix_of "$1"
    SERVER_PREFIX=("${PREFIX[@]}") # read by launch_server
    launch_server "$LOGS/$(name_of "$1").log" "$SERVER_CPUS" "$(bin_of "$1")" --cores "$CORES"
}

# wrk's summary -> "req_per_sec p99_us errors"
parse_wrk() {
    python3 -c '
import re, sys
text = sys.stdin.read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
errs = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errs += int(non2xx.group(1)) if non2xx else 0
if not rps or not p99:
    sys.exit("cannot parse wrk output:\n" + text)
scale = {"us": 1, "ms": 1e3, "s": 1e6}[p99.group(2)]
print(f"{float(rps.group(1)):.0f} {float(p99.group(1)) * scale:.0f} {errs}")
'
}

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
LOGS=$OUT/logs-$STAMP
mkdir -p "$LOGS"
CSV=$OUT/results-$STAMP.csv
echo "mode,round,server,path,pacing,rate,req_per_sec,p99_us,errors,server_cpu_s,window_s,syscalls,perf_window_s,cswitches" >"$CSV"
row() { # row FIELDS...: one CSV line
    local IFS=,
    echo "$*" >>"$CSV"
}
{
    meta_header
    echo "# MODE=$MODE CORES=$CORES SERVERS='$SERVERS' CLIENTS='${CLIENTS:-}' BASELINE=$BASELINE PATHS='$PATHS' ROUNDS=$ROUNDS CONNS=$CONNS" \
        "DURATION=$DURATION RATES='$RATES' WINDOW=$WINDOW WARMUP=$WARMUP PACING=$PACING SERVER_CPUS=$SERVER_CPUS WRK_CPUS=$WRK_CPUS FIFO=${FIFO:-0}"
} >"$OUT/meta-$STAMP.txt"

# One wrk run against the running server. run_sat ROUND SERVER PATH
run_sat() {
    local round=$1 server=$2 path=$3 c0 cpu out rps p99 errs
    # The server's CPU time over the wrk run: what separates the servers
    # when wrk, not the server, sets the request rate.
    c0=$(cpu_ticks "$SPID")
    out=$(taskset -c "$WRK_CPUS" "${CLIENT_PREFIX[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
        "http://127.0.0.1:$PORT$path" 2>&1) || die "wrk failed: $out"
    cpu=$(ticks_to_s "$c0" "$(cpu_ticks "$SPID")")
    read -r rps p99 errs < <(parse_wrk <<<"$out")
    row sat "$round" "$server" "$path" "" "" "$rps" "$p99" "$errs" "$cpu" "$DURATION" "" "" ""
    log "round $round $server $path: $rps req/s, p99 ${p99} us, $errs errors, server CPU ${cpu} s"
}

# One http-load run at a fixed rate against the running server: a CPU
# window, then a perf window, both after WARMUP. run_rate ROUND SERVER PATH PACING RATE
run_rate() {
    local round=$1 server=$2 path=$3 pacing=$4 rate=$5 out perf_out dur s0 s1 t0 t1 syscalls cswitches rps
    out=$LOGS/rate-r$round-$server-${path//\//_}-$pacing-$rate.out
    perf_out=${out%.out}.perf
    dur=$(awk -v w="$WARMUP" -v r="$WINDOW" 'BEGIN { print w + 2 * r + 1 }')
    taskset -c "$WRK_CPUS" "${CLIENT_PREFIX[@]}" "$LOAD" --addr "127.0.0.1:$PORT" --path "$path" \
        --conns "$CONNS" --rate "$rate" --pacing "$pacing" --duration "$dur" >"$out" 2>&1 &
    CPID=$!
    nap "$WARMUP"
    s0=$(cpu_ticks "$SPID") t0=$(now)
    nap "$WINDOW"
    s1=$(cpu_ticks "$SPID") t1=$(now)
    # perf counts from when it starts `sleep` until sleep exits: the window
    # is WINDOW exactly (perf's own start-up is not in it).
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$SPID" -- sleep "$WINDOW" 2>"$perf_out" >/dev/null &
    PERF_PID=$!
    wait "$PERF_PID" || true
    PERF_PID=""
    syscalls=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$perf_out")
    cswitches=$(awk -F, '$3 == "context-switches" { print $1 }' "$perf_out")
    wait "$CPID" || log "client exited with status $? ($out)"
    CPID=""
    # Delivered, not offered: the RESULT rps of a paced run is the offered rate.
    rps=$(delivered_rps "$out")
    [[ -n "$rps" ]] || log "no progress lines from the client: $out"
    row rate "$round" "$server" "$path" "$pacing" "$rate" "$rps" "$(result_field "$out" p99_us)" \
        "$(result_field "$out" errors)" "$(ticks_to_s "$s0" "$s1")" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "$syscalls" "$WINDOW" "$cswitches"
    log "round $round $server $path $pacing @$rate: delivered ${rps:-?} req/s, p99 $(result_field "$out" p99_us) us," \
        "server CPU $(ticks_to_s "$s0" "$s1") s, ${syscalls:-?} syscalls and ${cswitches:-?} context switches in ${WINDOW} s"
}

# One run of a pooled client against the running server; the client's CPU
# time from perf's task-clock (all its threads, its whole run, connection
# set-up included). run_client ROUND CLIENT PATH
run_client() {
    local round=$1 client=$2 path=$3 out perf_out cpu rps
    out=$LOGS/client-r$round-$client-${path//\//_}.out
    perf_out=${out%.out}.perf
    taskset -c "$WRK_CPUS" "${CLIENT_PREFIX[@]}" perf stat -x, -e task-clock -o "$perf_out" -- \
        "$LOAD" --addr "127.0.0.1:$PORT" --path "$path" --client "$client" \
        --conns "$CONNS" --duration "$DURATION" >"$out" 2>&1 || log "client exited with status $? ($out)"
    cpu=$(awk -F, '$3 ~ /^task-clock/ { printf "%.3f", $1 / 1000 }' "$perf_out")
    rps=$(result_field "$out" rps)
    row client "$round" "$client" "$path" "" "" "$rps" "$(result_field "$out" p99_us)" \
        "$(result_field "$out" errors)" "$cpu" "$DURATION" "" "" ""
    log "round $round $client $path: ${rps:-?} req/s, p99 $(result_field "$out" p99_us) us, client CPU ${cpu:-?} s"
}

# flip WORDS...: the words in reverse order, so that neither side always
# runs first (or on a warmer machine).
flip() { printf '%s\n' "$@" | tac | tr '\n' ' '; }

# One server under callgrind for one http-load run of SECS s.
# cg_run SPEC SECS OUT (callgrind's file; http-load's output in OUT.load)
cg_run() {
    local spec=$1 secs=$2 out=$3 port i PREFIX
    port=$(free_port)
    prefix_of "$spec"
    taskset -c "$SERVER_CPUS" "${PREFIX[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$(bin_of "$spec")" --addr "127.0.0.1:$port" --cores "$CORES" >>"$LOGS/$(name_of "$spec").log" 2>&1 &
    SPID=$!
    for ((i = 0; i < 400; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$SPID" 2>/dev/null || die "$(name_of "$spec") did not start under valgrind"
        sleep 0.05
    done
    taskset -c "$WRK_CPUS" "${CLIENT_PREFIX[@]}" "$LOAD" --addr "127.0.0.1:$port" --path "${PATHS%% *}" \
        --conns "$CONNS" --rate "${RATES%% *}" --duration "$secs" >"$out.load" 2>&1 ||
        log "client exited with status $? ($out.load)"
    # callgrind writes its file when the server exits (SIGTERM: percore's
    # servers shut down, tokio's peers die of it; both get written).
    kill -TERM "$SPID" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}

if [[ $MODE == callgrind ]]; then
    CG_SHORT=${CG_SHORT:-3} CG_LONG=${CG_LONG:-9}
    CG_PER_REQUEST=${CG_PER_REQUEST:-'MethodRouter<S,E>::call_with_state'}
    log "servers under callgrind on CPUs $SERVER_CPUS, http-load -c$CONNS at ${RATES%% *} req/s for $CG_SHORT and $CG_LONG s"
    cg_files=()
    for spec in $SERVERS; do
        for secs in "$CG_SHORT" "$CG_LONG"; do
            f=$LOGS/cg-$(name_of "$spec")-$secs.out
            cg_run "$spec" "$secs" "$f"
            log "$(name_of "$spec") ${secs} s: $(sed -n 's/^RESULT //p' "$f.load")"
        done
        cg_files+=("$(name_of "$spec")" "$LOGS/cg-$(name_of "$spec")-$CG_SHORT.out" "$LOGS/cg-$(name_of "$spec")-$CG_LONG.out")
    done
    REPORT=$OUT/report-$STAMP.md
    python3 - "$CG_PER_REQUEST" "${cg_files[@]}" >"$REPORT" <<'EOF'
import re, subprocess, sys
per_request, args = sys.argv[1], sys.argv[2:]

def annotate(path, *flags):
    return subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", *flags, path],
                          capture_output=True, text=True, check=True).stdout

def self_costs(path):  # (total, {function: self Ir})
    total, fns = 0, {}
    for line in annotate(path).splitlines():
        m = re.match(r"^\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        v, name = int(m.group(1).replace(",", "")), re.sub(r" \[[^\]]*\]$", "", m.group(2))
        if name.startswith("PROGRAM TOTALS"):
            total = v
            continue
        if name.startswith(("/", ".", "?")) and ":" in name:
            name = name.split(":", 1)[1]
        fns[name] = fns.get(name, 0) + v
    return total, fns

def requests(path):  # calls of the per-request function, summed over its callers
    n = 0
    for line in annotate(path, "--inclusive=yes", "--tree=calling").splitlines():
        m = re.match(r"^\s*[\d,]+ \([ \d.]+%\)\s+>\s+.*\(([\d,]+)x\)", line)
        if m and per_request in line:
            n += int(m.group(1).replace(",", ""))
    return n

rows = {}
for i in range(0, len(args), 3):
    name, short, long = args[i:i + 3]
    (ts, fs), (tl, fl) = self_costs(short), self_costs(long)
    n = requests(long) - requests(short)
    if n <= 0:
        sys.exit(f"{name}: no calls of {per_request} counted (set CG_PER_REQUEST)")
    rows[name] = ((tl - ts) / n, n, {k: (fl.get(k, 0) - fs.get(k, 0)) / n for k in set(fs) | set(fl)})
base = list(rows)[-1]
print(f"User-space instructions per request (callgrind Ir, long run minus short run); ratios to {base}\n")
print(f"| server | Ir/request | requests counted | vs {base} |")
print("|---|---:|---:|---:|")
for name, (ir, n, _) in rows.items():
    print(f"| {name} | {ir:,.0f} | {n:,} | {ir / rows[base][0]:.2f}x |")
for name, (_, _, fns) in rows.items():
    if name == base:
        continue
    other = rows[base][2]
    print(f"\nLargest differences per request, {name} - {base} (self Ir):\n")
    keys = sorted(set(fns) | set(other), key=lambda k: -abs(fns.get(k, 0) - other.get(k, 0)))[:25]
    for k in keys:
        print(f"    {fns.get(k, 0):7,.0f} {other.get(k, 0):7,.0f} {fns.get(k, 0) - other.get(k, 0):+7,.0f}  {k[:110]}")
EOF
    cat "$REPORT"
    log "callgrind files and loads: $LOGS; report: $REPORT"
    exit 0
fi

if [[ $MODE == client ]]; then
    log "server $SERVERS on CPUs $SERVER_CPUS, http-load --client {$CLIENTS} -c$CONNS -d${DURATION}s on CPUs $WRK_CPUS"
    read -r -a order <<<"$CLIENTS"
    start_server "$SERVERS"
    for ((round = 1; round <= ROUNDS; round++)); do
        for client in "${order[@]}"; do
            for path in $PATHS; do run_client "$round" "$client" "$path"; done
        done
        read -r -a order <<<"$(flip "${order[@]}")"
    done
    stop_server
else
    if [[ $MODE == sat ]]; then
        log "servers on CPUs $SERVER_CPUS ($CORES cores), wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s on CPUs $WRK_CPUS"
    else
        log "servers on CPUs $SERVER_CPUS ($CORES cores), http-load -c$CONNS at $RATES req/s ($PACING) on CPUs $WRK_CPUS"
    fi
    read -r -a order <<<"$SERVERS"
    for ((round = 1; round <= ROUNDS; round++)); do
        for spec in "${order[@]}"; do
            start_server "$spec"
            for path in $PATHS; do
                if [[ $MODE == sat ]]; then
                    run_sat "$round" "$(name_of "$spec")" "$path"
                else
                    for pacing in $PACING; do
                        for rate in $RATES; do
                            run_rate "$round" "$(name_of "$spec")" "$path" "$pacing" "$rate"
                        done
                    done
                fi
            done
            stop_server
        done
        read -r -a order <<<"$(flip "${order[@]}")"
    done
fi

REPORT=$OUT/report-$STAMP.md
python3 - "$CSV" "$MODE" "$CORES" "$CONNS" "$DURATION" "$ROUNDS" "$BASELINE" >"$REPORT" <<'EOF'
import csv, statistics, sys
path, mode, cores, conns, duration, rounds, base = sys.argv[1:]
rows = list(csv.DictReader(open(path)))

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def cpu_per_req(r):  # server CPU µs per request over the CPU window
    cpu, rps, win = num(r["server_cpu_s"]), num(r["req_per_sec"]), num(r["window_s"])
    return cpu * 1e6 / (rps * win) if None not in (cpu, rps, win) and rps and win else None

def per_req(field):  # a count of the perf window, per request
    def f(r):
        n, rps, win = num(r.get(field)), num(r["req_per_sec"]), num(r["perf_window_s"])
        return n / (rps * win) if None not in (n, rps, win) and rps and win else None
    return f

def med(rs, f):
    vals = [v for v in (f(r) for r in rs) if v is not None]
    return statistics.median(vals) if vals else None

cells = {}
for r in rows:
    cells.setdefault((r["path"], r["pacing"], r["rate"], r["server"]), []).append(r)
keys = list(dict.fromkeys((r["path"], r["pacing"], r["rate"]) for r in rows))
servers = list(dict.fromkeys(r["server"] for r in rows))
fields = {
    "rps": lambda r: num(r["req_per_sec"]),
    "p99": lambda r: num(r["p99_us"]),
    "cpu": cpu_per_req,
    "sys": per_req("syscalls"),
    "cs": per_req("cswitches"),
}

def fmt(v, spec):
    return "-" if v is None else format(v, spec)

def ratio(v, b):
    return f"{v / b:.2f}x" if v is not None and b else "-"

if mode == "client":
    print(f"Pooled HTTP/1.1 clients, keep-alive, closed loop: http-load -c{conns} requests in flight "
          f"on one client core, {rounds} rounds x {duration} s; medians. Client CPU per request "
          "from perf's task-clock over the whole run.\n")
    print(f"| path | client | req/s | p99 µs | errors | client CPU µs/req | req/s vs {base} | CPU/req vs {base} |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
elif mode == "sat":
    print(f"HTTP/1.1 keep-alive, wrk -c{conns}, {cores} server core(s), {rounds} rounds x {duration} s; medians\n")
    print(f"| path | server | req/s | p99 | errors | server CPU µs/req | req/s vs {base} | p99 vs {base} | CPU/req vs {base} |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
else:
    print(f"HTTP/1.1 keep-alive at a fixed offered rate: http-load -c{conns}, "
          f"{cores} server core(s), {rounds} rounds; medians. Delivered req/s from the client's "
          "progress lines; server CPU, syscalls and context switches (the server's sleeps and "
          "wake-ups) per delivered request.\n")
    print(f"| path | pacing | offered req/s | server | delivered req/s | p99 µs | errors | server CPU µs/req | syscalls/req "
          f"| context switches/req | CPU/req vs {base} | syscalls/req vs {base} | p99 vs {base} |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for p, pacing, rate in keys:
    b = cells.get((p, pacing, rate, base), [])
    bm = {k: med(b, f) for k, f in fields.items()}
    for s in servers:
        rs = cells.get((p, pacing, rate, s))
        if not rs:
            continue
        m = {k: med(rs, f) for k, f in fields.items()}
        errs = sum(int(num(r["errors"]) or 0) for r in rs)
        vs = (lambda k: ratio(m[k], bm[k])) if b and s != base else (lambda k: "-")
        if mode == "client":
            print(f"| `{p}` | {s} | {fmt(m['rps'], ',.0f')} | {fmt(m['p99'], ',.0f')} | {errs} "
                  f"| {fmt(m['cpu'], '.2f')} | {vs('rps')} | {vs('cpu')} |")
        elif mode == "sat":
            p99 = None if m["p99"] is None else m["p99"] / 1000
            print(f"| `{p}` | {s} | {fmt(m['rps'], ',.0f')} | {fmt(p99, '.2f')} ms | {errs} "
                  f"| {fmt(m['cpu'], '.2f')} | {vs('rps')} | {vs('p99')} | {vs('cpu')} |")
        else:
            print(f"| `{p}` | {pacing} | {int(float(rate)):,} | {s} | {fmt(m['rps'], ',.0f')} | {fmt(m['p99'], ',.0f')} | {errs} "
                  f"| {fmt(m['cpu'], '.2f')} | {fmt(m['sys'], '.2f')} | {fmt(m['cs'], '.3f')} | {vs('cpu')} | {vs('sys')} "
                  f"| {vs('p99')} |")
EOF
cat "$REPORT"
log "raw rows: $CSV; report: $REPORT"
