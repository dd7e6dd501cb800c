#!/usr/bin/env bash
# `flowvis collector` receives everything over UDP, TCP and mutual TLS,
# refuses TLS clients without a certificate, counts and skips malformed
# messages without losing the good ones, and accounts sequence gaps.
#
# All in a fresh network namespace, on its loopback:
#   1. TCP: 20000 records from 3 exporters; the collector prints exactly
#      20000 records whose octetDeltaCount sum is the generator's, and its
#      summary says records=20000 lost=0 malformed=0.
#   2. TLS with a CA: a client with a certificate delivers all its
#      records; a client without one is refused (the generator fails, the
#      collector counts a TLS failure and keeps running).
#   3. UDP malformed input: 5 broken messages then a good one; the summary
#      counts malformed=5, the good message's 2 records are printed.
#   4. UDP sequence gap: lost=10, then a late message gives one back
#      (lost=9, reordered=1).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd jq python3 openssl ss
fv_require_flowvis

fv_netns_add NS coll

summary_field() { # NAME FIELD: a field of the collector's total summary line
    grep -E '^  total ' "$FV_TMP/$1.err" | grep -oE "(^| )$2=[0-9]+" | cut -d= -f2
}
domain_field() { # NAME DOMAIN FIELD: a field of one exporter/domain line
    grep -E "^  exporter=.* domain=$2 " "$FV_TMP/$1.err" | grep -oE " $3=[0-9]+" | cut -d= -f2
}

# --- 1. TCP -------------------------------------------------------------------
PORT=$(fv_free_port "$NS" tcp)
fv_collector_start tcp "$NS" "127.0.0.1:$PORT" tcp
fv_in "$NS" timeout 30 "$FLOWVIS" generate --target "127.0.0.1:$PORT:tcp" --nodes 3 \
    --records 20000 --seed 3 --summary-json "$FV_TMP/tcp_sent.json" 2>"$FV_TMP/gen_tcp.err" ||
    fv_fatal "generate over tcp failed: $(cat "$FV_TMP/gen_tcp.err")"
fv_wait_json 20 "$FV_TMP/tcp.out" '.templateId >= 256' 20000
fv_collector_stop tcp
fv_assert_eq 20000 "$(wc -l <"$FV_TMP/tcp.out")" "tcp: records printed"
fv_assert_eq "$(jq .octetDeltaCount "$FV_TMP/tcp_sent.json")" \
    "$(jq -s 'map(.ipfix.octetDeltaCount) | add' "$FV_TMP/tcp.out")" "tcp: sum of octetDeltaCount"
fv_assert_eq 20000 "$(summary_field tcp records)" "tcp: summary records"
fv_assert_eq 0 "$(summary_field tcp lost)" "tcp: summary lost"
fv_assert_eq 0 "$(summary_field tcp malformed)" "tcp: summary malformed"
fv_assert_eq 3 "$(summary_field tcp exporters)" "tcp: summary exporters"

# --- 2. mutual TLS ----------------------------------------------------------------
PKI=$FV_TMP/pki
mkdir -p "$PKI"
(
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca
    openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1
    printf 'subjectAltName=IP:127.0.0.1\n' >srv.ext
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 \
        -extfile srv.ext
    openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=exporter
    openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 1
) >"$FV_TMP/openssl.log" 2>&1 || fv_fatal "openssl failed: $(tail -5 "$FV_TMP/openssl.log")"

PORT=$(fv_free_port "$NS" tcp)
fv_bg tls "$NS" "$FLOWVIS" collector --address "127.0.0.1:$PORT:tls" --format json \
    --tls-cert "$PKI/srv.pem" --tls-key "$PKI/srv.key" --tls-ca "$PKI/ca.pem"
fv_wait_port "$NS" tcp "$PORT"
fv_in "$NS" timeout 30 "$FLOWVIS" generate --target "127.0.0.1:$PORT:tls" --nodes 2 \
    --records 5000 --tls-ca "$PKI/ca.pem" --tls-cert "$PKI/cli.pem" --tls-key "$PKI/cli.key" \
    2>"$FV_TMP/gen_tls.err" || fv_fatal "generate over mutual TLS failed: $(cat "$FV_TMP/gen_tls.err")"
fv_wait_json 20 "$FV_TMP/tls.out" '.templateId >= 256' 5000
if fv_in "$NS" timeout 30 "$FLOWVIS" generate --target "127.0.0.1:$PORT:tls" --nodes 1 \
    --records 10 --tls-ca "$PKI/ca.pem" 2>"$FV_TMP/gen_nocert.err"; then
    fv_fail "a TLS client without a certificate was accepted"
fi
fv_alive tls
fv_collector_stop tls
fv_assert_eq 5000 "$(wc -l <"$FV_TMP/tls.out")" "tls: records printed"
fv_assert_ge 1 "$(summary_field tls tls_failures)" "tls: refused handshakes counted"

# --- 3 and 4. UDP: malformed messages and sequence accounting ----------------------
PORT=$(fv_free_port "$NS" udp)
fv_collector_start udp "$NS" "127.0.0.1:$PORT" udp
fv_in "$NS" python3 "$FV_HELPERS/ipfix_send.py" 127.0.0.1 "$PORT" malformed
fv_in "$NS" python3 "$FV_HELPERS/ipfix_send.py" 127.0.0.1 "$PORT" gap
fv_wait_json 10 "$FV_TMP/udp.out" '.observationDomainId == 9' 7
fv_collector_stop udp
fv_assert_eq 5 "$(summary_field udp malformed)" "udp: malformed messages counted"
fv_assert_eq "1000:111 1001:222" \
    "$(jq -r 'select(.observationDomainId == 5) | "\(.ipfix.sourceTransportPort):\(.ipfix.octetDeltaCount)"' \
        "$FV_TMP/udp.out" | xargs)" "udp: records of the good message after the bad ones"
fv_assert_eq 7 "$(fv_count_json "$FV_TMP/udp.out" '.observationDomainId == 9')" "udp: gap scenario records"
fv_assert_eq 9 "$(domain_field udp 9 lost)" "udp: records lost (10 missing, 1 arrived late)"
fv_assert_eq 1 "$(domain_field udp 9 reordered)" "udp: records reordered"
fv_grep_q() { grep -qE "$1" "$FV_TMP/udp.err"; }
fv_grep_q 'malformed message exporter=127\.0\.0\.1:[0-9]+ ' ||
    fv_fail "no log line names the exporter of the malformed messages"

