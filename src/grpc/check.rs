//! `envoy.service.auth.v3.Authorization/Check` over tonic: Envoy's `CheckRequest` decoded
//! once the request is admitted (its bytes come in as [`CheckBytes`], bounded by the
//! server's message limit, and are read field by field into an [`HttpCheck`], linear in
//! them), decided by [`Checker`], and the [`Verdict`] written back as the bytes of a
//! `CheckResponse` ([`CheckResponseBytes`]). A deny is an
//! answer (`PERMISSION_DENIED` or `UNAUTHENTICATED` with Envoy's denied response), never a
//! gRPC error: Envoy treats errors as an outage, and `failure_mode_allow` would pass them.
//! Even a message that does not decode is answered with a deny.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use prost::Message;
use prost::bytes::Bytes;
use prost::encoding::WireType;
use tonic::{Request, Response, Status};

use crate::ext_authz::{Checker, HttpCheck, MAX_EXTENSIONS, MAX_HEADERS, Record, Verdict};
use crate::grpc::wire::{CheckBytes, CheckResponseBytes, Reader, put};
use crate::routes::MetadataFields;
use crate::service::RequestError;
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
    async fn check(
        &self,
        request: Request<CheckBytes>,
    ) -> Result<Response<CheckResponseBytes>, Status> {
        let started = Instant::now();
        let bytes = request.into_inner().0;
        let (decision, answer) = self
            .checker
            .check_with(
                || decode(&bytes),
                |verdict| (verdict.record.decision, encode_response(&verdict)),
            )
            .await;
        self.checker.service().telemetry().metrics.rpc(
            Face::Check,
            RpcResult::Decided(decision),
            started.elapsed(),
        );
        Ok(Response::new(CheckResponseBytes(answer)))
    }
}

/// A `CheckRequest`'s bytes as an [`HttpCheck`] that borrows their text; `Err` names what
/// is malformed.
///
/// Read field by field with `grpc::wire`'s reader, only the fields warden uses, with
/// protobuf's semantics for them (a message given twice merges, a scalar keeps its last
/// value, a map its last value for a key, the last member of a oneof wins): a test decodes
/// random messages with prost too and compares. Headers are counted as they come, at most
/// [`MAX_HEADERS`] entries of either encoding. The fields warden does not read are skipped
/// unread, as unknown fields are; the `jwt_authn` filter's claims are decoded by prost, and
/// only when they are there.
pub fn decode(bytes: &[u8]) -> Result<HttpCheck<'_>, String> {
    let mut read = Read::default();
    let mut r = Reader::of(bytes, "");
    while let Some((tag, wire)) = r.key().map_err(malformed)? {
        match tag {
            1 => {
                read.attributes = true;
                read.attributes(&mut r.message(wire, "attributes").map_err(malformed)?)?;
            }
            _ => r.skip(tag, wire).map_err(malformed)?,
        }
    }
    read.finish()
}

fn malformed(e: RequestError) -> String {
    format!("not a check request: {e}")
}

/// Header entries a request is read with room for before its list grows (Envoy sends a
/// dozen or so).
const HEADERS_AT_FIRST: usize = 16;

/// What [`decode`] has read so far, borrowed from the request's bytes.
#[derive(Default)]
struct Read<'a> {
    attributes: bool,
    request: bool,
    http: bool,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    scheme: &'a str,
    /// The `headers` map's entries as sent (a key sent twice is kept once, at the end).
    headers: Vec<Header<'a>>,
    /// `header_map`'s entries, when it was sent (then it wins over `headers`).
    header_map: Option<Vec<(&'a str, &'a str)>>,
    /// The source's address, while it is a socket address.
    socket: Option<&'a str>,
    principal: &'a str,
    extensions: HashMap<String, String>,
    /// `context_extensions` entries read, a key sent twice counted twice.
    extension_entries: usize,
    /// The `jwt_authn` filter's `Struct`, as bytes (two of them merge).
    jwt: Option<Vec<u8>>,
    body: &'a str,
    raw_body: &'a [u8],
}

