#!/usr/bin/env python3
"""Writes the flowvis Grafana dashboards (dashboards/*.json) from one source.

    python3 deploy/grafana/build_dashboards.py          # rewrite the JSON files
    python3 deploy/grafana/build_dashboards.py --check  # exit 1 if they differ

The six dashboards read the ClickHouse tables that the aggregator creates
(`flows` and the views `flows_pod_view`, `flows_node_view`,
`flows_policy_view`; see docs/storage.md) through the
grafana-clickhouse-datasource plugin. The SQL lives here, readable, with
the filters every dashboard shares written once; the JSON files are what
Grafana loads. Edit this file, run it, commit both: the integration test
(tests/integration/test_grafana_dashboards.sh) fails when they differ, and
runs every query below against a real ClickHouse.

Rules the SQL keeps (docs/grafana.md says why):
  - it runs on ClickHouse 18.16 (Debian 12) and on current releases, so no
    toStartOfInterval (18.16 lacks it, hence no $__timeInterval), no
    WITH FILL, no LowCardinality/DateTime64 casts;
  - only the plugin's macros $__timeFilter(col), $__fromTime, $__toTime
    and $__interval_s, and the dashboard's variables as
    ${name:singlequote};
  - a multi-value variable with "All" selected expands to '__all__' (its
    custom all value), which every filter accepts: hasAny([col..., '__all__'],
    [${name:singlequote}]) is true for All, and otherwise true when a
    column holds one of the selected values. Rows with an empty column
    (an external address has no Namespace) are not lost under All;
  - the views are SummingMergeTree tables whose rows merge in the
    background, so every query over them sums and groups;
  - every query orders its rows completely, so that its answer is one
    exact text for the test.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "dashboards")

DS_TYPE = "grafana-clickhouse-datasource"
DS = {"type": DS_TYPE, "uid": "${datasource}"}
ALL_VALUE = "'__all__'"

# ---- Shared SQL --------------------------------------------------------------

# The start of the bucket of $__interval_s seconds that holds flowEndSeconds
# (what $__timeInterval(flowEndSeconds) gives on servers that have
# toStartOfInterval).
BUCKET = "toDateTime(intDiv(toUInt32(flowEndSeconds), $__interval_s) * $__interval_s)"
NS_FILTER = ("hasAny([sourcePodNamespace, destinationPodNamespace, '__all__'], "
             "[${namespace:singlequote}])")
NODE_FILTER = "hasAny([sourceNodeName, destinationNodeName, '__all__'], [${node:singlequote}])"
FLOW_TYPE = ("multiIf(flowType = 1, 'Intra-Node', flowType = 2, 'Inter-Node', "
             "flowType = 3, 'To External', flowType = 4, 'From External', 'Unknown')")
PROTOCOL = ("multiIf(protocolIdentifier = 6, 'TCP', protocolIdentifier = 17, 'UDP', "
            "protocolIdentifier = 132, 'SCTP', protocolIdentifier = 1, 'ICMP', "
            "protocolIdentifier = 58, 'ICMPv6', toString(protocolIdentifier))")
FIVE_TUPLE = ("sourceIP, destinationIP, sourceTransportPort, destinationTransportPort, "
              "protocolIdentifier")
SRC_POD = "concat(sourcePodNamespace, '/', sourcePodName)"
SUMS = "sum(octetDeltaCount) AS bytes,\n    sum(reverseOctetDeltaCount) AS reverseBytes"
DST_POD = "concat(destinationPodNamespace, '/', destinationPodName)"


def action(col):
    """The text of a NetworkPolicy rule action (ingress or egress)."""
    return f"multiIf({col} = 1, 'Allow', {col} = 2, 'Drop', {col} = 3, 'Reject', '')"


IN_ACT, EG_ACT = "ingressNetworkPolicyRuleAction", "egressNetworkPolicyRuleAction"
# What happened to a flow: a Reject or Drop on either side wins over Allow.
FLOW_ACTION = (f"multiIf({IN_ACT} = 3 OR {EG_ACT} = 3, 'Reject', "
               f"{IN_ACT} = 2 OR {EG_ACT} = 2, 'Drop', "
               f"{IN_ACT} = 1 OR {EG_ACT} = 1, 'Allow', 'None')")
DENIED = f"({IN_ACT} IN (2, 3) OR {EG_ACT} IN (2, 3))"
UNDER_POLICY = f"({IN_ACT} != 0 OR {EG_ACT} != 0)"
EG_POLICY = ("if(egressNetworkPolicyName = '', '(no egress policy)', "
             "concat(egressNetworkPolicyNamespace, '/', egressNetworkPolicyName))")
IN_POLICY = ("if(ingressNetworkPolicyName = '', '(no ingress policy)', "
             "concat(ingressNetworkPolicyNamespace, '/', ingressNetworkPolicyName))")


def where(*conds):
    return "WHERE $__timeFilter(flowEndSeconds)\n  AND " + "\n  AND ".join(conds)


def series(label_expr, value_expr, table, conds):
    """A time series in the plugin's long format: time, one label, one value."""
    return (f"SELECT\n    {BUCKET} AS time,\n    {label_expr} AS label,\n"
            f"    {value_expr} * 8 / $__interval_s AS bps\nFROM {table}\n{where(*conds)}\n"
            "GROUP BY time, label\nORDER BY time, label")


