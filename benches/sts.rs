//! warden's STS and credentialed `Authorize`, in process, over the example organization
//! (`examples/org`): a `Service` with warden's `Authority` as its authenticator, built as
//! `warden serve --key-ring` builds them (a generated key ring, a secrets store holding one
//! access key of alice's), the decision cache on.
//!
//! - `assume_role/*`: `AssumeRole` of `555555555555:role/Developer` by alice, (1) through the
//!   authority's `StsHandler::call` as the query face calls it (the form body parsed, the
//!   SigV4 signature of alice's long-term key verified with a cached signing key, the
//!   trust and identity policies evaluated, the grant sealed), and (2) `assume::assume_role`
//!   then `token::seal` alone.
//! - `authorize/*`: `Service::handle` of one question (`orders:GetOrder` on an order) asked
//!   (a) for alice's ARN as asserted, by alice's long-term key's SigV4 signature, and
//!   (b) for the role session `assumed-role/Developer/bench` by its ARN as asserted, by its
//!   session token alone, and by a request signed with its credentials. Every path is
//!   warm, as for a repeated caller: the opened token, the signing key, the session's
//!   compiled policies and the decision are all cached. A signed request is signed once
//!   and presented again and again: the service reads a fixed clock (the signing time), so
//!   SigV4's five minutes of freshness never run out during a measurement.
//! - `token/*`: a session token sealed, and opened.
//! - `sigv4/*`: alice's signed `Authorize` request parsed and verified with a signing key
//!   from a warm `SigningKeys` cache, and with the key derived for it. (`benches/sigv4.rs`,
//!   when present, measures the same on a request boto3 signed.)
//! - `sigv4/crypto_floor_*`: only the cryptography no verification of a signed request can
//!   skip, for the requests of `signed-user` and `signed-session`: the SHA-256 of its
//!   canonical request (the very text, precomputed) and one HMAC-SHA256 of its string to
//!   sign (precomputed) under a key whose pads are computed already. A signature is new on
//!   every request an SDK signs, so neither can be cached: the least a SigV4 caller costs
//!   over an asserted one. Natively ring uses the CPU's SHA extensions where it has them,
//!   which valgrind does not emulate: the wall clock is the figure for these two.
//!
//! Run: `cargo bench --bench sts`. For valgrind, the binary also takes `count CASE N`:
//! it runs CASE N times through `sts::one`, the function to count:
//!
//! ```text
//! cargo bench --bench sts --no-run
//! valgrind --tool=callgrind --toggle-collect='sts::one' target/release/deps/sts-HASH count token 10000
//! ```
//!
//! CASE: `assume-role`, `assume-role-direct`, `asserted-user`, `signed-user`,
//! `asserted-session`, `token`, `signed-session`, `seal`, `open`, `verify-cached`,
//! `verify-derived`, `floor-user`, `floor-session`; `--no-cache` turns the decision cache
//! off. Divide the total by N.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

use std::hint::black_box;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::Criterion;
use ring::{digest, hmac};
use warden::caller::{Caller, Presented, SignedRequest};
use warden::context::Context;
use warden::eval::Decision;
use warden::oidc::Verifier;
use warden::service::{Clock, Item, Limits, Request, Service, ServiceConfig, Shape};
use warden::sigv4::{self, HttpRequest, Payload, Signer, SigningKey, SigningKeys};
use warden::snapshot::Snapshot;
use warden::source::Published;
use warden::sts::assume::{self, AssumeRoleInput, StsCaller};
use warden::sts::authority::{Authority, AuthorityConfig};
use warden::sts::http::{CallContext, Face as StsFace, RawRequest, StsHandler as _};
use warden::sts::keyring::{KeyRing, KeyRingHandle};
use warden::sts::query::{self, Call};
use warden::sts::secrets::{SecretsHandle, SecretsStore};
use warden::sts::token;
use warden::sts::xml::CallResult;
use warden::sts::{Grant, StsError};
use warden::telemetry::{Face, Telemetry};

const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
const ROLE: &str = "arn:aws:iam::555555555555:role/Developer";
const SESSION: &str = "arn:aws:sts::555555555555:assumed-role/Developer/bench";
const ACTION: &str = "orders:GetOrder";
const ALICE_ORDER: &str = "arn:aws:orders:us-east-1:333333333333:order/42";
const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/1";
const REGION: &str = "us-east-1";
const ASSUME_BODY: &str = "Action=AssumeRole&Version=2011-06-15\
     &RoleArn=arn%3Aaws%3Aiam%3A%3A555555555555%3Arole%2FDeveloper&RoleSessionName=bench";

/// The time every measurement reads: signatures are made at it, the service decides at it.
struct Fixed(SystemTime);

