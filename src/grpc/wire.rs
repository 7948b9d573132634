//! The Authorizer's requests, decoded within the service's limits.
//!
//! prost decodes a map or a repeated field whatever its length, building every entry
//! before anything can count them: 60,000 context keys in an 829 KB message took seconds
//! of work and megabytes before the 64-key limit could refuse them. So the generated server
//! hands over the request's bytes ([`AuthorizeBytes`], [`BatchAuthorizeBytes`]) and this
//! module reads them field by field with prost's wire primitives, checking each count and
//! size as it comes, before the work or memory that grows with it. A request that breaks a
//! limit is refused at the first entry past it; a malformed one is INVALID_ARGUMENT.
//!
//! Semantics are protobuf's (proto3): unknown fields are skipped, a repeated scalar field
//! keeps its last value, a repeated `list` merges. One difference: a context key given
//! twice (in any case) is refused, where protobuf would keep the last. `tests` decode
//! random messages both ways and compare.

use ascii::AsAsciiStr;
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use crate::caller::{Caller, Presented, SignedRequest};
use crate::context::{Context, ContextValue};
use crate::service::{
    BATCH_MAX, Item, Limits, MAX_KEY_BYTES, MAX_NAME_BYTES, MAX_VALUE_BYTES, Request, RequestError,
    Shape,
};
use crate::telemetry::Face;

/// The bytes of a `warden.v1.AuthorizeRequest`, as the server received them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeBytes(pub Bytes);

/// The bytes of a `warden.v1.BatchAuthorizeRequest`, as the server received them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchAuthorizeBytes(pub Bytes);

macro_rules! raw_message {
    ($ty:ident) => {
        impl prost::Message for $ty {
            fn encode_raw(&self, buf: &mut impl BufMut) {
                buf.put_slice(&self.0);
            }

            /// Never reached: [`Message::merge`] below takes the whole message at once.
            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: WireType,
                buf: &mut impl Buf,
                ctx: DecodeContext,
            ) -> Result<(), prost::DecodeError> {
                skip_field(wire_type, tag, buf, ctx)
            }

            fn encoded_len(&self) -> usize {
                self.0.len()
            }

            fn clear(&mut self) {
                self.0 = Bytes::new();
            }

            /// Keeps the bytes, for [`authorize`] or [`batch`] to read.
            fn merge(&mut self, mut buf: impl Buf) -> Result<(), prost::DecodeError> {
                self.0 = buf.copy_to_bytes(buf.remaining());
                Ok(())
            }
        }
    };
}

/// The bytes of an Envoy `envoy.service.auth.v3.CheckRequest`, decoded by the Check face
/// once the request is admitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckBytes(pub Bytes);

raw_message!(AuthorizeBytes);
raw_message!(BatchAuthorizeBytes);
raw_message!(CheckBytes);

/// The bytes of a `warden.v1.AuthorizeResponse`, written by `grpc::encode_response`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeResponseBytes(pub Bytes);

/// The bytes of an Envoy `envoy.service.auth.v3.CheckResponse`, written by
/// `grpc::check::encode_response`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckResponseBytes(pub Bytes);

raw_message!(AuthorizeResponseBytes);
raw_message!(CheckResponseBytes);

/// Any message, as its bytes: what the load generator sends and receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raw(pub Bytes);

raw_message!(Raw);

/// The bytes of a `warden.v1.WriteRequest`, counted before prost decodes them
/// (`grpc::admin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBytes(pub Bytes);

/// The bytes of a `warden.v1.GetRequest`, counted before prost decodes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetBytes(pub Bytes);

raw_message!(WriteBytes);
raw_message!(GetBytes);

/// Where a field is, for errors: formatted only when one is made (`items[3].context`).
#[derive(Debug, Clone, Copy)]
struct Place {
    /// The batch item, if the field is an item's.
    item: Option<usize>,
    /// The field; empty for the message itself.
    field: &'static str,
}

impl Place {
    const fn request(field: &'static str) -> Place {
        Place { item: None, field }
    }

    fn with(self, field: &'static str) -> Place {
        Place { field, ..self }
    }

    fn name(self) -> String {
        match (self.item, self.field) {
            (None, "") => "request".to_owned(),
            (None, f) => f.to_owned(),
            (Some(i), "") => format!("items[{i}]"),
            (Some(i), f) => format!("items[{i}].{f}"),
        }
    }

