"""A Python grpcio client calls warden.v1.Authorizer/Authorize through server reflection,
with no .proto file and no generated code: the message types come from the running server.

Run: `.ci/install-python` once, then `WARDEN_BIN=target/debug/warden .venv/bin/python -m
pytest tests/python` (the server binary must be built; WARDEN_BIN defaults to
target/debug/warden).
"""

import json
import os
import pathlib
import subprocess

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALICE = "arn:aws:iam::333333333333:user/engineering/alice"
CAROL = "arn:aws:iam::333333333333:user/engineering/carol"
ORDER = "arn:aws:orders:us-east-1:333333333333:order/42"


@pytest.fixture(scope="module")
def server():
    binary = os.environ.get("WARDEN_BIN", str(ROOT / "target" / "debug" / "warden"))
    proc = subprocess.Popen(
        [binary, "serve", "--bundle", str(ROOT / "examples" / "org"),
         "--grpc-addr", "127.0.0.1:0", "--admin-addr", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    fields = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
    if "grpc" not in fields:
        proc.kill()
        raise RuntimeError(f"warden serve did not start: {line!r} {proc.stderr.read()}")
    yield fields["grpc"]
    proc.terminate()
    assert proc.wait(timeout=30) == 0


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


@pytest.fixture(scope="module")
def authorize(server):
    channel = grpc.insecure_channel(server)
    request_class, call = unary(channel, "warden.v1.Authorizer", "Authorize")

    def ask(**fields):
        context = fields.pop("context", {})
        request = request_class(**fields)
        for key, value in context.items():
            request.context[key].string = value
        return call(request, timeout=10)

    yield ask
    channel.close()


def decision_name(response):
    return response.DESCRIPTOR.fields_by_name["decision"].enum_type.values_by_number[
        response.decision
    ].name


def test_allow_through_reflection(authorize):
    r = authorize(principal=ALICE, action="orders:GetOrder", resource=ORDER)
    assert decision_name(r) == "ALLOW"
    assert r.reason == "identity_allow"
    assert r.revision == 1
    assert len(r.decision_id) == 32
    assert any(s.sid == "PowerUserAccess" for s in r.statements)


def test_deny_is_a_response_with_context(authorize):
    r = authorize(principal=CAROL, action="orders:GetOrder", resource=ORDER,
                  context={"aws:SourceVpc": "vpc-1"})
    assert decision_name(r) == "IMPLICIT_DENY"
    assert r.reason == "no_identity_allow"
    assert r.denied_by == "identity"


def test_explain(authorize):
    r = authorize(principal=CAROL, action="orders:GetOrder", resource=ORDER, explain=True)
    kinds = [layer.kind for layer in r.explanation.layers]
    assert "identity" in kinds and "scp" in kinds


def test_bad_request_is_invalid_argument(authorize):
    with pytest.raises(grpc.RpcError) as raised:
        authorize(principal="carol", action="orders:GetOrder", resource=ORDER)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "principal: `carol` is not a principal ARN" in raised.value.details()


@pytest.fixture(scope="module")
def check(server):
    """Envoy's `envoy.service.auth.v3.Authorization/Check`, its types from reflection."""
    channel = grpc.insecure_channel(server)
    request_class, call = unary(channel, "envoy.service.auth.v3.Authorization", "Check")

    def ask(method, path, peer_principal=""):
        request = request_class()
        attributes = request.attributes
        attributes.source.address.socket_address.address = "127.0.0.1"
        attributes.source.principal = peer_principal
        http = attributes.request.http
        http.method, http.path, http.host, http.scheme = method, path, "orders.example.com", "http"
        for k, v in {":method": method, ":path": path, "user-agent": "python"}.items():
            http.headers[k] = v
        return call(request, timeout=10)

    yield ask
    channel.close()


def test_check_through_reflection(check):
    r = check("GET", "/orders/42", "spiffe://cluster.local/ns/shop/sa/app-runtime")
    assert r.WhichOneof("http_response") == "ok_response", r
    headers = {h.header.key: h.header.value for h in r.ok_response.headers}
    session = "arn:aws:sts::333333333333:assumed-role/app-runtime/shop.app-runtime"
    assert headers["x-warden-principal-arn"] == session
    # The example's listener lists no metadata fields: the default four.
    fields = r.dynamic_metadata.fields
    assert sorted(fields) == ["decision", "decision_id", "reason", "revision"], fields
    assert fields["decision"].string_value == "Allow"
    assert fields["decision_id"].string_value == headers["x-warden-decision-id"]


def test_check_without_a_principal_is_401_not_an_error(check):
    r = check("GET", "/orders/42")
    assert r.WhichOneof("http_response") == "denied_response"
    assert r.denied_response.status.code == 401
    assert json.loads(r.denied_response.body)["reason"] == "no_principal"
    assert r.status.code == 16  # UNAUTHENTICATED, in the answer, not as the call's status
