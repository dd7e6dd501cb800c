#!/usr/bin/env bash
# Generate the TLS material and the API token of a flowvis deployment, and
# the Secrets that deploy/kubernetes expects, with the openssl command.
#
#   deploy/kubernetes/gen-tls.sh [-o DIR] [-n NAMESPACE] [-s SERVICE]
#                                [-c CLUSTER_DOMAIN] [-d DAYS]
#   kubectl apply -f DIR/secrets.yaml
#
# Writes into DIR (default ./flowvis-tls, created mode 0700):
#   ca.crt, ca.key          a private CA (ECDSA P-256); reused when both exist
#   server.crt, server.key  the aggregator's certificate: serverAuth, with
#                           SERVICE, SERVICE.NAMESPACE, SERVICE.NAMESPACE.svc,
#                           SERVICE.NAMESPACE.svc.CLUSTER_DOMAIN, localhost,
#                           127.0.0.1 and ::1 as subject alternative names
#   client.crt, client.key  the certificate every agent presents (clientAuth,
#                           CN flowvis-agent)
#   token                   the API's bearer token (32 random bytes, hex);
#                           reused when it exists
#   secrets.yaml            three Secrets in NAMESPACE:
#                             flowvis-tls        ca.crt, tls.crt, tls.key (server)
#                             flowvis-agent-tls  ca.crt, tls.crt, tls.key (client)
#                             flowvis-api-token  token
#
# Running it again with the same DIR keeps the CA and the token and issues
# new leaf certificates: apply secrets.yaml and restart the agents and the
# aggregator to renew them (docs/deploy-kubernetes.md, "Upgrading").
# Keys are unencrypted PKCS#8 PEM, mode 0600. Defaults: NAMESPACE flowvis,
# SERVICE flow-aggregator, CLUSTER_DOMAIN cluster.local, DAYS 825.
set -euo pipefail

dir=./flowvis-tls
namespace=flowvis
service=flow-aggregator
domain=cluster.local
days=825

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

while getopts "o:n:s:c:d:h" opt; do
    case $opt in
    o) dir=$OPTARG ;;
    n) namespace=$OPTARG ;;
    s) service=$OPTARG ;;
    c) domain=$OPTARG ;;
    d) days=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 0 ]] || usage
[[ $days =~ ^[0-9]+$ && $days -ge 1 && $days -le 36500 ]] || {
    echo "gen-tls.sh: -d DAYS: a number of days from 1 to 36500" >&2
    exit 2
}
# Names go into certificates and Secrets: DNS labels only.
for name in "$namespace" "$service"; do
    [[ $name =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || {
        echo "gen-tls.sh: '$name' is not a DNS label (Kubernetes names a Service or Namespace so)" >&2
        exit 2
    }
done
[[ $domain =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] || {
    echo "gen-tls.sh: -c '$domain' is not a DNS domain" >&2
    exit 2
}
command -v openssl >/dev/null || {
    echo "gen-tls.sh: needs the openssl command (Debian: apt-get install openssl)" >&2
    exit 1
}

umask 077
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A random positive serial number of 128 bits (RFC 5280 allows 20 octets).
serial() {
    echo "0x7$(openssl rand -hex 15)"
}

# newkey FILE: an ECDSA P-256 private key, PKCS#8 PEM.
newkey() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

if [[ -s $dir/ca.crt && -s $dir/ca.key ]]; then
    echo "gen-tls.sh: reusing the CA in $dir" >&2
else
    newkey "$dir/ca.key"
    cat >"$tmp/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    # The CA outlives the leaf certificates it signs, so that renewing them
    # (running this script again) does not mean handing out a new CA.
    openssl req -new -key "$dir/ca.key" -subj "/CN=flowvis-ca" -out "$tmp/ca.csr"
    openssl x509 -req -in "$tmp/ca.csr" -signkey "$dir/ca.key" -days $((days * 2)) \
        -set_serial "$(serial)" -extfile "$tmp/ca.ext" -out "$dir/ca.crt" 2>/dev/null
fi

# issue NAME CN EXTFILE: NAME.key and NAME.crt signed by the CA.
issue() {
    newkey "$dir/$1.key"
    openssl req -new -key "$dir/$1.key" -subj "/CN=$2" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -days "$days" -set_serial "$(serial)" -extfile "$3" -out "$dir/$1.crt" 2>/dev/null
}

fqdn=$service.$namespace.svc
cat >"$tmp/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$service, DNS:$service.$namespace, DNS:$fqdn, DNS:$fqdn.$domain, DNS:localhost, IP:127.0.0.1, IP:::1
EOF
issue server "$fqdn" "$tmp/server.ext"

cat >"$tmp/client.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
issue client flowvis-agent "$tmp/client.ext"

[[ -s $dir/token ]] || openssl rand -hex 32 >"$dir/token"
chmod 0600 "$dir"/*.key "$dir/token"
chmod 0644 "$dir"/*.crt

# b64 FILE: the file's bytes in base64 on one line.
b64() {
    base64 -w0 <"$1"
}

# A Secret of type kubernetes.io/tls carries tls.crt and tls.key; ca.crt is
# the usual extra key for the CA.
{
    cat <<EOF
# Generated by deploy/kubernetes/gen-tls.sh: the aggregator's TLS material.
apiVersion: v1
kind: Secret
metadata:
  name: flowvis-tls
  namespace: $namespace
  labels:
    app.kubernetes.io/name: flowvis
type: kubernetes.io/tls
data:
  ca.crt: $(b64 "$dir/ca.crt")
  tls.crt: $(b64 "$dir/server.crt")
  tls.key: $(b64 "$dir/server.key")
---
# The agents' client certificate and the CA that signed the aggregator's.
apiVersion: v1
kind: Secret
metadata:
  name: flowvis-agent-tls
  namespace: $namespace
  labels:
    app.kubernetes.io/name: flowvis
type: kubernetes.io/tls
data:
  ca.crt: $(b64 "$dir/ca.crt")
  tls.crt: $(b64 "$dir/client.crt")
  tls.key: $(b64 "$dir/client.key")
---
# The bearer token of the aggregator's API (apiServer.tokenFile).
apiVersion: v1
kind: Secret
metadata:
  name: flowvis-api-token
  namespace: $namespace
  labels:
    app.kubernetes.io/name: flowvis
type: Opaque
data:
  token: $(b64 "$dir/token")
EOF
} >"$dir/secrets.yaml"

echo "gen-tls.sh: wrote $dir (server name $fqdn, valid $days days)" >&2
echo "gen-tls.sh: next: kubectl apply -f $dir/secrets.yaml   (the namespace $namespace must exist)" >&2
