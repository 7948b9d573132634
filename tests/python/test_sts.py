"""warden's STS with the AWS SDK and CLI from PyPI (boto3, awscli), against a real `warden
serve`.

The test starts, as its own children: warden on a copy of the example organization with
two more roles (`Chained`, which the Developer role's sessions may assume, and `Tagged`,
whose policy reads a session tag), a key ring and a secrets store holding access keys for
alice and erin and erin's virtual MFA device; for the expiry test, a second warden two
hours in the future under `faketime`. boto3 and the CLI talk to warden's STS query API
(`endpoint_url`); decisions for the credentials they get are asked of
`warden.v1.Authorizer/Authorize` through gRPC reflection, as tests/python/test_client.py
does; the SDK's container credentials provider reads the container endpoint by itself.

Run: `.ci/test` (it installs boto3 and the AWS CLI into .venv; `.ci/run` installs faketime).
Without faketime the expiry test is skipped, unless WARDEN_REQUIRE_DEPLOY_TOOLS=1 (CI),
when it fails.
"""

import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import boto3
import grpc
import jwt
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "org"
DEMO = ROOT / "examples" / "demo-oidc"
REGION = "us-east-1"

ALICE = "arn:aws:iam::333333333333:user/engineering/alice"
ERIN = "arn:aws:iam::222222222222:user/audit/erin"
DEVELOPER = "arn:aws:iam::555555555555:role/Developer"
CHAINED = "arn:aws:iam::555555555555:role/Chained"
AUDITOR = "arn:aws:iam::555555555555:role/Auditor"
BREAK_GLASS = "arn:aws:iam::555555555555:role/BreakGlass"
TAGGED = "arn:aws:iam::333333333333:role/Tagged"
APP_RUNTIME = "arn:aws:iam::333333333333:role/service/app-runtime"
PROD_ORDER = "arn:aws:orders:us-east-1:555555555555:order/1"
DEV_ORDER = "arn:aws:orders:us-east-1:333333333333:order/1"
CONTAINER_TOKEN = "container-token-for-tests"

# No credentials, region or profile from the machine running the tests.
AWS_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_DEFAULT_REGION": REGION,
}
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warden_binary():
    return os.environ.get("WARDEN_BIN", str(ROOT / "target" / "debug" / "warden"))


def warden(*args, env=None):
    """Runs a warden subcommand (keyring, keys, mfa, token) and returns its stdout."""
    done = subprocess.run(
        [warden_binary(), *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, f"warden {' '.join(args)}: {done.stderr}"
    return done.stdout


# === the bundle: the example organization and three test roles ===


def bundle(directory):
    shutil.copytree(EXAMPLE, directory)
    prod = directory / "accounts" / "555555555555" / "roles"
    (prod / "Chained.json").write_text(json.dumps({
        # Named directly, in the same account: a Developer session needs no permission of
        # its own to assume it.
        "trust_policy": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": DEVELOPER},
                "Action": "sts:AssumeRole",
            }],
        },
        "managed_policies": ["ReadOnlyAccess"],
        # Twelve hours, yet a chained session gets at most one.
        "max_session_duration": 43200,
    }))
    dev = directory / "accounts" / "333333333333" / "roles"
    (dev / "Tagged.json").write_text(json.dumps({
        "trust_policy": {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": "333333333333"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }],
        },
        # The role's own tag; a session tag of the same key overrides it.
        "tags": {"team": "green"},
        "inline_policies": {
            "BlueReads": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "BlueTeamReads",
                    "Effect": "Allow",
                    "Action": "orders:GetOrder",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}},
                }],
            }
        },
    }))


# === warden serve ===


