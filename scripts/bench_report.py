#!/usr/bin/env python3
"""Turn the raw CSV rows of scripts/bench-echo.sh into markdown tables:
medians over rounds, ratios vs tokio, and whether percore meets the
project's targets.

    python3 scripts/bench_report.py [--meta META.txt] [--data DIR] results-*.csv

Several CSV files may be given; their rows are pooled (more rounds).
`--data DIR` also writes the medians, as the tables show them, to
DIR/echo-saturation.csv, echo-rate.csv and echo-idle-memory.csv (the phases
present), the files scripts/charts.sh draws; their format is described there.
"""

import argparse
import csv
import math
import os
import re
import statistics
import sys
from collections import defaultdict

SERVER_ORDER = ["percore", "percore-plain", "percore-pooled", "percore-minwait", "tokio", "monoio", "glommio", "raw"]
# echo-server (provided-buffer ring), echo-server --plain; percore-pooled is
# the ring mode's name in CSVs from before it became the default;
# percore-minwait is echo-server --min-wait-us (a latency/CPU trade, not a
# memory mode, so not in OURS).
OURS = ["percore", "percore-plain", "percore-pooled"]
PEERS = ["tokio", "monoio", "glommio"]  # raw is the ceiling, not a peer
CLIENT_BOUND_PCT = 90.0  # client CPU above this: the client may be the limit
SUSTAINED = 0.95  # a fixed-rate run counts when it delivered >= 95% of the rate


def num(text):
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def servers_in(rows):
    present = {r["server"] for r in rows}
    return [s for s in SERVER_ORDER if s in present] + sorted(present - set(SERVER_ORDER))