def bytes_by(cols, table, conds, both=True):
    """Bytes (and reverse bytes) grouped by cols [(expr, alias)], largest first."""
    sel = ",\n    ".join(f"{e} AS {a}" for e, a in cols)
    names = ", ".join(a for _, a in cols)
    if both:
        sums = SUMS
    else:
        sums = "sum(octetDeltaCount + reverseOctetDeltaCount) AS bytes"
    return (f"SELECT\n    {sel},\n    {sums}\nFROM {table}\n{where(*conds)}\n"
            f"GROUP BY {names}\nORDER BY bytes DESC, {names}")


def variable_query(cols, table):
    """The values of a variable: the distinct non-empty values of cols."""
    return (f"SELECT DISTINCT value FROM (\n    SELECT arrayJoin([{', '.join(cols)}]) AS value\n"
            f"    FROM {table}\n    WHERE $__timeFilter(flowEndSeconds)\n)\n"
            "WHERE value != ''\nORDER BY value")


# ---- Panels ------------------------------------------------------------------

TABLE, SERIES, PIE, STAT = "table", "timeseries", "piechart", "stat"

BYTES_OVERRIDE = {"matcher": {"id": "byRegexp", "options": "/^(bytes|reverseBytes)$/"},
                  "properties": [{"id": "unit", "value": "decbytes"}]}


def panel(kind, title, description, sql, w, h, **opt):
    return dict(kind=kind, title=title, description=description, sql=sql, w=w, h=h, **opt)


