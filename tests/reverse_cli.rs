//! `warden who-can`, `what-can` and `can-any` through the real binary against the example
//! organization: the human output names each item and why, `--json` pages carry a cursor
//! that continues them, and `--all` is every page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

fn warden(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .arg("--bundle")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/org"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const PROD_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/1";
const SHARED_ORDER: &str = "arn:aws:orders:us-east-1:555555555555:order/shared/7";

#[test]
fn who_can_names_break_glass_and_who_may_become_it() {
    let (code, out, err) = warden(&[
        "who-can",
        "--action",
        "orders:DeleteOrder",
        "--resource",
        PROD_ORDER,
        "--assume-with-mfa",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "arn:aws:sts::555555555555:assumed-role/BreakGlass/warden-who-can (role, identity_allow)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("Allow: identity arn:aws:iam::aws:policy/AdministratorAccess Sid AdministratorAccess [role]"),
        "{out}"
    );
    assert!(
        out.contains("may be assumed by arn:aws:iam::222222222222:root via arn:aws:iam::555555555555:role/BreakGlass"),
        "{out}"
    );
    assert!(out.ends_with("complete at revision 1\n"), "{out}");
}

#[test]
fn json_pages_continue_with_their_cursor_and_equal_all() {
    let args = [
        "who-can",
        "--action",
        "orders:GetOrder",
        "--resource",
        SHARED_ORDER,
        "--json",
    ];
    let (code, all, err) = warden(&[&args[..], &["--all"]].concat());
    assert_eq!(code, 0, "{err}");
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["complete"], true);
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut a = args.to_vec();
        a.extend(["--page-size", "4"]);
        if let Some(c) = &cursor {
            a.extend(["--cursor", c.as_str()]);
        }
        let (code, out, err) = warden(&a);
        assert_eq!(code, 0, "{err}");
        let page: serde_json::Value = serde_json::from_str(&out).unwrap();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(page["complete"], false);
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(&items, all["items"].as_array().unwrap());
    assert_eq!(items.len(), 9);
    // A cursor of another query is refused, naming why.
    let (code, _, err) = warden(&[
        "who-can",
        "--action",
        "orders:GetOrder",
        "--resource",
        PROD_ORDER,
        "--cursor",
        cursor.as_deref().unwrap_or("AQ"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("cursor: "), "{err}");
}

#[test]
fn what_can_and_can_any_group_and_explain() {
    let (code, out, err) = warden(&[
        "what-can",
        "--principal",
        "arn:aws:iam::333333333333:user/engineering/bob",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("orders Read:\n  orders:GetOrder (identity_allow, exact: witness)\n"),
        "{out}"
    );
    assert!(
        out.contains("pattern arn:aws:orders:us-east-1:555555555555:order/shared/* from resource"),
        "{out}"
    );
    let (code, out, err) = warden(&[
        "can-any",
        "--principal",
        "arn:aws:iam::333333333333:user/engineering/carol",
        "--type",
        "orders:order",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "(no items)\ncomplete at revision 1\n");
    let (code, _, err) = warden(&[
        "can-any",
        "--principal",
        "arn:aws:iam::333333333333:user/engineering/carol",
        "--type",
        "orders:nope",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("resource_type: `orders:nope` is not a resource type of the catalog"),
        "{err}"
    );
}

#[test]
fn an_action_no_split_of_the_resources_decides_is_printed_undecided() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("org");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/org"))
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(
        bundle.join("accounts/333333333333/policies/DavePolicy.json"),
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "orders:GetOrder",
             "Resource": "arn:aws:orders:*:333333333333:order/${aws:ResourceTag/owner}"}
        ]}"#,
    )
    .unwrap();
    std::fs::write(
        bundle.join("accounts/333333333333/users/dave.json"),
        r#"{"path": "/engineering/", "managed_policies": ["DavePolicy"]}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "can-any",
            "--principal",
            "arn:aws:iam::333333333333:user/engineering/dave",
            "--type",
            "orders:order",
            "--all",
            "--bundle",
        ])
        .arg(&bundle)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("(no items)\n"), "{stdout}");
    assert!(
        stdout.contains(
            "undecided: orders:GetOrder: identity arn:aws:iam::333333333333:policy/DavePolicy Statement[0]: a policy variable in `Resource` that reads the resource's own keys\n"
        ),
        "{stdout}"
    );
}
