//! `warden authorize`'s offline session flags through the real binary: MFA, session tags,
//! a source identity, the issue time and a session policy decide as a verified session's
//! would; bad values are refused naming the flag; `--case` carries the session's keys;
//! `warden check` has no way to assert a session.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the warden binary starts")
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

const ERIN: &str = "arn:aws:iam::222222222222:user/audit/erin";
const AUDITOR: &str = "arn:aws:iam::555555555555:role/Auditor";
const DEVELOPER: &str = "arn:aws:sts::555555555555:assumed-role/Developer/dev";

/// `warden authorize` on the example with `extra` flags.
fn authorize(principal: &str, action: &str, resource: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "authorize",
        "--principal",
        principal,
        "--action",
        action,
        "--resource",
        resource,
    ];
    args.extend_from_slice(extra);
    warden(&args)
}

#[test]
fn an_mfa_session_may_do_what_an_asserted_principal_may_not() {
    // Auditor's trust requires MFA: erin asserted carries none...
    let o = authorize(ERIN, "sts:AssumeRole", AUDITOR, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    // ...nor does her session without it...
    let o = authorize(
        ERIN,
        "sts:AssumeRole",
        AUDITOR,
        &["--issued-at", "2026-01-01T00:00:00Z"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    // ...and her session with MFA may.
    let o = authorize(ERIN, "sts:AssumeRole", AUDITOR, &["--mfa-age", "60"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(stdout(&o).starts_with("Allow"), "{}", out(&o));
}

#[test]
fn session_facts_are_the_keys_the_case_is_evaluated_with() {
    let o = authorize(
        DEVELOPER,
        "orders:UpdateOrder",
        "arn:aws:orders:us-east-1:555555555555:order/1",
        &[
            "--mfa-age",
            "90",
            "--session-tag",
            "team=ops",
            "--source-identity",
            "alice@example.com",
            "--issued-at",
            "2026-11-30T10:00:00Z",
            "--case",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let case: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ctx = &case["request"]["context"];
    assert_eq!(ctx["aws:multifactorauthpresent"], "true");
    assert_eq!(ctx["aws:multifactorauthage"], "90");
    assert_eq!(ctx["aws:principaltag/team"], "ops");
    assert_eq!(ctx["aws:sourceidentity"], "alice@example.com");
    assert_eq!(ctx["aws:tokenissuetime"], "2026-11-30T10:00:00Z");

    // A value may start with `-`, as STS allows it (and as a comparison may print it).
    let o = authorize(
        DEVELOPER,
        "orders:UpdateOrder",
        "arn:aws:orders:us-east-1:555555555555:order/1",
        &[
            "--source-identity",
            "-ci",
            "--session-tag",
            "-k=-v",
            "--case",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let case: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(case["request"]["context"]["aws:sourceidentity"], "-ci");
    assert_eq!(case["request"]["context"]["aws:principaltag/-k"], "-v");

    // Without a session: none of them.
    let o = authorize(
        DEVELOPER,
        "orders:UpdateOrder",
        "arn:aws:orders:us-east-1:555555555555:order/1",
        &["--case"],
    );
    let case: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ctx = case["request"]["context"].as_object().unwrap();
    for k in ["aws:multifactorauthpresent", "aws:tokenissuetime"] {
        assert!(!ctx.contains_key(k), "{ctx:?}");
    }
}

#[test]
fn a_session_policy_caps_the_session_and_the_case_holds_it() {
    const NOTHING: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"*","Resource":"*"}]}"#;
    let resource = "arn:aws:orders:us-east-1:555555555555:order/1";
    let o = authorize(DEVELOPER, "orders:UpdateOrder", resource, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = authorize(
        DEVELOPER,
        "orders:UpdateOrder",
        resource,
        &["--session-policy", NOTHING],
    );
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        stdout(&o).starts_with("ImplicitDeny (session_policy_no_allow)"),
        "{}",
        out(&o)
    );
    // The case carries the session policy; `warden eval` decides it alike.
    let o = authorize(
        DEVELOPER,
        "orders:UpdateOrder",
        resource,
        &["--session-policy", NOTHING, "--case"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let line = stdout(&o);
    let case: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        case["session_policy"],
        serde_json::from_str::<Value>(NOTHING).unwrap()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("eval")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let answer: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(answer["decision"], "ImplicitDeny", "{answer}");
}

#[test]
fn bad_session_flags_are_refused_naming_the_flag() {
    let long_tag = format!("{}=v", "k".repeat(129));
    let many: Vec<String> = (0..51).map(|i| format!("k{i}=v")).collect();
    let mut many_tags: Vec<&str> = Vec::new();
    for t in &many {
        many_tags.extend(["--session-tag", t]);
    }
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["--mfa-age", "-1"], DEVELOPER, "--mfa-age"),
        (vec!["--mfa-age", "soon"], DEVELOPER, "--mfa-age"),
        (
            vec!["--session-tag", "team"],
            DEVELOPER,
            "`--session-tag`: expected `KEY=VALUE`",
        ),
        (
            vec!["--session-tag", "team=a#b"],
            DEVELOPER,
            "`--session-tag`:",
        ),
        (
            vec!["--session-tag", &long_tag],
            DEVELOPER,
            "`--session-tag`:",
        ),
        (
            vec!["--session-tag", "team=a", "--session-tag", "TEAM=b"],
            DEVELOPER,
            "`--session-tag`: Duplicate tag keys",
        ),
        (many_tags, DEVELOPER, "`--session-tag`:"),
        (
            vec!["--source-identity", "a"],
            DEVELOPER,
            "`--source-identity`:",
        ),
        (
            vec!["--source-identity", "al ice"],
            DEVELOPER,
            "`--source-identity`:",
        ),
        (
            vec!["--issued-at", "yesterday"],
            DEVELOPER,
            "`--issued-at`: `yesterday` is not an RFC 3339 time",
        ),
        (
            vec!["--issued-at", "2999-01-01T00:00:00Z"],
            DEVELOPER,
            "`--issued-at`: `2999-01-01T00:00:00Z` is in the future",
        ),
        (
            vec!["--session-policy", "{"],
            DEVELOPER,
            "`--session-policy`:",
        ),
        (
            vec!["--session-tag", "team=a"],
            ERIN,
            "`--session-tag`: a user's session (`GetSessionToken`) carries MFA and its issue time only",
        ),
        (
            vec!["--mfa-age", "5"],
            "arn:aws:iam::555555555555:root",
            "`--mfa-age`: only a user or a role session holds a session",
        ),
    ];
    for (flags, principal, message) in cases {
        let o = authorize(principal, "orders:GetOrder", "*", &flags);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", out(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(message), "{flags:?}: {err}");
    }
}

#[test]
fn warden_check_cannot_assert_a_session() {
    for flag in [
        "--mfa-age",
        "--session-tag",
        "--source-identity",
        "--issued-at",
        "--session-policy",
    ] {
        let o = warden(&[
            "check",
            "--principal",
            DEVELOPER,
            "--action",
            "orders:GetOrder",
            "--resource",
            "*",
            flag,
            "x",
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", out(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("unexpected argument '{flag}'")),
            "{err}"
        );
    }
}
