#!/usr/bin/env bash
# File I/O benchmark: percore::fs (on io_uring, and on the epoll driver)
# against fio (io_uring and psync engines), std's pread and tokio::fs, side by
# side on the same file.
#
#   scripts/bench-fs.sh                 # full run (SECS=10 per row, ~15 minutes)
#   SECS=1 QDS="1 32" scripts/bench-fs.sh   # smoke run
#
# Environment:
#   SECS     seconds per row (default 10)
#   QDS      queue depths for the 4 KiB random rows (default "1 32 128")
#   FILE     test file (default /var/tmp/percore-fsbench-1g; must be on a
#            filesystem with O_DIRECT, not tmpfs-backed /tmp on some systems)
#   SIZE_MB  test file size (default 1024)
#   ONLY     run only sections whose name contains this (warm, cold, direct, seq, write)
#
# Cold rows drop the page cache before each run (`echo 3 > /proc/sys/vm/drop_caches`,
# root only; fio additionally uses --invalidate=1) and read half the file once, in
# random order, instead of running for SECS. Every engine gets fio's default fadvise
# hint and the same never-repeating block order (fio's random map).
# Prints a Markdown table; also written to target/bench-fs.md, and as CSV
# (date,commit,test,engine,qd,iops,mib_s: the columns the fs chart reads, see
# scripts/charts.sh) to target/bench-fs.csv (CSV=...).
set -euo pipefail

cd "$(dirname "$0")/.."
SECS=${SECS:-10}
QDS=${QDS:-"1 32 128"}
FILE=${FILE:-/var/tmp/percore-fsbench-1g}
SIZE_MB=${SIZE_MB:-1024}
ONLY=${ONLY:-}
OUT=${OUT:-target/bench-fs.md}
CSV=${CSV:-${OUT%.md}.csv}

if ! command -v fio >/dev/null; then
    echo "installing fio (Debian package)..." >&2
    apt-get update -qq && apt-get install -y -qq fio >/dev/null
fi

cargo build --release -p percore-bench --bin fs-bench >&2
BIN=${CARGO_TARGET_DIR:-target}/release/fs-bench

size=$((SIZE_MB * 1024 * 1024))
if [ ! -f "$FILE" ] || [ "$(stat -c %s "$FILE")" -ne "$size" ]; then
    "$BIN" --file "$FILE" --create "$size" >&2
fi

can_drop=0
if [ -w /proc/sys/vm/drop_caches ]; then can_drop=1; fi
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
warm() { cat "$FILE" > /dev/null; }

mkdir -p "$(dirname "$OUT")"
{
    echo "| test | engine | QD | IOPS | MiB/s | vs fio io_uring |"
    echo "|---|---|---:|---:|---:|---:|"
} > "$OUT"
cat "$OUT"
mkdir -p "$(dirname "$CSV")"
echo "date,commit,test,engine,qd,iops,mib_s" > "$CSV"
csv_run="$(date -u +%Y-%m-%d),$(git rev-parse --short HEAD 2>/dev/null || echo '?')"

ref=""
row() { # test engine qd iops bs
    local test=$1 engine=$2 qd=$3 iops=$4 bs=$5 ratio="-"
    if [ -n "$ref" ] && [ "$ref" != "0" ]; then
        ratio=$(awk -v a="$iops" -v b="$ref" 'BEGIN { printf "%.2fx", a / b }')
    fi
    local mib
    mib=$(awk -v i="$iops" -v b="$bs" 'BEGIN { printf "%.0f", i * b / 1048576 }')
    local line="| $test | $engine | $qd | $(printf "%.0f" "$iops") | $mib | $ratio |"
    echo "$line" | tee -a "$OUT"
    echo "$csv_run,$test,$engine,$qd,$(printf "%.0f" "$iops"),$mib" >> "$CSV"
}

# fio job -> IOPS (terse output: field 8 read IOPS, field 49 write IOPS).
fio_iops() { # rw bs qd engine extra...
    local rw=$1 bs=$2 qd=$3 engine=$4
    shift 4
    local out
    out=$(fio --name=bench --filename="$FILE" --ioengine="$engine" --rw="$rw" --bs="$bs" \
        --iodepth="$qd" "${FIO_LENGTH[@]}" --size="${SIZE_MB}M" \
        --output-format=terse "$@" 2>/dev/null)
    case $rw in
        *write) echo "$out" | awk -F';' '{ print $49 }' ;;
        *) echo "$out" | awk -F';' '{ print $8 }' ;;
    esac
}

# How long a row runs: SECS, except cold rows (below).
FIO_LENGTH=(--runtime="$SECS" --time_based)
COLD_OPS_ARG=""

# fs-bench -> IOPS
pc_iops() {
    "$BIN" --file "$FILE" --secs "$SECS" $COLD_OPS_ARG "$@" | sed -n 's/.*iops=\([0-9]*\).*/\1/p'
}

section() { [ -z "$ONLY" ] || [[ $1 == *"$ONLY"* ]]; }

prep() { # warm|cold
    if [ "$1" = cold ]; then drop_caches; else warm; fi
}

# ---- 4 KiB random reads, warm page cache ----------------------------------
if section warm; then
    for qd in $QDS; do
        t="4k randread warm"
        prep warm; ref=$(fio_iops randread 4k "$qd" io_uring --invalidate=0)
        row "$t" "fio io_uring" "$qd" "$ref" 4096
        if [ "$qd" = 1 ]; then
            row "$t" "fio psync" 1 "$(fio_iops randread 4k 1 psync --invalidate=0)" 4096
            row "$t" "std pread" 1 "$(pc_iops --engine std --mode randread --qd 1)" 4096
        fi
        row "$t" "percore (default: RWF_NOWAIT first)" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --nowait on)" 4096
        row "$t" "percore ring only" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --nowait off)" 4096
        row "$t" "percore epoll driver" "$qd" "$(PERCORE_DRIVER=epoll pc_iops --engine percore --mode randread --qd "$qd")" 4096
        row "$t" "percore fixed bufs+file" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --fixed)" 4096
        row "$t" "tokio::fs" "$qd" "$(pc_iops --engine tokio --mode randread --qd "$qd")" 4096
    done
