#!/usr/bin/env bash
# Runs the test suites under AddressSanitizer.
#
# Drop-safety is the contract io_uring code lives or dies by: an op's buffer
# must outlive the kernel's use of it. The tests in runtime/tests/op_*.rs
# check the order of events; ASan checks that nothing in user space touches
# freed memory meanwhile (the driver's slots, abandoned ops, wakers).
#
# Stable toolchain, nightly flag: RUSTC_BOOTSTRAP=1 unlocks -Zsanitizer on
# the stable compiler, whose rust-std ships the ASan runtime. Doctests are
# left out (rustdoc does not pass the sanitizer flags through cleanly).
#
# Usage: scripts/asan.sh                     # percore (+ percore-net) lib and tests
#        scripts/asan.sh -p percore --test op_drop   # chosen targets
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes ${RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=address"
# Own target dir: sanitized artifacts must not mix with normal ones.
export CARGO_TARGET_DIR="${ASAN_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/asan}"
# Leak checking stays on; the few deliberate leaks (memory the kernel may
# still write into at shutdown) are listed in scripts/lsan.supp.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:abort_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}"

packages=(-p percore)
if compgen -G "net/tests/*.rs" > /dev/null; then
    # With the adapter features, so net_compat.rs and net_hyper.rs (drop
    # mid-op through Compat) run under ASan too; and the bridge's, so do
    # net_serve.rs, net_client.rs and net_tokio_compat.rs (CoreBound in use).
    packages+=(-p percore-net --features percore-net/tokio-io,percore-net/futures-io,percore-net/hyper,percore-net/serve,percore-net/client,percore-net/tokio-compat)
fi

# With arguments (e.g. `--test op_drop`), they pick the targets instead.
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    # With the fault-injection hooks, so runtime/tests/fault_inject.rs runs too.
    targets=("${packages[@]}" --tests --lib --features percore/fault-injection)
fi

timeout 1800 cargo test --target x86_64-unknown-linux-gnu --no-fail-fast "${targets[@]}"
