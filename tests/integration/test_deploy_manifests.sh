#!/usr/bin/env bash
# The Kubernetes manifests (deploy/kubernetes), the Dockerfile and
# gen-tls.sh hold together, without a cluster:
#   - every YAML file parses; `kubectl kustomize` renders the base, the
#     top-level kustomization (the same objects as the base), every overlay
#     and the ClickHouse component, each to exactly the expected objects;
#   - every rendered object and the Secrets of gen-tls.sh pass the
#     Kubernetes OpenAPI schemas (tests/deploy/validate.mjs, the npm package
#     kubernetes-models, offline), and broken objects fail them (a string
#     containerPort, unknown fields, a bad enum), so the validator can fail;
#   - the agent and aggregator configs in the rendered ConfigMaps pass
#     `flowvis agent|aggregator --check`; every file they name is mounted
#     from a ConfigMap or Secret key that exists; what they write is on a
#     writable volume; the agents dial the name the Service and the server
#     certificate carry;
#   - RBAC is exactly get/list/watch on pods, services, nodes, namespaces
#     and networkpolicies, bound to the agent's and aggregator's
#     ServiceAccounts; the DaemonSet has hostNetwork, NET_ADMIN only and
#     NODE_NAME from spec.nodeName; the Service has 4739/TCP, 4739/UDP and
#     10348/TCP; the aggregator is one non-root replica with a read-only
#     root file system and probes /readyz and /healthz on 10348;
#   - gen-tls.sh's material works: the aggregator, run with the rendered
#     config (paths and ports moved into the test's scratch directory),
#     accepts records from `flowvis generate` over mutual TLS, serves its
#     API over HTTPS, and asks for the token;
#   - the Dockerfile's runtime stage installs a package for every shared
#     library `ldd build/flowvis` lists (dpkg -S), names each directly linked
#     one and nothing else but ca-certificates; its FROMs are pinned to
#     bookworm, it runs as a non-root USER and ADDs nothing. With docker or
#     podman and the debian:bookworm images present locally it is built;
#     otherwise the build is skipped with a note.
#
# Not done: `kubectl apply --dry-run=client` needs an API server for its
# discovery (it fails with "connection refused" without one), so it cannot
# check anything offline; the schema validation above stands in for it.
#
# Works with any kubectl that has `kubectl kustomize` (1.14+; Debian's
# kubernetes-client 1.20 carries kustomize v2.0.3). FV_KUBECTL picks another
# kubectl binary.
# fv-timeout: 180
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

KUBECTL=${FV_KUBECTL:-kubectl}
fv_require_cmd "$KUBECTL" node npm python3 openssl curl readelf ldd dpkg-query ss
python3 -c 'import yaml' 2>/dev/null || fv_skip "missing python3-yaml (install with: scripts/deps.sh test)"
fv_require_flowvis

K8S=$FV_ROOT/deploy/kubernetes
DEPLOY_TESTS=$FV_ROOT/tests/deploy
fv_log "kubectl: $("$KUBECTL" version --client 2>/dev/null | head -n 1)"