def fmt_rate(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def size_label(size):
    size = int(size)
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


class Run:
    """Derived metrics of one CSV row."""

    def __init__(self, r):
        self.server = r["server"]
        self.round = r.get("round")
        self.conns = int(r["conns"])
        self.size = int(r["size"])
        self.rate = num(r["rate"])
        self.rps = num(r["rps"])
        # With --rate, echo-client's RESULT rps is the offered rate even when
        # it fell behind; its per-second progress lines say what was delivered.
        delivered = num(r.get("delivered_rps"))
        if r["phase"] == "rate" and delivered:
            self.rps = delivered
        self.p99 = num(r["p99_us"])
        self.errors = num(r["errors"])
        window = num(r["window_s"])
        scpu, ccpu = num(r["server_cpu_s"]), num(r["client_cpu_s"])
        self.server_pct = 100 * scpu / window if scpu is not None and window else None
        self.client_pct = 100 * ccpu / window if ccpu is not None and window else None
        self.cpu_us_per_req = (
            1e6 * scpu / (self.rps * window)
            if scpu is not None and window and self.rps
            else None
        )
        sysc, pwin = num(r["syscalls"]), num(r["perf_window_s"])
        self.syscalls_per_req = (
            sysc / (self.rps * pwin) if sysc is not None and pwin and self.rps else None
        )
        before, after, idle = num(r["rss_before_kb"]), num(r["rss_after_kb"]), num(r["idle_conns"])
        self.rss_before = before
        self.rss_after = after
        self.idle_conns = idle
        self.bytes_per_conn = (
            (after - before) * 1024 / idle if None not in (before, after) and idle else None
        )
        self.sustained = (
            self.rate is not None
            and self.rps is not None
            and self.rps >= SUSTAINED * self.rate
            and not self.errors
        )


def group(runs, key):
    groups = defaultdict(list)
    for run in runs:
        groups[key(run)].append(run)
    return groups


def med(runs, attr):
    return median(getattr(r, attr) for r in runs)


def report_sat(runs, out, targets):
    servers = servers_in([{"server": r.server} for r in runs])
    cells = sorted({(r.conns, r.size) for r in runs}, key=lambda c: (c[1], c[0]))
    by = group(runs, lambda r: (r.conns, r.size, r.server))
    rounds = max(len(v) for v in by.values())
    out.append(f"### Saturation: requests/s (median of {rounds} rounds; ratio vs tokio)\n")
    header = ["conns", "size"] + servers
    if "percore" in servers:
        header += ["percore / best peer"]
    rows, vs_tokio, vs_best, client_bound = [], [], [], False
    for conns, size in cells:
        tokio = med(by.get((conns, size, "tokio"), []), "rps")
        row = [conns, size_label(size)]
        for s in servers:
            rs = by.get((conns, size, s), [])
            v = med(rs, "rps")
            mark = ""
            if (med(rs, "client_pct") or 0) >= CLIENT_BOUND_PCT:
                mark, client_bound = " †", True
            if (med(rs, "errors") or 0) > 0:
                mark += " (errors)"
            cell = fmt_rate(v) + mark
            if s != "tokio" and tokio is not None and v is not None:
                cell += f" ({fmt_ratio(ratio(v, tokio))})"
            row.append(cell)
        if "percore" in servers:
            p = med(by.get((conns, size, "percore"), []), "rps")
            peers = [med(by.get((conns, size, s), []), "rps") for s in PEERS]
            peers = [v for v in peers if v is not None]
            best = max(peers) if peers else None
            r_best = ratio(p, best)
            vs_best.append(r_best)
            vs_tokio.append(ratio(p, tokio))
            row.append(fmt_ratio(r_best))
        rows.append(row)
    out.append(table(header, rows))
    if client_bound:
        out.append(
            f"\n† the client used >= {CLIENT_BOUND_PCT:.0f}% of its core: "
            "that server may be faster than shown."
        )
    out.append("")
    if "percore" in servers:
        g = geomean(vs_tokio)
        worst = min((v for v in vs_best if v is not None), default=None)
        targets.append(
            (
                "saturation: geometric mean >= 1.0x tokio",
                g >= 1.0 if g is not None else None,
                f"geometric mean percore/tokio = {fmt_ratio(g)} over {len([v for v in vs_tokio if v])} cells",
            )
        )
        targets.append(
            (
                "saturation: never below 0.85x the best peer",
                worst >= 0.85 if worst is not None else None,
                f"lowest percore/best-peer = {fmt_ratio(worst)}",
            )
        )

    out.append("### Saturation: CPU, server % / client % of one core (median)\n")
    rows = []
    for conns, size in cells:
        row = [conns, size_label(size)]
        for s in servers:
            rs = by.get((conns, size, s), [])
            row.append(f"{fmt(med(rs, 'server_pct'), 0)} / {fmt(med(rs, 'client_pct'), 0)}")
        rows.append(row)
    out.append(table(["conns", "size"] + servers, rows))
    out.append("")

    out.append(
        "### Saturation: server CPU µs per request (median; ratio vs tokio)\n\n"
        "Less affected than req/s by other load on the machine: a server that is "
        "descheduled loses throughput but not CPU per request.\n"
    )
    rows = []
    for conns, size in cells:
        tokio = med(by.get((conns, size, "tokio"), []), "cpu_us_per_req")
        row = [conns, size_label(size)]
        for s in servers:
            v = med(by.get((conns, size, s), []), "cpu_us_per_req")
            cell = fmt(v, 2)
            if s != "tokio" and tokio is not None and v is not None:
                cell += f" ({fmt_ratio(ratio(v, tokio))})"
            row.append(cell)
        rows.append(row)
    out.append(table(["conns", "size"] + servers, rows))
    out.append("")

    out.append("### Saturation: p99 latency, µs (median)\n")
    rows = []
    for conns, size in cells:
        row = [conns, size_label(size)]
        for s in servers:
            row.append(fmt(med(by.get((conns, size, s), []), "p99"), 0))
        rows.append(row)
    out.append(table(["conns", "size"] + servers, rows))
    out.append("")


def report_rate(runs, out, targets):
    servers = servers_in([{"server": r.server} for r in runs])
    cells = sorted({(r.rate, r.conns, r.size) for r in runs}, key=lambda c: (-c[0], c[2], c[1]))
    by = group(runs, lambda r: (r.rate, r.conns, r.size, r.server))
    rounds = max(len(v) for v in by.values())

    def sustained(rs):
        return bool(rs) and sum(r.sustained for r in rs) * 2 > len(rs)

    out.append(
        f"### Fixed rate: server CPU µs per request (median of {rounds} rounds; ratio vs tokio)\n"
    )
    out.append(
        f"\\* the server did not sustain the offered rate (< {SUSTAINED:.0%} delivered, "
        "or errors) in most rounds; its numbers are not at that rate.\n"
    )
    cpu_ok, sys_ok, p99_ok = [], [], []
    cpu_worst, cpu_cells = None, 0
    rows = []
    for rate, conns, size in cells:
        tokio_rs = by.get((rate, conns, size, "tokio"), [])
        tokio = med(tokio_rs, "cpu_us_per_req")
        row = [fmt_rate(rate), conns, size_label(size)]
        for s in servers:
            rs = by.get((rate, conns, size, s), [])
            v = med(rs, "cpu_us_per_req")
            cell = fmt(v, 2) + ("" if sustained(rs) or not rs else " \\*")
            if s != "tokio" and tokio is not None and v is not None:
                cell += f" ({fmt_ratio(ratio(v, tokio))})"
            row.append(cell)
        rows.append(row)
        p_rs = by.get((rate, conns, size, "percore"), [])
        if sustained(p_rs) and sustained(tokio_rs):
            r = ratio(med(p_rs, "cpu_us_per_req"), tokio)
            if r is not None:
                cpu_ok.append(r <= 0.85)
                cpu_worst = r if cpu_worst is None else max(cpu_worst, r)
                cpu_cells += 1
    out.append(table(["rate", "conns", "size"] + servers, rows))
    out.append("")
    report_paired(by, cells, servers, rounds, out)

    out.append("### Fixed rate: syscalls per request (raw_syscalls:sys_enter, median)\n")
    rows = []
    for rate, conns, size in cells:
        row = [fmt_rate(rate), conns, size_label(size)]
        for s in servers:
            rs = by.get((rate, conns, size, s), [])
            row.append(fmt(med(rs, "syscalls_per_req"), 3) + ("" if sustained(rs) or not rs else " \\*"))
        rows.append(row)
        # Compare only runs at the offered rate: an overloaded server batches
        # more completions per syscall, which would flatter it.
        p_rs = by.get((rate, conns, size, "percore"), [])
        p = med(p_rs, "syscalls_per_req") if sustained(p_rs) else None
        peers = [
            med(by.get((rate, conns, size, s), []), "syscalls_per_req")
            for s in PEERS
            if sustained(by.get((rate, conns, size, s), []))
        ]
        peers = [v for v in peers if v is not None]
        if p is not None and peers:
            sys_ok.append(p < min(peers))
    out.append(table(["rate", "conns", "size"] + servers, rows))
    out.append("")

    out.append("### Fixed rate: p99 latency µs / delivered requests/s (median)\n")
    rows = []
    for rate, conns, size in cells:
        row = [fmt_rate(rate), conns, size_label(size)]
        for s in servers:
            rs = by.get((rate, conns, size, s), [])
            row.append(
                f"{fmt(med(rs, 'p99'), 0)} / {fmt_rate(med(rs, 'rps'))}"
                + ("" if sustained(rs) or not rs else " \\*")
            )
        rows.append(row)
        p_rs = by.get((rate, conns, size, "percore"), [])
        t_rs = by.get((rate, conns, size, "tokio"), [])
        if sustained(p_rs) and sustained(t_rs):
            p, t = med(p_rs, "p99"), med(t_rs, "p99")
            if p is not None and t is not None:
                p99_ok.append(p <= t)
    out.append(table(["rate", "conns", "size"] + servers, rows))
    out.append("")

    if "percore" in servers:
        targets.append(
            (
                "fixed rate: server CPU per request <= 0.85x tokio",
                all(cpu_ok) if cpu_ok else None,
                f"worst percore/tokio = {fmt_ratio(cpu_worst)} over {cpu_cells} cells both sustained",
            )
        )
        targets.append(
            (
                "fixed rate: fewer syscalls per request than every peer",
                all(sys_ok) if sys_ok else None,
                f"met in {sum(sys_ok)} of {len(sys_ok)} cells where percore sustained the rate",
            )
        )
        targets.append(
            (
                "fixed rate: p99 no worse than tokio",
                all(p99_ok) if p99_ok else None,
                f"met in {sum(p99_ok)} of {len(p99_ok)} cells both sustained",
            )
        )


def report_paired(by, cells, servers, rounds, out):
    """Each round runs every server in turn, so a round's ratio of one
    server's CPU per request to the reference's (tokio, else the first
    server listed) cancels the noise the host adds to that round for both.
    The mean of those ratios with two standard errors says whether a
    difference of a few percent is more than that noise."""
    if rounds < 3 or len(servers) < 2:
        return
    ref = "tokio" if "tokio" in servers else servers[0]
    others = [s for s in servers if s != ref]
    out.append(
        f"### Fixed rate: server CPU per request over {ref}'s in the same round "
        "(mean of the per-round ratios ± two standard errors; range)\n"
    )
    rows = []
    for rate, conns, size in cells:
        # Only rounds where both delivered the rate: an overloaded run's CPU
        # per request is not at that rate.
        ref_cpu = {
            r.round: r.cpu_us_per_req
            for r in by.get((rate, conns, size, ref), [])
            if r.sustained
        }
        row = [fmt_rate(rate), conns, size_label(size)]
        for s in others:
            rs = [
                r.cpu_us_per_req / ref_cpu[r.round]
                for r in by.get((rate, conns, size, s), [])
                if r.sustained and r.cpu_us_per_req is not None and ref_cpu.get(r.round)
            ]
            if len(rs) < 2:
                row.append("-")
                continue
            mean = statistics.mean(rs)
            two_se = 2 * statistics.stdev(rs) / math.sqrt(len(rs))
            row.append(f"{mean:.3f} ± {two_se:.3f} ({min(rs):.2f}-{max(rs):.2f}, n={len(rs)})")
        rows.append(row)
    out.append(table(["rate", "conns", "size"] + others, rows))
    out.append("")


def report_mem(runs, out, targets):
    servers = servers_in([{"server": r.server} for r in runs])
    by = group(runs, lambda r: r.server)
    rounds = max(len(v) for v in by.values())
    conns = int(median(r.idle_conns for r in runs) or 0)
    out.append(
        f"### Idle connections: server RSS with {conns} connections open "
        f"(each echoed 16 B; median of {rounds} rounds)\n"
    )
    tokio = med(by.get("tokio", []), "bytes_per_conn")
    rows = []
    for s in servers:
        rs = by[s]
        b = med(rs, "bytes_per_conn")
        rows.append(
            [
                s,
                fmt(med(rs, "rss_before") and med(rs, "rss_before") / 1024, 1),
                fmt(med(rs, "rss_after") and med(rs, "rss_after") / 1024, 1),
                fmt(b, 0),
                fmt_ratio(ratio(b, tokio)) if s != "tokio" else "-",
                fmt(med(rs, "idle_conns"), 0),
            ]
        )
    out.append(
        table(
            ["server", "RSS before, MiB", "RSS after, MiB", "bytes / idle conn", "vs tokio", "conns open"],
            rows,
        )
    )
    out.append("")
    ours = [(med(by[s], "bytes_per_conn"), s) for s in OURS if s in by]
    ours = [(v, s) for v, s in ours if v is not None]
    if ours:
        # percore's best mode for idle connections (the ring, where measured).
        p, mode = min(ours)
        peers = [med(by[s], "bytes_per_conn") for s in PEERS if s in by]
        peers = [v for v in peers if v is not None]
        met = None
        if peers:
            met = p < min(peers)
        targets.append(
            (
                "idle memory below every peer",
                met,
                f"{mode} {fmt(p, 0)} B/conn, lowest peer {fmt(min(peers) if peers else None, 0)} B/conn",
            )
        )
        targets.append(
            (
                "idle memory < 2 KiB per connection (aim)",
                p < 2048,
                f"{mode} {fmt(p, 0)} B/conn",
            )
        )


def as_shown(v, digits):
    """A value as the tables print it, for the CSV files: '' for none."""
    return "" if v is None else fmt(v, digits)


def rate_as_shown(v):
    """req/s as fmt_rate rounds it (143.8k is 143800), as a plain number."""
    if v is None:
        return ""
    if v >= 1e6:
        return str(round(float(f"{v / 1e6:.2f}") * 1e6))
    if v >= 1e3:
        return str(round(float(f"{v / 1e3:.1f}") * 1e3))
    return f"{v:.0f}"


def write_data(runs, data_dir, date, commit):
    """The medians of each phase as the CSV files the charts read."""
    os.makedirs(data_dir, exist_ok=True)

    def write(name, header, rows):
        for row in rows:
            for cell in row:
                # The format has no quoting: a comma or quote would shift columns.
                if "," in str(cell) or '"' in str(cell):
                    sys.exit(f"bench_report: {cell!r} cannot go into {name}")
        with open(os.path.join(data_dir, name), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows([date, commit] + row for row in rows)

    if runs.get("sat"):
        rs = runs["sat"]
        by = group(rs, lambda r: (r.conns, r.size, r.server))
        cells = sorted({(r.conns, r.size) for r in rs}, key=lambda c: (c[1], c[0]))
        rows = []
        for conns, size in cells:
            for s in servers_in([{"server": r.server} for r in rs]):
                g = by.get((conns, size, s), [])
                if not g:
                    continue
                bound = (med(g, "client_pct") or 0) >= CLIENT_BOUND_PCT
                rows.append([conns, size_label(size), s, rate_as_shown(med(g, "rps")), int(bound),
                             as_shown(med(g, "server_pct"), 0), as_shown(med(g, "client_pct"), 0),
                             as_shown(med(g, "cpu_us_per_req"), 2), as_shown(med(g, "p99"), 0)])
        write("echo-saturation.csv", ["date", "commit", "conns", "size", "server", "req_per_s",
              "client_bound", "server_cpu_pct", "client_cpu_pct", "server_cpu_us_per_req", "p99_us"], rows)
    if runs.get("rate"):
        rs = runs["rate"]
        by = group(rs, lambda r: (r.rate, r.conns, r.size, r.server))

        def sustained(g):  # as report_rate: delivered the rate in most rounds
            return sum(r.sustained for r in g) * 2 > len(g)

        cells = sorted({(r.rate, r.conns, r.size) for r in rs}, key=lambda c: (-c[0], c[2], c[1]))
        rows = []
        for rate, conns, size in cells:
            for s in servers_in([{"server": r.server} for r in rs]):
                g = by.get((rate, conns, size, s), [])
                if g:
                    rows.append([f"{rate:.0f}", conns, size_label(size), s,
                                 int(sustained(g)), as_shown(med(g, "cpu_us_per_req"), 2),
                                 as_shown(med(g, "syscalls_per_req"), 3)])
        write("echo-rate.csv", ["date", "commit", "rate", "conns", "size", "server", "sustained",
              "server_cpu_us_per_req", "syscalls_per_req"], rows)
    if runs.get("mem"):
        rs = runs["mem"]
        by = group(rs, lambda r: r.server)
        rows = []
        for s in servers_in([{"server": r.server} for r in rs]):
            g = by[s]
            before, after = med(g, "rss_before"), med(g, "rss_after")
            rows.append([s, as_shown(before and before / 1024, 1), as_shown(after and after / 1024, 1),
                         as_shown(med(g, "bytes_per_conn"), 0), as_shown(med(g, "idle_conns"), 0)])
        write("echo-idle-memory.csv", ["date", "commit", "server", "rss_before_mib", "rss_after_mib",
              "bytes_per_idle_conn", "conns_open"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+", help="results-*.csv from scripts/bench-echo.sh")
    ap.add_argument("--meta", help="meta-*.txt written beside the CSV")
    ap.add_argument("--data", help="also write the medians as the charts' CSV files into this directory")
    args = ap.parse_args()

    rows = []
    for path in args.csv:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    if not rows:
        sys.exit("bench_report: no rows")
    runs = defaultdict(list)
    for r in rows:
        runs[r["phase"]].append(Run(r))

    out, targets = [], []
    date, commit = "", ""
    if args.meta:
        with open(args.meta) as f:
            out += [line.rstrip("\n").lstrip("# ") + "  " for line in f if line.strip()]
        out.append("")
        # meta_header's line: "date: 2026-11-27T01:21:26Z; commit: 3c2a83c"
        m = re.search(r"date: (\d{4}-\d\d-\d\d)\S*; commit: (\S+(?: \(dirty\))?)", "\n".join(out))
        if m:
            date, commit = m.group(1), m.group(2)
        cores = re.search(r"SERVER_CORES=(\d+)", "\n".join(out))
        if cores and int(cores.group(1)) > 1:
            n = cores.group(1)
            out.append(
                f"Every server on {n} cores, the client on the same CPUs; "
                f"'tokio' is tokio's multi-thread runtime with {n} workers.\n"
            )
    if args.data:
        write_data(runs, args.data, date, commit)
    if runs.get("sat"):
        report_sat(runs["sat"], out, targets)
    if runs.get("rate"):
        report_rate(runs["rate"], out, targets)
    if runs.get("mem"):
        report_mem(runs["mem"], out, targets)
    if targets:
        out.append("### percore against the project's targets\n")
        for name, met, detail in targets:
            verdict = {True: "met", False: "NOT met", None: "not measured"}[met]
            out.append(f"- {name}: **{verdict}** ({detail})")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
