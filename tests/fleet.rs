//! Fleet mode end to end: `warden serve --etcd` sidecars against a real etcd. Writes reach
//! every sidecar under etcd's revision, a transaction is never half visible under load,
//! `min_revision` waits for a write, an outage keeps the last snapshot serving (stale), a
//! sidecar cut off catches up with a full read (deletes too), a compacted watch resyncs,
//! and hostile content in etcd is refused by name while the last good snapshot serves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a panic is a failed test"
)]

#[path = "support/etcd.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod etcd;
#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use server::{ORDER, Server, ask};
use warden::etcd::pb::etcdserverpb as rpc;
use warden::etcd::{Etcd, delete_op, put_op};
use warden::grpc::pb::Decision;

const PREFIX: &str = "/warden/";
const CAROL: &str = "arn:aws:iam::333333333333:user/engineering/carol";
const BOB_ARN: &str = "arn:aws:iam::333333333333:user/engineering/bob";
const CAROL_FILE: &str = "accounts/333333333333/users/carol.json";
const CAROL_POLICY: &str = "accounts/333333333333/policies/CarolOrders.json";

fn put(path: &str, value: &[u8]) -> rpc::RequestOp {
    put_op(
        format!("{PREFIX}bundle/{path}").into_bytes(),
        value.to_vec(),
    )
}

fn delete(path: &str) -> rpc::RequestOp {
    delete_op(format!("{PREFIX}bundle/{path}").into_bytes())
}

/// Runs `ops` in one transaction: its revision.
async fn write(client: &Etcd, ops: Vec<rpc::RequestOp>) -> u64 {
    u64::try_from(etcd::write(client, ops).await).unwrap()
}

fn example_files() -> BTreeMap<String, String> {
    warden::bundle::read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org")).unwrap()
}

/// Writes the example bundle under `PREFIX bundle/`, one put per file, in one
/// transaction: its revision.
async fn put_example(client: &Etcd) -> u64 {
    let ops = example_files()
        .iter()
        .map(|(path, text)| put(path, text.as_bytes()))
        .collect();
    write(client, ops).await
}

fn client(etcd: &etcd::Etcd) -> Etcd {
    Etcd::new(std::slice::from_ref(&etcd.endpoint)).unwrap()
}

/// Carol, allowed to read orders: her policy and her user attaching it. Written in one
/// transaction, policy first, so that a half-applied batch would be a bundle that loads
/// and denies her.
fn carol_allowed() -> Vec<rpc::RequestOp> {
    let policy = server::reader_policy(&["orders:GetOrder"]);
    let user = serde_json::json!({
        "path": "/engineering/",
        "tags": {"team": "reporting"},
        "managed_policies": ["CarolOrders"]
    })
    .to_string();
    vec![
        put(CAROL_POLICY, policy.as_bytes()),
        put(CAROL_FILE, user.as_bytes()),
    ]
}

/// Waits until the sidecar serves revision `at` or later.
async fn serving(server: &Server, at: u64) {
    server
        .until_ready(&format!("revision {at}"), |code, b| {
            code == 200 && b["revision"].as_u64().unwrap_or(0) >= at
        })
        .await;
}

