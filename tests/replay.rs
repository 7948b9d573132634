//! What-if replay and shadow mode through the real binary: a real server writes its
//! decision log, `warden replay` decides it again against a candidate bundle, and its
//! changes equal what `warden eval` decides on the same requests written as cases by
//! `warden authorize --case`; a server with `--shadow-bundle` counts disagreements in its
//! metrics and answers as a server without one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use warden::grpc::pb;

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;
use server::*;

const CAROL: &str = "arn:aws:iam::333333333333:user/engineering/carol";

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .unwrap()
}

fn string(s: &str) -> pb::ContextValue {
    pb::ContextValue {
        kind: Some(pb::context_value::Kind::String(s.into())),
    }
}

fn with_context(mut r: pb::AuthorizeRequest, pairs: &[(&str, &str)]) -> pb::AuthorizeRequest {
    r.context = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), string(v)))
        .collect();
    r
}

/// The candidate: bob's `ReportsReader` reads orders (no longer lists them) and denies
/// reading through the `web` channel; carol gets it too.
fn candidate() -> tempfile::TempDir {
    let dir = example_copy();
    std::fs::write(
        dir.path().join(READER),
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "ReadOrders", "Effect": "Allow", "Action": "orders:GetOrder", "Resource": "*"},
            {"Sid": "NotOnTheWeb", "Effect": "Deny", "Action": "orders:GetOrder", "Resource": "*",
             "Condition": {"StringEquals": {"orders:Channel": "web"}}}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("accounts/333333333333/users/carol.json"),
        r#"{"path": "/engineering/", "managed_policies": ["ReportsReader"]}"#,
    )
    .unwrap();
    dir
}

/// Asks the requests every test here sends; returns each item's (decision, reason).
async fn traffic(s: &Server) -> Vec<(i32, String)> {
    let mut client = s.client().await;
    let mut answers = Vec::new();
    let one = [
        with_context(
            ask(BOB, "orders:GetOrder", ORDER),
            &[("orders:Channel", "web")],
        ),
        with_context(
            ask(BOB, "orders:GetOrder", ORDER),
            &[("orders:Channel", "app")],
        ),
        // Answered whole by the cache the second time.
        with_context(
            ask(BOB, "orders:GetOrder", ORDER),
            &[("orders:Channel", "app")],
        ),
        ask(BOB, "orders:ListOrders", ORDER),
        ask(ALICE, "iam:CreateUser", "*"),
        ask(CAROL, "orders:GetOrder", ORDER),
        // A key the server owns: dropped, never recorded.
        with_context(
            ask(BOB, "orders:GetOrder", ORDER),
            &[("orders:Channel", "web"), ("aws:PrincipalArn", CAROL)],
        ),
    ];
    for r in one {
        let a = client.authorize(r).await.unwrap().into_inner();
        answers.push((a.decision, a.reason));
    }
    let batch = pb::BatchAuthorizeRequest {
        principal: BOB.into(),
        context: [("orders:Channel".to_owned(), string("web"))].into(),
        items: vec![
            pb::BatchItem {
                action: "orders:GetOrder".into(),
                resource: ORDER.into(),
                ..Default::default()
            },
            pb::BatchItem {
                action: "orders:ListOrders".into(),
                resource: ORDER.into(),
                context: [("orders:Channel".to_owned(), string("app"))].into(),
            },
        ],
        ..Default::default()
    };
    let b = client.batch_authorize(batch).await.unwrap().into_inner();
    for a in b.results {
        answers.push((a.decision, a.reason));
    }
    answers
}

