"""The flow records that test_grafana_dashboards.sh sends to the aggregator.

A small cluster of two Nodes (node-a: 10.10.1.0/24, node-b: 10.10.2.0/24)
and four Namespaces (frontend, backend, batch, kube-system), seen through a
ten-minute window, WINDOW_FROM to WINDOW_TO (2024-03-01 10:00 to 10:10
UTC). Every record is what an agent would send (template 256, IPv4), with
fixed times, so that the rows the aggregator writes to ClickHouse, and
every panel's answer, are the same on every run.

    F1  intra-node (1)  frontend/web-1 -> backend/api-1, ingress policy
        backend/allow-frontend (Allow); reported twice: phase 1 ends at
        10:01:10 (active timeout), phase 2 at 10:03:10 (end of flow), so it
        makes two rows in two time buckets
    F2  inter-node (2)  frontend/web-2 (node-b) -> backend/api-1 (node-a),
        egress frontend/web-egress (Allow) + ingress backend/allow-frontend
        (Allow); both halves, same counters
    F3  intra-node (1)  batch/job-1 -> Service backend/api:http (ClusterIP
        10.96.0.10:80) -> backend/api-2, egress batch/batch-egress (Allow)
    F4  to-external (3) frontend/web-1 -> 93.184.216.34:443
    F5  from-external (4) 198.51.100.7 -> backend/api-2:8080 (a NodePort)
    F6  inter-node (2)  batch/job-1 -> backend/api-1, dropped by ingress
        policy backend/default-deny (Drop); both halves, no reverse traffic
    F7  to-external (3) frontend/web-1 -> 203.0.113.9:25, rejected by egress
        policy frontend/deny-external rule deny-smtp (Reject)
    F8  intra-node (1)  batch/job-2 -> kube-system/coredns-1, UDP 53
    F11 inter-node (2)  frontend/web-1 (node-a) -> Service kube-system/kube-dns:dns
        (10.96.0.53:53, UDP) -> kube-system/coredns-1 (node-b); both halves, the
        Service known to the source Node only
    F12 to-external (3) batch/job-2 -> 151.101.0.223:443, egress policy
        batch/batch-egress rule allow-https (Allow)
    F9  intra-node, before the window (ends 09:59:00): in no panel
    F10 intra-node, after the window (ends 10:11:00): in no panel

Byte counts are multiples of 15, so that bits per second over a 60 s
bucket (bytes * 8 / 60) are whole numbers in every panel.
"""

T0 = 1709287200  # 2024-03-01 10:00:00 UTC
WINDOW_FROM = T0
WINDOW_TO = T0 + 600
INTERVAL_S = 60

# Exporters: one per Node, as the agents are (bound address, domain).
NODES = {"node-a": ("127.0.1.1", 1), "node-b": ("127.0.1.2", 2)}

TCP, UDP = 6, 17
ACTIVE_TIMEOUT, END_OF_FLOW = 2, 3
ALLOW, DROP, REJECT = 1, 2, 3
K8S_NP, ANTREA_NP = 1, 2

WEB1 = dict(sourcePodName="web-1", sourcePodNamespace="frontend", sourceNodeName="node-a")
WEB2_SRC = dict(sourcePodName="web-2", sourcePodNamespace="frontend", sourceNodeName="node-b")
JOB1 = dict(sourcePodName="job-1", sourcePodNamespace="batch", sourceNodeName="node-b")
JOB2 = dict(sourcePodName="job-2", sourcePodNamespace="batch", sourceNodeName="node-b")
API1 = dict(destinationPodName="api-1", destinationPodNamespace="backend",
            destinationNodeName="node-a")
API2 = dict(destinationPodName="api-2", destinationPodNamespace="backend",
            destinationNodeName="node-b")
COREDNS = dict(destinationPodName="coredns-1", destinationPodNamespace="kube-system",
               destinationNodeName="node-b")
ALLOW_FRONTEND = dict(ingressNetworkPolicyName="allow-frontend",
                      ingressNetworkPolicyNamespace="backend",
                      ingressNetworkPolicyRuleName="allow-web",
                      ingressNetworkPolicyRuleAction=ALLOW, ingressNetworkPolicyType=K8S_NP)


def tuple5(src, sport, dst, dport, proto=TCP):
    return dict(sourceIP=src, sourceTransportPort=sport, destinationIP=dst,
                destinationTransportPort=dport, protocolIdentifier=proto)


def times(start, end, reason=END_OF_FLOW):
    return dict(flowStartSeconds=T0 + start, flowEndSeconds=T0 + end, flowEndReason=reason)


def counts(pkts, octs, rpkts, rocts, delta=None):
    """Totals; the deltas are the totals unless delta = (p, o, rp, ro)."""
    d = delta or (pkts, octs, rpkts, rocts)
    return dict(packetTotalCount=pkts, octetTotalCount=octs, reversePacketTotalCount=rpkts,
                reverseOctetTotalCount=rocts, packetDeltaCount=d[0], octetDeltaCount=d[1],
                reversePacketDeltaCount=d[2], reverseOctetDeltaCount=d[3])


def rec(phase, node, *parts, **fields):
    r = {"phase": phase, "node": node}
    for p in parts:
        r.update(p)
    r.update(fields)
    return r


