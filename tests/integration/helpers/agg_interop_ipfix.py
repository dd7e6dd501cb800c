#!/usr/bin/env python3
"""Per-flow views of IPFIX records as third-party tools decode them, for
test_aggregator_ipfix_interop.sh.

    agg_interop_ipfix.py decode PDML          tshark -T pdml -> JSON lines
    agg_interop_ipfix.py expect IN.jsonl DIR  what the generator sent, per flow
    agg_interop_ipfix.py got OUT.jsonl DIR    what the aggregator exported, per flow
    agg_interop_ipfix.py nfdump FILE          nfdump -o json -> per-flow sums
    agg_interop_ipfix.py templates OUT.jsonl  the exported templates, one line each
    agg_interop_ipfix.py spec-templates       the same, as SPEC section 2 says
    agg_interop_ipfix.py sequence OUT.jsonl   messages whose sequence number is wrong

decode: every IPFIX message, template and data record of a `tshark -T pdml`
dissection, as JSON lines ({"kind": "message"|"template"|"record", ...}).
Only what tshark shows is used: IANA and reverse elements by tshark's field
names (cflow.srcport, ...; a reverse element is the same field with
"(Reverse Type N ...)" in its showname) and their displayed values; Antrea
elements (PEN 56506), which tshark does not name, by the PEN name and
element id it prints ("Enterprise Private entry: (Project Antrea) Type
101: ...") and the bytes it shows, read as the template's type says
(length 65535: UTF-8 string; otherwise an unsigned integer, or an address
for destinationClusterIPv4/IPv6). tshark leaves out empty variable-length
strings entirely: an Antrea string that the template has and the record
does not show is "". PDML, not -T json, because only PDML keeps the
element id of each enterprise value.

expect / got write comma-separated lines, one per flow (key = source,
destination, protocol, source port, destination port), that the test
compares as sorted lists:

    counters.csv  key,packets,octets,reversePackets,reverseOctets
                  expect: the flow's final totals as sent; got_sums: the
                  sum of every exported delta; got_last: the totals of the
                  last exported record
    identity.csv  key,flowStartSeconds,flowEndReason,flowType, the six Pod
                  fields, service port and port name, ClusterIP, tcpState,
                  the ten policy fields; got: one line per distinct value
                  across the flow's records (so a record that differs shows)
    sides.csv     key,flowEndSeconds,flowEndSecondsFromSourceNode,
                  ...FromDestinationNode, the four totals from each side,
                  the sums of the four deltas from each side (a flow only
                  one node reports, not inter-node, is that node's on both
                  sides)
    exporters.csv key,originalExporter,originalObservationDomainId (expect:
                  every exporter that reported the flow; got: every pair
                  seen in its records)
    throughput.csv (got only) records whose common throughput fields are
                  not the value of one of the sides
"""
import datetime
import ipaddress
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

ANTREA_PEN = 56506
REVERSE_PEN = 29305

# IANA elements as tshark names them.
TSHARK_IANA = {
    "cflow.abstimestart": 150,
    "cflow.abstimeend": 151,
    "cflow.flow_end_reason": 136,
    "cflow.srcport": 7,
    "cflow.dstport": 11,
    "cflow.protocol": 4,
    "cflow.permanent_packets": 86,
    "cflow.permanent_octets": 85,
    "cflow.packets": 2,
    "cflow.octets": 1,
    "cflow.srcaddr": 8,
    "cflow.dstaddr": 12,
    "cflow.srcaddrv6": 27,
    "cflow.dstaddrv6": 28,
    "cflow.original_exporter_ipv4_address": 403,
    "cflow.original_exporter_ipv6_address": 404,
    "cflow.original_observation_domain_id": 405,
}
IANA_NAMES = {
    150: "flowStartSeconds", 151: "flowEndSeconds", 136: "flowEndReason",
    7: "sourceTransportPort", 11: "destinationTransportPort", 4: "protocolIdentifier",
    86: "packetTotalCount", 85: "octetTotalCount", 2: "packetDeltaCount", 1: "octetDeltaCount",
    8: "sourceIPv4Address", 12: "destinationIPv4Address", 27: "sourceIPv6Address",
    28: "destinationIPv6Address", 403: "originalExporterIPv4Address",
    404: "originalExporterIPv6Address", 405: "originalObservationDomainId",
}
REVERSE_NAMES = {86: "reversePacketTotalCount", 85: "reverseOctetTotalCount",
                 2: "reversePacketDeltaCount", 1: "reverseOctetDeltaCount"}
