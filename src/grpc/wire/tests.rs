//! The bounded decoder against prost's: random messages decode alike, and every limit is
//! met at the first entry past it, before the rest of the message is read.

use std::collections::BTreeMap;

use prost::Message;

use super::*;
use crate::grpc::pb;
use pb::context_value::Kind;

fn limits() -> Limits {
    Limits::default()
}

/// What the decoder must make of a context map: a context of the same entries.
fn expected_context(map: &BTreeMap<String, pb::ContextValue>) -> Context {
    let entries = map
        .iter()
        .map(|(k, v)| {
            let pb::ContextValue { kind } = v;
            let value = match kind {
                Some(Kind::String(s)) => ContextValue::Single(s.clone()),
                Some(Kind::List(pb::StringList { values })) => ContextValue::Multi(values.clone()),
                None => unreachable!("the generator always sets a value"),
            };
            (k.clone(), value)
        })
        .collect();
    Context::from_entries(entries).unwrap()
}

/// A random context: distinct keys (case-insensitively), strings or lists.
fn random_context(rng: &mut oorandom::Rand32, max: u32) -> BTreeMap<String, pb::ContextValue> {
    let mut map = BTreeMap::new();
    for i in 0..rng.rand_range(0..max + 1) {
        let key = format!("svc:Key{i}-{}", rng.rand_range(0..1000));
        let kind = if rng.rand_range(0..2) == 0 {
            Kind::String(format!("v{}", rng.rand_u32()))
        } else {
            let values = (0..rng.rand_range(0..4)).map(|j| format!("l{j}")).collect();
            Kind::List(pb::StringList { values })
        };
        map.insert(key, pb::ContextValue { kind: Some(kind) });
    }
    map
}

fn text(rng: &mut oorandom::Rand32, prefix: &str) -> String {
    format!("{prefix}{}", rng.rand_u32())
}

/// One of the three ways to name the caller, at random.
fn random_caller(rng: &mut oorandom::Rand32) -> (String, String, Option<pb::SignedRequest>) {
    match rng.rand_range(0..3) {
        0 => (
            text(rng, "arn:aws:iam::111122223333:user/u"),
            String::new(),
            None,
        ),
        1 => (String::new(), text(rng, "v1.k1.token"), None),
        _ => (
            String::new(),
            String::new(),
            Some(pb::SignedRequest {
                method: "POST".into(),
                target: text(rng, "/?a="),
                headers: (0..rng.rand_range(0..4))
                    .map(|i| pb::Header {
                        name: format!("h{i}"),
                        value: text(rng, "v"),
                    })
                    .collect(),
                body: text(rng, "Action=X").into_bytes(),
            }),
        ),
    }
}

fn assert_caller(got: &Caller, principal: &str, token: &str, signed: Option<&pb::SignedRequest>) {
    match (got, signed) {
        (Caller::Asserted(arn), None) if token.is_empty() => assert_eq!(arn, principal),
        (Caller::Presented(p), None) => match &**p {
            Presented::SessionToken(t) => assert_eq!(t, token),
            other => panic!("{other:?}"),
        },
        (Caller::Presented(p), Some(want)) => match &**p {
            Presented::Signed(r) => {
                assert_eq!((&r.method, &r.target), (&want.method, &want.target));
                let headers: Vec<(String, String)> = want
                    .headers
                    .iter()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect();
                assert_eq!(r.headers, headers);
                assert_eq!(r.body.as_deref(), Some(&want.body[..]));
            }
            other => panic!("{other:?}"),
        },
        (other, _) => panic!("{other:?}"),
    }
}