/// Waits until the decision log holds `n` lines, and returns them.
async fn log_lines(path: &Path, n: usize) -> Vec<String> {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{} lines logged",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The changes of a JSON report: (principal, action, from, to) -> count.
fn changes(report: &Value) -> BTreeMap<(String, String, String, String), u64> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let verdict = |v: &Value| {
                format!(
                    "{} ({})",
                    v["decision"].as_str().unwrap(),
                    v["reason"].as_str().unwrap()
                )
            };
            (
                (
                    c["principal"].as_str().unwrap().to_owned(),
                    c["action"].as_str().unwrap().to_owned(),
                    verdict(&c["from"]),
                    verdict(&c["to"]),
                ),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn a_real_servers_log_replays_against_a_candidate_with_the_flips_eval_finds() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("decisions.jsonl");
    let s = Server::start(&["--decision-log", log.to_str().unwrap()]);
    let answers = traffic(&s).await;
    let lines = log_lines(&log, answers.len()).await;
    assert_eq!(lines.len(), 9);
    // The screened context is recorded; the key the server owns is not.
    assert!(
        lines[6].contains(r#""context":{"orders:channel":"web"}"#),
        "{}",
        lines[6]
    );
    assert!(lines[2].contains(r#""cached":true"#), "{}", lines[2]);
    assert!(
        lines[2].contains(r#""context":{"orders:channel":"app"}"#),
        "{}",
        lines[2]
    );
    assert!(
        lines[8].contains(r#""context":{"orders:channel":"app"}"#),
        "{}",
        lines[8]
    );

    let cand = candidate();
    let (log_arg, cand_arg) = (log.to_str().unwrap(), cand.path().to_str().unwrap());
    let out = warden(&["replay", "--log", log_arg, "--bundle", cand_arg, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    let expected: BTreeMap<_, _> = [
        (
            (BOB, "orders:GetOrder"),
            ("Allow (identity_allow)", "ExplicitDeny (explicit_deny)"),
            3,
        ),
        (
            (BOB, "orders:ListOrders"),
            ("Allow (identity_allow)", "ImplicitDeny (no_identity_allow)"),
            2,
        ),
        (
            (CAROL, "orders:GetOrder"),
            ("ImplicitDeny (no_identity_allow)", "Allow (identity_allow)"),
            1,
        ),
    ]
    .into_iter()
    .map(|((p, a), (f, t), n)| ((p.to_owned(), a.to_owned(), f.to_owned(), t.to_owned()), n))
    .collect();
    assert_eq!(changes(&report), expected);
    assert_eq!(
        (report["replayed"].as_u64(), report["unchanged"].as_u64()),
        (Some(9), Some(3))
    );

    // Against the example re-decided (the logged bundle need not be at hand): the same.
    let base = example_copy();
    let base_arg = base.path().to_str().unwrap();
    let out = warden(&[
        "replay",
        "--log",
        log_arg,
        "--bundle",
        cand_arg,
        "--baseline",
        base_arg,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let replayed = changes(&json_of(&out));
    assert_eq!(replayed, expected);

    // The same requests as self-contained cases, on the baseline and on the candidate,
    // decided by `warden eval`: the same flips.
    let mut cases = (String::new(), String::new());
    let mut asked = Vec::new();
    for line in &lines {
        let r: Value = serde_json::from_str(line).unwrap();
        let mut args: Vec<String> = [
            "authorize",
            "--case",
            "--principal",
            r["principal"].as_str().unwrap(),
            "--action",
            r["action"].as_str().unwrap(),
            "--resource",
            r["resource"].as_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        for (k, v) in r["context"].as_object().unwrap() {
            args.extend([
                "--context".to_owned(),
                format!("{k}={}", v.as_str().unwrap()),
            ]);
        }
        for (dir, out) in [(base_arg, &mut cases.0), (cand_arg, &mut cases.1)] {
            let mut with_bundle = args.clone();
            with_bundle.extend(["--bundle".to_owned(), dir.to_owned()]);
            let refs: Vec<&str> = with_bundle.iter().map(String::as_str).collect();
            let case = warden(&refs);
            assert!(
                case.status.success(),
                "{}",
                String::from_utf8_lossy(&case.stderr)
            );
            out.push_str(&String::from_utf8(case.stdout).unwrap());
        }
        asked.push((
            r["principal"].as_str().unwrap().to_owned(),
            r["action"].as_str().unwrap().to_owned(),
        ));
    }
    let eval = |cases: &str| -> Vec<String> {
        let file = logs.path().join(format!("cases-{}.jsonl", cases.len()));
        std::fs::write(&file, cases).unwrap();
        let out = warden(&["eval", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                format!(
                    "{} ({})",
                    v["decision"].as_str().unwrap(),
                    v["reason"].as_str().unwrap()
                )
            })
            .collect()
    };
    let (before, after) = (eval(&cases.0), eval(&cases.1));
    let mut flips: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    for (((principal, action), from), to) in asked.into_iter().zip(before).zip(after) {
        if from != to {
            *flips.entry((principal, action, from, to)).or_default() += 1;
        }
    }
    assert_eq!(flips, replayed);
}

#[tokio::test]
async fn hostile_and_old_lines_are_reported_by_number_and_the_rest_replayed() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("decisions.jsonl");
    let s = Server::start(&["--decision-log", log.to_str().unwrap()]);
    let mut client = s.client().await;
    let r = with_context(
        ask(BOB, "orders:GetOrder", ORDER),
        &[("orders:Channel", "web")],
    );
    client.authorize(r).await.unwrap();
    let good = log_lines(&log, 1).await.remove(0);
    let old = good[..good.find(r#","context""#).unwrap()].to_owned() + "}";
    let huge: Vec<String> = (0..100).map(|i| format!(r#""orders:k{i}":"v""#)).collect();
    let hostile = [
        good.clone(),
        "y".repeat(5000),
        "{\"ts_ms\": ".to_owned(),
        good.replacen(r#""cached""#, r#""surprise":true,"cached""#, 1),
        good.replacen(
            r#""context":{"orders:channel":"web"}"#,
            &format!(r#""context":{{{}}}"#, huge.join(",")),
            1,
        ),
        old.clone(),
    ]
    .join("\n");
    let file = logs.path().join("hostile.jsonl");
    std::fs::write(&file, hostile).unwrap();
    let cand = candidate();
    let out = warden(&[
        "replay",
        "--log",
        file.to_str().unwrap(),
        "--bundle",
        cand.path().to_str().unwrap(),
        "--max-line-bytes",
        "4096",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("replayed 1 of 6 records"), "{text}");
    assert!(
        text.contains("line 2: the line is 5000 bytes, longer than the limit of 4096"),
        "{text}"
    );
    assert!(text.contains("line 3: not a decision record"), "{text}");
    assert!(
        text.contains("line 4: not a decision record: unknown field `surprise`"),
        "{text}"
    );
    assert!(
        text.contains("line 5: `context` has 100 keys, more than the limit of 64"),
        "{text}"
    );
    assert!(
        text.contains("1  no context recorded (no_context)"),
        "{text}"
    );

    // Nothing changed, but not everything was replayed: exit 3; all replayed: 0.
    std::fs::write(&file, format!("{old}\n{good}\n")).unwrap();
    let base = example_copy();
    let out = warden(&[
        "replay",
        "--log",
        file.to_str().unwrap(),
        "--bundle",
        base.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(&file, format!("{good}\n")).unwrap();
    let out = warden(&[
        "replay",
        "--log",
        file.to_str().unwrap(),
        "--bundle",
        base.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_shadow_bundle_counts_disagreements_and_changes_no_answer() {
    // A shadow that allows bob and carol everything their SCPs let through.
    let shadow = example_copy();
    std::fs::write(shadow.path().join(READER), reader_policy(&["*"])).unwrap();
    std::fs::write(
        shadow.path().join("accounts/333333333333/users/carol.json"),
        r#"{"path": "/engineering/", "managed_policies": ["AdministratorAccess"]}"#,
    )
    .unwrap();
    let with = Server::start(&["--shadow-bundle", shadow.path().to_str().unwrap()]);
    let without = Server::start(&[]);
    let shadowed = traffic(&with).await;
    assert_eq!(shadowed, traffic(&without).await);
    let total = shadowed.len() as f64;
    let series = |serving: &str, shadow: &str| {
        format!(r#"warden_shadow_decisions_total{{serving="{serving}",shadow="{shadow}"}}"#)
    };
    let give_up = tokio::time::Instant::now() + PATIENCE;
    loop {
        let m = with.metrics().await;
        let seen =
            m.get("warden_shadow_agreements_total") + m.get("warden_shadow_disagreements_total");
        if seen == total {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{seen} of {total} decided by the shadow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = with.metrics().await;
    // carol's GetOrder flips to Allow; alice's iam:CreateUser stays denied; bob's were
    // allowed already.
    assert_eq!(m.get("warden_shadow_disagreements_total"), 1.0);
    assert_eq!(m.get(&series("ImplicitDeny", "Allow")), 1.0);
    assert_eq!(m.get(&series("ImplicitDeny", "ImplicitDeny")), 1.0);
    assert_eq!(m.get(&series("Allow", "Allow")), total - 2.0);
    assert_eq!(m.get("warden_shadow_dropped_total"), 0.0);
    assert_eq!(m.get("warden_shadow_loaded"), 1.0);
    assert_eq!(m.get("warden_shadow_revision"), 1.0);
    assert!(
        with.stderr().contains("the shadow bundle disagrees"),
        "{}",
        with.stderr()
    );

    // A shadow bundle that fails to load is counted and changes nothing.
    std::fs::write(shadow.path().join(READER), "{ not json").unwrap();
    with.until_metric(r#"warden_shadow_loads_total{result="error"}"#, |v| v >= 1.0)
        .await;
    assert_eq!(traffic(&with).await, shadowed);
    assert_eq!(with.metrics().await.get("warden_shadow_revision"), 1.0);
}