ANTREA_NAMES = {
    100: "sourcePodNamespace", 101: "sourcePodName", 102: "destinationPodNamespace",
    103: "destinationPodName", 104: "sourceNodeName", 105: "destinationNodeName",
    106: "destinationClusterIPv4", 107: "destinationClusterIPv6",
    108: "destinationServicePort", 109: "destinationServicePortName",
    110: "ingressNetworkPolicyName", 111: "ingressNetworkPolicyNamespace",
    112: "egressNetworkPolicyName", 113: "egressNetworkPolicyNamespace",
    115: "ingressNetworkPolicyType", 118: "egressNetworkPolicyType",
    136: "tcpState", 137: "flowType",
    139: "ingressNetworkPolicyRuleAction", 140: "egressNetworkPolicyRuleAction",
    141: "ingressNetworkPolicyRuleName", 142: "egressNetworkPolicyRuleName",
    143: "sourcePodLabels", 144: "destinationPodLabels",
    145: "throughput", 146: "reverseThroughput", 147: "throughputFromSourceNode",
    148: "throughputFromDestinationNode", 149: "reverseThroughputFromSourceNode",
    150: "reverseThroughputFromDestinationNode",
    151: "flowEndSecondsFromSourceNode", 152: "flowEndSecondsFromDestinationNode",
}
_SIDE_CTRS = ["packetTotalCount", "octetTotalCount", "packetDeltaCount", "octetDeltaCount",
              "reversePacketTotalCount", "reverseOctetTotalCount", "reversePacketDeltaCount",
              "reverseOctetDeltaCount"]
for _i, _c in enumerate(_SIDE_CTRS):
    ANTREA_NAMES[120 + _i] = _c + "FromSourceNode"
    ANTREA_NAMES[128 + _i] = _c + "FromDestinationNode"

ENTERPRISE_RE = re.compile(r"Enterprise Private entry: \((.*?)\) Type (\d+):")
REVERSE_RE = re.compile(r"\(Reverse Type (\d+)")

STRINGS = ["sourcePodName", "sourcePodNamespace", "sourceNodeName", "destinationPodName",
           "destinationPodNamespace", "destinationNodeName", "destinationServicePortName",
           "ingressNetworkPolicyName", "ingressNetworkPolicyNamespace",
           "ingressNetworkPolicyRuleName", "egressNetworkPolicyName",
           "egressNetworkPolicyNamespace", "egressNetworkPolicyRuleName"]
NUMBERS = ["destinationServicePort", "ingressNetworkPolicyType",
           "ingressNetworkPolicyRuleAction", "egressNetworkPolicyType",
           "egressNetworkPolicyRuleAction", "flowType"]
COUNTERS = ["packet", "octet", "reversePacket", "reverseOctet"]


def die(msg):
    sys.exit(f"agg_interop_ipfix.py: {msg}")


# ---- decode ------------------------------------------------------------------


def tshark_time(text):
    # "Nov 21, 2026 12:37:40.000000000 UTC"
    stamp = datetime.datetime.strptime(text.split(".")[0], "%b %d, %Y %H:%M:%S")
    return int(stamp.replace(tzinfo=datetime.timezone.utc).timestamp())



