use super::*;

fn put(path: &str, text: &str) -> Change {
    Change::Put {
        path: path.to_owned(),
        text: text.to_owned(),
    }
}

fn check(changes: &[Change], field: Option<&str>) {
    match (check_changes(changes), field) {
        (Ok(()), None) => {}
        (Err(AdminError::Invalid { field: got, .. }), Some(want)) => assert_eq!(got, want),
        (got, want) => panic!("{changes:?}: {got:?}, expected {want:?}"),
    }
}

#[test]
fn limits_and_paths_are_checked_before_any_work() {
    check(&[put("scps/A.json", "{}")], None);
    check(&[], Some("changes"));
    let many: Vec<Change> = (0..=MAX_CHANGES)
        .map(|i| put(&format!("scps/A{i}.json"), "{}"))
        .collect();
    check(&many, Some("changes"));
    check(
        &[put("scps/A.json", "{}"), put("../organization.json", "{}")],
        Some("changes[1].path"),
    );
    check(
        &[put("accounts/555555555555/users/../../x.json", "{}")],
        Some("changes[0].path"),
    );
    check(&[put("README.md", "")], Some("changes[0].path"));
    check(
        &[
            put("scps/A.json", "{}"),
            Change::Delete {
                path: "scps/A.json".to_owned(),
            },
        ],
        Some("changes[1].path"),
    );
    let big = "x".repeat(usize::try_from(bundle::MAX_FILE_BYTES).unwrap() + 1);
    check(&[put("scps/A.json", &big)], Some("changes[0].put"));
    let mb = "x".repeat(usize::try_from(bundle::MAX_FILE_BYTES).unwrap());
    let total: Vec<Change> = (0..9)
        .map(|i| put(&format!("scps/A{i}.json"), &mb))
        .collect();
    check(&total, Some("changes"));
}

#[test]
fn the_bootstrap_token_verifies_only_itself_and_is_never_shown() {
    let principal = "arn:aws:iam::111111111111:user/warden-admin";
    let token = BootstrapToken::new("  correct-horse-battery-staple\n", principal).unwrap();
    assert!(token.verifies("correct-horse-battery-staple"));
    assert!(!token.verifies("correct-horse-battery-stapl"));
    assert!(!token.verifies("correct-horse-battery-staple "));
    assert!(!token.verifies(""));
    assert!(!format!("{token:?}").contains("horse"));
    let presented = Credentials::Bearer("correct-horse-battery-staple".to_owned());
    assert_eq!(format!("{presented:?}"), "Bearer(..)");
    assert!(BootstrapToken::new("short", principal).is_err());
    assert!(BootstrapToken::new("correct-horse-battery-staple", "warden-admin").is_err());
}
