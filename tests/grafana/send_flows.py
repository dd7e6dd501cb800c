#!/usr/bin/env python3
"""Send the records of fixture.py to an aggregator as the agents would.

    send_flows.py HOST PORT PHASE

Each record of phase PHASE goes out as one IPFIX message over UDP from its
Node's exporter (fixture.NODES: a socket bound to that address, its
observation domain), in fixture order, with template 256 (the agent's IPv4
template, field for field as src/ipfix/templates.c lists it) in every
message, so that no message depends on an earlier one. Sequence numbers
count the data records each exporter sent, across phases (the first
record of phase 2 continues where phase 1 left off). Prints the number of
records sent.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

IANA, REVERSE, ANTREA = 0, 29305, 56506
VARLEN = 65535
TEMPLATE_ID = 256

# (PEN, element id, length, fixture field): the agent's IPv4 template.
FIELDS = [
    (IANA, 150, 4, "flowStartSeconds"),
    (IANA, 151, 4, "flowEndSeconds"),
    (IANA, 136, 1, "flowEndReason"),
    (IANA, 7, 2, "sourceTransportPort"),
    (IANA, 11, 2, "destinationTransportPort"),
    (IANA, 4, 1, "protocolIdentifier"),
    (IANA, 86, 8, "packetTotalCount"),
    (IANA, 85, 8, "octetTotalCount"),
    (IANA, 2, 8, "packetDeltaCount"),
    (IANA, 1, 8, "octetDeltaCount"),
    (IANA, 8, 4, "sourceIP"),
    (IANA, 12, 4, "destinationIP"),
    (REVERSE, 86, 8, "reversePacketTotalCount"),
    (REVERSE, 85, 8, "reverseOctetTotalCount"),
    (REVERSE, 2, 8, "reversePacketDeltaCount"),
    (REVERSE, 1, 8, "reverseOctetDeltaCount"),
    (ANTREA, 101, VARLEN, "sourcePodName"),
    (ANTREA, 100, VARLEN, "sourcePodNamespace"),
    (ANTREA, 104, VARLEN, "sourceNodeName"),
    (ANTREA, 103, VARLEN, "destinationPodName"),
    (ANTREA, 102, VARLEN, "destinationPodNamespace"),
    (ANTREA, 105, VARLEN, "destinationNodeName"),
    (ANTREA, 108, 2, "destinationServicePort"),
    (ANTREA, 109, VARLEN, "destinationServicePortName"),
    (ANTREA, 110, VARLEN, "ingressNetworkPolicyName"),
    (ANTREA, 111, VARLEN, "ingressNetworkPolicyNamespace"),
    (ANTREA, 115, 1, "ingressNetworkPolicyType"),
    (ANTREA, 141, VARLEN, "ingressNetworkPolicyRuleName"),
    (ANTREA, 139, 1, "ingressNetworkPolicyRuleAction"),
    (ANTREA, 112, VARLEN, "egressNetworkPolicyName"),
    (ANTREA, 113, VARLEN, "egressNetworkPolicyNamespace"),
    (ANTREA, 118, 1, "egressNetworkPolicyType"),
    (ANTREA, 142, VARLEN, "egressNetworkPolicyRuleName"),
    (ANTREA, 140, 1, "egressNetworkPolicyRuleAction"),
    (ANTREA, 136, VARLEN, "tcpState"),
    (ANTREA, 137, 1, "flowType"),
    (ANTREA, 106, 4, "destinationClusterIP"),
]
ADDRESS_FIELDS = {"sourceIP", "destinationIP", "destinationClusterIP"}
INT_FORMATS = {1: "!B", 2: "!H", 4: "!I", 8: "!Q"}


def template_set():
    body = struct.pack("!HH", TEMPLATE_ID, len(FIELDS))
    for pen, ie, length, _ in FIELDS:
        if pen == IANA:
            body += struct.pack("!HH", ie, length)
        else:
            body += struct.pack("!HHI", 0x8000 | ie, length, pen)
    return struct.pack("!HH", 2, 4 + len(body)) + body


def encode_record(r):
    out = b""
    for _, _, length, name in FIELDS:
        if name in ADDRESS_FIELDS:
            out += socket.inet_aton(r.get(name, "0.0.0.0"))
        elif length == VARLEN:
            s = r.get(name, "").encode()
            if len(s) >= 255:
                raise ValueError(f"{name}: {len(s)} bytes; the fixture keeps strings short")
            out += struct.pack("!B", len(s)) + s
        else:
            out += struct.pack(INT_FORMATS[length], r.get(name, 0))
    return out


def message(domain, seq, sets):
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), seq, domain) + body


def main():
    host, port, phase = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    socks, seqs = {}, {}
    for node, (addr, _) in fixture.NODES.items():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 0))
        socks[node] = s
        seqs[node] = 0
    sent = 0
    for r in fixture.RECORDS:
        node = r["node"]
        domain = fixture.NODES[node][1]
        if r["phase"] == phase:
            data = encode_record(r)
            data_set = struct.pack("!HH", TEMPLATE_ID, 4 + len(data)) + data
            socks[node].sendto(message(domain, seqs[node], [template_set(), data_set]),
                               (host, port))
            sent += 1
            # Loopback keeps the order; the pause only spares the receiver a burst.
            time.sleep(0.005)
        if r["phase"] <= phase:
            seqs[node] += 1
    print(sent)


if __name__ == "__main__":
    main()
