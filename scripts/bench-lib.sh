# shellcheck shell=bash
# Shared by the loopback benchmark scripts (bench-echo.sh, bench-cores.sh):
# logging, building and finding the programs, the processes we start and end,
# server start/stop, /proc readings.
# Source it after setting BENCH_NAME (the log prefix) and LOGS (the directory
# for server logs):
#
#   BENCH_NAME=bench-echo
#   source "$REPO/scripts/bench-lib.sh"
#
# Nothing here runs a benchmark by itself.

log() { printf '[%s %s] %s\n' "${BENCH_NAME:-bench}" "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- processes we started; the trap ends them and only them -----------------
SPID="" CPID="" HPID="" PERF_PID=""
cleanup() {
    local pid
    for pid in $PERF_PID $CPID $HPID $SPID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for pid in $PERF_PID $CPID $HPID $SPID; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_apt() { # need_apt PACKAGE: install a Debian package (we run as root on the bench machines)
    if [[ $(id -u) -ne 0 ]]; then die "$1 is missing and we are not root: apt-get install $1"; fi
    log "installing $1"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

# --- programs ---------------------------------------------------------------
# The user examples (examples/, package percore-examples) build to
# target/release/examples/NAME; the peers and load tools (bench/, package
# percore-bench) are binaries, in target/release/NAME.
program_path() { # program_path NAME: the release build of example or bench program NAME
    local dir=${CARGO_TARGET_DIR:-$REPO/target}/release
    if [[ -e "$REPO/examples/$1.rs" ]]; then echo "$dir/examples/$1"; else echo "$dir/$1"; fi
}
# Each package is built by itself: a build of both at once would unify their
# dependencies' features (the peers turn on some in libc and tokio) and make
# a third set of artifacts; this way the examples measured are the very ones
# `cargo run --release --example NAME` builds, and the bench programs the
# ones `cargo build --release -p percore-bench` builds.
build_programs() { # build_programs NAME...: `cargo build --release` of just those programs
    local examples=() bins=() name
    for name in "$@"; do
        if [[ -e "$REPO/examples/$name.rs" ]]; then examples+=(--example "$name"); else bins+=(--bin "$name"); fi
    done
    if [[ ${#examples[@]} -gt 0 ]]; then
        log "cargo build --release -p percore-examples ${examples[*]} (target dir ${CARGO_TARGET_DIR:-$REPO/target})"
        cargo build --release -p percore-examples "${examples[@]}"
    fi
    if [[ ${#bins[@]} -gt 0 ]]; then
        log "cargo build --release -p percore-bench ${bins[*]}"
        cargo build --release -p percore-bench "${bins[@]}"
    fi
}

# --- readings ---------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_ticks() { # utime+stime of all threads of PID, in clock ticks
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}
ticks_to_s() { # ticks_to_s BEFORE AFTER: the difference in seconds
    awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / t }'
}
ticks_to_ms() { # ticks_to_ms BEFORE AFTER: the difference in whole milliseconds
    awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN { printf "%.0f", (b - a) * 1000 / t }'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Time the hypervisor ran something else on this guest's CPUs (the `steal`
# column of /proc/stat, all CPUs), in clock ticks. On a guest whose host
# takes a busy vCPU away for ~100 ms at a time, this is what a p99 then measures:
# see BENCHMARKS.md's AMD section.
steal_ticks() { awk '$1 == "cpu" { print $9 }' /proc/stat; }
STEAL_AT_START=$(steal_ticks)
now() { date +%s.%N; }
# sleep that a signal interrupts: bash runs traps only between foreground commands.
nap() {
    sleep "$1" &
    wait $! || true
}
buf_for() { if (($1 > 4096)); then echo 16384; else echo 4096; fi; }
rotate() { # rotate N WORDS...: the words shifted left by N
    local n=$1; shift
    local a=("$@") i
    for ((i = 0; i < ${#a[@]}; i++)); do printf '%s ' "${a[(i + n) % ${#a[@]}]}"; done
}
result_field() { # result_field FILE KEY: value of KEY= on echo-client's RESULT line
    sed -n 's/^RESULT //p' "$1" | tail -n1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# Mean req/s of a load client's per-second progress lines (echo-client,
# http-load: "[   2.0s]   51234 req/s ..."),
# leaving out the first and the last when there are three or more. With --rate,
# the RESULT rps is requests scheduled / duration, which is the offered rate
# even when the client fell behind and finished late; the progress lines show
# what was delivered each second.
delivered_rps() {
    sed -n 's/^\[ *[0-9.]*s\] *\([0-9.]*\) req\/s.*/\1/p' "$1" |
        awk '{ v[n++] = $1 } END {
            lo = 0; hi = n; if (n >= 3) { lo = 1; hi = n - 1 }
            for (i = lo; i < hi; i++) s += v[i]
            if (hi > lo) printf "%.0f", s / (hi - lo)
        }'
}
# The window (seconds) over which a saturation run's CPU is read: it starts
# after WARMUP and ends 0.5 s before the client stops.
sat_window() { # sat_window DURATION WARMUP
    awk -v d="$1" -v w="$2" 'BEGIN { x = d - w - 0.5; if (x < 0.5) x = 0.5; print x }'
}

# --- servers ----------------------------------------------------------------
# launch_server LOG CPUS BIN ARGS...: starts `taskset -c CPUS BIN --addr
# 127.0.0.1:PORT ARGS...` on a free port and waits until it accepts a
# connection; sets SPID and PORT. Tries three ports, then dies. The words of
# the array SERVER_PREFIX, if any, come before BIN (e.g. `chrt -f 10`).
SERVER_PREFIX=()
launch_server() {
    local logf=$1 cpus=$2 bin=$3 port _try i
    shift 3
    for _try in 1 2 3; do
        port=$(free_port)
        taskset -c "$cpus" "${SERVER_PREFIX[@]}" "$bin" --addr "127.0.0.1:$port" "$@" >>"$logf" 2>&1 &
        SPID=$!
        for ((i = 0; i < 100; i++)); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                # shellcheck disable=SC2034 # read by the sourcing script
                PORT=$port
                sleep 0.1
                return 0
            fi
            kill -0 "$SPID" 2>/dev/null || break
            sleep 0.05
        done
        stop_server
    done
    die "$(basename "$bin") $* did not start listening (see $logf)"
}
stop_server() {
    # SIGINT, unless the process ignores it (bash starts background jobs with
    # SIGINT ignored; percore's echo-server blocks it and reads it from a
    # signalfd), then SIGTERM, then SIGKILL.
    [[ -n "$SPID" ]] || return 0
    local sig i sigs=TERM ignored
    ignored=$(awk '/^SigIgn:/ { print $2 }' "/proc/$SPID/status" 2>/dev/null || echo 0)
    if (((16#${ignored:-0} & 2) == 0)); then sigs="INT TERM"; fi
    for sig in $sigs; do
        kill -"$sig" "$SPID" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            kill -0 "$SPID" 2>/dev/null || break 2
            sleep 0.05
        done
    done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}

# meta_header: the machine, load, date and commit lines every report opens with.
meta_header() {
    echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs, kernel $(uname -r)"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on these cores make every number noisy)"
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
    echo "# CPU time the host took from this guest (steal) since the script started: $(ticks_to_ms "$STEAL_AT_START" "$(steal_ticks)") ms over all CPUs"
}