# ---------------------------------------------------------------------------
# The validator's npm packages: npm ci only when node_modules is missing or
# older than the lock file (as the Makefile does for ui/).
# ---------------------------------------------------------------------------
if [[ ! -f $DEPLOY_TESTS/node_modules/.package-lock.json ||
    $DEPLOY_TESTS/package-lock.json -nt $DEPLOY_TESTS/node_modules/.package-lock.json ]]; then
    fv_log "npm ci in tests/deploy"
    (cd "$DEPLOY_TESTS" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
        fv_fatal "npm ci in tests/deploy failed"
    touch "$DEPLOY_TESTS/node_modules/.package-lock.json"
fi

# to_json FILE.yaml FILE.json: every YAML document of FILE as a JSON array.
to_json() {
    python3 -c '
import json, sys, yaml
with open(sys.argv[1]) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
with open(sys.argv[2], "w") as f:
    json.dump(docs, f)' "$1" "$2"
}

# ---------------------------------------------------------------------------
# (a) Every YAML file parses; every manifest document is an object with
# apiVersion, kind and metadata.name.
# ---------------------------------------------------------------------------
out=$(cd "$FV_ROOT" && python3 - <<'EOF'
import glob, yaml
bad = 0
files = sorted(glob.glob("deploy/kubernetes/**/*.yaml", recursive=True))
for path in files:
    try:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        print(f"{path}: does not parse: {e}")
        bad += 1
        continue
    if not docs:
        print(f"{path}: no YAML document")
        bad += 1
    special = path.endswith("kustomization.yaml") or "/config/" in path \
        or path.endswith("overlays/clickhouse/aggregator.yaml")
    for d in docs:
        if special:
            if not isinstance(d, dict):
                print(f"{path}: not a mapping")
                bad += 1
            continue
        if not (isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                and isinstance(d.get("metadata"), dict) and d["metadata"].get("name")):
            print(f"{path}: a document without apiVersion, kind or metadata.name")
            bad += 1
print(f"{len(files)} files, {bad} problems")
EOF
)
fv_assert_eq "0 problems" "$(tail -n 1 <<<"$out" | sed 's/^[0-9]* files, //')" "YAML files that fail to parse ($out)"

# ---------------------------------------------------------------------------
# (b) kubectl kustomize renders each directory to exactly these objects.
# ConfigMap names carry kustomize's content hash, shown here as -HASH.
# ---------------------------------------------------------------------------
BASE_OBJECTS="ClusterRole flowvis-inventory-reader
ClusterRoleBinding flowvis-agent
ClusterRoleBinding flowvis-aggregator
ConfigMap flowvis/flowvis-agent-config-HASH
ConfigMap flowvis/flowvis-aggregator-config-HASH
DaemonSet flowvis/flowvis-agent
Deployment flowvis/flow-aggregator
Namespace flowvis
Service flowvis/flow-aggregator
ServiceAccount flowvis/flowvis-agent
ServiceAccount flowvis/flowvis-aggregator"
CLICKHOUSE_OBJECTS="Service flowvis/clickhouse
StatefulSet flowvis/clickhouse"
declare -A EXPECTED=(
    [.]=$BASE_OBJECTS
    [base]=$BASE_OBJECTS
    [clickhouse]=$CLICKHOUSE_OBJECTS
    [overlays/clickhouse]=$(printf '%s\n%s' "$BASE_OBJECTS" "$CLICKHOUSE_OBJECTS" | LC_ALL=C sort)
)
# Every overlay must have its expected list here.
for d in "$K8S"/overlays/*/; do
    rel=overlays/$(basename "$d")
    [[ -n ${EXPECTED[$rel]:-} ]] || fv_fail "$rel: no expected object list in this test"
done

# object_list FILE.json: "Kind namespace/name" per object, sorted.
object_list() {
    python3 -c '
import json, re, sys
for o in json.load(open(sys.argv[1])):
    md = o.get("metadata", {})
    name = md.get("name", "")
    if o.get("kind") == "ConfigMap":
        name = re.sub(r"-[a-z0-9]{10}$", "-HASH", name)
    ns = md.get("namespace")
    print(o.get("kind"), f"{ns}/{name}" if ns else name)' "$1" | LC_ALL=C sort
}

# render_tag DIR: a file name part for DIR ("." is the top level).
render_tag() {
    if [[ $1 == . ]]; then echo top; else echo "${1//\//_}"; fi
}
for rel in . base clickhouse overlays/clickhouse; do
    tag=$(render_tag "$rel")
    if ! "$KUBECTL" kustomize "$K8S/$rel" >"$FV_TMP/render.$tag.yaml" 2>"$FV_TMP/render.$tag.err"; then
        fv_fail "kubectl kustomize deploy/kubernetes/$rel failed: $(cat "$FV_TMP/render.$tag.err")"
        continue
    fi
    to_json "$FV_TMP/render.$tag.yaml" "$FV_TMP/render.$tag.json"
    fv_assert_eq "${EXPECTED[$rel]}" "$(object_list "$FV_TMP/render.$tag.json")" \
        "objects of deploy/kubernetes/$rel"
done
# The top-level kustomization lists base/'s files itself (for kustomize
# v2.0.3): it must render exactly what base/ renders.
if ! diff -u "$FV_TMP/render.base.yaml" "$FV_TMP/render.top.yaml" >"$FV_TMP/render.diff" 2>&1; then
    fv_fail "deploy/kubernetes and deploy/kubernetes/base render differently:
$(cat "$FV_TMP/render.diff")"
else
    fv_log "ok: deploy/kubernetes renders the same objects as deploy/kubernetes/base"
fi
ROOT_JSON=$FV_TMP/render.base.json
CH_JSON=$FV_TMP/render.overlays_clickhouse.json

# ---------------------------------------------------------------------------
# gen-tls.sh: the CA, server and client certificates and the Secrets.
# ---------------------------------------------------------------------------
TLS=$FV_TMP/tls
"$K8S/gen-tls.sh" -o "$TLS" 2>"$FV_TMP/gen-tls.err" || fv_fatal "gen-tls.sh failed: $(cat "$FV_TMP/gen-tls.err")"
fv_assert_eq "ca.crt ca.key client.crt client.key secrets.yaml server.crt server.key token" \
    "$(cd "$TLS" && echo *)" "files gen-tls.sh writes"
fv_assert_eq "$TLS/server.crt: OK
$TLS/client.crt: OK" "$(openssl verify -CAfile "$TLS/ca.crt" "$TLS/server.crt" "$TLS/client.crt" 2>&1)" \
    "certificates chain to the generated CA"
fv_assert_eq "DNS:flow-aggregator, DNS:flow-aggregator.flowvis, DNS:flow-aggregator.flowvis.svc, DNS:flow-aggregator.flowvis.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1" \
    "$(openssl x509 -in "$TLS/server.crt" -noout -ext subjectAltName | sed -n '2s/^ *//p')" \
    "server certificate names"
fv_assert_eq "TLS Web Server Authentication" \
    "$(openssl x509 -in "$TLS/server.crt" -noout -ext extendedKeyUsage | sed -n '2s/^ *//p')" \
    "server certificate purpose"
fv_assert_eq "TLS Web Client Authentication" \
    "$(openssl x509 -in "$TLS/client.crt" -noout -ext extendedKeyUsage | sed -n '2s/^ *//p')" \
    "client certificate purpose"
fv_assert_eq "600 600 600 600" "$(stat -c %a "$TLS/ca.key" "$TLS/server.key" "$TLS/client.key" "$TLS/token" | tr '\n' ' ' | sed 's/ $//')" \
    "modes of the keys and the token"
ca_before=$(openssl x509 -in "$TLS/ca.crt" -noout -fingerprint -sha256)
token_before=$(cat "$TLS/token")
server_before=$(openssl x509 -in "$TLS/server.crt" -noout -serial)
"$K8S/gen-tls.sh" -o "$TLS" 2>/dev/null || fv_fail "gen-tls.sh failed on its second run"
fv_assert_eq "$ca_before $token_before" \
    "$(openssl x509 -in "$TLS/ca.crt" -noout -fingerprint -sha256) $(cat "$TLS/token")" \
    "a second run keeps the CA and the token"
[[ $(openssl x509 -in "$TLS/server.crt" -noout -serial) != "$server_before" ]] ||
    fv_fail "a second run did not issue a new server certificate"
to_json "$TLS/secrets.yaml" "$FV_TMP/secrets.json"
fv_assert_eq "Secret flowvis/flowvis-agent-tls
Secret flowvis/flowvis-api-token
Secret flowvis/flowvis-tls" "$(object_list "$FV_TMP/secrets.json")" "Secrets of gen-tls.sh"

# ---------------------------------------------------------------------------
# (c) Schema validation, and proof that the validator can fail.
# ---------------------------------------------------------------------------
for f in "$ROOT_JSON" "$CH_JSON" "$FV_TMP/secrets.json"; do
    if node "$DEPLOY_TESTS/validate.mjs" "$f" >"$FV_TMP/validate.out" 2>&1; then
        fv_log "ok: $(tail -n 1 "$FV_TMP/validate.out") in $(basename "$f")"
    else
        fv_fail "schema validation of $(basename "$f"):
$(grep -v '^ok ' "$FV_TMP/validate.out")"
    fi
done

python3 - "$ROOT_JSON" "$FV_TMP/broken.json" <<'EOF'
import json, sys
objs = json.load(open(sys.argv[1]))
for o in objs:
    spec = o.get("spec", {})
    if o["kind"] == "Deployment":
        spec["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "abc"
    elif o["kind"] == "DaemonSet":
        spec["hostNetwrk"] = True
        spec["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]["ad"] = ["NET_RAW"]
    elif o["kind"] == "Service":
        spec["ports"][1]["protocol"] = "QUIC"
    elif o["kind"] == "ClusterRole":
        o["rules"][0]["verbs"] = "get"
json.dump(objs, open(sys.argv[2], "w"))
EOF
rc=0
node "$DEPLOY_TESTS/validate.mjs" "$FV_TMP/broken.json" >"$FV_TMP/broken.out" 2>&1 || rc=$?
fv_assert_eq 1 "$rc" "validate.mjs exit status on broken objects"
fv_assert_eq 'error ClusterRole flowvis-inventory-reader: /rules/0/verbs: type: must be array
error DaemonSet flowvis/flowvis-agent: /spec/hostNetwrk: unknown field
error DaemonSet flowvis/flowvis-agent: /spec/template/spec/containers/0/securityContext/capabilities/ad: unknown field
error Deployment flowvis/flow-aggregator: /spec/template/spec/containers/0/ports/0/containerPort: type: must be integer
error Service flowvis/flow-aggregator: /spec/ports/1/protocol: enum: must be one of ["SCTP","TCP","UDP"]' \
    "$(grep '^error ' "$FV_TMP/broken.out" | LC_ALL=C sort)" "what validate.mjs reports on broken objects"

# ---------------------------------------------------------------------------
# (e) The configs in the ConfigMaps: --check, mounts, Secrets, names.
# ---------------------------------------------------------------------------
# extract_configs RENDER.json DIR: writes DIR/agent.yaml and
# DIR/aggregator.yaml from the rendered ConfigMaps.
extract_configs() {
    mkdir -p "$2"
    python3 - "$1" "$2" <<'EOF'
import json, sys
for o in json.load(open(sys.argv[1])):
    if o["kind"] == "ConfigMap":
        for key, text in o.get("data", {}).items():
            with open(f"{sys.argv[2]}/{key}", "w") as f:
                f.write(text)
EOF
}
for variant in base clickhouse; do
    json=$ROOT_JSON
    [[ $variant == clickhouse ]] && json=$CH_JSON
    extract_configs "$json" "$FV_TMP/cfg-$variant"
    fv_assert_eq "agent.yaml aggregator.yaml" "$(cd "$FV_TMP/cfg-$variant" && echo *)" \
        "config files in the ConfigMaps ($variant)"
    for cmd in agent aggregator; do
        out=$("$FLOWVIS" "$cmd" --check --config "$FV_TMP/cfg-$variant/$cmd.yaml" 2>&1) ||
            fv_fail "flowvis $cmd --check rejects the $variant ConfigMap's $cmd.yaml: $out"
        fv_assert_eq "$FV_TMP/cfg-$variant/$cmd.yaml: ok" "$out" "flowvis $cmd --check ($variant)"
    done
done
# The overlay's config is the base's with SQLite swapped for ClickHouse.
out=$(python3 - "$FV_TMP/cfg-base/aggregator.yaml" "$FV_TMP/cfg-clickhouse/aggregator.yaml" <<'EOF'
import sys, yaml
b = yaml.safe_load(open(sys.argv[1]))
c = yaml.safe_load(open(sys.argv[2]))
strip = lambda d: {k: v for k, v in d.items() if k not in ("clickHouse", "sqlite")}
rest = "same" if strip(b) == strip(c) else "differs"
print(f"clickHouse.enable={c['clickHouse']['enable']} sqlite.enable={c['sqlite']['enable']} rest={rest}")
EOF
)
fv_assert_eq "clickHouse.enable=True sqlite.enable=False rest=same" "$out" \
    "the ClickHouse overlay's aggregator config"

# The cross-checks between objects, configs and Secrets; prints one line per
# problem and "ok" when there is none.
cross_check() {
    python3 - "$1" "$FV_TMP/secrets.json" "$TLS/server.crt" <<'EOF'
import json, os, re, subprocess, sys, yaml
objs = json.load(open(sys.argv[1]))
secrets = {s["metadata"]["name"]: s for s in json.load(open(sys.argv[2]))}
problems = []
def find(kind, name):
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    problems.append(f"no {kind} {name}")
    return None
cms = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}

def check_workload(w, container, cfgname):
    spec = w["spec"]["template"]["spec"]
    c = next(c for c in spec["containers"] if c["name"] == container)
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = c.get("volumeMounts", [])
    # --config FILE is a key of the mounted ConfigMap
    args = c.get("args", [])
    cfgpath = args[args.index("--config") + 1]
    def source(path):
        best = None
        for m in mounts:
            mp = m["mountPath"].rstrip("/") + "/"
            if path.startswith(mp) and (best is None or len(mp) > len(best[0])):
                best = (mp, m)
        if best is None:
            return None, None, None
        return vols[best[1]["name"]], path[len(best[0]):], best[1]
    vol, key, m = source(cfgpath)
    if vol is None or "configMap" not in vol:
        problems.append(f"{w['kind']} {container}: --config {cfgpath} is not on a ConfigMap volume")
        return None
    cm = cms.get(vol["configMap"]["name"])
    if cm is None or key not in cm.get("data", {}):
        problems.append(f"{w['kind']} {container}: --config {cfgpath}: no key {key} in ConfigMap {vol['configMap']['name']}")
        return None
    if not vol["configMap"]["name"].startswith(cfgname + "-"):
        problems.append(f"{w['kind']} {container}: mounts {vol['configMap']['name']}, not {cfgname}")
    cfg = yaml.safe_load(cm["data"][key])
    # every /etc/flowvis/... path in the config is a key of a mounted Secret
    # or ConfigMap; gen-tls.sh's Secrets must have it
    def walk(x, keypath):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{keypath}.{k}" if keypath else k)
        elif isinstance(x, str) and x.startswith("/etc/flowvis/"):
            v, k, _ = source(x)
            if v is None:
                problems.append(f"{container} config {keypath}: {x} is not on a mounted volume")
            elif "secret" in v:
                s = secrets.get(v["secret"]["secretName"])
                if s is None:
                    problems.append(f"{container} config {keypath}: Secret {v['secret']['secretName']} is not one gen-tls.sh writes")
                elif k not in s["data"]:
                    problems.append(f"{container} config {keypath}: no key {k} in Secret {v['secret']['secretName']}")
            elif "configMap" in v:
                if k not in cms.get(v["configMap"]["name"], {}).get("data", {}):
                    problems.append(f"{container} config {keypath}: no key {k} in ConfigMap")
            else:
                problems.append(f"{container} config {keypath}: {x} is on a {list(v)} volume")
    walk(cfg, "")
    return cfg, c, source, vols

ds = find("DaemonSet", "flowvis-agent")
dep = find("Deployment", "flow-aggregator")
svc = find("Service", "flow-aggregator")
if ds and dep and svc:
    agent, ac, _, _ = check_workload(ds, "agent", "flowvis-agent-config") or (None,) * 4
    agg, gc, gsource, gvols = check_workload(dep, "aggregator", "flowvis-aggregator-config") or (None,) * 4
    ns = svc["metadata"]["namespace"]
    want = f"{svc['metadata']['name']}.{ns}.svc"
    if agent:
        if agent["flowCollectorAddr"] != f"{want}:4739:tls":
            problems.append(f"agent flowCollectorAddr {agent['flowCollectorAddr']}, not {want}:4739:tls")
        port = agent["metricsAddress"].rsplit(":", 1)[1]
        probe = ac["livenessProbe"]["httpGet"]
        if (probe.get("host"), str(probe["port"]), probe["path"]) != ("127.0.0.1", port, "/healthz"):
            problems.append(f"agent liveness probe {probe} does not reach metricsAddress {agent['metricsAddress']}")
        if not agent["metricsAddress"].startswith("127.0.0.1:"):
            problems.append("agent metricsAddress is not loopback")
        inv = agent.get("inventory", {})
        if inv != {"kubernetes": True, "kubeconfig": "", "allPods": False}:
            problems.append(f"agent inventory {inv}")
        if agent.get("deniedFlows", {}).get("nflogGroups") != []:
            problems.append("agent deniedFlows.nflogGroups is not []")
    if agg:
        if agg["flowAggregatorAddress"] != want:
            problems.append(f"aggregator flowAggregatorAddress {agg['flowAggregatorAddress']}, not {want}")
        san = subprocess.run(["openssl", "x509", "-in", sys.argv[3], "-noout", "-ext", "subjectAltName"],
                             capture_output=True, text=True).stdout
        if f"DNS:{want}," not in san:
            problems.append(f"the server certificate does not name {want}")
        api = agg["apiServer"]
        if api["apiPort"] != 10348 or api["bindAddress"].startswith("127."):
            problems.append(f"aggregator API {api['bindAddress']}:{api['apiPort']} is not the Pod's :10348")
        for pname, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            g = gc[pname]["httpGet"]
            ports = {p["name"]: p["containerPort"] for p in gc["ports"]}
            port = ports.get(g["port"], g["port"])
            if (g["path"], port, g.get("scheme")) != (path, 10348, "HTTPS"):
                problems.append(f"aggregator {pname} {g}")
        if agg["aggregatorTransportProtocol"] != "udp,tls" or not agg["listenAddress"].endswith(":4739"):
            problems.append(f"aggregator listens {agg['listenAddress']} {agg['aggregatorTransportProtocol']}")
        if agg.get("inventory") != {"kubernetes": True, "kubeconfig": ""}:
            problems.append(f"aggregator inventory {agg.get('inventory')}")
        # what it writes is on an emptyDir (the root file system is read-only)
        writes = []
        if agg.get("sqlite", {}).get("enable", True):
            writes.append(("sqlite.path", os.path.dirname(agg["sqlite"]["path"]) + "/"))
        if agg.get("clickHouse", {}).get("enable"):
            writes.append(("clickHouse.spoolDir", agg["clickHouse"]["spoolDir"] + "/"))
            env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}) for e in gc.get("env", [])}
            for var, key in (("CH_USERNAME", "username"), ("CH_PASSWORD", "password")):
                if env.get(var) != {"name": "flowvis-clickhouse", "key": key}:
                    problems.append(f"aggregator {var} is not Secret flowvis-clickhouse key {key}")
        for keyname, d in writes:
            v, _, _ = gsource(d)
            if v is None or "emptyDir" not in v:
                problems.append(f"aggregator {keyname} {d} is not on an emptyDir volume")
