//! `envoy.service.auth.v3.Authorization/Check` over tonic: Envoy's `CheckRequest` decoded
//! once the request is admitted (its bytes come in as [`CheckBytes`]; prost's decoding is
//! linear in them, and they are bounded by the server's message limit), converted to an
//! [`HttpCheck`], decided by [`Checker`], and the [`Verdict`] converted back. A deny is an
//! answer (`PERMISSION_DENIED` or `UNAUTHENTICATED` with Envoy's denied response), never a
//! gRPC error: Envoy treats errors as an outage, and `failure_mode_allow` would pass them.
//! Even a message that does not decode is answered with a deny.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderValue, HeaderValueOption, Metadata, SocketAddress, address,
    header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest as PbHttpRequest, Peer, Request as PbRequest,
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
    check_response::HttpResponse,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use prost::Message;
use tonic::{Request, Response, Status};

use crate::ext_authz::{Checker, HttpCheck, MAX_HEADERS, Record, Verdict};
use crate::grpc::wire::CheckBytes;
use crate::telemetry::{Face, RpcResult};

/// The server side, generated over the request's bytes (see `build.rs`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/envoy/envoy.service.auth.v3.rs"));
}

pub use server::authorization_server::AuthorizationServer;

/// The encoded descriptors of Envoy's ext_authz API, for the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptor.bin"));

/// The health service name of Check.
pub const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

/// The `metadata_context` namespace of Envoy's `jwt_authn` filter, whose verified claims a
/// listener may take instead of verifying the token itself.
pub const JWT_AUTHN_FILTER: &str = "envoy.filters.http.jwt_authn";

/// `google.rpc.Code` values Envoy reads.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;
const UNAUTHENTICATED: i32 = 16;

/// The `envoy.service.auth.v3.Authorization` service.
pub struct Authorization {
    checker: Arc<Checker>,
}

impl Authorization {
    pub fn new(checker: Arc<Checker>) -> Authorization {
        Authorization { checker }
    }

    pub fn into_server(self, max_message_bytes: usize) -> AuthorizationServer<Authorization> {
        AuthorizationServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes.max(4 << 20))
    }
}

#[tonic::async_trait]
impl server::authorization_server::Authorization for Authorization {
    async fn check(&self, request: Request<CheckBytes>) -> Result<Response<CheckResponse>, Status> {
        let started = Instant::now();
        let bytes = request.into_inner().0;
        let verdict = self.checker.check(|| decode(&bytes)).await;
        self.checker.service().telemetry().metrics.rpc(
            Face::Check,
            RpcResult::Decided(verdict.record.decision),
            started.elapsed(),
        );
        Ok(Response::new(response(verdict)))
    }
}

/// A `CheckRequest`'s bytes as an [`HttpCheck`]; `Err` names what is malformed.
pub fn decode(bytes: &[u8]) -> Result<HttpCheck, String> {
    let request = CheckRequest::decode(bytes).map_err(|e| format!("not a check request: {e}"))?;
    let CheckRequest { attributes } = request;
    let AttributeContext {
        source,
        destination: _,
        request,
        context_extensions,
        metadata_context,
        route_metadata_context: _,
        tls_session: _,
    } = attributes.ok_or("no `attributes`")?;
    let PbRequest { time: _, http } = request.ok_or("no `attributes.request`")?;
    let PbHttpRequest {
        id: _,
        method,
        headers,
        header_map,
        path,
        host,
        scheme,
        query: _,
        fragment: _,
        size: _,
        protocol: _,
        body,
        raw_body,
    } = http.ok_or("no `attributes.request.http`")?;
    let headers = match header_map {
        // `encode_raw_headers: true`: repeated headers arrive apart; joined as Envoy joins
        // them in `headers`, so that both encodings decide alike.
        Some(map) => {
            if map.headers.len() > MAX_HEADERS {
                return Err(format!("more than {MAX_HEADERS} headers"));
            }
            let mut joined: Vec<(String, String)> = Vec::with_capacity(map.headers.len());
            for HeaderValue {
                key,
                value,
                raw_value,
            } in map.headers
            {
                let value = if raw_value.is_empty() {
                    value
                } else {
                    String::from_utf8(raw_value)
                        .map_err(|_| format!("header `{key}` is not UTF-8"))?
                };
                let key = lowercase(key);
                match joined.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => {
                        v.push(',');
                        v.push_str(&value);
                    }
                    None => joined.push((key, value)),
                }
            }
            joined
        }
        None => {
            if headers.len() > MAX_HEADERS {
                return Err(format!("more than {MAX_HEADERS} headers"));
            }
            let mut list: Vec<(String, String)> = headers
                .into_iter()
                .map(|(k, v)| (lowercase(k), v))
                .collect();
            // A map's order is arbitrary; sorted, a request reads the same every time.
            list.sort();
            list
        }
    };
    let (peer, peer_principal) = match source {
        Some(Peer {
            address, principal, ..
        }) => (address.as_ref().and_then(socket_ip), principal),
        None => (None, String::new()),
    };
    let jwt_claims = metadata_context
        .and_then(
            |Metadata {
                 filter_metadata, ..
             }| {
                filter_metadata
                    .into_iter()
                    .find(|(k, _)| k == JWT_AUTHN_FILTER)
            },
        )
        .and_then(|(_, s)| jwt_payload(s));
    let body = request_body(body, raw_body, &headers);
    Ok(HttpCheck {
        method,
        host,
        path,
        scheme,
        headers,
        peer,
        peer_principal,
        extensions: context_extensions,
        jwt_claims,
        body,
    })
}

