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
#   SERVERS ["percore tokio"]  BUILD [1]  OUT [target/bench-http]
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

log() { printf '[bench-http %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- the server we started; the trap ends it and only it --------------------
SPID=""
stop_server() {
    [[ -n "$SPID" ]] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------
need_apt() { # need_apt PACKAGE: install a Debian package (as root)
    if [[ $(id -u) -ne 0 ]]; then die "$1 is missing and we are not root: apt-get install $1"; fi
    log "installing $1 (Debian package)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}
command -v wrk >/dev/null || need_apt wrk
command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3
[[ $(nproc) -gt $CORES ]] || log "warning: no CPU left for wrk; it shares the servers' CPUs"

bin_of() {
    case $1 in
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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() { # start_server NAME: sets SPID and PORT
    local name=$1 port i
    port=$(free_port)
    taskset -c "$SERVER_CPUS" "$(bin_of "$name")" --addr "127.0.0.1:$port" --cores "$CORES" \
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
echo "round,server,path,req_per_sec,p99_us,errors" >"$CSV"

log "servers on CPUs $SERVER_CPUS ($CORES cores), wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s on CPUs $WRK_CPUS"
order=($SERVERS)
for ((round = 1; round <= ROUNDS; round++)); do
    for server in "${order[@]}"; do
        start_server "$server"
        for path in $PATHS; do
            out=$(taskset -c "$WRK_CPUS" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
                "http://127.0.0.1:$PORT$path" 2>&1) || die "wrk failed: $out"
            read -r rps p99 errs < <(parse_wrk <<<"$out")
            echo "$round,$server,$path,$rps,$p99,$errs" >>"$CSV"
            log "round $round $server $path: $rps req/s, p99 ${p99} us, $errs errors"
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
print("| path | server | req/s | p99 | errors | req/s vs tokio | p99 vs tokio |")
print("|---|---|---:|---:|---:|---:|---:|")
paths = list(dict.fromkeys(r["path"] for r in rows))
servers = list(dict.fromkeys(r["server"] for r in rows))
def med(rs, k):
    return statistics.median(float(r[k]) for r in rs)
for p in paths:
    base = cells.get((p, "tokio"))
    for s in servers:
        rs = cells.get((p, s))
        if not rs:
            continue
        rps, p99 = med(rs, "req_per_sec"), med(rs, "p99_us")
        errs = sum(int(r["errors"]) for r in rs)
        if base and s != "tokio":
            ratio = f"{rps / med(base, 'req_per_sec'):.2f}x"
            pratio = f"{p99 / med(base, 'p99_us'):.2f}x"
        else:
            ratio = pratio = "-"
        print(f"| `{p}` | {s} | {rps:,.0f} | {p99 / 1000:.2f} ms | {errs} | {ratio} | {pratio} |")
EOF
cat "$REPORT"
log "raw rows: $CSV; report: $REPORT"