print("\n".join(problems) if problems else "ok")
EOF
}
fv_assert_eq ok "$(cross_check "$ROOT_JSON")" "configs, mounts, Secrets and names agree (base)"
fv_assert_eq ok "$(cross_check "$CH_JSON")" "configs, mounts, Secrets and names agree (ClickHouse overlay)"

# ---------------------------------------------------------------------------
# (f) RBAC, exactly. (g) DaemonSet, Service, Deployment, images.
# ---------------------------------------------------------------------------
out=$(python3 - "$CH_JSON" <<'EOF'
import json, sys
for o in json.load(open(sys.argv[1])):
    k, n = o["kind"], o["metadata"]["name"]
    if k in ("ClusterRole", "Role"):
        for r in o["rules"]:
            extra = " EXTRA" if set(r) - {"apiGroups", "resources", "verbs"} else ""
            groups, res, verbs = json.dumps(r["apiGroups"]), ",".join(r["resources"]), ",".join(r["verbs"])
            print(f"{k} {n}: {groups} {res} {verbs}{extra}")
    elif k in ("ClusterRoleBinding", "RoleBinding"):
        ref = o["roleRef"]
        for sub in o["subjects"]:
            print(f"{k} {n}: {ref['kind']}/{ref['name']} -> {sub['kind']} {sub.get('namespace')}/{sub['name']}")
EOF
)
fv_assert_eq 'ClusterRole flowvis-inventory-reader: [""] pods,services,nodes,namespaces get,list,watch
ClusterRole flowvis-inventory-reader: ["networking.k8s.io"] networkpolicies get,list,watch
ClusterRoleBinding flowvis-agent: ClusterRole/flowvis-inventory-reader -> ServiceAccount flowvis/flowvis-agent
ClusterRoleBinding flowvis-aggregator: ClusterRole/flowvis-inventory-reader -> ServiceAccount flowvis/flowvis-aggregator' \
    "$out" "RBAC rules and bindings (ClickHouse overlay, a superset of the base)"

