//! Fleet mode end to end: a real etcd (Debian's `etcd-server`) and three real `warden serve
//! --etcd` sidecars on loopback, started by this driver.
//!
//! - **Convergence**: a write to etcd (one policy document, in one transaction, as the admin
//!   API and `warden push` write), then, from the moment the write has returned its
//!   revision W, an `Authorize` with `min_revision = W` to each sidecar at once: each
//!   answers once it serves W or later (the request waits on the sidecar's revision
//!   watch, not a poll). The time to the last of the three answers is the time from the
//!   write to the whole fleet serving it. Reported as p50 / p99 / max over the writes.
//! - **Decisions per second while writes stream in**: `warden loadgen` against one sidecar
//!   for a while with no writes, then for as long again while a write lands every
//!   `--write-every` (each one a new snapshot on every sidecar); `--rounds` times,
//!   alternating. A quiet window starts only once every sidecar serves the last write
//!   (none of its loads still running). The medians of the quiet and of the writing
//!   windows, and their ratio, close the report: one window on this noisy machine says
//!   little, several alternated say more. With `--alone`, sidecars 1 and 2 are stopped
//!   before these windows: each sidecar of a fleet has its host's CPU to itself, where
//!   here three share two cores with etcd, the writer and the load generator, and every
//!   write is loaded three times on them. `WARDEN_BENCH_SIDECAR=PATH` runs another build
//!   as the sidecars.
//!
//! ```text
//! cargo bench --bench fleet -- [--statements N] [--writes 100] [--load 10s] [--write-every 100ms]
//!     [--debounce 20ms] [--rounds 1] [--alone]
//! ```
//!
//! `--debounce` is the sidecars' `--etcd-debounce` (20 ms by default, as shipped): how long a
//! change waits for others to join its snapshot, part of every write's time to serving.
//!
//! `--statements N` serves a synthetic organization of N statements (`warden synth`)
//! instead of the example organization. Needs `etcd` on the PATH (or `WARDEN_TEST_ETCD`).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

#[path = "../tests/support/etcd.rs"]
#[allow(dead_code, reason = "the tests' helper, shared")]
mod etcd;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd::write;
use warden::etcd::pb::etcdserverpb as rpc;
use warden::etcd::{Etcd, Layout, put_op};
use warden::grpc::pb::AuthorizeRequest;
use warden::grpc::pb::authorizer_client::AuthorizerClient;

/// The binary the sidecars run: this build's, or `WARDEN_BENCH_SIDECAR` (another build, to
/// compare two in the same conditions).
fn sidecar_binary() -> String {
    std::env::var("WARDEN_BENCH_SIDECAR").unwrap_or_else(|_| WARDEN.to_owned())
}

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

