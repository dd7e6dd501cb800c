#!/usr/bin/env bash
# `flowvis agent` on node-1 exports a TCP connection between two Pods of
# node-1 with both Pods' identity and its exact counters.
#
# In the namespace cluster (2 nodes, 3 Pods each), with an agent in node-1
# (1 s poll, 30 s active / 15 s idle timeouts) exporting over TCP to a
# `flowvis collector` in the fabric (172.18.0.1):
#   - shop/frontend (pod 1_1) opens one connection from port 41001 to
#     shop/catalog (pod 1_2) port 8080, sends 12345 bytes, gets 23456 back
#     and closes; the node's conntrack entry ends in TIME_WAIT, whose
#     counters are the truth;
#   - the agent exports the connection exactly once (the end-of-flow
#     export when the poll sees TIME_WAIT; nothing earlier, the timeouts
#     are far away): the sum of its deltas equals its totals, equal to the
#     kernel's counters, themselves payload + 40..60 bytes per packet;
#   - identity: source and destination Pod names and namespaces, both
#     node names node-1, flowType 1 (intra-node), no Service (ClusterIP
#     0.0.0.0, port 0, name ""), tcpState TIME_WAIT, flowEndReason 3,
#     template 256, exporter address node-1's IP, observation domain
#     568266919 (32-bit FNV-1 of "node-1");
#   - metrics: records exported >= records the collector printed,
#     tracked connections >= 1, collector connected, nothing dropped.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../cluster/lib.sh
source "$FV_ROOT/tests/cluster/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl ss
fv_require_flowvis

fv_cluster_up --nodes 2 --pods-per-node 3
COLL=$FV_TMP/coll.out
DOMAIN=$(fva_domain node-1)
fv_assert_eq 568266919 "$DOMAIN" "FNV-1 of node-1 (the test's own computation)"

fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
fva_agent_config "$FV_TMP/agent.yaml" node-1 172.18.0.1:4739:tcp \
    "inventory:" "  file: $FVC_INVENTORY"
fva_agent_start agent "$FVC_NODE_1_NETNS" "$FV_TMP/agent.yaml"
started=$(date +%s)

SPORT=41001 SEND=12345 REPLY=23456
fva_tcp_server srv "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" "$SPORT" "$FVC_POD_1_2_IP4" 8080 "$SEND" "$REPLY"
fva_ct_wait "$FVC_NODE_1_NETNS" TIME_WAIT -p tcp -s "$FVC_POD_1_1_IP4" --sport "$SPORT"
read -r ct_pkts ct_octets ct_rpkts ct_roctets <<<"$(fva_ct_counters "$FVA_CT")"
fv_log "kernel: $FVA_CT"

fva_wait_flow 10 "$COLL" "$DOMAIN" "$SPORT" '.flowEndReason == 3'
# Another poll or two: nothing more may come for this connection.
sleep 2.5
fv_alive agent
ended=$(date +%s)

fv_assert_eq 1 "$(fva_count "$COLL" "$DOMAIN" "$SPORT")" "records of the connection"
totals=$(fva_totals "$COLL" "$DOMAIN" "$SPORT")
fv_assert_eq "$totals" "$(fva_sums "$COLL" "$DOMAIN" "$SPORT")" \
    "sum of deltas (packets octets reverse...) = totals of the last record"
fv_assert_eq "$ct_pkts $ct_octets $ct_rpkts $ct_roctets" "$totals" \
    "totals = the kernel's conntrack counters"
fva_assert_octets "client->server octets for $SEND payload bytes in $ct_pkts packets" \
    "$SEND" "$ct_pkts" "$ct_octets"
fva_assert_octets "server->client octets for $REPLY payload bytes in $ct_rpkts packets" \
    "$REPLY" "$ct_rpkts" "$ct_roctets"

rec=$(fva_final "$COLL" "$DOMAIN" "$SPORT")
fv_log "record: $rec"
fva_assert_fields "intra-node record" "$rec" \
    templateId=256 exporterAddress="$FVC_NODE_1_IP4" \
    sourceIPv4Address="$FVC_POD_1_1_IP4" destinationIPv4Address="$FVC_POD_1_2_IP4" \
    sourceTransportPort="$SPORT" destinationTransportPort=8080 protocolIdentifier=6 \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace="$FVC_POD_1_1_NAMESPACE" \
    sourceNodeName=node-1 \
    destinationPodName="$FVC_POD_1_2_NAME" destinationPodNamespace="$FVC_POD_1_2_NAMESPACE" \
    destinationNodeName=node-1 \
    flowType=1 tcpState=TIME_WAIT flowEndReason=3 \
    destinationClusterIPv4=0.0.0.0 destinationServicePort=0 destinationServicePortName=""
fv_assert_eq "$DOMAIN" "$(jq -r --argjson p "$SPORT" 'select(.ipfix.sourceTransportPort == $p)
    | .observationDomainId' "$COLL")" "observationDomainId"
fv_assert_between "$((started - 2))" "$ended" "$(fva_field "$rec" flowStartSeconds)" \
    "flowStartSeconds (test ran $started..$ended)"
fv_assert_between "$(fva_field "$rec" flowStartSeconds)" "$ended" \
    "$(fva_field "$rec" flowEndSeconds)" "flowEndSeconds"

# --- metrics ---------------------------------------------------------------------
metrics=$(fva_metrics "$FVC_NODE_1_NETNS") || fv_fatal "no metrics from the agent"
metric() { awk -v n="$1" '$1 == n { print $2 }' <<<"$metrics"; }
seen=$(fv_count_json "$COLL" ".observationDomainId == $DOMAIN")
fv_assert_ge "$seen" "$(metric flowvis_agent_records_exported_total)" \
    "flowvis_agent_records_exported_total (collector printed $seen)"
fv_assert_ge 1 "$(metric flowvis_agent_tracked_connections)" "flowvis_agent_tracked_connections"
fv_assert_eq 1 "$(metric flowvis_agent_collector_connected)" "flowvis_agent_collector_connected"
fv_assert_eq 0 "$(metric flowvis_agent_records_dropped_total)" "flowvis_agent_records_dropped_total"
fv_assert_ge 1 "$(metric flowvis_agent_conntrack_total_connections)" \
    "flowvis_agent_conntrack_total_connections"
grep -q '^# TYPE flowvis_agent_records_exported_total counter$' <<<"$metrics" ||
    fv_fail "flowvis_agent_records_exported_total has no '# TYPE ... counter' line"

fv_stop agent TERM 10
fv_assert_eq 0 "$FV_STATUS" "agent exit status after SIGTERM"