out=$(python3 - "$CH_JSON" <<'EOF'
import json, sys
all_objs = json.load(open(sys.argv[1]))
objs = {o["kind"]: o for o in all_objs if o["kind"] in ("DaemonSet", "Deployment")}
svc = next(o for o in all_objs if o["kind"] == "Service" and o["metadata"]["name"] == "flow-aggregator")
d = objs["DaemonSet"]["spec"]["template"]["spec"]
print(f"daemonset hostNetwork={d.get('hostNetwork')} dnsPolicy={d.get('dnsPolicy')} "
      f"tolerations={json.dumps(d.get('tolerations'))}")
c = d["containers"][0]
sc = c["securityContext"]
print(f"{c['name']} serviceAccount={d['serviceAccountName']} "
      f"caps.add={json.dumps(sc['capabilities'].get('add'))} "
      f"caps.drop={json.dumps(sc['capabilities'].get('drop'))} privileged={sc.get('privileged')} "
      f"readOnlyRootFilesystem={sc.get('readOnlyRootFilesystem')}")
for e in c.get("env", []):
    print(f"agent env {e['name']}=fieldRef:{e['valueFrom']['fieldRef']['fieldPath']}")
for i in d.get("initContainers", []):
    script = " ".join(i.get("command", []))
    keys = [k for k in ("nf_conntrack_acct", "nf_conntrack_timestamp") if k in script]
    print(f"init {i['name']} privileged={i['securityContext'].get('privileged')} writes={','.join(keys)}")
s = svc["spec"]
print("service", s.get("type"), " ".join(f"{p['port']}/{p['protocol']}" for p in s["ports"]))
g = objs["Deployment"]["spec"]
t = g["template"]["spec"]
gc = t["containers"][0]
print(f"aggregator replicas={g['replicas']} strategy={g['strategy']['type']} "
      f"serviceAccount={t['serviceAccountName']} runAsNonRoot={t['securityContext']['runAsNonRoot']} "
      f"runAsUser={t['securityContext']['runAsUser']} "
      f"readOnlyRootFilesystem={gc['securityContext']['readOnlyRootFilesystem']} "
      f"caps.drop={json.dumps(gc['securityContext']['capabilities']['drop'])}")
imgs = set()
for o in all_objs:
    spec = o.get("spec", {}).get("template", {}).get("spec", {})
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        imgs.add(f"{c['image']}/{c.get('imagePullPolicy')}")
print("images", " ".join(sorted(imgs)))
EOF
)
fv_assert_eq 'daemonset hostNetwork=True dnsPolicy=ClusterFirstWithHostNet tolerations=[{"operator": "Exists"}]
agent serviceAccount=flowvis-agent caps.add=["NET_ADMIN"] caps.drop=["ALL"] privileged=None readOnlyRootFilesystem=True
agent env NODE_NAME=fieldRef:spec.nodeName
init conntrack-sysctls privileged=True writes=nf_conntrack_acct,nf_conntrack_timestamp
service ClusterIP 4739/TCP 4739/UDP 10348/TCP
aggregator replicas=1 strategy=Recreate serviceAccount=flowvis-aggregator runAsNonRoot=True runAsUser=65532 readOnlyRootFilesystem=True caps.drop=["ALL"]
images clickhouse/clickhouse-server:24.8/IfNotPresent flowvis:latest/IfNotPresent' \
    "$out" "DaemonSet, Service, Deployment and images"

