#!/usr/bin/env python3
"""Check against Authorize on one server, in one run: `warden load` drives the same
question through each face in turn, rounds rotating which goes first, with the server's CPU
per request (`--target-pid`). No Envoy here: the generator speaks Check itself, with the
CheckRequest Envoy 1.40 sends (`grpc::client::check_request`).

The question (examples/org): `GET /orders/42` on the `default` listener, from an mTLS peer
`spiffe://cluster.local/ns/shop/sa/app-runtime` (the session
`arn:aws:sts::333333333333:assumed-role/app-runtime/shop.app-runtime`), or with a demo bearer
token (`sub` alice: `.../assumed-role/app-runtime/alice`); Authorize asks the same session
`orders:GetOrder` on `arn:aws:orders:us-east-1:333333333333:order/42` with the keys the Check
face fills (`aws:SourceIp`, `aws:SecureTransport`, `aws:UserAgent`). All are Allows
(benches/check.rs asserts it in process).

    python3 benches/envoy/faces.py --rounds 7 --duration 10s

`--warden` defaults to $CARGO_TARGET_DIR/release/warden (else target/release/warden).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER = "spiffe://cluster.local/ns/shop/sa/app-runtime"
RESOURCE = "arn:aws:orders:us-east-1:333333333333:order/42"
CONTEXT = ["aws:SourceIp=127.0.0.1", "aws:SecureTransport=false", "aws:UserAgent=wrk"]


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warden", default=os.path.join(target, "release", "warden"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="warden serve --worker-threads")
    ap.add_argument("--port", type=int, default=18100)
    ap.add_argument("--json", help="also write the rounds and medians to this file")
    args = ap.parse_args()
    w = args.warden
    addr = f"127.0.0.1:{args.port}"
    log = open(os.path.join(tempfile.gettempdir(), "warden-faces-serve.log"), "w")
    server = subprocess.Popen(
        [w, "serve", "--bundle", "examples/org", "--grpc-addr", addr, "--admin-addr", "off",
         "--worker-threads", str(args.workers), "--watch", "false"],
        cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        run(args, w, addr, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run(args, w, addr, pid):
    token = subprocess.run(
        [w, "token", "--key", "examples/demo-oidc/signing-key.pem",
         "--sub", "alice", "--aud", "orders", "--ttl", "7200"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    ctx = [a for c in CONTEXT for a in ("--context", c)]
    faces = {
        "authorize": ["--principal",
                      "arn:aws:sts::333333333333:assumed-role/app-runtime/shop.app-runtime",
                      "--action", "orders:GetOrder", "--resource", RESOURCE] + ctx,
        "check-mtls": ["--face", "check", "--path", "/orders/42", "--peer-principal", PEER,
                       "--header", "user-agent=wrk"],
        "check-token": ["--face", "check", "--path", "/orders/42",
                        "--header", f"authorization=Bearer {token}",
                        "--header", "user-agent=wrk"],
        "authorize-web": ["--principal",
                          "arn:aws:sts::333333333333:assumed-role/app-runtime/alice",
                          "--action", "orders:GetOrder", "--resource", RESOURCE] + ctx,
    }

    def load(face, duration):
        out = subprocess.run(
            [w, "load", "--addr", addr, "-z", duration, "-c", str(args.concurrency),
             "--connections", str(args.connections), "--target-pid", str(pid),
             "--format", "json"] + faces[face],
            cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{face}: warden load failed: {out.stderr}{out.stdout}")
        j = json.loads(out.stdout)
        t = j["target"]
        p = dict((int(k * 10), v) for k, v in t["percentiles_us"])
        return {"rps": t["rps"], "p50_us": p[500], "p99_us": p[990],
                "cpu_us": j["target_cpu_us_per_request"], "errors": t["errors"]}

    deadline = time.time() + 30
    while True:
        try:
            load("authorize", "1s")
            break
        except SystemExit:
            if time.time() > deadline:
                raise
            time.sleep(0.3)
    for face in faces:
        load(face, "2s")
    names = list(faces)
    rounds = []
    load_before = os.getloadavg()
    for r in range(args.rounds):
        row = {}
        for face in names[r % len(names):] + names[:r % len(names)]:
            res = load(face, args.duration)
            row[face] = res
            print(f"round {r + 1} {face:>13}: {res['rps']:>8.0f} rps, p50 {res['p50_us']:.0f} µs,"
                  f" p99 {res['p99_us']:.0f} µs, server CPU {res['cpu_us']:.1f} µs/req"
                  + (f", ERRORS {res['errors']}" if res["errors"] else ""), flush=True)
        rounds.append(row)
    med = statistics.median
    print(f"\nmedians of {args.rounds} rounds of {args.duration}, warden load -c "
          f"{args.concurrency} --connections {args.connections}, serve --worker-threads "
          f"{args.workers}:")
    print("| face | requests/s | p50 | p99 | server CPU per request | vs Authorize (median of per-round ratios) | vs Authorize (all rounds' requests) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    summary = {}
    for face in names:
        rs = [row[face] for row in rounds]
        base = "authorize-web" if face == "check-token" else "authorize"
        ratio = med([row[face]["rps"] / row[base]["rps"] for row in rounds])
        # Every round's windows are equally long: the requests of all rounds, pooled, weigh
        # a noisy round by what it served rather than letting one slow window decide.
        pooled = sum(row[face]["rps"] for row in rounds) / sum(row[base]["rps"] for row in rounds)
        summary[face] = {k: med([x[k] for x in rs]) for k in ("rps", "p50_us", "p99_us", "cpu_us")}
        summary[face]["ratio_vs_" + base] = ratio
        summary[face]["pooled_ratio_vs_" + base] = pooled
        s = summary[face]
        print(f"| {face} | {s['rps']:,.0f} | {s['p50_us']:.0f} µs | {s['p99_us']:.0f} µs "
              f"| {s['cpu_us']:.1f} µs | {ratio * 100:.1f} % of {base} | {pooled * 100:.1f} % |")
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rounds": rounds, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
