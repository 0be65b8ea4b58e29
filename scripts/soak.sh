#!/usr/bin/env bash
# Reliability runs: fault injection, the cancellation storm, the whole suite
# on minimal io_uring features, hostile peers and the soak against the
# echo-server example (on 1 and on 2 server cores). See RELIABILITY.md.
#
# Usage: scripts/soak.sh                 # every step, 300 s soaks, release build
#        scripts/soak.sh faults minimal  # only the named steps
#        SOAK_SECONDS=60 scripts/soak.sh soak
#        CI=1 scripts/soak.sh            # short form: 20 s soaks, debug build
#
# Steps: faults, minimal, hostile, soak.
#   SOAK_SECONDS  soak duration per run (default 300, or 20 with CI=1)
#   SOAK_CONNS    client connections (default 2000)
#   SOAK_PROFILE  release or debug build of echo-server and the soak client
#                 (default release, debug with CI=1: `cargo test` has built
#                 echo-server already; the soak client is bench/src/soak.rs)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${CI:-}" == 1 ]]; then
    secs="${SOAK_SECONDS:-20}"
    profile="${SOAK_PROFILE:-debug}"
else
    secs="${SOAK_SECONDS:-300}"
    profile="${SOAK_PROFILE:-release}"
fi
conns="${SOAK_CONNS:-2000}"
target="${CARGO_TARGET_DIR:-target}"

# echo-server is a user example (root package), the soak client a bench
# program (bench/) that runs the echo-server of the same profile. Built one
# package at a time, as scripts/bench-lib.sh does (the same artifacts as
# `cargo run --example echo-server`).
build_programs() {
    local release=()
    [[ "$profile" == release ]] && release=(--release)
    cargo build "${release[@]}" -p percore-examples --example echo-server
    cargo build "${release[@]}" -p percore-bench --bin soak
}
soak_bin() { echo "$target/$profile/soak"; }

# Driver faults (feature fault-injection) and the 100,000-op cancellation storm.
step_faults() {
    cargo test -p percore --features fault-injection --test fault_inject --test op_cancel_storm
}
# Every test with the optional io_uring features masked off (Builder::minimal_features).
step_minimal() { PERCORE_MINIMAL=1 cargo test --workspace; }
# Slowloris, never-reading clients, 10,000 abandoned connections.
step_hostile() {
    build_programs
    "$(soak_bin)" --mode hostile
}
step_soak() {
    build_programs
    for cores in 1 2; do
        echo "== soak: $conns connections, $secs s, server on $cores core(s)"
        "$(soak_bin)" --mode soak --cores "$cores" --conns "$conns" --duration "$secs"
    done
}

all_steps=(faults minimal hostile soak)
if [[ $# -gt 0 ]]; then steps=("$@"); else steps=("${all_steps[@]}"); fi
total_start=$SECONDS
for step in "${steps[@]}"; do
    if ! declare -F "step_$step" > /dev/null; then
        echo "unknown step: $step (known: ${all_steps[*]})" >&2
        exit 2
    fi
    echo "== soak.sh step $step"
    start=$SECONDS
    "step_$step"
    echo "== soak.sh step $step passed in $((SECONDS - start)) s"
done
echo "== soak.sh: all steps passed in $((SECONDS - total_start)) s"