/// The header Envoy adds when it may send part of a body (`allow_partial_message`).
pub const PARTIAL_BODY_HEADER: &str = "x-envoy-auth-partial-body";

/// The request's body, when warden knows it: what Envoy sent (`with_request_body`; the
/// bytes of `pack_as_bytes`, else the text), unless Envoy says it is partial; empty when
/// Envoy sent none and the request declares none (no `content-length` but `0`, no
/// `transfer-encoding`). Otherwise `None`: the body exists and was not seen.
fn request_body(
    body: String,
    raw_body: Vec<u8>,
    headers: &[(String, String)],
) -> Option<prost::bytes::Bytes> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if header(PARTIAL_BODY_HEADER).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if !raw_body.is_empty() {
        return Some(raw_body.into());
    }
    if !body.is_empty() {
        return Some(body.into());
    }
    let declares_none = header("content-length").is_none_or(|v| v.trim() == "0")
        && header("transfer-encoding").is_none();
    declares_none.then(prost::bytes::Bytes::new)
}

/// A header name in lower case: Envoy's already are, so most are moved, not copied.
fn lowercase(mut name: String) -> String {
    name.make_ascii_lowercase();
    name
}

/// The downstream's IP address, when it connected over IP.
fn socket_ip(address: &Address) -> Option<IpAddr> {
    match &address.address {
        Some(address::Address::SocketAddress(SocketAddress { address, .. })) => {
            address.parse().ok()
        }
        _ => None,
    }
}

/// The one payload `jwt_authn` stored (under its `payload_in_metadata` name), as JSON.
fn jwt_payload(s: Struct) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut fields = s.fields.into_iter();
    let (_, only) = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    match value_to_json(only) {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

fn value_to_json(v: Value) -> serde_json::Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => {
            // Claims such as `exp` are integers; a whole number stays one.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                serde_json::Value::from(n as i64)
            } else {
                serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into)
            }
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::StructValue(s)) => serde_json::Value::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| (k, value_to_json(v)))
                .collect(),
        ),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.into_iter().map(value_to_json).collect())
        }
    }
}

/// A verdict as Envoy's answer.
pub fn response(verdict: Verdict) -> CheckResponse {
    let Verdict {
        allowed,
        status,
        headers,
        remove,
        body,
        record,
    } = verdict;
    let headers: Vec<HeaderValueOption> = headers
        .into_iter()
        .map(|(key, value)| HeaderValueOption {
            header: Some(HeaderValue {
                key,
                value,
                raw_value: Vec::new(),
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..HeaderValueOption::default()
        })
        .collect();
    let dynamic_metadata = Some(metadata(&record));
    if allowed {
        CheckResponse {
            status: Some(rpc_status(OK, "")),
            dynamic_metadata,
            http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                headers,
                headers_to_remove: remove,
                ..OkHttpResponse::default()
            })),
        }
    } else {
        let code = if status == 401 {
            UNAUTHENTICATED
        } else {
            PERMISSION_DENIED
        };
        CheckResponse {
            status: Some(rpc_status(code, &record.reason)),
            dynamic_metadata,
            http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: Some(HttpStatus {
                    code: i32::from(status),
                }),
                headers,
                body,
            })),
        }
    }
}

fn rpc_status(code: i32, message: &str) -> RpcStatus {
    RpcStatus {
        code,
        message: message.to_owned(),
        details: Vec::new(),
    }
}

/// The decision for Envoy's dynamic metadata.
fn metadata(record: &Record) -> Struct {
    let Record {
        decision,
        reason,
        revision,
        decision_id,
        principal,
        action,
        resource,
        listener,
        route,
        dry_run,
    } = record;
    let string = |s: &str| Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    };
    // Sized for every field at once: no rehash while it fills.
    let mut fields = HashMap::with_capacity(10);
    fields.insert("decision".to_owned(), string(decision.as_str()));
    fields.insert("reason".to_owned(), string(reason));
    fields.insert(
        "revision".to_owned(),
        Value {
            kind: Some(Kind::NumberValue(*revision as f64)),
        },
    );
    fields.insert("decision_id".to_owned(), string(decision_id));
    for (key, value) in [
        ("principal", principal),
        ("action", action),
        ("resource", resource),
        ("listener", listener),
        ("route", route),
    ] {
        if !value.is_empty() {
            fields.insert(key.to_owned(), string(value));
        }
    }
    fields.insert(
        "dry_run".to_owned(),
        Value {
            kind: Some(Kind::BoolValue(*dry_run)),
        },
    );
    Struct { fields }
}

#[cfg(test)]
mod tests;