def decode_template(tnode):
    fields = []
    tid = None
    for f in tnode.iter("field"):
        name = f.get("name")
        if name == "cflow.template_id":
            tid = int(f.get("show"))
        elif name in ("cflow.template_ipfix_field_type", "cflow.template_ipfix_field_type_enterprise"):
            fields.append([0, int(f.get("show")), None])
        elif name == "cflow.template_field_length" and fields:
            fields[-1][2] = int(f.get("show"))
        elif name == "cflow.template_ipfix_field_pen" and fields:
            fields[-1][0] = int(f.get("show"))
    return tid, fields


def decode_record(rnode, template):
    """One data record: {name: value}, and a list of problems."""
    rec, problems = {}, []
    lengths = {(pen, ie): length for pen, ie, length in template}
    for f in rnode.iter("field"):
        name, show, showname = f.get("name"), f.get("show"), f.get("showname") or ""
        if name == "cflow.enterprise_private_entry":
            m = ENTERPRISE_RE.match(showname)
            if not m:
                problems.append(f"unparsed enterprise entry: {showname[:80]}")
                continue
            ie = int(m.group(2))
            if m.group(1) != "Project Antrea":
                problems.append(f"enterprise entry of '{m.group(1)}' type {ie}")
                continue
            raw = bytes.fromhex(f.get("value") or "")
            length = lengths.get((ANTREA_PEN, ie))
            aname = ANTREA_NAMES.get(ie, f"antrea{ie}")
            if length is None:
                problems.append(f"Antrea type {ie} not in the template")
            elif length == 65535:
                rec[aname] = raw.decode("utf-8", "replace")
            elif ie in (106, 107):
                rec[aname] = str(ipaddress.ip_address(raw))
            else:
                if len(raw) != length:
                    problems.append(f"Antrea type {ie}: {len(raw)} bytes, template says {length}")
                rec[aname] = int.from_bytes(raw, "big")
        elif name in TSHARK_IANA:
            ie = TSHARK_IANA[name]
            rm = REVERSE_RE.search(showname)
            if rm:
                iname = REVERSE_NAMES[int(rm.group(1))]
            else:
                iname = IANA_NAMES[ie]
            if ie in (150, 151):
                value = tshark_time(show)
            elif ie in (8, 12, 27, 28, 403, 404):
                value = str(ipaddress.ip_address(show))
            else:
                value = int(show)
            if iname in rec:
                problems.append(f"{iname} twice")
            rec[iname] = value
        elif name in ("cflow.timedelta", "cflow.string_len_short", "cflow.string_len_long"):
            continue
        elif name is not None and name.startswith("cflow."):
            problems.append(f"unexpected field {name}")
    # Every element of the template must be there, except empty strings.
    for pen, ie, length in template:
        if pen == ANTREA_PEN:
            aname = ANTREA_NAMES.get(ie, f"antrea{ie}")
            if aname not in rec:
                if length == 65535:
                    rec[aname] = ""
                else:
                    problems.append(f"{aname} missing")
        elif pen in (0, REVERSE_PEN):
            iname = (REVERSE_NAMES if pen == REVERSE_PEN else IANA_NAMES).get(ie, f"ie{pen}/{ie}")
            if iname not in rec:
                problems.append(f"{iname} missing")
        else:
            problems.append(f"template element of PEN {pen}")
    return rec, problems


