#!/usr/bin/env python3
"""demo-workloads.py - application traffic between the Pods of the namespace cluster.

`make demo` runs flowvis on the mini cluster of tests/cluster/cluster.sh,
whose Pods are network namespaces with nothing running in them.  This
script makes them talk the way the applications they stand for would: web
calls through Service ClusterIPs, DNS over UDP, Prometheus scrapes of Pod
IPs, a long-lived gRPC-like stream, a backup upload to the internet, calls
from outside through a NodePort.  It is one long-running process.

    scripts/demo-workloads.py CLUSTER_ENV [--duration S] [--status FILE] [--seed N]

Design: threads, each in its own network namespace
--------------------------------------------------
A network namespace belongs to a thread (a Linux task), not to a process:
after setns(fd, CLONE_NEWNET) on /run/netns/<name>, every socket the
calling thread creates lives in that namespace, while the other threads stay
where they were.  So there is no process per namespace: every server (one
thread per listening socket) and every client (one thread per source and
target) enters its namespace once, first thing, and never leaves it.  The
main thread never calls setns; it plans, starts, reports and stops.  A
socket keeps the namespace it was created in, so the short-lived threads
that serve accepted connections need no setns of their own.

Everything is driven by two tables: WORKLOADS (who calls whom, how often,
how much) and SERVER_PORTS (what every app listens on).  The --help text is
generated from them too.

Stopping: one threading.Event.  Every sleep is a wait on it, every blocking
socket call has a timeout, and on stop the main thread shuts down every open
TCP socket (class Sockets), which wakes the threads blocked in accept, recv
or send at once (and sends the FINs); UDP waits last at most POLL (0.5 s).  SIGINT and SIGTERM are blocked before the first worker thread
starts (threads inherit the mask) and the main thread takes them with
sigtimedwait(), so no Python signal handler ever runs in the middle of a
lock operation.

Wire protocol (both ends are this script)
-----------------------------------------
TCP: the client sends a header line "<reply_bytes> <upload_bytes>\\n" and
then exactly upload_bytes bytes; the server reads both and answers with
exactly reply_bytes bytes.  A connection may carry many exchanges; either
side closing it ends it.  Sizes are at most 64 MiB; a malformed header
closes that connection (the server keeps running).
UDP: a datagram starts with "<reply_bytes>\\n" (padding after); the server
answers one datagram of min(reply_bytes, 1400) bytes to the sender.
Payloads are zeros: only the sizes matter to the flow records.
"""

import argparse
import ctypes
import itertools
import json
import math
import os
import queue
import random
import re
import shlex
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

KB = 1000
MIB = 1024 * 1024
MAX_SIZE = 64 * MIB  # largest reply or upload the protocol allows
UDP_MAX_REPLY = 1400  # a reply datagram never exceeds this
MAX_HEADER = 64  # a TCP header line longer than this is malformed
CHUNK = 64 * 1024  # send and receive buffer size

CONNECT_TIMEOUT = 3.0  # TCP connect; also the wait for a UDP reply
EXCHANGE_TIMEOUT = 10.0  # one whole TCP exchange, unless the workload says
SERVER_IDLE_TIMEOUT = 30.0  # a server drops a connection idle this long
POLL = 0.5  # accept/recv timeout of servers and UDP clients, so they notice stop
RECONNECT_DELAY = 2.0  # a dropped stream reconnects after this
JITTER = 0.2  # periods vary by +-20%
FAILURE_WINDOW = 30.0  # at most one failure line per workload per window
STATUS_PERIOD = 2.0  # --status is rewritten this often
STOP_GRACE = 2.0  # how long stopping waits for the threads
READY_TIMEOUT = 5.0  # how long start-up waits for the servers to bind

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
EXTERNAL = "external"  # in Workload.sources: the host outside the cluster

# ---------------------------------------------------------------------------
# Network namespaces
# ---------------------------------------------------------------------------

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.setns.restype = ctypes.c_int


class NetnsError(Exception):
    """A network namespace that cannot be entered; the message names it."""


