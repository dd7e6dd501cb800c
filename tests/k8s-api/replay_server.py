#!/usr/bin/env python3
"""A Kubernetes API server that replays a scenario, for the watch source's tests.

Python 3 standard library only.  It serves list and watch requests for the
collection paths named in a scenario file, in the order the scenario gives,
and logs every request as one JSON line so the test can check what the
client sent (paths, resourceVersions, field selectors, credentials).

    replay_server.py --scenario tests/k8s-api/basic.json --port-file P --log L
                     [--host 127.0.0.1] [--cert C --key K [--client-ca CA]]

The chosen (ephemeral) port is written to --port-file once the server
listens.  With --cert/--key it speaks HTTPS; with --client-ca it requires a
client certificate signed by that CA.  SIGTERM stops it.

Scenario format (JSON):

    {"routes": {"/api/v1/pods": {"list": [LIST, ...], "watch": [WATCH, ...]}}}

Each list request without a continue token takes the next LIST (the last
one repeats); its pages follow the request's limit= with continue tokens, as
a real API server does.  LIST is one of

    {"file": "pods.json"}               a List from a file next to the scenario
    {"list": {...}}                     a List inline
    {"generate": {"file": "pods.json", "item": 0, "count": 5000}}
                                        count copies of a Pod, renamed NAME-00042
                                        and given IPs 10.64.0.42 ...
    {"status": 500, "body": {...}}      an error response (a Status)

plus optional "rv" (replaces metadata.resourceVersion) and
"expire_continue_after": N (a continue request after N pages gets 410 Gone).

Each watch request takes the next WATCH; when they run out, the watch is
held open, idle, until its timeoutSeconds.  WATCH is

    {"status": 410, "body": {...}}      an error response at watch start
    {"events": [EV, ...], "then": "close" | "hold" | "drop"}

EV is a watch event {"type": ..., "object": ...} (one chunk), or
{"batch": [event, ...]} (several events in one chunk), {"split": event}
(one event in three chunks), {"raw": "text"} (bytes as they are, e.g. half
an event), {"delay": seconds}, {"await": NAME} (wait until the test creates
the file NAME in --control-dir, by default the log's directory).  "close" ends the chunked response properly,
"hold" keeps it open until the client goes or timeoutSeconds passes, "drop"
closes the socket without ending the response.
"""

