//! Fleet mode's write side against a real etcd: `warden push` and `warden pull` (the real
//! binary), and the `warden.v1.Admin` API served by an in-process server (`bind_source`
//! with the example bundle in memory as the serving snapshot, `config.fleet` set) that
//! writes to etcd: compare-and-swap, validation of the whole would-be bundle, authorization
//! by warden's own policies, the bootstrap token and credentials. Every refusal is checked
//! to have written nothing (etcd's revision unchanged).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/etcd.rs"]
mod etcd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Status};
use warden::etcd::Layout;
use warden::grpc::pb;
use warden::grpc::pb::admin_client::AdminClient;
use warden::server::{AdminTokenConfig, Config, CredentialsConfig, FleetConfig, Listen, Server};
use warden::service::{Limits, ServiceConfig};
use warden::sigv4::{HttpRequest, Payload, Signer, sign_headers};
use warden::source::MemorySource;
use warden::sts::keyring::KeyRing;
use warden::sts::secrets::SecretsStore;

const TOKEN: &str = "correct-horse-battery-staple-42";
const ADMIN: &str = "arn:aws:iam::111111111111:user/warden-admin";
const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
const POLICY: &str = "accounts/555555555555/policies/Reports.json";
const GOOD: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}"#;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")
}

fn example_files() -> BTreeMap<String, String> {
    warden::bundle::read_dir(&examples()).unwrap()
}

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env_remove("WARDEN_ETCD")
        .env_remove("WARDEN_ETCD_PREFIX")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// etcd's current revision.
async fn revision(etcd: &etcd::Etcd) -> i64 {
    warden::etcd::Etcd::new(std::slice::from_ref(&etcd.endpoint))
        .unwrap()
        .revision()
        .await
        .unwrap()
}

