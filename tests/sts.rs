//! warden's STS against the real `warden serve`, over gRPC: `warden.v1.Sts` with a
//! SigV4-signed caller (a user's access key made with the library, as `warden keys create`
//! makes it), `AssumeRoleWithWebIdentity` with a token of the demo OIDC provider,
//! `Authorize` with a session token and with a signed request, session tokens that are
//! tampered, expired, sealed with a rotated, a retired or a foreign key, and the AWS query
//! API over TLS. (The boto3 fixtures' signatures are checked in `src/sigv4/tests.rs`.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use server::{ALICE, PATIENCE, Server};
use tonic::transport::Channel;
use tonic::{Code, Status};
use warden::grpc::pb;
use warden::grpc::pb::authorizer_client::AuthorizerClient;
use warden::grpc::pb::sts_client::StsClient;
use warden::sigv4::{HttpRequest, Payload, Signer, sign_headers};
use warden::sts::keyring::KeyRing;
use warden::sts::secrets::SecretsStore;
use warden::sts::{Grant, Subject, token};

const DEVELOPER: &str = "arn:aws:iam::555555555555:role/Developer";
const BREAK_GLASS: &str = "arn:aws:iam::555555555555:role/BreakGlass";
const APP_RUNTIME: &str = "arn:aws:iam::333333333333:role/service/app-runtime";
/// An order in the Developer role's account. The role may update it; deleting it is
/// denied by the SCP `ProtectProductionData` to everyone but BreakGlass.
const ORDER_1: &str = "arn:aws:orders:us-east-1:555555555555:order/1";
const GET_CALLER_IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// A key ring and a secrets store holding one access key of alice's, in a directory of
/// their own, and a server started on them.
struct Fixture {
    dir: tempfile::TempDir,
    server: Server,
    /// Alice's access key id and secret.
    alice: (String, String),
}

impl Fixture {
    fn start(extra: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::generate().unwrap();
        ring.save(&dir.path().join("ring.json")).unwrap();
        let mut store = SecretsStore::new();
        let key = store.create_key(ALICE).unwrap();
        let alice = (key.id.clone(), key.secret().to_owned());
        store.save(&dir.path().join("secrets.json"), &ring).unwrap();
        let ring_path = dir.path().join("ring.json");
        let secrets_path = dir.path().join("secrets.json");
        let mut args = vec![
            "--key-ring",
            ring_path.to_str().unwrap(),
            "--secrets",
            secrets_path.to_str().unwrap(),
        ];
        args.extend(extra);
        let server = Server::start(&args);
        Fixture { dir, server, alice }
    }

    fn ring_path(&self) -> PathBuf {
        self.dir.path().join("ring.json")
    }

    fn ring(&self) -> KeyRing {
        KeyRing::load(&self.ring_path()).unwrap()
    }

    async fn sts(&self) -> StsClient<Channel> {
        StsClient::new(self.server.channel().await)
    }

    async fn authorizer(&self) -> AuthorizerClient<Channel> {
        self.server.client().await
    }

    /// Alice's signed `GetCallerIdentity`, the caller of an STS call.
    fn alice_caller(&self) -> pb::SignedRequest {
        let (id, secret) = &self.alice;
        sts_caller(id, secret, None)
    }
}

/// A `POST /` to `host` with `body`, signed with these credentials for `service`.
fn signed(
    keys: (&str, &str, Option<&str>),
    service: &str,
    host: &str,
    body: &str,
) -> pb::SignedRequest {
    signed_in("us-east-1", keys, service, host, body)
}

