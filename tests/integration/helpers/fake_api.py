#!/usr/bin/env python3
"""A stand-in for the aggregator's HTTP API (SPEC section 7), for testing
`flowvis get` without an aggregator.

    fake_api.py --records FILE --metrics FILE --log FILE [--token T]
                [--tls-cert FILE --tls-key FILE] [--lifetime SECONDS]

Binds 127.0.0.1 on a free port chosen by the kernel and prints "ready PORT"
on stdout once it accepts connections. Serves

    GET /flowrecords    the JSON object in --records (any query; a query
                        with proto=250 gets 400 {"error": ...}, the way the
                        aggregator rejects a filter it does not support)
    GET /recordmetrics  the JSON object in --metrics

and 404 {"error": ...} for any other path. With --token, a request without
"Authorization: Bearer T" gets 401 {"error": ...}. Every request is logged
to --log as one JSON line {"path", "query", "authorization"} before it is
answered. With --tls-cert and --tls-key it speaks HTTPS. Exits by itself after --lifetime seconds (default 60), so a test
that dies cannot leave it behind.
"""
import argparse
import json
import ssl
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--token")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--lifetime", type=float, default=60)
    args = ap.parse_args()

    with open(args.records, "rb") as f:
        records = f.read()
    with open(args.metrics, "rb") as f:
        metrics = f.read()
    log = open(args.log, "a", buffering=1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def answer(self, status, body):
            if isinstance(body, dict):
                body = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            auth = self.headers.get("Authorization")
            with lock:
                log.write(json.dumps({"path": url.path, "query": url.query,
                                      "authorization": auth}) + "\n")
            if args.token is not None and auth != "Bearer " + args.token:
                self.answer(401, {"error": "missing or invalid bearer token"})
            elif url.path == "/flowrecords":
                query = urllib.parse.parse_qs(url.query)
                if query.get("proto") == ["250"]:
                    self.answer(400, {"error": "proto: 250 is not a supported protocol"})
                else:
                    self.answer(200, records)
            elif url.path == "/recordmetrics":
                self.answer(200, metrics)
            else:
                self.answer(404, {"error": "no such path: " + url.path})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    timer = threading.Timer(args.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    print("ready", server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