    fn invalid(self, message: impl Into<String>) -> RequestError {
        RequestError::invalid(self.name(), message)
    }
}

/// Reads an `AuthorizeRequest` into a one-item request.
pub fn authorize(bytes: &[u8], limits: &Limits) -> Result<Request, RequestError> {
    let mut r = Reader::new(bytes, Place::request(""));
    let (mut principal, mut action, mut resource) = (String::new(), String::new(), String::new());
    let mut context = Entries::new(Place::request("context"), limits);
    let (mut explain, mut min_revision) = (false, 0);
    let mut presented = Credentials::default();
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => principal = r.string(wire, "principal", MAX_NAME_BYTES)?,
            2 => action = r.string(wire, "action", MAX_NAME_BYTES)?,
            3 => resource = r.string(wire, "resource", MAX_NAME_BYTES)?,
            4 => context.entry(&mut r.message(wire, "context")?)?,
            5 => explain = r.varint(wire, "explain")? != 0,
            6 => min_revision = r.varint(wire, "min_revision")?,
            7 => presented.token = r.string(wire, "session_token", MAX_TOKEN_BYTES)?,
            8 => presented.signed = Some(signed_request(&mut r.message(wire, "signed_request")?)?),
            _ => r.skip(tag, wire)?,
        }
    }
    Ok(Request {
        caller: presented.caller(principal)?,
        context: context.finish()?,
        items: vec![Item {
            action,
            resource,
            context: Context::new(),
        }],
        min_revision,
        explain,
        shape: Shape::One,
        face: Face::Authorize,
        snapshot: None,
    })
}

/// Reads a `BatchAuthorizeRequest`.
pub fn batch(bytes: &[u8], limits: &Limits) -> Result<Request, RequestError> {
    let mut r = Reader::new(bytes, Place::request(""));
    let mut principal = String::new();
    let mut context = Entries::new(Place::request("context"), limits);
    let mut items: Vec<Item> = Vec::new();
    let (mut explain, mut min_revision) = (false, 0);
    let mut presented = Credentials::default();
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => principal = r.string(wire, "principal", MAX_NAME_BYTES)?,
            6 => presented.token = r.string(wire, "session_token", MAX_TOKEN_BYTES)?,
            7 => presented.signed = Some(signed_request(&mut r.message(wire, "signed_request")?)?),
            2 => context.entry(&mut r.message(wire, "context")?)?,
            3 => {
                if items.len() == BATCH_MAX {
                    return Err(Place::request("items")
                        .invalid(format!("more than the maximum of {BATCH_MAX} items")));
                }
                let bytes = r.delimited(wire, "items")?;
                let at = Place {
                    item: Some(items.len()),
                    field: "",
                };
                items.push(item(&mut Reader::new(bytes, at), limits)?);
            }
            4 => explain = r.varint(wire, "explain")? != 0,
            5 => min_revision = r.varint(wire, "min_revision")?,
            _ => r.skip(tag, wire)?,
        }
    }
    Ok(Request {
        caller: presented.caller(principal)?,
        context: context.finish()?,
        items,
        min_revision,
        explain,
        shape: Shape::Batch,
        face: Face::BatchAuthorize,
        snapshot: None,
    })
}

/// The longest session token read (warden's are a few hundred bytes to a few KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Bounds of a `SignedRequest`: its target, headers and body.
pub const MAX_TARGET_BYTES: usize = 16 * 1024;
pub const MAX_SIGNED_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_SIGNED_BODY_BYTES: usize = 64 * 1024;

/// The credentials fields of a request, as read.
#[derive(Default)]
struct Credentials {
    token: String,
    signed: Option<SignedRequest>,
}

impl Credentials {
    /// The caller: the principal named, or the credentials presented; never two of them.
    fn caller(self, principal: String) -> Result<Caller, RequestError> {
        let at = Place::request("principal");
        match (principal.is_empty(), self.token.is_empty(), self.signed) {
            (_, true, None) => Ok(Caller::Asserted(principal)),
            (true, false, None) => Ok(Caller::Presented(std::sync::Arc::new(
                Presented::SessionToken(self.token),
            ))),
            (true, true, Some(signed)) => Ok(Caller::Presented(std::sync::Arc::new(
                Presented::Signed(signed),
            ))),
            _ => Err(at
                .invalid("name one of `principal`, `session_token` and `signed_request`, not two")),
        }
    }
}

