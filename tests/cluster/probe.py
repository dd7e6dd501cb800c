#!/usr/bin/env python3
"""Tiny TCP/UDP server and client for checking the namespace cluster.

The cluster self-test (and any test that needs to know *who answered* and
*whom the server saw*) runs a server in one Pod's network namespace and a
client in another. The server answers every request with one line,

    <NAME> <PEER_IP>

where NAME is the name given to the server (a Pod name) and PEER_IP the
source address it saw, so the client's output proves both which endpoint a
Service picked and that no SNAT happened on the way.

    probe.py serve tcp|udp PORT NAME [LIFETIME_S]
        listen on [::]:PORT (IPv4 and IPv6), print "ready" once bound,
        then one line "peer <ip> <port>" per request on stdout; exit after
        LIFETIME_S seconds (default 60), so a forgotten server cannot
        linger.
    probe.py call tcp|udp HOST PORT [TIMEOUT_S]
        send one request, print the reply line, exit 0; exit 1 if there is
        no reply within TIMEOUT_S seconds (default 3).

IPv4 peers of the dual-stack socket are printed as plain IPv4 addresses,
not as ::ffff:a.b.c.d.
"""
import select
import socket
import sys
import time


def plain_ip(ip):
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def bind_any(kind, port):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    return sock


def log_peer(addr):
    print(f"peer {plain_ip(addr[0])} {addr[1]}", flush=True)


def serve_tcp(sock, name, deadline):
    sock.listen(64)
    print("ready", flush=True)
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if not readable:
            continue
        conn, addr = sock.accept()
        with conn:
            conn.settimeout(2)
            log_peer(addr)
            try:
                conn.recv(4096)
                conn.sendall(f"{name} {plain_ip(addr[0])}\n".encode())
            except OSError as err:
                print(f"probe: {err}", file=sys.stderr, flush=True)


def serve_udp(sock, name, deadline):
    print("ready", flush=True)
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if not readable:
            continue
        _, addr = sock.recvfrom(4096)
        log_peer(addr)
        sock.sendto(f"{name} {plain_ip(addr[0])}\n".encode(), addr)


def serve(proto, port, name, lifetime):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = bind_any(kind, port)
    deadline = time.monotonic() + lifetime
    if proto == "tcp":
        serve_tcp(sock, name, deadline)
    else:
        serve_udp(sock, name, deadline)


def call(proto, host, port, timeout):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(b"hello\n")
        reply = sock.recv(4096).decode().strip()
    if not reply:
        raise OSError("empty reply")
    print(reply)


def main(argv):
    try:
        if len(argv) in (4, 5) and argv[0] == "serve" and argv[1] in ("tcp", "udp"):
            lifetime = float(argv[4]) if len(argv) == 5 else 60.0
            serve(argv[1], int(argv[2]), argv[3], lifetime)
            return 0
        if len(argv) in (4, 5) and argv[0] == "call" and argv[1] in ("tcp", "udp"):
            timeout = float(argv[4]) if len(argv) == 5 else 3.0
            call(argv[1], argv[2], int(argv[3]), timeout)
            return 0
    except OSError as err:
        print(f"probe: {' '.join(argv)}: {err}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
