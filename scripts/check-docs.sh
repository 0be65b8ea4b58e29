#!/usr/bin/env bash
# Checks that the docs a newcomer reads can be followed: every relative link
# and #anchor resolves, and every command names things that exist.
#
#   bash scripts/check-docs.sh [FILE.md ...]   # default: the files below
#
# Files: README.md, ARCHITECTURE.md, CONTRIBUTING.md, BENCHMARKS.md,
# RELIABILITY.md, CHANGELOG.md, docs/*.md and docs/bench-log/*.md. Checked:
#   - links and images `[..](path)`, `[..](path#anchor)`, `[..](#anchor)`
#     outside code: the path exists; the anchor is a heading id of the
#     target (GitHub's rule: lower case, punctuation dropped, spaces to
#     hyphens, `-1`, `-2` for repeats). http(s) links are not followed.
#   - commands, in sh code blocks and in inline code that starts like one
#     (`cargo ...`, `bash ...`, `scripts/...`, `VAR=.. scripts/...`,
#     `target/release/...`): `--example`, `--bin` and `--bench` targets, in
#     the packages the command selects (`-p`; none: the root package, whose
#     targets are the user examples; `--workspace`: every one); `--test`
#     targets; `-p` crates; `--features`; scripts and `.ci/run` steps; the
#     flags given to an example or a bench program after `--` or run as
#     target/release/[examples/]NAME (found in its source, examples/common/
#     or the common.rs beside it); environment variables set
#     before a script (read by the script or the bench-lib.sh it sources) or
#     before cargo (read somewhere in the sources, or cargo's and rustc's own).
# Needs bash, grep, sed, awk and xargs; no network, no build. Placeholders
# in capitals or <angle brackets> (`--example NAME`) are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# Heading ids keep non-ASCII letters (`µs`), as GitHub's do.
export LC_ALL=C.UTF-8

