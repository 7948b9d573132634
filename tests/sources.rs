//! Black-box tests of where `warden serve` gets its bundles: the watched directory through
//! ordinary and hostile changes, the revision and digest it reports everywhere, and its
//! start-up errors. The real binary on loopback ports, as in `grpc.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use warden::grpc::pb;

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;
use server::*;

/// Runs `warden serve` with `args`, which must fail at start-up: its standard error.
fn serve_fails(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("serve")
        .args(
            ["--grpc-addr", "--admin-addr"]
                .into_iter()
                .filter(|flag| !args.contains(flag))
                .flat_map(|flag| [flag, "127.0.0.1:0"]),
        )
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let give_up = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > give_up {
            let _ = child.kill();
            panic!("`warden serve {args:?}` did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        !status.success(),
        "`warden serve {args:?}` started: {stderr}"
    );
    stderr
}

#[test]
fn a_missing_bundle_path_is_one_clear_error_in_every_mode() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let missing = missing.to_str().unwrap();
    for watch in ["true", "false"] {
        let stderr = serve_fails(&["--bundle", missing, "--watch", watch]);
        assert_eq!(
            stderr.trim_end(),
            format!("warden: bundle directory `{missing}` does not exist"),
            "--watch {watch}"
        );
    }
    // A file is no bundle directory either.
    let file = root.path().join("file.json");
    std::fs::write(&file, "{}").unwrap();
    let stderr = serve_fails(&["--bundle", file.to_str().unwrap()]);
    assert!(stderr.contains("not a directory"), "{stderr}");
}

#[test]
fn an_address_in_use_is_said_once() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let bundle = example_copy();
    let stderr = serve_fails(&[
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--grpc-addr",
        &addr,
    ]);
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(&addr), "names the address: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_without_pause_still_reloads() {
    // Each write comes sooner than the quiet time: without a maximum delay no reload would
    // happen while the writes go on.
    let server = Server::start(&["--debounce", "400ms", "--max-debounce", "1s"]);
    let give_up = tokio::time::Instant::now() + PATIENCE;
    let mut n = 0;
    loop {
        let actions: &[&str] = if n % 2 == 0 {
            &["orders:GetOrder"]
        } else {
            &["orders:ListOrders"]
        };
        server.write(READER, &reader_policy(actions));
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, body) = server.readyz().await;
        if body["reloads_ok"].as_u64().unwrap() >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "no reload after {n} writes: {body}"
        );
    }
}

