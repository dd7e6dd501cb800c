#!/usr/bin/env python3
"""TCP and UDP peers with exact payload sizes, IPv4 or IPv6, for the agent tests.

The agent tests need connections whose 5-tuple and payload bytes they know,
between network namespaces, over either address family, and servers that
take many connections in a row. The family of every socket follows the
address it is given (a ':' means IPv6). Every socket has a timeout and every
server a lifetime, so nothing here can hang a test.

    flowpeer.py tcp-serve IP PORT REQUEST REPLY LIFETIME_S
        accept connections one after the other until LIFETIME_S has passed;
        per connection read REQUEST bytes, send REPLY bytes, wait for the
        peer to close (FIN or RST), close. Prints "ready" once listening,
        then "conn <peer ip> <peer port> <bytes received>" per connection.
    flowpeer.py tcp-call SRC_IP SRC_PORT DST_IP DST_PORT SEND REPLY [rst]
        bind SRC_IP:SRC_PORT (SRC_PORT 0: any), connect, send SEND bytes,
        read exactly REPLY bytes, close first (so that the client ends in
        TIME_WAIT), or with "rst" abort with a RST (SO_LINGER 0). Prints the
        local port used.
    flowpeer.py udp-serve IP PORT REPLY LIFETIME_S
        answer every datagram with REPLY bytes until LIFETIME_S has passed.
        Prints "ready", then "dgram <peer ip> <peer port> <size>" per datagram.
    flowpeer.py udp-call SRC_IP SRC_PORT DST_IP DST_PORT COUNT SIZE REPLY
        send COUNT datagrams of SIZE bytes, each after the REPLY-byte answer
        to the previous one. Prints the local port used.

Exit status 0 means every byte went as planned.
"""
import select
import socket
import struct
import sys
import time

TIMEOUT_S = 5


def fail(msg):
    print(f"flowpeer: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def read_until_eof(conn):
    total = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return total
        total += len(chunk)


def sock_for(ip, kind):
    sock = socket.socket(family(ip), kind)
    if ":" in ip:
        # "::" must not take the IPv4 port too: an IPv4 server may share it.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def read_exactly(conn, n, who):
    got = 0
    while got < n:
        chunk = conn.recv(min(65536, n - got))
        if not chunk:
            fail(f"{who}: peer closed after {got} of {n} bytes")
        got += len(chunk)
    return got


def tcp_serve(ip, port, request, reply, lifetime):
    srv = sock_for(ip, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(64)
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        readable, _, _ = select.select([srv], [], [], 0.2)
        if not readable:
            continue
        conn, addr = srv.accept()
        with conn:
            conn.settimeout(TIMEOUT_S)
            try:
                got = read_exactly(conn, request, "tcp-serve")
                conn.sendall(b"s" * reply)
                got += read_until_eof(conn)
            except ConnectionResetError:
                pass  # the client aborted after the reply: expected with rst
            except OSError as err:
                print(f"flowpeer: tcp-serve: {addr[0]} {addr[1]}: {err}", file=sys.stderr, flush=True)
                continue
            print(f"conn {addr[0]} {addr[1]} {got}", flush=True)


def tcp_call(src_ip, src_port, dst_ip, dst_port, send, reply, mode="fin"):
    if mode not in ("fin", "rst"):
        fail(f"tcp-call: '{mode}' is not rst")
    conn = socket.socket(family(dst_ip), socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    conn.settimeout(TIMEOUT_S)
    conn.bind((src_ip, src_port))
    conn.connect((dst_ip, dst_port))
    port = conn.getsockname()[1]
    conn.sendall(b"c" * send)
    read_exactly(conn, reply, "tcp-call")
    if mode == "rst":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    print(port, flush=True)


def udp_serve(ip, port, reply, lifetime):
    sock = sock_for(ip, socket.SOCK_DGRAM)
    sock.bind((ip, port))
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if not readable:
            continue
        data, addr = sock.recvfrom(65536)
        sock.sendto(b"r" * reply, addr)
        print(f"dgram {addr[0]} {addr[1]} {len(data)}", flush=True)


def udp_call(src_ip, src_port, dst_ip, dst_port, count, size, reply):
    sock = socket.socket(family(dst_ip), socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT_S)
    sock.bind((src_ip, src_port))
    for _ in range(count):
        sock.sendto(b"u" * size, (dst_ip, dst_port))
        data, _ = sock.recvfrom(65536)
        if len(data) != reply:
            fail(f"udp-call: a reply of {len(data)} bytes, expected {reply}")
    print(sock.getsockname()[1], flush=True)
    sock.close()


COMMANDS = {
    "tcp-serve": (tcp_serve, "s i i i f"),
    "tcp-call": (tcp_call, "s i s i i i s?"),
    "udp-serve": (udp_serve, "s i i f"),
    "udp-call": (udp_call, "s i s i i i i"),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        fail("usage: flowpeer.py {" + ",".join(COMMANDS) + "} ARGS... (see the source)")
    func, kinds = COMMANDS[argv[1]]
    kinds = kinds.split()
    required = len([k for k in kinds if not k.endswith("?")])
    if not required <= len(argv) - 2 <= len(kinds):
        fail(f"{argv[1]} takes {required} to {len(kinds)} arguments")
    conv = {"s": str, "i": int, "f": float}
    args = [conv[k[0]](a) for a, k in zip(argv[2:], kinds)]
    try:
        func(*args)
    except OSError as err:
        fail(f"{argv[1]}: {err}")


if __name__ == "__main__":
    main(sys.argv)
