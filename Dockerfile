# flowvis container image: one binary, `flowvis`, for the agent DaemonSet and
# the aggregator Deployment (deploy/kubernetes/, docs/deploy-kubernetes.md).
#
#   docker build -t flowvis .
#
# Builder: Debian 12 with the build packages of scripts/deps.sh (which also
# installs Node.js and npm for the web UI) runs `make`; `make` fetches the
# UI's npm packages pinned by ui/package-lock.json (npm ci) and embeds the UI
# in the binary.
#
# Runtime: debian:bookworm-slim plus exactly the shared libraries the binary
# links (tests/integration/test_deploy_manifests.sh compares this list with
# `ldd build/flowvis`) and ca-certificates (HTTPS to ClickHouse). The image
# runs as the unprivileged user flowvis (65532); the agent's DaemonSet runs
# its container as root with only CAP_NET_ADMIN (conntrack and NFLOG
# netlink sockets), which Kubernetes cannot grant a non-root process.

FROM debian:bookworm AS builder

WORKDIR /src
# npm (the web UI's packages) needs the CA bundle; Debian's nodejs only
# recommends it, and deps.sh installs without recommends.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" && build/flowvis --help >/dev/null

FROM debian:bookworm-slim

# One package per shared library the binary links (readelf -d: NEEDED), plus
# ca-certificates. libc6 and zlib1g come with the base image (priority
# required); zlib1g is named anyway because the binary links it directly.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        ca-certificates \
        libcurl4 \
        libevent-2.1-7 \
        libevent-openssl-2.1-7 \
        libjansson4 \
        libmicrohttpd12 \
        libmnl0 \
        libnetfilter-log1 \
        libsqlite3-0 \
        libssl3 \
        libyaml-0-2 \
        zlib1g \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 65532 flowvis \
    && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/flowvis \
        --no-create-home --shell /usr/sbin/nologin flowvis \
    && install -d -o flowvis -g flowvis -m 0750 /var/lib/flowvis

COPY --from=builder /src/build/flowvis /usr/local/bin/flowvis

USER 65532:65532
WORKDIR /var/lib/flowvis
# 4739 IPFIX (tcp, udp, tls), 10348 the aggregator's API and UI, 9101 the
# agent's metrics (loopback by default).
EXPOSE 4739/tcp 4739/udp 10348/tcp
ENTRYPOINT ["/usr/local/bin/flowvis"]
CMD ["--help"]
