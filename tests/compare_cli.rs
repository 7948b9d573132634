//! `warden compare` through the real binary: a bundle with one statement widened gives a
//! counterexample whose printed `warden authorize` lines reproduce it; the example against
//! itself is PASS; an operator the procedure does not model is UNKNOWN, named at its
//! place; a policy pair's `warden eval` lines reproduce; the checks and the exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

fn warden(args: &[&str]) -> Output {
    Command::new(WARDEN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the warden binary starts")
}

/// Runs a printed command line (`warden ...`) through the shell, as a user would paste it.
fn shell(line: &str) -> Output {
    let rest = line
        .strip_prefix("warden ")
        .map(|r| format!("'{WARDEN}' {r}"));
    let line = rest.unwrap_or_else(|| line.replace("| warden eval", &format!("| '{WARDEN}' eval")));
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("sh starts")
}

fn out(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A copy of `examples/org` with `edit` applied to one file's text.
fn example_with(dir: &Path, file: &str, edit: impl Fn(&str) -> String) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org");
    copy_dir(&src, dir);
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = edit(&text);
    assert_ne!(text, edited, "the edit changed nothing in {file}");
    std::fs::write(&path, edited).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn a_widened_statement_gives_a_counterexample_that_authorize_reproduces() {
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("org");
    example_with(&new, "accounts/555555555555/roles/Developer.json", |t| {
        t.replace(
            "\"Resource\": \"arn:aws:orders:*:555555555555:order/*\"",
            "\"Resource\": \"arn:aws:orders:*:555555555555:*\"",
        )
    });
    let new = new.to_str().unwrap();
    let o = warden(&[
        "compare",
        "examples/org",
        new,
        "--check",
        "no-new-access",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["verdict"], "FAIL");
    let cx = &report["counterexamples"][0];
    assert_eq!(cx["kind"], "new access");
    let request = &cx["counterexample"]["request"];
    assert_eq!(
        request["principal"],
        "arn:aws:sts::555555555555:assumed-role/Developer/compare"
    );
    assert_eq!(cx["counterexample"]["old"], "ImplicitDeny");
    assert_eq!(cx["counterexample"]["new"], "Allow");
    let commands: Vec<&str> = cx["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        commands[0].contains("--bundle examples/org "),
        "{}",
        commands[0]
    );
    assert!(
        commands[1].contains(&format!("--bundle {new} ")),
        "{}",
        commands[1]
    );
    // Both printed lines, run as printed: OLD denies (exit 1), NEW allows (exit 0).
    let old_run = shell(commands[0]);
    assert_eq!(old_run.status.code(), Some(1), "{}", out(&old_run));
    assert!(
        stdout(&old_run).starts_with("ImplicitDeny"),
        "{}",
        out(&old_run)
    );
    let new_run = shell(commands[1]);
    assert_eq!(new_run.status.code(), Some(0), "{}", out(&new_run));
    assert!(stdout(&new_run).starts_with("Allow"), "{}", out(&new_run));
    assert!(
        stdout(&new_run).contains("Sid OrderWrites"),
        "{}",
        out(&new_run)
    );

    // The relation report names the two broader actions, and only them.
    let o = warden(&["compare", "examples/org", new]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = stdout(&o);
    let changed: Vec<&str> = text.lines().filter(|l| l.ends_with(": broader")).collect();
    assert_eq!(
        changed,
        [
            "arn:aws:sts::555555555555:assumed-role/Developer/compare orders:CreateOrder: broader",
            "arn:aws:sts::555555555555:assumed-role/Developer/compare orders:UpdateOrder: broader",
        ],
        "{text}"
    );
    assert!(text.ends_with("no-new-access: FAIL\n"), "{text}");

    // The other way round, nothing is new: the change is narrower, proven.
    let o = warden(&["compare", new, "examples/org"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        stdout(&o).contains(" 2 narrower, 0 broader, 0 incomparable, 0 unknown"),
        "{}",
        out(&o)
    );
}

#[test]
fn the_example_compared_with_itself_is_equivalent() {
    let o = warden(&["compare", "examples/org", "examples/org"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = stdout(&o);
    assert!(
        text.contains(" equivalent, 0 narrower, 0 broader, 0 incomparable, 0 unknown"),
        "{text}"
    );
    assert!(text.ends_with("no-new-access: PASS\n"), "{text}");
    let o = warden(&[
        "compare",
        "examples/org",
        "examples/org",
        "--check",
        "no-new-access",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["verdict"], "PASS");
    assert_eq!(report["compared"], Value::Array(Vec::new()));
}

const IGNORE_CASE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": "orders:GetOrder",
      "Resource": "*",
      "Condition": {"StringEqualsIgnoreCase": {"orders:Team": "A"}}
    }
  ]
}
"#;

#[test]
fn an_operator_not_modelled_is_unknown_naming_it_at_its_place() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ic.json");
    std::fs::write(&path, IGNORE_CASE).unwrap();
    let p = path.to_str().unwrap();
    let o = warden(&["compare", p, p]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "undecided: {p}:4:5: `StringEqualsIgnoreCase` on `orders:team`"
        )),
        "{text}"
    );
    assert!(text.contains("orders:GetOrder: unknown"), "{text}");
    assert!(text.ends_with("no-new-access: UNKNOWN\n"), "{text}");
}

const OLD_AMOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"orders:GetOrder",
  "Resource":"arn:aws:orders:us-east-1:555555555555:order/shared/*",
  "Condition":{"NumericLessThan":{"orders:Amount":"100"}}}]}"#;