/// A `SignedRequest`: method, target, headers (`name = 1`, `value = 2`) and body, each
/// bounded as it is read.
fn signed_request(r: &mut Reader<'_>) -> Result<SignedRequest, RequestError> {
    let mut out = SignedRequest::default();
    let mut body: Option<&[u8]> = None;
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => out.method = r.string(wire, "method", 16)?,
            2 => out.target = r.string(wire, "target", MAX_TARGET_BYTES)?,
            3 => {
                if out.headers.len() == MAX_SIGNED_HEADERS {
                    return Err(r.at.with("headers").invalid(format!(
                        "more than the limit of {MAX_SIGNED_HEADERS} headers"
                    )));
                }
                let mut h = r.message(wire, "headers")?;
                let (mut name, mut value) = (String::new(), String::new());
                while let Some((tag, wire)) = h.key()? {
                    match tag {
                        1 => name = h.string(wire, "name", 256)?,
                        2 => value = h.string(wire, "value", MAX_HEADER_BYTES)?,
                        _ => h.skip(tag, wire)?,
                    }
                }
                out.headers.push((name, value));
            }
            4 => {
                let bytes = r.delimited(wire, "body")?;
                if bytes.len() > MAX_SIGNED_BODY_BYTES {
                    return Err(r
                        .at
                        .with("body")
                        .invalid(format!("is longer than {MAX_SIGNED_BODY_BYTES} bytes")));
                }
                body = Some(bytes);
            }
            _ => r.skip(tag, wire)?,
        }
    }
    out.body = Some(prost::bytes::Bytes::copy_from_slice(
        body.unwrap_or_default(),
    ));
    Ok(out)
}

/// A `BatchItem`.
fn item(r: &mut Reader<'_>, limits: &Limits) -> Result<Item, RequestError> {
    let (mut action, mut resource) = (String::new(), String::new());
    let mut context = Entries::new(r.at.with("context"), limits);
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => action = r.string(wire, "action", MAX_NAME_BYTES)?,
            2 => resource = r.string(wire, "resource", MAX_NAME_BYTES)?,
            3 => context.entry(&mut r.message(wire, "context")?)?,
            _ => r.skip(tag, wire)?,
        }
    }
    Ok(Item {
        action,
        resource,
        context: context.finish()?,
    })
}

// === the context map ===

/// A context map being read: its entries, counted as they come.
struct Entries<'l, 'b> {
    at: Place,
    limits: &'l Limits,
    /// Keys as the request spells them, borrowed from its bytes.
    entries: Vec<(&'b str, ContextValue)>,
}

impl<'l, 'b> Entries<'l, 'b> {
    fn new(at: Place, limits: &'l Limits) -> Entries<'l, 'b> {
        Entries {
            at,
            limits,
            entries: Vec::new(),
        }
    }

    /// One map entry (`key = 1`, `value = 2`).
    fn entry(&mut self, r: &mut Reader<'b>) -> Result<(), RequestError> {
        if self.entries.len() == self.limits.max_context_entries {
            return Err(self.at.invalid(format!(
                "more than the limit of {} keys",
                self.limits.max_context_entries
            )));
        }
        let (mut key, mut value) = ("", None);
        while let Some((tag, wire)) = r.key()? {
            match tag {
                1 => key = r.str(wire, self.at.field, MAX_KEY_BYTES)?,
                2 => {
                    let mut m = r.message(wire, self.at.field)?;
                    self.value(&mut m, key, &mut value)?;
                }
                _ => r.skip(tag, wire)?,
            }
        }
        let value = value.ok_or_else(|| {
            self.at
                .invalid(format!("key `{key}` has no value (set `string` or `list`)"))
        })?;
        self.entries.push((key, value));
        Ok(())
    }

