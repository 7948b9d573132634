//! The canonical request and the string to sign, built as AWS builds them for every service
//! but S3 (botocore's `SigV4Auth`): the path normalized and URI-encoded a second time, the
//! query's pairs decoded, re-encoded and sorted, each signed header's values trimmed and
//! joined with `,`. The verifier and the signing helpers share these functions, and the
//! boto3 fixtures check both. Each writes to a [`Sink`]: a `String` (the text, for the
//! signing helpers and tests) or a [`Hashing`] sink, which feeds a SHA-256 or an HMAC as
//! the text is produced, so the verifier never builds the canonical request or the string
//! to sign.

use std::borrow::Cow;

use ring::{digest, hmac};

/// Where the canonical request and the string to sign are written.
pub trait Sink {
    fn push(&mut self, c: char);
    fn push_str(&mut self, s: &str);
}

impl Sink for String {
    fn push(&mut self, c: char) {
        String::push(self, c);
    }

    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
}

/// A hash that takes bytes: SHA-256, or an HMAC-SHA256 under a key.
pub trait Absorb {
    fn absorb(&mut self, bytes: &[u8]);
}

impl Absorb for digest::Context {
    fn absorb(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Absorb for hmac::Context {
    fn absorb(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Bytes a [`Hashing`] sink gathers before it hands them to its hash: two SHA-256 blocks,
/// so a full buffer is hashed in place, never copied to the hash's pending block.
const HASHING_BUFFER: usize = 128;

/// A [`Sink`] that hashes what is written to it, in blocks of [`HASHING_BUFFER`] bytes
/// (the canonical request is written a character or a word at a time).
#[derive(Clone)]
pub struct Hashing<C> {
    hash: C,
    buf: [u8; HASHING_BUFFER],
    len: usize,
}

impl<C: Absorb> Hashing<C> {
    pub fn new(hash: C) -> Hashing<C> {
        Hashing {
            hash,
            buf: [0; HASHING_BUFFER],
            len: 0,
        }
    }

    /// The hash of everything written.
    pub fn into_inner(mut self) -> C {
        self.flush();
        self.hash
    }

    fn flush(&mut self) {
        if let Some(pending) = self.buf.get(..self.len) {
            self.hash.absorb(pending);
        }
        self.len = 0;
    }
}

impl<C: Absorb> Sink for Hashing<C> {
    fn push(&mut self, c: char) {
        if let (true, Some(slot)) = (c.is_ascii(), self.buf.get_mut(self.len)) {
            *slot = c as u8;
            self.len += 1;
        } else {
            self.push_str(c.encode_utf8(&mut [0; 4]));
        }
    }

    fn push_str(&mut self, s: &str) {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == 0 && bytes.len() >= HASHING_BUFFER {
                // Whole buffers straight to the hash.
                let whole = bytes.len() - bytes.len() % HASHING_BUFFER;
                let (now, rest) = bytes.split_at(whole);
                self.hash.absorb(now);
                bytes = rest;
                continue;
            }
            let room = HASHING_BUFFER - self.len;
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            if let Some(dst) = self.buf.get_mut(self.len..self.len + now.len()) {
                dst.copy_from_slice(now);
            }
            self.len += now.len();
            bytes = rest;
            if self.len == HASHING_BUFFER {
                self.flush();
            }
        }
    }
}

/// The payload hash of a request whose body the signature does not cover.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of nothing, the payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The only algorithm verified: SigV4 with HMAC-SHA256 (SigV4a's ECDSA is not).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope's last element.
pub const TERMINATOR: &str = "aws4_request";

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn hex_digit(n: u8, upper: bool) -> char {
    let n = n & 0x0f;
    char::from(match (n, upper) {
        (0..=9, _) => b'0' + n,
        (_, true) => b'A' + n - 10,
        (_, false) => b'a' + n - 10,
    })
}

/// Lower-case hex, as signatures and payload hashes are written.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    write_hex(&mut out, bytes);
    out
}

/// Appends `bytes` in lower-case hex.
pub fn write_hex(out: &mut impl Sink, bytes: &[u8]) {
    for &b in bytes {
        out.push(hex_digit(b >> 4, false));
        out.push(hex_digit(b, false));
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Appends `bytes` URI-encoded as SigV4 says: RFC 3986's unreserved characters kept (and
/// `/` when `keep_slash`), every other byte `%XX` in upper-case hex (a space is `%20`).
pub fn uri_encode(out: &mut impl Sink, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4, true));
            out.push(hex_digit(b, true));
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as it is, and `+` stays `+`
/// (SigV4 encodes a space as `%20`).
pub fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// Appends the canonical URI: the path as received (the client URI-encoded it once) with
/// its `.`, `..` and empty segments removed as botocore removes them, then URI-encoded
/// again (AWS's double encoding for every service but S3).
pub fn canonical_uri(out: &mut impl Sink, path: &str) {
    if path == "/" || path.is_empty() {
        out.push('/');
        return;
    }
    let mut segments: smallvec::SmallVec<[&str; 8]> = smallvec::SmallVec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if path.starts_with('/') {
        out.push('/');
    }
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode(out, segment.as_bytes(), false);
    }
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
}

/// Appends the canonical query string: each `name=value` pair decoded and re-encoded the
/// SigV4 way, sorted by name then value, a pair without `=` given an empty value, and
/// `X-Amz-Signature` left out when `presigned` (it is what is being computed).
pub fn canonical_query(out: &mut impl Sink, query: &str, presigned: bool) {
    if query.is_empty() {
        return;
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name);
        if presigned && name.as_ref() == b"X-Amz-Signature" {
            continue;
        }
        let mut n = String::with_capacity(name.len());
        uri_encode(&mut n, &name, false);
        let mut v = String::with_capacity(value.len());
        uri_encode(&mut v, &percent_decode(value), false);
        pairs.push((n, v));
    }
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
}

/// Whitespace as Python's `str.split()` sees it in ASCII (botocore trims with it).
fn space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '\x1c'..='\x1f'
    )
}