const NEW_AMOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"orders:GetOrder",
  "Resource":"arn:aws:orders:us-east-1:555555555555:order/shared/*",
  "Condition":{"NumericLessThanEquals":{"orders:Amount":"100"}}}]}"#;

#[test]
fn a_policy_pair_counterexample_reproduces_with_warden_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old.json"), tmp.path().join("new.json"));
    std::fs::write(&old, OLD_AMOUNT).unwrap();
    std::fs::write(&new, NEW_AMOUNT).unwrap();
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let o = warden(&["compare", old, new, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cx = &report["counterexamples"][0];
    // The one request in between: exactly the boundary.
    assert_eq!(
        cx["counterexample"]["request"]["context"][0][0],
        "orders:amount"
    );
    assert_eq!(cx["counterexample"]["request"]["context"][0][1][0], "100");
    let commands = cx["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 2);
    for (c, decision) in commands.iter().zip(["ImplicitDeny", "Allow"]) {
        let run = shell(c.as_str().unwrap());
        // `expect` is in the case: exit 0 means the engine agreed with the comparison.
        assert_eq!(run.status.code(), Some(0), "{}", out(&run));
        let answer: Value = serde_json::from_str(&stdout(&run)).unwrap();
        assert_eq!(answer["decision"], decision);
    }
    // Only `orders:GetOrder` changed, and it is broader; the reverse is narrower.
    let o = warden(&["compare", new, old]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        stdout(&o).contains("orders:GetOrder: narrower"),
        "{}",
        out(&o)
    );
}

#[test]
fn access_not_granted_finds_who_may_delete_production_orders() {
    // The example's story: nobody but break-glass deletes production orders.
    let o = warden(&[
        "compare",
        "examples/org",
        "examples/org",
        "--check",
        "access-not-granted",
        "--action",
        "orders:DeleteOrder",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cx = &report["counterexamples"][0];
    let who = cx["counterexample"]["request"]["principal"]
        .as_str()
        .unwrap();
    assert!(
        who.contains(":assumed-role/BreakGlass/") || who.ends_with(":root"),
        "{who}"
    );
    // Only NEW's line is printed, and it allows.
    let commands = cx["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1);
    let run = shell(commands[0].as_str().unwrap());
    assert_eq!(run.status.code(), Some(0), "{}", out(&run));
    // On production orders (account 555555555555) only break-glass may delete.
    let o = warden(&[
        "compare",
        "examples/org",
        "examples/org",
        "--check",
        "access-not-granted",
        "--action",
        "orders:DeleteOrder",
        "--resource",
        "arn:aws:orders:us-east-1:555555555555:order/o-1",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let who: Vec<&str> = report["counterexamples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["counterexample"]["request"]["principal"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        who,
        ["arn:aws:sts::555555555555:assumed-role/BreakGlass/compare"],
        "{}",
        out(&o)
    );
}

#[test]
fn public_and_cross_organization_grants_are_named() {
    let o = warden(&[
        "compare",
        "examples/org",
        "examples/org",
        "--check",
        "no-public-access",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(stdout(&o), "no-public-access: PASS\n");
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("org");
    example_with(
        &new,
        "accounts/555555555555/resources/shared-orders.json",
        |t| t.replacen("\"AWS\": \"333333333333\"", "\"AWS\": \"*\"", 1),
    );
    let new = new.to_str().unwrap();
    let o = warden(&[
        "compare",
        "examples/org",
        new,
        "--check",
        "no-public-access",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        stdout(&o).contains(
            "resource policy of arn:aws:orders:us-east-1:555555555555:order/shared/* Statement[0]"
        ),
        "{}",
        out(&o)
    );
    let o = warden(&[
        "compare",
        "examples/org",
        new,
        "--check",
        "no-cross-org-access",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        stdout(&o).ends_with("no-cross-org-access: FAIL\n"),
        "{}",
        out(&o)
    );
}

#[test]
fn errors_exit_2_with_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}"#,
    )
    .unwrap();
    let b = bad.to_str().unwrap();
    let o = warden(&["compare", b, b]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{b}:1:")), "{err}");
    // A file and a directory do not compare.
    let o = warden(&["compare", b, "examples/org"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    // A resource that is not an ARN (it would be "not granted" everywhere).
    let o = warden(&[
        "compare",
        "examples/org",
        "examples/org",
        "--check",
        "access-not-granted",
        "--action",
        "orders:DeleteOrder",
        "--resource",
        "orders/1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    // An action the catalog lacks.
    let o = warden(&[
        "compare",
        "examples/org",
        "examples/org",
        "--check",
        "access-not-granted",
        "--action",
        "orders:Nope",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}

/// A copy of `examples/org` whose ci-deployer role (account 444444444444) may also delete
/// its account's orders under `condition`, and the JSON report of `--check no-new-access`
/// from the example to it.
fn delete_orders_when(dir: &Path, condition: Value) -> Value {
    example_with(dir, "accounts/444444444444/roles/ci-deployer.json", |t| {
        let mut role: Value = serde_json::from_str(t).unwrap();
        role["inline_policies"]["DeleteWhen"] = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DeleteWhen",
                "Effect": "Allow",
                "Action": "orders:DeleteOrder",
                "Resource": "arn:aws:orders:*:444444444444:order/*",
                "Condition": condition,
            }]
        });
        serde_json::to_string_pretty(&role).unwrap()
    });
    let o = warden(&[
        "compare",
        "examples/org",
        dir.to_str().unwrap(),
        "--check",
        "no-new-access",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let code = match report["verdict"].as_str() {
        Some("PASS") => 0,
        Some("FAIL") => 1,
        _ => 3,
    };
    assert_eq!(o.status.code(), Some(code), "{}", out(&o));
    report
}

/// The report FAILs with a counterexample of ci-deployer's session whose printed lines,
/// run as printed, deny on OLD and allow on NEW, and carry `flags`.
fn check_session_counterexample(report: &Value, flags: &[&str]) -> Value {
    assert_eq!(report["verdict"], "FAIL", "{report}");
    let cx = &report["counterexamples"][0];
    assert_eq!(cx["kind"], "new access");
    let request = &cx["counterexample"]["request"];
    assert_eq!(
        request["principal"],
        "arn:aws:sts::444444444444:assumed-role/ci-deployer/compare"
    );
    assert_eq!(request["action"], "orders:DeleteOrder");
    let commands: Vec<&str> = cx["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    for c in &commands {
        assert!(c.contains(" --issued-at "), "{c}");
        for f in flags {
            assert!(c.contains(f), "{c} lacks {f}");
        }
    }
    let old_run = shell(commands[0]);
    assert_eq!(old_run.status.code(), Some(1), "{}", out(&old_run));
    let old = stdout(&old_run);
    assert!(
        old.starts_with("ImplicitDeny") || old.starts_with("ExplicitDeny"),
        "{}",
        out(&old_run)
    );
    let new_run = shell(commands[1]);
    assert_eq!(new_run.status.code(), Some(0), "{}", out(&new_run));
    assert!(stdout(&new_run).starts_with("Allow"), "{}", out(&new_run));
    assert!(
        stdout(&new_run).contains("Sid DeleteWhen"),
        "{}",
        out(&new_run)
    );
    request["session"].clone()
}

#[test]
fn a_grant_only_under_mfa_is_new_access_for_an_mfa_session() {
    let tmp = tempfile::tempdir().unwrap();
    let report = delete_orders_when(
        &tmp.path().join("org"),
        serde_json::json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    );
    let session = check_session_counterexample(&report, &["--mfa-age "]);
    assert!(session["mfa_age"].is_u64(), "{session}");

    // An MFA age bound: the counterexample's age is within it.
    let report = delete_orders_when(
        &tmp.path().join("age"),
        serde_json::json!({"NumericLessThan": {"aws:MultiFactorAuthAge": "300"}}),
    );
    let session = check_session_counterexample(&report, &["--mfa-age "]);
    assert!(session["mfa_age"].as_u64().unwrap() < 300, "{session}");

    // The text report names the session.
    let o = warden(&[
        "compare",
        "examples/org",
        tmp.path().join("org").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = stdout(&o);
    assert!(
        text.contains("orders:DeleteOrder by arn:aws:sts::444444444444:assumed-role/ci-deployer/compare (a session: MFA "),
        "{text}"
    );
    assert!(text.ends_with("no-new-access: FAIL\n"), "{text}");

    // Sessions count against the bound: past it, UNKNOWN naming the principal, not PASS.
    let o = warden(&[
        "compare",
        "examples/org",
        tmp.path().join("org").to_str().unwrap(),
        "--max-requests",
        "16",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", out(&o));
    let text = stdout(&o);
    assert!(
        text.contains("undecided: -: the witness requests of `orders:DeleteOrder` for `arn:aws:sts::444444444444:assumed-role/ci-deployer/compare`, its sessions included, exceed the bound (16)"),
        "{text}"
    );
}

#[test]
fn a_grant_under_a_session_tag_or_a_source_identity_is_new_access_for_such_a_session() {
    let tmp = tempfile::tempdir().unwrap();
    let report = delete_orders_when(
        &tmp.path().join("tag"),
        serde_json::json!({"StringEquals": {"aws:PrincipalTag/team": "ops"}}),
    );
    let session = check_session_counterexample(&report, &["--session-tag team=ops"]);
    assert_eq!(session["tags"], serde_json::json!([["team", "ops"]]));

    let report = delete_orders_when(
        &tmp.path().join("si"),
        serde_json::json!({"StringLike": {"aws:SourceIdentity": "release-*"}}),
    );
    let session = check_session_counterexample(&report, &["--source-identity release-"]);
    assert!(
        session["source_identity"]
            .as_str()
            .unwrap()
            .starts_with("release-"),
        "{session}"
    );

    // Sessions issued after a date.
    let report = delete_orders_when(
        &tmp.path().join("issued"),
        serde_json::json!({"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}),
    );
    check_session_counterexample(&report, &[]);
}

#[test]
fn a_web_identity_key_change_is_never_a_pass() {
    let tmp = tempfile::tempdir().unwrap();
    // `demo.warden.invalid` is the example's OIDC provider: its token keys are the
    // server's for a web identity session, which the comparison does not model.
    let report = delete_orders_when(
        &tmp.path().join("org"),
        serde_json::json!({"StringEquals": {"demo.warden.invalid:sub": "ci"}}),
    );
    assert_ne!(report["verdict"], "PASS", "{report}");
    assert_eq!(report["verdict"], "UNKNOWN", "{report}");
    let unknowns = report["unknowns"].as_array().unwrap();
    assert!(
        unknowns.iter().any(|u| u["place"]
            .as_str()
            .unwrap()
            .contains("ci-deployer/inline/DeleteWhen Statement[0]")
            && u["feature"]
                .as_str()
                .unwrap()
                .contains("`demo.warden.invalid:sub`, a web identity session's key")),
        "{report}"
    );
}

#[test]
fn a_grant_to_a_session_itself_is_new_access_for_its_sessions_under_a_session_policy() {
    // Developer may already update orders; NEW grants one of its sessions by its own ARN
    // too, which no session policy caps: a session of it capped to nothing gains access.
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("org");
    example_with(
        &new,
        "accounts/555555555555/resources/shared-orders.json",
        |t| {
            let mut r: Value = serde_json::from_str(t).unwrap();
            r["policy"]["Statement"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "Sid": "AliceUpdates",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:sts::555555555555:assumed-role/Developer/alice"},
                    "Action": "orders:UpdateOrder",
                    "Resource": "arn:aws:orders:us-east-1:555555555555:order/shared/*"
                }));
            serde_json::to_string_pretty(&r).unwrap()
        },
    );
    let o = warden(&[
        "compare",
        "examples/org",
        new.to_str().unwrap(),
        "--check",
        "no-new-access",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cx = &report["counterexamples"][0];
    let request = &cx["counterexample"]["request"];
    assert_eq!(
        request["principal"],
        "arn:aws:sts::555555555555:assumed-role/Developer/alice"
    );
    assert_eq!(request["session"]["capped"], true, "{report}");
    let commands: Vec<&str> = cx["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        commands[0].contains(" --session-policy '"),
        "{}",
        commands[0]
    );
    let old_run = shell(commands[0]);
    assert_eq!(old_run.status.code(), Some(1), "{}", out(&old_run));
    assert!(
        stdout(&old_run).starts_with("ImplicitDeny (session_policy_no_allow)"),
        "{}",
        out(&old_run)
    );
    let new_run = shell(commands[1]);
    assert_eq!(new_run.status.code(), Some(0), "{}", out(&new_run));
    assert!(
        stdout(&new_run).contains("Sid AliceUpdates"),
        "{}",
        out(&new_run)
    );
}