import argparse
import base64
import copy
import json
import os
import select
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def status_object(code, reason, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class Scenario:
    """The scenario's responses and where each route is in them."""

    def __init__(self, path):
        self.dir = os.path.dirname(os.path.abspath(path))
        with open(path) as f:
            self.routes = json.load(f)["routes"]
        self.lock = threading.Lock()
        self.list_next = {}   # path -> index of the next LIST
        self.watch_next = {}  # path -> index of the next WATCH
        self.current = {}     # path -> {"list", "entry", "pages"}: the list being paged
        self.files = {}

    def load(self, name):
        if name not in self.files:
            with open(os.path.join(self.dir, name)) as f:
                self.files[name] = json.load(f)
        return self.files[name]

    def materialize(self, entry):
        """The List a LIST entry stands for."""
        if "file" in entry:
            lst = copy.deepcopy(self.load(entry["file"]))
        elif "list" in entry:
            lst = copy.deepcopy(entry["list"])
        else:
            gen = entry["generate"]
            lst = copy.deepcopy(self.load(gen["file"]))
            template = lst["items"][gen.get("item", 0)]
            text = json.dumps(template)  # json.loads of it is 5x faster than deepcopy
            items = []
            for i in range(gen["count"]):
                pod = json.loads(text)
                name = "%s-%05d" % (template["metadata"]["name"], i)
                ip = "10.%d.%d.%d" % (64 + i // 65536, (i // 256) % 256, i % 256)
                pod["metadata"]["name"] = name
                pod["metadata"]["uid"] = "00000000-0000-4000-8000-%012d" % i
                pod["status"]["podIP"] = ip
                pod["status"]["podIPs"] = [{"ip": ip}]
                items.append(pod)
            lst["items"] = items
        if "rv" in entry:
            lst.setdefault("metadata", {})["resourceVersion"] = entry["rv"]
        return lst

    def list_response(self, path, params):
        """(status, body) for a list request."""
        with self.lock:
            entries = self.routes.get(path, {}).get("list")
            if not entries:
                return 404, status_object(404, "NotFound", "the server could not find the requested resource")
            token = params.get("continue")
            if token is None:
                i = self.list_next.get(path, 0)
                self.list_next[path] = i + 1
                entry = entries[min(i, len(entries) - 1)]
                if "status" in entry:
                    return entry["status"], entry.get("body", {})
                cur = {"list": self.materialize(entry), "entry": entry, "pages": 0}
                self.current[path] = cur
                start = 0
            else:
                cur = self.current.get(path)
                if cur is None:
                    return 400, status_object(400, "BadRequest", "unknown continue token")
                start = json.loads(base64.b64decode(token))["start"]
                after = cur["entry"].get("expire_continue_after")
                if after is not None and cur["pages"] >= after:
                    del self.current[path]
                    return 410, status_object(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter.")
            cur["pages"] += 1
            lst = cur["list"]
            limit = int(params.get("limit", "0") or 0)
            items = lst.get("items", [])
            end = len(items) if limit <= 0 else min(len(items), start + limit)
            page = dict(lst)
            page["metadata"] = dict(lst.get("metadata", {}))
            page["items"] = items[start:end]
            if end < len(items):
                rv = page["metadata"].get("resourceVersion", "")
                page["metadata"]["continue"] = base64.b64encode(json.dumps(
                    {"v": "meta.k8s.io/v1", "rv": int(rv) if rv.isdigit() else 0,
                     "start": end}).encode()).decode()
                page["metadata"]["remainingItemCount"] = len(items) - end
            return 200, page

    def watch_entry(self, path):
        with self.lock:
            entries = self.routes.get(path, {}).get("watch", [])
            i = self.watch_next.get(path, 0)
            self.watch_next[path] = i + 1
            return entries[i] if i < len(entries) else {"events": [], "then": "hold"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "replay-kube-apiserver/1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        self.tls_failed = False
        self.peer_subject = None
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.settimeout(10)
                self.request.do_handshake()
                self.request.settimeout(None)
                cert = self.request.getpeercert()
                if cert:
                    names = {"commonName": "CN", "organizationName": "O"}
                    self.peer_subject = ",".join(
                        "%s=%s" % (names.get(k, k), v) for rdn in cert["subject"] for k, v in rdn)
            except (ssl.SSLError, OSError) as e:
                self.tls_failed = True
                self.server.log({"tls_error": str(e)})

    def handle(self):
        if not self.tls_failed:
            try:
                super().handle()
            except (ConnectionError, ssl.SSLError, OSError):
                pass

    def do_GET(self):
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        watch = params.get("watch") in ("1", "true")
        entry = self.server.scenario.watch_entry(url.path) if watch else None
        if watch:
            status = entry.get("status", 200)
            body = entry.get("body")
        else:
            status, body = self.server.scenario.list_response(url.path, params)
        self.server.log({
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "params": params,
            "watch": watch,
            "authorization": self.headers.get("Authorization"),
            "accept": self.headers.get("Accept"),
            "user_agent": self.headers.get("User-Agent"),
            "client_cert": self.peer_subject,
            "status": status,
        })
        if status != 200 or not watch:
            self.send_json(status, body)
            return
        self.stream(entry, float(params.get("timeoutSeconds", "300") or 300))

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def stream(self, entry, timeout_s):
        start = time.monotonic()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for ev in entry.get("events", []):
            if "delay" in ev:
                time.sleep(ev["delay"])
            elif "await" in ev:
                self.await_file(ev["await"])
            elif "raw" in ev:
                self.chunk(ev["raw"])
            elif "batch" in ev:
                self.chunk("".join(json.dumps(e) + "\n" for e in ev["batch"]))
            elif "split" in ev:
                line = json.dumps(ev["split"]) + "\n"
                third = max(1, len(line) // 3)
                for part in (line[:third], line[third:2 * third], line[2 * third:]):
                    self.chunk(part)
                    time.sleep(0.02)
            else:
                self.chunk(json.dumps(ev) + "\n")
        then = entry.get("then", "close")
        if then == "drop":
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if then == "hold":
            self.hold(start + timeout_s)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def await_file(self, name):
        """Waits (at most 30 s) until the test creates CONTROL_DIR/name."""
        path = os.path.join(self.server.control_dir, name)
        deadline = time.monotonic() + 30
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)

    def hold(self, deadline):
        """Idle until the client goes away or the deadline (timeoutSeconds)."""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.request], [], [], 0.1)
            if r:
                try:
                    if not self.request.recv(1, socket.MSG_PEEK if not isinstance(
                            self.request, ssl.SSLSocket) else 0):
                        raise ConnectionResetError
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (OSError, ssl.SSLError):
                    raise ConnectionResetError


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, scenario, log_path, family, control_dir):
        self.address_family = family
        super().__init__(addr, Handler)
        self.scenario = scenario
        self.control_dir = control_dir
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a")

    def log(self, record):
        record["t"] = round(time.time(), 3)
        with self.log_lock:
            self.log_file.write(json.dumps(record, sort_keys=True) + "\n")
            self.log_file.flush()

    def handle_error(self, request, client_address):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--client-ca")
    ap.add_argument("--control-dir", help="where {\"await\": NAME} events look for NAME")
    args = ap.parse_args()

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    control_dir = args.control_dir or os.path.dirname(os.path.abspath(args.log))
    srv = Server((args.host, 0), Scenario(args.scenario), args.log, family, control_dir)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
