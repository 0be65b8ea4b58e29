#!/usr/bin/env bash
# Echo latency beside background work that yields: percore's echo-server and
# tokio's current-thread peer, each with N background tasks per core that
# loop "100 µs of CPU work, then yield" (`--background N`,
# examples/common/background.rs), at a fixed offered rate.
#
# Each run: the server pinned to SERVER_CPU, echo-client pinned to CLIENT_CPU
# at RATE req/s (PACING: evenly spaced by default, see echo-client --pacing)
# over CONNS connections of SIZE-byte messages for DURATION s;
# the client's RESULT line gives req/s and latency percentiles, the server's
# once-a-second `BACKGROUND turns=T` lines the background work it did meanwhile.
# Servers alternate within a round; the report gives medians over ROUNDS.
#
#   scripts/bench-yield.sh                  # 0 1 4 16 tasks, 3 rounds, ~4 min
#   BACKGROUND="0 16" ROUNDS=1 DURATION=4 scripts/bench-yield.sh
#
# Environment (defaults in brackets): ROUNDS [3]  DURATION [8]  RATE [20000]  PACING [even]
#   CONNS [256]  SIZE [64]  BACKGROUND ["0 1 4 16"]  SERVERS ["percore tokio"]
#   SERVER_CPU [0]  CLIENT_CPU [1]  BUILD [1]  OUT [target/bench-yield]
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
BACKGROUND=${BACKGROUND:-"0 1 4 16"}
SERVERS=${SERVERS:-"percore tokio"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-$REPO/target/bench-yield}
EXAMPLES=${CARGO_TARGET_DIR:-$REPO/target}/release/examples

BENCH_NAME=bench-yield
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3

server_bin() {
    case $1 in
        percore) echo "$EXAMPLES/echo-server" ;;
        tokio) program_path peer-tokio-echo ;;
        *) die "unknown server '$1' (known: percore tokio)" ;;
    esac
}
if [[ "$BUILD" == 1 ]]; then
    build_programs echo-server peer-tokio-echo echo-client
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
LOGS=$OUT/logs-$stamp
mkdir -p "$LOGS"
CSV=$OUT/results-$stamp.csv
echo "round,server,background,offered,pacing,rps,p50_us,p99_us,errors,bg_turns_per_s" >"$CSV"

# turns LOG: the newest BACKGROUND count in LOG and how many such lines it has.
turns() { awk -F= '/^BACKGROUND turns=/ { t = $2; n++ } END { print (t ? t : 0), n + 0 }' "$1"; }

for ((round = 1; round <= ROUNDS; round++)); do
    for bg in $BACKGROUND; do
        for server in $(rotate "$round" $SERVERS); do
            log "round $round: $server, $bg background task(s), $RATE req/s"
            slog=$LOGS/$server-bg$bg-r$round.log
            out=$LOGS/$server-bg$bg-r$round.out
            launch_server "$slog" "$SERVER_CPU" "$(server_bin "$server")" --buf 4096 --background "$bg"
            read -r t0 n0 < <(turns "$slog")
            taskset -c "$CLIENT_CPU" "$EXAMPLES/echo-client" --addr "127.0.0.1:$PORT" \
                --conns "$CONNS" --size "$SIZE" --duration "$DURATION" --rate "$RATE" \
                --pacing "$PACING" >"$out" 2>&1 &
            CPID=$!
            wait "$CPID" || log "client exited with status $? ($out)"
            CPID=""
            read -r t1 n1 < <(turns "$slog")
            stop_server
            # The lines come once a second: turns per line is turns per second.
            per_s=$(awk -v a="$t0" -v b="$t1" -v m="$n0" -v n="$n1" \
                'BEGIN { if (n > m) printf "%.0f", (b - a) / (n - m); else print 0 }')
            echo "$round,$server,$bg,$RATE,$PACING,$(result_field "$out" rps),$(result_field "$out" p50_us),$(result_field "$out" p99_us),$(result_field "$out" errors),$per_s" >>"$CSV"
        done
    done
done

python3 - "$CSV" <<'PY' | tee "$OUT/report-$stamp.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def med(server, bg, key):
    vals = [float(r[key]) for r in rows if r["server"] == server and r["background"] == bg and r[key]]
    return statistics.median(vals) if vals else float("nan")
bgs = sorted({r["background"] for r in rows}, key=int)
servers = list(dict.fromkeys(r["server"] for r in rows))
offered, pacing = rows[0]["offered"], rows[0]["pacing"]
print(f"Echo at {offered} req/s offered ({pacing} pacing) beside N background tasks (100 µs of work, then yield), medians of {len({r['round'] for r in rows})} round(s)\n")
head = "| background tasks |" + "".join(f" {s} p50 / p99 µs | {s} req/s | {s} bg turns/s |" for s in servers)
if "percore" in servers and "tokio" in servers:
    head += " p99 percore/tokio |"
print(head)
print("|---" * (head.count("|") - 1) + "|")
for bg in bgs:
    line = f"| {bg} |"
    for s in servers:
        line += f" {med(s, bg, 'p50_us'):,.0f} / {med(s, bg, 'p99_us'):,.0f} | {med(s, bg, 'rps'):,.0f} | {med(s, bg, 'bg_turns_per_s'):,.0f} |"
    if "percore" in servers and "tokio" in servers:
        line += f" {med('percore', bg, 'p99_us') / med('tokio', bg, 'p99_us'):.2f}x |"
    print(line)
PY
log "raw rows: $CSV"
