#!/usr/bin/env bash
# `flowvis get` against a stand-in for the aggregator's HTTP API
# (helpers/fake_api.py, canned answers): the filters reach the server
# exactly and URL-escaped, the table and YAML output are exact, -o json is
# the server's data, the bearer token comes from --token-file and
# FLOWVIS_TOKEN, a 400 or 401 shows the server's error text and exits 1, a
# refused connection exits 1 with a clear message, and a bad filter exits 2
# without sending anything.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_flowvis
fv_require_cmd python3 jq openssl

# A proxy from the environment would stand between the CLI and 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
    FLOWVIS_SERVER FLOWVIS_TOKEN

cat >"$FV_TMP/records.json" <<'EOF'
{"count": 4, "truncated": false, "flowrecords": [
 {"flowStartSeconds": 1795262400, "sourceIPv4Address": "10.244.1.5",
  "destinationIPv4Address": "10.244.2.7", "sourceTransportPort": 43210,
  "destinationTransportPort": 8080, "protocolIdentifier": 6, "sourcePodName": "web-0",
  "sourcePodNamespace": "frontend", "destinationPodName": "api-1",
  "destinationPodNamespace": "backend", "destinationServicePortName": "backend/api:http",
  "flowType": 2, "octetTotalCount": 123456, "throughput": 1234.5},
 {"sourceIPv6Address": "fd00:10:244:1::5", "destinationIPv6Address": "2001:db8::10",
  "sourceTransportPort": 53000, "destinationTransportPort": 53, "protocolIdentifier": 17,
  "sourcePodName": "dns-client-7", "sourcePodNamespace": "default", "destinationPodName": "",
  "destinationPodNamespace": "", "destinationServicePortName": "", "flowType": 3,
  "octetTotalCount": 96, "throughput": 0},
 {"sourceIPv6Address": "fd00:10:244:1::5", "destinationIPv6Address": "fd00:10:244:2::9",
  "sourceTransportPort": 0, "destinationTransportPort": 0, "protocolIdentifier": 58,
  "sourcePodName": "probe", "sourcePodNamespace": "monitoring", "destinationPodName": "db-0",
  "destinationPodNamespace": "data", "flowType": 2},
 {"sourceIPv4Address": "192.168.0.11", "destinationIPv4Address": "192.168.0.12",
  "sourceTransportPort": 0, "destinationTransportPort": 0, "protocolIdentifier": 47,
  "flowType": 2}
]}
EOF
cat >"$FV_TMP/metrics.json" <<'EOF'
{"numRecordsExported": 1200, "numRecordsReceived": 2405, "numRecordsDropped": 5,
 "numFlows": 37, "numConnToCollector": 3, "apiVersion": "1.0"}
EOF

# api_start NAME [ARGS...]: start a fixture server logging requests to
# $FV_TMP/NAME.log; sets PORT once it accepts connections.
api_start() {
    local name=$1
    shift
    : >"$FV_TMP/$name.log"
    fv_bg "$name" "" python3 "$FV_HELPERS/fake_api.py" --records "$FV_TMP/records.json" \
        --metrics "$FV_TMP/metrics.json" --log "$FV_TMP/$name.log" --lifetime 80 "$@"
    fv_wait_for 10 "$name to be ready" _fv_server_ready "$name"
    PORT=$(awk '/^ready/ {print $2}' "$FV_TMP/$name.out")
}

# get ARGS...: run flowvis get; sets OUT, ERR and RC.
get() {
    RC=0
    timeout 20 "$FLOWVIS" get "$@" >"$FV_TMP/get.out" 2>"$FV_TMP/get.err" || RC=$?
    OUT=$(cat "$FV_TMP/get.out")
    ERR=$(cat "$FV_TMP/get.err")
}

# The last request the fixture NAME logged, as JSON.
last_request() {
    tail -n 1 "$FV_TMP/$1.log"
}

requests() {
    wc -l <"$FV_TMP/$1.log"
}

api_start api
SERVER=http://127.0.0.1:$PORT

# --- flowrecords: the table, and what the filters turn into -----------------
get flowrecords --server "$SERVER"
fv_assert_eq 0 "$RC" "exit status of get flowrecords"
expected=$(
    cat <<'EOF'
SRC_IP             DST_IP             SPORT   DPORT   PROTO    SRC_POD        DST_POD   SRC_NS       DST_NS    SERVICE
10.244.1.5         10.244.2.7         43210   8080    TCP      web-0          api-1     frontend     backend   backend/api:http
fd00:10:244:1::5   2001:db8::10       53000   53      UDP      dns-client-7             default
fd00:10:244:1::5   fd00:10:244:2::9   0       0       ICMPv6   probe          db-0      monitoring   data
192.168.0.11       192.168.0.12       0       0       47
EOF
)
fv_assert_eq "$expected" "$OUT" "flowrecords table"
fv_assert_eq '/flowrecords' "$(last_request api | jq -r .path)" "path without filters"
fv_assert_eq '' "$(last_request api | jq -r .query)" "query without filters"
fv_assert_eq null "$(last_request api | jq -r .authorization)" "no Authorization without a token"