/// The decision for `principal` reading the order, and the revision that decided it.
async fn decide(server: &Server, principal: &str) -> (Decision, u64) {
    let r = server
        .client()
        .await
        .authorize(ask(principal, "orders:GetOrder", ORDER))
        .await
        .unwrap()
        .into_inner();
    (r.decision(), r.revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_converge_on_a_transaction_never_half_visible_under_load() {
    let etcd = etcd::Etcd::start();
    let c = client(&etcd);
    let first = put_example(&c).await;
    let sidecars: Vec<Arc<Server>> = (0..3)
        .map(|_| Arc::new(Server::start_etcd(&etcd.endpoint, PREFIX, &[])))
        .collect();
    for s in &sidecars {
        serving(s, first).await;
        let (_, body) = s.readyz().await;
        assert_eq!(body["revision"], first, "{body}");
        assert_eq!(
            body["source"],
            format!("etcd {} prefix {PREFIX}bundle/", etcd.endpoint)
        );
        assert_eq!(body["stale"], false, "{body}");
        assert_eq!(decide(s, CAROL).await.0, Decision::ImplicitDeny);
    }

    // Load on every sidecar while the transaction lands: every decision is checked
    // against the revision that made it. The bundle's revision holds neither document
    // (denied); any later one holds both (allowed), since nothing else is written
    // meanwhile. A denial at a later revision would be half a transaction.
    let done = Arc::new(AtomicBool::new(false));
    let decided = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for s in &sidecars {
        let (s, done, decided) = (s.clone(), done.clone(), decided.clone());
        load.push(tokio::spawn(async move {
            let mut client = s.client().await;
            let mut seen = BTreeMap::<u64, u64>::new();
            while !done.load(Ordering::Acquire) {
                let r = client
                    .authorize(ask(CAROL, "orders:GetOrder", ORDER))
                    .await
                    .unwrap()
                    .into_inner();
                let expected = if r.revision > first {
                    Decision::Allow
                } else {
                    Decision::ImplicitDeny
                };
                assert_eq!(r.decision(), expected, "at revision {}", r.revision);
                *seen.entry(r.revision).or_default() += 1;
                decided.fetch_add(1, Ordering::AcqRel);
            }
            seen
        }));
    }
    // Under way on every sidecar before the write, and after it.
    let until = |n: u64| {
        let decided = decided.clone();
        async move {
            let give_up = tokio::time::Instant::now() + server::PATIENCE;
            while decided.load(Ordering::Acquire) < n {
                assert!(tokio::time::Instant::now() < give_up, "the load stalled");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    until(150).await;
    let started = tokio::time::Instant::now();
    let at = write(&c, carol_allowed()).await;
    for s in &sidecars {
        serving(s, at).await;
    }
    println!(
        "three sidecars served revision {at} {:?} after the write",
        started.elapsed()
    );
    for s in &sidecars {
        assert_eq!(decide(s, CAROL).await, (Decision::Allow, at));
    }
    until(decided.load(Ordering::Acquire) + 150).await;
    done.store(true, Ordering::Release);
    for l in load {
        let seen = l.await.unwrap();
        println!("decisions by revision on one sidecar: {seen:?}");
        assert!(seen.keys().all(|r| [first, at].contains(r)), "{seen:?}");
    }
    let digests: Vec<_> = digests(&sidecars).await;
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");

    // min_revision equal to a fresh write's revision waits for it, then decides by it.
    let revoked = write(
        &c,
        vec![
            delete(CAROL_POLICY),
            put(CAROL_FILE, b"{\"path\": \"/engineering/\"}"),
        ],
    )
    .await;
    for s in &sidecars {
        let mut request = ask(CAROL, "orders:GetOrder", ORDER);
        request.min_revision = revoked;
        let r = s
            .client()
            .await
            .authorize(request)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.decision(), r.revision),
            (Decision::ImplicitDeny, revoked)
        );
    }
}

async fn digests(sidecars: &[Arc<Server>]) -> Vec<String> {
    let mut out = Vec::new();
    for s in sidecars {
        out.push(s.readyz().await.1["digest"].as_str().unwrap().to_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_min_revision_far_ahead_fails_cleanly() {
    let etcd = etcd::Etcd::start();
    let at = put_example(&client(&etcd)).await;
    let s = Server::start_etcd(&etcd.endpoint, PREFIX, &["--revision-wait", "300ms"]);
    serving(&s, at).await;
    let mut request = ask(BOB_ARN, "orders:GetOrder", ORDER);
    request.min_revision = at + 1_000_000;
    let e = s.client().await.authorize(request).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    // The sidecar still decides by what it serves.
    assert_eq!(decide(&s, BOB_ARN).await, (Decision::Allow, at));

    // While nothing under the prefix changes, progress notifications keep the sidecar in
    // touch: a write elsewhere in etcd shows in the revision it last heard.
    etcd.ctl(&["put", "/elsewhere", "x"]);
    let elsewhere = u64::try_from(client(&etcd).revision().await.unwrap()).unwrap();
    s.until_metric("warden_source_revision", |v| v >= elsewhere as f64)
        .await;
    let reconnects = "warden_source_resyncs_total{reason=\"reconnect\"}";
    assert_eq!(
        s.metrics().await.get(reconnects),
        0.0,
        "heard without reconnecting"
    );
    let (_, body) = s.readyz().await;
    assert_eq!(
        (&body["stale"], &body["revision"]),
        (&false.into(), &at.into()),
        "{body}"
    );
}

/// A TCP proxy in front of etcd that a test can cut (every connection closed, new ones
/// refused) and restore, while etcd itself stays up for the test's own writes.
struct Proxy {
    endpoint: String,
    open: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (open, _) = tokio::sync::watch::channel(true);
        let gate = open.clone();
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let mut cut = gate.subscribe();
                if !*cut.borrow_and_update() {
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Proxy { endpoint, open }
    }

    fn set(&self, open: bool) {
        self.open.send_replace(open);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_last_snapshot_and_a_resync_catches_up_with_deletes() {
    let mut etcd = etcd::Etcd::start();
    let c = client(&etcd);
    let first = put_example(&c).await;
    let proxy = Proxy::start(&etcd.endpoint).await;
    let direct = Server::start_etcd(&etcd.endpoint, PREFIX, &[]);
    let cut_off = Server::start_etcd(&proxy.endpoint, PREFIX, &[]);
    for s in [&direct, &cut_off] {
        serving(s, first).await;
        let m = s.metrics().await;
        assert_eq!(m.get("warden_source_connected"), 1.0);
        assert_eq!(m.get("warden_source_revision"), first as f64);
    }

    // etcd down: both keep answering from their snapshot; readiness says stale (still
    // ready), and so do the metrics.
    etcd.stop();
    for s in [&direct, &cut_off] {
        s.until_ready("stale", |code, b| code == 200 && b["stale"] == true)
            .await;
        let (_, body) = s.readyz().await;
        assert_eq!(
            (body["ready"].clone(), body["connected"].clone()),
            (true.into(), false.into()),
            "{body}"
        );
        assert!(
            body["last_contact_seconds"].as_f64().unwrap() > 0.0,
            "{body}"
        );
        assert_eq!(body["source_revision"], first, "{body}");
        assert!(
            body["watch"].as_str().unwrap().starts_with("lost: "),
            "{body}"
        );
        s.until_metric("warden_source_connected", |v| v == 0.0)
            .await;
        assert_eq!(s.metrics().await.get("warden_source_stale"), 1.0);
        assert_eq!(decide(s, BOB_ARN).await, (Decision::Allow, first));
        assert_eq!(decide(s, CAROL).await, (Decision::ImplicitDeny, first));
    }

    // etcd back: a write made after it returns reaches both.
    etcd.resume();
    let c = client(&etcd);
    let back = write(&c, carol_allowed()).await;
    for s in [&direct, &cut_off] {
        serving(s, back).await;
        s.until_ready("fresh", |_, b| b["stale"] == false).await;
        assert_eq!(decide(s, CAROL).await, (Decision::Allow, back));
    }

    // One sidecar cut off while etcd stays up: a delete made meanwhile is seen after its
    // resync (a watch would have missed nothing, but a reconnect reads everything again).
    proxy.set(false);
    cut_off
        .until_ready("stale", |_, b| b["stale"] == true)
        .await;
    let gone = write(
        &c,
        vec![
            delete(CAROL_POLICY),
            put(CAROL_FILE, b"{\"path\": \"/engineering/\"}"),
        ],
    )
    .await;
    serving(&direct, gone).await;
    assert_eq!(decide(&cut_off, CAROL).await, (Decision::Allow, back));
    let before = cut_off
        .metrics()
        .await
        .get("warden_source_resyncs_total{reason=\"reconnect\"}");
    proxy.set(true);
    serving(&cut_off, gone).await;
    assert_eq!(
        decide(&cut_off, CAROL).await,
        (Decision::ImplicitDeny, gone)
    );
    assert_eq!(
        cut_off.readyz().await.1["digest"],
        direct.readyz().await.1["digest"]
    );
    assert!(
        cut_off
            .metrics()
            .await
            .get("warden_source_resyncs_total{reason=\"reconnect\"}")
            > before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_past_compacted_history_resyncs() {
    let etcd = etcd::Etcd::start();
    let c = client(&etcd);
    let first = put_example(&c).await;
    let s = Server::start_etcd(&etcd.endpoint, PREFIX, &[]);
    serving(&s, first).await;
    let compacted = "warden_source_resyncs_total{reason=\"compacted\"}";
    assert_eq!(s.metrics().await.get(compacted), 0.0);

    // Paused, the sidecar reads nothing: etcd's buffers for its watch fill, the watch
    // falls behind (etcd keeps it as a slow watcher), and the history it still needs is
    // compacted away before it can catch up.
    s.signal("STOP");
    let filler = vec![b'x'; 200 << 10];
    let mut last = first;
    for _ in 0..400 {
        last = write(&c, vec![put("filler.json", &filler)]).await;
    }
    let end = write(&c, vec![delete("filler.json")]).await;
    assert!(end > last);
    c.compact(i64::try_from(end).unwrap()).await.unwrap();
    s.signal("CONT");

    serving(&s, end).await;
    s.until_metric(compacted, |v| v >= 1.0).await;
    assert_eq!(decide(&s, BOB_ARN).await, (Decision::Allow, end));
    // What it serves is the example bundle again.
    assert_eq!(
        s.readyz().await.1["digest"],
        warden::digest::of_files(&example_files()).to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_content_in_etcd_is_refused_by_name_and_the_last_snapshot_serves() {
    let etcd = etcd::Etcd::start();
    let c = client(&etcd);
    let first = put_example(&c).await;
    let s = Server::start_etcd(&etcd.endpoint, PREFIX, &[]);
    serving(&s, first).await;

    // Each hostile write is refused with the key or file named; the watch goes on.
    let reader = "accounts/333333333333/policies/ReportsReader.json";
    let big = vec![b' '; (1 << 20) + 1];
    let cases: Vec<(&str, Vec<rpc::RequestOp>, Vec<rpc::RequestOp>, &str)> = vec![
        (
            "a broken policy written with etcdctl",
            vec![],
            vec![put(
                reader,
                server::reader_policy(&["orders:GetOrder"]).as_bytes(),
            )],
            "ReportsReader.json",
        ),
        (
            "a key that climbs out of the bundle",
            vec![put("../x.json", b"{}")],
            vec![delete("../x.json")],
            "etcd key `/warden/bundle/../x.json`: the path has a `..` component",
        ),
        (
            "a value that is no text",
            vec![put("accounts/333333333333/policies/Bin.json", b"\xff\xfe")],
            vec![delete("accounts/333333333333/policies/Bin.json")],
            "etcd key `/warden/bundle/accounts/333333333333/policies/Bin.json`: the value is not UTF-8 text",
        ),
        (
            "a document above the size limit",
            vec![put("accounts/333333333333/policies/Big.json", &big)],
            vec![delete("accounts/333333333333/policies/Big.json")],
            "Big.json`: 1048577 bytes, above the limit",
        ),
    ];
    let mut serving_at = first;
    for (what, bad, fix, named) in cases {
        let failed_before = s.readyz().await.1["reloads_failed"].as_u64().unwrap();
        let bad_at = if bad.is_empty() {
            etcd.ctl(&["put", &format!("{PREFIX}bundle/{reader}"), "{\"Version\": "]);
            u64::try_from(c.revision().await.unwrap()).unwrap()
        } else {
            write(&c, bad).await
        };
        s.until_ready(what, |_, b| {
            b["reloads_failed"].as_u64().unwrap() > failed_before
        })
        .await;
        let (code, body) = s.readyz().await;
        assert_eq!(
            (code, body["revision"].as_u64()),
            (200, Some(serving_at)),
            "{what}: {body}"
        );
        let error = &body["last_error"];
        assert_eq!(error["revision"], bad_at, "{what}: {body}");
        assert!(
            error["message"].as_str().unwrap().contains(named),
            "{what}: {body}"
        );
        assert_eq!(
            decide(&s, BOB_ARN).await,
            (Decision::Allow, serving_at),
            "{what}"
        );

        serving_at = write(&c, fix).await;
        serving(&s, serving_at).await;
        assert!(s.readyz().await.1["last_error"].is_null(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_started_while_etcd_is_down_serves_once_it_is_back() {
    let mut etcd = etcd::Etcd::start();
    let first = put_example(&client(&etcd)).await;
    etcd.stop();
    let s = Server::start_etcd(&etcd.endpoint, PREFIX, &[]);
    let (code, body) = s.readyz().await;
    assert_eq!(
        (code, &body["ready"], &body["stale"]),
        (503, &false.into(), &true.into()),
        "{body}"
    );
    let e = s
        .client()
        .await
        .authorize(ask(BOB_ARN, "orders:GetOrder", ORDER))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");

    etcd.resume();
    serving(&s, first).await;
    assert_eq!(decide(&s, BOB_ARN).await, (Decision::Allow, first));

    // SIGHUP reads the whole prefix again.
    let hangup = "warden_source_resyncs_total{reason=\"hangup\"}";
    assert_eq!(s.metrics().await.get(hangup), 0.0);
    s.signal("HUP");
    s.until_metric(hangup, |v| v == 1.0).await;
    s.until_ready("fresh", |_, b| b["stale"] == false).await;
    assert_eq!(decide(&s, BOB_ARN).await, (Decision::Allow, first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_check_loads_the_prefix_once() {
    let etcd = etcd::Etcd::start();
    let c = client(&etcd);
    let at = put_example(&c).await;
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["serve", "--check", "--etcd", &etcd.endpoint])
            .output()
            .unwrap()
    };
    let out = check();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains(&format!("at revision {at} loads")), "{said}");
    write(
        &c,
        vec![put(
            "accounts/333333333333/policies/ReportsReader.json",
            b"{",
        )],
    )
    .await;
    let out = check();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(said.contains("ReportsReader.json"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_restarted_during_an_outage_starts_from_its_cache() {
    let mut etcd = etcd::Etcd::start();
    let c = client(&etcd);
    put_example(&c).await;
    let at = write(&c, carol_allowed()).await;
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("cache");
    let dir = dir.to_str().unwrap();
    let s = Server::start_etcd(&etcd.endpoint, PREFIX, &["--etcd-cache", dir]);
    serving(&s, at).await;
    assert_eq!(s.readyz().await.1["from_cache"], false);
    // The cache is written after the publish: wait until it holds this revision.
    let file = cache.path().join("cache/bundle.json");
    let give_up = tokio::time::Instant::now() + server::PATIENCE;
    loop {
        let cached: Option<serde_json::Value> = std::fs::read(&file)
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok());
        if cached.is_some_and(|c| c["revision"] == at) {
            break;
        }
        assert!(tokio::time::Instant::now() < give_up, "never cached");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(s);

    // etcd down, the sidecar restarted: it serves the cached bundle, ready and stale.
    etcd.stop();
    let s = Server::start_etcd(&etcd.endpoint, PREFIX, &["--etcd-cache", dir]);
    serving(&s, at).await;
    let (code, body) = s.readyz().await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (&body["from_cache"], &body["stale"]),
        (&true.into(), &true.into()),
        "{body}"
    );
    assert_eq!(s.metrics().await.get("warden_source_from_cache"), 1.0);
    assert_eq!(decide(&s, CAROL).await, (Decision::Allow, at));

    // etcd back: it catches up with a write made since.
    etcd.resume();
    let c = client(&etcd);
    let later = write(
        &c,
        vec![
            delete(CAROL_POLICY),
            put(CAROL_FILE, b"{\"path\": \"/engineering/\"}"),
        ],
    )
    .await;
    serving(&s, later).await;
    s.until_ready("fresh", |_, b| {
        b["stale"] == false && b["from_cache"] == false
    })
    .await;
    assert_eq!(decide(&s, CAROL).await, (Decision::ImplicitDeny, later));

    // Without a cache the same restart is unready.
    etcd.stop();
    let bare = Server::start_etcd(&etcd.endpoint, PREFIX, &[]);
    assert_eq!(bare.readyz().await.0, 503);
}

/// A hostile key that a whole read finds (here, present before the sidecar starts) is kept
/// as refused, as the watch keeps one: each later change fails to load naming it, without
/// reading the whole prefix again, and deleting it loads the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_key_found_by_a_whole_read_is_followed_not_read_again() {
    let etcd = etcd::Etcd::start();
    let c = client(&etcd);
    put_example(&c).await;
    write(&c, vec![put("../x.json", b"{}")]).await;
    let s = Server::start_etcd(&etcd.endpoint, PREFIX, &[]);
    let named = |b: &serde_json::Value| {
        b["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/warden/bundle/../x.json"))
    };
    s.until_ready("the hostile key named", |_, b| named(b))
        .await;
    let policy = server::reader_policy(&["orders:GetOrder"]);
    for i in 0..5 {
        let path = format!("accounts/333333333333/policies/P{i}.json");
        let at = write(&c, vec![put(&path, policy.as_bytes())]).await;
        s.until_ready("the change's load failed naming the key", |_, b| {
            b["last_error"]["revision"].as_u64() == Some(at) && named(b)
        })
        .await;
    }
    let content = "warden_source_resyncs_total{reason=\"content\"}";
    let resyncs = s.metrics().await;
    assert_eq!(resyncs.get(content), 0.0);
    let fixed = write(&c, vec![delete("../x.json")]).await;
    serving(&s, fixed).await;
}
