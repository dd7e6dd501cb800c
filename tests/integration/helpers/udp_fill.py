#!/usr/bin/env python3
"""Fill a namespace's conntrack table with UDP entries, fast.

    udp_fill.py SRC_IP DST_IP COUNT

Sends one 1-byte datagram per (source port, destination port) pair: 50
sockets bound to SRC_IP ports 30000..30049, destination ports from 1024
up, so COUNT datagrams make COUNT distinct conntrack entries (they stay
UNREPLIED for the kernel's UDP timeout, 30 s by default). Nothing needs
to listen at DST_IP.
"""
import socket
import sys

SOCKETS = 50


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, count = argv[1], argv[2], int(argv[3])
    socks = []
    for k in range(SOCKETS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((src, 30000 + k))
        socks.append(sock)
    for i in range(count):
        socks[i % SOCKETS].sendto(b"x", (dst, 1024 + i // SOCKETS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