get flowrecords --server "$SERVER/" --srcip 10.244.1.5 --dstip fd00:10:244::7 --proto TCP \
    --srcport 43210 --dstport 8080 -o json
fv_assert_eq 0 "$RC" "exit status with all five filters"
fv_assert_eq 'srcip=10.244.1.5&dstip=fd00%3A10%3A244%3A%3A7&proto=tcp&srcport=43210&dstport=8080' \
    "$(last_request api | jq -r .query)" "query string with all five filters"

get flowrecords --server "$SERVER" --dstport 53 --proto icmpv6 --dstip FD00:10:244:0::7
fv_assert_eq 'dstip=fd00%3A10%3A244%3A%3A7&proto=58&dstport=53' \
    "$(last_request api | jq -r .query)" "filters are sent in canonical form and fixed order"

# --- -o json is the server's flowrecords array, -o yaml the same -----------
get flowrecords --server "$SERVER" -o json
fv_assert_eq 0 "$RC" "exit status of -o json"
fv_assert_eq "$(jq -S .flowrecords "$FV_TMP/records.json")" "$(jq -S . "$FV_TMP/get.out")" \
    "-o json round-trips the flowrecords array"
fv_assert_eq '  {' "$(sed -n 2p "$FV_TMP/get.out")" "-o json is indented by two spaces"

get flowrecords --server "$SERVER" -o yaml
fv_assert_eq 0 "$RC" "exit status of -o yaml"
fv_assert_eq "- flowStartSeconds: 1795262400" "$(sed -n 1p "$FV_TMP/get.out")" "first YAML line"
fv_assert_eq '  destinationPodName: ""' "$(grep -m1 'destinationPodName: ""' "$FV_TMP/get.out")" \
    "empty strings are quoted in YAML"
fv_assert_eq 4 "$(grep -c '^- ' "$FV_TMP/get.out")" "one YAML sequence item per record"

# --- recordmetrics ------------------------------------------------------------
get recordmetrics --server "$SERVER"
fv_assert_eq 0 "$RC" "exit status of get recordmetrics"
expected=$(
    cat <<'EOF'
RECORDS-EXPORTED   RECORDS-RECEIVED   RECORDS-DROPPED   FLOWS   EXPORTERS-CONNECTED
1200               2405               5                 37      3
EOF
)
fv_assert_eq "$expected" "$OUT" "recordmetrics table"
fv_assert_eq '/recordmetrics' "$(last_request api | jq -r .path)" "recordmetrics path"

FLOWVIS_SERVER=$SERVER get recordmetrics -o yaml
expected=$(
    cat <<'EOF'
numRecordsExported: 1200
numRecordsReceived: 2405
numRecordsDropped: 5
numFlows: 37
numConnToCollector: 3
apiVersion: "1.0"
EOF
)
fv_assert_eq "$expected" "$OUT" "recordmetrics -o yaml (server from FLOWVIS_SERVER)"

get recordmetrics --server "$SERVER" -o json
fv_assert_eq "$(jq -S . "$FV_TMP/metrics.json")" "$(jq -S . "$FV_TMP/get.out")" \
    "recordmetrics -o json keeps every key"

# --- errors from the server -----------------------------------------------------
get flowrecords --server "$SERVER" --proto 250
fv_assert_eq 1 "$RC" "exit status on HTTP 400"
fv_assert_eq "flowvis get: the aggregator at $SERVER answered HTTP 400: proto: 250 is not a supported protocol" \
    "$ERR" "HTTP 400 shows the server's error"
fv_assert_eq '' "$OUT" "nothing on stdout on HTTP 400"

get recordmetrics --server "$SERVER/flowvis/"
fv_assert_eq 1 "$RC" "exit status on HTTP 404"
fv_assert_eq "flowvis get: the aggregator at $SERVER/flowvis answered HTTP 404: no such path: /flowvis/recordmetrics" \
    "$ERR" "a --server path prefix is kept, and HTTP 404 shows the server's error"

# --- bearer token -----------------------------------------------------------------
api_start secured --token s3cret-token
SECURED=http://127.0.0.1:$PORT
printf 's3cret-token\n' >"$FV_TMP/token"

get recordmetrics --server "$SECURED" --token-file "$FV_TMP/token"
fv_assert_eq 0 "$RC" "exit status with the right token"
fv_assert_eq 'Bearer s3cret-token' "$(last_request secured | jq -r .authorization)" \
    "the token from --token-file is sent as a bearer token"

FLOWVIS_TOKEN=s3cret-token get recordmetrics --server "$SECURED"
fv_assert_eq 0 "$RC" "exit status with the token from FLOWVIS_TOKEN"

FLOWVIS_TOKEN=wrong get recordmetrics --server "$SECURED" --token-file "$FV_TMP/token"
fv_assert_eq 0 "$RC" "--token-file overrides FLOWVIS_TOKEN"

get recordmetrics --server "$SECURED"
fv_assert_eq 1 "$RC" "exit status without a token"
fv_assert_eq "flowvis get: the aggregator at $SECURED answered HTTP 401: missing or invalid bearer token
flowvis get: no token was sent; give one with --token-file FILE or FLOWVIS_TOKEN" \
    "$ERR" "401 without a token shows the server's error and the way to give one"