def render_panel(p, pid, grid):
    kind = p["kind"]
    target = {"refId": "A", "datasource": DS, "editorType": "sql",
              "format": 0 if kind == SERIES else 1,
              "queryType": "timeseries" if kind == SERIES else "table",
              "rawSql": p["sql"]}
    out = {"id": pid, "type": kind, "title": p["title"], "description": p["description"],
           "datasource": DS, "gridPos": grid, "targets": [target]}
    defaults = {}
    overrides = []
    options = {}
    if kind == TABLE:
        defaults = {"custom": {"align": "auto", "filterable": True,
                               "cellOptions": {"type": "auto"}}}
        overrides = [BYTES_OVERRIDE]
        if p.get("gauge"):
            overrides = [{"matcher": BYTES_OVERRIDE["matcher"],
                          "properties": [{"id": "unit", "value": "decbytes"},
                                         {"id": "custom.cellOptions",
                                          "value": {"type": "gauge", "mode": "basic"}}]}]
        options = {"showHeader": True, "cellHeight": "sm",
                   "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
        if p.get("sort"):
            options["sortBy"] = [{"displayName": p["sort"], "desc": True}]
    elif kind == SERIES:
        # Buckets shorter than the aggregator's export period
        # (activeFlowRecordTimeout, 60 s by default) would show its rhythm,
        # not the traffic's: one bucket gets a minute's bytes, the next none.
        out["interval"] = "1m"
        bars = p.get("bars", False)
        defaults = {"unit": p.get("unit", "bps"), "min": 0,
                    "displayName": "${__field.labels.label}",
                    "custom": {"drawStyle": "bars" if bars else "line",
                               "lineWidth": 1, "fillOpacity": 80 if bars else 10,
                               "showPoints": "always", "pointSize": 4, "spanNulls": False,
                               "stacking": {"mode": "normal" if bars else "none",
                                            "group": "A"}}}
        options = {"legend": {"displayMode": "table", "placement": "right",
                              "calcs": ["mean", "max"], "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == PIE:
        defaults = {"unit": "decbytes"}
        options = {"pieType": "pie",
                   "reduceOptions": {"values": True, "calcs": ["lastNotNull"], "fields": ""},
                   "legend": {"displayMode": "table", "placement": "right",
                              "values": ["value", "percent"], "showLegend": True},
                   "tooltip": {"mode": "single", "sort": "none"}}
    elif kind == STAT:
        defaults = {"unit": p.get("unit", "short")}
        options = {"reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
                   "colorMode": "none", "graphMode": "none", "textMode": "value_and_name",
                   "justifyMode": "auto", "orientation": "auto"}
    out["fieldConfig"] = {"defaults": defaults, "overrides": overrides}
    out["options"] = options
    return out


def layout(panels):
    """Left to right, top to bottom, 24 columns: gridPos for each panel."""
    x = y = row_h = 0
    grids = []
    for p in panels:
        if x + p["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        grids.append({"h": p["h"], "w": p["w"], "x": x, "y": y})
        x += p["w"]
        row_h = max(row_h, p["h"])
    return grids


# ---- Variables ---------------------------------------------------------------

def datasource_var():
    return {"name": "datasource", "label": "ClickHouse", "type": "datasource",
            "query": DS_TYPE, "current": {}, "hide": 0, "refresh": 1, "regex": "",
            "options": [], "includeAll": False, "multi": False}


def query_var(name, label, sql):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "definition": sql, "query": sql, "refresh": 2, "sort": 1, "hide": 0,
            "regex": "", "includeAll": True, "multi": True, "allValue": ALL_VALUE,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": []}


NAMESPACE_VAR = query_var("namespace", "Namespace",
                          variable_query(["sourcePodNamespace", "destinationPodNamespace"],
                                         "flows"))
NODE_VAR = query_var("node", "Node",
                     variable_query(["sourceNodeName", "destinationNodeName"], "flows"))


# ---- The dashboards ----------------------------------------------------------

def flow_records():
    conds = [NS_FILTER, NODE_FILTER]
    w = where(*conds)
    return [
        panel(STAT, "Flow records", "Rows of `flows` whose flowEndSeconds is in the range.",
              f"SELECT count() AS records\nFROM flows\n{w}", 6, 4),
        panel(STAT, "Flows", "Distinct connections (5-tuples) among those records.",
              f"SELECT uniqExact({FIVE_TUPLE}) AS flows\nFROM flows\n{w}", 6, 4),
        panel(STAT, "Bytes", "Bytes of those records, both directions (sum of the deltas).",
              f"SELECT sum(octetDeltaCount + reverseOctetDeltaCount) AS bytes\nFROM flows\n{w}",
              6, 4, unit="decbytes"),
        panel(STAT, "Packets", "Packets of those records, both directions.",
              f"SELECT sum(packetDeltaCount + reversePacketDeltaCount) AS packets\n"
              f"FROM flows\n{w}", 6, 4),
        panel(SERIES, "Flow records by flow type",
              "Records per interval (by flowEndSeconds), by flowType.",
              f"SELECT\n    {BUCKET} AS time,\n    {FLOW_TYPE} AS label,\n    count() AS records\n"
              f"FROM flows\n{w}\nGROUP BY time, label\nORDER BY time, label",
              24, 8, bars=True, unit="short"),
        panel(TABLE, "Flow records",
              "The latest 1000 records, newest first. Every column can be filtered "
              "(the funnel in its header).",
              "SELECT\n    flowStartSeconds,\n    flowEndSeconds,\n"
              f"    {FLOW_TYPE} AS type,\n"
              "    sourcePodNamespace,\n    sourcePodName,\n    sourceNodeName,\n"
              "    sourceIP,\n    sourceTransportPort,\n"
              "    destinationPodNamespace,\n    destinationPodName,\n    destinationNodeName,\n"
              "    destinationIP,\n    destinationTransportPort,\n"
              f"    {PROTOCOL} AS protocol,\n"
              "    destinationServicePortName,\n    destinationClusterIP,\n"
              "    packetDeltaCount,\n    octetDeltaCount,\n"
              "    reversePacketDeltaCount,\n    reverseOctetDeltaCount,\n"
              "    throughput,\n    reverseThroughput,\n    tcpState,\n    flowEndReason,\n"
              "    ingressNetworkPolicyNamespace,\n    ingressNetworkPolicyName,\n"
              "    ingressNetworkPolicyRuleName,\n"
              f"    {action(IN_ACT)} AS ingressAction,\n"
              "    egressNetworkPolicyNamespace,\n    egressNetworkPolicyName,\n"
              "    egressNetworkPolicyRuleName,\n"
              f"    {action(EG_ACT)} AS egressAction\n"
              f"FROM flows\n{w}\n"
              f"ORDER BY flowEndSeconds DESC, {FIVE_TUPLE}\nLIMIT 1000",
              24, 14),
    ]


def pod_to_pod():
    conds = ["flowType IN (1, 2)", NS_FILTER]
    v = "flows_pod_view"
    both = "sum(octetDeltaCount + reverseOctetDeltaCount)"
    return [
        panel(TABLE, "Bytes by source Pod → destination Pod",
              "Bytes sent by the source (bytes) and answered by the destination "
              "(reverseBytes). The columns source, destination, bytes are what a Sankey "
              "panel takes.",
              bytes_by([(SRC_POD, "source"), (DST_POD, "destination")], v, conds),
              12, 10, gauge=True),
        panel(PIE, "Bytes by source Namespace", "Both directions.",
              bytes_by([("sourcePodNamespace", "namespace")], v, conds, both=False), 6, 10),
        panel(PIE, "Bytes by destination Namespace", "Both directions.",
              bytes_by([("destinationPodNamespace", "namespace")], v, conds, both=False),
              6, 10),
        panel(SERIES, "Throughput by Pod pair",
              "Bits per second, both directions, per source → destination Pod.",
              series(f"concat({SRC_POD}, ' → ', {DST_POD})", both, v, conds), 24, 9),
        panel(SERIES, "Throughput by source Pod", "Bits per second of the Pod's "
              "outgoing connections, both directions.",
              series(SRC_POD, both, v, conds), 12, 9),
        panel(SERIES, "Throughput by destination Pod", "Bits per second of the Pod's "
              "incoming connections, both directions.",
              series(DST_POD, both, v, conds), 12, 9),
    ]


def pod_to_external():
    conds = ["flowType = 3", NS_FILTER]
    v = "flows_pod_view"
    both = "sum(octetDeltaCount + reverseOctetDeltaCount)"
    in_conds = ["flowType = 4", NS_FILTER]
    return [
        panel(TABLE, "Bytes by source Pod → external address",
              "Bytes sent to the address (bytes) and received from it (reverseBytes).",
              bytes_by([(SRC_POD, "source"), ("destinationIP", "destination")], v, conds),
              12, 10, gauge=True),
        panel(PIE, "Bytes by source Namespace", "Both directions.",
              bytes_by([("sourcePodNamespace", "namespace")], v, conds, both=False), 6, 10),
        panel(PIE, "Bytes by external address", "Both directions.",
              bytes_by([("destinationIP", "address")], v, conds, both=False), 6, 10),
        panel(SERIES, "Throughput by Pod → external address",
              "Bits per second, both directions.",
              series(f"concat({SRC_POD}, ' → ', destinationIP)", both, v, conds), 12, 9),
        panel(SERIES, "Throughput by source Pod", "Bits per second, both directions.",
              series(SRC_POD, both, v, conds), 12, 9),
        panel(TABLE, "From external addresses to Pods",
              "Connections opened from outside the cluster (flowType 4).",
              "SELECT\n    sourceIP AS source,\n"
              f"    {DST_POD} AS destination,\n    destinationTransportPort AS port,\n"
              f"    uniqExact({FIVE_TUPLE}) AS flows,\n"
              f"    {SUMS}\n"
              f"FROM flows\n{where(*in_conds)}\n"
              "GROUP BY source, destination, port\n"
              "ORDER BY bytes DESC, source, destination, port",
              24, 8),
    ]


def pod_to_service():
    conds = ["destinationServicePortName != ''", NS_FILTER]
    v = "flows_pod_view"
    both = "sum(octetDeltaCount + reverseOctetDeltaCount)"
    return [
        panel(TABLE, "Bytes by source Pod → Service",
              "Bytes sent to the Service port (bytes) and answered (reverseBytes).",
              bytes_by([(SRC_POD, "source"), ("destinationServicePortName", "service")],
                       v, conds), 12, 10, gauge=True),
        panel(PIE, "Bytes by Service", "Both directions.",
              bytes_by([("destinationServicePortName", "service")], v, conds, both=False),
              6, 10),
        panel(PIE, "Bytes by source Namespace", "Both directions.",
              bytes_by([("sourcePodNamespace", "namespace")], v, conds, both=False), 6, 10),
        panel(SERIES, "Throughput by Service", "Bits per second, both directions.",
              series("destinationServicePortName", both, v, conds), 12, 9),
        panel(SERIES, "Throughput by source Pod → Service", "Bits per second, both directions.",
              series(f"concat({SRC_POD}, ' → ', destinationServicePortName)", both, v, conds),
              12, 9),
        panel(TABLE, "Service backends",
              "Which Pods served each Service port, at which ClusterIP.",
              "SELECT\n    destinationServicePortName AS service,\n"
              "    concat(destinationClusterIP, ':', toString(destinationServicePort)) "
              "AS clusterIP,\n"
              f"    {DST_POD} AS backend,\n"
              "    concat(destinationIP, ':', toString(destinationTransportPort)) AS endpoint,\n"
              f"    uniqExact({FIVE_TUPLE}) AS flows,\n"
              f"    {SUMS}\n"
              f"FROM flows\n{where(*conds)}\n"
              "GROUP BY service, clusterIP, backend, endpoint\n"
              "ORDER BY service, clusterIP, backend, endpoint",
              24, 8),
    ]


def node_to_node():
    conds = ["sourceNodeName != ''", "destinationNodeName != ''", NODE_FILTER, NS_FILTER]
    v = "flows_node_view"
    both = "sum(octetDeltaCount + reverseOctetDeltaCount)"

    def per_node(pairs, title, description):
        # Each row counts for two Nodes: unfold it into (node, bytes) pairs, then
        # keep the selected Nodes.
        sql = (f"SELECT\n    {BUCKET} AS time,\n    tupleElement(t, 1) AS label,\n"
               "    sum(tupleElement(t, 2)) * 8 / $__interval_s AS bps\n"
               f"FROM (\n    SELECT flowEndSeconds, arrayJoin([{pairs}]) AS t\n    FROM {v}\n"
               f"    {where(*conds[:2], NS_FILTER)}\n)\n"
               "WHERE hasAny([tupleElement(t, 1), '__all__'], [${node:singlequote}])\n"
               "GROUP BY time, label\nORDER BY time, label")
        sql = sql.replace("\n  AND", "\n      AND")
        return panel(SERIES, title, description, sql, 12, 9)

    return [
        panel(TABLE, "Bytes by source Node → destination Node",
              "Pod traffic between Nodes (and within one: intra-Node), both directions "
              "separately.",
              bytes_by([("sourceNodeName", "source"), ("destinationNodeName", "destination")],
                       v, conds), 12, 10, gauge=True),
        panel(PIE, "Intra-Node and inter-Node bytes", "Both directions.",
              bytes_by([("if(sourceNodeName = destinationNodeName, 'Intra-Node', "
                         "'Inter-Node')", "kind")], v, conds, both=False), 6, 10),
        panel(PIE, "Bytes by source Node", "Both directions.",
              bytes_by([("sourceNodeName", "node")], v, conds, both=False), 6, 10),
        panel(SERIES, "Throughput by Node pair", "Bits per second, both directions.",
              series("concat(sourceNodeName, ' → ', destinationNodeName)", both, v, conds),
              24, 9),
        per_node("(sourceNodeName, octetDeltaCount), "
                 "(destinationNodeName, reverseOctetDeltaCount)",
                 "Traffic sent by Node",
                 "Bits per second that the Node's Pods sent: requests of their outgoing "
                 "connections, answers of their incoming ones."),
        per_node("(sourceNodeName, reverseOctetDeltaCount), "
                 "(destinationNodeName, octetDeltaCount)",
                 "Traffic received by Node",
                 "Bits per second that the Node's Pods received."),
    ]


def network_policy():
    conds = [NS_FILTER]
    v = "flows_policy_view"
    five = FIVE_TUPLE

    def policy_table(side, title):
        name = f"{side}NetworkPolicy"
        decided = f"({name}Name != '' OR {name}RuleAction != 0)"
        sql = (f"SELECT\n    {name}Namespace AS namespace,\n    {name}Name AS policy,\n"
               f"    {name}RuleName AS rule,\n    {action(name + 'RuleAction')} AS action,\n"
               f"    uniqExact({five}) AS flows,\n"
               f"    {SUMS}\n"
               f"FROM flows\n{where(decided, *conds)}\n"
               "GROUP BY namespace, policy, rule, action\n"
               "ORDER BY flows DESC, namespace, policy, rule, action")
        return panel(TABLE, title, f"Flows that an {side} rule decided, per policy, rule "
                     "and action.", sql, 12, 8)

    return [
        panel(STAT, "Flows by policy action",
              "Distinct connections allowed by a policy rule, dropped, or rejected "
              "(a Drop or Reject on either side wins).",
              f"SELECT\n    uniqExactIf({five}, {FLOW_ACTION} = 'Allow') AS allowed,\n"
              f"    uniqExactIf({five}, {FLOW_ACTION} = 'Drop') AS dropped,\n"
              f"    uniqExactIf({five}, {FLOW_ACTION} = 'Reject') AS rejected\n"
              f"FROM flows\n{where(*conds)}", 12, 5),
        panel(PIE, "Bytes by rule action", "Both directions, flows under a policy.",
              bytes_by([(FLOW_ACTION, "action")], v, [UNDER_POLICY, *conds], both=False),
              12, 5),
        policy_table("ingress", "Ingress policies"),
        policy_table("egress", "Egress policies"),
        panel(TABLE, "Egress policy → ingress policy",
              "Bytes between the policy that let a flow leave its Pod and the one that "
              "let it in (or stopped it); the columns a Sankey panel takes.",
              bytes_by([(EG_POLICY, "source"), (IN_POLICY, "destination"),
                        (FLOW_ACTION, "action")], v, [UNDER_POLICY, *conds]),
              24, 8, gauge=True),
        panel(SERIES, "Denied flow records",
              "Records of flows that a rule dropped or rejected, per interval.",
              f"SELECT\n    {BUCKET} AS time,\n    {FLOW_ACTION} AS label,\n"
              "    count() AS records\n"
              f"FROM flows\n{where(DENIED, *conds)}\nGROUP BY time, label\nORDER BY time, label",
              12, 9, bars=True, unit="short"),
        panel(SERIES, "Throughput of allowed flows by policy",
              "Bits per second, both directions, of flows a policy allowed, per egress → "
              "ingress policy.",
              series(f"concat({EG_POLICY}, ' → ', {IN_POLICY})",
                     "sum(octetDeltaCount + reverseOctetDeltaCount)", v,
                     [f"{FLOW_ACTION} = 'Allow'", *conds]), 12, 9),
        panel(TABLE, "Denied flows",
              "The latest 1000 records of dropped or rejected flows, newest first.",
              "SELECT\n    flowEndSeconds,\n"
              f"    {SRC_POD} AS source,\n"
              f"    if(destinationPodName = '', destinationIP, {DST_POD}) AS destination,\n"
              "    destinationTransportPort AS port,\n"
              f"    {PROTOCOL} AS protocol,\n"
              f"    {FLOW_ACTION} AS action,\n"
              f"    if({IN_ACT} IN (2, 3), 'Ingress', 'Egress') AS direction,\n"
              f"    if({IN_ACT} IN (2, 3), concat(ingressNetworkPolicyNamespace, '/', "
              "ingressNetworkPolicyName), concat(egressNetworkPolicyNamespace, '/', "
              "egressNetworkPolicyName)) AS policy,\n"
              f"    if({IN_ACT} IN (2, 3), ingressNetworkPolicyRuleName, "
              "egressNetworkPolicyRuleName) AS rule,\n"
              "    packetDeltaCount AS packets,\n    octetDeltaCount AS bytes\n"
              f"FROM flows\n{where(DENIED, *conds)}\n"
              f"ORDER BY flowEndSeconds DESC, {five}\nLIMIT 1000",
              24, 10),
    ]


DASHBOARDS = [
    ("flow-records", "Flow Records", [NAMESPACE_VAR, NODE_VAR], flow_records,
     "Every flow record the aggregator stored, with totals, the records per flow type "
     "and a filterable table of the latest records."),
    ("pod-to-pod", "Pod-to-Pod Flows", [NAMESPACE_VAR], pod_to_pod,
     "Traffic between Pods (flowType 1 and 2, through a Service or not): bytes per Pod "
     "pair, per Namespace, and throughput."),
    ("pod-to-external", "Pod-to-External Flows", [NAMESPACE_VAR], pod_to_external,
     "Traffic from Pods to addresses outside the cluster (flowType 3), and from outside "
     "to Pods (flowType 4)."),
    ("pod-to-service", "Pod-to-Service Flows", [NAMESPACE_VAR], pod_to_service,
     "Traffic from Pods to Services (destinationServicePortName set): per Service, per "
     "client Pod, and the backends that served it."),
    ("node-to-node", "Node-to-Node Flows", [NODE_VAR, NAMESPACE_VAR], node_to_node,
     "Pod traffic aggregated per Node: intra-Node and inter-Node bytes and throughput."),
    ("network-policy", "Network Policy", [NAMESPACE_VAR], network_policy,
     "Flows under NetworkPolicies: per ingress and egress policy and rule action "
     "(Allow, Drop, Reject), and denied flows over time."),
]


def dashboard(slug, title, variables, build, description):
    panels = build()
    grids = layout(panels)
    return {
        "uid": f"flowvis-{slug}",
        "title": f"flowvis / {title}",
        "description": description,
        "tags": ["flowvis"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "refresh": "1m",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["flowvis"], "asDropdown": True,
                   "title": "flowvis dashboards", "includeVars": True, "keepTime": True,
                   "icon": "external link", "targetBlank": False, "tooltip": "", "url": ""}],
        "templating": {"list": [datasource_var()] + variables},
        "panels": [render_panel(p, i + 1, g) for i, (p, g) in enumerate(zip(panels, grids))],
    }


def render_all():
    return {f"{slug}.json": json.dumps(dashboard(slug, *rest), indent=2, ensure_ascii=False)
            + "\n" for slug, *rest in DASHBOARDS}


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] and not check:
        sys.exit("usage: build_dashboards.py [--check]")
    files = render_all()
    stale = []
    for name, text in files.items():
        path = os.path.join(OUT_DIR, name)
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old != text:
            stale.append(name)
            if not check:
                os.makedirs(OUT_DIR, exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    extra = sorted(set(os.listdir(OUT_DIR)) - set(files)) if os.path.isdir(OUT_DIR) else []
    if check:
        if stale or extra:
            print("deploy/grafana/dashboards differs from build_dashboards.py: "
                  f"out of date: {stale or 'none'}; not generated: {extra or 'none'}. "
                  "Run python3 deploy/grafana/build_dashboards.py", file=sys.stderr)
            sys.exit(1)
        return
    for name in stale:
        print(f"wrote dashboards/{name}")


if __name__ == "__main__":
    main()