if [[ $# -gt 0 ]]; then
    files=("$@")
else
    files=(README.md ARCHITECTURE.md CONTRIBUTING.md BENCHMARKS.md RELIABILITY.md CHANGELOG.md docs/*.md docs/bench-log/*.md)
fi
failures=0
fail() {
    echo "check-docs: $*" >&2
    failures=$((failures + 1))
}

# The heading ids of a markdown file, one per line.
anchors() {
    awk '/^[[:space:]]*(```|~~~)/ { fenced = !fenced; next } !fenced && /^#+ / { sub(/^#+ +/, ""); sub(/ +#+ *$/, ""); print }' "$1" |
        tr '[:upper:]' '[:lower:]' |
        sed -e 's/[^[:alnum:] _-]//g' -e 's/ /-/g' |
        awk '{ n = seen[$0]++; print (n ? $0 "-" n : $0) }'
}

# Text outside fenced code blocks, with inline code removed: where links live.
prose() {
    awk '/^[[:space:]]*(```|~~~)/ { fenced = !fenced; next } !fenced { gsub(/`[^`]*`/, ""); print }' "$1"
}

check_links() {
    local file=$1 dir target path anchor
    dir=$(dirname "$file")
    while IFS= read -r target; do
        case "$target" in
            http://* | https://* | mailto:*) continue ;;
        esac
        path=${target%%#*}
        anchor=
        [[ "$target" == *"#"* ]] && anchor=${target#*#}
        if [[ -z "$path" ]]; then
            path=$file
        else
            path="$dir/$path"
            if [[ ! -e "$path" ]]; then
                fail "$file: link to $target: no such file"
                continue
            fi
        fi
        if [[ -n "$anchor" ]]; then
            if [[ "$path" != *.md ]]; then
                fail "$file: link to $target: an anchor in a file that is not markdown"
            elif ! anchors "$path" | grep -qxF -- "$anchor"; then
                fail "$file: link to $target: no heading with that id in $path"
            fi
        fi
    done < <(prose "$file" | grep -o '\]([^) ]*)' | sed -e 's/^](//' -e 's/)$//')
}

# The commands of a file, one per line: lines of sh code blocks (a trailing
# backslash joins the next line; comments dropped), and inline code spans,
# across line breaks, that start like a command.
commands() {
    awk '
        /^[[:space:]]*(```|~~~)/ {
            if (!fenced) { fenced = 1; lang = $0; sub(/^[[:space:]]*(```|~~~)[[:space:]]*/, "", lang); shell = (lang == "" || lang ~ /^(sh|bash|shell|console)$/) }
            else fenced = 0
            next
        }
        fenced && shell {
            line = $0; sub(/^[[:space:]]*\$ /, "", line)
            if (line ~ /^[[:space:]]*#/) next
            sub(/[[:space:]]+#.*$/, "", line)
            if (line ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, " ", line); pending = pending line; next }
            print pending line; pending = ""
            next
        }
        fenced { next }
        { text = text $0 " " }
        END {
            while (match(text, /`[^`]+`/)) {
                span = substr(text, RSTART + 1, RLENGTH - 2)
                text = substr(text, RSTART + RLENGTH)
                if (span ~ /^([A-Z_][A-Z0-9_]*=[^ ]* +)*(cargo |bash |sh |scripts\/|python3 scripts\/|target\/release\/)/) print span
            }
        }
    ' "$1"
}

manifests=(Cargo.toml runtime/Cargo.toml runtime/macros/Cargo.toml net/Cargo.toml bench/Cargo.toml)
root_package=percore-examples
# One line per target: "PACKAGE KIND NAME SOURCE" (KIND example, bin or
# bench; SOURCE - when cargo's default path applies), from the [[...]] tables
# of every manifest, plus the root package's examples/*.rs.
package_of() { awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 } p && /^name *=/' "$1" | sed 's/^name *= *"\(.*\)"/\1/'; }
targets=$(
    for m in "${manifests[@]}"; do
        awk -v pkg="$(package_of "$m")" -v dir="$(dirname "$m")" '
            function emit() { if (kind != "" && name != "") print pkg, kind, name, (path == "" ? "-" : dir "/" path); kind = "" }
            /^\[\[(example|bin|bench)\]\]/ { emit(); kind = $0; gsub(/[][]/, "", kind); name = ""; path = ""; next }
            /^\[/ { emit(); next }
            kind != "" && /^name *=/ { name = $0; sub(/^name *= *"/, "", name); sub(/".*/, "", name) }
            kind != "" && /^path *=/ { path = $0; sub(/^path *= *"/, "", path); sub(/".*/, "", path) }
            END { emit() }
        ' "$m"
    done
    for f in examples/*.rs; do echo "$root_package example $(basename "$f" .rs) $f"; done
)
crates=$(for m in "${manifests[@]}"; do package_of "$m"; done)
features=$(cat "${manifests[@]}" | awk '/^\[features\]/ { f = 1; next } /^\[/ { f = 0 } f && /^[a-z]/ { sub(/ *=.*/, ""); print }')
ci_steps=$(sed -n 's/^all_steps=(\(.*\))/\1/p' .ci/run)
# Variables cargo, rustc, the sanitizers, loom and the shell read themselves.
tool_vars=" CARGO_TARGET_DIR CARGO_TERM_COLOR RUSTFLAGS RUSTDOCFLAGS RUSTC_BOOTSTRAP RUST_BACKTRACE RUST_LOG LOOM_MAX_PREEMPTIONS ASAN_OPTIONS LSAN_OPTIONS CI "

placeholder() { [[ "$1" =~ ^[A-Z_]+$ || "$1" == *"<"* || "$1" == *"..."* ]]; }
has() { grep -qxF -- "$2" <<<"$1"; }
# target_source PACKAGES KIND NAME: the source of that target in one of the
# packages (space-separated; "*" for all), "-" for a default path; fails if
# none has it.
target_source() {
    awk -v pkgs=" $1 " -v kind="$2" -v name="$3" '
        (pkgs == " * " || index(pkgs, " " $1 " ")) && $2 == kind && $3 == name { print $4; found = 1; exit }
        END { exit !found }
    ' <<<"$targets"
}

check_command() {
    local file=$1 cmd=$2 words=() vars=() i=0 w script="" program="" kind="" packages="" wanted=() after_dashes=0 flags=() src
    if ! mapfile -t words < <(xargs -n1 printf '%s\n' <<<"$cmd" 2>/dev/null); then
        fail "$file: cannot split the command: $cmd"
        return
    fi
    while [[ $i -lt ${#words[@]} && "${words[$i]}" =~ ^[A-Z_][A-Z0-9_]*= ]]; do
        vars+=("${words[$i]%%=*}")
        i=$((i + 1))
    done
    [[ $i -lt ${#words[@]} ]] || return 0
    [[ "${words[$i]}" == bash || "${words[$i]}" == sh || "${words[$i]}" == python3 || "${words[$i]}" == taskset ]] && i=$((i + 1))
    # taskset -c CPUS PROGRAM
    [[ "${words[$((i - 1))]:-}" == taskset ]] && i=$((i + 2))
    [[ $i -lt ${#words[@]} ]] || return 0
    program=${words[$i]}
    case "$program" in
        scripts/* | .ci/run | tools/*)
            script=$program
            if [[ ! -e "$script" ]]; then
                fail "$file: no such script: $script (in: $cmd)"
                return
            fi
            if [[ "$script" == .ci/run ]]; then
                for w in "${words[@]:$((i + 1))}"; do
                    [[ " $ci_steps " == *" $w "* ]] || fail "$file: .ci/run has no step '$w' (in: $cmd)"
                done
            fi
            ;;
        target/release/examples/ | target/release/) return 0 ;;
        target/release/examples/*)
            wanted+=("example ${program#target/release/examples/}")
            packages=$root_package
            after_dashes=1
            ;;
        target/release/*)
            wanted+=("bin ${program#target/release/}")
            packages="*"
            after_dashes=1
            ;;
        cargo) ;;
        *) return 0 ;;
    esac
    for ((i = i + 1; i < ${#words[@]}; i++)); do
        w=${words[$i]}
        if [[ $after_dashes -eq 1 ]]; then
            [[ "$w" == --?* ]] && flags+=("${w%%=*}")
            continue
        fi
        case "$w" in
            --) [[ ${#wanted[@]} -gt 0 ]] && after_dashes=1 ;;
            --workspace) packages="*" ;;
            --example | --bin | --bench | --test | -p | --package | --features)
                local v=${words[$((i + 1))]:-}
                # `cargo run --example` alone lists the examples.
                [[ -z "$v" || "$v" == -* ]] && continue
                i=$((i + 1))
                placeholder "$v" && continue
                case "$w" in
                    --example | --bin | --bench) wanted+=("${w#--} $v") ;;
                    --test)
                        [[ -e runtime/tests/$v.rs || -e net/tests/$v.rs || -e tests/$v.rs ]] ||
                            fail "$file: no test target '$v' (in: $cmd)"
                        ;;
                    -p | --package)
                        [[ "$packages" == "*" ]] || packages+=" $v"
                        has "$crates" "$v" || fail "$file: no crate '$v' (in: $cmd)"
                        ;;
                    --features)
                        local f
                        for f in ${v//,/ }; do
                            has "$features" "$f" || fail "$file: no feature '$f' (in: $cmd)"
                        done
                        ;;
                esac
                ;;
        esac
    done
    [[ -n "${packages// /}" ]] || packages=$root_package
    for w in "${wanted[@]}"; do
        kind=${w%% *} program=${w#* }
        placeholder "$program" && continue
        if ! src=$(target_source "$packages" "$kind" "$program"); then
            fail "$file: no $kind '$program' in ${packages# } (in: $cmd)"
            continue
        fi
        # Flags after `--` (or after the program's path) belong to the one program run.
        [[ $kind != bench && ${#flags[@]} -gt 0 && -e "$src" ]] || continue
        local sources=("$src" examples/common/*.rs)
        [[ -e "$(dirname "$src")/common.rs" ]] && sources+=("$(dirname "$src")/common.rs")
        for w in "${flags[@]}"; do
            [[ "$w" == --help ]] && continue
            grep -qF -- "\"$w" "${sources[@]}" ||
                grep -qF -- "\"${w#--}\"" "${sources[@]}" ||
                fail "$file: $kind $program takes no flag $w (in: $cmd)"
        done
    done
    for w in "${vars[@]}"; do
        [[ "$tool_vars" == *" $w "* ]] && continue
        if [[ -n "$script" ]]; then
            grep -qw -- "$w" "$script" scripts/bench-lib.sh ||
                fail "$file: $script does not read $w (in: $cmd)"
        elif ! grep -rqw --include='*.rs' --include='*.sh' -- "$w" runtime net examples bench tests scripts; then
            fail "$file: nothing reads $w (in: $cmd)"
        fi
    done
}

for file in "${files[@]}"; do
    check_links "$file"
    while IFS= read -r cmd; do
        [[ -n "${cmd// /}" ]] && check_command "$file" "$cmd"
    done < <(commands "$file")
done

if [[ $failures -gt 0 ]]; then
    echo "check-docs: $failures problem(s) in ${#files[@]} files" >&2
    exit 1
fi
echo "check-docs: ${#files[@]} files, links, anchors and commands ok"