    /// A `ContextValue`: a oneof of `string = 1` and `list = 2` (a `StringList`, whose
    /// `values = 1` are strings). The last member given wins; a list given twice merges.
    fn value(
        &self,
        r: &mut Reader<'_>,
        key: &str,
        value: &mut Option<ContextValue>,
    ) -> Result<(), RequestError> {
        let field = self.at.field;
        let too_long = || {
            self.at.invalid(format!(
                "a value of key `{key}` is longer than {MAX_VALUE_BYTES} bytes"
            ))
        };
        while let Some((tag, wire)) = r.key()? {
            match tag {
                1 => {
                    let s = r.str_or(wire, field, MAX_VALUE_BYTES, too_long)?.to_owned();
                    *value = Some(ContextValue::Single(s));
                }
                2 => {
                    let mut list = match value.take() {
                        Some(ContextValue::Multi(values)) => values,
                        _ => Vec::new(),
                    };
                    let mut m = r.message(wire, field)?;
                    while let Some((tag, wire)) = m.key()? {
                        if tag != 1 {
                            m.skip(tag, wire)?;
                            continue;
                        }
                        if list.len() == self.limits.max_context_values {
                            return Err(self.at.invalid(format!(
                                "key `{key}` has more than the limit of {} values",
                                self.limits.max_context_values
                            )));
                        }
                        list.push(m.str_or(wire, field, MAX_VALUE_BYTES, too_long)?.to_owned());
                    }
                    *value = Some(ContextValue::Multi(list));
                }
                _ => r.skip(tag, wire)?,
            }
        }
        Ok(())
    }

    /// The context, each key once (case-insensitively); at most the limit of keys, so the
    /// check costs a sort of that many.
    fn finish(self) -> Result<Context, RequestError> {
        let at = self.at;
        Context::from_entries(self.entries).map_err(|key| {
            at.invalid(format!(
                "key `{key}` is given twice (keys are case-insensitive)"
            ))
        })
    }
}

// === the wire format ===

/// Reads protobuf fields from a byte slice; errors name the field where it is.
pub(super) struct Reader<'b> {
    buf: &'b [u8],
    /// The message being read.
    at: Place,
}

impl<'b> Reader<'b> {
    fn new(buf: &'b [u8], at: Place) -> Reader<'b> {
        Reader { buf, at }
    }

    /// A reader of a whole message, whose errors name `field` (empty: the message).
    pub(super) fn of(buf: &'b [u8], field: &'static str) -> Reader<'b> {
        Reader::new(buf, Place::request(field))
    }

    /// `field` of this message (empty: the message itself) is not protobuf.
    fn malformed(&self, field: &'static str, e: impl std::fmt::Display) -> RequestError {
        let at = if field.is_empty() {
            self.at
        } else {
            self.at.with(field)
        };
        at.invalid(format!("malformed protobuf: {e}"))
    }

    /// The next field's tag and wire type; `None` at the end.
    #[inline]
    pub(super) fn key(&mut self) -> Result<Option<(u32, WireType)>, RequestError> {
        let Some((&first, rest)) = self.buf.split_first() else {
            return Ok(None);
        };
        // Fields 1 to 15 (all that warden reads) have a key of one byte; read here without
        // prost's general varint. Tag 0 and wire types 6 and 7 take prost's way, to its error.
        if first < 0x80 && first >> 3 != 0 && first & 7 <= 5 {
            self.buf = rest;
            let wire = match first & 7 {
                0 => WireType::Varint,
                1 => WireType::SixtyFourBit,
                2 => WireType::LengthDelimited,
                3 => WireType::StartGroup,
                4 => WireType::EndGroup,
                _ => WireType::ThirtyTwoBit,
            };
            return Ok(Some((u32::from(first >> 3), wire)));
        }
        self.long_key()
    }

    /// A key of more than one byte, or none that protobuf allows.
    #[cold]
    #[inline(never)]
    fn long_key(&mut self) -> Result<Option<(u32, WireType)>, RequestError> {
        decode_key(&mut self.buf)
            .map(Some)
            .map_err(|e| self.malformed("", e))
    }

    fn expect(
        &self,
        wire: WireType,
        want: WireType,
        field: &'static str,
    ) -> Result<(), RequestError> {
        if wire == want {
            Ok(())
        } else {
            Err(self.malformed(field, format!("wire type {wire:?}, expected {want:?}")))
        }
    }

    pub(super) fn varint(
        &mut self,
        wire: WireType,
        field: &'static str,
    ) -> Result<u64, RequestError> {
        self.expect(wire, WireType::Varint, field)?;
        decode_varint(&mut self.buf).map_err(|e| self.malformed(field, e))
    }