# The init container's script, run for real against a stand-in for
# /proc/sys/net/netfilter: it writes 1 to both files, and fails when the
# module is not loaded.
python3 -c '
import json, sys
for o in json.load(open(sys.argv[1])):
    if o["kind"] == "DaemonSet":
        print(o["spec"]["template"]["spec"]["initContainers"][0]["command"][2])' "$ROOT_JSON" \
    >"$FV_TMP/init.sh"
mkdir -p "$FV_TMP/proc/net/netfilter"
echo 0 >"$FV_TMP/proc/net/netfilter/nf_conntrack_acct"
echo 0 >"$FV_TMP/proc/net/netfilter/nf_conntrack_timestamp"
sed "s#/proc/sys/net/netfilter#$FV_TMP/proc/net/netfilter#g" "$FV_TMP/init.sh" >"$FV_TMP/init-test.sh"
out=$(sh "$FV_TMP/init-test.sh" 2>&1) || fv_fail "the init container's script failed: $out"
fv_assert_eq "1 1" "$(cat "$FV_TMP/proc/net/netfilter/nf_conntrack_acct" "$FV_TMP/proc/net/netfilter/nf_conntrack_timestamp" | tr '\n' ' ' | sed 's/ $//')" \
    "sysctls the init container's script writes"
rm "$FV_TMP/proc/net/netfilter/nf_conntrack_timestamp"
rc=0
out=$(sh "$FV_TMP/init-test.sh" 2>&1) || rc=$?
fv_assert_eq "1" "$rc" "init script exit status without nf_conntrack"
grep -q "nf_conntrack module is not loaded" <<<"$out" || fv_fail "init script without nf_conntrack says: $out"