class Warden:
    """One `warden serve` with the STS listener, its logs in a file."""

    def __init__(self, tmp, name, extra=(), prefix=(), env=None):
        self.sts_port = free_port()
        self.log_path = tmp / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [*prefix, warden_binary(), "serve", "--bundle", str(tmp / "bundle"),
             "--grpc-addr", "127.0.0.1:0", "--admin-addr", "off", "--watch", "false",
             "--key-ring", str(tmp / "keyring.json"), "--secrets", str(tmp / "secrets.json"),
             "--sts-addr", f"127.0.0.1:{self.sts_port}", "--regions", REGION, *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
        )
        line = self.proc.stdout.readline()
        fields = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
        if "grpc" not in fields or "sts" not in fields:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            raise RuntimeError(f"warden did not start: {line!r} {self.log_path.read_text()}")
        self.grpc = fields["grpc"]
        self.endpoint = f"http://{fields['sts']}/"
        self.channel = grpc.insecure_channel(self.grpc)
        self._authorize = None

    def sts(self, creds=None, unsigned=False):
        """A boto3 STS client for this server, with these credentials (a dict with
        AccessKeyId, SecretAccessKey and maybe SessionToken) or none."""
        session = boto3.session.Session(
            aws_access_key_id=creds and creds["AccessKeyId"],
            aws_secret_access_key=creds and creds["SecretAccessKey"],
            aws_session_token=creds and creds.get("SessionToken"),
            region_name=REGION,
        )
        config = NO_RETRIES.merge(Config(signature_version=UNSIGNED)) if unsigned else NO_RETRIES
        return session.client("sts", endpoint_url=self.endpoint, config=config)

    def authorize(self, **fields):
        """`warden.v1.Authorizer/Authorize`, the request built from keyword fields;
        `signed_request` is a dict with method, target, headers (pairs) and body."""
        if self._authorize is None:
            self._authorize = unary(self.channel, "warden.v1.Authorizer", "Authorize")
        request_class, call = self._authorize
        signed = fields.pop("signed_request", None)
        request = request_class(**fields)
        if signed is not None:
            request.signed_request.method = signed["method"]
            request.signed_request.target = signed["target"]
            for name, value in signed["headers"]:
                request.signed_request.headers.add(name=name, value=value)
            request.signed_request.body = signed.get("body", b"")
        return call(request, timeout=10)

    def close(self):
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def unary(channel, service, name):
    """A method's request class and its callable, the types read through reflection."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName(service).FindMethodByName(name)
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service}/{name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return request_class, call


def decision_name(response):
    return response.DESCRIPTOR.fields_by_name["decision"].enum_type.values_by_number[
        response.decision
    ].name


class Org:
    """The files every warden of the module shares, the users' keys and erin's MFA seed."""

    def __init__(self, tmp):
        self.tmp = tmp
        bundle(tmp / "bundle")
        ring, store = str(tmp / "keyring.json"), str(tmp / "secrets.json")
        warden("keyring", "init", "--key-ring", ring)

        def access_key(user):
            out = warden("keys", "create", "--user", user, "--store", store,
                         "--key-ring", ring, "--bundle", str(tmp / "bundle"))
            key = json.loads(out)["AccessKey"]
            assert key["AccessKeyId"].startswith("AKIA")
            return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}

        self.alice = access_key(ALICE)
        self.erin = access_key(ERIN)
        device = json.loads(warden("mfa", "enable", "--user", ERIN, "--name", "erin",
                                   "--store", store, "--key-ring", ring))["VirtualMFADevice"]
        self.mfa_serial = device["SerialNumber"]
        self.mfa_seed = device["Base32StringSeed"]


@pytest.fixture(scope="module")
def aws_env():
    with pytest.MonkeyPatch.context() as mp:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL",
                    "AWS_ENDPOINT_URL_STS"):
            mp.delenv(key, raising=False)
        for key, value in AWS_ENV.items():
            mp.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def org(tmp_path_factory, aws_env):
    return Org(tmp_path_factory.mktemp("sts"))


@pytest.fixture(scope="module")
def server(org):
    w = Warden(org.tmp, "warden", extra=[
        "--container-role", APP_RUNTIME, "--container-service", "deploy.amazonaws.com",
        "--container-token", CONTAINER_TOKEN, "--container-session", "15m",
    ])
    yield w
    w.close()


def error_code(raised):
    return raised.value.response["Error"]["Code"]


def assume(server, creds, role, name, **extra):
    return server.sts(creds).assume_role(RoleArn=role, RoleSessionName=name, **extra)


def developer(server, org, name="dev-session", **extra):
    """alice's session of the Developer role (cross-account: her PowerUserAccess allows
    sts:AssumeRole, and the role trusts her account)."""
    return assume(server, org.alice, DEVELOPER, name, **extra)["Credentials"]


# === GetCallerIdentity and AssumeRole ===


def test_get_caller_identity_with_a_users_access_key(server, org):
    me = server.sts(org.alice).get_caller_identity()
    assert me["Arn"] == ALICE
    assert me["Account"] == "333333333333"
    assert me["UserId"].startswith("AIDA")


def test_assume_role_then_the_temporary_credentials_are_the_session(server, org):
    issued = assume(server, org.alice, DEVELOPER, "alice-dev")
    creds = issued["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["SessionToken"] and creds["SecretAccessKey"]
    left = creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(minutes=55) < left <= datetime.timedelta(minutes=61)
    session_arn = "arn:aws:sts::555555555555:assumed-role/Developer/alice-dev"
    assert issued["AssumedRoleUser"]["Arn"] == session_arn
    assert issued["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert issued["AssumedRoleUser"]["AssumedRoleId"].endswith(":alice-dev")

    me = server.sts(creds).get_caller_identity()
    assert me["Arn"] == session_arn
    assert me["Account"] == "555555555555"
    assert me["UserId"] == issued["AssumedRoleUser"]["AssumedRoleId"]


def test_role_chaining_is_limited_to_one_hour(server, org):
    creds = developer(server, org)
    with pytest.raises(ClientError) as raised:
        assume(server, creds, CHAINED, "chained", DurationSeconds=7200)
    assert error_code(raised) == "ValidationError", raised.value.response
    issued = assume(server, creds, CHAINED, "chained", DurationSeconds=3600)
    me = server.sts(issued["Credentials"]).get_caller_identity()
    assert me["Arn"] == "arn:aws:sts::555555555555:assumed-role/Chained/chained"


def test_a_session_policy_narrows_the_session(server, org):
    only_reads = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}],
    })
    narrowed = developer(server, org, "narrowed", Policy=only_reads)
    full = developer(server, org, "full")

    def decide(creds, action):
        return server.authorize(session_token=creds["SessionToken"], action=action,
                                resource=PROD_ORDER)

    assert decision_name(decide(narrowed, "orders:GetOrder")) == "ALLOW"
    # The role's inline policy allows UpdateOrder (DeleteOrder, also allowed by it, is
    # denied in the prod account by the ProtectProductionData SCP whatever the session).
    r = decide(narrowed, "orders:UpdateOrder")
    assert decision_name(r) == "IMPLICIT_DENY", r
    assert r.denied_by == "session", r
    assert decision_name(decide(full, "orders:UpdateOrder")) == "ALLOW"
    assert decision_name(decide(full, "orders:GetOrder")) == "ALLOW"


def test_session_tags_in_a_condition(server, org):
    def get_order(**tags):
        issued = assume(server, org.alice, TAGGED, "tagged",
                        Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        r = server.authorize(session_token=issued["Credentials"]["SessionToken"],
                             action="orders:GetOrder", resource=DEV_ORDER)
        return decision_name(r)

    assert get_order(team="blue") == "ALLOW"
    assert get_order(team="red") == "IMPLICIT_DENY"
    # Without a session tag, the role's own `team=green`.
    assert get_order() == "IMPLICIT_DENY"


# === Authorize with a SigV4-signed request ===


def signed(creds, method="GET", target="/orders/1?view=full", body=b"", service="orders"):
    """An HTTP request signed as botocore signs one, as the fields of `signed_request`."""
    request = AWSRequest(method=method, url=f"http://orders.test{target}", data=body,
                         headers={"host": "orders.test", "content-type": "application/json"})
    SigV4Auth(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken")),
        service, REGION,
    ).add_auth(request)
    return {"method": method, "target": target, "headers": list(request.headers.items()),
            "body": body}


def test_authorize_a_sigv4_signed_request(server, org):
    creds = developer(server, org, "signer")
    r = server.authorize(signed_request=signed(creds), action="orders:UpdateOrder",
                         resource=PROD_ORDER)
    assert decision_name(r) == "ALLOW", r
    # A user's long-term key: decided as alice, whose PowerUserAccess allows it.
    r = server.authorize(signed_request=signed(org.alice), action="orders:GetOrder",
                         resource=DEV_ORDER)
    assert decision_name(r) == "ALLOW", r
    # A body that is not the one signed.
    altered = signed(creds, method="POST", body=b'{"id": 1}')
    altered["body"] = b'{"id": 2}'
    with pytest.raises(grpc.RpcError) as raised:
        server.authorize(signed_request=altered, action="orders:UpdateOrder",
                         resource=PROD_ORDER)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.details().startswith("SignatureDoesNotMatch"), raised.value.details()


# === AssumeRoleWithWebIdentity ===


def demo_kid():
    provider = EXAMPLE / "accounts" / "333333333333" / "oidc-providers" / "demo.json"
    return json.loads(provider.read_text())["jwks"]["keys"][0]["kid"]


def web_token(**claims):
    now = int(time.time())
    body = {"iss": "https://demo.warden.invalid", "aud": "orders", "sub": "alice",
            "iat": now, "exp": now + 600}
    body.update(claims)
    return jwt.encode(body, (DEMO / "signing-key.pem").read_bytes(), algorithm="EdDSA",
                      headers={"kid": demo_kid()})


def test_assume_role_with_web_identity_needs_no_credentials(server):
    sts = server.sts(unsigned=True)
    issued = sts.assume_role_with_web_identity(
        RoleArn=APP_RUNTIME, RoleSessionName="web", WebIdentityToken=web_token())
    assert issued["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::333333333333:assumed-role/app-runtime/web"
    )
    assert issued["SubjectFromWebIdentityToken"] == "alice"
    assert issued["Audience"] == "orders"
    me = server.sts(issued["Credentials"]).get_caller_identity()
    assert me["Arn"] == "arn:aws:sts::333333333333:assumed-role/app-runtime/web"

    # The same call from a session with no credentials at all (boto3's default chain
    # finds none here), as an SDK's web identity provider makes it.
    plain = boto3.session.Session(region_name=REGION).client(
        "sts", endpoint_url=server.endpoint, config=NO_RETRIES)
    issued = plain.assume_role_with_web_identity(
        RoleArn=APP_RUNTIME, RoleSessionName="web2", WebIdentityToken=web_token())
    assert issued["Credentials"]["AccessKeyId"].startswith("ASIA")

    # A token minted by `warden token` works the same way.
    minted = warden("token", "--key", str(DEMO / "signing-key.pem"), "--sub", "bob",
                    "--aud", "orders", "--ttl", "600").strip()
    issued = sts.assume_role_with_web_identity(
        RoleArn=APP_RUNTIME, RoleSessionName="minted", WebIdentityToken=minted)
    assert issued["SubjectFromWebIdentityToken"] == "bob"


def test_assume_role_with_web_identity_refuses_a_wrong_audience(server):
    with pytest.raises(ClientError) as raised:
        server.sts(unsigned=True).assume_role_with_web_identity(
            RoleArn=APP_RUNTIME, RoleSessionName="web",
            WebIdentityToken=web_token(aud="somebody-else"))
    assert error_code(raised) == "InvalidIdentityToken", raised.value.response


# === refusals ===


def test_a_trust_policy_that_does_not_allow_is_access_denied(server, org):
    # BreakGlass trusts account 222222222222 (with MFA), not alice's.
    with pytest.raises(ClientError) as raised:
        assume(server, org.alice, BREAK_GLASS, "break")
    assert error_code(raised) == "AccessDenied", raised.value.response
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_wrong_secret_is_signature_does_not_match(server, org):
    wrong = dict(org.alice, SecretAccessKey="x" * 40)
    with pytest.raises(ClientError) as raised:
        server.sts(wrong).get_caller_identity()
    assert error_code(raised) == "SignatureDoesNotMatch", raised.value.response


def test_an_unknown_access_key_is_invalid_client_token_id(server, org):
    stranger = {"AccessKeyId": "AKIAUNKNOWNEXAMPLE01", "SecretAccessKey": "y" * 40}
    with pytest.raises(ClientError) as raised:
        server.sts(stranger).get_caller_identity()
    assert error_code(raised) == "InvalidClientTokenId", raised.value.response


# === MFA ===


def totp(seed, at):
    """RFC 6238: HMAC-SHA1 over the 30-second step, six digits."""
    key = base64.b32decode(seed + "=" * (-len(seed) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def test_mfa_required_by_the_trust_policy(server, org):
    with pytest.raises(ClientError) as raised:
        assume(server, org.erin, AUDITOR, "audit")
    assert error_code(raised) == "AccessDenied", raised.value.response

    code = totp(org.mfa_seed, time.time())
    issued = assume(server, org.erin, AUDITOR, "audit",
                    SerialNumber=org.mfa_serial, TokenCode=code)
    assert issued["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::555555555555:assumed-role/Auditor/audit"
    )
    me = server.sts(issued["Credentials"]).get_caller_identity()
    assert me["Arn"] == "arn:aws:sts::555555555555:assumed-role/Auditor/audit"

    # The same code again: refused, even within its step.
    with pytest.raises(ClientError) as raised:
        assume(server, org.erin, AUDITOR, "audit",
               SerialNumber=org.mfa_serial, TokenCode=code)
    assert error_code(raised) == "AccessDenied", raised.value.response
    # A wrong code.
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(ClientError) as raised:
        assume(server, org.erin, AUDITOR, "audit",
               SerialNumber=org.mfa_serial, TokenCode=wrong)
    assert error_code(raised) == "AccessDenied", raised.value.response


# === expiry: a second warden two hours later ===


def faketime_binary():
    found = shutil.which("faketime")
    if not found:
        if os.environ.get("WARDEN_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail("faketime is not installed (apt-get install faketime)")
        pytest.skip("faketime is not installed (apt-get install faketime)")
    return found


LATER = "+2h"


def test_expired_credentials_are_expired_token(server, org):
    faketime = faketime_binary()
    creds = developer(server, org, "short", DurationSeconds=900)
    env = dict(os.environ, FAKETIME_DONT_FAKE_MONOTONIC="1")
    later = Warden(org.tmp, "later", prefix=[faketime, "-f", LATER], env=env)
    try:
        # The token alone, through Authorize.
        with pytest.raises(grpc.RpcError) as raised:
            later.authorize(session_token=creds["SessionToken"], action="orders:GetOrder",
                            resource=PROD_ORDER)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert raised.value.details().startswith("ExpiredToken"), raised.value.details()
        # boto3 two hours later too (so that its signature is fresh for that server).
        script = (
            "import json, sys, boto3\n"
            "from botocore.config import Config\n"
            "from botocore.exceptions import ClientError\n"
            "c = json.loads(sys.argv[2])\n"
            "sts = boto3.session.Session(aws_access_key_id=c['AccessKeyId'],"
            " aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'],"
            " region_name='us-east-1').client('sts', endpoint_url=sys.argv[1],"
            " config=Config(retries={'max_attempts': 1, 'mode': 'standard'}))\n"
            "try:\n"
            "    print(json.dumps({'ok': sts.get_caller_identity()['Arn']}))\n"
            "except ClientError as e:\n"
            "    print(json.dumps(e.response['Error']))\n"
        )
        plain = {k: creds[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
        done = subprocess.run(
            [faketime, "-f", LATER, sys.executable, "-c", script, later.endpoint,
             json.dumps(plain)],
            capture_output=True, text=True, timeout=120, env=dict(env, **AWS_ENV),
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer.get("Code") == "ExpiredToken", answer
        # The credentials still work for the server of the present.
        assert server.sts(creds).get_caller_identity()["Arn"].endswith("/Developer/short")
    finally:
        later.close()


# === the container credentials endpoint ===

CONTAINER_CLIENT = """
import json, sys, boto3
session = boto3.session.Session(region_name="us-east-1")
sts = session.client("sts", endpoint_url=sys.argv[1])
creds = session.get_credentials()
seen = {"method": creds.method, "arns": [], "keys": []}
for _ in range(3):
    seen["arns"].append(sts.get_caller_identity()["Arn"])
    seen["keys"].append(creds.get_frozen_credentials().access_key)
