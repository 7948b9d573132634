//! Replay of a large decision log (`warden replay`'s library part): a synthetic
//! organization's requests decided by the real service with its decision log on (the
//! real writer), the log repeated to `RECORDS` lines, then replayed against a candidate
//! (the same organization with an SCP on its Prod OU denying `*:Tag*`), compared with the
//! logged decisions, and with a baseline, on 1 and on every core:
//!
//! ```text
//! cargo bench --bench replay -- 10000 1000000
//! ```
//!
//! With `WARDEN_BENCH_REPLAY_OUT=DIR` the log (`DIR/decisions.jsonl`), the organization
//! (`DIR/base`) and the candidate (`DIR/candidate`) are kept there, for timing the binary:
//! `warden replay --log DIR/decisions.jsonl --bundle DIR/candidate`.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a measurement driver stops loudly on anything unexpected"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warden::bench::synth::{self, Spec};
use warden::caller::Caller;
use warden::context::Context;
use warden::replay::{self, Against, Config};
use warden::service::{Item, Limits, Request, Service, ServiceConfig, Shape};
use warden::snapshot::Snapshot;
use warden::telemetry::{DecisionLog, LogSink, Telemetry};

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let statements = numbers.first().copied().unwrap_or(10_000);
    let records = numbers.get(1).copied().unwrap_or(1_000_000);
    let org = synth::generate(Spec {
        statements,
        requests: 10_000,
        seed: 1,
    })
    .expect("generate");
    let mut candidate_files = org.files.clone();
    candidate_files.insert(
        "scps/DenyTagging.json".to_owned(),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*:Tag*","Resource":"*"}]}"#
            .to_owned(),
    );
    let organization = candidate_files
        .get("organization.json")
        .expect("an organization")
        .replacen(
            r#"{"id":"ou-synth-prod","name":"Prod","#,
            r#"{"id":"ou-synth-prod","name":"Prod","scps":["FullAWSAccess","DenyTagging"],"#,
            1,
        );
    candidate_files.insert("organization.json".to_owned(), organization);
    let base = Snapshot::load_files(&org.files, 1).expect("the organization loads");
    let candidate = Snapshot::load_files(&candidate_files, 2).expect("the candidate loads");

    let dir = match std::env::var_os("WARDEN_BENCH_REPLAY_OUT") {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("warden-replay-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).expect("the output directory");
    let log = dir.join("decisions.jsonl");
    let once = dir.join("once.jsonl");
    write_log(
        &once,
        &org.requests,
        Snapshot::load_files(&org.files, 1).expect("loads"),
    );
    let lines = std::fs::read_to_string(&once).expect("the log");
    let per_round = lines.lines().count();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&log).expect("the log"));
        let mut written = 0;
        while written < records {
            for line in lines.lines().take(records - written) {
                out.write_all(line.as_bytes()).expect("write");
                out.write_all(b"\n").expect("write");
                written += 1;
            }
        }
        out.flush().expect("flush");
    }
    let bytes = std::fs::metadata(&log).map_or(0, |m| m.len());
    println!(
        "{statements} statements; {records} records ({per_round} distinct, {:.0} bytes each on average, {} MB)",
        bytes as f64 / records as f64,
        bytes / 1_000_000
    );
    if std::env::var_os("WARDEN_BENCH_REPLAY_OUT").is_some() {
        write_bundle(&dir.join("base"), &org.files);
        write_bundle(&dir.join("candidate"), &candidate_files);
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    for (name, against) in [
        ("against the log", Against::Logged),
        ("against a baseline", Against::Baseline(&base)),
    ] {
        for jobs in [1, cores] {
            let config = Config {
                jobs,
                ..Config::default()
            };
            let file = std::fs::File::open(&log).expect("the log");
            let started = Instant::now();
            let tally = replay::replay(
                &mut std::io::BufReader::with_capacity(1 << 16, file),
                &candidate,
                &against,
                &config,
            )
            .expect("the log reads");
            let took = started.elapsed();
            println!(
                "{name}, {jobs} thread(s): {:.2} s, {:.0} records/s; {} replayed, {} changed ({} groups), {} bad",
                took.as_secs_f64(),
                tally.replayed as f64 / took.as_secs_f64(),
                tally.replayed,
                tally.changed,
                tally.groups.len(),
                tally.bad_lines
            );
        }
    }
    if std::env::var_os("WARDEN_BENCH_REPLAY_OUT").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Decides every request with the real service, its decision log writing to `path`.
fn write_log(path: &Path, requests: &[synth::SynthRequest], snapshot: Snapshot) {
    let published = Arc::new(warden::source::Published::new());
    let telemetry = Arc::new(Telemetry::new());
    published.publish(snapshot, &telemetry.metrics);
    let log = DecisionLog::start(&LogSink::File(path.to_owned()), 1 << 20, &telemetry.metrics)
        .expect("the decision log opens");
    let service = Service::new(
        published,
        telemetry,
        Some(log),
        ServiceConfig {
            cache_size: 0,
            limits: Limits::default(),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    for r in requests {
        let request = Request {
            caller: Caller::Asserted(r.principal.clone()),
            context: Context::from_entries(
                r.context_keys()
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.clone()))
                    .collect(),
            )
            .expect("distinct keys"),
            items: vec![Item {
                action: r.action.clone(),
                resource: r.resource.clone(),
                context: Context::new(),
            }],
            min_revision: 0,
            explain: false,
            shape: Shape::One,
            face: warden::telemetry::Face::Authorize,
            snapshot: None,
        };
        runtime
            .block_on(service.handle(|_| Ok(request)))
            .expect("a synthetic request is decided");
    }
    // Dropping the service closes the queue; the writer drains it and ends.
    drop(service);
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let n = std::fs::read_to_string(path).map_or(0, |t| t.lines().count());
        if n == requests.len() {
            return;
        }
        assert!(Instant::now() < give_up, "{n} records written");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_bundle(dir: &Path, files: &BTreeMap<String, String>) {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a directory");
        }
        std::fs::write(path, text).expect("a file");
    }
}