# ---------------------------------------------------------------------------
# gen-tls.sh's material and the rendered aggregator config, for real: the
# config with /etc/flowvis and /var/lib/flowvis moved into the scratch
# directory, loopback ports, and no Kubernetes inventory (no API server
# here). `flowvis generate` sends records over mutual TLS with the agents'
# client certificate, to 127.0.0.1, which the server certificate names next
# to the Service's names.
# ---------------------------------------------------------------------------
mkdir -p "$FV_TMP/etc/tls" "$FV_TMP/etc/api" "$FV_TMP/var"
cp "$TLS/ca.crt" "$FV_TMP/etc/tls/ca.crt"
cp "$TLS/server.crt" "$FV_TMP/etc/tls/tls.crt"
cp "$TLS/server.key" "$FV_TMP/etc/tls/tls.key"
cp "$TLS/token" "$FV_TMP/etc/api/token"
ipfix_port=$(fv_free_port "" tcp)
api_port=$(fv_free_port "" tcp)
python3 - "$FV_TMP/cfg-base/aggregator.yaml" "$FV_TMP/agg-run.yaml" "$FV_TMP" "$ipfix_port" "$api_port" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
tmp, ipfix, api = sys.argv[3], sys.argv[4], int(sys.argv[5])
def move(x):
    if isinstance(x, dict):
        return {k: move(v) for k, v in x.items()}
    if isinstance(x, str):
        return x.replace("/etc/flowvis/", f"{tmp}/etc/").replace("/var/lib/flowvis/", f"{tmp}/var/")
    return x
