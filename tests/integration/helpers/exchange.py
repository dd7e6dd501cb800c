#!/usr/bin/env python3
"""Make traffic with exact payload sizes, for the flowvis integration tests.

The tests need flows whose addresses, ports and payload bytes they know in
advance. Each end is a separate process so that the two ends can live in
different network namespaces. Every socket has a timeout, so a test whose
peer never shows up fails after a few seconds instead of hanging.

    exchange.py tcp-server IP PORT RECV SEND
        accept one connection, read exactly RECV bytes, send SEND bytes,
        half-close, read until the peer closes, close.
    exchange.py tcp-client SRC_IP SRC_PORT DST_IP DST_PORT SEND RECV
        connect, send SEND bytes, read until EOF (must be RECV bytes), close.
    exchange.py udp-server IP PORT COUNT REPLIES REPLY_SIZE
        receive COUNT datagrams; answer the first REPLIES of them with
        REPLY_SIZE bytes each.
    exchange.py udp-client SRC_IP SRC_PORT DST_IP DST_PORT COUNT SIZE REPLIES
        send COUNT datagrams of SIZE bytes in lock step, waiting for a reply
        after each of the first REPLIES.

Servers print "ready" on stdout once they are bound. Exit status 0 means
every byte went as planned.
"""
import socket
import sys

TIMEOUT_S = 10


def fail(msg):
    print(f"exchange: {msg}", file=sys.stderr)
    sys.exit(1)


def ready():
    print("ready", flush=True)


def read_until_eof(conn):
    total = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return total
        total += len(chunk)


def tcp_server(ip, port, recv_n, send_n):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.settimeout(TIMEOUT_S)
    srv.bind((ip, port))
    srv.listen(1)
    ready()
    conn, _ = srv.accept()
    conn.settimeout(TIMEOUT_S)
    got = 0
    while got < recv_n:
        chunk = conn.recv(min(65536, recv_n - got))
        if not chunk:
            fail(f"tcp-server: peer closed after {got} of {recv_n} bytes")
        got += len(chunk)
    conn.sendall(b"s" * send_n)
    conn.shutdown(socket.SHUT_WR)
    extra = read_until_eof(conn)
    conn.close()
    srv.close()
    if extra:
        fail(f"tcp-server: {extra} unexpected bytes after the request")


def tcp_client(src_ip, src_port, dst_ip, dst_port, send_n, recv_n):
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    conn.settimeout(TIMEOUT_S)
    conn.bind((src_ip, src_port))
    conn.connect((dst_ip, dst_port))
    conn.sendall(b"c" * send_n)
    got = read_until_eof(conn)
    conn.close()
    if got != recv_n:
        fail(f"tcp-client: received {got} bytes, expected {recv_n}")


def udp_server(ip, port, count, replies, reply_size):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT_S)
    sock.bind((ip, port))
    ready()
    for i in range(count):
        _, peer = sock.recvfrom(65536)
        if i < replies:
            sock.sendto(b"r" * reply_size, peer)
    sock.close()


def udp_client(src_ip, src_port, dst_ip, dst_port, count, size, replies):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT_S)
    sock.bind((src_ip, src_port))
    for i in range(count):
        sock.sendto(b"u" * size, (dst_ip, dst_port))
        if i < replies:
            sock.recvfrom(65536)
    sock.close()


COMMANDS = {
    "tcp-server": (tcp_server, "s i i i"),
    "tcp-client": (tcp_client, "s i s i i i"),
    "udp-server": (udp_server, "s i i i i"),
    "udp-client": (udp_client, "s i s i i i i"),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        fail("usage: exchange.py {" + ",".join(COMMANDS) + "} ARGS... (see the source)")
    func, kinds = COMMANDS[argv[1]]
    kinds = kinds.split()
    if len(argv) - 2 != len(kinds):
        fail(f"{argv[1]} takes {len(kinds)} arguments")
    args = [int(a) if k == "i" else a for a, k in zip(argv[2:], kinds)]
    try:
        func(*args)
    except OSError as err:
        fail(f"{argv[1]}: {err}")


if __name__ == "__main__":
    main(sys.argv)
