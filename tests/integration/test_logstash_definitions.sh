#!/usr/bin/env bash
# The Logstash pipeline (deploy/logstash) matches flowvis:
#   - ipfix-56506.yaml, the netflow codec's ipfix_definitions, defines
#     exactly the elements of flowvis's own registry under PEN 56506 (read
#     by a small program linked against libflowvis.a), with the same ids,
#     names and the codec's type for each abstract type, and nothing else
#     (the codec merges the file per enterprise number: a 0 or 29305 block
#     would replace its built-in IANA and reverse elements);
#   - flowvis.conf points the netflow codec at that file, listens where the
#     docs say (IPFIX 4739/udp, JSON lines 4736/tcp), and names only
#     elements that exist;
#   - what the json_lines input reads: real lines from `flowvis
#     aggregator` (flowCollector.recordFormat JSON over TCP, fed by `flowvis
#     generate`) are one JSON object each, with an RFC 3339 "@timestamp" and
#     an "ipfix" object whose keys are all registry names, with dateTimeSeconds
#     elements as integers (the pipeline's date filters read them as UNIX).
# Logstash itself is not in Debian and is not run here.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_cmd cc python3 ss
python3 -c 'import yaml' 2>/dev/null || fv_skip "missing python3-yaml (install with: scripts/deps.sh test)"
fv_require_flowvis
LIB=$(dirname "$FLOWVIS")/libflowvis.a
[[ -f $LIB ]] || fv_fatal "$LIB not found (run make first)"

LOGSTASH=$FV_ROOT/deploy/logstash
YAML=$LOGSTASH/ipfix-56506.yaml
CONF=$LOGSTASH/flowvis.conf

# ---------------------------------------------------------------------------
# The registry, as flowvis has it: "pen id name abstractType" per element.
# ---------------------------------------------------------------------------
cat >"$FV_TMP/ie_dump.c" <<'EOF'
#include <stdio.h>

#include "ipfix/ie.h"

static void print_ie(const struct fv_ie *ie, void *arg)
{
    (void)arg;
    printf("%u %u %s %s\n", (unsigned)ie->pen, (unsigned)ie->id, ie->name,
           fv_ie_type_name(ie->type));
}

int main(void)
{
    fv_ie_foreach(print_ie, NULL);
    return 0;
}
EOF
cc -std=c11 -Wall -Wextra -Werror -I"$FV_ROOT/src" -o "$FV_TMP/ie_dump" "$FV_TMP/ie_dump.c" "$LIB" \
    -lpthread 2>"$FV_TMP/cc.err" || fv_fatal "cannot build the registry dump: $(cat "$FV_TMP/cc.err")"
"$FV_TMP/ie_dump" >"$FV_TMP/registry.txt"
fv_assert_ge 60 "$(awk '$1 == 56506' "$FV_TMP/registry.txt" | wc -l)" "56506 elements in the registry"

# The registry's 56506 elements with the netflow codec's type names.
python3 - "$FV_TMP/registry.txt" >"$FV_TMP/want.txt" <<'EOF'
import sys
codec = {
    "unsigned8": "uint8", "unsigned16": "uint16", "unsigned32": "uint32", "unsigned64": "uint64",
    "signed8": "int8", "signed16": "int16", "signed32": "int32", "signed64": "int64",
    "float32": "float", "float64": "double", "string": "string", "octetArray": "octetarray",
    "ipv4Address": "ip4_addr", "ipv6Address": "ip6_addr", "macAddress": "mac_addr",
    "dateTimeSeconds": "uint32", "dateTimeMilliseconds": "uint64",
}
for line in open(sys.argv[1]):
    pen, ie, name, typ = line.split()
    if pen == "56506":
        print(ie, name, codec.get(typ, f"NO-CODEC-TYPE-FOR-{typ}"))
EOF

# ---------------------------------------------------------------------------
# ipfix-56506.yaml as the codec reads it: {pen: {id: [:type, :name]}}.
# ---------------------------------------------------------------------------
python3 - "$YAML" >"$FV_TMP/got.txt" 2>"$FV_TMP/got.err" <<'EOF' || true
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
if not isinstance(doc, dict) or list(doc) != [56506]:
    sys.exit(f"top-level keys {list(doc) if isinstance(doc, dict) else doc!r}, expected exactly [56506]")
for ie, field in doc[56506].items():
    if not (isinstance(ie, int) and isinstance(field, list) and len(field) == 2
            and all(isinstance(f, str) and f.startswith(":") for f in field)):
        sys.exit(f"56506/{ie}: {field!r} is not [:type, :name]")
    print(ie, field[1][1:], field[0][1:])
EOF
[[ -s $FV_TMP/got.err ]] && fv_fail "$YAML: $(cat "$FV_TMP/got.err")"
fv_assert_same_lines "$FV_TMP/want.txt" "$FV_TMP/got.txt" \
    "56506 elements: the registry (- ) and ipfix-56506.yaml (+)"

# ---------------------------------------------------------------------------
# flowvis.conf: the definitions file, the ports, the element names.
# ---------------------------------------------------------------------------
# shellcheck disable=SC2016 # Logstash's ${NAME:default}, literally
fv_assert_eq 'ipfix_definitions => "${FLOWVIS_IPFIX_DEFINITIONS:/usr/share/logstash/flowvis/ipfix-56506.yaml}"' \
    "$(grep -o 'ipfix_definitions => .*' "$CONF")" "the netflow codec's definitions file"