print(json.dumps(seen))
"""


class Counting(http.server.BaseHTTPRequestHandler):
    """Passes the SDK's requests to warden's container endpoint as they are, and counts
    them: how often the SDK fetched credentials."""

    target = ""
    fetches = []

    def do_GET(self):
        headers = {k: v for k, v in self.headers.items() if k.lower() == "authorization"}
        request = urllib.request.Request(self.target + self.path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        self.fetches.append((self.path, headers, status))
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_container_credentials_obtained_and_refreshed_by_the_sdk(server):
    counting = type("CountingToWarden", (Counting,), {
        "target": server.endpoint.rstrip("/"), "fetches": [],
    })
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), counting)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        env = dict(AWS_ENV)
        env.pop("AWS_DEFAULT_REGION")
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = (
            f"http://127.0.0.1:{proxy.server_address[1]}/v1/credentials"
        )
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = CONTAINER_TOKEN
        done = subprocess.run(
            [sys.executable, "-c", CONTAINER_CLIENT, server.endpoint],
            capture_output=True, text=True, timeout=120, env=env,
        )
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["method"] == "container-role", seen
    prefix = "arn:aws:sts::333333333333:assumed-role/app-runtime/"
    assert all(arn.startswith(prefix) for arn in seen["arns"]), seen
    assert all(key.startswith("ASIA") for key in seen["keys"]), seen
    fetches = counting.fetches
    assert all(
        path == "/v1/credentials" and headers == {"Authorization": CONTAINER_TOKEN}
        and status == 200
        for path, headers, status in fetches
    ), fetches
    # Fifteen-minute sessions are always inside botocore's refresh window (15 minutes
    # before expiry): it fetched once to start and again before each use.
    assert len(fetches) >= 1 + len(seen["arns"]), fetches


def test_container_endpoint_wants_its_token(server):
    url = server.endpoint.rstrip("/") + "/v1/credentials"
    for headers in ({}, {"Authorization": "not-the-token"}):
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)
        assert raised.value.code in (401, 403), raised.value.code
    with urllib.request.urlopen(
        urllib.request.Request(url, headers={"Authorization": CONTAINER_TOKEN}), timeout=10
    ) as response:
        body = json.loads(response.read())
    assert set(body) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}, body
    assert body["RoleArn"] == APP_RUNTIME


# === the AWS CLI ===


def test_aws_cli_get_caller_identity(server, org):
    aws = pathlib.Path(sys.executable).parent / "aws"
    if not aws.exists():
        found = shutil.which("aws")
        assert found, "the AWS CLI is not installed (pip install awscli)"
        aws = pathlib.Path(found)
    env = dict(AWS_ENV, PATH=os.environ.get("PATH", ""),
               AWS_ACCESS_KEY_ID=org.alice["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=org.alice["SecretAccessKey"])
    done = subprocess.run(
        [str(aws), "sts", "get-caller-identity", "--endpoint-url", server.endpoint,
         "--output", "json"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Arn"] == ALICE


# === the query API's errors, raw ===


def local(tag):
    return tag.rsplit("}", 1)[-1]


def test_error_response_xml_as_aws_writes_it(server):
    request = urllib.request.Request(
        server.endpoint, data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    response = raised.value
    assert response.code == 403
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.read())
    assert local(root.tag) == "ErrorResponse"
    children = [local(c.tag) for c in root]
    assert children == ["Error", "RequestId"], children
    error = {local(c.tag): c.text for c in root[0]}
    assert error["Type"] == "Sender"
    assert error["Code"] == "MissingAuthenticationToken", error
    assert error["Message"]
    request_id = root[1].text
    assert request_id and response.headers["x-amzn-RequestId"] == request_id