impl Clock for Fixed {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// Credentials: an access key id, its secret, a session's token.
struct Keys {
    id: String,
    secret: String,
    token: Option<String>,
}

struct Bench {
    now: SystemTime,
    service: Service,
    authority: Arc<Authority>,
    ring: Arc<KeyRingHandle>,
    snapshot: Arc<Snapshot>,
    alice: Keys,
    session: Keys,
    /// The grant the role session's token carries.
    grant: Grant,
    /// alice's `AssumeRole`, signed.
    assume: RawRequest,
    /// The `Authorize` requests signed by alice's key and by the session's.
    signed_user: SignedRequest,
    signed_session: SignedRequest,
    /// What the cryptography of verifying each of them cannot skip.
    floor_user: Floor,
    floor_session: Floor,
}

/// A signed request's canonical request and string to sign, as text, and the HMAC key of
/// its signing key (pads computed): what [`crypto_floor`] hashes.
struct Floor {
    canonical_request: String,
    string_to_sign: String,
    key: hmac::Key,
}

impl Floor {
    fn of(r: &SignedRequest, secret: &str) -> Floor {
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = HttpRequest {
            method: &r.method,
            target: &r.target,
            headers: &headers,
            payload: Payload::Bytes(b""),
        };
        let signed = sigv4::parse(&req).expect("parses").expect("is signed");
        let canonical_request = signed
            .canonical_requests(&req)
            .expect("canonical")
            .into_iter()
            .next()
            .expect("one payload hash");
        let string_to_sign = signed.string_to_sign(&canonical_request);
        let signing = SigningKey::derive(secret, signed.date, signed.region, signed.service);
        signed
            .verify(&req, &signing, signed.signed_at)
            .expect("the request verifies with this key");
        Floor {
            canonical_request,
            string_to_sign,
            key: hmac::Key::new(hmac::HMAC_SHA256, signing.as_bytes()),
        }
    }
}

/// The SHA-256 of the canonical request and the HMAC of the string to sign, nothing else.
fn crypto_floor(f: &Floor) {
    black_box(digest::digest(
        &digest::SHA256,
        black_box(f.canonical_request.as_bytes()),
    ));
    black_box(hmac::sign(&f.key, black_box(f.string_to_sign.as_bytes())));
}

/// Polls a future once: nothing here waits (no `min_revision`, no OIDC keys fetched).
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a call waited"),
    }
}

/// An HTTP request signed as an SDK signs it for `service`, its body hashed.
fn sign(
    keys: &Keys,
    service: &str,
    method: &str,
    target: &str,
    host: &str,
    body: Option<&[u8]>,
    at: SystemTime,
) -> (Vec<(String, String)>, Option<Vec<u8>>) {
    let mut headers = vec![("host", host)];
    if body.is_some_and(|b| !b.is_empty()) {
        headers.push((
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ));
    }
    let req = HttpRequest {
        method,
        target,
        headers: &headers,
        payload: body.map_or(Payload::Unknown, Payload::Bytes),
    };
    let signer = Signer {
        access_key_id: &keys.id,
        secret_access_key: &keys.secret,
        session_token: keys.token.as_deref(),
        region: REGION,
        service,
    };
    let added = sigv4::sign_headers(&req, &signer, at);
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    all.extend(added.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)));
    (all, body.map(<[u8]>::to_vec))
}

fn signed_authorize(keys: &Keys, at: SystemTime) -> SignedRequest {
    let (headers, _) = sign(
        keys,
        "orders",
        "GET",
        "/orders/42",
        "orders.example.com",
        Some(b""),
        at,
    );
    SignedRequest {
        method: "GET".to_owned(),
        target: "/orders/42".to_owned(),
        headers,
        // The GET's empty body, as a face that has the body hands it over.
        body: Some(Default::default()),
    }
}