/// Writes `text` at `path`, creating its directory.
fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    for (path, text) in warden::bundle::read_dir(from).unwrap() {
        let file = to.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_round_trip_and_a_refused_push_writes_nothing() {
    let etcd = etcd::Etcd::start();
    let e = etcd.endpoint.as_str();

    let out = warden(&["push", examples().to_str().unwrap(), "--etcd", e]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pushed: i64 = text(&out.stdout).trim().parse().unwrap();
    assert_eq!(pushed, revision(&etcd).await);

    let dir = tempfile::tempdir().unwrap();
    let pulled = dir.path().join("pulled");
    let out = warden(&["pull", pulled.to_str().unwrap(), "--etcd", e]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), pushed.to_string());
    assert_eq!(warden::bundle::read_dir(&pulled).unwrap(), example_files());

    // Into a directory that is not empty: refused.
    let out = warden(&["pull", pulled.to_str().unwrap(), "--etcd", e]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not empty"),
        "{}",
        text(&out.stderr)
    );

    // An invalid bundle: every finding with its place, nothing written.
    let broken = dir.path().join("broken");
    copy_dir(&examples(), &broken);
    write_file(
        &broken.join("accounts/555555555555/policies/Broken.json"),
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Perhaps\", \"Action\": \"orders:GetOrder\", \"Resource\": \"*\"}]\n}\n",
    );
    write_file(&broken.join("scps/Bad.json"), "{ not json");
    let out = warden(&["push", broken.to_str().unwrap(), "--etcd", e]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("accounts/555555555555/policies/Broken.json:3:"),
        "{stderr}"
    );
    assert!(stderr.contains("scps/Bad.json:1:"), "{stderr}");
    assert_eq!(revision(&etcd).await, pushed);

    // A push removes what the directory no longer holds, in the same transaction.
    let smaller = dir.path().join("smaller");
    copy_dir(&examples(), &smaller);
    std::fs::remove_file(smaller.join("accounts/555555555555/users/dana.json")).unwrap();
    let out = warden(&["push", smaller.to_str().unwrap(), "--etcd", e]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second: i64 = text(&out.stdout).trim().parse().unwrap();
    assert!(second > pushed);
    let again = dir.path().join("again");
    let out = warden(&["pull", again.to_str().unwrap(), "--etcd", e]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        warden::bundle::read_dir(&again).unwrap(),
        warden::bundle::read_dir(&smaller).unwrap()
    );

    // Compare-and-swap: the bundle changed after `pushed`.
    let out = warden(&[
        "push",
        examples().to_str().unwrap(),
        "--etcd",
        e,
        "--expected-revision",
        &pushed.to_string(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("changed at revision {second}")),
        "{stderr}"
    );
    assert_eq!(revision(&etcd).await, second);

    // Pull an older revision: the bundle as it was.
    let old = dir.path().join("old");
    let out = warden(&[
        "pull",
        old.to_str().unwrap(),
        "--etcd",
        e,
        "--revision",
        &pushed.to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(warden::bundle::read_dir(&old).unwrap(), example_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_too_large_for_etcd_names_its_flags() {
    // etcd's own default of 128 operations per transaction: the example bundle with 200
    // more documents does not fit, and the refusal says which flags to raise.
    let etcd = etcd::Etcd::start_with(&["--max-txn-ops", "128"]);
    let before = revision(&etcd).await;
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&examples(), dir.path());
    for i in 0..200 {
        write_file(
            &dir.path()
                .join(format!("accounts/555555555555/policies/P{i}.json")),
            GOOD,
        );
    }
    let out = warden(&[
        "push",
        dir.path().to_str().unwrap(),
        "--etcd",
        &etcd.endpoint,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("too large"), "{stderr}");
    assert!(stderr.contains("--max-txn-ops"), "{stderr}");
    assert!(stderr.contains("--max-request-bytes"), "{stderr}");
    assert_eq!(revision(&etcd).await, before);
}

// === the admin API ===

/// A real etcd holding the example bundle, and a server in fleet mode on it (its serving
/// snapshot from the etcd source), serving `warden.v1.Admin` with a key ring
/// (warden-admin's and alice's access keys) and the bootstrap token standing for
/// warden-admin.
struct Fixture {
    etcd: etcd::Etcd,
    _dir: tempfile::TempDir,
    addr: String,
    stop: tokio_util::sync::CancellationToken,
    running: tokio::task::JoinHandle<Result<(), warden::server::ServeError>>,
    admin_key: (String, String),
    alice_key: (String, String),
    pushed: i64,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::serving(None, Limits::default()).await
    }

    /// Like [`Fixture::start`]; with `stale`, the server serves that bundle from memory
    /// (revision 1) instead of following etcd: a sidecar that lags behind etcd.
    async fn serving(stale: Option<BTreeMap<String, String>>, limits: Limits) -> Fixture {
        let etcd = etcd::Etcd::start();
        let client = warden::etcd::Etcd::new(std::slice::from_ref(&etcd.endpoint)).unwrap();
        let pushed =
            warden::fleet::store::push(&client, &Layout::default(), &example_files(), None, "{}")
                .await
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::generate().unwrap();
        ring.save(&dir.path().join("ring.json")).unwrap();
        let mut store = SecretsStore::new();
        let admin = store.create_key(ADMIN).unwrap();
        let alice = store.create_key(ALICE).unwrap();
        store.save(&dir.path().join("secrets.json"), &ring).unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let config = Config {
            bundle: "unused".into(),
            grpc: Listen::Tcp("127.0.0.1:0".parse().unwrap()),
            admin: None,
            watch: false,
            debounce: Duration::from_millis(200),
            max_debounce: Duration::from_secs(2),
            service: ServiceConfig {
                cache_size: 1000,
                limits,
            },
            request_timeout: Duration::from_secs(30),
            max_message_bytes: 1 << 20,
            drain_timeout: Duration::from_secs(5),
            decision_log: None,
            decision_log_queue: 1024,
            shadow: None,
            connections: warden::server::conn::Config {
                max_grpc: 16,
                max_admin: 4,
                idle_timeout: None,
                keepalive_interval: None,
                keepalive_timeout: Duration::from_secs(10),
                header_read_timeout: None,
            },
            credentials: Some(CredentialsConfig {
                key_ring: dir.path().join("ring.json"),
                secrets: Some(dir.path().join("secrets.json")),
                authority: warden::sts::authority::AuthorityConfig::default(),
                sts: None,
                tls: None,
                container: None,
            }),
            fleet: Some(FleetConfig {
                endpoints: vec![etcd.endpoint.clone()],
                layout: Layout::default(),
                follow: warden::source::etcd::EtcdConfig::default(),
                cache: None,
                admin_token: Some(AdminTokenConfig {
                    file: dir.path().join("token"),
                    principal: ADMIN.to_owned(),
                }),
            }),
        };
        let server = match stale {
            Some(files) => Server::bind_source(config, Box::new(MemorySource::new(files))).await,
            None => Server::bind(config).await,
        }
        .unwrap();
        let addr = server.grpc_addr().to_owned();
        let stop = tokio_util::sync::CancellationToken::new();
        let running = tokio::spawn(server.run(stop.clone().cancelled_owned()));
        Fixture {
            etcd,
            _dir: dir,
            addr,
            stop,
            running,
            admin_key: (admin.id.clone(), admin.secret().to_owned()),
            alice_key: (alice.id.clone(), alice.secret().to_owned()),
            pushed,
        }
    }

    async fn client(&self) -> AdminClient<Channel> {
        let channel = warden::grpc::client::connect(&self.addr, Duration::from_secs(5))
            .await
            .unwrap();
        AdminClient::new(channel)
    }

    async fn revision(&self) -> i64 {
        revision(&self.etcd).await
    }

    async fn stop(self) {
        self.stop.cancel();
        self.running.await.unwrap().unwrap();
    }
}

/// A request with the bootstrap token `token` in its metadata.
fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn put(path: &str, text: &str) -> pb::Change {
    pb::Change {
        path: path.to_owned(),
        op: Some(pb::change::Op::Put(text.to_owned())),
    }
}

fn delete(path: &str) -> pb::Change {
    pb::Change {
        path: path.to_owned(),
        op: Some(pb::change::Op::Delete(true)),
    }
}

fn write(changes: Vec<pb::Change>, expected_revision: i64) -> pb::WriteRequest {
    pb::WriteRequest {
        credentials: None,
        changes,
        expected_revision,
    }
}

/// A `POST /` signed with `(id, secret)` for service `service`: the caller's proof.
fn signed((id, secret): &(String, String), service: &str) -> pb::SignedRequest {
    let host = "warden.test";
    let body = "{}";
    let headers = [("Host", host), ("Content-Type", "application/json")];
    let req = HttpRequest {
        method: "POST",
        target: "/",
        headers: &headers,
        payload: Payload::Bytes(body.as_bytes()),
    };
    let signer = Signer {
        access_key_id: id,
        secret_access_key: secret,
        session_token: None,
        region: "us-east-1",
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

fn signed_write(key: &(String, String), changes: Vec<pb::Change>) -> pb::WriteRequest {
    pb::WriteRequest {
        credentials: Some(pb::AdminCredentials {
            session_token: String::new(),
            signed_request: Some(signed(key, "warden")),
        }),
        changes,
        expected_revision: 0,
    }
}

fn refused<T: std::fmt::Debug>(got: Result<T, Status>, code: Code) -> Status {
    let status = got.unwrap_err();
    assert_eq!(status.code(), code, "{status:?}");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_token_writes_compare_and_swap_and_reads() {
    let f = Fixture::start().await;
    let mut admin = f.client().await;
    assert_eq!(f.revision().await, f.pushed);

    // Health lists the service; health follows the snapshot, which the source has loaded
    // once the server is bound.
    let channel = warden::grpc::client::connect(&f.addr, Duration::from_secs(5))
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut statuses = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "warden.v1.Admin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let serving = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(h) = statuses.message().await.unwrap() {
            if h.status() == tonic_health::pb::health_check_response::ServingStatus::Serving {
                return;
            }
        }
    })
    .await;
    assert!(serving.is_ok(), "warden.v1.Admin never reported SERVING");
    // Reflection lists it.
    {
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let channel = warden::grpc::client::connect(&f.addr, Duration::from_secs(5))
            .await
            .unwrap();
        let request = tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            stream.message().await.unwrap().unwrap().message_response
        else {
            panic!("no list")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&"warden.v1.Admin".to_owned()), "{names:?}");
    }

    // A new policy, written and read back at the write's revision.
    let written = admin
        .write(bearer(write(vec![put(POLICY, GOOD)], f.pushed), TOKEN))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert!(written > f.pushed);
    assert_eq!(f.revision().await, written);
    let got = admin
        .get(bearer(
            pb::GetRequest {
                credentials: None,
                paths: vec![POLICY.to_owned()],
                revision: 0,
            },
            TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.revision, written);
    assert_eq!(
        got.documents,
        vec![pb::Document {
            path: POLICY.to_owned(),
            text: GOOD.to_owned()
        }]
    );
    let listed = admin
        .list(bearer(pb::ListRequest::default(), TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.revision, written);
    assert!(listed.paths.contains(&POLICY.to_owned()));
    assert_eq!(listed.paths.len(), example_files().len() + 1);

    // Compare-and-swap against the revision before that write: ABORTED, naming when the
    // bundle changed; nothing written.
    let conflict = refused(
        admin
            .write(bearer(write(vec![delete(POLICY)], f.pushed), TOKEN))
            .await,
        Code::Aborted,
    );
    assert!(
        conflict
            .message()
            .contains(&format!("changed at revision {written}")),
        "{conflict:?}"
    );
    // A delete moves only the marker: compare-and-swap sees it all the same.
    let removed = admin
        .write(bearer(write(vec![delete(POLICY)], written), TOKEN))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert!(removed > written);
    let stale = refused(
        admin
            .write(bearer(write(vec![put(POLICY, GOOD)], written), TOKEN))
            .await,
        Code::Aborted,
    );
    assert!(
        stale
            .message()
            .contains(&format!("changed at revision {removed}")),
        "{stale:?}"
    );
    assert_eq!(f.revision().await, removed);
    // Deleting what is not there: NOT_FOUND, nothing written.
    refused(
        admin
            .write(bearer(write(vec![delete(POLICY)], 0), TOKEN))
            .await,
        Code::NotFound,
    );
    assert_eq!(f.revision().await, removed);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_write_names_every_finding_and_writes_nothing() {
    let f = Fixture::start().await;
    let mut admin = f.client().await;
    let broken = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Perhaps\", \"Action\": \"orders:GetOrder\", \"Resource\": \"*\"}]\n}\n";
    let status = refused(
        admin
            .write(bearer(
                write(
                    vec![
                        put(POLICY, broken),
                        put("scps/Bad.json", "{ not json"),
                        // Valid alone: the whole would-be bundle is what is checked, so the
                        // role this user names must exist.
                        put(
                            "accounts/555555555555/users/zed.json",
                            r#"{"groups": ["NoSuchGroup"]}"#,
                        ),
                    ],
                    0,
                ),
                TOKEN,
            ))
            .await,
        Code::InvalidArgument,
    );
    let message = status.message();
    assert!(message.contains("nothing was written"), "{message}");
    assert!(message.contains(&format!("{POLICY}:3:")), "{message}");
    assert!(message.contains("scps/Bad.json:1:"), "{message}");
    assert!(
        message.contains("accounts/555555555555/users/zed.json"),
        "{message}"
    );
    let details = pb::WriteRefused::decode(status.details()).unwrap();
    let files: Vec<&str> = details.findings.iter().map(|f| f.file.as_str()).collect();
    assert!(files.contains(&POLICY), "{details:?}");
    assert!(files.contains(&"scps/Bad.json"), "{details:?}");
    assert!(
        files.contains(&"accounts/555555555555/users/zed.json"),
        "{details:?}"
    );
    let effect = details.findings.iter().find(|x| x.file == POLICY).unwrap();
    assert_eq!((effect.line, effect.severity.as_str()), (3, "error"));
    assert!(effect.column > 0);
    assert_eq!(f.revision().await, f.pushed);

    // Paths outside the layout: refused before anything is read.
    for path in [
        "../organization.json",
        "accounts/555555555555/users/../../../etc/passwd.json",
        "/organization.json",
        "accounts/555555555555/users/a/b.json",
        "README.md",
    ] {
        let status = refused(
            admin
                .write(bearer(write(vec![put(path, GOOD)], 0), TOKEN))
                .await,
            Code::InvalidArgument,
        );
        assert!(
            status.message().starts_with("changes[0].path"),
            "{status:?}"
        );
    }
    // A change that is neither put nor delete; a path twice.
    refused(
        admin
            .write(bearer(
                write(
                    vec![pb::Change {
                        path: POLICY.to_owned(),
                        op: None,
                    }],
                    0,
                ),
                TOKEN,
            ))
            .await,
        Code::InvalidArgument,
    );
    refused(
        admin
            .write(bearer(
                write(vec![put(POLICY, GOOD), delete(POLICY)], 0),
                TOKEN,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(f.revision().await, f.pushed);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_authenticated_and_authorized_by_policy() {
    let f = Fixture::start().await;
    let mut admin = f.client().await;

    // No credentials.
    let status = refused(
        admin.write(write(vec![put(POLICY, GOOD)], 0)).await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("no credentials"), "{status:?}");
    // A wrong token, and a token that is the right one's prefix.
    for wrong in ["not-the-token-at-all", &TOKEN[..TOKEN.len() - 1]] {
        refused(
            admin
                .write(bearer(write(vec![put(POLICY, GOOD)], 0), wrong))
                .await,
            Code::Unauthenticated,
        );
    }
    // An ARN the caller asserts counts for nothing: a `principal` field
    // (an unknown one) added to a write, and a principal in the metadata.
    let mut asserted = write(vec![put(POLICY, GOOD)], 0).encode_to_vec();
    prost::encoding::string::encode(15, &ADMIN.to_owned(), &mut asserted);
    let with_principal = pb::WriteRequest::decode(asserted.as_slice()).unwrap();
    let mut r = tonic::Request::new(with_principal);
    r.metadata_mut()
        .insert("x-warden-principal", ADMIN.parse().unwrap());
    refused(admin.write(r).await, Code::Unauthenticated);
    assert_eq!(f.revision().await, f.pushed);

    // alice proves who she is (her signed request, her session token) but no policy
    // allows her `warden:PutPolicy`: PERMISSION_DENIED naming the action and resource.
    let status = refused(
        admin
            .write(signed_write(&f.alice_key, vec![put(POLICY, GOOD)]))
            .await,
        Code::PermissionDenied,
    );
    let message = status.message();
    assert!(message.contains(ALICE), "{message}");
    assert!(message.contains("`warden:PutPolicy`"), "{message}");
    assert!(
        message.contains("`arn:aws:warden::555555555555:policy/Reports`"),
        "{message}"
    );
    // In her own account too: PowerUserAccess leaves out `warden:*` as it does `iam:*`.
    let own = "accounts/333333333333/policies/Mine.json";
    let status = refused(
        admin
            .write(signed_write(&f.alice_key, vec![put(own, GOOD)]))
            .await,
        Code::PermissionDenied,
    );
    assert!(
        status
            .message()
            .contains("`arn:aws:warden::333333333333:policy/Mine`"),
        "{status:?}"
    );
    // A signature scoped to another service proves nothing for `warden`.
    let mut other = signed_write(&f.admin_key, vec![put(POLICY, GOOD)]);
    other.credentials.as_mut().unwrap().signed_request = Some(signed(&f.admin_key, "sts"));
    refused(admin.write(other).await, Code::Unauthenticated);
    // Credentials and the token at once: refused.
    refused(
        admin
            .write(bearer(
                signed_write(&f.admin_key, vec![put(POLICY, GOOD)]),
                TOKEN,
            ))
            .await,
        Code::InvalidArgument,
    );
    // alice may not read either.
    refused(
        admin
            .get(pb::GetRequest {
                credentials: Some(pb::AdminCredentials {
                    session_token: String::new(),
                    signed_request: Some(signed(&f.alice_key, "warden")),
                }),
                paths: vec!["organization.json".to_owned()],
                revision: 0,
            })
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(f.revision().await, f.pushed);

    // warden-admin, by its own signed request: allowed by its policy (`warden:*`).
    let written = admin
        .write(signed_write(&f.admin_key, vec![put(POLICY, GOOD)]))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert!(written > f.pushed);
    // The marker names who wrote.
    let marker = f
        .etcd
        .ctl(&["get", "/warden/written", "--print-value-only"]);
    assert!(marker.contains(ADMIN), "{marker}");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_token_authenticates_an_admin_call() {
    let f = Fixture::start().await;
    let channel = warden::grpc::client::connect(&f.addr, Duration::from_secs(5))
        .await
        .unwrap();
    let mut sts = pb::sts_client::StsClient::new(channel);
    let session = |key: &(String, String)| {
        let caller = sts_caller(key);
        pb::GetSessionTokenRequest {
            caller: Some(caller),
            duration_seconds: Some(900),
            ..Default::default()
        }
    };
    let alice = sts
        .get_session_token(session(&f.alice_key))
        .await
        .unwrap()
        .into_inner()
        .credentials
        .unwrap();
    let admin_session = sts
        .get_session_token(session(&f.admin_key))
        .await
        .unwrap()
        .into_inner()
        .credentials
        .unwrap();
    let mut admin = f.client().await;
    let by_token = |token: &str| pb::WriteRequest {
        credentials: Some(pb::AdminCredentials {
            session_token: token.to_owned(),
            signed_request: None,
        }),
        changes: vec![put(POLICY, GOOD)],
        expected_revision: 0,
    };
    refused(
        admin.write(by_token(&alice.session_token)).await,
        Code::PermissionDenied,
    );
    refused(
        admin.write(by_token("not-a-session-token")).await,
        Code::Unauthenticated,
    );
    assert_eq!(f.revision().await, f.pushed);
    let written = admin
        .write(by_token(&admin_session.session_token))
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert!(written > f.pushed);
    f.stop().await;
}

/// A signed `GetCallerIdentity` for service `sts`: the caller of an STS call.
fn sts_caller((id, secret): &(String, String)) -> pb::SignedRequest {
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let headers = [
        ("Host", "sts.warden.test"),
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    ];
    let req = HttpRequest {
        method: "POST",
        target: "/",
        headers: &headers,
        payload: Payload::Bytes(body.as_bytes()),
    };
    let signer = Signer {
        access_key_id: id,
        secret_access_key: secret,
        session_token: None,
        region: "us-east-1",
        service: "sts",
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

// === the real binary in fleet mode ===

/// `warden serve --etcd ...` (the real binary), killed when dropped.
struct Sidecar {
    child: std::process::Child,
    grpc: String,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and reads its `listening grpc=...` line.
fn sidecar(args: &[&str]) -> Sidecar {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let Some(grpc) = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .map(str::to_owned)
    else {
        let out = child.wait_with_output().unwrap();
        panic!("no `grpc=` in {line:?}: {}", text(&out.stderr));
    };
    Sidecar { child, grpc }
}

#[test]
fn the_admin_token_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let token = token.to_str().unwrap();
    for (args, expected) in [
        (
            vec![
                "--bundle",
                "examples/org",
                "--admin-token-file",
                token,
                "--admin-token-principal",
                ADMIN,
            ],
            "fleet mode only",
        ),
        (
            vec!["--etcd", "http://127.0.0.1:1", "--admin-token-file", token],
            "needs admin-token-principal",
        ),
        (
            vec![
                "--etcd",
                "http://127.0.0.1:1",
                "--admin-token-principal",
                ADMIN,
            ],
            "needs admin-token-file",
        ),
    ] {
        let mut all = vec!["serve", "--check"];
        all.extend(&args);
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(&all)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_sidecar_serves_what_the_admin_api_writes() {
    let etcd = etcd::Etcd::start();
    let client = warden::etcd::Etcd::new(std::slice::from_ref(&etcd.endpoint)).unwrap();
    let pushed =
        warden::fleet::store::push(&client, &Layout::default(), &example_files(), None, "{}")
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let server = sidecar(&[
        "--etcd",
        &etcd.endpoint,
        "--admin-token-file",
        token.to_str().unwrap(),
        "--admin-token-principal",
        ADMIN,
    ]);
    let channel = warden::grpc::client::connect(&server.grpc, Duration::from_secs(5))
        .await
        .unwrap();
    let mut authorizer = pb::authorizer_client::AuthorizerClient::new(channel.clone());
    let mut admin = AdminClient::new(channel);
    let carol = "arn:aws:iam::333333333333:user/engineering/carol";
    let ask = |min_revision: u64| pb::AuthorizeRequest {
        principal: carol.into(),
        action: "orders:GetOrder".into(),
        resource: "arn:aws:orders:us-east-1:333333333333:order/1".into(),
        min_revision,
        ..Default::default()
    };
    let before = authorizer
        .authorize(ask(u64::try_from(pushed).unwrap()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.decision(), pb::Decision::ImplicitDeny);

    // A wrong token and an invalid document write nothing.
    refused(
        admin
            .write(bearer(
                write(vec![put(POLICY, GOOD)], 0),
                "not-the-admin-token",
            ))
            .await,
        Code::Unauthenticated,
    );
    refused(
        admin
            .write(bearer(write(vec![put(POLICY, "{")], 0), TOKEN))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(revision(&etcd).await, pushed);

    // Carol is given GetOrder: the sidecar serves it at the write's revision.
    let carol_file = r#"{"path": "/engineering/", "tags": {"team": "reporting"}, "inline_policies": {"Orders": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"}]}}}"#;
    let written = admin
        .write(bearer(
            write(
                vec![put("accounts/333333333333/users/carol.json", carol_file)],
                pushed,
            ),
            TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let after = authorizer
        .authorize(ask(u64::try_from(written).unwrap()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.decision(), pb::Decision::Allow);
}

/// `warden admin ARGS` against the fixture's server, off the runtime's threads.
async fn admin_cli(f: &Fixture, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec!["admin".into(), "--addr".into(), f.addr.clone()];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(&all)
            .env_remove("WARDEN_ADMIN_TOKEN_FILE")
            .env_remove("WARDEN_SESSION_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_command_puts_gets_lists_and_deletes() {
    let f = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let token = token.to_str().unwrap();
    let doc = dir.path().join("doc.json");
    std::fs::write(&doc, GOOD).unwrap();
    let doc = doc.to_str().unwrap();

    // Without the token: refused, exit 2.
    let out = admin_cli(&f, &["put", POLICY, doc]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("Unauthenticated"),
        "{}",
        text(&out.stderr)
    );

    let out = admin_cli(&f, &["--token-file", token, "put", POLICY, doc]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written: i64 = text(&out.stdout).trim().parse().unwrap();
    assert_eq!(written, f.revision().await);

    let out = admin_cli(&f, &["--token-file", token, "get", POLICY]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), GOOD);

    let out = admin_cli(&f, &["--token-file", token, "list"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().any(|l| l == POLICY));

    // An invalid document: every finding, with its place; nothing written.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": 7\n}\n",
    )
    .unwrap();
    let out = admin_cli(
        &f,
        &["--token-file", token, "put", POLICY, bad.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{POLICY}:3:")),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(f.revision().await, written);

    let out = admin_cli(
        &f,
        &[
            "--token-file",
            token,
            "delete",
            POLICY,
            "--expected-revision",
            &written.to_string(),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = admin_cli(&f, &["--token-file", token, "get", POLICY]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("NotFound"),
        "{}",
        text(&out.stderr)
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_retry_or_abort_as_asked() {
    let f = Fixture::start().await;
    let client = f.client().await;
    let path = |i: usize| format!("accounts/555555555555/policies/Concurrent{i}.json");

    // Without an expected revision, each write is retried past the others: all land.
    let writes: Vec<_> = (0..3)
        .map(|i| {
            let mut admin = client.clone();
            let change = put(&path(i), GOOD);
            tokio::spawn(async move {
                admin
                    .write(bearer(write(vec![change], 0), TOKEN))
                    .await
                    .map(|r| r.into_inner().revision)
            })
        })
        .collect();
    let mut revisions = Vec::new();
    for w in writes {
        revisions.push(w.await.unwrap().unwrap());
    }
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 3, "{revisions:?}");
    let base = f.revision().await;
    assert_eq!(base, *revisions.last().unwrap());

    // All expecting the same revision: exactly one lands, the others are ABORTED.
    let writes: Vec<_> = (3..6)
        .map(|i| {
            let mut admin = client.clone();
            let change = put(&path(i), GOOD);
            tokio::spawn(async move {
                admin
                    .write(bearer(write(vec![change], base), TOKEN))
                    .await
                    .map(|r| r.into_inner().revision)
            })
        })
        .collect();
    let mut landed = Vec::new();
    for w in writes {
        match w.await.unwrap() {
            Ok(revision) => landed.push(revision),
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    assert_eq!(landed.len(), 1, "{landed:?}");
    assert_eq!(f.revision().await, landed[0]);
    f.stop().await;
}

/// A sidecar whose snapshot lags behind etcd must not authorize a write by policies that no
/// longer hold: warden-admin's rights are revoked in etcd while the sidecar still serves
/// the bundle that grants them. Its write is refused (the sidecar is behind: nothing
/// written), with or without an expected revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_sidecar_does_not_authorize_by_revoked_policies() {
    let limits = Limits {
        revision_wait: Duration::from_millis(300),
        ..Limits::default()
    };
    let f = Fixture::serving(Some(example_files()), limits).await;
    let mut files = example_files();
    files.insert(
        "accounts/111111111111/users/warden-admin.json".to_owned(),
        "{}".to_owned(),
    );
    let client = warden::etcd::Etcd::new(std::slice::from_ref(&f.etcd.endpoint)).unwrap();
    let revoked = warden::fleet::store::push(&client, &Layout::default(), &files, None, "{}")
        .await
        .unwrap();
    let mut admin = f.client().await;
    for expected in [0, revoked] {
        let status = refused(
            admin
                .write(bearer(write(vec![put(POLICY, GOOD)], expected), TOKEN))
                .await,
            Code::FailedPrecondition,
        );
        assert!(status.message().contains("revision"), "{status:?}");
    }
    assert_eq!(f.revision().await, revoked);
}

/// The bootstrap admin gives alice (her example document, plus `statement` as the inline
/// policy `name`): the revision of the write, which the sidecar then serves.
async fn grant_alice(
    f: &Fixture,
    admin: &mut AdminClient<Channel>,
    name: &str,
    statement: serde_json::Value,
) -> i64 {
    let alice_file = serde_json::json!({
        "path": "/engineering/",
        "tags": {"team": "orders"},
        "groups": ["Developers"],
        "inline_policies": {name: {"Version": "2012-10-17", "Statement": [statement]}}
    })
    .to_string();
    admin
        .write(bearer(
            write(
                vec![put("accounts/333333333333/users/alice.json", &alice_file)],
                f.pushed,
            ),
            TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .revision
}

/// A resource policy governs the ARN its document binds it to, not its file name: a caller
/// allowed `warden:PutResourcePolicy` only on `resource-policy/mine` cannot bind that
/// document to the whole account's documents (which would let it write them all next), nor
/// to another account's resources; it can bind it to what it is allowed to govern.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_policy_is_authorized_on_what_it_binds_not_only_its_name() {
    let f = Fixture::start().await;
    let mut admin = f.client().await;
    // The bootstrap admin gives alice one resource policy of her account, and the orders
    // under `order/mine/` as what it may govern.
    let granted = grant_alice(
        &f,
        &mut admin,
        "MyResourcePolicy",
        serde_json::json!({
            "Effect": "Allow",
            "Action": "warden:PutResourcePolicy",
            "Resource": [
                "arn:aws:warden::333333333333:resource-policy/mine",
                "arn:aws:orders:us-east-1:333333333333:order/mine/*"
            ]
        }),
    )
    .await;
    let document = |arn: &str| {
        serde_json::json!({"arn": arn, "policy": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": ALICE},
            "Action": "warden:*",
            "Resource": "*"
        }]}})
        .to_string()
    };
    let mine = "accounts/333333333333/resources/mine.json";
    for broader in [
        "arn:aws:warden::333333333333:*",
        "arn:aws:warden:::*",
        "arn:aws:orders:us-east-1:333333333333:*",
    ] {
        let mut request = signed_write(&f.alice_key, vec![put(mine, &document(broader))]);
        request.expected_revision = granted;
        let status = refused(admin.write(request).await, Code::PermissionDenied);
        assert!(
            status.message().contains("warden:PutResourcePolicy"),
            "{status:?}"
        );
        assert!(status.message().contains(broader), "{status:?}");
        assert_eq!(f.revision().await, granted);
    }
    let narrow = "arn:aws:orders:us-east-1:333333333333:order/mine/1";
    let mut request = signed_write(&f.alice_key, vec![put(mine, &document(narrow))]);
    request.expected_revision = granted;
    let written = admin.write(request).await.unwrap().into_inner().revision;
    assert!(written > granted);
}

/// An etcd restored from a backup is behind the revision the fleet serves: its history is
/// another one, and a write there would be skipped by every sidecar (their revisions only
/// grow) while `min_revision` would answer from the old history. The admin API refuses to
/// write until the sidecars are restarted on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_to_an_etcd_behind_the_served_history_is_refused() {
    let mut f = Fixture::start().await;
    let mut admin = f.client().await;
    let mut served = f.pushed;
    for _ in 0..3 {
        served = admin
            .write(bearer(write(vec![put(POLICY, GOOD)], served), TOKEN))
            .await
            .unwrap()
            .into_inner()
            .revision;
    }
    // The sidecar serves `served`; etcd is wiped and given the example bundle again: a
    // history at a lower revision.
    f.etcd.stop();
    std::fs::remove_dir_all(f.etcd.dir.path().join("data")).unwrap();
    f.etcd.resume();
    let client = warden::etcd::Etcd::new(std::slice::from_ref(&f.etcd.endpoint)).unwrap();
    let restored =
        warden::fleet::store::push(&client, &Layout::default(), &example_files(), None, "{}")
            .await
            .unwrap();
    assert!(restored < served);
    let status = refused(
        admin
            .write(bearer(write(vec![put(POLICY, GOOD)], 0), TOKEN))
            .await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("restored"), "{status:?}");
    assert_eq!(f.revision().await, restored);
}

/// `warden pull` writes only the layout's documents: a key etcd holds that no sidecar
/// would load (`.git/config` under an account, put around the admin API) makes the pull
/// fail naming it, with no file written.
#[tokio::test]
async fn a_pull_writes_nothing_when_etcd_holds_a_key_outside_the_layout() {
    let etcd = etcd::Etcd::start();
    let e = etcd.endpoint.as_str();
    let out = warden(&["push", examples().to_str().unwrap(), "--etcd", e]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    etcd.ctl(&[
        "put",
        "/warden/bundle/accounts/555555555555/.git/config",
        "[core]\n\tfsmonitor = touch /tmp/pwned\n",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let pulled = dir.path().join("pulled");
    let out = warden(&["pull", pulled.to_str().unwrap(), "--etcd", e]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(".git/config"), "{stderr}");
    let written = std::fs::read_dir(&pulled).map_or(0, Iterator::count);
    assert_eq!(written, 0);
}

/// An identity's path is part of its ARN (`role/breakglass/app-x`), which policies on
/// `role/breakglass/*` trust: a caller allowed `warden:PutRole` only on `role/app-*` cannot
/// give its role a path that makes it another role's namesake, nor take the path away from
/// a role that has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_s_path_is_part_of_what_a_write_is_authorized_on() {
    let f = Fixture::start().await;
    let mut admin = f.client().await;
    let granted = grant_alice(
        &f,
        &mut admin,
        "MyRoles",
        serde_json::json!({
            "Effect": "Allow",
            "Action": "warden:PutRole",
            "Resource": "arn:aws:warden::333333333333:role/app-*"
        }),
    )
    .await;
    let role = |path: &str| {
        serde_json::json!({"path": path, "trust_policy": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "deploy.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}})
        .to_string()
    };
    let file = "accounts/333333333333/roles/app-x.json";
    let mut request = signed_write(&f.alice_key, vec![put(file, &role("/breakglass/"))]);
    request.expected_revision = granted;
    let status = refused(admin.write(request).await, Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("arn:aws:warden::333333333333:role/breakglass/app-x"),
        "{status:?}"
    );
    assert_eq!(f.revision().await, granted);
    let mut request = signed_write(&f.alice_key, vec![put(file, &role("/"))]);
    request.expected_revision = granted;
    let written = admin.write(request).await.unwrap().into_inner().revision;
    assert!(written > granted);
    // `app-runtime` has the path `/service/`: replacing it needs the right on that ARN too.
    let mut request = signed_write(
        &f.alice_key,
        vec![put(
            "accounts/333333333333/roles/app-runtime.json",
            &role("/"),
        )],
    );
    request.expected_revision = written;
    let status = refused(admin.write(request).await, Code::PermissionDenied);
    assert!(
        status.message().contains("role/service/app-runtime"),
        "{status:?}"
    );
}

/// The admin face fills `aws:SourceIp` (the connection's peer) and `aws:SecureTransport`
/// (`false`: the port has no TLS) as the Check face does, so a policy's network conditions
/// hold for admin writes: an Allow limited to loopback allows from loopback, and the usual
/// "deny without TLS" guard denies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_face_fills_the_network_keys() {
    let f = Fixture::start().await;
    let mut admin = f.client().await;
    let admin_file = |statements: serde_json::Value| {
        serde_json::json!({"inline_policies": {"WardenAdmin": {
            "Version": "2012-10-17", "Statement": statements}}})
        .to_string()
    };
    let me = "accounts/111111111111/users/warden-admin.json";
    let loopback_only = admin_file(serde_json::json!([{
        "Effect": "Allow", "Action": "warden:*", "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}
    }]));
    let at = admin
        .write(bearer(
            write(vec![put(me, &loopback_only)], f.pushed),
            TOKEN,
        ))
        .await
        .unwrap()
        .into_inner()
        .revision;
    // Allowed from loopback, by the condition on the address.
    let at = admin
        .write(bearer(write(vec![put(POLICY, GOOD)], at), TOKEN))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let tls_only = admin_file(serde_json::json!([
        {"Effect": "Allow", "Action": "warden:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "warden:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    ]));
    let at = admin
        .write(bearer(write(vec![put(me, &tls_only)], at), TOKEN))
        .await
        .unwrap()
        .into_inner()
        .revision;
    let status = refused(
        admin
            .write(bearer(write(vec![put(POLICY, GOOD)], at), TOKEN))
            .await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("explicit"), "{status:?}");
    assert_eq!(f.revision().await, at);
}