#[test]
fn a_request_names_one_caller_and_its_credentials_are_bounded() {
    let two = pb::AuthorizeRequest {
        principal: "arn:aws:iam::111122223333:user/u".into(),
        session_token: "t".into(),
        ..Default::default()
    };
    let e = authorize(&two.encode_to_vec(), &limits()).unwrap_err();
    assert!(e.to_string().contains("name one of"), "{e}");
    let both = pb::BatchAuthorizeRequest {
        session_token: "t".into(),
        signed_request: Some(pb::SignedRequest::default()),
        ..Default::default()
    };
    let e = batch(&both.encode_to_vec(), &limits()).unwrap_err();
    assert!(e.to_string().contains("name one of"), "{e}");
    let long_token = pb::AuthorizeRequest {
        session_token: "t".repeat(MAX_TOKEN_BYTES + 1),
        ..Default::default()
    };
    let e = authorize(&long_token.encode_to_vec(), &limits()).unwrap_err();
    assert!(e.to_string().starts_with("session_token:"), "{e}");
    let many_headers = pb::AuthorizeRequest {
        signed_request: Some(pb::SignedRequest {
            headers: vec![pb::Header::default(); MAX_SIGNED_HEADERS + 1],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = authorize(&many_headers.encode_to_vec(), &limits()).unwrap_err();
    assert!(e.to_string().contains("headers"), "{e}");
    let big_body = pb::AuthorizeRequest {
        signed_request: Some(pb::SignedRequest {
            body: vec![b'x'; MAX_SIGNED_BODY_BYTES + 1],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = authorize(&big_body.encode_to_vec(), &limits()).unwrap_err();
    assert!(e.to_string().contains("body"), "{e}");
}

#[test]
fn random_authorize_requests_decode_as_prost_reads_them() {
    let mut rng = oorandom::Rand32::new(7);
    for _ in 0..300 {
        // Every field, by name: a field added to the proto breaks this until it is read.
        let (principal, session_token, signed_request) = random_caller(&mut rng);
        let message = pb::AuthorizeRequest {
            principal,
            session_token,
            signed_request,
            action: text(&mut rng, "svc:Act"),
            resource: text(&mut rng, "arn:aws:svc:::r"),
            context: random_context(&mut rng, 8),
            explain: rng.rand_range(0..2) == 1,
            min_revision: u64::from(rng.rand_u32()),
        };
        let bytes = message.encode_to_vec();
        let got = authorize(&bytes, &limits()).unwrap();
        let pb::AuthorizeRequest {
            principal,
            action,
            resource,
            context,
            explain,
            min_revision,
            session_token,
            signed_request,
        } = message;
        assert_caller(
            &got.caller,
            &principal,
            &session_token,
            signed_request.as_ref(),
        );
        let [item] = got.items.as_slice() else {
            panic!("one item")
        };
        assert_eq!((&item.action, &item.resource), (&action, &resource));
        assert!(item.context.is_empty());
        assert_eq!(got.context, expected_context(&context));
        assert_eq!((got.explain, got.min_revision), (explain, min_revision));
        assert_eq!(got.shape, Shape::One);
    }
}

#[test]
fn random_batch_requests_decode_as_prost_reads_them() {
    let mut rng = oorandom::Rand32::new(11);
    for _ in 0..100 {
        let items: Vec<pb::BatchItem> = (0..rng.rand_range(0..6))
            .map(|_| pb::BatchItem {
                action: text(&mut rng, "svc:Act"),
                resource: text(&mut rng, "arn:aws:svc:::r"),
                context: random_context(&mut rng, 4),
            })
            .collect();
        let (principal, session_token, signed_request) = random_caller(&mut rng);
        let message = pb::BatchAuthorizeRequest {
            principal,
            session_token,
            signed_request,
            context: random_context(&mut rng, 8),
            items,
            explain: rng.rand_range(0..2) == 1,
            min_revision: u64::from(rng.rand_u32()),
        };
        let bytes = message.encode_to_vec();
        let got = batch(&bytes, &limits()).unwrap();
        let pb::BatchAuthorizeRequest {
            principal,
            context,
            items,
            explain,
            min_revision,
            session_token,
            signed_request,
        } = message;
        assert_caller(
            &got.caller,
            &principal,
            &session_token,
            signed_request.as_ref(),
        );
        assert_eq!(got.context, expected_context(&context));
        assert_eq!(got.items.len(), items.len());
        for (got, want) in got.items.iter().zip(items) {
            let pb::BatchItem {
                action,
                resource,
                context,
            } = want;
            assert_eq!((&got.action, &got.resource), (&action, &resource));
            assert_eq!(got.context, expected_context(&context));
        }
        assert_eq!((got.explain, got.min_revision), (explain, min_revision));
        assert_eq!(got.shape, Shape::Batch);
    }
}

#[test]
fn protobuf_semantics_hold_for_repeats_and_unknown_fields() {
    // A scalar given twice keeps the last; an unknown field is skipped; a list given twice
    // merges.
    let mut bytes = pb::AuthorizeRequest {
        principal: "first".into(),
        ..Default::default()
    }
    .encode_to_vec();
    bytes.extend(
        pb::AuthorizeRequest {
            principal: "second".into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    // Field 99, varint 5; field 98, a length-delimited blob.
    bytes.extend([0x98, 0x06, 0x05, 0x92, 0x06, 0x02, 0xff, 0xff]);
    let got = authorize(&bytes, &limits()).unwrap();
    assert_eq!(got.caller.arn(), "second");
    let twice = pb::ContextValue {
        kind: Some(Kind::List(pb::StringList {
            values: vec!["a".into()],
        })),
    };
    let mut value = twice.encode_to_vec();
    value.extend(twice.encode_to_vec());
    let entry = [&[0x0a, 0x01, b'k', 0x12, value.len() as u8][..], &value].concat();
    let message = [&[0x22, entry.len() as u8][..], &entry].concat();
    let got = authorize(&message, &limits()).unwrap();
    assert_eq!(
        got.context.get("k"),
        Some(&ContextValue::Multi(vec!["a".into(), "a".into()]))
    );
}

/// A message of `n` context entries followed by bytes that are not protobuf: a decoder that
/// stops at the limit never reaches them.
fn many_keys_then_garbage(n: usize) -> Vec<u8> {
    let mut map = BTreeMap::new();
    for i in 0..n {
        map.insert(
            format!("k{i:06}"),
            pb::ContextValue {
                kind: Some(Kind::String("v".into())),
            },
        );
    }
    let mut bytes = pb::AuthorizeRequest {
        context: map,
        ..Default::default()
    }
    .encode_to_vec();
    bytes.extend([0xff; 16]);
    bytes
}

#[test]
fn sixty_thousand_keys_are_refused_at_the_first_key_past_the_limit() {
    let bytes = many_keys_then_garbage(60_000);
    assert!(
        bytes.len() > 700_000 && bytes.len() < 1 << 20,
        "{}",
        bytes.len()
    );
    let e = authorize(&bytes, &limits()).unwrap_err();
    assert_eq!(
        e,
        RequestError::invalid("context", "more than the limit of 64 keys")
    );
    // At the limit the message is read to its end (and the garbage found).
    let e = authorize(&many_keys_then_garbage(64), &limits()).unwrap_err();
    assert!(e.to_string().contains("malformed protobuf"), "{e}");
}

#[test]
fn a_batch_stops_at_its_item_and_context_limits() {
    let item = pb::BatchItem {
        action: "a:b".into(),
        resource: "*".into(),
        context: BTreeMap::new(),
    };
    let mut bytes = pb::BatchAuthorizeRequest {
        items: vec![item; BATCH_MAX + 1],
        ..Default::default()
    }
    .encode_to_vec();
    bytes.extend([0xff; 16]);
    let e = batch(&bytes, &limits()).unwrap_err();
    assert_eq!(
        e,
        RequestError::invalid("items", "more than the maximum of 128 items")
    );
    // 40,000 shared keys: refused while the shared context is read, before any item.
    let mut shared = BTreeMap::new();
    for i in 0..40_000 {
        shared.insert(
            format!("k{i}"),
            pb::ContextValue {
                kind: Some(Kind::String("v".into())),
            },
        );
    }
    let bytes = pb::BatchAuthorizeRequest {
        context: shared,
        items: vec![
            pb::BatchItem {
                action: "a:b".into(),
                resource: "*".into(),
                context: BTreeMap::new(),
            };
            128
        ],
        ..Default::default()
    }
    .encode_to_vec();
    let e = batch(&bytes, &limits()).unwrap_err();
    assert_eq!(
        e,
        RequestError::invalid("context", "more than the limit of 64 keys")
    );
}

#[test]
fn each_size_and_shape_is_refused_with_its_field() {
    let check = |message: pb::AuthorizeRequest, field: &str, wanted: &str| match authorize(
        &message.encode_to_vec(),
        &limits(),
    ) {
        Err(RequestError::Invalid { field: f, message }) => {
            assert_eq!(f, field);
            assert!(message.contains(wanted), "{message}");
        }
        other => panic!("{other:?}"),
    };
    let string = |s: String| pb::ContextValue {
        kind: Some(Kind::String(s)),
    };
    check(
        pb::AuthorizeRequest {
            principal: "p".repeat(MAX_NAME_BYTES + 1),
            ..Default::default()
        },
        "principal",
        "longer than 2048 bytes",
    );
    check(
        pb::AuthorizeRequest {
            context: [("k".repeat(MAX_KEY_BYTES + 1), string("v".into()))].into(),
            ..Default::default()
        },
        "context",
        "longer than 256 bytes",
    );
    check(
        pb::AuthorizeRequest {
            context: [("k".into(), string("v".repeat(MAX_VALUE_BYTES + 1)))].into(),
            ..Default::default()
        },
        "context",
        "a value of key `k` is longer than 4096 bytes",
    );
    let list = pb::ContextValue {
        kind: Some(Kind::List(pb::StringList {
            values: vec!["v".into(); 65],
        })),
    };
    check(
        pb::AuthorizeRequest {
            context: [("k".into(), list)].into(),
            ..Default::default()
        },
        "context",
        "key `k` has more than the limit of 64 values",
    );
    check(
        pb::AuthorizeRequest {
            context: [
                ("aws:SourceVpc".into(), string("a".into())),
                ("AWS:sourcevpc".into(), string("b".into())),
            ]
            .into(),
            ..Default::default()
        },
        "context",
        "is given twice",
    );
    check(
        pb::AuthorizeRequest {
            context: [("k".into(), pb::ContextValue { kind: None })].into(),
            ..Default::default()
        },
        "context",
        "key `k` has no value (set `string` or `list`)",
    );
    // Not UTF-8, and not protobuf.
    let e = authorize(&[0x0a, 0x02, 0xc3, 0x28], &limits()).unwrap_err();
    assert_eq!(e, RequestError::invalid("principal", "is not UTF-8"));
    for garbage in [
        &[0x0a, 0x05, b'a'][..],
        &[0xff][..],
        &[0x28][..],
        &[0x0b][..],
    ] {
        let e = authorize(garbage, &limits()).unwrap_err();
        assert!(
            e.to_string().contains("malformed protobuf"),
            "{garbage:?}: {e}"
        );
    }
    // A field of the wrong wire type.
    let e = authorize(&[0x08, 0x01], &limits()).unwrap_err();
    assert_eq!(
        e,
        RequestError::invalid(
            "principal",
            "malformed protobuf: wire type Varint, expected LengthDelimited"
        )
    );
}

#[test]
fn a_message_written_before_its_length_is_prosts_bytes() {
    for len in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
        let body = vec![b'x'; len];
        let mut ours = prost::bytes::BytesMut::new();
        put::varint(1, 7, &mut ours);
        put::message(2, &mut ours, |buf| put::bytes(3, &body, buf));
        put::str(4, "after", &mut ours);
        let mut inner = Vec::new();
        prost::encoding::bytes::encode(3, &body, &mut inner);
        let mut theirs = Vec::new();
        prost::encoding::uint64::encode(1, &7, &mut theirs);
        prost::encoding::bytes::encode(2, &inner, &mut theirs);
        prost::encoding::string::encode(4, &"after".to_owned(), &mut theirs);
        assert_eq!(&ours[..], &theirs[..], "{len}");
    }
}

#[test]
fn a_key_reads_as_prost_reads_it_one_byte_or_more() {
    // Every first byte, alone and followed by continuation bytes: the same tag, wire type
    // and bytes left, or an error for both.
    for first in 0..=255u8 {
        for rest in [&[][..], &[0x01], &[0x80, 0x01], &[0xff; 11]] {
            let bytes: Vec<u8> = std::iter::once(first).chain(rest.iter().copied()).collect();
            let mut ours = Reader::of(&bytes, "");
            let mut theirs = &bytes[..];
            match (ours.key(), decode_key(&mut theirs)) {
                (Ok(Some(key)), Ok(want)) => {
                    assert_eq!(key, want, "{bytes:?}");
                    assert_eq!(ours.buf.len(), theirs.len(), "{bytes:?}");
                }
                (Err(_), Err(_)) => {}
                (got, want) => panic!("{bytes:?}: {got:?} against prost's {want:?}"),
            }
        }
    }
}

#[test]
fn a_delimited_field_reads_its_length_as_prost_does_short_long_or_truncated() {
    // One, two and three bytes of length, each side of the ends.
    for len in [0usize, 1, 100, 127, 128, 129, 300, 16_383, 16_384, 20_000] {
        let mut bytes = Vec::new();
        prost::encoding::encode_varint(len as u64, &mut bytes);
        let head = bytes.len();
        bytes.extend(std::iter::repeat_n(b'x', len));
        bytes.push(0x08);
        // Whole, then cut one byte into the body and into the length.
        for cut in [bytes.len(), head + len.saturating_sub(1), head - 1] {
            let Some(given) = bytes.get(..cut) else {
                continue;
            };
            let mut r = Reader::of(given, "");
            let got = r.delimited(WireType::LengthDelimited, "f").map(<[u8]>::len);
            let whole = cut >= head + len;
            assert_eq!(got.is_ok(), whole, "len {len}, cut at {cut}");
            if whole {
                assert_eq!(got.unwrap(), len);
                assert_eq!(r.buf.len(), cut - head - len);
            }
        }
    }
    // A field of another wire type is refused, however short.
    let mut r = Reader::of(&[0x01, 0x41], "");
    assert!(r.delimited(WireType::Varint, "f").is_err());
    // A length written longer than it needs (two bytes for 1, three for 300) is read as
    // prost reads it.
    for (bytes, len) in [
        (&[0x81, 0x00, b'x', 0x08][..], 1),
        (&[0x80, 0x00, 0x08], 0),
        (&[0xac, 0x82, 0x00], 300),
    ] {
        let body: Vec<u8> = bytes
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'x', len))
            .collect();
        let mut r = Reader::of(&body, "");
        assert_eq!(
            r.delimited(WireType::LengthDelimited, "f").unwrap().len(),
            len
        );
    }
}

/// A skipped field is passed over as prost's `skip_field` passes it, whatever its wire
/// type and length, or refused where prost refuses it.
#[test]
fn a_skipped_field_is_passed_over_as_prost_does() {
    let mut cases: Vec<(WireType, Vec<u8>)> = Vec::new();
    for len in [0usize, 1, 127, 128, 300] {
        let mut bytes = Vec::new();
        prost::encoding::encode_varint(len as u64, &mut bytes);
        bytes.extend(std::iter::repeat_n(b'x', len));
        bytes.extend([0x08, 0x01]);
        for cut in 0..=bytes.len() {
            cases.push((WireType::LengthDelimited, bytes[..cut].to_vec()));
        }
    }
    cases.push((WireType::Varint, vec![0x96, 0x01, 0x08]));
    cases.push((WireType::SixtyFourBit, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]));
    cases.push((WireType::ThirtyTwoBit, vec![1, 2, 3]));
    for (wire, bytes) in cases {
        let mut theirs = &bytes[..];
        let want = prost::encoding::skip_field(wire, 9, &mut theirs, DecodeContext::default());
        let mut r = Reader::of(&bytes, "");
        let got = r.skip(9, wire);
        assert_eq!(got.is_ok(), want.is_ok(), "{wire:?} {bytes:?}");
        if got.is_ok() {
            assert_eq!(r.buf, theirs, "{wire:?} {bytes:?}");
        }
    }
}

/// [`utf8`] answers as `std::str::from_utf8` for every length around SIMD's 64-byte
/// chunks, with each kind of bad sequence (a lone continuation byte, a lead byte cut short,
/// an overlong form, a surrogate, a code point past U+10FFFF) at every place in it, and
/// with random bytes; 64 bytes and more go to SIMD, shorter ones to the ASCII check and,
/// when not ASCII, to std.
#[test]
fn utf8_answers_as_std_does_at_every_length_and_place() {
    let bad: [&[u8]; 6] = [
        b"\x80",
        b"\xc3",
        b"\xe2\x82",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
    ];
    let good: [&str; 3] = ["a", "\u{e9}", "\u{1f600}"];
    let check = |bytes: &[u8]| {
        assert_eq!(
            utf8(bytes),
            std::str::from_utf8(bytes).ok(),
            "{bytes:x?} ({} bytes)",
            bytes.len()
        );
    };
    for len in [
        0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 63, 64, 65, 127, 128, 129, 200, 900,
    ] {
        for g in good {
            let text = g.repeat(len / g.len() + 1);
            check(&text.as_bytes()[..len]);
        }
        let base = vec![b'x'; len];
        for b in bad {
            for at in 0..=len {
                let mut bytes = base.clone();
                bytes.splice(at..at, b.iter().copied());
                check(&bytes);
            }
        }
    }
    let mut rng = oorandom::Rand32::new(7);
    for _ in 0..2_000 {
        let len = rng.rand_range(0..300) as usize;
        // Mostly ASCII with a few high bytes: text that is almost valid.
        let bytes: Vec<u8> = (0..len)
            .map(|_| match rng.rand_range(0..20) {
                0 => 0x80 | rng.rand_range(0..0x80) as u8,
                1 => 0xc0 | rng.rand_range(0..0x40) as u8,
                _ => rng.rand_range(0x20..0x7f) as u8,
            })
            .collect();
        check(&bytes);
    }
}
