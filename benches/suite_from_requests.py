#!/usr/bin/env python3
"""Makes a `warden test` suite of the requests `warden synth --requests-out` wrote (BENCHMARKS.md,
"Issue 17: warden test"): tests of 100 requests, one request a line.

    suite_from_requests.py REQUESTS.jsonl SUITE.json               # every request expects Deny
    suite_from_requests.py REQUESTS.jsonl SUITE.json REPORT.json   # ... except where `warden test
                                                                   # --json` decided otherwise
"""
import json
import sys

requests_file, suite_file = sys.argv[1], sys.argv[2]
decided = {}
if len(sys.argv) > 3:
    for test in json.load(open(sys.argv[3]))["tests"]:
        for f in test["failures"]:
            decided[(test["name"], f["line"])] = f["actual"]["decision"]
requests = [json.loads(line) for line in open(requests_file)]
lines = ['{"suite": "synthetic requests", "tests": [']
groups = [requests[i:i + 100] for i in range(0, len(requests), 100)]
for g, group in enumerate(groups):
    name = f"requests {g * 100}-{g * 100 + len(group) - 1}"
    lines.append('{"name": %s, "requests": [' % json.dumps(name))
    for i, r in enumerate(group):
        expect = decided.get((name, len(lines) + 1), "Deny")
        lines.append(json.dumps(dict(r, expect=expect)) + ("," if i < len(group) - 1 else ""))
    lines.append("]}" + ("," if g < len(groups) - 1 else ""))
lines.append("]}")
with open(suite_file, "w") as out:
    out.write("\n".join(lines) + "\n")