/// [`signed`], its signature scoped to `region`.
fn signed_in(
    region: &str,
    (access_key_id, secret, token): (&str, &str, Option<&str>),
    service: &str,
    host: &str,
    body: &str,
) -> pb::SignedRequest {
    let headers = [("Host", host), ("Content-Type", FORM)];
    let req = HttpRequest {
        method: "POST",
        target: "/",
        headers: &headers,
        payload: Payload::Bytes(body.as_bytes()),
    };
    let signer = Signer {
        access_key_id,
        secret_access_key: secret,
        session_token: token,
        region,
        service,
    };
    let added = sign_headers(&req, &signer, SystemTime::now());
    pb::SignedRequest {
        method: "POST".into(),
        target: "/".into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .chain(added)
            .map(|(name, value)| pb::Header { name, value })
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// A signed `GetCallerIdentity` for service `sts`, as Vault's AWS auth sends it.
fn sts_caller(access_key_id: &str, secret: &str, token: Option<&str>) -> pb::SignedRequest {
    signed(
        (access_key_id, secret, token),
        "sts",
        "sts.warden.test",
        GET_CALLER_IDENTITY,
    )
}

/// The caller of an STS call signed with a session's credentials.
fn session_caller(c: &pb::Credentials) -> pb::SignedRequest {
    sts_caller(
        &c.access_key_id,
        &c.secret_access_key,
        Some(&c.session_token),
    )
}

fn assume(caller: pb::SignedRequest, role: &str, session: &str) -> pb::AssumeRoleRequest {
    pb::AssumeRoleRequest {
        caller: Some(caller),
        role_arn: role.into(),
        role_session_name: session.into(),
        ..Default::default()
    }
}

async fn assume_role(
    sts: &mut StsClient<Channel>,
    req: pb::AssumeRoleRequest,
) -> pb::AssumeRoleResponse {
    sts.assume_role(req)
        .await
        .unwrap_or_else(|s| panic!("AssumeRole refused: {s:?}"))
        .into_inner()
}

async fn identity(sts: &mut StsClient<Channel>, caller: pb::SignedRequest) -> String {
    sts.get_caller_identity(pb::GetCallerIdentityRequest {
        caller: Some(caller),
    })
    .await
    .unwrap_or_else(|s| panic!("GetCallerIdentity refused: {s:?}"))
    .into_inner()
    .arn
}

/// Asserts a gRPC status: its code, and that its message starts with AWS's error code.
fn assert_refused(got: Result<impl std::fmt::Debug, Status>, code: Code, aws: &str) -> Status {
    let s = match got {
        Ok(r) => panic!("expected {code:?} `{aws}`, got {r:?}"),
        Err(s) => s,
    };
    assert_eq!(s.code(), code, "{s:?}");
    assert!(
        s.message().starts_with(&format!("{aws}:")),
        "expected `{aws}:` at the start of {:?}",
        s.message()
    );
    s
}

/// `Authorize` with `session_token` instead of a principal.
fn with_token(token: &str, action: &str, resource: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        session_token: token.into(),
        action: action.into(),
        resource: resource.into(),
        ..Default::default()
    }
}

/// `Authorize` with a signed request instead of a principal.
fn with_signed(req: pb::SignedRequest, action: &str, resource: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        signed_request: Some(req),
        action: action.into(),
        resource: resource.into(),
        ..Default::default()
    }
}

