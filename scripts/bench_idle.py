#!/usr/bin/env python3
"""Open N TCP connections to an echo server, echo one small message on each,
then hold them all open, idle, for the idle-memory measurement of
scripts/bench-echo.sh.

Prints `READY ok=N errors=E` (flushed) once every connection has echoed its
message, then holds the connections until --hold seconds have passed or the
process is terminated. Loopback only: the address must be 127.0.0.1 or ::1.

    python3 scripts/bench_idle.py --addr 127.0.0.1:7000 --conns 10000 --hold 30
"""

import argparse
import ipaddress
import resource
import signal
import socket
import sys
import time


def parse_addr(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"bench_idle: {host} is not a loopback address")
    return host, int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", required=True, help="HOST:PORT of the echo server")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--size", type=int, default=16, help="bytes echoed per connection")
    ap.add_argument("--hold", type=float, default=60.0, help="seconds to hold the connections")
    args = ap.parse_args()
    host, port = parse_addr(args.addr)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.conns + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    msg = b"x" * args.size
    socks, errors = [], 0
    for _ in range(args.conns):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(10.0)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect((host, port))
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(len(msg) - len(got))
                if not chunk:
                    raise ConnectionError("server closed the connection")
                got += chunk
            if got != msg:
                raise ValueError("echo differs from what was sent")
            socks.append(s)
        except (OSError, ValueError) as e:
            errors += 1
            if errors <= 3:
                print(f"bench_idle: connection {len(socks) + errors}: {e}", file=sys.stderr)
            s.close()
    print(f"READY ok={len(socks)} errors={errors}", flush=True)
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
