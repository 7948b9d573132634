#!/usr/bin/env python3
"""A stand-in application for the walk-through: answers every request on 127.0.0.1:8080 (the
upstream of deploy/envoy/envoy.yaml) with what it received, as JSON, so that the headers
warden sets for the upstream (`x-warden-principal-arn`, `x-warden-decision-id`) show.

    python3 deploy/envoy/echo.py [PORT]
"""

import http.server
import json
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = json.dumps(
            {"method": self.command, "path": self.path, "headers": dict(self.headers.items())},
            indent=2,
        ).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = answer


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Echo).serve_forever()