/// The values of header `name` (lower case) in `headers`, in order; `host` falls back to
/// HTTP/2's `:authority` (what Envoy passes) when the request has no `Host`.
pub fn header_values<'h>(
    headers: &'h [(&'h str, &'h str)],
    name: &'h str,
) -> impl Iterator<Item = &'h str> + Clone + 'h {
    let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    let name = if name == "host" && !has("host") && has(":authority") {
        ":authority"
    } else {
        name
    };
    headers
        .iter()
        .filter(move |(h, _)| h.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Appends `name:value1,value2\n`, each value with its surrounding whitespace removed and
/// inner runs collapsed to one space.
pub fn canonical_header<'h>(
    out: &mut impl Sink,
    name: &str,
    values: impl Iterator<Item = &'h str>,
) {
    out.push_str(name);
    out.push(':');
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, word) in value.split(space).filter(|w| !w.is_empty()).enumerate() {
            if j > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out.push('\n');
}

/// The canonical request up to its last line (the payload hash), which the caller appends:
/// a presigned request may be tried with more than one.
pub fn canonical_request_head(
    method: &str,
    path: &str,
    query: &str,
    presigned: bool,
    signed_headers: &[&str],
    headers: &[(&str, &str)],
) -> String {
    let mut cr = String::with_capacity(256 + query.len());
    write_request_head(
        &mut cr,
        method,
        path,
        query,
        presigned,
        signed_headers,
        headers,
    );
    cr
}

/// [`canonical_request_head`], written to `out`.
pub fn write_request_head(
    out: &mut impl Sink,
    method: &str,
    path: &str,
    query: &str,
    presigned: bool,
    signed_headers: &[&str],
    headers: &[(&str, &str)],
) {
    out.push_str(method);
    out.push('\n');
    canonical_uri(out, path);
    out.push('\n');
    canonical_query(out, query, presigned);
    out.push('\n');
    for name in signed_headers {
        canonical_header(out, name, header_values(headers, name));
    }
    out.push('\n');
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
}

/// The SHA-256 of a canonical request as it is written, never built.
pub fn request_hasher() -> Hashing<digest::Context> {
    Hashing::new(digest::Context::new(&digest::SHA256))
}

/// The string to sign: algorithm, request time, credential scope, and the hex SHA-256 of
/// the canonical request (`head` followed by `payload_hash`).
pub fn string_to_sign(amz_date: &str, scope: &Scope<'_>, head: &str, payload_hash: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(head.as_bytes());
    ctx.update(payload_hash.as_bytes());
    let hash = ctx.finish();
    let mut sts = String::with_capacity(160);
    write_string_to_sign(&mut sts, amz_date, scope, hash.as_ref());
    sts
}

/// [`string_to_sign`] of the canonical request whose SHA-256 is `request_hash`, written to
/// `out`.
pub fn write_string_to_sign(
    out: &mut impl Sink,
    amz_date: &str,
    scope: &Scope<'_>,
    request_hash: &[u8],
) {
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(amz_date);
    out.push('\n');
    scope.write(out);
    out.push('\n');
    write_hex(out, request_hash);
}

/// A credential scope: `date/region/service/aws4_request`.
pub struct Scope<'s> {
    pub date: &'s str,
    pub region: &'s str,
    pub service: &'s str,
}

impl Scope<'_> {
    pub fn write(&self, out: &mut impl Sink) {
        out.push_str(self.date);
        out.push('/');
        out.push_str(self.region);
        out.push('/');
        out.push_str(self.service);
        out.push('/');
        out.push_str(TERMINATOR);
    }
}