cfg = move(cfg)
cfg["listenAddress"] = f"127.0.0.1:{ipfix}"
cfg["apiServer"]["bindAddress"] = "127.0.0.1"
cfg["apiServer"]["apiPort"] = api
cfg.pop("inventory", None)
cfg["activeFlowRecordTimeout"] = "1s"
cfg["inactiveFlowRecordTimeout"] = "2s"
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
EOF
fv_bg agg "" "$FLOWVIS" aggregator --config "$FV_TMP/agg-run.yaml"
_agg_up() {
    fv_alive agg
    fv_port_bound "" tcp "$ipfix_port" && fv_port_bound "" tcp "$api_port"
}
fv_wait_for 15 "the aggregator to listen" _agg_up
api=https://localhost:$api_port
fv_assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS/ca.crt" "$api/healthz")" \
    "/healthz over HTTPS without a token"
fv_assert_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$TLS/ca.crt" "$api/recordmetrics")" \
    "/recordmetrics without the token"
"$FLOWVIS" generate --target "127.0.0.1:$ipfix_port:tls" --tls-ca "$TLS/ca.crt" \
    --tls-cert "$TLS/client.crt" --tls-key "$TLS/client.key" --records 300 --flows 50 --nodes 2 \
    >"$FV_TMP/generate.out" 2>"$FV_TMP/generate.err" ||
    fv_fail "flowvis generate over TLS with gen-tls.sh's client certificate failed: $(tail -n 5 "$FV_TMP/generate.err")"
received() {
    curl -s --max-time 5 --cacert "$TLS/ca.crt" -H "Authorization: Bearer $(cat "$TLS/token")" \
        "$api/recordmetrics" | python3 -c 'import json, sys; print(json.load(sys.stdin)["numRecordsReceived"])' 2>/dev/null
}
_received_is() {
    [[ $(received) == "$1" ]]
}
fv_wait_for 15 "the aggregator to count 300 received records" _received_is 300
fv_assert_eq 300 "$(received)" "records received over mutual TLS, read from the API with the token"
# An agent without a client certificate is refused.
rc=0
"$FLOWVIS" generate --target "127.0.0.1:$ipfix_port:tls" --tls-ca "$TLS/ca.crt" --records 10 --flows 5 \
    --nodes 1 >/dev/null 2>"$FV_TMP/generate-nocert.err" || rc=$?
sleep 1
fv_assert_eq 300 "$(received)" "records received after a sender without a client certificate (rc $rc)"
fv_stop agg TERM 10
fv_assert_eq 0 "$FV_STATUS" "aggregator exit status after SIGTERM"

