#!/usr/bin/env bash
# The web UI with an API that needs a bearer token (apiServer.tokenFile):
# `flowvis aggregator` (SQLite store, embedded UI) seeded by `flowvis
# generate` (20 flows, 100 records over TCP on 127.0.0.1).
#   - without the token: / and /assets/app.js answer 200 (the UI's files hold
#     nothing secret), /api/v1/top and /api/v1/ui answer 401 with
#     WWW-Authenticate: Bearer; a wrong token is a 401 too, the right one a 200;
#   - in headless Chromium (tests/ui/token.mjs): the first API call's 401
#     opens the token dialog and the overview waits; a wrong token brings the
#     dialog back saying it was refused; the right one makes the overview
#     ready with every panel ready and the bytes tile equal to the API's
#     total, and every later API request carries the token; a reload keeps
#     it for the session (no dialog, no 401); no console error or failed
#     request but the 401s the test provokes.
# FV_UI_DIR=DIR: serve the UI from DIR (ui.dir), for UI development only.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_browser

AGG_PORT=$(fv_free_port "" tcp)
API_PORT=$(fv_free_port "" tcp)
while [[ $API_PORT == "$AGG_PORT" ]]; do API_PORT=$(fv_free_port "" tcp); done
API=http://127.0.0.1:$API_PORT
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$FV_TMP/token"
chmod 600 "$FV_TMP/token"

cat >"$FV_TMP/agg.yaml" <<EOF
listenAddress: 127.0.0.1:$AGG_PORT
aggregatorTransportProtocol: tcp
activeFlowRecordTimeout: 1s
inactiveFlowRecordTimeout: 2s
correlationWait: 2s
apiServer:
  apiPort: $API_PORT
  tokenFile: $FV_TMP/token
sqlite:
  path: $FV_TMP/flows.db
  commitInterval: 200ms
EOF
if [[ -n ${FV_UI_DIR:-} ]]; then
    printf 'ui:\n  dir: %s\n' "$FV_UI_DIR" >>"$FV_TMP/agg.yaml"
fi

# code PATH [TOKEN]: the HTTP status of a GET, headers in $FV_TMP/headers.
code() {
    local auth=()
    [[ -n ${2:-} ]] && auth=(-H "Authorization: Bearer $2")
    curl -s --max-time 5 -o /dev/null -D "$FV_TMP/headers" -w '%{http_code}' "${auth[@]}" "$API$1"
}

_agg_ready() {
    fv_alive agg
    curl -sf --max-time 2 "$API/readyz" >/dev/null
}

_stored() {
    fv_alive agg
    [[ $(curl -sf --max-time 5 -H "Authorization: Bearer $TOKEN" "$API/api/v1/top?since=1h" |
        jq -r '.total' 2>/dev/null) == "$SENT" ]]
}

fv_bg agg "" "$FLOWVIS" aggregator --config "$FV_TMP/agg.yaml"
fv_wait_for 15 "the aggregator to answer /readyz" _agg_ready
fv_wait_port "" tcp "$AGG_PORT"

fv_assert_eq 200 "$(code /)" "GET / without the token"
fv_assert_eq 200 "$(code /assets/app.js)" "GET /assets/app.js without the token"
fv_assert_eq 401 "$(code /api/v1/top)" "GET /api/v1/top without the token"
grep -qi '^WWW-Authenticate: Bearer' "$FV_TMP/headers" || fv_fail "the 401 has no WWW-Authenticate: Bearer"
fv_assert_eq 401 "$(code /api/v1/ui)" "GET /api/v1/ui without the token"
fv_assert_eq 401 "$(code /api/v1/top "$TOKEN-wrong")" "GET /api/v1/top with a wrong token"
fv_assert_eq 200 "$(code /api/v1/top "$TOKEN")" "GET /api/v1/top with the token"

timeout 60 "$FLOWVIS" generate --target "127.0.0.1:$AGG_PORT:tcp" --nodes 3 --flows 20 --records 100 \
    --seed 3 --summary-json "$FV_TMP/sent.json" 2>"$FV_TMP/generate.err" ||
    fv_fatal "flowvis generate failed: $(cat "$FV_TMP/generate.err")"
SENT=$(jq '[.perFlow[].octetDeltaCount] | add' "$FV_TMP/sent.json")
fv_wait_for 30 "the store to hold the $SENT octets sent" _stored

# In the background, so that a signal stops the test (and node) at once.
fv_bg browser "" env TMPDIR="$FV_TMP" FLOWVIS_CHROMIUM="$CHROMIUM" node "$FV_ROOT/tests/ui/token.mjs" \
    --base "$API" --token "$TOKEN"
fv_wait_exit browser 60
sed 's/^/    /' "$FV_TMP/browser.out" "$FV_TMP/browser.err" >&2
[[ $FV_STATUS -eq 0 ]] ||
    fv_fail "tests/ui/token.mjs: $(grep -c '^FAIL' "$FV_TMP/browser.out") failed checks (exit $FV_STATUS)"

fv_stop agg TERM 20
fv_assert_eq 0 "$FV_STATUS" "the aggregator's exit status after SIGTERM"