fn setup(cache_size: usize) -> Bench {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = warden::bundle::load_dir(&root.join("examples/org")).expect("the bundle loads");
    let published = Arc::new(Published::new());
    let telemetry = Arc::new(Telemetry::new());
    published.publish(Snapshot::compile(&bundle, 1), &telemetry.metrics);
    let snapshot = published.current().expect("published");
    let ring = Arc::new(KeyRingHandle::new(
        KeyRing::generate().expect("a key ring"),
        None,
    ));
    let mut store = SecretsStore::new();
    let key = store.create_key(ALICE).expect("alice's access key");
    let alice = Keys {
        id: key.id.clone(),
        secret: key.secret().to_owned(),
        token: None,
    };
    let secrets = Arc::new(SecretsHandle::new(store, None, ring.clone()));
    let verifier = Arc::new(Verifier::new(published.clone()));
    let authority = Arc::new(Authority::new(
        published.clone(),
        ring.clone(),
        secrets,
        verifier,
        AuthorityConfig::default(),
    ));
    // Whole seconds: a signature's time has no fraction.
    let now = UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_secs(),
        );
    let service = Service::new(
        published,
        telemetry,
        None,
        ServiceConfig {
            cache_size,
            limits: Limits::default(),
        },
    )
    .with_clock(Arc::new(Fixed(now)))
    .with_authenticator(authority.clone());

    let (headers, body) = sign(
        &alice,
        "sts",
        "POST",
        "/",
        "sts.example.com:8443",
        Some(ASSUME_BODY.as_bytes()),
        now,
    );
    let assume = RawRequest {
        method: "POST".to_owned(),
        target: "/".to_owned(),
        headers,
        body: body.expect("a body"),
    };
    let credentials = match assume_role_call(&authority, &assume, now).expect("alice assumes") {
        CallResult::AssumeRole { credentials, .. } => credentials,
        other => panic!("AssumeRole answered {}", other.action()),
    };
    let grant = token::open(&ring.current(), &credentials.session_token, now)
        .expect("the token opens")
        .grant;
    assert_eq!(grant.arn(), SESSION);
    let session = Keys {
        id: credentials.access_key_id,
        secret: credentials.secret_access_key,
        token: Some(credentials.session_token),
    };
    let signed_user = signed_authorize(&alice, now);
    let signed_session = signed_authorize(&session, now);
    Bench {
        now,
        service,
        floor_user: Floor::of(&signed_user, &alice.secret),
        floor_session: Floor::of(&signed_session, &session.secret),
        signed_user,
        signed_session,
        authority,
        ring,
        snapshot,
        alice,
        session,
        grant,
        assume,
    }
}

fn assume_role_call(
    authority: &Authority,
    raw: &RawRequest,
    now: SystemTime,
) -> Result<CallResult, StsError> {
    let call = query::parse("", &raw.body, &query::Limits::default())?;
    debug_assert!(matches!(call, Call::AssumeRole(_)));
    ready(authority.call(
        CallContext {
            request_id: "bench",
            face: StsFace::Query,
            signed: Some(raw),
            now,
        },
        call,
    ))
}

fn assume_role_direct(b: &Bench) -> Result<String, StsError> {
    let input = AssumeRoleInput {
        role_arn: ROLE.to_owned(),
        session_name: "bench".to_owned(),
        ..AssumeRoleInput::default()
    };
    let issued = assume::assume_role(&b.snapshot, &StsCaller::User { arn: ALICE }, &input, b.now)?;
    Ok(token::seal(&b.ring.current(), &issued.grant)?.session_token)
}

/// One Authorize question from `caller`.
fn request(caller: Caller, resource: &str) -> Request {
    Request {
        caller,
        context: Context::new(),
        items: vec![Item {
            action: ACTION.to_owned(),
            resource: resource.to_owned(),
            context: Context::new(),
        }],
        min_revision: 0,
        explain: false,
        shape: Shape::One,
        face: Face::Authorize,
        snapshot: None,
    }
}

/// The Authorize cases: a name, and how each request is built (as a face's decoder would:
/// owned strings, the presented credentials in their own `Arc`).
fn authorize_request(b: &Bench, case: &str) -> Request {
    let presented = |p: Presented| Caller::Presented(Arc::new(p));
    match case {
        "asserted-user" => request(Caller::Asserted(ALICE.to_owned()), ALICE_ORDER),
        "signed-user" => request(
            presented(Presented::Signed(b.signed_user.clone())),
            ALICE_ORDER,
        ),
        "asserted-session" => request(Caller::Asserted(SESSION.to_owned()), PROD_ORDER),
        "token" => request(
            presented(Presented::SessionToken(
                b.session.token.clone().expect("a token"),
            )),
            PROD_ORDER,
        ),
        "signed-session" => request(
            presented(Presented::Signed(b.signed_session.clone())),
            PROD_ORDER,
        ),
        other => panic!("unknown case `{other}`"),
    }
}

const AUTHORIZE: [&str; 5] = [
    "asserted-user",
    "signed-user",
    "asserted-session",
    "token",
    "signed-session",
];

fn authorize(b: &Bench, request: Request) -> Decision {
    let answer = ready(b.service.handle(|_| Ok(request))).expect("decided");
    answer
        .decisions
        .first()
        .expect("one decision")
        .outcome
        .decision
}

/// alice's signed Authorize request as the verifier reads it, and the key for it.
fn verify_user(b: &Bench, keys: Option<&SigningKeys>) {
    let r = &b.signed_user;
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let req = HttpRequest {
        method: &r.method,
        target: &r.target,
        headers: &headers,
        payload: Payload::Bytes(b""),
    };
    let signed = sigv4::parse(&req).expect("parses").expect("is signed");
    let key = match keys {
        Some(keys) => keys.get(
            signed.access_key_id,
            &b.alice.secret,
            signed.date,
            signed.region,
            signed.service,
        ),
        None => SigningKey::derive(&b.alice.secret, signed.date, signed.region, signed.service),
    };
    signed.verify(&req, &key, b.now).expect("verifies");
}