def enter_netns(name):
    """Move the calling thread (only it) into network namespace NAME."""
    path = os.path.join(NETNS_DIR, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise NetnsError(f"network namespace {name}: {path}: {err.strerror}") from None
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise NetnsError(f"network namespace {name}: setns: {os.strerror(errno)}")
    finally:
        os.close(fd)


def check_namespaces(names):
    """Enter every namespace once from a scratch thread; the first error, or None.

    setns is per thread, so the check runs in a thread of its own that ends
    right after, and the main thread stays in the namespace it started in.
    """
    errors = []

    def probe():
        for name in names:
            try:
                enter_netns(name)
            except NetnsError as err:
                errors.append(str(err))
                return

    thread = threading.Thread(target=probe, name="netns-check", daemon=True)
    thread.start()
    thread.join()
    return errors[0] if errors else None


# ---------------------------------------------------------------------------
# The cluster, from cluster.env
# ---------------------------------------------------------------------------


class ConfigError(Exception):
    """A cluster.env that cannot be used; the message names file and line or variable."""


@dataclass(frozen=True)
class Host:
    """One end of the traffic: a Pod, a node or the external host."""

    name: str  # "namespace/pod-name", a node name, or "external"
    app: str  # the Pod's app ("catalog"); "" for nodes and the external host
    netns: str  # network namespace, under /run/netns
    node: str  # the node a Pod runs on ("node-2"); "" for the external host
    ip4: str
    ip6: str  # "" when the host has none


@dataclass
class Cluster:
    """What the workloads need to know of the cluster."""

    env: dict  # all of cluster.env, for the Services
    nodes: list  # Host per node, node-1 first
    pods: list  # Host per Pod, in FVC_POD_KEYS order
    external: Host  # the host outside the cluster
    node_port: int  # NodePort of Service shop/frontend

    def apps(self, *apps):
        """The Pods of the given apps, in cluster order."""
        return [pod for pod in self.pods if pod.app in apps]

    def service_ips(self, service):
        """(IPv4, IPv6) ClusterIP of "namespace/name"; "" for what is missing."""
        key = "FVC_SVC_" + service.split("/")[-1].upper().replace("-", "_")
        return self.env.get(key + "_IP4", ""), self.env.get(key + "_IP6", "")


def read_env(path):
    """cluster.env as a dict: NAME="value" or NAME=<bash %q> lines, # comments."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            try:
                words = shlex.split(value) if sep else None
            except ValueError:
                words = None
            if not name.isidentifier() or words is None or len(words) > 1:
                raise ConfigError(f"{path}:{lineno}: expected NAME=value, got {line[:60]!r}")
            env[name] = words[0] if words else ""
    return env


def load_cluster(path):
    """The Cluster described by cluster.env at PATH."""
    env = read_env(path)

    def need(var):
        if not env.get(var):
            raise ConfigError(f"{path}: {var} is missing or empty")
        return env[var]

    def number(var, value):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{path}: {var}={value!r} is not a number") from None

    nodes = []
    for i in range(1, number("FVC_NODES", need("FVC_NODES")) + 1):
        v = f"FVC_NODE_{i}_"
        nodes.append(Host(env.get(v + "NAME", f"node-{i}"), "", need(v + "NETNS"), f"node-{i}",
                          need(v + "IP4"), env.get(v + "IP6", "")))
    pods = []
    for key in need("FVC_POD_KEYS").split():
        v = f"FVC_POD_{key}_"
        pods.append(Host(f"{need(v + 'NAMESPACE')}/{need(v + 'NAME')}", need(v + "APP"),
                         need(v + "NETNS"), need(v + "NODE"), need(v + "IP4"),
                         env.get(v + "IP6", "")))
    external = Host(EXTERNAL, "", need("FVC_EXTERNAL_NETNS"), "", need("FVC_EXTERNAL_IP4"),
                    env.get("FVC_EXTERNAL_IP6", ""))
    port_var = "FVC_SVC_FRONTEND_HTTP_NODE_PORT"
    node_port = number(port_var, env.get(port_var) or "30080")
    return Cluster(env, nodes, pods, external, node_port)


# ---------------------------------------------------------------------------
# Targets: whom a workload's clients call.  Each kind says what it is
# (describe), why it cannot run in this cluster (skip_reason, None if it
# can), and which calls one source makes (calls).
# ---------------------------------------------------------------------------


def fmt_addr(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Call:
    """Where one client sends its calls."""

    addrs: tuple  # addresses used in turn, one per call (v4, v4, v4, v6: every 4th over IPv6)
    port: int


@dataclass(frozen=True)
class ToService:
    """A Service's ClusterIP; optionally every Nth call over IPv6."""

    service: str  # "namespace/name"
    port: int
    backend: str = ""  # the app behind it ("" for a Service without Pods)
    ipv6_every: int = 0  # every Nth call uses the IPv6 ClusterIP, if any; 0: never

    def describe(self, cluster=None):
        if cluster is None:
            text = f"Service {self.service} ClusterIP port {self.port}"
            return text + (f", every {self.ipv6_every}th call over IPv6" if self.ipv6_every else "")
        ip4, ip6 = cluster.service_ips(self.service)
        text = f"Service {self.service} {fmt_addr(ip4, self.port)}"
        if self.ipv6_every and ip6:
            text += f", every {self.ipv6_every}th call {fmt_addr(ip6, self.port)}"
        return text

    def skip_reason(self, cluster):
        if not cluster.service_ips(self.service)[0]:
            return f"Service {self.service} has no IPv4 ClusterIP in cluster.env"
        if self.backend and not cluster.apps(self.backend):
            return f"no {self.backend} Pods behind Service {self.service}"
        return None

    def calls(self, cluster, source, index):
        ip4, ip6 = cluster.service_ips(self.service)
        if self.ipv6_every and ip6:
            return [Call((ip4,) * (self.ipv6_every - 1) + (ip6,), self.port)]
        return [Call((ip4,), self.port)]


@dataclass(frozen=True)
class ToEveryPod:
    """Every Pod of some apps, by Pod IP (no Service): one client per Pod."""

    targets: tuple  # (app, port) pairs

    def describe(self, cluster=None):
        parts = []
        for app, port in self.targets:
            count = f" ({len(cluster.apps(app))})" if cluster else ""
            parts.append(f"every {app} Pod IP{count} port {port}")
        return " and ".join(parts)

    def skip_reason(self, cluster):
        if any(cluster.apps(app) for app, _ in self.targets):
            return None
        return "no " + " or ".join(app for app, _ in self.targets) + " Pods"

    def calls(self, cluster, source, index):
        return [Call((pod.ip4,), port) for app, port in self.targets for pod in cluster.apps(app)]


@dataclass(frozen=True)
class ToOnePod:
    """One Pod of an app by Pod IP: round robin over them, or on another node first."""

    app: str
    port: int
    prefer_remote: bool = False  # pick among the Pods on other nodes when there are any

    def describe(self, cluster=None):
        how = "on another node if any" if self.prefer_remote else "round robin"
        return f"one {self.app} Pod IP port {self.port} ({how})"

    def skip_reason(self, cluster):
        return None if cluster.apps(self.app) else f"no {self.app} Pods"

    def calls(self, cluster, source, index):
        pods = cluster.apps(self.app)
        if self.prefer_remote:
            pods = [pod for pod in pods if pod.node != source.node] or pods
        return [Call((pods[index % len(pods)].ip4,), self.port)]


@dataclass(frozen=True)
class ToExternal:
    """The host outside the cluster (through the nodes' masquerade)."""

    port: int

    def describe(self, cluster=None):
        host = cluster.external.ip4 if cluster else "IP"
        return f"external host {fmt_addr(host, self.port)}"

    def skip_reason(self, cluster):
        return None

    def calls(self, cluster, source, index):
        return [Call((cluster.external.ip4,), self.port)]


@dataclass(frozen=True)
class ToNodePorts:
    """The NodePort of Service shop/frontend on every node's IPv4."""

    def describe(self, cluster=None):
        if cluster is None:
            return "every node IPv4, NodePort of shop/frontend"
        return f"every node IPv4 ({len(cluster.nodes)}) port {cluster.node_port}"

    def skip_reason(self, cluster):
        return None

    def calls(self, cluster, source, index):
        return [Call((node.ip4,), cluster.node_port) for node in cluster.nodes]


# ---------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One kind of traffic: every source calls every target it gets, periodically."""

    name: str
    proto: str  # "tcp" or "udp"
    sources: tuple  # apps whose Pods call, or (EXTERNAL,)
    target: object  # a To* above
    period: float  # seconds between calls (+-20% jitter)
    upload: tuple  # (min, max) bytes after the header; UDP: the whole datagram
    reply: tuple  # (min, max) bytes of the reply
    timeout: float = EXCHANGE_TIMEOUT  # one whole TCP exchange, connect excluded
    first_call: tuple = ()  # (min, max) delay of the first call; empty: 0..period
    stream: bool = False  # one long-lived connection per client instead of one per call
    refused: bool = False  # the NetworkPolicies refuse these calls: a refusal is the success

    def source_hosts(self, cluster):
        return [cluster.external] if self.sources == (EXTERNAL,) else cluster.apps(*self.sources)


WORKLOADS = [
    Workload("web-catalog", "tcp", ("frontend",),
             ToService("shop/catalog", 80, "catalog", ipv6_every=4),
             period=1, upload=(300, 600), reply=(2 * KB, 30 * KB)),
    Workload("web-payments", "tcp", ("frontend",),
             ToService("payments/payments-api", 8080, "payments-api"),
             period=3, upload=(KB, KB), reply=(500, 500)),
    Workload("dns", "udp", ("frontend", "catalog"),
             ToService("kube-system/kube-dns", 53, "coredns"),
             period=2, upload=(40, 60), reply=(80, 200)),
    Workload("metrics-scrape", "tcp", ("prometheus",),
             ToEveryPod((("catalog", 9090), ("coredns", 9153))),
             period=5, upload=(200, 200), reply=(20 * KB, 20 * KB)),
    Workload("dashboards", "tcp", ("grafana",),
             ToOnePod("prometheus", 9090),
             period=4, upload=(400, 400), reply=(8 * KB, 8 * KB)),
    Workload("ledger-stream", "tcp", ("cart",),
             ToOnePod("ledger", 50051, prefer_remote=True),
             period=0.5, upload=(200, 200), reply=(100, 100), stream=True),
    Workload("batch-backup", "tcp", ("ledger",),
             ToExternal(443),
             period=20, upload=(2 * MIB, 2 * MIB), reply=(KB, KB), timeout=30, first_call=(3, 8)),
    Workload("external-api", "tcp", ("frontend",),
             ToExternal(443),
             period=5, upload=(800, 800), reply=(4 * KB, 4 * KB)),
    Workload("ntp", "udp", ("catalog",),
             ToExternal(123),
             period=10, upload=(48, 48), reply=(48, 48)),
    Workload("apiserver", "tcp", ("prometheus", "coredns"),
             ToService("default/kubernetes", 443),
             period=10, upload=(300, 300), reply=(3 * KB, 3 * KB)),
    Workload("nodeport", "tcp", (EXTERNAL,),
             ToNodePorts(),
             period=3, upload=(500, 500), reply=(6 * KB, 6 * KB)),
    # Refused by the cluster's NetworkPolicies (cluster.sh --policies): ledger
    # is not among payments-api's allowed clients (ingress drop, the connect
    # times out); Grafana may only reach Prometheus and DNS (egress reject).
    Workload("denied-payments", "tcp", ("ledger",),
             ToOnePod("payments-api", 8080),
             period=10, upload=(200, 200), reply=(100, 100), refused=True),
    Workload("denied-egress", "tcp", ("grafana",),
             ToExternal(443),
             period=10, upload=(200, 200), reply=(100, 100), refused=True),
]

# What every Pod of an app listens on, as (proto, port).
SERVER_PORTS = {
    "frontend": (("tcp", 8080),),
    "catalog": (("tcp", 8080), ("tcp", 9090)),
    "payments-api": (("tcp", 8080),),
    "coredns": (("udp", 53), ("tcp", 9153)),
    "prometheus": (("tcp", 9090),),
    "cart": (("tcp", 8080),),
    "ledger": (("tcp", 50051),),
    "grafana": (("tcp", 3000),),
}
NODE1_PORTS = (("tcp", 6443),)  # the API server behind Service default/kubernetes
EXTERNAL_PORTS = (("tcp", 443), ("udp", 123))


def fmt_size(lo, hi=None):
    """A size or size range for people: 300-600 B, 2-30 KB, 2 MiB."""
    hi = lo if hi is None else hi
    unit, name = next((u, n) for u, n in ((MIB, "MiB"), (KB, "KB"), (1, "B"))
                      if hi >= u and lo % u == 0 and hi % u == 0)
    return f"{lo // unit} {name}" if lo == hi else f"{lo // unit}-{hi // unit} {name}"


def help_epilog():
    """The workload and server tables, for --help."""
    lines = ["workloads (clients -> target; protocol, period, upload / reply):"]
    for w in WORKLOADS:
        who = "the external host" if w.sources == (EXTERNAL,) else " and ".join(w.sources) + " Pods"
        how = "one long-lived connection, an exchange" if w.stream else w.proto
        lines.append(f"  {w.name:<15} {who} -> {w.target.describe()}")
        lines.append(f"  {'':<15} {how} every {w.period:g} s, {fmt_size(*w.upload)} / "
                     f"{fmt_size(*w.reply)}")
    lines.append("servers (TCP and UDP on [::], IPv4 too):")
    for app, ports in SERVER_PORTS.items():
        lines.append(f"  {app + ' Pods':<20} " + ", ".join(f"{p}/{proto}" for proto, p in ports))
    for who, ports in (("node-1", NODE1_PORTS), ("external host", EXTERNAL_PORTS)):
        lines.append(f"  {who:<20} " + ", ".join(f"{p}/{proto}" for proto, p in ports))
    lines.append("Periods get +-20% jitter; timeouts: connect 3 s, exchange 10 s (backup 30 s).")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Shared state: stop, open sockets, counters, logging
# ---------------------------------------------------------------------------

_print_lock = threading.Lock()


def log(message):
    with _print_lock:
        print(f"workloads: {message}", flush=True)


class Sockets:
    """Every open socket, so that stopping can wake the threads blocked on them (TCP).

    Sockets are closed through close(), under the lock that shutdown_all()
    holds, so a descriptor is never shut down after it was closed and reused.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._open = set()
        self._stopping = False

    def add(self, sock):
        with self._lock:
            self._open.add(sock)
            if self._stopping:
                _shutdown(sock)

    def close(self, sock):
        with self._lock:
            self._open.discard(sock)
            sock.close()

    def shutdown_all(self):
        with self._lock:
            self._stopping = True
            for sock in self._open:
                _shutdown(sock)


def _shutdown(sock):
    # Only TCP: shutdown() on a UDP socket makes it "readable" while recv
    # still says EAGAIN, so a thread waiting in recv with a timeout would
    # spin until the timeout.  UDP waits are POLL long instead.
    if sock.type != socket.SOCK_STREAM:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected, or already shut down: nothing to wake


@dataclass
class Runtime:
    """What every thread shares."""

    stop: threading.Event
    sockets: Sockets


class Stats:
    """The counters of one workload, shared by its clients."""

    def __init__(self, name):
        self.name = name
        self.clients = 0
        self._lock = threading.Lock()
        self._counts = {"ok": 0, "failed": 0, "refused": 0, "bytes_sent": 0, "bytes_received": 0}
        self._failures = deque()  # monotonic times of the failures in the window
        self._last_report = -math.inf

    def success(self, sent, received):
        with self._lock:
            self._counts["ok"] += 1
            self._counts["bytes_sent"] += sent
            self._counts["bytes_received"] += received

    def refusal(self):
        """Count a call that the NetworkPolicies refused, as they should."""
        with self._lock:
            self._counts["refused"] += 1

    def failure(self, error):
        """Count a failed call; log a line if none was logged in the window."""
        now = time.monotonic()
        with self._lock:
            self._counts["failed"] += 1
            self._failures.append(now)
            while self._failures[0] < now - FAILURE_WINDOW:
                self._failures.popleft()
            if now - self._last_report < FAILURE_WINDOW:
                return
            self._last_report = now
            count = len(self._failures)
        plural = "failure" if count == 1 else "failures"
        log(f"{self.name}: {count} {plural} in the last {FAILURE_WINDOW:g} s, last: {error}")

    def snapshot(self):
        with self._lock:
            return {"clients": self.clients, **self._counts}


# ---------------------------------------------------------------------------
# Wire protocol
# ---------------------------------------------------------------------------

ZEROS = bytes(CHUNK)
TCP_HEADER = re.compile(rb"(\d{1,9}) (\d{1,9})")
UDP_HEADER = re.compile(rb"(\d{1,9})")


def set_deadline(sock, deadline):
    """Time out the next operation at DEADLINE (monotonic); None: keep the timeout."""
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("exchange timed out")
    sock.settimeout(left)


def send_zeros(sock, n, deadline=None):
    view = memoryview(ZEROS)
    while n > 0:
        chunk = min(n, CHUNK)
        set_deadline(sock, deadline)
        sock.sendall(view[:chunk])
        n -= chunk


def recv_discard(sock, n, scratch, deadline=None):
    """Read exactly N bytes and forget them."""
    want = n
    while n > 0:
        set_deadline(sock, deadline)
        got = sock.recv_into(scratch, min(n, len(scratch)))
        if got == 0:
            raise ConnectionError(f"connection closed after {want - n} of {want} bytes")
        n -= got


def read_line(sock, pending):
    """The next header line (without "\\n"), or None at a clean end of stream.

    PENDING holds what was received beyond the line (the start of the
    upload); a line longer than MAX_HEADER comes back as b"" (malformed).
    """
    while True:
        end = pending.find(b"\n")
        if end >= 0:
            line = bytes(pending[:end])
            del pending[:end + 1]
            return line
        if len(pending) > MAX_HEADER:
            return b""
        data = sock.recv(CHUNK)
        if not data:
            if pending:
                raise ConnectionError("connection closed inside a header")
            return None
        pending += data


def parse_tcp_header(line):
    """(reply, upload) from a header line, or None if it is malformed."""
    match = TCP_HEADER.fullmatch(line)
    if not match:
        return None
    reply, upload = int(match[1]), int(match[2])
    return (reply, upload) if reply <= MAX_SIZE and upload <= MAX_SIZE else None


def parse_udp_request(datagram):
    """The reply size a request datagram asks for, or None if it is malformed."""
    match = UDP_HEADER.fullmatch(datagram.split(b"\n", 1)[0])
    return min(int(match[1]), UDP_MAX_REPLY) if match and b"\n" in datagram else None


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """One listening socket."""

    netns: str
    proto: str  # "tcp" or "udp"
    port: int


def plan_servers(cluster):
    servers = [Server(pod.netns, proto, port)
               for pod in cluster.pods for proto, port in SERVER_PORTS.get(pod.app, ())]
    servers += [Server(cluster.nodes[0].netns, proto, port) for proto, port in NODE1_PORTS]
    servers += [Server(cluster.external.netns, proto, port) for proto, port in EXTERNAL_PORTS]
    return servers


def listen(proto, port):
    """A socket bound to [::]:PORT that takes IPv4 too (in the calling thread's namespace)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET6, kind)
    try:
        # SO_REUSEADDR lets a restarted demo listen despite connections in
        # TIME_WAIT.  Not on UDP: there it lets a second instance bind the
        # same port silently and take the datagrams.
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        if proto == "tcp":
            sock.listen(128)
        sock.settimeout(POLL)
    except OSError:
        sock.close()
        raise
    return sock


def run_server(server, rt, ready):
    """Thread body: enter the namespace, bind, report to READY, then serve until stop."""
    try:
        enter_netns(server.netns)
        sock = listen(server.proto, server.port)
    except (NetnsError, OSError) as err:
        ready.put(f"cannot serve {server.port}/{server.proto} in network namespace "
                  f"{server.netns}: {err}")
        return
    rt.sockets.add(sock)
    ready.put(None)
    try:
        if server.proto == "tcp":
            accept_loop(sock, rt)
        else:
            answer_loop(sock, rt)
    finally:
        rt.sockets.close(sock)


def accept_loop(sock, rt):
    while not rt.stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            rt.stop.wait(0.1)  # EMFILE and the like: try again, but never spin
            continue
        rt.sockets.add(conn)
        try:
            threading.Thread(target=serve_connection, args=(conn, rt), daemon=True,
                             name="conn").start()
        except RuntimeError:  # no more threads: drop this connection
            rt.sockets.close(conn)


def serve_connection(conn, rt):
    """Thread body: answer the exchanges of one TCP connection until it ends."""
    scratch = bytearray(CHUNK)
    pending = bytearray()
    try:
        conn.settimeout(SERVER_IDLE_TIMEOUT)
        while not rt.stop.is_set():
            line = read_line(conn, pending)
            sizes = None if line is None else parse_tcp_header(line)
            if sizes is None:
                break  # end of stream, or a malformed header: close
            reply, upload = sizes
            early = min(upload, len(pending))
            del pending[:early]
            recv_discard(conn, upload - early, scratch)
            send_zeros(conn, reply)
    except OSError:
        pass  # timeout, reset, stop: the connection ends either way
    finally:
        rt.sockets.close(conn)


def answer_loop(sock, rt):
    view = memoryview(ZEROS)
    while not rt.stop.is_set():
        try:
            datagram, peer = sock.recvfrom(CHUNK)
        except TimeoutError:
            continue
        except OSError:
            rt.stop.wait(0.1)
            continue
        size = parse_udp_request(datagram)
        if size is None:
            continue
        try:
            sock.sendto(view[:size], peer)
        except OSError:
            pass  # the peer is gone; UDP does not care


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


@dataclass
class Client:
    """One source calling one Call target, periodically."""

    workload: Workload
    source: Host
    call: Call
    stats: Stats
    rng: random.Random

    def sizes(self):
        return self.rng.randint(*self.workload.reply), self.rng.randint(*self.workload.upload)

    def jittered(self, period):
        return period * self.rng.uniform(1 - JITTER, 1 + JITTER)

    def first_delay(self):
        return self.rng.uniform(*(self.workload.first_call or (0, self.workload.period)))

    def fail(self, host, err):
        text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        self.stats.failure(f"{self.source.name} -> {fmt_addr(host, self.call.port)}: {text}")


def connect(host, port, rt):
    """A TCP connection to HOST:PORT, registered with rt.sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    rt.sockets.add(sock)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect((host, port))
    except BaseException:
        rt.sockets.close(sock)
        raise
    return sock


def tcp_exchange(sock, reply, upload, deadline, scratch):
    """One request and its reply; (bytes sent, bytes received)."""
    header = f"{reply} {upload}\n".encode()
    set_deadline(sock, deadline)
    sock.sendall(header)
    send_zeros(sock, upload, deadline)
    recv_discard(sock, reply, scratch, deadline)
    return len(header) + upload, reply


def tcp_call(client, host, rt, scratch):
    """A new connection carrying one exchange."""
    sock = connect(host, client.call.port, rt)
    try:
        reply, upload = client.sizes()
        deadline = time.monotonic() + client.workload.timeout
        return tcp_exchange(sock, reply, upload, deadline, scratch)
    finally:
        rt.sockets.close(sock)


def recv_datagram(sock, deadline, stop):
    """One datagram, waiting POLL at a time so that stop is noticed."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or stop.is_set():
            raise TimeoutError("timed out")
        sock.settimeout(min(POLL, left))
        try:
            return sock.recv(CHUNK)
        except TimeoutError:
            continue


def udp_call(client, host, rt):
    """A new socket (so a new conntrack entry) carrying one query and its answer."""
    reply, size = client.sizes()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    rt.sockets.add(sock)
    try:
        sock.connect((host, client.call.port))  # so that ICMP errors come back as errors
        header = f"{reply}\n".encode()
        datagram = header + ZEROS[:max(0, size - len(header))]
        sock.send(datagram)
        answer = recv_datagram(sock, time.monotonic() + CONNECT_TIMEOUT, rt.stop)
    finally:
        rt.sockets.close(sock)
    want = min(reply, UDP_MAX_REPLY)
    if len(answer) != want:
        raise ConnectionError(f"short reply: {len(answer)} of {want} bytes")
    return len(datagram), len(answer)


def run_client(client, rt):
    """Thread body: enter the source's namespace, then call until stop."""
    try:
        enter_netns(client.source.netns)
    except NetnsError as err:
        client.stats.failure(str(err))
        return
    if rt.stop.wait(client.first_delay()):
        return
    if client.workload.stream:
        stream_calls(client, rt)
    else:
        periodic_calls(client, rt)


def periodic_calls(client, rt):
    scratch = bytearray(CHUNK)
    w = client.workload
    for n in itertools.count():
        host = client.call.addrs[n % len(client.call.addrs)]
        try:
            if w.proto == "udp":
                sent, received = udp_call(client, host, rt)
            else:
                sent, received = tcp_call(client, host, rt, scratch)
        except OSError as err:
            if rt.stop.is_set():
                return
            if w.refused:
                client.stats.refusal()
            else:
                client.fail(host, err)
        else:
            if w.refused:
                client.fail(host, OSError("a call the NetworkPolicies refuse got through"))
            else:
                client.stats.success(sent, received)
        if rt.stop.wait(client.jittered(w.period)):
            return


def stream_calls(client, rt):
    """One long-lived connection with an exchange every period; reconnect when it drops."""
    scratch = bytearray(CHUNK)
    host = client.call.addrs[0]
    while not rt.stop.is_set():
        try:
            sock = connect(host, client.call.port, rt)
        except OSError as err:
            if rt.stop.is_set():
                return
            client.fail(host, err)
            rt.stop.wait(RECONNECT_DELAY)
            continue
        try:
            while True:
                reply, upload = client.sizes()
                deadline = time.monotonic() + client.workload.timeout
                client.stats.success(*tcp_exchange(sock, reply, upload, deadline, scratch))
                if rt.stop.wait(client.jittered(client.workload.period)):
                    break
        except OSError as err:
            if not rt.stop.is_set():
                client.fail(host, err)
        finally:
            rt.sockets.close(sock)
        rt.stop.wait(RECONNECT_DELAY)


# ---------------------------------------------------------------------------
# Main: plan, check, start, report, stop
# ---------------------------------------------------------------------------


@dataclass
class Plan:
    """A workload as it runs in this cluster."""

    workload: Workload
    stats: Stats
    clients: list  # Client per thread; empty when skipped
    skipped: str  # why it does not run; "" when it does


def plan_workload(w, cluster, rng):
    stats = Stats(w.name)
    sources = w.source_hosts(cluster)
    reason = "" if sources else "no " + " or ".join(w.sources) + " Pods"
    reason = reason or w.target.skip_reason(cluster) or ""
    clients = []
    if not reason:
        for index, source in enumerate(sources):
            for call in w.target.calls(cluster, source, index):
                clients.append(Client(w, source, call, stats, random.Random(rng.getrandbits(64))))
    stats.clients = len(clients)
    return Plan(w, stats, clients, reason)


def announce(plan, cluster):
    w = plan.workload
    if plan.skipped:
        log(f"{w.name}: skipped ({plan.skipped})")
        return
    how = f"{w.proto}, " + ("one connection, exchange" if w.stream else "call")
    log(f"{w.name}: {len(plan.clients)} clients -> {w.target.describe(cluster)} "
        f"({how} every {w.period:g} s)")


def start_thread(target, args, name):
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def start_servers(servers, rt):
    """One thread per listening socket; the threads, or an error once all have reported."""
    ready = queue.Queue()
    threads = [start_thread(run_server, (s, rt, ready), f"{s.netns}:{s.port}/{s.proto}")
               for s in servers]
    deadline = time.monotonic() + READY_TIMEOUT
    for _ in servers:
        try:
            error = ready.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return threads, f"servers did not start within {READY_TIMEOUT:g} s"
        if error:
            return threads, error
    return threads, None


def write_status(path, started, servers, plans):
    status = {
        "uptime_s": round(time.monotonic() - started, 3),
        "servers": servers,
        "workloads": {p.workload.name: p.stats.snapshot() for p in plans},
    }
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(status, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as err:
        log(f"status: {path}: {err.strerror}")


def wait_for_stop(duration, on_tick):
    """Until SIGINT, SIGTERM or DURATION (0: forever); ON_TICK every STATUS_PERIOD."""
    start = time.monotonic()
    end = start + duration if duration > 0 else math.inf
    next_tick = start + STATUS_PERIOD
    while True:
        now = time.monotonic()
        if now >= end:
            return
        if signal.sigtimedwait(STOP_SIGNALS, min(next_tick, end) - now) is not None:
            return
        if time.monotonic() >= next_tick:
            on_tick()
            next_tick += STATUS_PERIOD


def stop_all(rt, threads):
    """Set stop, wake every blocked socket, give the threads STOP_GRACE to end."""
    rt.stop.set()
    rt.sockets.shutdown_all()
    deadline = time.monotonic() + STOP_GRACE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="demo-workloads.py",
        description="Application traffic between the Pods of the namespace cluster "
                    "(tests/cluster/cluster.sh). Runs as root: threads enter the "
                    "namespaces with setns.",
        epilog=help_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cluster_env", metavar="CLUSTER_ENV",
                        help="cluster.env written by `tests/cluster/cluster.sh up`")
    parser.add_argument("--duration", type=float, default=0, metavar="SECONDS",
                        help="stop after this long (default 0: until SIGINT/SIGTERM)")
    parser.add_argument("--status", metavar="FILE",
                        help="write counters as JSON to FILE every 2 s and at exit")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="seed of the random sizes, delays and jitter")
    args = parser.parse_args(argv)
    if args.duration < 0:
        parser.error("--duration must be >= 0")
    return args


def die(message):
    print(f"demo-workloads: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        die("must run as root (entering network namespaces with setns needs CAP_SYS_ADMIN)")
    try:
        cluster = load_cluster(args.cluster_env)
    except OSError as err:
        die(f"{args.cluster_env}: {err.strerror}")
    except ConfigError as err:
        die(str(err))
    rng = random.Random(args.seed)
    plans = [plan_workload(w, cluster, rng) for w in WORKLOADS]
    servers = plan_servers(cluster)
    clients = [c for p in plans for c in p.clients]
    error = check_namespaces(sorted({s.netns for s in servers} | {c.source.netns for c in clients}))
    if error:
        die(error)

    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # before any worker thread
    rt = Runtime(threading.Event(), Sockets())
    started = time.monotonic()
    threads, error = start_servers(servers, rt)
    if error:
        stop_all(rt, threads)
        die(error)
    for plan in plans:
        announce(plan, cluster)
    threads += [start_thread(run_client, (c, rt), f"{c.workload.name}:{c.source.name}")
                for c in clients]
    log(f"{len(servers)} servers, {len(clients)} clients running")

    def status():
        if args.status:
            write_status(args.status, started, len(servers), plans)

    wait_for_stop(args.duration, status)
    stop_all(rt, threads)
    status()
    ok = sum(p.stats.snapshot()["ok"] for p in plans)
    failed = sum(p.stats.snapshot()["failed"] for p in plans)
    log(f"stopped after {time.monotonic() - started:.1f} s: {ok} calls ok, {failed} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
