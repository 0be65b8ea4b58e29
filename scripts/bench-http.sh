#!/usr/bin/env bash
# HTTP/1.1 benchmark: examples/http-server (hyper on percore) against
# benches/peers/tokio_http.rs (the same hyper service on tokio's multi-thread
# runtime with as many workers), loaded by wrk with keep-alive connections.
# Each server is pinned to SERVER_CPUS, wrk to WRK_CPUS; the servers take
# turns, ROUNDS interleaved rounds (the order flips each round).
#
#   scripts/bench-http.sh                              # 5 rounds x 10 s per server and path
#   ROUNDS=1 DURATION=2 scripts/bench-http.sh          # smoke run
#   CORES=2 SERVER_CPUS=0-1 WRK_CPUS=2-3 WRK_THREADS=2 scripts/bench-http.sh
#
# Environment (defaults in brackets):
#   CORES [1]  server cores (percore --cores, tokio worker threads)
#   SERVER_CPUS [0 .. CORES-1]  WRK_CPUS [the next CPU]  WRK_THREADS [1]
#   CONNS [256]  DURATION [10] seconds per run  ROUNDS [5]  PATHS ["/ /json"]
#   SERVERS ["percore tokio"]; NAME=PATH adds another build of the server,
#     e.g. "percore tokio base=/tmp/http-server-main" for an A/B of a change
#   BUILD [1]  OUT [target/bench-http]
#
# wrk (Debian package) is installed with apt-get when missing. Raw rows go to
# $OUT/results-<stamp>.csv; the markdown table (median req/s, median p99,
# ratio of percore to tokio) to $OUT/report-<stamp>.md and stdout.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

CORES=${CORES:-1}
SERVER_CPUS=${SERVER_CPUS:-$(if ((CORES == 1)); then echo 0; else echo "0-$((CORES - 1))"; fi)}
WRK_CPUS=${WRK_CPUS:-$CORES}
WRK_THREADS=${WRK_THREADS:-1}
CONNS=${CONNS:-256}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
PATHS=${PATHS:-"/ /json"}
SERVERS=${SERVERS:-"percore tokio"}
BUILD=${BUILD:-1}
OUT=${OUT:-$REPO/target/bench-http}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
EXAMPLES=$TARGET_DIR/release/examples

BENCH_NAME=bench-http
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

# --- tools ------------------------------------------------------------------
command -v wrk >/dev/null || need_apt wrk
command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3
[[ $(nproc) -gt $CORES ]] || log "warning: no CPU left for wrk; it shares the servers' CPUs"

name_of() { echo "${1%%=*}"; }
bin_of() {
    case $1 in
        *=*) echo "${1#*=}" ;;
        percore) echo "$EXAMPLES/http-server" ;;
        tokio) echo "$EXAMPLES/peer-tokio-http" ;;
        *) die "unknown server '$1' (known: percore tokio)" ;;
    esac
}
if [[ "$BUILD" == 1 ]]; then
    log "cargo build --release --example http-server --example peer-tokio-http (target dir $TARGET_DIR)"
    cargo build --release --example http-server --example peer-tokio-http
fi
for s in $SERVERS; do [[ -x $(bin_of "$s") ]] || die "$(bin_of "$s") not built"; done

start_server() { # start_server SERVER: sets SPID and PORT
    local name port i
    name=$(name_of "$1")
    port=$(free_port)
    taskset -c "$SERVER_CPUS" "$(bin_of "$1")" --addr "127.0.0.1:$port" --cores "$CORES" \
        >>"$LOGS/$name.log" 2>&1 &
    SPID=$!
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            PORT=$port
            return 0
        fi
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.05
    done
    die "$name did not start listening (see $LOGS/$name.log)"
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
echo "round,server,path,req_per_sec,p99_us,errors,server_cpu_s" >"$CSV"

log "servers on CPUs $SERVER_CPUS ($CORES cores), wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s on CPUs $WRK_CPUS"
order=($SERVERS)
for ((round = 1; round <= ROUNDS; round++)); do
    for server in "${order[@]}"; do
        start_server "$server"
        for path in $PATHS; do
            # The server's CPU time over the wrk run: what separates the
            # servers when wrk, not the server, sets the request rate.
            c0=$(cpu_ticks "$SPID")
            out=$(taskset -c "$WRK_CPUS" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
                "http://127.0.0.1:$PORT$path" 2>&1) || die "wrk failed: $out"
            cpu=$(ticks_to_s "$c0" "$(cpu_ticks "$SPID")")
            read -r rps p99 errs < <(parse_wrk <<<"$out")
            echo "$round,$(name_of "$server"),$path,$rps,$p99,$errs,$cpu" >>"$CSV"
            log "round $round $(name_of "$server") $path: $rps req/s, p99 ${p99} us, $errs errors, server CPU ${cpu} s"
        done
        stop_server
    done
    # Flip the order, so neither server always runs first (or on a warmer machine).
    order=($(printf '%s\n' "${order[@]}" | tac))
done

REPORT=$OUT/report-$STAMP.md
python3 - "$CSV" "$CORES" "$CONNS" "$DURATION" "$ROUNDS" >"$REPORT" <<'EOF'
import csv, statistics, sys
path, cores, conns, duration, rounds = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
cells = {}
for r in rows:
    cells.setdefault((r["path"], r["server"]), []).append(r)
print(f"HTTP/1.1 keep-alive, wrk -c{conns}, {cores} server core(s), {rounds} rounds x {duration} s; medians\n")
print("| path | server | req/s | p99 | errors | server CPU µs/req | req/s vs tokio | p99 vs tokio | CPU/req vs tokio |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
paths = list(dict.fromkeys(r["path"] for r in rows))
servers = list(dict.fromkeys(r["server"] for r in rows))
def med(rs, k):
    return statistics.median(float(r[k]) for r in rs)
def cpu_per_req(rs):
    # server CPU seconds over the run / requests served in it, in µs
    return statistics.median(
        float(r["server_cpu_s"]) * 1e6 / (float(r["req_per_sec"]) * float(duration)) for r in rs
    )
for p in paths:
    base = cells.get((p, "tokio"))
    for s in servers:
        rs = cells.get((p, s))
        if not rs:
            continue
        rps, p99 = med(rs, "req_per_sec"), med(rs, "p99_us")
        errs = sum(int(r["errors"]) for r in rs)
        cpu = cpu_per_req(rs)
        if base and s != "tokio":
            ratio = f"{rps / med(base, 'req_per_sec'):.2f}x"
            pratio = f"{p99 / med(base, 'p99_us'):.2f}x"
            cratio = f"{cpu / cpu_per_req(base):.2f}x"
        else:
            ratio = pratio = cratio = "-"
        print(f"| `{p}` | {s} | {rps:,.0f} | {p99 / 1000:.2f} ms | {errs} | {cpu:.2f} | {ratio} | {pratio} | {cratio} |")
EOF
cat "$REPORT"
log "raw rows: $CSV; report: $REPORT"
