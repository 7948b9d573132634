//! The real binary on bundles: `warden validate BUNDLE_DIR` and `warden authorize`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a panic is a failed test"
)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run warden")
}

/// Long enough for any healthy run on a loaded machine.
const BOUND: Duration = Duration::from_secs(30);

/// Runs warden and kills it if it has not ended within [`BOUND`]: a read that blocks fails
/// the test instead of hanging the suite.
fn warden_bounded(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run warden");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(BOUND) {
        Ok(out) => out.expect("warden's output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("`warden {}` did not end within {BOUND:?}", args.join(" "));
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `warden authorize` arguments: may the example's admin get any order, in `bundle`.
fn admin_gets_any_order(bundle: &str) -> [&str; 9] {
    [
        "authorize",
        "--bundle",
        bundle,
        "--principal",
        "arn:aws:iam::555555555555:user/admin",
        "--action",
        "orders:GetOrder",
        "--resource",
        "*",
    ]
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
    let o = warden(&admin_gets_any_order(dir.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("organization.json:1:2: error[invalid-json]"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn validate_refuses_a_fifo_instead_of_waiting_on_it() {
    let dir = example_copy("fifo");
    let pipe = dir.join("accounts/555555555555/policies/Pipe.json");
    std::fs::create_dir_all(pipe.parent().unwrap()).unwrap();
    let made = Command::new("mkfifo").arg(&pipe).status().unwrap();
    assert!(made.success());
    let o = warden_bounded(&["validate", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "{}/accounts/555555555555/policies/Pipe.json:file: error[not-a-regular-file] $: a FIFO; a bundle holds regular files (and symlinks to them) only\n",
            dir.display()
        )
    );
    // A policy file named on its own is read the same way.
    let o = warden_bounded(&["validate", "--kind", "identity", pipe.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("Pipe.json:file: error[not-a-regular-file] $: a FIFO"),
        "{}",
        stdout(&o)
    );
    let o = warden_bounded(&admin_gets_any_order(dir.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("error[not-a-regular-file]"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn validate_ends_on_symlink_loops_naming_each_link() {
    let dir = example_copy("loops");
    symlink(".", dir.join("a")).unwrap();
    symlink(".", dir.join("b")).unwrap();
    symlink("..", dir.join("up")).unwrap();
    let o = warden_bounded(&["validate", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, link, target) in [
        (lines[0], "a", "."),
        (lines[1], "b", "."),
        (lines[2], "up", ".."),
    ] {
        assert!(
            line.starts_with(&format!(
                "{}/{link}:file: error[symlink-loop] $: a symlink to `{target}`, which leads back to a directory that holds it",
                dir.display()
            )),
            "{out}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_bundle_directory_is_one_line_naming_it() {
    let missing =
        std::env::temp_dir().join(format!("warden-no-such-bundle-{}", std::process::id()));
    let path = missing.to_str().unwrap();
    let validate = ["validate", path];
    for args in [&validate[..], &admin_gets_any_order(path)[..]] {
        let o = warden_bounded(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(
            stderr(&o),
            format!("warden: bundle directory `{path}` does not exist\n"),
        );
        assert_eq!(stdout(&o), "");
    }
}

#[test]
fn a_bundle_without_organization_json_does_not_lift_the_scps() {
    let admin_deletes = |bundle: &Path| {
        warden_bounded(&[
            "authorize",
            "--bundle",
            bundle.to_str().unwrap(),
            "--principal",
            "arn:aws:iam::555555555555:user/admin",
            "--action",
            "orders:DeleteOrder",
            "--resource",
            "arn:aws:orders:us-east-1:555555555555:order/1",
        ])
    };
    let dir = example_copy("no-org");
    let o = admin_deletes(&dir);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("ExplicitDeny"), "{}", stdout(&o));

    std::fs::remove_file(dir.join("organization.json")).unwrap();
    let o = admin_deletes(&dir);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("organization.json:file: error[missing-organization] $: a bundle needs `organization.json`"),
        "{}",
        stderr(&o)
    );
    let o = warden_bounded(&["validate", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("error[missing-organization]"),
        "{}",
        stdout(&o)
    );

    // An emptied directory is no bundle either.
    let empty = example_copy("emptied");
    std::fs::remove_dir_all(&empty).unwrap();
    std::fs::create_dir(&empty).unwrap();
    let o = warden_bounded(&["validate", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        format!(
            "{}/organization.json:file: error[missing-organization] $: a bundle needs `organization.json`; \
             a standalone account is an organization with one account, its management account (see the README's bundle layout)\n",
            empty.display()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(empty).unwrap();
}

#[test]
fn findings_about_a_whole_file_print_file_instead_of_a_position() {
    let dir = example_copy("whole-file");
    let d = dir.display();
    std::fs::write(dir.join("accounts/333333333333/users/al ice.json"), "{}").unwrap();
    let o = warden_bounded(&["validate", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "{d}/accounts/333333333333/users/al ice.json:file: error[invalid-name] $: `al ice`"
        )),
        "{out}"
    );
    assert!(!out.contains(":0:0:"), "{out}");
    std::fs::remove_file(dir.join("accounts/333333333333/users/al ice.json")).unwrap();

    // A file that cannot be read as text: the files are not loaded, so this is the finding.
    std::fs::write(dir.join("scps/Latin1.json"), b"{\"Sid\": \"caf\xe9\"}").unwrap();
    let o = warden_bounded(&["validate", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert_eq!(
        out,
        format!(
            "{d}/scps/Latin1.json:file: error[invalid-encoding] $: the file is not UTF-8 (invalid byte at offset 12); bundle files are UTF-8 JSON\n"
        )
    );

    // A policy file with a byte-order mark validates clean; one with an error inside keeps
    // its line and column, counted after the mark.
    let policy = dir.join("bom.json");
    std::fs::write(
        &policy,
        "\u{feff}{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"orders:GetOrder\", \"Resource\": \"*\"}]}",
    )
    .unwrap();
    let o = warden_bounded(&["validate", "--kind", "identity", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    std::fs::write(&policy, "\u{feff}{\"Version\": 1}").unwrap();
    let o = warden_bounded(&["validate", "--kind", "identity", policy.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("bom.json:1:13: error["),
        "{}",
        stdout(&o)
    );
    std::fs::remove_dir_all(dir).unwrap();
}