type Step = Result<(), String>;

impl<'a> Read<'a> {
    fn attributes(&mut self, r: &mut Reader<'a>) -> Step {
        while let Some((tag, wire)) = r.key().map_err(malformed)? {
            match tag {
                1 => self.peer(&mut r.message(wire, "source").map_err(malformed)?)?,
                4 => {
                    self.request = true;
                    let mut m = r.message(wire, "request").map_err(malformed)?;
                    while let Some((tag, wire)) = m.key().map_err(malformed)? {
                        match tag {
                            2 => {
                                self.http = true;
                                self.http(&mut m.message(wire, "http").map_err(malformed)?)?;
                            }
                            _ => m.skip(tag, wire).map_err(malformed)?,
                        }
                    }
                }
                10 => {
                    // Counted as they come, a repeated key too.
                    self.extension_entries += 1;
                    if self.extension_entries > MAX_EXTENSIONS {
                        return Err(format!("more than {MAX_EXTENSIONS} context extensions"));
                    }
                    let (k, v) = string_pair(
                        &mut r.message(wire, "context_extensions").map_err(malformed)?,
                    )?;
                    self.extensions.insert(k.to_owned(), v.to_owned());
                }
                11 => {
                    self.metadata(&mut r.message(wire, "metadata_context").map_err(malformed)?)?
                }
                _ => r.skip(tag, wire).map_err(malformed)?,
            }
        }
        Ok(())
    }

    /// `source`: its address (a oneof: a socket address, a pipe, an internal address) and
    /// its principal.
    fn peer(&mut self, r: &mut Reader<'a>) -> Step {
        while let Some((tag, wire)) = r.key().map_err(malformed)? {
            match tag {
                1 => {
                    let mut address = r.message(wire, "address").map_err(malformed)?;
                    while let Some((tag, wire)) = address.key().map_err(malformed)? {
                        if tag != 1 {
                            // A pipe or an internal address replaces a socket address.
                            self.socket = None;
                            address.skip(tag, wire).map_err(malformed)?;
                            continue;
                        }
                        let socket = self.socket.get_or_insert("");
                        let mut m = address.message(wire, "socket_address").map_err(malformed)?;
                        while let Some((tag, wire)) = m.key().map_err(malformed)? {
                            match tag {
                                2 => *socket = text(&mut m, wire, "address")?,
                                _ => m.skip(tag, wire).map_err(malformed)?,
                            }
                        }
                    }
                }
                4 => self.principal = text(r, wire, "principal")?,
                _ => r.skip(tag, wire).map_err(malformed)?,
            }
        }
        Ok(())
    }

    fn http(&mut self, r: &mut Reader<'a>) -> Step {
        while let Some((tag, wire)) = r.key().map_err(malformed)? {
            match tag {
                2 => self.method = text(r, wire, "method")?,
                3 => {
                    if self.headers.len() == MAX_HEADERS {
                        return Err(format!("more than {MAX_HEADERS} headers"));
                    }
                    let mut entry = r.message(wire, "headers").map_err(malformed)?;
                    let (k, v) = match entry.short_ascii_pair() {
                        Some(pair) => pair,
                        None => string_pair(&mut entry)?,
                    };
                    if self.headers.capacity() == 0 {
                        self.headers.reserve_exact(HEADERS_AT_FIRST);
                    }
                    self.headers.push((Cow::Borrowed(k), Cow::Borrowed(v)));
                }
                4 => self.path = text(r, wire, "path")?,
                5 => self.host = text(r, wire, "host")?,
                6 => self.scheme = text(r, wire, "scheme")?,
                11 => self.body = text(r, wire, "body")?,
                12 => self.raw_body = r.delimited(wire, "raw_body").map_err(malformed)?,
                13 => {
                    let list = self
                        .header_map
                        .get_or_insert_with(|| Vec::with_capacity(HEADERS_AT_FIRST));
                    let mut m = r.message(wire, "header_map").map_err(malformed)?;
                    while let Some((tag, wire)) = m.key().map_err(malformed)? {
                        if tag != 1 {
                            m.skip(tag, wire).map_err(malformed)?;
                            continue;
                        }
                        if list.len() == MAX_HEADERS {
                            return Err(format!("more than {MAX_HEADERS} headers"));
                        }
                        list.push(header_value(
                            &mut m.message(wire, "headers").map_err(malformed)?,
                        )?);
                    }
                }
                _ => r.skip(tag, wire).map_err(malformed)?,
            }
        }
        Ok(())
    }