printf 'wrong\n' >"$FV_TMP/wrong-token"
get flowrecords --server "$SECURED" --token-file "$FV_TMP/wrong-token"
fv_assert_eq 1 "$RC" "exit status with a wrong token"
fv_assert_eq "flowvis get: the aggregator at $SECURED answered HTTP 401: missing or invalid bearer token" \
    "$ERR" "401 with a wrong token shows the server's error"
fv_assert_eq '' "$OUT" "nothing on stdout on HTTP 401"

# --- connection refused: a port that was free a moment ago -------------------
fv_stop secured
get recordmetrics --server "$SECURED"
fv_assert_eq 1 "$RC" "exit status when the connection is refused"
fv_assert_eq "flowvis get: cannot reach the aggregator at $SECURED: Connection refused" "$ERR" \
    "connection refused message"

# --- https: --cacert, --insecure, and an unverifiable certificate ------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=flowvis-test-ca -keyout "$FV_TMP/ca.key" -out "$FV_TMP/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$FV_TMP/server.key" -out "$FV_TMP/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$FV_TMP/san.ext"
openssl x509 -req -in "$FV_TMP/server.csr" -CA "$FV_TMP/ca.pem" -CAkey "$FV_TMP/ca.key" \
    -CAcreateserial -days 2 -extfile "$FV_TMP/san.ext" -out "$FV_TMP/server.pem" 2>/dev/null
api_start tls --tls-cert "$FV_TMP/server.pem" --tls-key "$FV_TMP/server.key" --token tls-token
HTTPS=https://127.0.0.1:$PORT
printf 'tls-token' >"$FV_TMP/tls-token"

get recordmetrics --server "$HTTPS" --cacert "$FV_TMP/ca.pem" --token-file "$FV_TMP/tls-token"
fv_assert_eq 0 "$RC" "exit status over https with --cacert"
fv_assert_eq 'Bearer tls-token' "$(last_request tls | jq -r .authorization)" \
    "the bearer token is sent over https"

get recordmetrics --server "$HTTPS" --token-file "$FV_TMP/tls-token"
fv_assert_eq 1 "$RC" "exit status when the certificate cannot be verified"
[[ $ERR == "flowvis get: cannot verify the certificate of $HTTPS: "*"(--cacert names the CA that signed it)" ]] ||
    fv_fail "unverifiable certificate message: got '$ERR'"

get recordmetrics --server "$HTTPS" --insecure --token-file "$FV_TMP/tls-token"
fv_assert_eq 0 "$RC" "exit status over https with --insecure"

# --- usage errors: exit 2 and no request ---------------------------------------
before=$(requests api)
check_usage_error() {
    local want=$1
    shift
    get "$@" --server "$SERVER"
    fv_assert_eq 2 "$RC" "exit status of get $*"
    fv_assert_eq "$want" "$ERR" "message of get $*"
}
check_usage_error "flowvis: --srcport: '70000' is not a whole number from 0 to 65535" \
    flowrecords --srcport 70000
check_usage_error "flowvis: --dstport: '-1' is not a whole number from 0 to 65535" \
    flowrecords --dstport -1
check_usage_error "flowvis get: --srcip: '10.0.0.256' is not an IPv4 or IPv6 address" \
    flowrecords --srcip 10.0.0.256
check_usage_error "flowvis get: --dstip: 'pod-a' is not an IPv4 or IPv6 address" \
    flowrecords --dstip pod-a
check_usage_error "flowvis get: --proto: 'tcpx' is not tcp, udp, sctp, icmp, icmpv6 or a number 0-255" \
    flowrecords --proto tcpx
check_usage_error "flowvis: --proto: '256' is not a whole number from 0 to 255" \
    flowrecords --proto 256
check_usage_error "flowvis get: --srcip applies to flowrecords only" \
    recordmetrics --srcip 10.0.0.1
check_usage_error "flowvis get: --output: 'xml' is not table, json or yaml" flowrecords -o xml
check_usage_error "flowvis get: unknown resource 'flowz' (flowrecords, flows or recordmetrics)" flowz
get flowrecords --server "ftp://127.0.0.1:$PORT"
fv_assert_eq 2 "$RC" "exit status with an ftp:// --server"
get flowrecords --server "$SERVER" --token-file "$FV_TMP/missing-token"
fv_assert_eq 2 "$RC" "exit status with a missing --token-file"
fv_assert_eq "$before" "$(requests api)" "no request was sent for a usage error"

# --- help ------------------------------------------------------------------------
for args in "" "flowrecords" "recordmetrics"; do
    # shellcheck disable=SC2086 # empty args must vanish
    get $args --help
    fv_assert_eq 0 "$RC" "exit status of get $args --help"
done
get flowrecords --help
[[ $OUT == *"--srcport N"* && $OUT == *"SRC_IP DST_IP SPORT DPORT PROTO"* ]] ||
    fv_fail "flowrecords --help does not list the filters and columns: $OUT"
