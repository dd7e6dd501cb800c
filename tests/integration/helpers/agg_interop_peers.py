#!/usr/bin/env python3
"""Peers for test_aggregator_restart.sh: a JSON-lines sink for the
aggregator's output, and a long TCP stream of known size between two Pods.

    agg_interop_peers.py json-sink IP PORT PREFIX LIFETIME_S
        accept TCP connections (any number, at once) until LIFETIME_S has
        passed; the Nth connection's complete lines go to PREFIX.N (N from
        1, in accept order), each flushed as soon as its newline arrives.
        Prints "ready" once listening, "conn N <peer ip> <peer port>" per
        connection and "closed N <lines>" when one ends. Each aggregator
        process opens its own connection, so PREFIX.N holds what the Nth
        aggregator exported.
    agg_interop_peers.py stream-serve IP PORT LIFETIME_S
        accept one connection, read until the peer's FIN, close. Prints
        "ready", then "conn <peer ip> <peer port>" and "received <bytes>".
    agg_interop_peers.py stream-send SRC_IP SRC_PORT DST_IP DST_PORT BYTES_PER_S SECONDS
        connect from SRC_IP:SRC_PORT and send BYTES_PER_S bytes per second
        for SECONDS seconds (a chunk every 50 ms, on a fixed schedule), then
        shut down writing first (so that this side ends in TIME_WAIT) and
        wait for the server's FIN. Prints "connected" and "sent <bytes>".

Every socket has a timeout and every server a lifetime, so nothing here can
hang a test. Exit status 0 means every byte went as planned.
"""
import os
import selectors
import socket
import sys
import time

TIMEOUT_S = 10
TICK_S = 0.05


def fail(msg):
    print(f"agg_interop_peers: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def say(msg):
    print(msg, flush=True)


def listener(ip, port):
    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(16)
    return sock


def json_sink(ip, port, prefix, lifetime):
    srv = listener(ip, port)
    srv.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    say("ready")
    deadline = time.monotonic() + lifetime
    n = 0
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            if key.data is None:
                conn, peer = srv.accept()
                conn.setblocking(False)
                n += 1
                state = {"n": n, "buf": b"", "lines": 0, "out": open(f"{prefix}.{n}", "ab")}
                sel.register(conn, selectors.EVENT_READ, state)
                say(f"conn {n} {peer[0]} {peer[1]}")
                continue
            conn, state = key.fileobj, key.data
            try:
                chunk = conn.recv(65536)
            except ConnectionError:
                chunk = b""
            if chunk:
                state["buf"] += chunk
                if b"\n" in state["buf"]:
                    done, state["buf"] = state["buf"].rsplit(b"\n", 1)
                    state["out"].write(done + b"\n")
                    state["out"].flush()
                    state["lines"] += done.count(b"\n") + 1
                continue
            sel.unregister(conn)
            conn.close()
            state["out"].close()
            say(f"closed {state['n']} {state['lines']}")


def stream_serve(ip, port, lifetime):
    srv = listener(ip, port)
    srv.settimeout(lifetime)
    say("ready")
    conn, peer = srv.accept()
    say(f"conn {peer[0]} {peer[1]}")
    conn.settimeout(TIMEOUT_S)
    total = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        total += len(chunk)
    conn.close()
    say(f"received {total}")


def stream_send(src_ip, src_port, dst_ip, dst_port, rate, seconds):
    fam = socket.AF_INET6 if ":" in dst_ip else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((src_ip, src_port))
    sock.settimeout(TIMEOUT_S)
    sock.connect((dst_ip, dst_port))
    say("connected")
    chunk = b"x" * max(1, int(rate * TICK_S))
    ticks = int(round(seconds / TICK_S))
    start = time.monotonic()
    sent = 0
    for i in range(ticks):
        delay = start + i * TICK_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendall(chunk)
        sent += len(chunk)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(65536):
        fail("the server sent data")
    sock.close()
    say(f"sent {sent}")


COMMANDS = {
    "json-sink": (json_sink, [str, int, str, float]),
    "stream-serve": (stream_serve, [str, int, float]),
    "stream-send": (stream_send, [str, int, str, int, int, float]),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        fail(f"usage: {os.path.basename(argv[0])} {'|'.join(COMMANDS)} ARGS...")
    func, kinds = COMMANDS[argv[1]]
    if len(argv) - 2 != len(kinds):
        fail(f"{argv[1]} takes {len(kinds)} arguments")
    try:
        func(*[k(a) for k, a in zip(kinds, argv[2:])])
    except (OSError, ValueError) as err:
        fail(f"{argv[1]}: {err}")


if __name__ == "__main__":
    main(sys.argv)