    /// `metadata_context`: of its `filter_metadata` map, only `jwt_authn`'s entry is kept.
    fn metadata(&mut self, r: &mut Reader<'a>) -> Step {
        while let Some((tag, wire)) = r.key().map_err(malformed)? {
            if tag != 1 {
                r.skip(tag, wire).map_err(malformed)?;
                continue;
            }
            let mut entry = r.message(wire, "filter_metadata").map_err(malformed)?;
            let (mut key, mut value) = ("", Vec::new());
            while let Some((tag, wire)) = entry.key().map_err(malformed)? {
                match tag {
                    1 => key = text(&mut entry, wire, "filter_metadata")?,
                    2 => value.extend_from_slice(
                        entry
                            .delimited(wire, "filter_metadata")
                            .map_err(malformed)?,
                    ),
                    _ => entry.skip(tag, wire).map_err(malformed)?,
                }
            }
            if key == JWT_AUTHN_FILTER {
                self.jwt = Some(value);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<HttpCheck<'a>, String> {
        let Read {
            attributes,
            request,
            http,
            method,
            host,
            path,
            scheme,
            headers,
            header_map,
            socket,
            principal,
            extensions,
            extension_entries: _,
            jwt,
            body,
            raw_body,
        } = self;
        if !attributes {
            return Err("no `attributes`".to_owned());
        }
        if !request {
            return Err("no `attributes.request`".to_owned());
        }
        if !http {
            return Err("no `attributes.request.http`".to_owned());
        }
        let headers = match header_map {
            // `encode_raw_headers: true`: repeated headers arrive apart; joined as Envoy joins
            // them in `headers`, so that both encodings decide alike.
            Some(map) => joined(map),
            None => last_of_each(headers),
        };
        let jwt_claims = match jwt {
            Some(bytes) => jwt_payload(
                Struct::decode(&*bytes)
                    .map_err(|e| format!("not a check request: metadata_context: {e}"))?,
            ),
            None => None,
        };
        let body = request_body(body, raw_body, &headers);
        Ok(HttpCheck {
            method: Cow::Borrowed(method),
            host: Cow::Borrowed(host),
            path: Cow::Borrowed(path),
            scheme: Cow::Borrowed(scheme),
            headers,
            peer: socket.and_then(|a| a.parse().ok()),
            peer_principal: Cow::Borrowed(principal),
            extensions,
            jwt_claims,
            body,
        })
    }
}

/// A header entry of either encoding, its name in lower case.
type Header<'a> = (Cow<'a, str>, Cow<'a, str>);

/// `header_map`'s entries, a repeated header's values joined by `,` in the order sent.
/// They are appended to one growing string, so that 256 repeats of a long value cost their
/// length, not its square.
fn joined<'a>(map: Vec<(&'a str, &'a str)>) -> Vec<Header<'a>> {
    let mut joined: Vec<Header<'a>> = Vec::with_capacity(map.len());
    for (key, value) in map {
        let key = lowercase(key);
        match joined.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => {
                let values = values.to_mut();
                values.push(',');
                values.push_str(value);
            }
            None => joined.push((key, Cow::Borrowed(value))),
        }
    }
    joined
}

/// The `headers` map's entries, each name once. As Envoy sends them (names in lower case,
/// each once: what [`as_sent`] checks), they are kept in the order sent. Otherwise a key
/// sent twice keeps its last value, names are lowered, and the list is sorted, so that two
/// names that are one in lower case are kept in an order that does not depend on the
/// sender's. Either way no lookup depends on the order: a name is found once, or, lowered
/// alike, in sorted order.
fn last_of_each<'a>(mut list: Vec<Header<'a>>) -> Vec<Header<'a>> {
    // As read (borrowed, as `Read` keeps them): the list itself, not a copy of it.
    if list.len() <= KEPT_AS_SENT && as_sent(&list) {
        return list;
    }
    // Stable, so the last of equal keys is last of its run.
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept: Vec<Header<'a>> = Vec::with_capacity(list.len());
    let (mut lowered, mut previous): (bool, Option<Cow<'a, str>>) = (false, None);
    for (k, v) in list {
        // Equal as sent: a name in lower case is compared with the one before it was lowered.
        let same = previous.as_deref() == Some(&*k);
        match kept.last_mut() {
            Some(last) if same => last.1 = v,
            _ => {
                let name = match k.clone() {
                    Cow::Borrowed(name) => lowercase(name),
                    Cow::Owned(name) => Cow::Owned(name.to_ascii_lowercase()),
                };
                lowered |= *name != *k;
                kept.push((name, v));
            }
        }
        previous = Some(k);
    }
    // Envoy's names are in lower case already; a name that was not may now sort elsewhere,
    // or equal another's (both are kept, by value).
    if lowered {
        kept.sort();
    }
    kept
}

