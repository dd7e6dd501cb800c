#!/usr/bin/env python3
"""Send hand-made IPFIX datagrams, for tests of malformed input and
sequence accounting that a well-behaved exporter cannot produce.

    ipfix_send.py HOST PORT SCENARIO

Scenarios:
  malformed   5 broken messages (bad version, length lie, set past the end,
              reserved set id, var-len field past its set) then 1 valid
              message with a template and 2 records
  gap         domain 9: a template + 2 records (seq 0), then 3 records with
              seq 12 (10 records lost), then 1 late record with seq 2
              (reordered: gives 1 back), then 1 record with seq 15
Each valid data record is template 300: sourceTransportPort (u16) and
octetDeltaCount (u64), so the receiver's output can be checked exactly.
"""
import socket
import struct
import sys
import time

TEMPLATE_ID = 300


def message(domain, seq, sets):
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, domain) + body


def set_(set_id, payload):
    return struct.pack("!HH", set_id, 4 + len(payload)) + payload


def template_set():
    rec = struct.pack("!HH", TEMPLATE_ID, 2) + struct.pack("!HH", 7, 2) + struct.pack("!HH", 1, 8)
    return set_(2, rec)


def data_set(records):
    return set_(TEMPLATE_ID, b"".join(struct.pack("!HQ", port, octets) for port, octets in records))


def scenario_malformed(domain=5):
    good_hdr = struct.pack("!HHIII", 10, 20, 0, 0, domain)
    var_tmpl = set_(2, struct.pack("!HHHH", 400, 1, 82, 0xFFFF))  # interfaceName, var-len
    return [
        struct.pack("!HHIII", 9, 16, 0, 0, domain),                    # version 9
        struct.pack("!HHIII", 10, 200, 0, 0, domain),                   # length > datagram
        good_hdr + struct.pack("!HH", 2, 40),                           # set past the end
        message(domain, 0, [set_(1, b"\0" * 4)]),                       # reserved set id 1
        message(domain, 0, [var_tmpl, set_(400, b"\x10abc")]),          # var-len past the set
        message(domain, 0, [template_set(), data_set([(1000, 111), (1001, 222)])]),
    ]


def scenario_gap(domain=9):
    return [
        message(domain, 0, [template_set(), data_set([(2000, 1), (2001, 2)])]),
        message(domain, 12, [data_set([(2012, 12), (2013, 13), (2014, 14)])]),
        message(domain, 2, [data_set([(2002, 3)])]),
        message(domain, 15, [data_set([(2015, 15)])]),
    ]


def main():
    host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    msgs = {"malformed": scenario_malformed, "gap": scenario_gap}[name]()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for m in msgs:
        sock.sendto(m, (host, port))
        time.sleep(0.01)


if __name__ == "__main__":
    main()