/// The function valgrind counts: one case, once.
#[inline(never)]
fn one(b: &Bench, keys: &SigningKeys, case: &str, fresh: Option<Request>) -> bool {
    match case {
        "assume-role" => {
            black_box(assume_role_call(&b.authority, &b.assume, b.now).expect("assumed"));
        }
        "assume-role-direct" => {
            black_box(assume_role_direct(b).expect("assumed"));
        }
        "seal" => {
            black_box(token::seal(&b.ring.current(), &b.grant).expect("sealed"));
        }
        "open" => {
            let t = b.session.token.as_deref().expect("a token");
            black_box(token::open(&b.ring.current(), t, b.now).expect("opened"));
        }
        "verify-cached" => verify_user(b, Some(keys)),
        "verify-derived" => verify_user(b, None),
        // The Authorize cases first, through the same comparisons as before the floors.
        _ => match (fresh, case) {
            (Some(request), _) => return authorize(b, request) == Decision::Allow,
            (None, "floor-user") => crypto_floor(&b.floor_user),
            (None, "floor-session") => crypto_floor(&b.floor_session),
            (None, other) => panic!("unknown case `{other}`"),
        },
    }
    true
}

fn count(case: &str, n: usize, cache_size: usize) {
    let b = setup(cache_size);
    let keys = SigningKeys::new(1024);
    verify_user(&b, Some(&keys));
    let is_authorize = AUTHORIZE.contains(&case);
    if is_authorize {
        // Warm, uncounted: the first request opens the token, compiles the session, and
        // fills the decision cache.
        authorize(&b, authorize_request(&b, case));
    }
    let mut allowed = 0;
    for _ in 0..n {
        // Built outside the counted function, as the face's decoder would build it.
        let fresh = is_authorize.then(|| authorize_request(&b, case));
        allowed += usize::from(one(&b, &keys, case, black_box(fresh)));
    }
    println!("{case}: {n} runs, {allowed} allowed");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("count") {
        let no_cache = args.iter().any(|a| a == "--no-cache");
        let mut rest = args.iter().skip(1).filter(|a| !a.starts_with("--"));
        let case = rest.next().expect("count CASE N").clone();
        let n = rest
            .next()
            .and_then(|a| a.replace('_', "").parse().ok())
            .unwrap_or(10_000);
        count(&case, n, if no_cache { 0 } else { 100_000 });
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let b = setup(100_000);

    c.bench_function("sts/assume_role/query_call", |bench| {
        bench.iter(|| black_box(assume_role_call(&b.authority, &b.assume, b.now).expect("assumed")))
    });
    c.bench_function("sts/assume_role/assume_and_seal", |bench| {
        bench.iter(|| black_box(assume_role_direct(&b).expect("assumed")))
    });

    for case in AUTHORIZE {
        let first = authorize(&b, authorize_request(&b, case));
        println!("authorize/{case}: {first:?}");
        c.bench_function(&format!("sts/authorize/{case}"), |bench| {
            bench.iter_batched(
                || authorize_request(&b, case),
                |r| authorize(&b, r),
                criterion::BatchSize::SmallInput,
            )
        });
    }

    let ring = b.ring.current();
    let t = b.session.token.clone().expect("a token");
    println!("session token: {} bytes", t.len());
    c.bench_function("sts/token/seal", |bench| {
        bench.iter(|| black_box(token::seal(&ring, black_box(&b.grant)).expect("sealed")))
    });
    c.bench_function("sts/token/open", |bench| {
        bench.iter(|| black_box(token::open(&ring, black_box(&t), b.now).expect("opened")))
    });

    let keys = SigningKeys::new(1024);
    verify_user(&b, Some(&keys));
    c.bench_function("sts/sigv4/verify_cached_key", |bench| {
        bench.iter(|| verify_user(&b, Some(&keys)))
    });
    c.bench_function("sts/sigv4/verify_derived_key", |bench| {
        bench.iter(|| verify_user(&b, None))
    });
    for (name, floor) in [("user", &b.floor_user), ("session", &b.floor_session)] {
        println!(
            "crypto floor, {name}: canonical request {} bytes, string to sign {} bytes",
            floor.canonical_request.len(),
            floor.string_to_sign.len()
        );
        c.bench_function(&format!("sts/sigv4/crypto_floor_{name}"), |bench| {
            bench.iter(|| crypto_floor(floor))
        });
    }
    c.final_summary();
}
