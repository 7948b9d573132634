#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz targets into fuzz/corpus/TARGET/seed-*.

    python3 fuzz/make_seeds.py [CONFORMANCE_DIR]

Seeds come from the example bundle (examples/org) and, when CONFORMANCE_DIR is given
(e.g. /work/shared/conformance), from its `aws-docs.jsonl` and `generated.jsonl`. Each
seed is written in the input format its body (fuzz/bodies/TARGET.rs) reads. Running the
script again rewrites the same files: the seeds are deterministic. Files the fuzzer
found (`cmin-*`, `crash-*`) are left alone.
"""

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORG = ROOT / "examples" / "org"
CORPUS = ROOT / "fuzz" / "corpus"

# fuzz/bodies/policy.rs: the kind selector is an index into `PolicyKind::ALL`.
KINDS = ["identity", "resource", "trust", "boundary", "session", "scp", "rcp"]

# fuzz/bodies/bundle.rs: `ACCOUNTS`, `NAMES` and the layouts of `path`.
ACCOUNTS = ["111111111111", "222222222222", "333333333333", "444444444444",
            "555555555555", "12345", "", ".."]
NAMES = ["AppBoundary", "AssumeAuditor", "Auditor", "BreakGlass", "DenyLeaveOrganization",
         "Developer", "Developers", "OrdersStayInOrganization", "ProtectProductionData",
         "ReportsReader", "admin", "alice", "app-runtime", "bob", "carol", "ci-deployer",
         "dana", "db", "deploy", "erin", "files", "monitoring", "network", "orders",
         "shared-orders", "FullAWSAccess", "x", "", "a.b", "with space", "é", "ALICE"]


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def load(path):
    return json.loads(path.read_text())


# === policy: [kind] [document] ===

def policy_seeds(conformance):
    def doc(name, kind, text):
        write("policy", name, bytes([KINDS.index(kind)]) + text.encode())

    for p in sorted((ORG / "scps").glob("*.json")):
        doc(f"scp-{p.stem}", "scp", p.read_text())
    for p in sorted((ORG / "rcps").glob("*.json")):
        doc(f"rcp-{p.stem}", "rcp", compact(load(p)))
    for p in sorted(ORG.glob("accounts/*/policies/*.json")):
        kind = "boundary" if p.stem == "AppBoundary" else "identity"
        doc(f"{kind}-{p.stem}", kind, compact(load(p)))
    for p in sorted(ORG.glob("accounts/*/roles/*.json")):
        role = load(p)
        doc(f"trust-{p.stem}", "trust", compact(role["trust_policy"]))
        for name, pol in sorted(role.get("inline_policies", {}).items()):
            doc(f"identity-{p.stem}-{name}", "identity", compact(pol))
    for p in sorted(ORG.glob("accounts/*/resources/*.json")):
        doc(f"resource-{p.stem}", "resource", json.dumps(load(p)["policy"], indent=1))
    if conformance:
        # The policies of the documentation cases, by kind, the first 12 distinct ones.
        seen = set()
        for line in (conformance / "aws-docs.jsonl").read_text().splitlines():
            case = json.loads(line)
            docs = [("identity", d) for d in case["identity_policies"]]
            for field, kind in [("resource_policy", "resource"),
                                ("permission_boundary", "boundary"),
                                ("session_policy", "session")]:
                if case.get(field):
                    docs.append((kind, case[field]))
            docs += [("scp", d) for d in case["scps"]] + [("rcp", d) for d in case["rcps"]]
            for i, (kind, d) in enumerate(docs):
                text = compact(d)
                if text in seen or "FullAWSAccess" in text or len(seen) >= 12:
                    continue
                seen.add(text)
                doc(f"docs-{case['id']}-{i}", kind, text)
    # Documents the validator must refuse, each for one reason.
    bad = {
        "bad-json": '{"Version": "2012-10-17", "Statement": [',
        "bad-version": '{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}',
        "bad-effect": '{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"s3:Get*","Resource":"*"}}',
        "bad-both-actions": '{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"a:b","NotAction":"a:c","Resource":"*"}}',
        "bad-condition": '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericLessThan":{"a:n":"x"},"DateGreaterThan":{"aws:CurrentTime":"2026-02-30"},"Bogus":{"k":"v"}}}}',
        "bad-variable": '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"a:b","Resource":"arn:aws:a:::${aws:username","Condition":{"StringLike":{"k":"${x, bad}"}}}}',
        "bad-duplicate-key": '{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}',
        "deep-nesting": "[" * 200 + "]" * 200,
        "unicode": '{"Version":"2012-10-17","Statement":{"Sid":"\\u00e9\\ud83d\\ude00","Effect":"Allow","Action":"é:*","Resource":"arn:aws:s3:::b/😀"}}',
        "number-out-of-range": '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericEquals":{"a:n":1e400}}}}',
        "principal-forms": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"a:b","Resource":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","111122223333"]},"Action":"a:b","Resource":"*"}]}',
    }
    for i, (name, text) in enumerate(sorted(bad.items())):
        write("policy", name, bytes([i % len(KINDS)]) + text.encode())


# === bundle: entries of [layout] [account] [name] [len: u16 LE] [content] ===

def entry(layout, account, name, text):
    data = text.encode() if isinstance(text, str) else text
    return (bytes([layout, ACCOUNTS.index(account), NAMES.index(name)])
            + len(data).to_bytes(2, "little") + data)


def org_entries(only_accounts=None, org=None):
    """The example bundle as entries, compact; `only_accounts` keeps some accounts."""
    out = [entry(0, "", "", compact(org if org is not None else load(ORG / "organization.json")))]
    for p in sorted((ORG / "catalog").glob("*.json")):
        out.append(entry(2, "", p.stem, compact(load(p))))
    for kind, layout in [("scps", 3), ("rcps", 4)]:
        for p in sorted((ORG / kind).glob("*.json")):
            out.append(entry(layout, "", p.stem, compact(load(p))))
    for acct in sorted((ORG / "accounts").iterdir()):
        if only_accounts is not None and acct.name not in only_accounts:
            continue
        out.append(entry(5, acct.name, "", compact(load(acct / "account.json"))))
        for sub, layout in [("policies", 6), ("users", 7), ("groups", 8), ("roles", 9),
                            ("resources", 10)]:
            for p in sorted((acct / sub).glob("*.json")):
                out.append(entry(layout, acct.name, p.stem, compact(load(p))))
    return out


def bundle_seeds():
    write("bundle", "example-org", b"".join(org_entries()))
    write("bundle", "example-org-555", b"".join(org_entries({"555555555555"})))
    write("bundle", "example-org-333", b"".join(org_entries({"333333333333", "222222222222"})))
    # Just the organization, with no account directories.
    write("bundle", "organization-only", entry(0, "", "", compact(load(ORG / "organization.json"))))
    small_org = {"id": "o-a1b2c3d4e5", "management_account": "111111111111",
                 "root": {"id": "r-a1b2", "name": "Root", "scps": ["FullAWSAccess"],
                          "accounts": [{"id": "111111111111"}, {"id": "333333333333"}]}}
    user = {"tags": {"team": "orders"},
            "inline_policies": {"Own": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["orders:Get*", "orders:List*"],
                 "Resource": "arn:aws:orders:*:333333333333:order/${aws:username}/*",
                 "Condition": {"StringEquals": {"aws:PrincipalTag/team": "orders"}}}]}}}
    catalog = [p for p in sorted((ORG / "catalog").glob("*.json")) if p.stem == "orders"]
    write("bundle", "small-org-user", b"".join(
        [entry(0, "", "", compact(small_org))]
        + [entry(2, "", p.stem, compact(load(p))) for p in catalog]
        + [entry(5, "333333333333", "", compact({"name": "dev"})),
           entry(7, "333333333333", "alice", compact(user)),
           entry(5, "111111111111", "", compact({"name": "management"}))]))
    # The same with damage: a file that is not JSON, a path outside the layout, a policy
    # that names an unknown managed policy, an account outside the organization.
    write("bundle", "small-org-damaged", b"".join(
        [entry(0, "", "", compact(small_org)),
         entry(5, "333333333333", "", "{not json"),
         entry(11, "..", "x", "{}"),
         entry(7, "333333333333", "bob", compact({"managed_policies": ["Nope"], "groups": ["x"]})),
         entry(5, "444444444444", "", compact({"name": "stray"})),
         entry(9, "12345", "x", compact({"trust_policy": {}}))]))
    # An organization that repeats an account and nests units deeply.
    deep = {"id": "r", "name": "Root", "accounts": [{"id": "111111111111"}]}
    node = deep
    for i in range(12):
        child = {"id": f"ou-{i}", "name": f"u{i}", "scps": ["FullAWSAccess"], "accounts": []}
        node["units"] = [child]
        node = child
    node["accounts"] = [{"id": "111111111111"}, {"id": "333333333333"}]
    write("bundle", "deep-units-repeated-account", entry(0, "", "", compact(
        {"id": "o-x", "management_account": "111111111111", "root": deep})))
    # The example without its organization.json (refused once the loader requires one).
    write("bundle", "example-org-no-organization", b"".join(org_entries()[1:]))
    write("bundle", "quotas", entry(0, "", "", compact(small_org))
          + entry(1, "", "", compact({"max_statements": 1, "max_policy_bytes": 10})))


# === request: [mode] ...; mode 0 is raw protobuf bytes ===

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + varint(payload)


def string(number, text):
    return field(number, 2, text.encode())


def context(number, ctx):
    out = b""
    for k, v in sorted(ctx.items()):
        if isinstance(v, list):
            value = field(2, 2, b"".join(string(1, x) for x in v))
        else:
            value = string(1, v)
        out += field(number, 2, string(1, k) + field(2, 2, value))
    return out


def authorize(principal, action, resource, ctx=None, explain=False, min_revision=0):
    out = string(1, principal) + string(2, action) + string(3, resource)
    out += context(4, ctx or {})
    if explain:
        out += field(5, 0, 1)
    if min_revision:
        out += field(6, 0, min_revision)
    return out


def batch(principal, items, ctx=None, explain=False):
    out = string(1, principal) + context(2, ctx or {})
    for action, resource, ictx in items:
        out += field(3, 2, string(1, action) + string(2, resource) + context(3, ictx or {}))
    if explain:
        out += field(4, 0, 1)
    return out


def request_seeds(conformance):
    raw = lambda name, data: write("request", name, b"\x00" + data)
    order = "arn:aws:orders:us-east-1:555555555555:order/1"
    alice = "arn:aws:iam::333333333333:user/alice"
    dev = "arn:aws:sts::555555555555:assumed-role/Developer/s1"
    raw("alice-get-order", authorize(alice, "orders:GetOrder", order))
    raw("alice-shared-order-explain", authorize(
        alice, "orders:GetOrder", "arn:aws:orders:us-east-1:555555555555:order/shared/7",
        explain=True))
    raw("developer-delete", authorize(dev, "orders:DeleteOrder", order,
                                      {"aws:SourceIp": "10.0.0.1", "aws:SecureTransport": "true"}))
    raw("root-leave-org", authorize("arn:aws:iam::555555555555:root",
                                    "organizations:LeaveOrganization", "*"))
    raw("context-list", authorize(alice, "orders:CreateOrder", order,
                                  {"aws:TagKeys": ["team", "owner"], "aws:RequestTag/team": "orders",
                                   "orders:Amount": "5000.5"}))
    raw("unknown-principal", authorize("arn:aws:iam::999999999999:user/nobody",
                                       "orders:GetOrder", order))
    raw("bad-action", authorize(alice, "orders:Get*", "*"))
    raw("empty", b"")
    raw("min-revision-ahead", authorize(alice, "orders:GetOrder", order, min_revision=7))
    raw("unknown-field", authorize(alice, "orders:GetOrder", order) + string(15, "hi"))
    raw("truncated", authorize(alice, "orders:GetOrder", order)[:-5])
    raw("batch-alice", batch(alice, [("orders:GetOrder", order, None),
                                     ("orders:ListOrders", "*", {"aws:RequestedRegion": "us-east-1"}),
                                     ("nosuch:Action", order, None)],
                             {"aws:SourceIp": "192.168.1.1"}, explain=True))
    raw("batch-empty", batch(dev, []))
    if conformance:
        # Requests of the documentation cases and of some generated ones, with contexts.
        cases = [json.loads(l) for l in (conformance / "aws-docs.jsonl").read_text().splitlines()]
        picked = [c for c in cases if c["id"] in
                  ("var-ok", "action-case", "cross-both", "sp-rp-wildcard-principal")]
        generated = [json.loads(l) for l in
                     (conformance / "generated.jsonl").read_text().splitlines()]
        picked += [c for c in generated if c["request"].get("context")][:6]
        for c in picked:
            r = c["request"]
            raw(f"conformance-{c['id']}",
                authorize(r["principal"], r["action"], r["resource"], r.get("context") or {}))
    # Requests built from the bundle's words (modes 1 and 2-3): any bytes will do.
    rng = random.Random(7)
    for mode in (1, 2, 3, 1, 2):
        n = rng.randrange(16, 160)
        write("request", f"built-{mode}-{n}", bytes([mode]) + bytes(rng.randrange(256) for _ in range(n)))


# === matchers: arbitrary bytes; the first picks the check ===

def matcher_seeds():
    rng = random.Random(11)
    names = ["glob", "glob2", "tokens", "action", "arn", "condition"]
    for check, name in enumerate(names):
        for size in (48, 200, 400):
            data = bytes([check]) + bytes(rng.randrange(256) for _ in range(size))
            write("matchers", f"{name}-{size}", data)
    # More for ARN patterns, whose inputs compile less often.
    for size in (80, 120, 250, 500):
        write("matchers", f"arn-{size}", bytes([4]) + bytes(rng.randrange(256) for _ in range(size)))
    # Long texts: runs of distinct characters (0xFF), repeats (0xFE), CJK (0xF0..).
    write("matchers", "glob-long-runs", bytes([0, 90, 0xFF, 0x0F, 0xFF, 3, 0x2A, 0xFE, 200, 16,
                                               0x07, 0xFF, 0x01, 0x00, 0x10, 0x07, 0xF3, 0x44]
                                              + [rng.randrange(256) for _ in range(80)]))
    write("matchers", "tokens-literals", bytes([2, 40] + [14, 15, 16, 17, 6, 7] * 7 + [0] * 60))


def main():
    conformance = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for d in CORPUS.glob("*/seed-*"):
        d.unlink()
    policy_seeds(conformance)
    bundle_seeds()
    request_seeds(conformance)
    matcher_seeds()


if __name__ == "__main__":
    main()