# shellcheck disable=SC2016 # Logstash's ${NAME:default}, literally
fv_assert_eq 'udp port ${FLOWVIS_IPFIX_PORT:4739} codec netflow
tcp port ${FLOWVIS_JSON_PORT:4736} codec json_lines' "$(awk '
    /^input \{/ { inp = 1; next }
    inp && /^}/ { inp = 0 }
    inp && /^  (udp|tcp) \{/ { kind = $1 }
    inp && /port => / { gsub(/"/, "", $3); port = $3 }
    inp && /codec => / { print kind, "port", port, "codec", $3 }' "$CONF")" "the pipeline's inputs"
grep -o '\[ipfix\]\[[A-Za-z0-9]*\]' "$CONF" | sed 's/\[ipfix\]\[\(.*\)\]/\1/' | sort -u >"$FV_TMP/conf-names.txt"
fv_assert_ge 8 "$(wc -l <"$FV_TMP/conf-names.txt")" "elements flowvis.conf names"
unknown=$(comm -23 "$FV_TMP/conf-names.txt" <(awk '{ print $3 }' "$FV_TMP/registry.txt" | sort -u))
fv_assert_eq "" "$unknown" "elements flowvis.conf names that the registry does not have"

# ---------------------------------------------------------------------------
# Real JSON lines: generate -> aggregator (UDP in, JSON lines out over TCP)
# -> a TCP sink standing in for Logstash's tcp input.
# ---------------------------------------------------------------------------
sink_port=$(fv_free_port "" tcp)
agg_port=$(fv_free_port "" udp)
: >"$FV_TMP/sink.jsonl"
fv_bg sink "" python3 "$FV_HELPERS/json_sink.py" 127.0.0.1 "$sink_port" "$FV_TMP/sink.jsonl" 120
fv_wait_for 10 "the sink to listen on tcp $sink_port" _fv_server_ready sink
cat >"$FV_TMP/agg.yaml" <<EOF
listenAddress: 127.0.0.1:$agg_port
aggregatorTransportProtocol: udp
activeFlowRecordTimeout: 1s
inactiveFlowRecordTimeout: 2s
correlationWait: 2s
apiServer:
  apiPort: 0
sqlite:
  enable: false
flowCollector:
  enable: true
  address: 127.0.0.1:$sink_port:tcp
  recordFormat: JSON
EOF
fv_bg agg "" "$FLOWVIS" aggregator --config "$FV_TMP/agg.yaml"
_agg_listening() {
    fv_alive agg
    fv_port_bound "" udp "$agg_port"
}
fv_wait_for 10 "the aggregator to listen on udp $agg_port" _agg_listening
"$FLOWVIS" generate --target "127.0.0.1:$agg_port:udp" --records 400 --flows 40 --nodes 2 \
    >"$FV_TMP/generate.out" 2>"$FV_TMP/generate.err" || fv_fatal "flowvis generate failed: $(cat "$FV_TMP/generate.err")"
_lines_at_least() {
    fv_alive agg
    [[ $(wc -l <"$FV_TMP/sink.jsonl") -ge $1 ]]
}
fv_wait_for 20 "40 JSON lines from the aggregator" _lines_at_least 40
# Let the inactive flows drain, then stop: the sink keeps what it got.
sleep 3
fv_stop agg TERM 10
fv_assert_eq 0 "$FV_STATUS" "aggregator exit status after SIGTERM"

out=$(python3 - "$FV_TMP/sink.jsonl" "$FV_TMP/registry.txt" <<'EOF'
import json, re, sys
names, types = set(), {}
for line in open(sys.argv[2]):
    pen, ie, name, typ = line.split()
    names.add(name)
    types[name] = typ
problems, n, keys = [], 0, set()
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        rec = json.loads(line)
    except ValueError as e:
        problems.append(f"line {i}: not JSON: {e}")
        continue
    n += 1
    if set(rec) != {"@timestamp", "ipfix"}:
        problems.append(f"line {i}: keys {sorted(rec)}")
        continue
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", rec["@timestamp"]):
        problems.append(f"line {i}: @timestamp {rec['@timestamp']!r} is not RFC 3339")
    for k, v in rec["ipfix"].items():
        keys.add(k)
        if k not in names:
            problems.append(f"line {i}: {k} is not a registry element")
        elif types[k] == "dateTimeSeconds" and not isinstance(v, int):
            problems.append(f"line {i}: {k} = {v!r} is not Unix seconds")
        elif types[k] == "string" and not isinstance(v, str):
            problems.append(f"line {i}: {k} = {v!r} is not a string")
for must in ("flowStartSeconds", "flowEndSeconds", "sourcePodName", "octetDeltaCount",
             "flowEndSecondsFromSourceNode", "throughput"):
    if must not in keys:
        problems.append(f"no record has {must}")
print("\n".join(problems[:20]) if problems else f"ok {n} lines, {len(keys)} elements")
EOF
)
if [[ $out == ok* ]]; then
    fv_log "ok: the aggregator's JSON lines fit the json_lines input (${out#ok })"
else
    fv_fail "the aggregator's JSON lines:
$out"
fi
