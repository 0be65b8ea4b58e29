#!/usr/bin/env bash
# Scheduling classes: echo latency at a fixed rate beside CPU-bound
# background work on the same core, with and without task queues, and the
# same setup on glommio (task queues) and tokio (no classes).
#
# Servers (each run with BACKGROUND tasks of "100 µs of work, then yield",
# examples/common/background.rs):
#   percore-classes  echo-server --classes: connections in a task queue with
#                    Latency::Matters(1 ms), background tasks in a
#                    NotImportant queue with equal shares, calling
#                    percore::task::yield_if_needed() after each chunk
#   percore-yield    echo-server: everything in the default queue, the
#                    background tasks call yield_now() after each chunk
#   tokio            peer-tokio-echo (current_thread): tokio::task::yield_now()
#   glommio          peer-glommio-echo: echo queue Latency::Matters(1 ms),
#                    background queue NotImportant, equal shares,
#                    glommio::yield_if_needed()
#
# Each run: the server pinned to SERVER_CPU, echo-client pinned to CLIENT_CPU
# at RATE req/s (PACING even by default) over CONNS connections of SIZE-byte
# messages for DURATION s. The client's RESULT line gives req/s and latency
# percentiles; the server's once-a-second `BACKGROUND turns=T` lines give the
# background work done (turns/s x 100 µs = the share of the core it got);
# the server's CPU time over the run comes from /proc. Servers alternate
# within a round; the report gives medians over ROUNDS, and for the loaded
# runs: p99 against the server's own unloaded p99 and against the peers',
# and the background's share of the CPU that the unloaded echo left free.
#
#   scripts/bench-classes.sh                          # ~5 min
#   ROUNDS=1 DURATION=4 scripts/bench-classes.sh
#   SERVERS=percore-classes BACKGROUND=16 ROUNDS=1 DURATION=2 scripts/bench-classes.sh   # smoke test
#
# Environment (defaults in brackets): ROUNDS [3]  DURATION [8]  RATE [20000]  PACING [even]
#   CONNS [256]  SIZE [64]  BACKGROUND ["0 16"]
#   SERVERS ["percore-classes percore-yield tokio glommio"]
#   SERVER_CPU [0]  CLIENT_CPU [1]  BUILD [1]  OUT [target/bench-classes]
# Raw rows go to $OUT/results-<stamp>.csv, the table to $OUT/report-<stamp>.md
# and stdout.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
RATE=${RATE:-20000}
PACING=${PACING:-even}
CONNS=${CONNS:-256}
SIZE=${SIZE:-64}
BACKGROUND=${BACKGROUND:-"0 16"}
SERVERS=${SERVERS:-"percore-classes percore-yield tokio glommio"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-$REPO/target/bench-classes}
EXAMPLES=${CARGO_TARGET_DIR:-$REPO/target}/release/examples

BENCH_NAME=bench-classes
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3

# server_cmd NAME BG: the server binary and its arguments.
server_cmd() {
    case $1 in
        percore-classes) echo "$EXAMPLES/echo-server --buf 4096 --classes --background $2" ;;
        percore-yield) echo "$EXAMPLES/echo-server --buf 4096 --background $2" ;;
        tokio) echo "$EXAMPLES/peer-tokio-echo --buf 4096 --background $2" ;;
        glommio) echo "$EXAMPLES/peer-glommio-echo --buf 4096 --background $2" ;;
        *) die "unknown server '$1' (known: percore-classes percore-yield tokio glommio)" ;;
    esac
}
for s in $SERVERS; do server_cmd "$s" 0 >/dev/null; done
if [[ "$BUILD" == 1 ]]; then
    cargo build --release --example echo-server --example peer-tokio-echo \
        --example peer-glommio-echo --example echo-client
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
LOGS=$OUT/logs-$stamp
mkdir -p "$LOGS"
CSV=$OUT/results-$stamp.csv
REPORT=$OUT/report-$stamp.md
echo "round,server,background,offered,pacing,rps,p50_us,p99_us,errors,bg_turns_per_s,server_cpu_s,wall_s" >"$CSV"

# turns LOG: the newest BACKGROUND count in LOG and how many such lines it has.
turns() { awk -F= '/^BACKGROUND turns=/ { t = $2; n++ } END { print (t ? t : 0), n + 0 }' "$1"; }

