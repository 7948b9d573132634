#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use super::*;

/// One request boto3 sent (tests/fixtures/sts/boto3-requests.jsonl).
struct Fixture {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Fixture {
    fn headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn fixtures() -> Vec<Fixture> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sts/boto3-requests.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Fixture {
                method: v["method"].as_str().unwrap().to_string(),
                target: v["path"].as_str().unwrap().to_string(),
                headers: v["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                body: v["body"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The secrets the fixtures were signed with.
fn secret(access_key_id: &str) -> &'static str {
    match access_key_id {
        "AKIAPROBEEXAMPLE0001" => "probeSecret/abc+123",
        "AKIADENYEXAMPLE00001" => "x",
        "ASIAPROBECONTAINER01" => "containerSecret/xyz",
        other => panic!("no secret for {other}"),
    }
}

fn at(amz_date: &str) -> SystemTime {
    parse_amz_date(amz_date).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Parses and verifies with `secret` at `now`.
fn check(req: &HttpRequest<'_>, secret: &str, now: SystemTime) -> Result<(), StsError> {
    let signed = parse(req)?.ok_or_else(|| incomplete("no SigV4 in the request"))?;
    let key = SigningKey::derive(secret, signed.date, signed.region, signed.service);
    signed.verify(req, &key, now)
}

fn request<'a>(f: &'a Fixture, headers: &'a [(&'a str, &'a str)]) -> HttpRequest<'a> {
    HttpRequest {
        method: &f.method,
        target: &f.target,
        headers,
        payload: Payload::Bytes(f.body.as_bytes()),
    }
}

fn code(r: Result<(), StsError>) -> Code {
    r.expect_err("refused").code
}

fn message(r: Result<(), StsError>) -> String {
    r.expect_err("refused").message
}

#[test]
fn every_boto3_request_verifies_with_its_secret() {
    let all = fixtures();
    assert_eq!(all.len(), 6);
    let keys = SigningKeys::new(16);
    for f in &all {
        let headers = f.headers();
        let req = request(f, &headers);
        let signed = parse(&req).unwrap().unwrap();
        let now = at(f.header("X-Amz-Date").unwrap());
        assert_eq!(signed.signed_at, now);
        assert_eq!(signed.presigned_expires, None);
        assert_eq!(
            (signed.date, signed.region, signed.service),
            ("20261201", "us-east-1", "sts")
        );
        assert_eq!(
            signed.security_token.as_deref(),
            f.header("X-Amz-Security-Token")
        );
        assert!(signed.signed_headers().contains(&"host"));
        let secret = secret(signed.access_key_id);
        let key = SigningKey::derive(secret, signed.date, signed.region, signed.service);
        signed.verify(&req, &key, now).unwrap();
        let cached = keys.get(
            signed.access_key_id,
            secret,
            signed.date,
            signed.region,
            signed.service,
        );
        signed.verify(&req, &cached, now).unwrap();
        // Another key's secret does not verify it.
        let other = if secret == "x" { "y" } else { "x" };
        let wrong = keys.get(
            signed.access_key_id,
            other,
            signed.date,
            signed.region,
            signed.service,
        );
        assert_eq!(
            code(signed.verify(&req, &wrong, now)),
            Code::SignatureDoesNotMatch
        );
    }
}

#[test]
fn signing_reproduces_what_botocore_sent() {
    for f in &fixtures() {
        let signed_list = f
            .header("Authorization")
            .unwrap()
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string();
        // What botocore held when it signed: the headers it signed, and its User-Agent.
        let headers: Vec<(&str, &str)> = f
            .headers()
            .into_iter()
            .filter(|(n, _)| {
                let n = n.to_ascii_lowercase();
                n == "user-agent"
                    || (signed_list.split(';').any(|s| s == n)
                        && n != "x-amz-date"
                        && n != "x-amz-security-token")
            })
            .collect();
        let access_key_id = f
            .header("Authorization")
            .unwrap()
            .split("Credential=")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let signer = Signer {
            access_key_id,
            secret_access_key: secret(access_key_id),
            session_token: f.header("X-Amz-Security-Token"),
            region: "us-east-1",
            service: "sts",
        };
        let added = sign_headers(
            &request(f, &headers),
            &signer,
            at(f.header("X-Amz-Date").unwrap()),
        );
        let get = |name: &str| {
            added
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("Authorization"), f.header("Authorization"));
        assert_eq!(get("X-Amz-Date"), f.header("X-Amz-Date"));
        assert_eq!(
            get("X-Amz-Security-Token"),
            f.header("X-Amz-Security-Token")
        );
    }
}

#[test]
fn any_changed_byte_of_what_is_signed_fails() {
    let all = fixtures();
    let f = &all[1]; // with a security token
    let now = at(f.header("X-Amz-Date").unwrap());
    let secret = "probeSecret/abc+123";
    let base = f.headers();
    check(&request(f, &base), secret, now).unwrap();
    let change = |c: char| if c == 'Z' { 'Y' } else { 'Z' };

    // The body.
    for i in 0..f.body.len() {
        let mut body = f.body.clone().into_bytes();
        body[i] ^= 0x01;
        let req = HttpRequest {
            payload: Payload::Bytes(&body),
            ..request(f, &base)
        };
        assert_eq!(
            code(check(&req, secret, now)),
            Code::SignatureDoesNotMatch,
            "body byte {i}"
        );
    }
    // Each signed header's value, and the Authorization header (credential, signature).
    for name in [
        "Host",
        "Content-Type",
        "X-Amz-Date",
        "X-Amz-Security-Token",
        "Authorization",
    ] {
        let value = f.header(name).unwrap();
        for (i, c) in value.char_indices() {
            // The access key id is not in the string to sign: it picks the secret, and
            // another id's secret is another key (checked in the first test).
            let akid = value.find("AKIA").map_or(0..0, |s| s..s + 20);
            if name == "Authorization" && akid.contains(&i) {
                continue;
            }
            let mut changed = value.to_string();
            changed.replace_range(i..i + c.len_utf8(), &change(c).to_string());
            let headers: Vec<(&str, &str)> = base
                .iter()
                .map(|&(n, v)| {
                    if n == name {
                        (n, changed.as_str())
                    } else {
                        (n, v)
                    }
                })
                .collect();
            assert!(
                check(&request(f, &headers), secret, now).is_err(),
                "{name} byte {i}: {changed}"
            );
        }
    }
    // The method and the target.
    let headers = base.clone();
    for (method, target) in [
        ("GET", "/"),
        ("POST", "/x"),
        ("POST", "/?a=b"),
        ("PUT", "/"),
    ] {
        let req = HttpRequest {
            method,
            target,
            ..request(f, &headers)
        };
        assert_eq!(
            code(check(&req, secret, now)),
            Code::SignatureDoesNotMatch,
            "{method} {target}"
        );
    }
    // A header that is not signed changes nothing.
    let headers: Vec<(&str, &str)> = base
        .iter()
        .map(|&(n, v)| {
            if n == "User-Agent" {
                (n, "curl")
            } else {
                (n, v)
            }
        })
        .collect();
    check(&request(f, &headers), secret, now).unwrap();
    // A header added after signing changes nothing either; one more value of a signed one does.
    let mut headers = base.clone();
    headers.push(("X-Extra", "1"));
    check(&request(f, &headers), secret, now).unwrap();
    headers.push(("content-type", "text/plain"));
    assert_eq!(
        code(check(&request(f, &headers), secret, now)),
        Code::SignatureDoesNotMatch
    );
}

#[test]
fn a_wrong_secret_answers_as_aws() {
    let all = fixtures();
    let f = &all[0];
    let headers = f.headers();
    let err = check(
        &request(f, &headers),
        "probeSecret/abc+124",
        at("20261201T213532Z"),
    )
    .unwrap_err();
    assert_eq!(err.code, Code::SignatureDoesNotMatch);
    assert_eq!(
        err.message,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
}

#[test]
fn the_header_form_allows_five_minutes_of_skew() {
    let all = fixtures();
    let f = &all[0];
    assert_eq!(f.header("X-Amz-Date"), Some("20261201T213532Z"));
    let headers = f.headers();
    let req = request(f, &headers);
    let signed = at("20261201T213532Z");
    let secret = "probeSecret/abc+123";
    check(&req, secret, signed + secs(300)).unwrap();
    check(&req, secret, signed - secs(300)).unwrap();
    let late = check(&req, secret, signed + secs(301)).unwrap_err();
    assert_eq!(late.code, Code::SignatureDoesNotMatch);
    assert_eq!(
        late.message,
        "Signature expired: 20261201T213532Z is now earlier than 20261201T213533Z (20261201T214033Z - 5 min.)"
    );
    let early = check(&req, secret, signed - secs(301)).unwrap_err();
    assert_eq!(early.code, Code::SignatureDoesNotMatch);
    assert_eq!(
        early.message,
        "Signature not yet current: 20261201T213532Z is still later than 20261201T213531Z (20261201T213031Z + 5 min.)"
    );
    // The time is checked before the signature: a late request with a wrong secret is late.
    assert!(message(check(&req, "wrong", signed + secs(301))).starts_with("Signature expired"));
}

const HOST: (&str, &str) = ("Host", "127.0.0.1:18443");

fn signer(token: Option<&'static str>) -> Signer<'static> {
    Signer {
        access_key_id: "ASIAPROBECONTAINER01",
        secret_access_key: "containerSecret/xyz",
        session_token: token,
        region: "us-east-1",
        service: "sts",
    }
}

#[test]
fn presign_then_verify_honours_x_amz_expires() {
    let t0 = at("20261201T213532Z");
    let headers = [HOST];
    let get = HttpRequest {
        method: "GET",
        target: "/?Action=GetCallerIdentity&Version=2011-06-15",
        headers: &headers,
        payload: Payload::Unknown,
    };
    let token = "tok+en/with=odd chars";
    let target = presign(&get, &signer(Some(token)), t0, secs(60));
    assert!(target.starts_with("/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAPROBECONTAINER01%2F20261201%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20261201T213532Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Security-Token=tok%2Ben%2Fwith%3Dodd%20chars&X-Amz-Signature="), "{target}");
    let req = HttpRequest {
        target: &target,
        ..get
    };
    let signed = parse(&req).unwrap().unwrap();
    assert_eq!(signed.presigned_expires, Some(secs(60)));
    assert_eq!(signed.security_token.as_deref(), Some(token));
    assert_eq!(signed.access_key_id, "ASIAPROBECONTAINER01");
    let secret = "containerSecret/xyz";
    for now in [t0, t0 + secs(60), t0 - secs(300)] {
        check(&req, secret, now).unwrap();
    }
    // With the body known (empty), as with it unknown.
    check(
        &HttpRequest {
            payload: Payload::Bytes(b""),
            ..req
        },
        secret,
        t0,
    )
    .unwrap();
    let expired = check(&req, secret, t0 + secs(61)).unwrap_err();
    assert_eq!(expired.code, Code::RequestExpired);
    assert_eq!(
        expired.message,
        "Request has expired: X-Amz-Date 20261201T213532Z plus X-Amz-Expires 60 s is 20261201T213632Z, earlier than now (20261201T213633Z)"
    );
    assert!(message(check(&req, secret, t0 - secs(301))).starts_with("Signature not yet current"));
    // Any changed parameter fails.
    for (from, to) in [
        ("Version=2011-06-15", "Version=2011-06-16"),
        ("X-Amz-Expires=60", "X-Amz-Expires=61"),
        ("&X-Amz-Security-Token=tok%2Ben%2Fwith%3Dodd%20chars", ""),
        ("Action=GetCallerIdentity&", ""),
    ] {
        let changed = target.replace(from, to);
        let req = HttpRequest {
            target: &changed,
            ..get
        };
        assert_eq!(
            code(check(&req, secret, t0)),
            Code::SignatureDoesNotMatch,
            "{changed}"
        );
    }
    // Parameters in another order (or encoded otherwise) are the same canonical query.
    let reordered = target.replace(
        "Action=GetCallerIdentity&Version=2011-06-15&",
        "Version=2011-06-15&Action=GetCall%65rIdentity&",
    );
    check(
        &HttpRequest {
            target: &reordered,
            ..get
        },
        secret,
        t0,
    )
    .unwrap();
    // X-Amz-Expires from 1 s to a week.
    for bad in ["0", "604801", "-1", "1e3", ""] {
        let changed = target.replace("X-Amz-Expires=60", &format!("X-Amz-Expires={bad}"));
        let err = check(
            &HttpRequest {
                target: &changed,
                ..get
            },
            secret,
            t0,
        )
        .unwrap_err();
        assert_eq!(err.code, Code::IncompleteSignature, "{bad}");
    }
    let week = presign(&get, &signer(None), t0, secs(604_800));
    let req = HttpRequest {
        target: &week,
        ..get
    };
    check(&req, secret, t0 + secs(604_800)).unwrap();
    assert_eq!(
        code(check(&req, secret, t0 + secs(604_801))),
        Code::RequestExpired
    );
    assert_eq!(parse(&req).unwrap().unwrap().security_token, None);
    // Debug output never shows the token.
    let with_token = HttpRequest {
        target: &target,
        ..get
    };
    assert!(!format!("{:?}", parse(&with_token).unwrap().unwrap()).contains("odd chars"));
}

#[test]
fn a_presigned_request_may_sign_more_headers() {
    // As aws-iam-authenticator's tokens: a presigned GetCallerIdentity signing a header.
    let t0 = at("20261201T213532Z");
    let headers = [HOST, ("x-k8s-aws-id", "my-cluster")];
    let get = HttpRequest {
        method: "GET",
        target: "/?Action=GetCallerIdentity&Version=2011-06-15",
        headers: &headers,
        payload: Payload::Unknown,
    };
    let target = presign(&get, &signer(None), t0, secs(60));
    assert!(
        target.contains("&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&"),
        "{target}"
    );
    let req = HttpRequest {
        target: &target,
        ..get
    };
    assert_eq!(
        parse(&req).unwrap().unwrap().signed_headers(),
        ["host", "x-k8s-aws-id"]
    );
    check(&req, "containerSecret/xyz", t0).unwrap();
    let other = [HOST, ("x-k8s-aws-id", "other-cluster")];
    let req = HttpRequest {
        headers: &other,
        ..req
    };
    assert_eq!(
        code(check(&req, "containerSecret/xyz", t0)),
        Code::SignatureDoesNotMatch
    );
    assert!(!format!("{:?}", parse(&req).unwrap().unwrap()).contains("Signature="));
}

#[test]
fn a_presigned_post_with_a_body() {
    let t0 = at("20261201T213532Z");
    let headers = [
        HOST,
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    ];
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let post = HttpRequest {
        method: "POST",
        target: "/",
        headers: &headers,
        payload: Payload::Bytes(body),
    };
    let target = presign(&post, &signer(None), t0, secs(900));
    assert!(target.contains("X-Amz-SignedHeaders=host&"), "{target}");
    let req = HttpRequest {
        target: &target,
        ..post
    };
    // Presigned as botocore presigns (`UNSIGNED-PAYLOAD`), the body is not signed: whoever
    // holds the URL could send another body (other STS parameters), so it is refused.
    assert_eq!(
        message(check(&req, "containerSecret/xyz", t0)),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    // The same URL with no body verifies.
    let empty = HttpRequest {
        payload: Payload::Bytes(b""),
        ..req
    };
    check(&empty, "containerSecret/xyz", t0).unwrap();
}

#[test]
fn repeated_headers_are_joined_in_order() {
    let t0 = at("20261201T213532Z");
    let headers = [
        HOST,
        ("X-Custom", "a"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("x-custom", "  b \t  c  "),
    ];
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let req = HttpRequest {
        method: "POST",
        target: "/",
        headers: &headers,
        payload: Payload::Bytes(body),
    };
    let added = sign_headers(&req, &signer(Some("tok")), t0);
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .chain(added.iter().cloned())
            .collect()
    };
    let secret = "containerSecret/xyz";
    let run = |hs: &[(String, String)]| {
        let hs: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        check(
            &HttpRequest {
                headers: &hs,
                ..req
            },
            secret,
            t0,
        )
    };
    run(&with(&headers)).unwrap();
    assert!(
        added[2]
            .1
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-custom,"),
        "{}",
        added[2].1
    );
    // Whitespace trimmed and collapsed: the same canonical value.
    run(&with(&[
        HOST,
        ("x-custom", "a"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-CUSTOM", "b c"),
    ]))
    .unwrap();
    // The values in another order, or joined differently, are another request.
    for changed in [
        [
            HOST,
            ("X-Custom", "b c"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("x-custom", "a"),
        ],
        [
            HOST,
            ("X-Custom", "a,b"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("x-custom", "c"),
        ],
        [
            HOST,
            ("X-Custom", "a"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("x-custom", "bc"),
        ],
    ] {
        assert_eq!(
            run(&with(&changed)).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
    }
}

#[test]
fn http2_authority_stands_for_host() {
    let all = fixtures();
    let f = &all[0];
    let headers: Vec<(&str, &str)> = f
        .headers()
        .into_iter()
        .map(|(n, v)| {
            if n == "Host" {
                (":authority", v)
            } else {
                (n, v)
            }
        })
        .collect();
    check(
        &request(f, &headers),
        "probeSecret/abc+123",
        at("20261201T213532Z"),
    )
    .unwrap();
}

/// A key keeps its HMAC pads from when it was derived: what it signs is the HMAC-SHA256
/// under its bytes, whichever message, of whatever length.
#[test]
fn a_signing_key_signs_as_the_hmac_under_its_bytes() {
    let key = SigningKey::derive("one", "20261201", "us-east-1", "sts");
    let fresh = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    for len in [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 1000] {
        let message = "x".repeat(len);
        assert_eq!(
            key.sign(&message).as_slice(),
            ring::hmac::sign(&fresh, message.as_bytes()).as_ref(),
            "{len}"
        );
    }
    let clone = key.clone();
    assert_eq!(clone.sign("abc"), key.sign("abc"));
    assert_ne!(
        SigningKey::derive("two", "20261201", "us-east-1", "sts").sign("abc"),
        key.sign("abc")
    );
}

/// The hashing sink hashes exactly what a `String` written the same way holds, however the
/// writes fall across its buffer: single characters (ASCII and not), words, and runs longer
/// than the buffer, from every offset.
#[test]
fn a_hashing_sink_hashes_what_the_text_holds() {
    let long = "abcdefghij".repeat(40);
    for start in 0..130 {
        let mut text = String::new();
        let mut sha = canonical::request_hasher();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key");
        let mut mac = canonical::Hashing::new(ring::hmac::Context::with_key(&key));
        let mut write = |s: &str| {
            canonical::Sink::push_str(&mut text, s);
            canonical::Sink::push_str(&mut sha, s);
            canonical::Sink::push_str(&mut mac, s);
        };
        write(long.get(..start).unwrap());
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 256, 300] {
            write(long.get(..len).unwrap());
            write("\u{e9}\u{20ac}");
        }
        for c in ['a', '\n', '\u{e9}', '\u{20ac}', '\u{1f600}'] {
            for _ in 0..(start % 7 + 1) {
                canonical::Sink::push(&mut text, c);
                canonical::Sink::push(&mut sha, c);
                canonical::Sink::push(&mut mac, c);
            }
        }
        let sha = sha.clone().into_inner().finish();
        assert_eq!(
            sha.as_ref(),
            ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref(),
            "{start}"
        );
        assert_eq!(
            mac.into_inner().sign().as_ref(),
            ring::hmac::sign(&key, text.as_bytes()).as_ref(),
            "{start}"
        );
    }
}

/// What the verifier hashes as it writes is the canonical request and string to sign the
/// signing helpers build as text, for every boto3 request and a presigned one.
#[test]
fn the_verifier_signs_what_the_text_says() {
    let all = fixtures();
    let host = [("Host", "127.0.0.1:18443")];
    let get = HttpRequest {
        method: "GET",
        target: "/a/./b/../c%20d?Version=2011-06-15&Action=GetCallerIdentity&x=%E2%82%AC",
        headers: &host,
        payload: Payload::Unknown,
    };
    let target = presign(&get, &signer(None), at("20261201T213532Z"), secs(900));
    let presigned = HttpRequest {
        target: &target,
        ..get
    };
    let headers: Vec<Vec<(&str, &str)>> = all.iter().map(Fixture::headers).collect();
    let mut requests: Vec<HttpRequest<'_>> = all
        .iter()
        .zip(&headers)
        .map(|(f, h)| request(f, h))
        .collect();
    requests.push(presigned);
    for req in &requests {
        let signed = parse(req).unwrap().unwrap();
        let (path, query) = split_target(req.target);
        let presigned = signed.presigned_expires.is_some();
        let text = canonical::canonical_request_head(
            req.method,
            path,
            query,
            presigned,
            &signed.signed_headers,
            req.headers,
        );
        let mut streamed = canonical::request_hasher();
        canonical::write_request_head(
            &mut streamed,
            req.method,
            path,
            query,
            presigned,
            &signed.signed_headers,
            req.headers,
        );
        let scope = Scope {
            date: signed.date,
            region: signed.region,
            service: signed.service,
        };
        let key = SigningKey::derive("s", signed.date, signed.region, signed.service);
        for hash in signed.payload_hashes(req).unwrap() {
            let whole = format!("{text}{hash}");
            let mut request = streamed.clone();
            canonical::Sink::push_str(&mut request, &hash);
            let request_hash = request.into_inner().finish();
            assert_eq!(
                request_hash.as_ref(),
                ring::digest::digest(&ring::digest::SHA256, whole.as_bytes()).as_ref(),
                "{whole}"
            );
            let string_to_sign = canonical::string_to_sign(signed.amz_date, &scope, &text, &hash);
            assert!(signed.canonical_requests(req).unwrap().contains(&whole));
            assert_eq!(signed.string_to_sign(&whole), string_to_sign);
            assert_eq!(
                key.sign_request(signed.amz_date, &scope, request_hash.as_ref()),
                key.sign(&string_to_sign),
                "{string_to_sign}"
            );
        }
    }
}

/// AWS's published SigV4 examples (the signature test suite's `get-vanilla` and
/// `get-vanilla-query-order-key-case`, and the key derivation example).
#[test]
fn aws_published_examples() {
    let key = SigningKey::derive(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20120215",
        "us-east-1",
        "iam",
    );
    assert_eq!(
        canonical::hex(key.as_bytes()),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
    for (target, signature) in [
        (
            "/",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ] {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
        );
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            ("Authorization", authorization.as_str()),
        ];
        let req = HttpRequest {
            method: "GET",
            target,
            headers: &headers,
            payload: Payload::Bytes(b""),
        };
        check(
            &req,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            at("20150830T123600Z"),
        )
        .unwrap();
    }
}

#[test]
fn paths_and_queries_are_canonical_as_aws_builds_them() {
    let mut out = String::new();
    for (path, want) in [
        ("/", "/"),
        ("", "/"),
        ("/a/./b/../c//d/", "/a/c/d/"),
        ("/a%20b/c%2Fd", "/a%2520b/c%252Fd"),
        ("/~user/a-b_c.d", "/~user/a-b_c.d"),
        ("/..", "/"),
    ] {
        out.clear();
        canonical::canonical_uri(&mut out, path);
        assert_eq!(out, want, "{path}");
    }
    for (query, want) in [
        ("b=2&a=1&a=0", "a=0&a=1&b=2"),
        ("flag&empty=", "empty=&flag="),
        ("k=a+b&s=%7e%2f", "k=a%2Bb&s=~%2F"),
        ("x=a%20b&&y=", "x=a%20b&y="),
    ] {
        out.clear();
        canonical::canonical_query(&mut out, query, false);
        assert_eq!(out, want, "{query}");
    }
    // Signed and verified through those paths and queries.
    let t0 = at("20261201T213532Z");
    let headers = [HOST];
    for target in [
        "/a/./b/../c%20d/",
        "/?b=2&a=1&a=0&empty=&flag",
        "/x%2Fy?q=%E2%9C%93",
    ] {
        let req = HttpRequest {
            method: "GET",
            target,
            headers: &headers,
            payload: Payload::Bytes(b""),
        };
        let mut hs: Vec<(String, String)> = vec![(HOST.0.into(), HOST.1.into())];
        hs.extend(sign_headers(&req, &signer(None), t0));
        let hs: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        check(
            &HttpRequest {
                headers: &hs,
                ..req
            },
            "containerSecret/xyz",
            t0,
        )
        .unwrap();
    }
}

#[test]
fn a_request_without_sigv4_is_none() {
    for headers in [
        vec![HOST],
        vec![HOST, ("Authorization", "Bearer eyJhbGciOi.x.y")],
        vec![HOST, ("Authorization", "Basic dXNlcjpwYXNz")],
    ] {
        let req = HttpRequest {
            method: "GET",
            target: "/orders/42?X-Amz-Date=20261201T213532Z",
            headers: &headers,
            payload: Payload::Unknown,
        };
        assert!(parse(&req).unwrap().is_none());
    }
    assert_eq!(
        missing_authentication().code,
        Code::MissingAuthenticationToken
    );
}

/// The fixture's first request with its `Authorization` header replaced (or headers
/// changed), parsed and verified at its time.
fn with_authorization(auth: &str, drop: &[&str], add: &[(&str, &str)]) -> Result<(), StsError> {
    let all = fixtures();
    let f = &all[0];
    let mut headers: Vec<(&str, &str)> = f
        .headers()
        .into_iter()
        .filter(|(n, _)| !drop.contains(n))
        .map(|(n, v)| {
            if n == "Authorization" {
                (n, auth)
            } else {
                (n, v)
            }
        })
        .collect();
    headers.extend_from_slice(add);
    check(
        &request(f, &headers),
        "probeSecret/abc+123",
        at("20261201T213532Z"),
    )
}

const SIG: &str = "037c3d08421c997039e6465047b43a09a4161c1e2897dd70a2d79763131b0059";

#[test]
fn malformed_authorization_headers_answer_as_aws() {
    let good = format!(
        "AWS4-HMAC-SHA256 Credential=AKIAPROBEEXAMPLE0001/20261201/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={SIG}"
    );
    with_authorization(&good, &[], &[]).unwrap();
    // Without commas' spaces, as some clients write it.
    with_authorization(&good.replace(", ", ","), &[], &[]).unwrap();

    let cases: Vec<(String, Vec<&str>, Code, String)> = vec![
        (
            "AWS4-HMAC-SHA256 Credential=ABCDEF".into(),
            vec![],
            Code::IncompleteSignature,
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=ABCDEF".into(),
        ),
        (
            "AWS4-HMAC-SHA256 Credential=ABCDEF".into(),
            vec!["X-Amz-Date"],
            Code::IncompleteSignature,
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of a 'X-Amz-Date' header. Authorization=AWS4-HMAC-SHA256 Credential=ABCDEF".into(),
        ),
        (
            good.replace("Credential=", "Credential "),
            vec![],
            Code::IncompleteSignature,
            format!("'Credential AKIAPROBEEXAMPLE0001/20261201/us-east-1/sts/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.", good.replace("Credential=", "Credential ")),
        ),
        (
            good.replace("content-type;host;", "content-type;"),
            vec![],
            Code::IncompleteSignature,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ),
        (
            good.clone(),
            vec!["Content-Type"],
            Code::IncompleteSignature,
            "'content-type' is named as a SignedHeader, but it does not exist in the HTTP request.".into(),
        ),
        (
            good.replace("/us-east-1/", "/"),
            vec![],
            Code::IncompleteSignature,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIAPROBEEXAMPLE0001/20261201/sts/aws4_request'".into(),
        ),
        (
            good.replace("aws4_request", "aws5_request"),
            vec![],
            Code::SignatureDoesNotMatch,
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.".into(),
        ),
        (
            good.replace("/20261201/", "/20261202/"),
            vec![],
            Code::SignatureDoesNotMatch,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261202' != '20261201', from '20261201T213532Z'.".into(),
        ),
        (
            good.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
            vec![],
            Code::IncompleteSignature,
            "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'".into(),
        ),
        (
            good.replace("content-type;host", "host;content-type"),
            vec![],
            Code::IncompleteSignature,
            "SignedHeaders must be sorted and name each header once, got 'host;content-type;x-amz-date'".into(),
        ),
        (
            good.replace("content-type;host", "Content-Type;host"),
            vec![],
            Code::IncompleteSignature,
            "SignedHeaders must be lower-case header names separated by ';', got 'Content-Type;host;x-amz-date'".into(),
        ),
        (
            good.replace(SIG, &SIG.to_uppercase()),
            vec![],
            Code::IncompleteSignature,
            format!("Signature must be 64 lower-case hexadecimal characters, not '{}'", SIG.to_uppercase()),
        ),
    ];
    for (auth, drop, code, message) in cases {
        let err = with_authorization(&auth, &drop, &[]).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (code, message.as_str()),
            "{auth}"
        );
    }

    // Two Authorization headers; a bad X-Amz-Date; both mechanisms at once.
    let err = with_authorization(&good, &[], &[("authorization", "Bearer x")]).unwrap_err();
    assert_eq!(err.code, Code::IncompleteSignature);
    let err = with_authorization(
        &good,
        &["X-Amz-Date"],
        &[("X-Amz-Date", "2026-12-01T21:35:32Z")],
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "Date must be in ISO-8601 'basic format'. Got '2026-12-01T21:35:32Z'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
    let all = fixtures();
    let f = &all[0];
    let headers = f.headers();
    let req = HttpRequest {
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256",
        ..request(f, &headers)
    };
    assert_eq!(parse(&req).unwrap_err().code, Code::IncompleteSignature);
    // A presigned request missing parameters.
    let req = HttpRequest {
        target: "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261201T213532Z&X-Amz-Expires=60",
        headers: &[HOST],
        ..request(f, &headers)
    };
    assert_eq!(
        parse(&req).unwrap_err().message,
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."
    );
}

#[test]
fn a_security_token_header_must_be_signed() {
    let all = fixtures();
    let f = &all[0];
    let mut headers = f.headers();
    headers.push(("X-Amz-Security-Token", "slipped-in"));
    let err = check(
        &request(f, &headers),
        "probeSecret/abc+123",
        at("20261201T213532Z"),
    )
    .unwrap_err();
    assert_eq!(err.code, Code::IncompleteSignature);
}

#[test]
fn limits_refuse_before_any_work() {
    let all = fixtures();
    let f = &all[0];
    let now = at("20261201T213532Z");
    let secret = "probeSecret/abc+123";
    let base = f.headers();

    let huge = format!(
        "{}, Extra={}",
        f.header("Authorization").unwrap(),
        "a".repeat(5000)
    );
    let err = with_authorization(&huge, &[], &[]).unwrap_err();
    assert!(
        err.message.starts_with("the Authorization header has 5"),
        "{}",
        err.message
    );

    // A signed header of 40 KiB: refused before the canonical request is built.
    let big = "v".repeat(40 * 1024);
    let headers: Vec<(&str, &str)> = base
        .iter()
        .map(|&(n, v)| {
            if n == "Content-Type" {
                (n, big.as_str())
            } else {
                (n, v)
            }
        })
        .collect();
    let err = check(&request(f, &headers), secret, now).unwrap_err();
    assert!(
        err.message.starts_with("the signed headers' values have"),
        "{}",
        err.message
    );

    // A body over the limit is not hashed.
    let body = vec![b'a'; MAX_BODY_BYTES + 1];
    let req = HttpRequest {
        payload: Payload::Bytes(&body),
        ..request(f, &base)
    };
    assert!(message(check(&req, secret, now)).contains("at most 1048576 are hashed"));

    // Too many headers, a long target, many query parameters, a huge token.
    let many: Vec<(&str, &str)> = base
        .iter()
        .copied()
        .chain(std::iter::repeat_n(("X-Pad", "1"), MAX_HEADERS))
        .collect();
    assert!(message(check(&request(f, &many), secret, now)).contains("headers; at most"));
    let long = format!("/?a={}", "b".repeat(MAX_TARGET_BYTES));
    let req = HttpRequest {
        target: &long,
        ..request(f, &base)
    };
    assert!(parse(&req).unwrap_err().message.contains("target has"));
    let params = format!("/?{}", "a=1&".repeat(MAX_QUERY_PARAMS + 1));
    let req = HttpRequest {
        target: &params,
        ..request(f, &base)
    };
    assert!(
        parse(&req)
            .unwrap_err()
            .message
            .contains("query parameters")
    );
    let token = "t".repeat(MAX_SECURITY_TOKEN_BYTES + 1);
    let target = format!("/?X-Amz-Security-Token={token}");
    let req = HttpRequest {
        target: &target,
        ..request(f, &base)
    };
    assert!(
        parse(&req)
            .unwrap_err()
            .message
            .contains("security token has")
    );
}

#[test]
fn payload_hashes() {
    // An empty body's hash is not computed: this one.
    assert_eq!(canonical::sha256_hex(b""), EMPTY_SHA256);
    let get = HttpRequest {
        method: "GET",
        target: "/orders/42",
        headers: &[HOST],
        payload: Payload::Bytes(b""),
    };
    let added = sign_headers(&get, &signer(None), at("20261201T213532Z"));
    let mut headers = vec![HOST];
    headers.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let get = HttpRequest {
        headers: &headers,
        ..get
    };
    let signed = parse(&get).unwrap().unwrap();
    assert_eq!(
        signed.payload_hashes(&get).unwrap().as_slice(),
        [EMPTY_SHA256]
    );
    check(&get, "containerSecret/xyz", at("20261201T213532Z")).unwrap();
    let all = fixtures();
    let f = &all[0];
    let now = at("20261201T213532Z");
    let secret = "probeSecret/abc+123";
    let headers = f.headers();
    let hash = canonical::sha256_hex(f.body.as_bytes());
    // A declared hash stands for the body.
    let req = HttpRequest {
        payload: Payload::Declared(&hash),
        ..request(f, &headers)
    };
    check(&req, secret, now).unwrap();
    // Nothing known of the body: a header-form signature cannot be checked.
    let req = HttpRequest {
        payload: Payload::Unknown,
        ..request(f, &headers)
    };
    assert!(message(check(&req, secret, now)).contains("body was not seen"));
    // An `x-amz-content-sha256` header must match the body.
    let mut with_header = headers.clone();
    let zeros = "0".repeat(64);
    with_header.push(("x-amz-content-sha256", zeros.as_str()));
    assert_eq!(
        message(check(&request(f, &with_header), secret, now)),
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    );
    // Signed with one, verified without the body.
    let t0 = now;
    let sign_with = [HOST, ("x-amz-content-sha256", hash.as_str())];
    let post = HttpRequest {
        method: "POST",
        target: "/",
        headers: &sign_with,
        payload: Payload::Declared(&hash),
    };
    let mut hs: Vec<(String, String)> = sign_with
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    hs.extend(sign_headers(&post, &signer(None), t0));
    let hs: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    for payload in [
        Payload::Unknown,
        Payload::Bytes(f.body.as_bytes()),
        Payload::Declared(&hash),
    ] {
        check(
            &HttpRequest {
                headers: &hs,
                payload,
                ..post
            },
            "containerSecret/xyz",
            t0,
        )
        .unwrap();
    }
    assert_eq!(
        code(check(
            &HttpRequest {
                headers: &hs,
                payload: Payload::Bytes(b"other"),
                ..post
            },
            "containerSecret/xyz",
            t0
        )),
        Code::SignatureDoesNotMatch
    );
}

#[test]
fn the_key_cache_never_lends_a_key_to_another_secret() {
    let keys = SigningKeys::new(4);
    let a = keys.get(
        "AKIAPROBEEXAMPLE0001",
        "one",
        "20261201",
        "us-east-1",
        "sts",
    );
    let again = keys.get(
        "AKIAPROBEEXAMPLE0001",
        "one",
        "20261201",
        "us-east-1",
        "sts",
    );
    assert_eq!(a.as_bytes(), again.as_bytes());
    assert_eq!(
        a.as_bytes(),
        SigningKey::derive("one", "20261201", "us-east-1", "sts").as_bytes()
    );
    let b = keys.get(
        "AKIAPROBEEXAMPLE0001",
        "two",
        "20261201",
        "us-east-1",
        "sts",
    );
    assert_ne!(a.as_bytes(), b.as_bytes());
    assert_eq!(
        b.as_bytes(),
        SigningKey::derive("two", "20261201", "us-east-1", "sts").as_bytes()
    );
    // Fields do not run into each other.
    let c = keys.get(
        "AKIAPROBEEXAMPLE000",
        "1one",
        "20261201",
        "us-east-1",
        "sts",
    );
    assert_eq!(
        c.as_bytes(),
        SigningKey::derive("1one", "20261201", "us-east-1", "sts").as_bytes()
    );
    for i in 0..100 {
        keys.get(&format!("AKIA{i:016}"), "s", "20261201", "us-east-1", "sts");
    }
    assert!(keys.len() <= 8, "{}", keys.len());
    assert_eq!(format!("{a:?}"), "SigningKey(..)");
}

/// The cache is found by key id and scope, and the secret compared on a hit: the same key
/// id with another secret (longer, shorter, one byte apart) derives its own key, which then
/// stands for that id and scope until the first secret comes back and derives its own again;
/// another scope of the same secret is another key.
#[test]
fn the_key_cache_compares_the_secret_it_derived_from() {
    let keys = SigningKeys::new(64);
    let id = "AKIAPROBEEXAMPLE0001";
    let derive = |secret: &str| SigningKey::derive(secret, "20261201", "us-east-1", "sts");
    let get = |secret: &str| keys.get(id, secret, "20261201", "us-east-1", "sts");
    for secret in [
        "one", "one1", "on", "onf", "", "one", "0ne", "one", "one\0", "one",
    ] {
        assert_eq!(
            get(secret).as_bytes(),
            derive(secret).as_bytes(),
            "{secret:?}"
        );
        assert_eq!(
            get(secret).as_bytes(),
            derive(secret).as_bytes(),
            "{secret:?}"
        );
    }
    // One entry for the id and scope, whichever secret last derived it.
    assert_eq!(keys.len(), 1);
    let scopes = [
        ("20261201", "us-east-1", "sts"),
        ("20261202", "us-east-1", "sts"),
        ("20261201", "eu-west-1", "sts"),
        ("20261201", "us-east-1", "orders"),
    ];
    for (date, region, service) in scopes {
        assert_eq!(
            keys.get(id, "one", date, region, service).as_bytes(),
            SigningKey::derive("one", date, region, service).as_bytes()
        );
    }
    assert_eq!(keys.len(), 4);
    // Fields do not run into each other: the same characters split differently.
    assert_ne!(
        keys.get("AKIA1", "s", "20261201", "us-east-1", "sts")
            .as_bytes(),
        keys.get("AKIA", "s", "120261201", "us-east-1", "sts")
            .as_bytes()
    );
    for (date, region, service) in scopes {
        assert_eq!(
            keys.get(id, "one", date, region, service).as_bytes(),
            SigningKey::derive("one", date, region, service).as_bytes()
        );
    }
}

#[test]
fn scope_checks_answer_as_aws() {
    let all = fixtures();
    let f = &all[0];
    let headers = f.headers();
    let req = request(f, &headers);
    let signed = parse(&req).unwrap().unwrap();
    signed.check_scope(&["us-east-1"], "sts").unwrap();
    let err = signed.check_scope(&["eu-west-1"], "sts").unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            Code::SignatureDoesNotMatch,
            "Credential should be scoped to a valid region, not 'us-east-1'."
        )
    );
    let err = signed
        .check_scope(&["us-east-1"], "execute-api")
        .unwrap_err();
    assert_eq!(
        err.message,
        "Credential should be scoped to correct service: 'execute-api'."
    );
}
