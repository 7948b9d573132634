//! The real `warden` binary: `keyring init|rotate|retire|list`, `keys
//! create|list|deactivate|activate|delete` and `mfa enable|code`, on files in a temporary
//! directory, with the exact exit codes and what is (and is not) printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use warden::sts::keyring::KeyRing;
use warden::sts::secrets::SecretsStore;

const ALICE: &str = "arn:aws:iam::333333333333:user/alice";

/// A key ring and a store path in a fresh directory, passed by environment as a
/// deployment would.
struct Files {
    _dir: tempfile::TempDir,
    ring: PathBuf,
    store: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        Files {
            ring: dir.path().join("ring.json"),
            store: dir.path().join("secrets.json"),
            _dir: dir,
        }
    }

    /// Runs `warden ARGS` with `WARDEN_KEY_RING` and `WARDEN_SECRETS` set.
    fn warden(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("WARDEN_KEY_RING", &self.ring)
            .env("WARDEN_SECRETS", &self.store)
            .stdin(Stdio::null())
            .output()
            .expect("the warden binary starts")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.warden(args);
        check_exit(&out, 0);
        stdout(&out)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.warden(args);
        check_exit(&out, 2);
        assert_eq!(stdout(&out), "", "nothing on standard output");
        stderr(&out)
    }

    fn ring(&self) -> KeyRing {
        KeyRing::load(&self.ring).unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[track_caller]
fn check_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o777
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("`{text}` is not JSON: {e}"))
}

#[test]
fn keyring_init_rotate_retire_and_list() {
    let f = Files::new();
    let out = f.ok(&["keyring", "init"]);
    assert!(out.starts_with("created the key ring"), "{out}");
    assert_eq!(mode(&f.ring), 0o600);
    let first = f.ring().sealing_key().unwrap().id().to_owned();
    let e = f.fails(&["keyring", "init"]);
    assert!(e.contains("exists already"), "{e}");

    f.ok(&["keyring", "rotate"]);
    let second = f.ring().sealing_key().unwrap().id().to_owned();
    assert_ne!(first, second);
    let list = f.ok(&["keyring", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with(&first) && lines[0].ends_with("\tactive"),
        "{list}"
    );
    assert!(
        lines[1].starts_with(&second) && lines[1].ends_with("\tsealing"),
        "{list}"
    );

    f.ok(&["keyring", "retire", &first]);
    assert!(
        f.ok(&["keyring", "list"])
            .lines()
            .next()
            .unwrap()
            .ends_with("\tretired")
    );
    let e = f.fails(&["keyring", "retire", &second]);
    assert!(e.contains("only key that seals"), "{e}");
    let e = f.fails(&["keyring", "retire", "k-nope"]);
    assert!(e.contains("no key `k-nope`"), "{e}");
    // No secret is ever printed.
    let secret = std::fs::read_to_string(&f.ring).unwrap();
    let secret = json(&secret)["keys"][0]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!f.ok(&["keyring", "list"]).contains(&secret));
}

