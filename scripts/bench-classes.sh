#!/usr/bin/env bash
# Scheduling classes: echo latency at a fixed rate beside background work
# on the same core, with and without task queues, and the same setup on
# glommio (task queues) and tokio (no classes). Two cases (CASES):
#
#   cpu   BACKGROUND tasks of "100 µs of work, then yield" (below)
#   copy  COPY_TASKS tasks that each copy a COPY_MB MiB file (made once in
#         COPY_DIR, removed at the end) in 256 KiB reads and writes, over
#         and over, yielding after each chunk (`--copy SRC`,
#         examples/common/background.rs): percore-classes runs them in the
#         background queue (equal shares, at most 2 file ops in flight,
#         TaskQueue::set_file_io_limit); percore-yield in the default queue;
#         tokio through tokio::fs (its blocking pool); glommio through
#         BufferedFile in its background queue (no file-op cap in glommio).
#         Buffered I/O: once the source is in the page cache this is memory
#         copies in the kernel, not device time.
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
#   CASES=copy ROUNDS=1 DURATION=2 scripts/bench-classes.sh       # the copy case alone, smoke
#
# Environment (defaults in brackets): ROUNDS [3]  DURATION [8]  RATE [20000]  PACING [even]
#   SPIN [0]: 1 runs echo-client with --spin (it spins for due times instead of
#   sleeping, so its own wake-ups on a VM do not count as the servers' latency;
#   but on a guest whose host takes a vCPU away when both are busy, as the AMD
#   machine's does, that steal then sets every p99: see the report's last
#   line and the CSV's steal_ms)
#   CONNS [256]  SIZE [64]  BACKGROUND ["0 16"]
#   SERVERS ["percore-classes percore-yield tokio glommio"]
#   CASES ["cpu copy"]  COPY_TASKS [4]  COPY_MB [64]  COPY_DIR [$OUT/copy-$$]
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
SPIN=${SPIN:-0}
CLIENT_WAIT=()
[[ $SPIN == 1 ]] && CLIENT_WAIT=(--spin)
CONNS=${CONNS:-256}
SIZE=${SIZE:-64}
BACKGROUND=${BACKGROUND:-"0 16"}
SERVERS=${SERVERS:-"percore-classes percore-yield tokio glommio"}
CASES=${CASES:-"cpu copy"}
COPY_TASKS=${COPY_TASKS:-4}
COPY_MB=${COPY_MB:-64}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-$REPO/target/bench-classes}
COPY_DIR=${COPY_DIR:-$OUT/copy-$$}
EXAMPLES=${CARGO_TARGET_DIR:-$REPO/target}/release/examples

BENCH_NAME=bench-classes
# shellcheck source=scripts/bench-lib.sh
source "$REPO/scripts/bench-lib.sh"

command -v taskset >/dev/null || need_apt util-linux
command -v python3 >/dev/null || need_apt python3

# server_cmd NAME BG [SRC]: the server binary and its arguments (with SRC:
# the BG tasks copy SRC).
server_cmd() {
    local copy=${3:+--copy $3}
    case $1 in
        percore-classes) echo "$EXAMPLES/echo-server --buf 4096 --classes --background $2 $copy" ;;
        percore-yield) echo "$EXAMPLES/echo-server --buf 4096 --background $2 $copy" ;;
        tokio) echo "$(program_path peer-tokio-echo) --buf 4096 --background $2 $copy" ;;
        glommio) echo "$(program_path peer-glommio-echo) --buf 4096 --background $2 $copy" ;;
        *) die "unknown server '$1' (known: percore-classes percore-yield tokio glommio)" ;;
    esac
}
for s in $SERVERS; do server_cmd "$s" 0 >/dev/null; done
for c in $CASES; do [[ $c == cpu || $c == copy ]] || die "unknown case '$c' (known: cpu copy)"; done
SRC=""
if [[ " $CASES " == *" copy "* ]]; then
    mkdir -p "$COPY_DIR"
    SRC=$COPY_DIR/src
    head -c "$((COPY_MB << 20))" /dev/urandom >"$SRC"
    # Every run's copies too (the peers are stopped, not asked to clean up).
    trap 'cleanup; rm -rf "$COPY_DIR"' EXIT