fi

# ---- 4 KiB random reads, cold page cache (buffered) -------------------------
if section cold; then
    if [ "$can_drop" = 1 ]; then
        # Cold rows read half the file once, in random order (fio's random
        # map; fs-bench's shared shuffle), and stop: a time-based run would
        # go on to re-read blocks it cached itself, and a faster engine
        # would reach those hits sooner, which measures the cache, not the
        # device. SECS * 4 caps a slow row.
        cold_ops=$((SIZE_MB * 1024 * 1024 / 2 / 4096))
        FIO_LENGTH=(--io_size="$((SIZE_MB / 2))M" --runtime="$((SECS * 4))")
        COLD_OPS_ARG="--ops $cold_ops --secs $((SECS * 4))"
        for qd in $QDS; do
            t="4k randread cold"
            prep cold; ref=$(fio_iops randread 4k "$qd" io_uring --invalidate=1)
            row "$t" "fio io_uring" "$qd" "$ref" 4096
            if [ "$qd" = 1 ]; then
                prep cold; row "$t" "fio psync" 1 "$(fio_iops randread 4k 1 psync --invalidate=1)" 4096
                prep cold; row "$t" "std pread" 1 "$(pc_iops --engine std --mode randread --qd 1)" 4096
            fi
            prep cold; row "$t" "percore (default)" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd")" 4096
            prep cold; row "$t" "percore batched (submit_now off)" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --submit-now off)" 4096
            prep cold; row "$t" "percore epoll driver" "$qd" "$(PERCORE_DRIVER=epoll pc_iops --engine percore --mode randread --qd "$qd")" 4096
            prep cold; row "$t" "percore fixed bufs+file" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --fixed)" 4096
            prep cold; row "$t" "tokio::fs" "$qd" "$(pc_iops --engine tokio --mode randread --qd "$qd")" 4096
        done
        FIO_LENGTH=(--runtime="$SECS" --time_based)
        COLD_OPS_ARG=""
    else
        echo "| 4k randread cold | (skipped: cannot write /proc/sys/vm/drop_caches, run as root) | | | | |" | tee -a "$OUT"
    fi
fi

# ---- 4 KiB random reads, O_DIRECT ----------------------------------------------
if section direct; then
    for qd in $QDS; do
        t="4k randread O_DIRECT"
        ref=$(fio_iops randread 4k "$qd" io_uring --direct=1)
        row "$t" "fio io_uring" "$qd" "$ref" 4096
        if [ "$qd" = 1 ]; then
            row "$t" "fio psync" 1 "$(fio_iops randread 4k 1 psync --direct=1)" 4096
        fi
        row "$t" "percore O_DIRECT" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --direct)" 4096
        row "$t" "percore O_DIRECT batched (submit_now off)" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --direct --submit-now off)" 4096
        row "$t" "percore O_DIRECT fixed" "$qd" "$(pc_iops --engine percore --mode randread --qd "$qd" --direct --fixed)" 4096
    done
fi

# ---- 1 MiB sequential reads --------------------------------------------------
if section seq; then
    for qd in 1 8; do
        t="1M seqread warm"
        prep warm; ref=$(fio_iops read 1M "$qd" io_uring --invalidate=0)
        row "$t" "fio io_uring" "$qd" "$ref" 1048576
        row "$t" "percore" "$qd" "$(pc_iops --engine percore --mode seqread --bs 1048576 --qd "$qd")" 1048576
        row "$t" "percore fixed" "$qd" "$(pc_iops --engine percore --mode seqread --bs 1048576 --qd "$qd" --fixed)" 1048576
        if [ "$qd" = 1 ]; then
            row "$t" "std pread" 1 "$(pc_iops --engine std --mode seqread --bs 1048576 --qd 1)" 1048576
        fi
        row "$t" "tokio::fs" "$qd" "$(pc_iops --engine tokio --mode seqread --bs 1048576 --qd "$qd")" 1048576
        t="1M seqread O_DIRECT"
        ref=$(fio_iops read 1M "$qd" io_uring --direct=1)
        row "$t" "fio io_uring" "$qd" "$ref" 1048576
        row "$t" "percore O_DIRECT" "$qd" "$(pc_iops --engine percore --mode seqread --bs 1048576 --qd "$qd" --direct)" 1048576
    done
fi

# ---- 4 KiB random writes, each followed by fdatasync -------------------------
if section write; then
    for qd in 1 32; do
        t="4k randwrite+fdatasync"
        ref=$(fio_iops randwrite 4k "$qd" io_uring --fdatasync=1)
        row "$t" "fio io_uring" "$qd" "$ref" 4096
        if [ "$qd" = 1 ]; then
            row "$t" "fio psync" 1 "$(fio_iops randwrite 4k 1 psync --fdatasync=1)" 4096
            row "$t" "std pwrite" 1 "$(pc_iops --engine std --mode randwrite --qd 1)" 4096
        fi
        row "$t" "percore" "$qd" "$(pc_iops --engine percore --mode randwrite --qd "$qd")" 4096
        row "$t" "percore fixed" "$qd" "$(pc_iops --engine percore --mode randwrite --qd "$qd" --fixed)" 4096
        row "$t" "tokio::fs" "$qd" "$(pc_iops --engine tokio --mode randwrite --qd "$qd")" 4096
    done
fi

echo "results in $OUT and $CSV" >&2