#[test]
fn keys_create_prints_the_secret_once_and_the_store_keeps_it_sealed() {
    let f = Files::new();
    f.ok(&["keyring", "init"]);
    let created = json(&f.ok(&["keys", "create", "--user", ALICE]));
    let key = &created["AccessKey"];
    assert_eq!(key["UserName"], "alice");
    assert_eq!(key["Status"], "Active");
    let id = key["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = key["SecretAccessKey"].as_str().unwrap().to_owned();
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 40);
    assert_eq!(mode(&f.store), 0o600);
    let on_disk = std::fs::read_to_string(&f.store).unwrap();
    assert!(
        !on_disk.contains(&secret) && !on_disk.contains(&id),
        "sealed"
    );

    let store = SecretsStore::load(&f.store, &f.ring()).unwrap();
    assert_eq!(store.active_key(&id).unwrap().secret(), secret);

    let list = f.ok(&["keys", "list", "--user", ALICE]);
    assert!(!list.contains(&secret), "{list}");
    let list = json(&list);
    assert_eq!(list["AccessKeyMetadata"][0]["AccessKeyId"], id.as_str());
    assert!(
        list["AccessKeyMetadata"][0]
            .get("SecretAccessKey")
            .is_none()
    );

    // Two keys per user at most.
    f.ok(&["keys", "create", "--user", ALICE]);
    let e = f.fails(&["keys", "create", "--user", ALICE]);
    assert!(e.contains("has 2 access keys already"), "{e}");

    f.ok(&["keys", "deactivate", "--user", ALICE, "--key", &id]);
    let store = SecretsStore::load(&f.store, &f.ring()).unwrap();
    assert!(store.active_key(&id).is_err());
    assert!(!store.key(&id).unwrap().is_active());
    let list = json(&f.ok(&["keys", "list"]));
    let status: Vec<&str> = list["AccessKeyMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["AccessKeyId"] == id.as_str())
        .map(|k| k["Status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["Inactive"]);
    f.ok(&["keys", "activate", "--user", ALICE, "--key", &id]);
    assert!(
        SecretsStore::load(&f.store, &f.ring())
            .unwrap()
            .active_key(&id)
            .is_ok()
    );

    let bob = "arn:aws:iam::333333333333:user/bob";
    let e = f.fails(&["keys", "delete", "--user", bob, "--key", &id]);
    assert!(e.contains("has no access key"), "{e}");
    f.ok(&["keys", "delete", "--user", ALICE, "--key", &id]);
    assert!(
        SecretsStore::load(&f.store, &f.ring())
            .unwrap()
            .key(&id)
            .is_none()
    );

    let e = f.fails(&[
        "keys",
        "create",
        "--user",
        "arn:aws:iam::333333333333:role/R",
    ]);
    assert!(e.contains("not an IAM user ARN"), "{e}");
}

#[test]
fn keys_create_checks_the_user_in_a_bundle_when_given() {
    let f = Files::new();
    f.ok(&["keyring", "init"]);
    let e = f.fails(&[
        "keys",
        "create",
        "--user",
        "arn:aws:iam::333333333333:user/nobody",
        "--bundle",
        "examples/org",
    ]);
    assert!(e.contains("has no user"), "{e}");
    // A user with a path: its ARN includes the path.
    let e = f.fails(&[
        "keys",
        "create",
        "--user",
        ALICE,
        "--bundle",
        "examples/org",
    ]);
    assert!(
        e.contains("did you mean `arn:aws:iam::333333333333:user/engineering/alice`?"),
        "{e}"
    );
    let alice = "arn:aws:iam::333333333333:user/engineering/alice";
    let created = json(&f.ok(&[
        "keys",
        "create",
        "--user",
        alice,
        "--bundle",
        "examples/org",
    ]));
    assert_eq!(created["AccessKey"]["UserName"], "alice");
}

#[test]
fn rotating_and_retiring_re_seal_the_store() {
    let f = Files::new();
    f.ok(&["keyring", "init"]);
    let first = f.ring().sealing_key().unwrap().id().to_owned();
    let created = json(&f.ok(&["keys", "create", "--user", ALICE]));
    let id = created["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    f.ok(&["keyring", "rotate"]);
    f.ok(&["keyring", "retire", &first]);
    let store = SecretsStore::load(&f.store, &f.ring()).unwrap();
    assert!(store.active_key(&id).is_ok());
}

#[test]
fn a_store_that_does_not_open_is_a_clear_error() {
    let f = Files::new();
    f.ok(&["keyring", "init"]);
    f.ok(&["keys", "create", "--user", ALICE]);
    // Another ring in place of the one that sealed the store.
    std::fs::remove_file(&f.ring).unwrap();
    f.ok(&["keyring", "init"]);
    let e = f.fails(&["keys", "list"]);
    assert!(
        e.contains("secrets.json") && e.contains("does not hold"),
        "{e}"
    );
    // An altered store.
    std::fs::write(&f.store, "{\"format\":\"warden-secrets\"}").unwrap();
    let e = f.fails(&["keys", "list"]);
    assert!(e.contains("not a secrets store"), "{e}");
    // A missing ring.
    std::fs::remove_file(&f.ring).unwrap();
    let e = f.fails(&["keys", "list"]);
    assert!(e.contains("ring.json") && e.contains("cannot open"), "{e}");
}

#[test]
fn mfa_enable_prints_the_device_once_and_mfa_code_makes_its_codes() {
    let f = Files::new();
    f.ok(&["keyring", "init"]);
    let enabled = json(&f.ok(&["mfa", "enable", "--user", ALICE, "--name", "alice-phone"]));
    let device = &enabled["VirtualMFADevice"];
    assert_eq!(
        device["SerialNumber"],
        "arn:aws:iam::333333333333:mfa/alice-phone"
    );
    let seed = device["Base32StringSeed"].as_str().unwrap();
    assert_eq!(seed.len(), 32, "160 bits in base32");
    let uri = device["OtpauthURI"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(seed),
        "{uri}"
    );
    assert!(!std::fs::read_to_string(&f.store).unwrap().contains(seed));
    let e = f.fails(&["mfa", "enable", "--user", ALICE, "--name", "alice-phone"]);
    assert!(e.contains("exists already"), "{e}");

    // RFC 6238's SHA-1 secret, `12345678901234567890`, at T = 59 and 1111111109.
    let rfc = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(
        f.ok(&["mfa", "code", "--secret", rfc, "--at", "59"]),
        "287082\n"
    );
    assert_eq!(
        f.ok(&[
            "mfa",
            "code",
            "--secret",
            &rfc.to_lowercase(),
            "--at",
            "1111111109"
        ]),
        "081804\n"
    );
    let code = f.ok(&["mfa", "code", "--secret", seed]);
    assert!(code.trim().len() == 6 && code.trim().bytes().all(|b| b.is_ascii_digit()));
    let e = f.fails(&["mfa", "code", "--secret", "not base32!"]);
    assert!(e.contains("not a base32 secret"), "{e}");
}