fi
if [[ "$BUILD" == 1 ]]; then
    build_programs echo-server peer-tokio-echo peer-glommio-echo echo-client
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
LOGS=$OUT/logs-$stamp
mkdir -p "$LOGS"
CSV=$OUT/results-$stamp.csv
REPORT=$OUT/report-$stamp.md
echo "round,case,server,background,offered,pacing,rps,p50_us,p99_us,errors,bg_per_s,server_cpu_s,wall_s,steal_ms" >"$CSV"

# done_so_far KEY LOG: the newest `BACKGROUND KEY=N` count in LOG (turns, or
# bytes copied) and how many such lines it has.
done_so_far() { awk -F= -v k="BACKGROUND $1" '$1 == k { t = $2; n++ } END { print (t ? t : 0), n + 0 }' "$2"; }

# runs: "case background" pairs; the unloaded run (0 tasks) is the cpu case's.
runs=()
for c in $CASES; do
    if [[ $c == cpu ]]; then
        for bg in $BACKGROUND; do runs+=("cpu $bg"); done
    else
        runs+=("copy $COPY_TASKS")
    fi
done

for ((round = 1; round <= ROUNDS; round++)); do
    for run in "${runs[@]}"; do
        read -r kind bg <<<"$run"
        key=turns src=""
        if [[ $kind == copy ]]; then key=copied src=$SRC; fi
        for server in $(rotate "$round" $SERVERS); do
            log "round $round: $server, $bg background $kind task(s), $RATE req/s"
            slog=$LOGS/$server-$kind$bg-r$round.log
            out=$LOGS/$server-$kind$bg-r$round.out
            # shellcheck disable=SC2046 # the command splits into words on purpose
            launch_server "$slog" "$SERVER_CPU" $(server_cmd "$server" "$bg" "$src")
            read -r t0 n0 < <(done_so_far "$key" "$slog")
            c0=$(cpu_ticks "$SPID")
            s0=$(steal_ticks)
            w0=$(now)
            taskset -c "$CLIENT_CPU" "$EXAMPLES/echo-client" --addr "127.0.0.1:$PORT" \
                --conns "$CONNS" --size "$SIZE" --duration "$DURATION" --rate "$RATE" \
                --pacing "$PACING" "${CLIENT_WAIT[@]}" >"$out" 2>&1 &
            CPID=$!
            wait "$CPID" || log "client exited with status $? ($out)"
            CPID=""
            c1=$(cpu_ticks "$SPID")
            s1=$(steal_ticks)
            w1=$(now)
            read -r t1 n1 < <(done_so_far "$key" "$slog")
            stop_server
            if [[ -n $src ]]; then rm -f "$src".copy-*; fi
            # The lines come once a second: turns per line is turns per second.
            per_s=$(awk -v a="$t0" -v b="$t1" -v m="$n0" -v n="$n1" \
                'BEGIN { if (n > m) printf "%.0f", (b - a) / (n - m); else print 0 }')
            wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
            echo "$round,$kind,$server,$bg,$RATE,$PACING,$(result_field "$out" rps),$(result_field "$out" p50_us),$(result_field "$out" p99_us),$(result_field "$out" errors),$per_s,$(ticks_to_s "$c0" "$c1"),$wall,$(ticks_to_ms "$s0" "$s1")" >>"$CSV"
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
def sel(server, case, bg):
    return [r for r in rows if r["server"] == server and r["case"] == case and r["background"] == bg]
def med(server, case, bg, key):
    vals = [float(r[key]) for r in sel(server, case, bg) if r[key]]
    return statistics.median(vals) if vals else float("nan")
def cpu_frac(server, case, bg):
    vals = [float(r["server_cpu_s"]) / float(r["wall_s"]) for r in sel(server, case, bg)
            if float(r["wall_s"]) > 0]
    return statistics.median(vals) if vals else float("nan")