    /// A length-delimited field's bytes, without copying them.
    #[inline]
    pub(super) fn delimited(
        &mut self,
        wire: WireType,
        field: &'static str,
    ) -> Result<&'b [u8], RequestError> {
        // Under 128 bytes, the length is one byte: read here without prost's general varint.
        if wire == WireType::LengthDelimited
            && let Some((&len, rest)) = self.buf.split_first()
            && len < 0x80
            && let Some((bytes, rest)) = rest.split_at_checked(usize::from(len))
        {
            self.buf = rest;
            return Ok(bytes);
        }
        // Under 16 KiB, two bytes (a Check's attributes, its request, a bearer token).
        if wire == WireType::LengthDelimited
            && let [low, high, rest @ ..] = self.buf
            && *low >= 0x80
            && *high < 0x80
            && let Some((bytes, rest)) =
                rest.split_at_checked(usize::from(low & 0x7f) | usize::from(*high) << 7)
        {
            self.buf = rest;
            return Ok(bytes);
        }
        self.long_delimited(wire, field)
    }

    /// [`Reader::delimited`] of 16 KiB or more, or of a field that is not one.
    #[cold]
    #[inline(never)]
    fn long_delimited(
        &mut self,
        wire: WireType,
        field: &'static str,
    ) -> Result<&'b [u8], RequestError> {
        self.expect(wire, WireType::LengthDelimited, field)?;
        let len = decode_varint(&mut self.buf).map_err(|e| self.malformed(field, e))?;
        let Some(len) = usize::try_from(len).ok().filter(|n| *n <= self.buf.len()) else {
            let left = self.buf.len();
            return Err(self.malformed(field, format!("a length of {len} bytes, with {left} left")));
        };
        let (bytes, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(bytes)
    }

    /// A string of at most `max` bytes: the length is checked before anything is copied.
    pub(super) fn string(
        &mut self,
        wire: WireType,
        field: &'static str,
        max: usize,
    ) -> Result<String, RequestError> {
        self.str(wire, field, max).map(str::to_owned)
    }

    /// [`Reader::string`] without copying it.
    #[inline]
    pub(super) fn str(
        &mut self,
        wire: WireType,
        field: &'static str,
        max: usize,
    ) -> Result<&'b str, RequestError> {
        let at = self.at;
        self.str_or(wire, field, max, || too_long(at.with(field), max))
    }

    /// [`Reader::str`] with its own error for a string over `max` bytes.
    #[inline]
    fn str_or(
        &mut self,
        wire: WireType,
        field: &'static str,
        max: usize,
        too_long: impl FnOnce() -> RequestError,
    ) -> Result<&'b str, RequestError> {
        let bytes = self.delimited(wire, field)?;
        if bytes.len() > max {
            return Err(too_long());
        }
        utf8(bytes).ok_or_else(|| not_utf8(self.at.with(field)))
    }

    /// An embedded message, read by a reader of its own.
    pub(super) fn message(
        &mut self,
        wire: WireType,
        field: &'static str,
    ) -> Result<Reader<'b>, RequestError> {
        let bytes = self.delimited(wire, field)?;
        Ok(Reader::new(bytes, self.at.with(field)))
    }

    /// A `map<string, string>` entry as protobuf's writers send it (Envoy's headers): its
    /// key, then its value, each of at most 127 bytes of ASCII, and nothing else; read at once,
    /// without a reader's steps for each field. `None` (nothing read): any other entry,
    /// for [`Reader::key`] and the rest to read field by field. The same strings as those
    /// steps give (`check::tests`).
    #[inline]
    pub(super) fn short_ascii_pair(&self) -> Option<(&'b str, &'b str)> {
        let [0x0a, key_len, rest @ ..] = self.buf else {
            return None;
        };
        let (key, rest) = rest.split_at_checked(usize::from(*key_len))?;
        let [0x12, value_len, value @ ..] = rest else {
            return None;
        };
        // One-byte lengths; ASCII is UTF-8.
        if *key_len >= 0x80 || *value_len >= 0x80 || value.len() != usize::from(*value_len) {
            return None;
        }
        match (key.as_ascii_str(), value.as_ascii_str()) {
            (Ok(key), Ok(value)) => Some((key.as_str(), value.as_str())),
            _ => None,
        }
    }

    /// Skips a field this version does not know (protobuf's forward compatibility).
    pub(super) fn skip(&mut self, tag: u32, wire: WireType) -> Result<(), RequestError> {
        // A message or a string under 128 bytes (most that are skipped) is passed over here,
        // as prost's `skip_field` would; anything else goes to it.
        if wire == WireType::LengthDelimited
            && let Some((&len, rest)) = self.buf.split_first()
            && len < 0x80
            && let Some(rest) = rest.get(usize::from(len)..)
        {
            self.buf = rest;
            return Ok(());
        }
        skip_field(wire, tag, &mut self.buf, DecodeContext::default())
            .map_err(|e| self.malformed("", e))
    }
}

