#!/usr/bin/env bash
# clickhouse-local.sh - the configuration of a private clickhouse-server on
# 127.0.0.1, for the tests, the benchmarks and the demo.
#
#   scripts/clickhouse-local.sh config DIR HTTP_PORT TCP_PORT [REMOTE_SERVERS_XML]
#   scripts/clickhouse-local.sh server       # prints the server command
#
# `config` writes DIR/config.xml and DIR/users.xml (user `default` without a
# password, from loopback only) with data, temporary files and logs under
# DIR, and prints the path of config.xml. REMOTE_SERVERS_XML is the inside
# of <remote_servers> (a cluster definition), or empty. Start the server
# with: $(scripts/clickhouse-local.sh server) --config-file=DIR/config.xml
# It works with Debian 12's clickhouse-server 18.16 (which runs as root)
# and with current releases (`clickhouse server`).
set -euo pipefail

server_cmd() {
    if [[ -x /usr/sbin/clickhouse-server ]]; then
        echo /usr/sbin/clickhouse-server
    elif command -v clickhouse-server >/dev/null 2>&1; then
        command -v clickhouse-server
    elif command -v clickhouse >/dev/null 2>&1; then
        echo "$(command -v clickhouse) server"
    else
        echo "clickhouse-local.sh: clickhouse-server is not installed" \
            "(scripts/deps.sh test installs it)" >&2
        return 1
    fi
}

write_config() {
    local dir=$1 http=$2 tcp=$3 remote=${4:-}
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/log"
    dir=$(cd "$dir" && pwd)
    cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>$dir/log/server.log</log>
    <errorlog>$dir/log/error.log</errorlog>
    <size>100M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <remote_servers>$remote</remote_servers>
</yandex>
EOF
    cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
EOF
    echo "$dir/config.xml"
}

case "${1:-}" in
config)
    [[ $# -ge 4 ]] || {
        echo "usage: $0 config DIR HTTP_PORT TCP_PORT [REMOTE_SERVERS_XML]" >&2
        exit 2
    }
    shift
    write_config "$@"
    ;;
server) server_cmd ;;
*)
    echo "usage: $0 config DIR HTTP_PORT TCP_PORT [REMOTE_SERVERS_XML] | server" >&2
    exit 2
    ;;
esac
