#!/usr/bin/env python3
"""Print agent-format IPFIX data records in one canonical form, one line each.

    canon_records.py tshark FILE    FILE: `tshark -T json --no-duplicate-keys`
    canon_records.py flowvis FILE   FILE: `flowvis collector --format json`

Two independent decoders describe the same records in different shapes:
tshark as a dissection tree with its own field names, formatted dates and
Antrea (PEN 56506) elements as bare hex, flowvis as one JSON object per
record with registry names. This puts both into the same comma-separated
line, so that the test can compare them as sorted lists:

    exporter,domain,template,flowStartSeconds,flowEndSeconds,flowEndReason,
    sourcePort,destinationPort,protocol,packetTotal,octetTotal,packetDelta,
    octetDelta,sourceAddress,destinationAddress,reversePacketTotal,
    reverseOctetTotal,reversePacketDelta,reverseOctetDelta,antrea

where antrea is the record's Antrea values, in template order, as the hex
of their encoded bytes joined by "|". tshark leaves out empty
variable-length strings, so empty strings are left out on both sides.
"""
import datetime
import ipaddress
import json
import sys

# The IANA and reverse elements of the agent template, in line order, as
# flowvis names them and as tshark names them (tshark gives a forward and
# a reverse counter the same field name; the forward one comes first).
IANA = [
    ("flowStartSeconds", "start"),
    ("flowEndSeconds", "end"),
    ("flowEndReason", "cflow.flow_end_reason"),
    ("sourceTransportPort", "cflow.srcport"),
    ("destinationTransportPort", "cflow.dstport"),
    ("protocolIdentifier", "cflow.protocol"),
    ("packetTotalCount", ("cflow.permanent_packets", 0)),
    ("octetTotalCount", ("cflow.permanent_octets", 0)),
    ("packetDeltaCount", ("cflow.packets", 0)),
    ("octetDeltaCount", ("cflow.octets", 0)),
    ("sourceAddress", "src"),
    ("destinationAddress", "dst"),
    ("reversePacketTotalCount", ("cflow.permanent_packets", 1)),
    ("reverseOctetTotalCount", ("cflow.permanent_octets", 1)),
    ("reversePacketDeltaCount", ("cflow.packets", 1)),
    ("reverseOctetDeltaCount", ("cflow.octets", 1)),
]
FLOWVIS_ADDRESS = {
    "sourceAddress": ("sourceIPv4Address", "sourceIPv6Address"),
    "destinationAddress": ("destinationIPv4Address", "destinationIPv6Address"),
}
IANA_NAMES = {name for name, _ in IANA} | {n for pair in FLOWVIS_ADDRESS.values() for n in pair}

# Antrea elements that are not strings: their encoded size in bytes.
ANTREA_FIXED = {
    "destinationServicePort": 2,
    "ingressNetworkPolicyType": 1,
    "ingressNetworkPolicyRuleAction": 1,
    "egressNetworkPolicyType": 1,
    "egressNetworkPolicyRuleAction": 1,
    "flowType": 1,
}
ANTREA_ADDRESS = {"destinationClusterIPv4", "destinationClusterIPv6"}


def as_list(value):
    return value if isinstance(value, list) else [value]


def tshark_time(text):
    # "Nov 21, 2026 12:37:40.000000000 UTC"
    stamp = datetime.datetime.strptime(text.split(".")[0], "%b %d, %Y %H:%M:%S")
    return str(int(stamp.replace(tzinfo=datetime.timezone.utc).timestamp()))


def tshark_value(rec, key):
    """The value of one canonical field, or "missing"."""
    try:
        if key in ("start", "end"):
            times = rec["cflow.timedelta_tree"]
            return tshark_time(times["cflow.abstimestart" if key == "start" else "cflow.abstimeend"])
        if key in ("src", "dst"):
            base = "cflow.srcaddr" if key == "src" else "cflow.dstaddr"
            return str(ipaddress.ip_address(rec.get(base) or rec[base + "v6"]))
        if isinstance(key, tuple):
            return as_list(rec[key[0]])[key[1]]
        return rec[key]
    except (KeyError, IndexError):
        return "missing"


def tshark_lines(path):
    with open(path) as f:
        packets = json.load(f)
    for packet in packets:
        layers = packet["_source"]["layers"]
        exporter = layers["ip"]["ip.src"]
        for msg in as_list(layers.get("cflow", [])):
            for set_key, fset in msg.items():
                if not set_key.startswith("Set ") or int(fset["cflow.flowset_id"]) < 256:
                    continue
                for rec_key, rec in fset.items():
                    if not rec_key.startswith("Flow "):
                        continue
                    values = [tshark_value(rec, key) for _, key in IANA]
                    antrea = [v.replace(":", "") for v in
                              as_list(rec.get("cflow.enterprise_private_entry", []))]
                    yield [exporter, msg["cflow.od_id"], fset["cflow.flowset_id"]] + values + \
                        ["|".join(antrea)]


def antrea_hex(name, value):
    if name in ANTREA_ADDRESS:
        return ipaddress.ip_address(value).packed.hex()
    if name in ANTREA_FIXED:
        return int(value).to_bytes(ANTREA_FIXED[name], "big").hex()
    if isinstance(value, str):
        # Strings and, for elements flowvis does not know, its hex.
        return value.encode().hex() if not name.startswith("ie") else value
    return f"?{name}={value}"


def flowvis_lines(path):
    with open(path) as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            rec = obj["ipfix"]
            values = []
            for name, _ in IANA:
                if name in FLOWVIS_ADDRESS:
                    v4, v6 = FLOWVIS_ADDRESS[name]
                    value = rec.get(v4, rec.get(v6))
                    values.append(str(ipaddress.ip_address(value)) if value else "missing")
                else:
                    values.append(str(rec.get(name, "missing")))
            antrea = [antrea_hex(k, v) for k, v in rec.items()
                      if k not in IANA_NAMES and v != ""]
            yield [obj["exporterAddress"], obj["observationDomainId"], obj["templateId"]] + \
                values + ["|".join(antrea)]


def main(argv):
    if len(argv) != 3 or argv[1] not in ("tshark", "flowvis"):
        sys.exit("usage: canon_records.py tshark|flowvis FILE")
    lines = tshark_lines(argv[2]) if argv[1] == "tshark" else flowvis_lines(argv[2])
    for fields in lines:
        print(",".join(str(f) for f in fields))


if __name__ == "__main__":
    main(sys.argv)