F1 = tuple5("10.10.1.11", 40001, "10.10.1.21", 8080)
F2 = tuple5("10.10.2.12", 40002, "10.10.1.21", 8080)
F3 = tuple5("10.10.2.31", 40003, "10.10.2.22", 8080)
F4 = tuple5("10.10.1.11", 40004, "93.184.216.34", 443)
F5 = tuple5("198.51.100.7", 51000, "10.10.2.22", 8080)
F6 = tuple5("10.10.2.31", 40006, "10.10.1.21", 8080)
F7 = tuple5("10.10.1.11", 40007, "203.0.113.9", 25)
F8 = tuple5("10.10.2.32", 53000, "10.10.2.53", 53, UDP)
F9 = tuple5("10.10.1.11", 40009, "10.10.1.21", 8080)
F10 = tuple5("10.10.2.32", 40010, "10.10.2.22", 8080)
F11 = tuple5("10.10.1.11", 41000, "10.10.2.53", 53, UDP)
F12 = tuple5("10.10.2.32", 40012, "151.101.0.223", 443)

F2_TIMES, F2_COUNTS = times(100, 220), counts(20, 24000, 25, 36000)
F6_TIMES, F6_COUNTS = times(400, 430), counts(3, 180, 0, 0)
F11_TIMES, F11_COUNTS = times(539, 540), counts(2, 150, 2, 450)

RECORDS = [
    # Phase 1: every flow once.
    rec(1, "node-a", F1, WEB1, API1, ALLOW_FRONTEND, times(10, 70, ACTIVE_TIMEOUT),
        counts(30, 30000, 40, 60000), flowType=1, tcpState="ESTABLISHED"),
    # F2: the source Node's half (egress policy), then the destination's.
    rec(1, "node-b", F2, WEB2_SRC, F2_TIMES, F2_COUNTS, flowType=2, tcpState="TIME_WAIT",
        egressNetworkPolicyName="web-egress", egressNetworkPolicyNamespace="frontend",
        egressNetworkPolicyRuleName="to-backend", egressNetworkPolicyRuleAction=ALLOW,
        egressNetworkPolicyType=ANTREA_NP),
    rec(1, "node-a", F2, API1, ALLOW_FRONTEND, F2_TIMES, F2_COUNTS, flowType=2,
        tcpState="TIME_WAIT"),
    rec(1, "node-b", F3, JOB1, API2, times(130, 250), counts(10, 6000, 12, 18000), flowType=1,
        tcpState="TIME_WAIT", destinationClusterIP="10.96.0.10", destinationServicePort=80,
        destinationServicePortName="backend/api:http",
        egressNetworkPolicyName="batch-egress", egressNetworkPolicyNamespace="batch",
        egressNetworkPolicyRuleName="allow-api", egressNetworkPolicyRuleAction=ALLOW,
        egressNetworkPolicyType=K8S_NP),
    rec(1, "node-a", F4, WEB1, times(20, 320), counts(50, 9000, 60, 120000), flowType=3,
        tcpState="TIME_WAIT"),
    rec(1, "node-b", F5, API2, times(300, 360), counts(8, 1500, 9, 4500), flowType=4,
        tcpState="TIME_WAIT"),
    rec(1, "node-b", F6, JOB1, F6_TIMES, F6_COUNTS, flowType=2, tcpState="SYN_SENT"),
    rec(1, "node-a", F6, API1, F6_TIMES, F6_COUNTS, flowType=2, tcpState="SYN_SENT",
        ingressNetworkPolicyName="default-deny", ingressNetworkPolicyNamespace="backend",
        ingressNetworkPolicyRuleAction=DROP, ingressNetworkPolicyType=K8S_NP),
    rec(1, "node-a", F7, WEB1, times(450, 451), counts(2, 120, 0, 0), flowType=3,
        tcpState="SYN_SENT", egressNetworkPolicyName="deny-external",
        egressNetworkPolicyNamespace="frontend", egressNetworkPolicyRuleName="deny-smtp",
        egressNetworkPolicyRuleAction=REJECT, egressNetworkPolicyType=ANTREA_NP),
    rec(1, "node-b", F8, JOB2, COREDNS, times(500, 530), counts(4, 300, 4, 900), flowType=1),
    rec(1, "node-a", F11, WEB1, F11_TIMES, F11_COUNTS, flowType=2,
        destinationClusterIP="10.96.0.53", destinationServicePort=53,
        destinationServicePortName="kube-system/kube-dns:dns"),
    rec(1, "node-b", F11, COREDNS, F11_TIMES, F11_COUNTS, flowType=2),
    rec(1, "node-b", F12, JOB2, times(540, 570), counts(10, 3000, 35, 45000), flowType=3,
        tcpState="TIME_WAIT", egressNetworkPolicyName="batch-egress",
        egressNetworkPolicyNamespace="batch", egressNetworkPolicyRuleName="allow-https",
        egressNetworkPolicyRuleAction=ALLOW, egressNetworkPolicyType=K8S_NP),
    rec(1, "node-a", F9, WEB1, API1, ALLOW_FRONTEND, times(-200, -60),
        counts(100, 999990, 0, 0), flowType=1, tcpState="TIME_WAIT"),
    rec(1, "node-b", F10, JOB2, API2, times(650, 660), counts(5, 3000, 5, 3000), flowType=1,
        tcpState="TIME_WAIT"),
    # Phase 2, once phase 1 is in ClickHouse: F1 ends.
    rec(2, "node-a", F1, WEB1, API1, ALLOW_FRONTEND, times(10, 190),
        counts(45, 45000, 60, 90000, delta=(15, 15000, 20, 30000)), flowType=1,
        tcpState="TIME_WAIT"),
]

# Records sent and rows the aggregator writes, after each phase (the two
# halves of F2, F6 and F11 make one row each).
RECORDS_AFTER_PHASE = {1: 15, 2: 16}
ROWS_AFTER_PHASE = {1: 12, 2: 13}
