#!/usr/bin/env bash
# Redraws the PNG charts of the comparison tables in BENCHMARKS.md and
# docs/bench-fs.md into docs/charts/, from the numbers the documents show
# now. Which table each chart draws is listed in tools/bench-charts.
#
#   bash scripts/charts.sh [OUT_DIR]
#
# The drawing program is tools/bench-charts (plotters, bitmap backend only),
# its own workspace so that plotters never reaches the library crates or
# CI's builds. Labels need a TrueType font: DejaVu Sans from Debian's
# fonts-dejavu-core, or any .ttf named by CHART_FONT.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-docs/charts}"
font="${CHART_FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf}"
if [[ ! -r "$font" ]]; then
    echo "charts: no font at $font: apt-get install fonts-dejavu-core, or set CHART_FONT" >&2
    exit 1
fi
CHART_FONT="$font" cargo run --quiet --release --manifest-path tools/bench-charts/Cargo.toml -- "$out"