/// The `headers` entries kept in the order sent when there are at most this many (each
/// name is compared with the ones before it: at most 496 comparisons); more are sorted.
const KEPT_AS_SENT: usize = 32;

/// Whether every name is in lower case and sent once, as Envoy sends its map.
fn as_sent(list: &[Header<'_>]) -> bool {
    list.iter().enumerate().all(|(i, (name, _))| {
        !name.bytes().any(|b| b.is_ascii_uppercase())
            && !list.iter().take(i).any(|(other, _)| other == name)
    })
}

/// A string field, borrowed.
fn text<'a>(r: &mut Reader<'a>, wire: WireType, field: &'static str) -> Result<&'a str, String> {
    r.str(wire, field, usize::MAX).map_err(malformed)
}

/// A `map<string, string>` entry.
fn string_pair<'a>(r: &mut Reader<'a>) -> Result<(&'a str, &'a str), String> {
    let (mut key, mut value) = ("", "");
    while let Some((tag, wire)) = r.key().map_err(malformed)? {
        match tag {
            1 => key = text(r, wire, "key")?,
            2 => value = text(r, wire, "value")?,
            _ => r.skip(tag, wire).map_err(malformed)?,
        }
    }
    Ok((key, value))
}

/// A `HeaderValue` of `header_map`: its `raw_value` when set (UTF-8), else its `value`.
fn header_value<'a>(r: &mut Reader<'a>) -> Result<(&'a str, &'a str), String> {
    let (mut key, mut value, mut raw): (&str, &str, &[u8]) = ("", "", &[]);
    while let Some((tag, wire)) = r.key().map_err(malformed)? {
        match tag {
            1 => key = text(r, wire, "key")?,
            2 => value = text(r, wire, "value")?,
            3 => raw = r.delimited(wire, "raw_value").map_err(malformed)?,
            _ => r.skip(tag, wire).map_err(malformed)?,
        }
    }
    if !raw.is_empty() {
        value = super::wire::utf8(raw).ok_or_else(|| format!("header `{key}` is not UTF-8"))?;
    }
    Ok((key, value))
}

/// The header Envoy adds when it may send part of a body (`allow_partial_message`).
pub const PARTIAL_BODY_HEADER: &str = "x-envoy-auth-partial-body";

