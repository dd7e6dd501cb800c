#!/usr/bin/env bash
# Install the Debian packages that a flowvis task needs, and only those that
# are missing.
#
#   scripts/deps.sh GROUP...     groups: build dev test bench demo clickhouse (or: all)
#
# Prints one line per group ("deps: test: all present" or "deps: test:
# installing X Y"). Runs `apt-get update` at most once, and only when
# something is missing. Without root it installs nothing: it names the
# missing packages and the command that would install them, and fails.
set -euo pipefail

# One line per group: the packages it needs. Keep each list sorted.
group_packages() {
    case "$1" in
    build) echo "ca-certificates gcc libcurl4-openssl-dev libevent-dev libjansson-dev libmicrohttpd-dev" \
        "libmnl-dev libnetfilter-conntrack-dev libnetfilter-log-dev libsqlite3-dev libssl-dev libyaml-dev make pkg-config" \
        "zlib1g-dev" ;;
    # libclang-rt-14-dev carries the libFuzzer and sanitizer runtimes.
    dev) echo "clang clang-format libclang-rt-14-dev" ;;
    # The integration tests drive real third-party tools in network
    # namespaces; python3 makes traffic with exact byte counts.
    # chromium: the web UI's tests run in Debian's headless Chromium.
    test) echo "chromium clickhouse-server conntrack coreutils curl iproute2 jq libcmocka-dev nftables openssl procps python3 python3-yaml" \
        "iperf3 nfdump softflowd sqlite3 tcpdump tshark ulogd2" ;;
    bench) echo "chromium clickhouse-server iperf3 nfdump pmacct procps sqlite3 valgrind" ;;
    # make demo: the namespace cluster (tests/cluster/cluster.sh) and its
    # workloads; DEMO_CLICKHOUSE=1 adds the clickhouse group.
    demo) echo "conntrack curl iproute2 jq kmod nftables python3" ;;
    clickhouse) echo "clickhouse-server" ;;
    *) return 1 ;;
    esac
}

# Commands a group needs, as COMMAND=PACKAGE: the package is installed only
# when the command is missing, so that a Node.js from elsewhere (NodeSource,
# nvm) is used as it is.  The web UI is built with Node.js and npm.
group_commands() {
    case "$1" in
    build) echo "node=nodejs npm=npm" ;;
    # The deployment tests render deploy/kubernetes with kubectl's built-in
    # kustomize and dry-run it; any kubectl will do.
    test) echo "kubectl=kubernetes-client" ;;
    *) ;;
    esac
}

# Print the packages of "$@" (COMMAND=PACKAGE) whose command is missing.
missing_commands() {
    local pair
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || echo "${pair#*=}"
    done
}

usage() {
    echo "usage: scripts/deps.sh GROUP...   (groups: build dev test bench demo clickhouse all)" >&2
    exit 2
}

# Print the packages among "$@" that dpkg does not list as installed.
missing_packages() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || echo "$pkg"
    done
}

[[ $# -gt 0 ]] || usage
groups=()
for arg in "$@"; do
    if [[ $arg == all ]]; then
        groups+=(build dev test bench demo)
    elif group_packages "$arg" >/dev/null; then
        groups+=("$arg")
    else
        echo "deps: unknown group '$arg'" >&2
        usage
    fi
done

# Without root nothing can be installed: report what is missing instead.
verb=installing
[[ $(id -u) -eq 0 ]] || verb=missing

to_install=()
for group in "${groups[@]}"; do
    # shellcheck disable=SC2046 # word splitting of the package list is intended
    mapfile -t missing < <(missing_packages $(group_packages "$group")
        missing_commands $(group_commands "$group"))
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "deps: $group: all present"
    else
        echo "deps: $group: $verb ${missing[*]}"
        to_install+=("${missing[@]}")
    fi
done
[[ ${#to_install[@]} -gt 0 ]] || exit 0

# A package may appear in two groups; install each once.
mapfile -t to_install < <(printf '%s\n' "${to_install[@]}" | sort -u)

if [[ $verb == missing ]]; then
    echo "deps: not root; install the missing packages with:" >&2
    echo "deps:   sudo scripts/deps.sh $*" >&2
    echo "deps:   (or: sudo apt-get install ${to_install[*]})" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer "no" in advance so
# that the install never waits for a terminal.
echo "wireshark-common wireshark-common/install-setuid boolean false" |
    debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${to_install[@]}" >/dev/null
echo "deps: installed ${to_install[*]}"
