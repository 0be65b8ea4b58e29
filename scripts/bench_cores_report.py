#!/usr/bin/env python3
"""Turn the raw CSV rows of scripts/bench-cores.sh into markdown tables:
medians over rounds, ratios vs tokio's multi-thread runtime at the same core
count, scaling from 1 to 2 server cores, what the client costs, and whether
percore meets issue 5's targets. The cross-core message table
(cross-core-bench's own markdown) is included as it is.

    python3 scripts/bench_cores_report.py [--meta META.txt] [--cross CROSS.md] [results-*.csv ...]

Several CSV files may be given; their rows are pooled (more rounds).
"""

import argparse
import csv
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_report import (  # noqa: E402  (the shared helpers of bench-echo's report)
    fmt,
    fmt_rate,
    fmt_ratio,
    geomean,
    median,
    num,
    ratio,
    size_label,
    table,
)

SERVER_ORDER = ["percore", "tokio-mt", "tokio", "monoio", "glommio", "raw"]
PEERS = ["tokio-mt", "tokio", "monoio", "glommio"]  # raw is the ceiling, not a peer
BASE = "tokio-mt"
TARGET_2CORE = 1.3  # issue 5: 2-core echo at least 1.3x tokio multi-thread with 2 workers


class Run:
    """Derived metrics of one CSV row."""

    def __init__(self, r):
        self.server = r["server"]
        self.cores = int(r["cores"])
        self.conns = int(r["conns"])
        self.size = int(r["size"])
        self.rps = num(r["rps"])
        self.p99 = num(r["p99_us"])
        self.errors = num(r["errors"])
        window = num(r["window_s"])
        self.server_cpu = num(r["server_cpu_s"])
        self.client_cpu = num(r["client_cpu_s"])
        self.server_pct = 100 * self.server_cpu / window if self.server_cpu is not None and window else None
        self.client_pct = 100 * self.client_cpu / window if self.client_cpu is not None and window else None
        self.client_share = ratio(self.client_cpu, self.server_cpu)
        self.cpu_us_per_req = (
            1e6 * self.server_cpu / (self.rps * window)
            if self.server_cpu is not None and window and self.rps
            else None
        )


def med(runs, attr):
    return median(getattr(r, attr) for r in runs)


def report(runs, out, targets):
    present = {r.server for r in runs}
    servers = [s for s in SERVER_ORDER if s in present] + sorted(present - set(SERVER_ORDER))
    by = defaultdict(list)
    for r in runs:
        by[(r.cores, r.conns, r.size, r.server)].append(r)
    rounds = max(len(v) for v in by.values())
    rows_keys = sorted({(r.cores, r.conns, r.size) for r in runs}, key=lambda k: (k[0], k[2], k[1]))
    cells = sorted({(c, s) for _, c, s in rows_keys}, key=lambda c: (c[1], c[0]))
    core_counts = sorted({k[0] for k in rows_keys})

    def grid(title, cell_fmt, extra_note=""):
        out.append(f"### {title}\n")
        if extra_note:
            out.append(extra_note + "\n")
        rows = []
        for cores, conns, size in rows_keys:
            row = [cores, conns, size_label(size)]
            for s in servers:
                row.append(cell_fmt(by.get((cores, conns, size, s), []), by.get((cores, conns, size, BASE), []), s))
            rows.append(row)
        out.append(table(["server cores", "conns", "size"] + servers, rows))
        out.append("")

    def vs_base(attr, f):
        def cell(rs, base_rs, s):
            v = med(rs, attr)
            text = f(v)
            if (med(rs, "errors") or 0) > 0:
                text += " (errors)"
            b = med(base_rs, attr)
            if s != BASE and v is not None and b is not None:
                text += f" ({fmt_ratio(ratio(v, b))})"
            return text

        return cell

    grid(
        f"Echo: requests/s (median of {rounds} rounds; ratio vs {BASE} at the same core count)",
        vs_base("rps", fmt_rate),
        "1 server core: server on one CPU, client (one core) on the other. 2 server cores: "
        "server threads pinned one per CPU, client (two threads) on the same two CPUs.",
    )

    # Scaling 1 -> 2 server cores.
    if 1 in core_counts and 2 in core_counts:
        out.append("### Echo: scaling from 1 to 2 server cores (req/s at 2 cores / req/s at 1 core, medians)\n")
        out.append(
            "At 2 cores the client shares the server's CPUs (see the CPU table): on a "
            "2-CPU machine this also measures how the server shares them with the client.\n"
        )
        rows = []
        for conns, size in cells:
            row = [conns, size_label(size)]
            for s in servers:
                one = med(by.get((1, conns, size, s), []), "rps")
                two = med(by.get((2, conns, size, s), []), "rps")
                row.append(fmt_ratio(ratio(two, one)))
            rows.append(row)
        out.append(table(["conns", "size"] + servers, rows))
        out.append("")

    grid(
        "Echo: CPU, server % / client % of one CPU (median; 200% = both CPUs)",
        lambda rs, _b, _s: f"{fmt(med(rs, 'server_pct'), 0)} / {fmt(med(rs, 'client_pct'), 0)}",
    )
    grid(
        "Echo: what the client costs, client CPU s / server CPU s over the window (median)",
        lambda rs, _b, _s: fmt(med(rs, "client_share"), 2),
        "The load client is percore's echo-client; at 2 server cores it runs on the same CPUs, "
        "so every CPU second it uses is taken from the server.",
    )
    grid(
        f"Echo: server CPU µs per request (median; ratio vs {BASE})",
        vs_base("cpu_us_per_req", lambda v: fmt(v, 2)),
    )
    grid(
        "Echo: p99 latency, µs (median)",
        lambda rs, _b, _s: fmt(med(rs, "p99"), 0),
    )

    if "percore" in servers and BASE in servers and 2 in core_counts:
        rs = [
            ratio(med(by.get((2, c, s, "percore"), []), "rps"), med(by.get((2, c, s, BASE), []), "rps"))
            for c, s in cells
        ]
        rs = [r for r in rs if r is not None]
        g, worst = geomean(rs), min(rs, default=None)
        targets.append(
            (
                f"2-core echo at least {TARGET_2CORE}x tokio multi-thread with 2 workers",
                (worst >= TARGET_2CORE) if worst is not None else None,
                f"percore/{BASE} at 2 cores: lowest {fmt_ratio(worst)}, geometric mean {fmt_ratio(g)} "
                f"over {len(rs)} cells",
            )
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="*", help="results-*.csv from scripts/bench-cores.sh")
    ap.add_argument("--meta", help="meta-*.txt written beside the CSV")
    ap.add_argument("--cross", help="cross-*.md: cross-core-bench's table")
    args = ap.parse_args()

    out, targets = [], []
    if args.meta:
        with open(args.meta) as f:
            out += [line.rstrip("\n").lstrip("# ") + "  " for line in f if line.strip()]
        out.append("")
    if args.cross:
        with open(args.cross) as f:
            out.append(f.read().rstrip("\n"))
        out.append("")
    rows = []
    for path in args.csv:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    if rows:
        report([Run(r) for r in rows], out, targets)
    elif args.csv:
        sys.exit("bench_cores_report: no rows")
    if targets:
        out.append("### percore against issue 5's echo target\n")
        for name, met, detail in targets:
            verdict = {True: "met", False: "NOT met", None: "not measured"}[met]
            out.append(f"- {name}: **{verdict}** ({detail})")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