/// Waits until `/readyz` shows a published revision above `after`: that revision.
async fn published_after(server: &Server, after: u64) -> u64 {
    server
        .until_ready("a later revision", |_, b| {
            b["revision"].as_u64().unwrap_or(0) > after
        })
        .await;
    server.readyz().await.1["revision"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_directory_deleted_and_recreated_is_watched_again() {
    let server = Server::start(&[]);
    let dir = server.bundle.path().to_path_buf();
    let away = dir.with_extension("away");

    // Gone: readiness says the watch is lost; the snapshot keeps serving.
    std::fs::rename(&dir, &away).unwrap();
    server
        .until_ready("the lost watch", |code, b| {
            code == 200 && b["watch"] == "lost: no such directory"
        })
        .await;

    // Re-created (a new directory, as a deploy writes it): watched again and loaded.
    copy_dir(&away, &dir);
    let back = published_after(&server, 1).await;
    let (_, body) = server.readyz().await;
    assert_eq!(body["watch"], "watching", "{body}");
    server.write(READER, &reader_policy(&["orders:ListOrders"]));
    let edited = published_after(&server, back).await;
    let mut c = server.client().await;
    let mut req = ask(BOB, "orders:GetOrder", ORDER);
    req.min_revision = edited;
    let r = c.authorize(req).await.unwrap().into_inner();
    assert_eq!(r.decision(), pb::Decision::ImplicitDeny, "the edit decides");

    // Replaced at once, never seen missing: the new directory is the one watched.
    let next = dir.with_extension("next");
    copy_dir(&away, &next);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::rename(&next, &dir).unwrap();
    let swapped = published_after(&server, edited).await;
    server.write(READER, &reader_policy(&["orders:ListOrders"]));
    published_after(&server, swapped).await;
    std::fs::remove_dir_all(&away).unwrap();
}

/// The digest a response carries in its metadata, with its revision.
async fn answered_digest(server: &Server) -> (String, u64) {
    let mut c = server.client().await;
    let r = c
        .authorize(ask(ALICE, "orders:GetOrder", ORDER))
        .await
        .unwrap();
    let digest = r
        .metadata()
        .get("warden-bundle-digest")
        .expect("the response names its bundle")
        .to_str()
        .unwrap()
        .to_owned();
    (digest, r.into_inner().revision)
}

/// `warden_bundle_info{revision="R",digest="D"} 1` from `/metrics`: (R, D).
async fn metrics_info(server: &Server) -> (u64, String) {
    let (_, body) = server.get("/metrics").await;
    let line = body
        .lines()
        .find(|l| l.starts_with("warden_bundle_info{"))
        .unwrap_or_else(|| panic!("no warden_bundle_info in {body}"));
    let label = |name: &str| {
        let from = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[from..].split('"').next().unwrap().to_owned()
    };
    assert!(line.ends_with("} 1"), "{line}");
    (label("revision").parse().unwrap(), label("digest"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_the_same_files_report_the_same_digest_everywhere() {
    let (a, b) = (Server::start(&[]), Server::start(&[]));
    // b reads once more (SIGHUP): another revision, the same content.
    b.signal("HUP");
    published_after(&b, 1).await;
    let mut digests = Vec::new();
    for server in [&a, &b] {
        let (_, ready) = server.readyz().await;
        let readyz = ready["digest"].as_str().unwrap().to_owned();
        assert_eq!(readyz.len(), 64, "SHA-256 in hex: {readyz}");
        let (answered, revision) = answered_digest(server).await;
        let (info_revision, info) = metrics_info(server).await;
        assert_eq!((&answered, &info), (&readyz, &readyz));
        assert_eq!(
            (revision, info_revision),
            (ready["revision"].as_u64().unwrap(), revision)
        );
        digests.push(readyz);
    }
    assert_eq!(digests[0], digests[1], "same files, same digest");

    // Other content, another digest.
    b.write(READER, &reader_policy(&["orders:ListOrders"]));
    let edited = published_after(&b, 2).await;
    let (_, ready) = b.readyz().await;
    assert_eq!(ready["revision"], edited);
    assert_ne!(ready["digest"].as_str().unwrap(), digests[0]);
    assert_eq!(
        answered_digest(&b).await.0,
        ready["digest"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_source_and_its_watch() {
    let server = Server::start(&["--watch", "false"]);
    let (_, body) = server.readyz().await;
    assert_eq!(
        body["source"],
        format!("directory {}", server.bundle.path().display())
    );
    assert_eq!(body["watch"], "off");
    // Without a watch an edit waits for SIGHUP.
    server.write(READER, &reader_policy(&["orders:ListOrders"]));
    server.signal("HUP");
    published_after(&server, 1).await;
}

// === reloads under load ===

const ADMIN: &str = "arn:aws:iam::555555555555:user/admin";
const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/1";

/// Lays `from` out in `to` as the kubelet mounts a ConfigMap or projected volume: the
/// content in a timestamped hidden directory, `..data` a symlink to it, and each top-level
/// entry a symlink through `..data`.
fn configmap_layout(from: &Path, to: &Path) {
    let first = "..2026_12_02_00_00_00.000000001";
    copy_dir(from, &to.join(first));
    std::os::unix::fs::symlink(first, to.join("..data")).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let name = entry.unwrap().file_name();
        std::os::unix::fs::symlink(Path::new("..data").join(&name), to.join(&name)).unwrap();
    }
}

/// The kubelet's update: the new content in a new timestamped directory, a `..data_tmp`
/// symlink to it renamed over `..data` (atomic), the old directory removed.
fn configmap_swap(dir: &Path, stamp: &str, edit: impl FnOnce(&Path)) {
    let old = std::fs::read_link(dir.join("..data")).unwrap();
    let new = format!("..2026_12_02_00_00_00.{stamp}");
    copy_dir(&dir.join(&old), &dir.join(&new));
    edit(&dir.join(&new));
    std::os::unix::fs::symlink(&new, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join(old)).unwrap();
}

/// What one step of the test expects of the reload it causes.
enum Expect {
    /// The bundle as it now is on disk serves.
    Serves,
    /// The load fails with a message containing this; the serving snapshot stays.
    Fails(&'static str),
}

/// Waits for the outcome `expect` of the last change: for a failure, returns the revision
/// it had.
async fn reloaded(server: &Server, failed_before: u64, expect: Expect) -> Option<u64> {
    match expect {
        Expect::Serves => {
            let files = warden::bundle::read_dir(server.bundle.path()).unwrap();
            let digest = warden::digest::of_files(&files);
            server
                .until_ready("the edited bundle", |code, b| {
                    code == 200 && b["digest"] == digest.as_str() && b["last_error"].is_null()
                })
                .await;
            None
        }
        Expect::Fails(cause) => {
            let (_, before) = server.readyz().await;
            server
                .until_ready(cause, |code, b| {
                    code == 200
                        && b["reloads_failed"].as_u64().unwrap() > failed_before
                        && b["last_error"]["message"]
                            .as_str()
                            .is_some_and(|m| m.contains(cause))
                })
                .await;
            let (_, after) = server.readyz().await;
            assert_eq!(
                (&after["revision"], &after["digest"]),
                (&before["revision"], &before["digest"]),
                "a failed load changed what serves"
            );
            after["last_error"]["revision"].as_u64()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request_and_publish_no_broken_bundle() {
    let bundle = tempfile::tempdir().unwrap();
    configmap_layout(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        bundle.path(),
    );
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("decisions.jsonl");
    let server = Server::start_in(bundle, &["--decision-log", log.to_str().unwrap()]);
    let dir = server.bundle.path().to_path_buf();

    // The load: a request every bundle allows, one the edits flip, and one that only a
    // bundle without its organization (no SCPs) would allow.
    let data = work.path().join("requests.jsonl");
    let requests = [
        (ALICE, "orders:GetOrder", ORDER),
        (BOB, "orders:GetOrder", ORDER),
        (ADMIN, "orders:DeleteOrder", PROD_ORDER),
    ]
    .map(|(p, a, r)| serde_json::json!({"principal": p, "action": a, "resource": r}).to_string());
    std::fs::write(&data, requests.join("\n")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (addr, data, stop) = (server.grpc.clone(), data.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reports = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || reports.is_empty() {
                let out = Command::new(env!("CARGO_BIN_EXE_warden"))
                    .args(["loadgen", "--addr", &addr, "-z", "1s", "-c", "8"])
                    .args(["--threads", "1", "--format", "json", "--data"])
                    .arg(&data)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                reports.push(report["target"].clone());
            }
            reports
        })
    };

    // The changes start once the load has.
    let give_up = std::time::Instant::now() + PATIENCE;
    while std::fs::metadata(&log).map_or(0, |m| m.len()) == 0 {
        assert!(
            std::time::Instant::now() < give_up,
            "the load never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut failed = Vec::new();
    let reader = dir.join(READER);
    let broken = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n";
    let org = dir.join("organization.json");
    let org_target = std::fs::read_link(&org).unwrap();
    let policies = dir.join("accounts/333333333333/policies");
    for round in 0..2 {
        // A valid edit, then a broken one, then the fix.
        server.write(READER, &reader_policy(&["orders:ListOrders"]));
        reloaded(&server, failed.len() as u64, Expect::Serves).await;
        server.write(READER, broken);
        failed.extend(
            reloaded(
                &server,
                failed.len() as u64,
                Expect::Fails("ReportsReader.json"),
            )
            .await,
        );
        server.write(READER, &reader_policy(&["orders:GetOrder"]));
        reloaded(&server, failed.len() as u64, Expect::Serves).await;

        // organization.json removed (an interrupted copy), then back.
        std::fs::remove_file(&org).unwrap();
        failed.extend(
            reloaded(
                &server,
                failed.len() as u64,
                Expect::Fails("organization.json"),
            )
            .await,
        );
        std::os::unix::fs::symlink(&org_target, &org).unwrap();
        reloaded(&server, failed.len() as u64, Expect::Serves).await;

        // A FIFO among the policies.
        let fifo = policies.join("Pipe.json");
        let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        failed.extend(reloaded(&server, failed.len() as u64, Expect::Fails("Pipe.json")).await);
        std::fs::remove_file(&fifo).unwrap();
        reloaded(&server, failed.len() as u64, Expect::Serves).await;

        // Two symlinks to `.`.
        for name in ["loop-a", "loop-b"] {
            std::os::unix::fs::symlink(".", policies.join(name)).unwrap();
        }
        failed.extend(reloaded(&server, failed.len() as u64, Expect::Fails("loop-")).await);
        for name in ["loop-a", "loop-b"] {
            std::fs::remove_file(policies.join(name)).unwrap();
        }
        reloaded(&server, failed.len() as u64, Expect::Serves).await;

        // The kubelet swaps the ConfigMap.
        configmap_swap(&dir, &format!("00000000{round}"), |new| {
            std::fs::write(new.join(READER), reader_policy(&["orders:ListOrders"])).unwrap();
        });
        reloaded(&server, failed.len() as u64, Expect::Serves).await;
        assert_eq!(
            std::fs::read_to_string(&reader).unwrap(),
            reader_policy(&["orders:ListOrders"])
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reports = load.join().unwrap();

    // No request failed.
    let sent: u64 = reports.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    for r in &reports {
        assert_eq!(r["errors"], serde_json::json!({}), "{r}");
        assert_eq!(r["ok"], r["count"], "{r}");
    }
    assert!(sent > 0);

    // No decision came from a broken bundle: none under a failed load's revision, and the
    // admin's DeleteOrder in production, which only a bundle without organization.json
    // allows, was never allowed.
    assert_eq!(failed.len(), 8, "each broken step failed once: {failed:?}");
    let (_, ready) = server.readyz().await;
    assert_eq!(
        ready["reloads_failed"].as_u64().unwrap(),
        failed.len() as u64
    );
    // Every decision reaches the log (or is counted as dropped) before the log is read.
    let give_up = std::time::Instant::now() + PATIENCE;
    loop {
        let m = server.metrics().await;
        let logged =
            m.get("warden_decision_log_written_total") + m.get("warden_decision_log_dropped_total");
        if logged >= sent as f64 {
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "{logged} of {sent} logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decisions: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let revisions: std::collections::BTreeSet<u64> = decisions
        .iter()
        .map(|d| d["revision"].as_u64().unwrap())
        .collect();
    assert!(
        revisions.len() > 1,
        "the load saw the reloads: {revisions:?}"
    );
    for d in &decisions {
        let revision = d["revision"].as_u64().unwrap();
        assert!(
            !failed.contains(&revision),
            "decided under a failed revision: {d}"
        );
        if d["principal"] == ADMIN {
            assert_eq!(d["decision"], "ExplicitDeny", "{d}");
        }
    }
}

// === what an attacker tried ===

const MALLORY: &str = "arn:aws:iam::333333333333:user/mallory";

/// Asks every 10 ms whether mallory may get the order, until the flag is set: the
/// revisions that allowed it.
async fn poll_mallory(
    server: &Server,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<Vec<u64>>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mut c, until) = (server.client().await, stop.clone());
    let polling = tokio::spawn(async move {
        let mut allowed = Vec::new();
        while !until.load(std::sync::atomic::Ordering::Relaxed) {
            let r = c
                .authorize(ask(MALLORY, "orders:GetOrder", ORDER))
                .await
                .unwrap()
                .into_inner();
            if r.decision() == pb::Decision::Allow {
                allowed.push(r.revision);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        allowed
    });
    (stop, polling)
}

/// Writes `text` at `rel` under `dir` as rsync does: a hidden temporary file, renamed.
fn rsync_write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_copied_file_by_file_never_serves_half_of_it() {
    // The copy writes a file every 50 ms, never quiet for the debounce, and takes longer
    // than the maximum delay: a read then is half-way. Half-way, mallory exists with
    // AdministratorAccess and the SCP that denies her is not attached yet.
    let server = Server::start(&["--debounce", "1s", "--max-debounce", "2s"]);
    let dir = server.bundle.path().to_path_buf();
    let mut copy: Vec<(String, String)> = vec![
        (
            "scps/DenyMallory.json".into(),
            serde_json::json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalArn": MALLORY}}}]})
            .to_string(),
        ),
        (
            "accounts/333333333333/users/mallory.json".into(),
            r#"{"managed_policies": ["AdministratorAccess"]}"#.into(),
        ),
    ];
    for n in 0..80 {
        copy.push((
            format!("accounts/333333333333/policies/Filler{n}.json"),
            reader_policy(&["orders:GetOrder"]),
        ));
    }
    let org = std::fs::read_to_string(dir.join("organization.json")).unwrap();
    let attached = org.replacen(
        "\"DenyLeaveOrganization\"",
        "\"DenyLeaveOrganization\", \"DenyMallory\"",
        1,
    );
    assert_ne!(org, attached);
    copy.push(("organization.json".into(), attached));

    let (stop, watcher) = poll_mallory(&server).await;
    for (rel, text) in &copy {
        rsync_write(&dir, rel, text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files = warden::bundle::read_dir(&dir).unwrap();
    let digest = warden::digest::of_files(&files);
    server
        .until_ready("the whole copy", |_, b| b["digest"] == digest.as_str())
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let allowed = watcher.await.unwrap();
    assert!(
        allowed.is_empty(),
        "a half-copied bundle decided {} times, first {:?}",
        allowed.len(),
        allowed.first()
    );
    let mut c = server.client().await;
    let r = c
        .authorize(ask(MALLORY, "orders:GetOrder", ORDER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.decision(), pb::Decision::ExplicitDeny);
}

/// The inotify watches process `pid` holds.
fn inotify_watches(pid: u32) -> usize {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
    fds.flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:inotify")
        })
        .map(|fd| {
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            std::fs::read_to_string(info)
                .unwrap()
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_does_not_follow_symlinks_out_of_the_bundle() {
    // A link to a large tree (here the toolchain's own) would cost a watch per directory
    // of it, and could use up the system's watches. (A hidden name: not bundle content.)
    let bundle = example_copy();
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::os::unix::fs::symlink(&tree, bundle.path().join(".elsewhere")).unwrap();
    let dirs = bundle_dirs(bundle.path());
    let server = Server::start_in(bundle, &[]);
    let (_, body) = server.readyz().await;
    assert_eq!(body["watch"], "watching");
    let watches = inotify_watches(server.child.id());
    assert_eq!(watches, dirs, "one watch per directory of the bundle");
}

/// The directories of the tree at `dir`, itself included, not following symlinks.
fn bundle_dirs(dir: &Path) -> usize {
    1 + std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| bundle_dirs(&e.path()))
        .sum::<usize>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_load_stops_the_server_at_once() {
    let mut server = Server::start(&[]);
    // 120 links to 1 MiB of JSON: a load that parses for a long time (and then fails).
    let big = server.bundle.path().with_extension("big.json");
    std::fs::write(&big, format!("[{}0]", "0,".repeat((1 << 19) - 2))).unwrap();
    for n in 0..120 {
        std::os::unix::fs::symlink(&big, server.path(&format!("scps/P{n}.json"))).unwrap();
    }
    let give_up = std::time::Instant::now() + PATIENCE;
    while !server.stderr().contains("bundle changed: reloading") {
        assert!(std::time::Instant::now() < give_up, "{}", server.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the read (a few milliseconds), into the parse.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal("TERM");
    let give_up = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{}", server.stderr());
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "SIGTERM waited for the load: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_directory_re_created_is_read_only_once_it_is_quiet() {
    // Deleted and written again: the quiet that counts is the new directory's. Read when
    // the old one went quiet, it would lack the resource policy written last, and mallory
    // (AdministratorAccess) would be allowed on the order it denies her.
    let server = Server::start(&["--debounce", "1s", "--max-debounce", "3s"]);
    let dir = server.bundle.path().to_path_buf();
    let staged = tempfile::tempdir().unwrap();
    copy_dir(&dir, staged.path());
    std::fs::write(
        staged
            .path()
            .join("accounts/333333333333/users/mallory.json"),
        r#"{"managed_policies": ["AdministratorAccess"]}"#,
    )
    .unwrap();
    let last = "accounts/333333333333/resources/order-42.json";
    let deny = serde_json::json!({"arn": ORDER, "policy": {"Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": {"AWS": MALLORY},
                       "Action": "orders:*", "Resource": ORDER}]}});

    let (stop, watcher) = poll_mallory(&server).await;
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(staged.path(), &dir);
    // Past the old directory's quiet, before the new one's.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    rsync_write(&dir, last, &deny.to_string());
    let files = warden::bundle::read_dir(&dir).unwrap();
    let digest = warden::digest::of_files(&files);
    server
        .until_ready("the whole bundle", |_, b| b["digest"] == digest.as_str())
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let allowed = watcher.await.unwrap();
    assert!(!server.stderr().contains("notify::"), "{}", server.stderr());
    assert!(
        allowed.is_empty(),
        "a partial bundle allowed at revisions {allowed:?}"
    );
}