def decode(path):
    root = ET.parse(path).getroot()
    templates = {}
    out = sys.stdout
    for packet in root.iter("packet"):
        src = frame = None
        for f in packet.iter("field"):
            if f.get("name") == "ip.src" and src is None:
                src = f.get("show")
            if f.get("name") == "frame.number" and frame is None:
                frame = int(f.get("show"))
        for proto in packet.findall("proto"):
            if proto.get("name") != "cflow":
                continue
            top = {f.get("name"): f for f in proto.findall("field")}
            domain = int(top["cflow.od_id"].get("show"))
            seq = int(top["cflow.sequence"].get("show"))
            nrec = 0
            for fset in proto.findall("field"):
                sid = fset.find("field[@name='cflow.flowset_id']")
                if sid is None:
                    continue
                set_id = int(sid.get("show"))
                if set_id == 2:
                    for tnode in fset.findall("field"):
                        if tnode.find("field[@name='cflow.template_id']") is None:
                            continue
                        tid, fields = decode_template(tnode)
                        templates[(src, domain, tid)] = fields
                        print(json.dumps({"kind": "template", "frame": frame, "exporter": src,
                                          "domain": domain, "templateId": tid,
                                          "fields": fields}), file=out)
                    continue
                if set_id < 256:
                    continue
                template = templates.get((src, domain, set_id))
                for rnode in fset.findall("field"):
                    if not (rnode.get("show") or "").startswith("Flow "):
                        continue
                    nrec += 1
                    if template is None:
                        print(json.dumps({"kind": "record", "frame": frame, "exporter": src,
                                          "domain": domain, "templateId": set_id,
                                          "problems": ["no template"], "fields": {}}), file=out)
                        continue
                    rec, problems = decode_record(rnode, template)
                    print(json.dumps({"kind": "record", "frame": frame, "exporter": src,
                                      "domain": domain, "templateId": set_id,
                                      "problems": problems, "fields": rec}), file=out)
            print(json.dumps({"kind": "message", "frame": frame, "exporter": src, "domain": domain,
                              "sequence": seq, "records": nrec}), file=out)


# ---- per-flow views ------------------------------------------------------------


def load(path, kind):
    with open(path) as f:
        for line in f:
            obj = json.loads(line)
            if obj["kind"] == kind:
                yield obj


def key_of(r):
    src = r.get("sourceIPv4Address") or r.get("sourceIPv6Address")
    dst = r.get("destinationIPv4Address") or r.get("destinationIPv6Address")
    return ",".join(str(x) for x in (src, dst, r["protocolIdentifier"], r["sourceTransportPort"],
                                      r["destinationTransportPort"]))


def cluster_ip(r):
    v4, v6 = r.get("destinationClusterIPv4"), r.get("destinationClusterIPv6")
    for v in (v4, v6):
        if v and not ipaddress.ip_address(v).is_unspecified:
            return v
    return ""


def totals(r):
    return [r["packetTotalCount"], r["octetTotalCount"], r["reversePacketTotalCount"],
            r["reverseOctetTotalCount"]]


def deltas(r):
    return [r["packetDeltaCount"], r["octetDeltaCount"], r["reversePacketDeltaCount"],
            r["reverseOctetDeltaCount"]]


def side_of(r):
    """0 = reported by the source node, 1 = by the destination node (SPEC 4)."""
    return 1 if r.get("sourcePodName", "") == "" and r.get("destinationPodName", "") != "" else 0


def identity_line(key, start, reason, flow_type, strings, numbers, cip, tcp_state):
    return ",".join([key, str(start), str(reason), str(flow_type)] +
                    [strings[n] for n in STRINGS] + [str(numbers[n]) for n in NUMBERS] +
                    [cip, tcp_state])


def write(dirname, name, lines):
    with open(os.path.join(dirname, name), "w") as f:
        for line in sorted(lines):
            f.write(line + "\n")


def by_flow(records):
    flows = {}
    for obj in records:
        flows.setdefault(key_of(obj["fields"]), []).append(obj)
    return flows