/// The request's body, when warden knows it: what Envoy sent (`with_request_body`; the
/// bytes of `pack_as_bytes`, else the text), unless Envoy says it is partial; empty when
/// Envoy sent none and the request declares none (no `content-length` but `0`, no
/// `transfer-encoding`). Otherwise `None`: the body exists and was not seen.
fn request_body(body: &str, raw_body: &[u8], headers: &[Header<'_>]) -> Option<Bytes> {
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| &**v);
    if header(PARTIAL_BODY_HEADER).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if !raw_body.is_empty() {
        return Some(Bytes::copy_from_slice(raw_body));
    }
    if !body.is_empty() {
        return Some(Bytes::copy_from_slice(body.as_bytes()));
    }
    let declares_none = header("content-length").is_none_or(|v| v.trim() == "0")
        && header("transfer-encoding").is_none();
    declares_none.then(Bytes::new)
}

/// A header name in lower case: Envoy's already are, so most are borrowed, not copied.
fn lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
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

/// A verdict as the bytes of Envoy's `CheckResponse`, written without building the message
/// (an answer on every request; a test decodes them with prost against the message they
/// stand for, with values of every length around a one-byte length's end): `status`, the
/// OK or denied HTTP response, and the record's fields that the listener lists as
/// `dynamic_metadata` for Envoy's access log. Every message's length is worked out before
/// it is written, so nothing is moved to make room for a length. The metadata's entries are
/// written straight from the record, each key with the bytes around it that do not change
/// encoded when compiling, and a short entry's lengths in one write.
pub fn encode_response(verdict: &Verdict<'_>) -> Bytes {
    let Verdict {
        allowed,
        status,
        headers,
        remove,
        body,
        record,
    } = verdict;
    let (code, message) = match (allowed, status) {
        (true, _) => (OK, ""),
        (false, 401) => (UNAUTHENTICATED, &*record.reason),
        (false, _) => (PERMISSION_DENIED, &*record.reason),
    };
    // `google.rpc.Status`: `code = 1`, `message = 2`.
    let status_len = varint_len(code as u64) + str_len(message);
    // `ok_response = 3`: `headers = 2`, `headers_to_remove = 5`; `denied_response = 2`:
    // `status = 1` (`code = 1`), `headers = 2`, `body = 3`. `HeaderValueOption`:
    // `header = 1` (`key = 1`, `value = 2`), `append_action = 3`.
    let pair_len = |(key, value): &(Cow<'_, str>, Cow<'_, str>)| str_len(key) + str_len(value);
    let header_len = |h| put::field_len(pair_len(h)) + varint_len(OVERWRITE);
    let mut http_len: usize = headers.iter().map(|h| put::field_len(header_len(h))).sum();
    if *allowed {
        http_len += remove
            .iter()
            .map(|n| put::field_len(n.len()))
            .sum::<usize>();
    } else {
        http_len += put::field_len(varint_len(u64::from(*status))) + str_len(body);
    }
    // `dynamic_metadata = 4`, a `Struct`: its `fields` map's entries, `key = 1` and a
    // `google.protobuf.Value` as `value = 2`; the fields the listener lists, those naming
    // the request only when known. No field listed: no `dynamic_metadata`.
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
        fields,
    } = record;
    let decision = decision.as_str();
    let listed = |field| fields.has(field);
    let string = |key: &[u8], value: &str, field| {
        if listed(field) {
            string_entry_len(key, value)
        } else {
            0
        }
    };
    let known = |key: &[u8], value: &str, field| {
        if value.is_empty() {
            0
        } else {
            string(key, value, field)
        }
    };
    let fixed = |bytes: usize, field| if listed(field) { bytes } else { 0 };
    let metadata_len = string(DECISION, decision, MetadataFields::DECISION)
        + string(REASON, reason, MetadataFields::REASON)
        + fixed(REVISION_ENTRY.len() + 8, MetadataFields::REVISION)
        + string(DECISION_ID, decision_id, MetadataFields::DECISION_ID)
        + known(PRINCIPAL, principal, MetadataFields::PRINCIPAL)
        + known(ACTION, action, MetadataFields::ACTION)
        + known(RESOURCE, resource, MetadataFields::RESOURCE)
        + known(LISTENER, listener, MetadataFields::LISTENER)
        + known(ROUTE, route, MetadataFields::ROUTE)
        + fixed(DRY_RUN_OFF.len(), MetadataFields::DRY_RUN);
    let metadata_field_len = if fields.is_empty() {
        0
    } else {
        put::field_len(metadata_len)
    };
    // Written into a vector of the answer's length, which becomes `Bytes` without a copy or
    // another allocation (a `BytesMut` checks its room and its length on every byte).
    let len = put::field_len(status_len) + put::field_len(http_len) + metadata_field_len;
    let mut buf = Vec::with_capacity(len);
    put::head(1, status_len, &mut buf);
    put::varint(1, code as u64, &mut buf);
    put::str(2, message, &mut buf);
    put::head(if *allowed { 3 } else { 2 }, http_len, &mut buf);
    if !*allowed {
        put::head(1, varint_len(u64::from(*status)), &mut buf);
        put::varint(1, u64::from(*status), &mut buf);
    }
    for header in headers {
        let (key, value) = (header.0.as_bytes(), header.1.as_bytes());
        let len = header_len(header);
        // A header under 128 bytes with a name and a value (every length one byte, as for
        // the principal and the decision id): its lengths and keys in three writes.
        if let Ok(short) = u8::try_from(len)
            && short < 0x80
            && !key.is_empty()
            && !value.is_empty()
        {
            // The pair: the option less the pair's key and length and `append_action`.
            buf.extend_from_slice(&[0x12, short, 0x0a, short - 4, 0x0a, key.len() as u8]);
            buf.extend_from_slice(key);
            buf.extend_from_slice(&[0x12, value.len() as u8]);
            buf.extend_from_slice(value);
            buf.extend_from_slice(&[0x18, OVERWRITE as u8]);
            continue;
        }
        put::head(2, len, &mut buf);
        put::head(1, pair_len(header), &mut buf);
        put::str(1, &header.0, &mut buf);
        put::str(2, &header.1, &mut buf);
        put::varint(3, OVERWRITE, &mut buf);
    }
    if *allowed {
        for name in remove {
            put::bytes(5, name.as_bytes(), &mut buf);
        }
    } else {
        put::str(3, body, &mut buf);
    }
    if !fields.is_empty() {
        put::head(4, metadata_len, &mut buf);
        if listed(MetadataFields::DECISION) {
            string_entry(DECISION, decision, &mut buf);
        }
        if listed(MetadataFields::REASON) {
            string_entry(REASON, reason, &mut buf);
        }
        // `number_value = 2`, `string_value = 3`, `bool_value = 4`: oneof members, written
        // even when empty or false.
        if listed(MetadataFields::REVISION) {
            buf.extend_from_slice(REVISION_ENTRY);
            buf.extend_from_slice(&(*revision as f64).to_le_bytes());
        }
        if listed(MetadataFields::DECISION_ID) {
            string_entry(DECISION_ID, decision_id, &mut buf);
        }
        for (key, value, field) in [
            (PRINCIPAL, principal, MetadataFields::PRINCIPAL),
            (ACTION, action, MetadataFields::ACTION),
            (RESOURCE, resource, MetadataFields::RESOURCE),
            (LISTENER, listener, MetadataFields::LISTENER),
            (ROUTE, route, MetadataFields::ROUTE),
        ] {
            if listed(field) && !value.is_empty() {
                string_entry(key, value, &mut buf);
            }
        }
        if listed(MetadataFields::DRY_RUN) {
            buf.extend_from_slice(if *dry_run { DRY_RUN_ON } else { DRY_RUN_OFF });
        }
    }
    // A length worked out wrong would still give the right bytes, from a vector grown on the
    // way: checked in debug builds (`the_written_answer_is_the_message_prost_would_write`).
    debug_assert_eq!(buf.len(), len, "the answer's length, worked out first");
    Bytes::from(buf)
}