servers = list(dict.fromkeys(r["server"] for r in rows))
offered, pacing = rows[0]["offered"], rows[0]["pacing"]
n_rounds = len({r["round"] for r in rows})
# The unloaded run (no background task) of each server, from the cpu case.
def unloaded(server, key):
    return med(server, "cpu", "0", key)

cpu_bgs = sorted({r["background"] for r in rows if r["case"] == "cpu"}, key=int)
if cpu_bgs:
    print(f"Echo at {offered} req/s offered ({pacing} pacing) beside N background tasks "
          f"(100 µs of work, then yield), one server core, medians of {n_rounds} round(s)\n")
    print("| server | background tasks | p50 µs | p99 µs | req/s | bg turns/s | bg share of core | server CPU | p99 / own unloaded | bg share of the CPU echo leaves free |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in servers:
        for bg in cpu_bgs:
            p99, turns = med(s, "cpu", bg, "p99_us"), med(s, "cpu", bg, "bg_per_s")
            share = turns * SLICE_S
            base = unloaded(s, "p99_us")
            free = 1 - cpu_frac(s, "cpu", "0")
            own = f"{p99 / base:.2f}x" if bg != "0" and base == base else ""
            left = f"{share / free:.0%}" if bg != "0" and free == free and free > 0 else ""
            print(f"| {s} | {bg} | {med(s, 'cpu', bg, 'p50_us'):,.0f} | {p99:,.0f} | {med(s, 'cpu', bg, 'rps'):,.0f} | "
                  f"{turns:,.0f} | {share:.0%} | {cpu_frac(s, 'cpu', bg):.0%} | {own} | {left} |")
    loaded = [bg for bg in cpu_bgs if bg != "0"]
    if loaded and "percore-classes" in servers:
        print()
        for bg in loaded:
            ours = med("percore-classes", "cpu", bg, "p99_us")
            for peer in [p for p in servers if p != "percore-classes"]:
                print(f"- {bg} background tasks: percore-classes p99 / {peer} p99 = {ours / med(peer, 'cpu', bg, 'p99_us'):.2f}x")

copy_bgs = sorted({r["background"] for r in rows if r["case"] == "copy"}, key=int)
for bg in copy_bgs:
    print(f"\nEcho at {offered} req/s offered ({pacing} pacing) beside {bg} background file copies "
          f"(256 KiB chunks, buffered), one server core, medians of {n_rounds} round(s)\n")
    print("| server | p50 µs | p99 µs | req/s | copied MB/s | server CPU | p99 / own unloaded |")
    print("|---|---|---|---|---|---|---|")
    for s in servers:
        p99, base = med(s, "copy", bg, "p99_us"), unloaded(s, "p99_us")
        own = f"{p99 / base:.2f}x" if base == base else ""
        print(f"| {s} | {med(s, 'copy', bg, 'p50_us'):,.0f} | {p99:,.0f} | {med(s, 'copy', bg, 'rps'):,.0f} | "
              f"{med(s, 'copy', bg, 'bg_per_s') / 1e6:,.1f} | {cpu_frac(s, 'copy', bg):.0%} | {own} |")
    if "percore-classes" in servers:
        print()
        ours = med("percore-classes", "copy", bg, "p99_us")
        for peer in [p for p in servers if p != "percore-classes"]:
            print(f"- {bg} copies: percore-classes p99 / {peer} p99 = {ours / med(peer, 'copy', bg, 'p99_us'):.2f}x")

# A vCPU the host took away stops the server or the client for as long: a
# run with steal has that much latency in its tail, whatever the server.
steals = [float(r["steal_ms"]) for r in rows if r.get("steal_ms")]
if steals:
    hit = [s for s in steals if s >= 20]
    print(f"\nHost steal during the runs: {len(hit)} of {len(steals)} runs lost 20 ms or more "
          f"(at most {max(steals):,.0f} ms); a p99 from such a run may be the host's, not the server's.")
PY
} | tee "$REPORT"
log "raw rows: $CSV"
log "report: $REPORT"