async fn decide(a: &mut AuthorizerClient<Channel>, req: pb::AuthorizeRequest) -> pb::Decision {
    a.authorize(req)
        .await
        .unwrap_or_else(|s| panic!("Authorize refused: {s:?}"))
        .into_inner()
        .decision()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A role session of alice's on `Developer`, as AssumeRole would issue it, valid from
/// `issued_at` to `expires_at`.
fn developer_grant(access_key_id: &str, issued_at: u64, expires_at: u64) -> Grant {
    Grant {
        access_key_id: access_key_id.into(),
        subject: Subject::Role {
            role_arn: DEVELOPER.into(),
            session_name: "sealed-by-test".into(),
            chained: false,
        },
        issued_at,
        expires_at,
        mfa_at: None,
        policy: None,
        policy_arns: Vec::new(),
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        source_identity: None,
        web_identity: None,
    }
}

/// The key id a session token names (`v1.<key id>.<sealed>`).
fn key_id_of(token: &str) -> &str {
    token.split('.').nth(1).unwrap()
}

// === warden.v1.Sts ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_calls_with_a_users_signed_request() {
    let f = Fixture::start(&[]);
    let mut sts = f.sts().await;

    // Alice's own key: she is who she signs as.
    let id = sts
        .get_caller_identity(pb::GetCallerIdentityRequest {
            caller: Some(f.alice_caller()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(id.arn, ALICE);
    assert_eq!(id.account, "333333333333");
    assert!(id.user_id.starts_with("AIDA"), "{id:?}");

    // GetSessionToken: temporary credentials acting as alice.
    let session = sts
        .get_session_token(pb::GetSessionTokenRequest {
            caller: Some(f.alice_caller()),
            duration_seconds: Some(900),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credentials
        .unwrap();
    assert!(session.access_key_id.starts_with("ASIA"), "{session:?}");
    assert_eq!(session.secret_access_key.len(), 40);
    assert!(session.expiration.ends_with('Z'), "{session:?}");
    assert_eq!(identity(&mut sts, session_caller(&session)).await, ALICE);

    // AssumeRole: a role session, whose credentials call as the assumed role.
    let assumed = assume_role(&mut sts, assume(f.alice_caller(), DEVELOPER, "alice-dev")).await;
    let user = assumed.assumed_role_user.unwrap();
    assert_eq!(
        user.arn,
        "arn:aws:sts::555555555555:assumed-role/Developer/alice-dev"
    );
    assert!(
        user.assumed_role_id.starts_with("AROA") && user.assumed_role_id.ends_with(":alice-dev"),
        "{user:?}"
    );
    let creds = assumed.credentials.unwrap();
    assert!(creds.access_key_id.starts_with("ASIA"), "{creds:?}");
    assert_eq!(identity(&mut sts, session_caller(&creds)).await, user.arn);

    // A role whose trust policy does not allow alice.
    assert_refused(
        sts.assume_role(assume(f.alice_caller(), BREAK_GLASS, "alice-bg"))
            .await,
        Code::PermissionDenied,
        "AccessDenied",
    );

    // A signature made with another secret, or over another body.
    let (akid, secret) = &f.alice;
    let wrong = format!("{secret}x");
    assert_refused(
        sts.get_caller_identity(pb::GetCallerIdentityRequest {
            caller: Some(sts_caller(akid, &wrong, None)),
        })
        .await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    let mut altered = f.alice_caller();
    altered.body = b"Action=GetCallerIdentity&Version=2011-06-16".to_vec();
    assert_refused(
        sts.assume_role(assume(altered, DEVELOPER, "alice-dev"))
            .await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    // A session's credentials with a secret that is not the session's.
    assert_refused(
        sts.get_caller_identity(pb::GetCallerIdentityRequest {
            caller: Some(sts_caller(
                &creds.access_key_id,
                &session.secret_access_key,
                Some(&creds.session_token),
            )),
        })
        .await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    // An access key the store does not hold.
    assert_refused(
        sts.get_caller_identity(pb::GetCallerIdentityRequest {
            caller: Some(sts_caller("AKIAUNKNOWNEXAMPLE01", secret, None)),
        })
        .await,
        Code::Unauthenticated,
        "InvalidClientTokenId",
    );
    // No caller at all.
    assert_refused(
        sts.get_caller_identity(pb::GetCallerIdentityRequest { caller: None })
            .await,
        Code::Unauthenticated,
        "MissingAuthenticationToken",
    );
    // Signed for another service than STS.
    assert_refused(
        sts.get_caller_identity(pb::GetCallerIdentityRequest {
            caller: Some(signed(
                (akid, secret, None),
                "orders",
                "sts.warden.test",
                GET_CALLER_IDENTITY,
            )),
        })
        .await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
}

/// A token of the demo provider (`examples/demo-oidc`), as `warden token` mints it.
fn demo_token(sub: &str, aud: &str) -> String {
    let pem = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-oidc/signing-key.pem"),
    )
    .unwrap();
    let key = warden::oidc::mint::SigningKey::from_pem(&pem).unwrap();
    let now = now();
    key.sign(&serde_json::json!({
        "iss": "https://demo.warden.invalid",
        "sub": sub,
        "aud": aud,
        "iat": now,
        "exp": now + 600,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_with_web_identity_needs_no_caller() {
    let f = Fixture::start(&[]);
    let mut sts = f.sts().await;
    let web = |token: String| pb::AssumeRoleWithWebIdentityRequest {
        role_arn: APP_RUNTIME.into(),
        role_session_name: "web-1".into(),
        web_identity_token: token,
        ..Default::default()
    };
    let r = sts
        .assume_role_with_web_identity(web(demo_token("alice", "orders")))
        .await
        .unwrap_or_else(|s| panic!("AssumeRoleWithWebIdentity refused: {s:?}"))
        .into_inner();
    let user = r.assumed_role_user.clone().unwrap();
    assert_eq!(
        user.arn,
        "arn:aws:sts::333333333333:assumed-role/app-runtime/web-1"
    );
    assert_eq!(r.subject_from_web_identity_token, "alice");
    assert_eq!(r.audience, "orders");
    assert!(r.provider.contains("demo.warden.invalid"), "{r:?}");
    let creds = r.credentials.unwrap();
    assert_eq!(identity(&mut sts, session_caller(&creds)).await, user.arn);

    // A token whose signature is altered, or for an audience the provider does not
    // accept.
    let mut forged = demo_token("alice", "orders");
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_refused(
        sts.assume_role_with_web_identity(web(forged)).await,
        Code::InvalidArgument,
        "InvalidIdentityToken",
    );
    assert_refused(
        sts.assume_role_with_web_identity(web(demo_token("alice", "billing")))
            .await,
        Code::InvalidArgument,
        "InvalidIdentityToken",
    );
}

// === Authorize as a credentialed caller ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_decides_as_the_session() {
    let f = Fixture::start(&[]);
    let mut sts = f.sts().await;
    let mut a = f.authorizer().await;

    let wide = assume_role(&mut sts, assume(f.alice_caller(), DEVELOPER, "wide")).await;
    let mut narrow_req = assume(f.alice_caller(), DEVELOPER, "narrow");
    narrow_req.policy = Some(
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]
        })
        .to_string(),
    );
    let narrow = assume_role(&mut sts, narrow_req).await;
    assert!(narrow.packed_policy_size.is_some(), "{narrow:?}");
    let wide = wide.credentials.unwrap();
    let narrow = narrow.credentials.unwrap();

    // Without a session policy the session decides as the role's session does when its
    // ARN is asserted: UpdateOrder allowed by the role, DeleteOrder denied by the SCP
    // `ProtectProductionData` (to everyone but BreakGlass), iam:CreateUser by no policy.
    for (action, expected) in [
        ("orders:UpdateOrder", pb::Decision::Allow),
        ("orders:DeleteOrder", pb::Decision::ExplicitDeny),
        ("iam:CreateUser", pb::Decision::ImplicitDeny),
    ] {
        let asserted = a
            .authorize(server::ask(
                "arn:aws:sts::555555555555:assumed-role/Developer/wide",
                action,
                ORDER_1,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(asserted.decision(), expected, "{action} asserted");
        let by_token = a
            .authorize(with_token(&wide.session_token, action, ORDER_1))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(by_token.decision(), expected, "{action} by token");
        assert_eq!(
            (&by_token.reason, &by_token.denied_by),
            (&asserted.reason, &asserted.denied_by),
            "{action}"
        );
    }

    // The session policy narrows: UpdateOrder is no longer allowed, GetOrder still is.
    assert_eq!(
        decide(
            &mut a,
            with_token(&narrow.session_token, "orders:UpdateOrder", ORDER_1)
        )
        .await,
        pb::Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &mut a,
            with_token(&narrow.session_token, "orders:GetOrder", ORDER_1)
        )
        .await,
        pb::Decision::Allow
    );

    // BatchAuthorize with the token: one session, its policy on every item.
    let batch = a
        .batch_authorize(pb::BatchAuthorizeRequest {
            session_token: narrow.session_token.clone(),
            items: ["orders:GetOrder", "orders:UpdateOrder"]
                .iter()
                .map(|action| pb::BatchItem {
                    action: (*action).into(),
                    resource: ORDER_1.into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let decisions: Vec<_> = batch.results.iter().map(|r| r.decision()).collect();
    assert_eq!(decisions, [pb::Decision::Allow, pb::Decision::ImplicitDeny]);

    // A request signed with the session's credentials for the action's service.
    let orders = |c: &pb::Credentials, service: &str| {
        signed(
            (
                &c.access_key_id,
                &c.secret_access_key,
                Some(&c.session_token),
            ),
            service,
            "orders.warden.test",
            "{}",
        )
    };
    assert_eq!(
        decide(
            &mut a,
            with_signed(orders(&wide, "orders"), "orders:UpdateOrder", ORDER_1)
        )
        .await,
        pb::Decision::Allow
    );
    assert_eq!(
        decide(
            &mut a,
            with_signed(orders(&narrow, "orders"), "orders:UpdateOrder", ORDER_1)
        )
        .await,
        pb::Decision::ImplicitDeny
    );
    // Scoped to another service than the action's.
    assert_refused(
        a.authorize(with_signed(
            orders(&wide, "s3"),
            "orders:UpdateOrder",
            ORDER_1,
        ))
        .await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    // Signed with another session's secret.
    let crossed = orders(
        &pb::Credentials {
            secret_access_key: narrow.secret_access_key.clone(),
            ..wide.clone()
        },
        "orders",
    );
    assert_refused(
        a.authorize(with_signed(crossed, "orders:UpdateOrder", ORDER_1))
            .await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );

    // Alice's own access key signs as alice: decided as asserting her ARN is.
    let (akid, secret) = &f.alice;
    for (action, resource) in [("orders:GetOrder", server::ORDER), ("iam:CreateUser", "*")] {
        let asserted = decide(&mut a, server::ask(ALICE, action, resource)).await;
        let by_key = decide(
            &mut a,
            with_signed(
                signed(
                    (akid, secret, None),
                    action.split(':').next().unwrap(),
                    "svc.warden.test",
                    "",
                ),
                action,
                resource,
            ),
        )
        .await;
        assert_eq!(by_key, asserted, "{action}");
    }
}

// === session tokens ===

/// Asks `Authorize` with `token` until `done` holds, for at most [`PATIENCE`] (the server
/// polls its key ring file about every second).
async fn until_token(
    a: &mut AuthorizerClient<Channel>,
    token: &str,
    what: &str,
    done: impl Fn(&Result<pb::AuthorizeResponse, Status>) -> bool,
) -> Result<pb::AuthorizeResponse, Status> {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    loop {
        let got = a
            .authorize(with_token(token, "orders:UpdateOrder", ORDER_1))
            .await
            .map(tonic::Response::into_inner);
        if done(&got) || tokio::time::Instant::now() > give_up {
            assert!(done(&got), "{what}: never; last {got:?}");
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_expired_tokens_are_refused() {
    let f = Fixture::start(&[]);
    let mut sts = f.sts().await;
    let mut a = f.authorizer().await;
    let token = assume_role(&mut sts, assume(f.alice_caller(), DEVELOPER, "tok"))
        .await
        .credentials
        .unwrap()
        .session_token;
    assert_eq!(
        decide(&mut a, with_token(&token, "orders:UpdateOrder", ORDER_1)).await,
        pb::Decision::Allow
    );

    // Every character changed in turn.
    for (n, c) in token.char_indices() {
        let other = match c {
            'A' => 'B',
            '.' => '_',
            _ => 'A',
        };
        let mut tampered = token.clone();
        tampered.replace_range(n..n + c.len_utf8(), &other.to_string());
        let s = assert_refused(
            a.authorize(with_token(&tampered, "orders:UpdateOrder", ORDER_1))
                .await,
            Code::Unauthenticated,
            "InvalidClientTokenId",
        );
        // The message says why, without echoing the sealed part.
        let sealed = tampered.rsplit('.').next().unwrap();
        assert!(!s.message().contains(sealed), "{s:?}");
    }
    // Cut short, or longer.
    for bad in [&token[..token.len() - 1], &format!("{token}A")] {
        assert_refused(
            a.authorize(with_token(bad, "orders:UpdateOrder", ORDER_1))
                .await,
            Code::Unauthenticated,
            "InvalidClientTokenId",
        );
    }

    // Sealed by the test with the server's ring: valid, then expired an hour ago.
    let ring = f.ring();
    let fresh = token::seal(
        &ring,
        &developer_grant("ASIATESTSEALED000001", now() - 60, now() + 900),
    )
    .unwrap();
    assert_eq!(
        decide(
            &mut a,
            with_token(&fresh.session_token, "orders:UpdateOrder", ORDER_1)
        )
        .await,
        pb::Decision::Allow
    );
    let expired = token::seal(
        &ring,
        &developer_grant("ASIATESTSEALED000002", now() - 7200, now() - 3600),
    )
    .unwrap();
    assert_refused(
        a.authorize(with_token(
            &expired.session_token,
            "orders:UpdateOrder",
            ORDER_1,
        ))
        .await,
        Code::Unauthenticated,
        "ExpiredToken",
    );
    // Opened (and cached) while fresh, refused once expired.
    let short = token::seal(
        &ring,
        &developer_grant("ASIATESTSEALED000005", now() - 60, now() + 5),
    )
    .unwrap()
    .session_token;
    assert_eq!(
        decide(&mut a, with_token(&short, "orders:UpdateOrder", ORDER_1)).await,
        pb::Decision::Allow
    );
    let s = until_token(&mut a, &short, "the short session expired", |got| {
        got.is_err()
    })
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    assert!(s.message().starts_with("ExpiredToken:"), "{s:?}");

    // Its credentials cannot call STS either.
    let expired_creds = pb::Credentials {
        access_key_id: "ASIATESTSEALED000002".into(),
        secret_access_key: expired.secret_access_key,
        session_token: expired.session_token,
        expiration: String::new(),
    };
    assert_refused(
        sts.get_caller_identity(pb::GetCallerIdentityRequest {
            caller: Some(session_caller(&expired_creds)),
        })
        .await,
        Code::Unauthenticated,
        "ExpiredToken",
    );

    // Sealed with a key of another ring.
    let foreign = KeyRing::generate().unwrap();
    let other = token::seal(
        &foreign,
        &developer_grant("ASIATESTSEALED000003", now() - 60, now() + 900),
    )
    .unwrap();
    let s = assert_refused(
        a.authorize(with_token(
            &other.session_token,
            "orders:UpdateOrder",
            ORDER_1,
        ))
        .await,
        Code::Unauthenticated,
        "InvalidClientTokenId",
    );
    assert!(
        s.message().contains(key_id_of(&other.session_token)),
        "{s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_and_retired_keys() {
    let f = Fixture::start(&[]);
    let mut sts = f.sts().await;
    let mut a = f.authorizer().await;
    let mut ring = f.ring();
    let old_key = ring.sealing_key().unwrap().id().to_owned();
    let old = assume_role(&mut sts, assume(f.alice_caller(), DEVELOPER, "before"))
        .await
        .credentials
        .unwrap();
    assert_eq!(key_id_of(&old.session_token), old_key);
    // Sealed by the test before the rotation, and never shown to the server before it.
    let unseen = token::seal(
        &ring,
        &developer_grant("ASIATESTSEALED000004", now() - 60, now() + 900),
    )
    .unwrap()
    .session_token;

    // Rotate: new sessions are sealed with the new key once the server has read the file.
    let new_key = ring.rotate().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    ring.save(&f.ring_path()).unwrap();
    let give_up = tokio::time::Instant::now() + PATIENCE;
    let new = loop {
        let c = assume_role(&mut sts, assume(f.alice_caller(), DEVELOPER, "after"))
            .await
            .credentials
            .unwrap();
        if key_id_of(&c.session_token) == new_key {
            break c;
        }
        assert_eq!(key_id_of(&c.session_token), old_key);
        assert!(
            tokio::time::Instant::now() < give_up,
            "AssumeRole never sealed with the rotated key {new_key}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Old tokens still open, those the server had seen and those it had not.
    for t in [&old.session_token, &unseen, &new.session_token] {
        assert_eq!(
            decide(&mut a, with_token(t, "orders:UpdateOrder", ORDER_1)).await,
            pb::Decision::Allow
        );
    }
    assert_eq!(
        identity(&mut sts, session_caller(&old)).await,
        "arn:aws:sts::555555555555:assumed-role/Developer/before"
    );

    // Retire the old key: its tokens are refused, naming it, even the one the server has
    // opened (and cached) before; the new key's still work.
    ring.retire(&old_key).unwrap();
    ring.save(&f.ring_path()).unwrap();
    let refused = |got: &Result<pb::AuthorizeResponse, Status>| matches!(got, Err(s) if s.code() == Code::Unauthenticated);
    for t in [&old.session_token, &unseen] {
        let s = until_token(&mut a, t, "the retired key's token refused", refused)
            .await
            .unwrap_err();
        assert!(
            s.message().starts_with("InvalidClientTokenId:") && s.message().contains(&old_key),
            "{s:?}"
        );
    }
    assert_refused(
        sts.get_caller_identity(pb::GetCallerIdentityRequest {
            caller: Some(session_caller(&old)),
        })
        .await,
        Code::Unauthenticated,
        "InvalidClientTokenId",
    );
    assert_eq!(
        decide(
            &mut a,
            with_token(&new.session_token, "orders:UpdateOrder", ORDER_1)
        )
        .await,
        pb::Decision::Allow
    );
    assert_eq!(
        identity(&mut sts, session_caller(&new)).await,
        "arn:aws:sts::555555555555:assumed-role/Developer/after"
    );
}

// === the query API over TLS ===

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>;

async fn tls_client(addr: &str) -> Sender {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let cert = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sts/tls/cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Sends a signed request over `sender`: (status, body).
async fn send(sender: &mut Sender, req: &pb::SignedRequest) -> (u16, String) {
    use http_body_util::BodyExt as _;
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.target.as_str());
    for h in &req.headers {
        builder = builder.header(h.name.as_str(), h.value.as_str());
    }
    let request = builder
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            req.body.clone(),
        )))
        .unwrap();
    sender.ready().await.unwrap();
    let answer = sender.send_request(request).await.unwrap();
    let status = answer.status().as_u16();
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_over_tls() {
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sts/tls");
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    let f = Fixture::start(&[
        "--sts-addr",
        "127.0.0.1:0",
        "--sts-tls-cert",
        cert.to_str().unwrap(),
        "--sts-tls-key",
        key.to_str().unwrap(),
    ]);
    let addr = f.server.sts.clone().expect("the STS listener's address");
    let host = format!("localhost:{}", addr.rsplit(':').next().unwrap());
    let mut c = tls_client(&addr).await;
    let (akid, secret) = &f.alice;

    let (status, body) = send(
        &mut c,
        &signed((akid, secret, None), "sts", &host, GET_CALLER_IDENTITY),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<GetCallerIdentityResponse"), "{body}");
    assert!(body.contains(&format!("<Arn>{ALICE}</Arn>")), "{body}");
    assert!(body.contains("<Account>333333333333</Account>"), "{body}");

    let (status, body) = send(
        &mut c,
        &signed(
            (akid, "not-the-secret", None),
            "sts",
            &host,
            GET_CALLER_IDENTITY,
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<ErrorResponse"), "{body}");
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    assert!(body.contains("<RequestId>"), "{body}");

    // Plain HTTP on the TLS port gets no answer.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf).await;
    assert!(!buf.starts_with(b"HTTP/1.1"), "{buf:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grpc_proof_is_a_fresh_get_caller_identity_in_a_served_region() {
    let f = Fixture::start(&[]);
    let mut sts = f.sts().await;
    let (id, secret) = (f.alice.0.as_str(), f.alice.1.as_str());
    let proof = |region: &str, body: &str| {
        signed_in(region, (id, secret, None), "sts", "sts.warden.test", body)
    };
    let ask = |caller| pb::GetCallerIdentityRequest {
        caller: Some(caller),
    };
    // A signed request of another call (a captured AssumeRole) is no proof.
    let other = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A555555555555%3Arole%2FDeveloper&RoleSessionName=x";
    assert_refused(
        sts.get_caller_identity(ask(proof("us-east-1", other)))
            .await,
        Code::Unauthenticated,
        "IncompleteSignature",
    );
    // An AWS region this server does not serve: STS is not activated there.
    let s = assert_refused(
        sts.get_caller_identity(ask(proof("eu-west-3", GET_CALLER_IDENTITY)))
            .await,
        Code::PermissionDenied,
        "RegionDisabledException",
    );
    assert!(s.message().contains("account:333333333333"), "{s:?}");
    // Something that is no region at all.
    assert_refused(
        sts.get_caller_identity(ask(proof("moon", GET_CALLER_IDENTITY)))
            .await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    // The served region works.
    assert_eq!(
        identity(&mut sts, proof("us-east-1", GET_CALLER_IDENTITY)).await,
        ALICE
    );
}