/// The bytes of a varint field of tag 1 to 15 as [`put::varint`] writes it (none for 0).
fn varint_len(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        1 + prost::encoding::encoded_len_varint(v)
    }
}

/// The bytes of a string field of tag 1 to 15 as [`put::str`] writes it (none when empty).
fn str_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        put::field_len(s.len())
    }
}

/// `HeaderAppendAction::OverwriteIfExistsOrAdd`: a header warden sets replaces the client's.
const OVERWRITE: u64 = HeaderAppendAction::OverwriteIfExistsOrAdd as u64;
// Written as one byte after its key by `encode_response`'s short headers (2 bytes).
const _: () = assert!(OVERWRITE > 0 && OVERWRITE < 0x80);

/// A key of the metadata `Struct` as the entry's `key = 1` field, encoded when compiling:
/// `0x0a`, the length (every key is under 128 bytes), the text.
const DECISION: &[u8] = b"\x0a\x08decision";
const REASON: &[u8] = b"\x0a\x06reason";
const DECISION_ID: &[u8] = b"\x0a\x0bdecision_id";
const PRINCIPAL: &[u8] = b"\x0a\x09principal";
const ACTION: &[u8] = b"\x0a\x06action";
const RESOURCE: &[u8] = b"\x0a\x08resource";
const LISTENER: &[u8] = b"\x0a\x08listener";
const ROUTE: &[u8] = b"\x0a\x05route";

