#!/usr/bin/env python3
"""A JSON-lines TCP sink for the aggregator tests: what Logstash's json_lines
input would be, reduced to writing every line it receives to a file.

    json_sink.py IP PORT FILE LIFETIME_S

Listens on IP:PORT (IPv6 when IP has a ':'), accepts any number of
connections at once, and appends every complete line received on any of
them to FILE, flushed line by line, so that a test can poll FILE while the
aggregator writes. A partial line left when a connection closes is written
too (with a newline), so that nothing received is lost. Prints "ready" on
stdout once listening, and "conn <peer ip> <peer port>" / "closed <peer ip>
<peer port> <lines>" per connection. Exits 0 after LIFETIME_S seconds or on
SIGTERM, so it can never outlive a test for long.
"""
import os
import selectors
import signal
import socket
import sys
import time


def main():
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    ip, port, path, lifetime = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))

    fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(16)
    srv.setblocking(False)

    out = open(path, "ab", buffering=0)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    # per connection: [peer, pending bytes, lines]
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime

    def close(conn, state):
        peer, pending, lines = state
        if pending:
            out.write(pending + b"\n")
            lines += 1
        sel.unregister(conn)
        conn.close()
        print(f"closed {peer[0]} {peer[1]} {lines}", flush=True)

    while not stopping and time.monotonic() < deadline:
        try:
            events = sel.select(timeout=0.2)
        except InterruptedError:
            continue
        for key, _ in events:
            if key.data is None:
                try:
                    conn, peer = srv.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, [peer, b"", 0])
                print(f"conn {peer[0]} {peer[1]}", flush=True)
                continue
            conn, state = key.fileobj, key.data
            try:
                chunk = conn.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                close(conn, state)
                continue
            buf = state[1] + chunk
            cut = buf.rfind(b"\n")
            if cut >= 0:
                complete, state[1] = buf[: cut + 1], buf[cut + 1 :]
                out.write(complete)
                state[2] += complete.count(b"\n")
            else:
                state[1] = buf
    for key in list(sel.get_map().values()):
        if key.data is not None:
            close(key.fileobj, key.data)
    out.close()
    os._exit(0)


if __name__ == "__main__":
    main()