def expect(path, dirname):
    """What a correct aggregator must end up with, from the agents' records."""
    flows = by_flow(load(path, "record"))
    counters, identity, sides, exporters = [], [], [], []
    for key, objs in flows.items():
        recs = [o["fields"] for o in objs]
        final = [max(v) for v in zip(*(totals(r) for r in recs))]
        counters.append(",".join([key] + [str(v) for v in final]))
        # Merge as SPEC 4 says: a non-empty / non-zero value wins.
        strings = {n: "" for n in STRINGS}
        numbers = {n: 0 for n in NUMBERS}
        cip = ""
        for r in recs:
            for n in STRINGS:
                if r.get(n):
                    strings[n] = r[n]
            for n in NUMBERS:
                if r.get(n):
                    numbers[n] = r[n]
            cip = cluster_ip(r) or cip
        identity.append(identity_line(key, min(r["flowStartSeconds"] for r in recs),
                                      recs[-1]["flowEndReason"], numbers["flowType"], strings,
                                      numbers, cip, recs[-1]["tcpState"]))
        end = [0, 0]
        side_tot = [[0] * 4, [0] * 4]
        side_sum = [[0] * 4, [0] * 4]
        seen = set()
        for r in recs:
            s = side_of(r)
            seen.add(s)
            end[s] = max(end[s], r["flowEndSeconds"])
            side_tot[s] = [max(a, b) for a, b in zip(side_tot[s], totals(r))]
            side_sum[s] = [a + b for a, b in zip(side_sum[s], deltas(r))]
        # A flow that one node alone sees (intra-node, to or from external)
        # is that node's for both ends, as the reference aggregator has it:
        # its FromDestinationNode fields repeat the FromSourceNode ones.
        if numbers["flowType"] != 2 and len(seen) == 1:
            s = seen.pop()
            end[1 - s], side_tot[1 - s], side_sum[1 - s] = end[s], side_tot[s], side_sum[s]
        sides.append(",".join(str(v) for v in [key, max(r["flowEndSeconds"] for r in recs)] + end +
                              side_tot[0] + side_tot[1] + side_sum[0] + side_sum[1]))
        for o in objs:
            exporters.append(f"{key},{o['exporter']},{o['domain']}")
    write(dirname, "expect_counters.csv", counters)
    write(dirname, "expect_identity.csv", identity)
    write(dirname, "expect_sides.csv", sides)
    write(dirname, "expect_exporters.csv", set(exporters))


def got(path, dirname):
    """What the aggregator exported, per flow."""
    flows = by_flow(load(path, "record"))
    sums, last, identity, sides, exporters, thr_bad = [], [], set(), [], set(), []
    for key, objs in flows.items():
        recs = [o["fields"] for o in objs]
        sums.append(",".join([key] + [str(sum(v)) for v in zip(*(deltas(r) for r in recs))]))
        final = recs[-1]
        last.append(",".join([key] + [str(v) for v in totals(final)]))
        for r in recs:
            identity.add(identity_line(key, r["flowStartSeconds"], r["flowEndReason"],
                                       r["flowType"], r, r, cluster_ip(r), r["tcpState"]))
            exp4, exp6 = r["originalExporterIPv4Address"], r.get("originalExporterIPv6Address", "::")
            exporter = exp4 if not ipaddress.ip_address(exp4).is_unspecified else exp6
            exporters.add(f"{key},{exporter},{r['originalObservationDomainId']}")
            for common, a, b in (("throughput", "throughputFromSourceNode",
                                  "throughputFromDestinationNode"),
                                 ("reverseThroughput", "reverseThroughputFromSourceNode",
                                  "reverseThroughputFromDestinationNode")):
                if r[common] not in (r[a], r[b]):
                    thr_bad.append(f"{key},{common}={r[common]},{a}={r[a]},{b}={r[b]}")

        def side(r, which):
            return [r[f"{c}{which}"] for c in ("packetTotalCount", "octetTotalCount",
                                               "reversePacketTotalCount", "reverseOctetTotalCount")]

        def side_sum(which):
            return [sum(r[f"{c}{which}"] for r in recs)
                    for c in ("packetDeltaCount", "octetDeltaCount", "reversePacketDeltaCount",
                              "reverseOctetDeltaCount")]

        sides.append(",".join(str(v) for v in [key, final["flowEndSeconds"],
                                               final["flowEndSecondsFromSourceNode"],
                                               final["flowEndSecondsFromDestinationNode"]] +
                              side(final, "FromSourceNode") + side(final, "FromDestinationNode") +
                              side_sum("FromSourceNode") + side_sum("FromDestinationNode")))
    write(dirname, "got_sums.csv", sums)
    write(dirname, "got_last.csv", last)
    write(dirname, "got_identity.csv", identity)
    write(dirname, "got_sides.csv", sides)
    write(dirname, "got_exporters.csv", exporters)
    write(dirname, "got_throughput_bad.csv", thr_bad)


