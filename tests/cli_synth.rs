//! `warden synth` run as a binary: it writes a bundle that `warden validate` accepts and
//! requests as JSON Lines, and refuses to write into a directory that has files.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::path::PathBuf;
use std::process::Command;

fn warden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warden"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-synth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn synth_writes_a_valid_bundle_and_requests() {
    let dir = scratch("ok");
    let bundle = dir.join("bundle");
    let requests = dir.join("requests.jsonl");
    let out = warden()
        .args(["synth", "--statements", "250", "--requests", "40", "--out"])
        .arg(&bundle)
        .arg("--requests-out")
        .arg(&requests)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("wrote 250 statements"));

    let v = warden().arg("validate").arg(&bundle).output().unwrap();
    let report = String::from_utf8_lossy(&v.stderr);
    assert!(v.status.success(), "{report}");
    assert!(report.contains("0 error(s), 0 warning(s)"), "{report}");

    let lines = std::fs::read_to_string(&requests).unwrap();
    assert_eq!(lines.lines().count(), 40);
    for line in lines.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["principal", "action", "resource", "context"] {
            assert!(r.get(key).is_some(), "{line}");
        }
    }

    // A second run into the same directory is refused, and changes nothing.
    let again = warden()
        .args(["synth", "--statements", "10", "--out"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn synth_refuses_zero_statements() {
    let dir = scratch("zero");
    let out = warden()
        .args(["synth", "--statements", "0", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1 statement"));
    assert!(!dir.exists());
}
