#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time.
#
#   scripts/fuzz.sh                      # each target 60 s
#   FUZZ_SECONDS=10 scripts/fuzz.sh      # shorter
#   scripts/fuzz.sh http_request         # only the targets named
#
# cargo-fuzz is installed with `cargo install cargo-fuzz --locked` when
# missing. It needs nightly compiler flags (-Zsanitizer=address, sancov);
# we use the stable toolchain with RUSTC_BOOTSTRAP=1, as scripts/asan.sh
# does. Builds go to FUZZ_TARGET_DIR (default fuzz/target), never to the
# normal target directory, whose artifacts these flags would invalidate.
# Findings land in fuzz/artifacts/<target>/; the corpus in fuzz/corpus/<target>/.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$REPO/fuzz/target}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)..." >&2
    # In cargo's own temporary directory, not the fuzz target dir.
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

for t in "${targets[@]}"; do
    echo "== fuzz $t for ${FUZZ_SECONDS}s" >&2
    mkdir -p "fuzz/corpus/$t"
    cargo fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$FUZZ_SECONDS" -timeout=10
done
echo "fuzz: ${#targets[@]} target(s) ran ${FUZZ_SECONDS}s each without a finding" >&2