for ((round = 1; round <= ROUNDS; round++)); do
    for bg in $BACKGROUND; do
        for server in $(rotate "$round" $SERVERS); do
            log "round $round: $server, $bg background task(s), $RATE req/s"
            slog=$LOGS/$server-bg$bg-r$round.log
            out=$LOGS/$server-bg$bg-r$round.out
            # shellcheck disable=SC2046 # the command splits into words on purpose
            launch_server "$slog" "$SERVER_CPU" $(server_cmd "$server" "$bg")
            read -r t0 n0 < <(turns "$slog")
            c0=$(cpu_ticks "$SPID")
            w0=$(now)
            taskset -c "$CLIENT_CPU" "$EXAMPLES/echo-client" --addr "127.0.0.1:$PORT" \
                --conns "$CONNS" --size "$SIZE" --duration "$DURATION" --rate "$RATE" \
                --pacing "$PACING" >"$out" 2>&1 &
            CPID=$!
            wait "$CPID" || log "client exited with status $? ($out)"
            CPID=""
            c1=$(cpu_ticks "$SPID")
            w1=$(now)
            read -r t1 n1 < <(turns "$slog")
            stop_server
            # The lines come once a second: turns per line is turns per second.
            per_s=$(awk -v a="$t0" -v b="$t1" -v m="$n0" -v n="$n1" \
                'BEGIN { if (n > m) printf "%.0f", (b - a) / (n - m); else print 0 }')
            wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
            echo "$round,$server,$bg,$RATE,$PACING,$(result_field "$out" rps),$(result_field "$out" p50_us),$(result_field "$out" p99_us),$(result_field "$out" errors),$per_s,$(ticks_to_s "$c0" "$c1"),$wall" >>"$CSV"
        done
    done
done

{
    meta_header
    echo
    python3 - "$CSV" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
SLICE_S = 100e-6  # one background turn (examples/common/background.rs)
def med(server, bg, key):
    vals = [float(r[key]) for r in rows if r["server"] == server and r["background"] == bg and r[key]]
    return statistics.median(vals) if vals else float("nan")
def cpu_frac(server, bg):
    vals = [float(r["server_cpu_s"]) / float(r["wall_s"]) for r in rows
            if r["server"] == server and r["background"] == bg and float(r["wall_s"]) > 0]
    return statistics.median(vals) if vals else float("nan")
bgs = sorted({r["background"] for r in rows}, key=int)
servers = list(dict.fromkeys(r["server"] for r in rows))
offered, pacing = rows[0]["offered"], rows[0]["pacing"]
print(f"Echo at {offered} req/s offered ({pacing} pacing) beside N background tasks "
      f"(100 µs of work, then yield), one server core, medians of {len({r['round'] for r in rows})} round(s)\n")
print("| server | background tasks | p50 µs | p99 µs | req/s | bg turns/s | bg share of core | server CPU | p99 / own unloaded | bg share of the CPU echo leaves free |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s in servers:
    for bg in bgs:
        p99, turns = med(s, bg, "p99_us"), med(s, bg, "bg_turns_per_s")
        share = turns * SLICE_S
        base = med(s, "0", "p99_us") if "0" in bgs else float("nan")
        free = 1 - cpu_frac(s, "0") if "0" in bgs else float("nan")
        own = f"{p99 / base:.2f}x" if bg != "0" and base == base else ""
        left = f"{share / free:.0%}" if bg != "0" and free == free and free > 0 else ""
        print(f"| {s} | {bg} | {med(s, bg, 'p50_us'):,.0f} | {p99:,.0f} | {med(s, bg, 'rps'):,.0f} | "
              f"{turns:,.0f} | {share:.0%} | {cpu_frac(s, bg):.0%} | {own} | {left} |")
loaded = [bg for bg in bgs if bg != "0"]
if loaded and "percore-classes" in servers:
    print()
    for bg in loaded:
        ours = med("percore-classes", bg, "p99_us")
        for peer in [p for p in servers if p != "percore-classes"]:
            print(f"- {bg} background tasks: percore-classes p99 / {peer} p99 = {ours / med(peer, bg, 'p99_us'):.2f}x")
PY
} | tee "$REPORT"
log "raw rows: $CSV"
log "report: $REPORT"