def nfdump(path):
    with open(path) as f:
        rows = json.load(f)
    flows = {}
    for r in rows:
        if r.get("type") != "FLOW":
            continue
        src = r.get("src4_addr") or r.get("src6_addr")
        dst = r.get("dst4_addr") or r.get("dst6_addr")
        key = ",".join(str(x) for x in (ipaddress.ip_address(src), ipaddress.ip_address(dst),
                                        r["proto"], r["src_port"], r["dst_port"]))
        acc = flows.setdefault(key, [0, 0, 0, 0])
        for i, n in enumerate(("in_packets", "in_bytes", "out_packets", "out_bytes")):
            acc[i] += int(r.get(n, 0))
    for key in sorted(flows):
        print(",".join([key] + [str(v) for v in flows[key]]))


# ---- templates and sequence numbers ----------------------------------------------


def spec_template(v6):
    """The aggregated template of SPEC 2 (pod labels off), as (pen, ie, length)."""
    s, u8, u16, u32, u64 = 65535, 1, 2, 4, 8
    a = ANTREA_PEN
    t = [(0, 150, u32), (0, 151, u32), (0, 136, u8), (0, 7, u16), (0, 11, u16), (0, 4, u8),
         (0, 86, u64), (0, 85, u64), (0, 2, u64), (0, 1, u64)]
    t += [(0, 27, 16), (0, 28, 16)] if v6 else [(0, 8, 4), (0, 12, 4)]
    t += [(REVERSE_PEN, ie, u64) for ie in (86, 85, 2, 1)]
    t += [(a, 101, s), (a, 100, s), (a, 104, s), (a, 103, s), (a, 102, s), (a, 105, s),
          (a, 108, u16), (a, 109, s), (a, 110, s), (a, 111, s), (a, 115, u8), (a, 141, s),
          (a, 139, u8), (a, 112, s), (a, 113, s), (a, 118, u8), (a, 142, s), (a, 140, u8),
          (a, 136, s), (a, 137, u8), (a, 107, 16) if v6 else (a, 106, 4)]
    t += [(a, ie, u64) for ie in range(120, 136)]
    t += [(a, 151, u32), (a, 152, u32)]
    t += [(a, ie, u64) for ie in (145, 147, 148, 146, 149, 150)]
    t += [(0, 403, 4), (0, 404, 16), (0, 405, 4)]
    return t


def template_line(fields):
    v6 = any(pen == 0 and ie == 27 for pen, ie, _ in fields)
    return ("ipv6 " if v6 else "ipv4 ") + " ".join(f"{p}/{i}/{n}" for p, i, n in fields)


def templates(path):
    seen = set()
    for obj in load(path, "template"):
        line = template_line(obj["fields"])
        if line not in seen:
            seen.add(line)
            print(line)


def spec_templates():
    print(template_line(spec_template(False)))
    print(template_line(spec_template(True)))


def sequence(path):
    """RFC 7011: a message's sequence number is the number of data records
    the domain sent before it."""
    sent = {}
    for obj in load(path, "message"):
        k = (obj["exporter"], obj["domain"])
        want = sent.get(k, obj["sequence"])  # the first message sets the base
        if obj["sequence"] != want:
            print(f"frame {obj['frame']}: sequence {obj['sequence']}, expected {want}")
        sent[k] = (want if k in sent else obj["sequence"]) + obj["records"]


def main(argv):
    cmds = {"decode": (decode, 1), "expect": (expect, 2), "got": (got, 2), "nfdump": (nfdump, 1),
            "templates": (templates, 1), "spec-templates": (spec_templates, 0),
            "sequence": (sequence, 1)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        die("usage: see the docstring")
    cmds[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