# ---------------------------------------------------------------------------
# Dockerfile: the runtime stage's packages cover `ldd build/flowvis`.
# ---------------------------------------------------------------------------
DOCKERFILE=$FV_ROOT/Dockerfile
out=$(python3 - "$DOCKERFILE" "$FLOWVIS" <<'EOF'
import re, subprocess, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
stages = re.split(r"^FROM ", text, flags=re.M)[1:]
runtime = stages[-1]
named = None
for line in runtime.splitlines():
    if line.startswith("RUN ") and "apt-get install" in line:
        for part in line[4:].split("&&"):
            words = part.split()
            if "install" in words and "apt-get" in words:
                named = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
if not named:
    print("the runtime stage has no apt-get install line")
    sys.exit(0)
named = set(named)

def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout

def package_of(path):
    cands = [path]
    if path.startswith("/lib"):
        cands.append("/usr" + path)
    import os
    real = os.path.realpath(path)
    cands += [real, "/usr" + real if real.startswith("/lib") else real]
    for c in cands:
        out = run("dpkg-query", "-S", c)
        if out:
            return out.split(":")[0].strip()
    return None

# the Depends closure of the named packages, as installed here
def deps(pkg):
    out = run("dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg)
    result = set()
    for group in out.split(","):
        group = group.strip()
        if not group:
            continue
        for alt in group.split("|"):
            name = alt.strip().split()[0].split(":")[0]
            if run("dpkg-query", "-W", "-f=${Status}", name).startswith("install ok installed"):
                result.add(name)
                break
    return result
closure, todo = set(), list(named)
while todo:
    p = todo.pop()
    if p in closure:
        continue
    closure.add(p)
    todo.extend(deps(p) - closure)

problems = []
for line in run("ldd", sys.argv[2]).splitlines():
    m = re.search(r"=> (/\S+)", line) or re.match(r"\s*(/\S+)", line)
    if not m:
        continue
    pkg = package_of(m.group(1))
    if pkg is None:
        problems.append(f"ldd: {m.group(1)} belongs to no package")
    elif pkg not in closure:
        problems.append(f"ldd: {m.group(1)} ({pkg}) is not installed by the runtime stage")
needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run("readelf", "-d", sys.argv[2]))
ldd = dict(re.findall(r"^\s*(\S+) => (/\S+)", run("ldd", sys.argv[2]), flags=re.M))
direct = set()
for lib in needed:
    pkg = package_of(ldd.get(lib, lib))
    direct.add(pkg)
    if pkg != "libc6" and pkg not in named:
        problems.append(f"NEEDED {lib} ({pkg}) is not named in the runtime stage's apt-get install")
for pkg in sorted(named - direct - {"ca-certificates"}):
    problems.append(f"the runtime stage installs {pkg}, which provides no library flowvis links")
print("\n".join(problems) if problems else f"ok {len(needed)} direct libraries, {len(ldd)} in all")
EOF
)
if [[ $out == ok* ]]; then
    fv_log "ok: the runtime stage's packages cover ldd $FLOWVIS (${out#ok })"
else
    fv_fail "the Dockerfile's runtime packages do not match ldd $FLOWVIS:
$out"
fi

fv_assert_eq "FROM debian:bookworm AS builder
FROM debian:bookworm-slim" "$(grep '^FROM ' "$DOCKERFILE")" "Dockerfile FROM lines (pinned to Debian 12)"
fv_assert_eq "USER 65532:65532" "$(awk '/^FROM /{u=""} /^USER /{u=$0} END{print u}' "$DOCKERFILE")" \
    "the runtime stage's USER"
fv_assert_eq 0 "$(grep -c -E '^ADD |curl |wget ' "$DOCKERFILE")" "ADD, curl or wget in the Dockerfile"
fv_assert_eq 2 "$(grep -c -- '--no-install-recommends' "$DOCKERFILE")" "apt-get installs without recommends (builder, runtime)"
grep -q '^RUN scripts/deps.sh build' "$DOCKERFILE" || fv_fail "the builder does not run scripts/deps.sh build"
grep -q '^COPY --from=builder /src/build/flowvis /usr/local/bin/flowvis$' "$DOCKERFILE" ||
    fv_fail "the runtime stage does not copy build/flowvis from the builder"
for pattern in .git build '**/node_modules'; do
    grep -qxF -- "$pattern" "$FV_ROOT/.dockerignore" || fv_fail ".dockerignore does not exclude $pattern"
done

# Build the image when an engine and the base images are here (no registry
# is reachable from the test machines, so nothing is pulled).
engine=""
for e in docker podman; do
    if command -v "$e" >/dev/null && timeout 10 "$e" info >/dev/null 2>&1 &&
        "$e" image inspect debian:bookworm >/dev/null 2>&1 &&
        "$e" image inspect debian:bookworm-slim >/dev/null 2>&1; then
        engine=$e
        break
    fi
done
if [[ -z $engine ]]; then
    fv_log "note: image build skipped: no image (needs docker or podman running with debian:bookworm and debian:bookworm-slim present locally)"
else
    tag=flowvis-test-$FV_TAG
    if timeout 900 "$engine" build --pull=false -t "$tag" "$FV_ROOT" >"$FV_TMP/build.log" 2>&1; then
        fv_defer "$engine" rmi "$tag"
        fv_assert_eq "$("$FLOWVIS" --help 2>&1 | head -n 1)" \
            "$("$engine" run --rm "$tag" --help 2>&1 | head -n 1)" "the image runs flowvis"
        fv_assert_eq 65532 "$("$engine" run --rm --entrypoint id "$tag" -u)" "the image's user"
    else
        fv_fail "$engine build failed: $(tail -n 20 "$FV_TMP/build.log")"
    fi
fi