/// `bytes` as text when they are UTF-8. A string under 64 bytes (a header's name or value,
/// an action) is first checked as ASCII, a word at a time (`ascii`, over std's
/// `is_ascii`): std's UTF-8 check goes a byte at a time on short strings, about 90
/// instructions on each of a Check's 16. Longer strings (a bearer token's header) and
/// short ones that are not ASCII go to SIMD (`simdutf8`), which falls back to std's own
/// check under 64 bytes. The same answer as `std::str::from_utf8` (`wire::tests`).
#[inline]
pub(super) fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.len() < 64
        && let Ok(ascii) = bytes.as_ascii_str()
    {
        return Some(ascii.as_str());
    }
    simdutf8::basic::from_utf8(bytes).ok()
}

#[cold]
fn too_long(at: Place, max: usize) -> RequestError {
    at.invalid(format!("is longer than {max} bytes"))
}

#[cold]
fn not_utf8(at: Place) -> RequestError {
    at.invalid("is not UTF-8")
}

// === writing ===

/// Protobuf fields written by hand, for the answers built on every request: straight into
/// the answer's bytes, with no message built, copied and dropped on the way. `varint` and
/// `str` omit a proto3 default (zero, empty) as prost does; `present_varint`, `bytes` and
/// `message` always write (an `optional` or oneof member, a repeated element, a message
/// that is present). A message is written once: its body first, then its length before it.
pub(super) mod put {
    use prost::bytes::{BufMut, BytesMut};
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

    /// A field's key: one byte for fields 1 to 15 (all of warden's answers').
    #[inline(always)]
    fn key(tag: u32, wire: WireType, buf: &mut impl BufMut) {
        if tag < 16 {
            buf.put_u8(((tag as u8) << 3) | wire as u8);
        } else {
            encode_key(tag, wire, buf);
        }
    }

    /// A varint, one byte when under 128.
    #[inline(always)]
    fn uint(v: u64, buf: &mut impl BufMut) {
        if v < 0x80 {
            buf.put_u8(v as u8);
        } else {
            encode_varint(v, buf);
        }
    }

    #[inline]
    pub fn varint(tag: u32, v: u64, buf: &mut impl BufMut) {
        if v != 0 {
            present_varint(tag, v, buf);
        }
    }

    #[inline]
    pub fn present_varint(tag: u32, v: u64, buf: &mut impl BufMut) {
        key(tag, WireType::Varint, buf);
        uint(v, buf);
    }

    #[inline]
    pub fn str(tag: u32, s: &str, buf: &mut impl BufMut) {
        if !s.is_empty() {
            bytes(tag, s.as_bytes(), buf);
        }
    }

    #[inline]
    pub fn bytes(tag: u32, b: &[u8], buf: &mut impl BufMut) {
        key(tag, WireType::LengthDelimited, buf);
        uint(b.len() as u64, buf);
        buf.put_slice(b);
    }

    /// The bytes of a length-delimited field of tag 1 to 15 whose payload is `n` bytes.
    #[inline(always)]
    pub fn field_len(n: usize) -> usize {
        1 + encoded_len_varint(n as u64) + n
    }

    /// A length-delimited field's key and length, its `len` bytes of payload to follow:
    /// for a message whose length is worked out first ([`field_len`]), written without
    /// moving it.
    #[inline(always)]
    pub fn head(tag: u32, len: usize, buf: &mut impl BufMut) {
        key(tag, WireType::LengthDelimited, buf);
        uint(len as u64, buf);
    }

    /// An embedded message whose fields `body` writes. Its length is written after them,
    /// into one byte left before them (most are under 128 bytes); a longer one moves its
    /// body along to make room, so the bytes are prost's, with the shortest length.
    #[inline]
    pub fn message(tag: u32, buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
        key(tag, WireType::LengthDelimited, buf);
        let at = buf.len();
        buf.put_u8(0);
        body(buf);
        let len = buf.len() - at - 1;
        if len < 0x80 {
            if let Some(slot) = buf.get_mut(at) {
                *slot = len as u8;
            }
            return;
        }
        let width = encoded_len_varint(len as u64);
        let end = buf.len();
        buf.resize(end + width - 1, 0);
        buf.copy_within(at + 1..end, at + width);
        if let Some(mut slot) = buf.get_mut(at..at + width) {
            encode_varint(len as u64, &mut slot);
        }
    }
}

#[cfg(test)]
mod tests;