/// The `revision` entry up to its number: the entry's key and length (21 bytes), the key
/// (`0x0a`, 8, `revision`), the value's key and length (9 bytes) and `number_value`'s key
/// (`0x11`: field 2, 64 bits); the number's 8 bytes (little-endian) follow.
const REVISION_ENTRY: &[u8] = b"\x0a\x15\x0a\x08revision\x12\x09\x11";

/// The `dry_run` entry whole, false and true: the entry's key and length (13 bytes), the
/// key (`0x0a`, 7, `dry_run`), the value's key and length (2 bytes), `bool_value`'s key
/// (`0x20`: field 4, varint) and the value (written even when false).
const DRY_RUN_OFF: &[u8] = b"\x0a\x0d\x0a\x07dry_run\x12\x02\x20\x00";
const DRY_RUN_ON: &[u8] = b"\x0a\x0d\x0a\x07dry_run\x12\x02\x20\x01";

/// The bytes of a metadata entry whose value is `string_value = 3` (written even when
/// empty), its key field `key` as above.
#[inline]
fn string_entry_len(key: &[u8], value: &str) -> usize {
    put::field_len(key.len() + put::field_len(put::field_len(value.len())))
}

/// A metadata entry whose value is `string_value = 3`: the entry's key and length, `key`,
/// the value's key and length, the string's key and length, the string. When the entry is
/// under 128 bytes (every length one byte), the lengths go in two writes. Inlined always,
/// so that the key's length is known where it is copied (not inlined, it cost a call and
/// a `memcpy` an entry).
#[inline(always)]
fn string_entry(key: &[u8], value: &str, buf: &mut Vec<u8>) {
    let string = value.len();
    let inner = put::field_len(string);
    let entry = key.len() + put::field_len(inner);
    if let Ok(entry) = u8::try_from(entry)
        && entry < 0x80
    {
        // `inner` and `string` are shorter still, so one byte each.
        buf.extend_from_slice(&[0x0a, entry]);
        buf.extend_from_slice(key);
        buf.extend_from_slice(&[0x12, inner as u8, 0x1a, string as u8]);
        buf.extend_from_slice(value.as_bytes());
        return;
    }
    put::head(1, entry, buf);
    buf.extend_from_slice(key);
    put::head(2, inner, buf);
    put::bytes(3, value.as_bytes(), buf);
}

#[cfg(test)]
mod tests;