struct Sidecar {
    child: Child,
    grpc: String,
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sidecar(endpoint: &str, debounce: &str, log: &Path) -> Sidecar {
    let mut child = Command::new(sidecar_binary())
        .args(["serve", "--etcd", endpoint, "--etcd-debounce", debounce])
        .args(["--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .args(["--revision-wait", "60s", "--request-timeout", "90s"])
        .args(["--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grpc = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .unwrap_or_else(|| panic!("no grpc= in {line:?}"))
        .to_owned();
    Sidecar { child, grpc }
}

fn put(layout: &Layout, path: &str, text: &str) -> rpc::RequestOp {
    put_op(layout.key(path), text.as_bytes().to_vec())
}

fn marker(layout: &Layout) -> rpc::RequestOp {
    put_op(layout.written(), b"bench".to_vec())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The bundle to serve, and a policy document to rewrite (path, text for write `i`), and
/// a request that the bundle decides.
fn bundle(
    statements: Option<usize>,
    scratch: &Path,
) -> (BTreeMap<String, String>, AuthorizeRequest) {
    let dir = match statements {
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        Some(n) => {
            let out = scratch.join("synth");
            let status = Command::new(WARDEN)
                .args(["synth", "--statements", &n.to_string(), "--out"])
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success());
            out
        }
    };
    let files = warden::bundle::read_dir(&dir).unwrap();
    let ask = AuthorizeRequest {
        principal: "arn:aws:iam::333333333333:user/engineering/alice".into(),
        action: "orders:GetOrder".into(),
        resource: "arn:aws:orders:us-east-1:333333333333:order/42".into(),
        ..Default::default()
    };
    (files, ask)
}

/// The document each write rewrites: a customer managed policy of its own, whose `Sid`
/// changes with every write (a new bundle digest, a full compile on every sidecar).
fn written_policy(i: usize) -> (String, String) {
    let text = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": format!("Write{i}"), "Effect": "Allow",
                       "Action": "orders:GetOrder", "Resource": "*"}]
    })
    .to_string();
    (
        "accounts/333333333333/policies/FleetBench.json".to_owned(),
        text,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let statements = flag(&args, "--statements").map(|s| s.parse::<usize>().unwrap());
    let writes: usize = flag(&args, "--writes").map_or(100, |s| s.parse().unwrap());
    let rounds: usize = flag(&args, "--rounds").map_or(1, |s| s.parse().unwrap());
    let load = flag(&args, "--load").unwrap_or_else(|| "10s".to_owned());
    let every = flag(&args, "--write-every").map_or(Duration::from_millis(100), |s| {
        Duration::from_millis(s.trim_end_matches("ms").parse().unwrap())
    });
    let debounce = flag(&args, "--debounce").unwrap_or_else(|| "20ms".to_owned());
    let alone = args.iter().any(|a| a == "--alone");
    let scratch = tempfile::tempdir().unwrap();
    let (files, ask) = bundle(statements, scratch.path());
    let server = etcd::Etcd::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Etcd::new(std::slice::from_ref(&server.endpoint)).unwrap();
        let layout = Layout::default();
        let (path, text) = written_policy(0);
        let mut ops: Vec<_> = files.iter().map(|(p, t)| put(&layout, p, t)).collect();
        ops.push(put(&layout, &path, &text));
        ops.push(marker(&layout));
        let first = write(&client, ops).await;
        println!(
            "bundle: {} files ({}), etcd revision {first}; sidecars' --etcd-debounce {debounce}",
            files.len(),
            statements.map_or("the example organization".to_owned(), |n| format!(
                "{n} statements"
            ))
        );
        let mut sidecars: Vec<Sidecar> = (0..3)
            .map(|i| {
                let log = scratch.path().join(format!("sidecar{i}.log"));
                start_sidecar(&server.endpoint, &debounce, &log)
            })
            .collect();
        let mut clients = Vec::new();
        for s in &sidecars {
            let channel = warden::grpc::client::connect(&s.grpc, Duration::from_secs(5))
                .await
                .unwrap();
            clients.push(AuthorizerClient::new(channel));
        }
        let at = |min: i64| AuthorizeRequest {
            min_revision: min as u64,
            ..ask.clone()
        };
        for c in &mut clients {
            c.authorize(at(first)).await.unwrap();
        }

        // Convergence.
        let mut all = Vec::with_capacity(writes);
        let mut each = Vec::with_capacity(writes * 3);
        for i in 1..=writes {
            let (path, text) = written_policy(i);
            let revision = write(&client, vec![put(&layout, &path, &text), marker(&layout)]).await;
            let start = Instant::now();
            let answers = clients.iter().map(|c| {
                let mut c = c.clone();
                let request = at(revision);
                tokio::spawn(async move {
                    let answer = c.authorize(request).await.unwrap().into_inner();
                    assert!(answer.revision >= revision as u64);
                    start.elapsed()
                })
            });
            let times: Vec<Duration> = futures_join(answers.collect()).await;
            all.push(*times.iter().max().unwrap());
            each.extend(times);
        }
        all.sort();
        each.sort();
        println!(
            "write -> all three sidecars serving it, {writes} writes: p50 {}  p99 {}  max {}",
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            ms(*all.last().unwrap())
        );
        println!(
            "write -> one sidecar serving it ({} answers): p50 {}  p99 {}",
            each.len(),
            ms(percentile(&each, 0.5)),
            ms(percentile(&each, 0.99))
        );

        // Decisions per second, quiet and while writes stream in.
        if alone {
            sidecars.truncate(1);
            clients.truncate(1);
            println!("--alone: sidecars 1 and 2 stopped; sidecar 0 is loaded and follows etcd");
        }
        let target = sidecars[0].grpc.clone();
        let load = load.clone();
        let loadgen = move |label: &str| {
            let out = Command::new(WARDEN)
                .args(["loadgen", "--addr", &target, "-z", &load, "-c", "32"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.contains("Requests/sec") || l.contains(" 50 % in") || l.contains(" 99 % in")
                })
                .map(str::trim)
                .collect();
            println!("loadgen, {label}: {}", kept.join("; "));
            // `Requests/sec: N`
            text.lines()
                .find(|l| l.contains("Requests/sec"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no Requests/sec in {text:?}"))
        };
        let mut next = writes + 1;
        // The revision every sidecar must serve before a quiet window starts: the last
        // write's, so that no load of the writing window runs into the quiet one.
        let mut last = first;
        let (mut quiet_rates, mut writing_rates) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let settle = Instant::now();
            for c in &mut clients {
                c.authorize(at(last)).await.unwrap();
            }
            let settle = settle.elapsed();
            let quiet = loadgen.clone();
            let label = format!(
                "round {round}, no writes (every sidecar at revision {last} after {})",
                ms(settle)
            );
            let rate = tokio::task::spawn_blocking(move || quiet(&label))
                .await
                .unwrap();
            quiet_rates.push(rate);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let streaming = {
                let stop = stop.clone();
                let client = client.clone();
                let layout = layout.clone();
                tokio::spawn(async move {
                    let mut n = 0usize;
                    let mut i = next;
                    let mut revision = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (path, text) = written_policy(i);
                        revision =
                            write(&client, vec![put(&layout, &path, &text), marker(&layout)]).await;
                        i += 1;
                        n += 1;
                        tokio::time::sleep(every).await;
                    }
                    (n, revision)
                })
            };
            let streamed = loadgen.clone();
            let label = format!("round {round}, a write every {every:?}");
            let rate = tokio::task::spawn_blocking(move || streamed(&label))
                .await
                .unwrap();
            writing_rates.push(rate);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (n, revision) = streaming.await.unwrap();
            next += n;
            last = last.max(revision);
            let serving = clients[0]
                .authorize(at(0))
                .await
                .unwrap()
                .into_inner()
                .revision;
            println!("round {round}: {n} writes while loaded; sidecar 0 serves revision {serving}");
        }
        if rounds > 0 {
            let (quiet, writing) = (median(&quiet_rates), median(&writing_rates));
            let pairs: Vec<String> = quiet_rates
                .iter()
                .zip(&writing_rates)
                .map(|(q, w)| format!("{:.0}%", 100.0 * w / q))
                .collect();
            println!(
                "decisions/s over {rounds} rounds: quiet median {quiet:.0}, writing median \
                 {writing:.0}: writing/quiet {:.0}% (each round: {})",
                100.0 * writing / quiet,
                pairs.join(", ")
            );
        }
    });
}

/// The median of `rates` (the mean of the middle two for an even count).
fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Waits for every task, in order.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<Duration>>) -> Vec<Duration> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
