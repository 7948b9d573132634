//! The real binary on bundles: `warden validate BUNDLE_DIR` and `warden authorize`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run warden")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A copy of the example organization in a fresh temporary directory.
fn example_copy(name: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("warden-bundle-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        &dst,
    );
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

#[test]
fn the_example_bundle_validates_clean() {
    let o = warden(&["validate", "examples/org"]);
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "");
}

#[test]
fn validate_reports_every_finding_with_file_path_and_position() {
    let dir = example_copy("bad");
    std::fs::write(
        dir.join("accounts/333333333333/users/carol.json"),
        "{\n  \"path\": \"/engineering/\",\n  \"groups\": [\"Nobody\"]\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts/333333333333/policies/ReportsReader.json"),
        "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"allow\", \"Action\": \"orders:GetOrder\", \"Resource\": \"*\"}]}",
    )
    .unwrap();
    let o = warden(&["validate", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let d = dir.display();
    assert!(out.contains(&format!("{d}/accounts/333333333333/users/carol.json:3:14: error[unknown-group] $.groups[0]: no group `Nobody` in account `333333333333`")), "{out}");
    assert!(out.contains(&format!("{d}/accounts/333333333333/policies/ReportsReader.json:1:52: error[invalid-effect] $.Statement[0].Effect")), "{out}");
    // The broken policy is reported once, in its own file, not again where bob attaches it.
    assert!(!out.contains("bob.json"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 error(s)"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn authorize_answers_with_reasons_and_exit_status() {
    let o = warden(&[
        "authorize",
        "--bundle",
        "examples/org",
        "--principal",
        "arn:aws:sts::555555555555:assumed-role/Developer/alice",
        "--action",
        "orders:DeleteOrder",
        "--resource",
        "arn:aws:orders:us-east-1:555555555555:order/1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.starts_with("ExplicitDeny (explicit_deny) at revision 1, decision "),
        "{out}"
    );
    assert!(
        out.contains("Deny: scp level 2 ProtectProductionData Sid DenyDestructiveActions"),
        "{out}"
    );

    let o = warden(&[
        "authorize",
        "--principal",
        "arn:aws:iam::333333333333:user/engineering/bob",
        "--action",
        "orders:GetOrder",
        "--resource",
        "arn:aws:orders:us-east-1:555555555555:order/shared/9",
        "--explain",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.starts_with("Allow (cross_account_allow)"), "{out}");
    // Each organization level's allow says which level it is.
    for level in 0..4 {
        assert!(
            out.contains(&format!(
                "Allow: scp level {level} FullAWSAccess Sid FullAWSAccess\n"
            )),
            "{out}"
        );
    }
    assert!(out.contains("resource: Allow"), "{out}");
    assert!(out.contains("Allow arn:aws:orders:us-east-1:555555555555:order/shared/* Sid ReportingReadsShared: matched"), "{out}");
}

#[test]
fn authorize_takes_context_entries_and_refuses_bad_ones() {
    let base = [
        "authorize",
        "--principal",
        "arn:aws:iam::222222222222:user/audit/erin",
        "--action",
        "sts:AssumeRole",
        "--resource",
        "arn:aws:iam::555555555555:role/Auditor",
    ];
    let without = warden(&base);
    assert_eq!(without.status.code(), Some(1));
    // MFA is the server's to say: a caller's claim of it is dropped, offline as served.
    let mut with_mfa = base.to_vec();
    with_mfa.extend(["--context", "aws:MultiFactorAuthPresent=true"]);
    let o = warden(&with_mfa);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // A request attribute reaches the conditions.
    let mut json = base.to_vec();
    json.extend(["--context", "aws:SourceIp=10.0.0.1", "--json"]);
    let o = warden(&json);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reason"], "cross_account_no_resource_allow", "{v}");
    let mut bad = base.to_vec();
    bad.extend(["--context", "no-equals-sign"]);
    let o = warden(&bad);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("context entry `no-equals-sign` is not `key=value`")
    );
}

#[test]
fn authorize_refuses_what_the_server_refuses() {
    let ask = |action: &str, resource: &str| {
        warden(&[
            "authorize",
            "--principal",
            "arn:aws:iam::333333333333:user/engineering/alice",
            "--action",
            action,
            "--resource",
            resource,
        ])
    };
    for (action, resource, message) in [
        (
            "GetOrder",
            "arn:aws:orders:us-east-1:333333333333:order/42",
            "action: `GetOrder` is not `service:Action`",
        ),
        (
            "orders:Get*",
            "arn:aws:orders:us-east-1:333333333333:order/42",
            "action: `orders:Get*` holds a wildcard",
        ),
        (
            "orders:GetOrdr",
            "arn:aws:orders:us-east-1:333333333333:order/42",
            "action: `orders:GetOrdr` is not an action of the catalog",
        ),
        (
            "orders:GetOrder",
            "order/42",
            "resource: `order/42` is neither an ARN",
        ),
    ] {
        let o = ask(action, resource);
        assert_eq!(o.status.code(), Some(2), "{action} {resource}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn authorize_refuses_a_broken_bundle_with_its_findings() {
    let dir = example_copy("broken");
    std::fs::write(dir.join("organization.json"), "{").unwrap();
    let o = warden(&[
        "authorize",
        "--bundle",
        dir.to_str().unwrap(),
        "--principal",
        "arn:aws:iam::555555555555:user/admin",
        "--action",
        "orders:GetOrder",
        "--resource",
        "*",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("organization.json:1:2: error[invalid-json]"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
