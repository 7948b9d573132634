//! Tests of reading a bundle directory: what is read, what is skipped, and that devices,
//! FIFOs, link loops and huge files end in a finding naming the file.

use std::fs::File;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use super::*;

/// Long enough for any healthy read on a loaded machine; a read that blocks fails the test
/// at this point instead of hanging the suite.
const BOUND: Duration = Duration::from_secs(20);

/// The smallest organization the loader accepts: one account, its management account.
const ORG: &str = r#"{"id": "o-exampleorg1", "management_account": "111111111111",
 "root": {"id": "r-root", "accounts": [{"id": "111111111111"}]}}"#;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The read's findings as `(file, code)`, read on a bounded thread.
fn findings(dir: &Path) -> Vec<(String, &'static str)> {
    match read_within(dir, BOUND) {
        Ok(files) => panic!("no findings; read {:?}", files.keys()),
        Err(e) => e
            .findings
            .iter()
            .map(|f| (f.file.clone(), f.finding.code))
            .collect(),
    }
}

/// Asserts that reading `dir` reports `code` for `file` with a message containing `says`.
#[track_caller]
fn check(dir: &Path, file: &str, code: &str, says: &str) {
    let e = read_within(dir, BOUND).unwrap_err();
    let Some(f) = e
        .findings
        .iter()
        .find(|f| f.file == file && f.finding.code == code)
    else {
        panic!("no `{code}` for `{file}`: {e}");
    };
    assert!(f.finding.message.contains(says), "{f}");
    assert_eq!(
        f.finding.pos,
        Pos::default(),
        "a finding about the whole file"
    );
}

#[test]
fn a_missing_directory_or_a_file_is_one_finding_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let e = read(&missing).unwrap_err();
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].file, "");
    assert_eq!(e.findings[0].finding.code, "not-found");
    assert!(e.is_about_the_bundle());
    assert_eq!(
        e.to_string(),
        format!("bundle directory `{}` does not exist", missing.display())
    );

    write(tmp.path(), "file.json", "{}");
    let e = read(&tmp.path().join("file.json")).unwrap_err();
    assert_eq!(e.findings[0].finding.code, "not-a-directory");
    assert!(
        e.to_string().contains("file.json` is not a directory"),
        "{e}"
    );
}

#[test]
fn a_fifo_is_refused_without_being_opened_for_reading() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "organization.json", ORG);
    fs::create_dir_all(tmp.path().join("policies")).unwrap();
    mkfifo(&tmp.path().join("policies/Pipe.json"));
    // A blocking open waits for a writer forever; the bound turns that into a failure.
    check(
        tmp.path(),
        "policies/Pipe.json",
        "not-a-regular-file",
        "a FIFO",
    );
    assert_eq!(findings(tmp.path()).len(), 1);
}

#[test]
fn a_fifo_swapped_in_after_the_check_is_refused_once_open() {
    // `read_file` is what runs after the directory walk has seen a regular file: it must not
    // trust that check, only what the open handle is.
    let tmp = tempfile::tempdir().unwrap();
    let pipe = tmp.path().join("Pipe.json");
    mkfifo(&pipe);
    let owned = pipe.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(read_file(&owned)));
    let got = rx.recv_timeout(BOUND).expect("reading a FIFO blocked");
    assert_eq!(got.unwrap_err().code, "not-a-regular-file");
}

#[test]
fn devices_are_refused_also_through_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "organization.json", ORG);
    symlink("/dev/zero", tmp.path().join("zero.json")).unwrap();
    symlink("/dev/null", tmp.path().join("null.json")).unwrap();
    check(
        tmp.path(),
        "zero.json",
        "not-a-regular-file",
        "a character device",
    );
    check(
        tmp.path(),
        "null.json",
        "not-a-regular-file",
        "a character device",
    );
}

#[test]
fn a_file_over_the_limit_is_refused_by_its_size_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "organization.json", ORG);
    // Sparse: 2 GiB that take no disk, and would take 2 GiB of memory if read.
    let big = File::create(tmp.path().join("big.json")).unwrap();
    big.set_len(2 << 30).unwrap();
    check(tmp.path(), "big.json", "file-too-large", "2147483648 bytes");
    write(
        tmp.path(),
        "big.json",
        &" ".repeat(MAX_FILE_BYTES as usize + 1),
    );
    check(tmp.path(), "big.json", "file-too-large", "1048577 bytes");
    write(tmp.path(), "big.json", &" ".repeat(MAX_FILE_BYTES as usize));
    let files = read(tmp.path()).unwrap();
    assert_eq!(files["big.json"].len(), MAX_FILE_BYTES as usize);
}

/// A reader that fails when read: a file whose claimed size is over the limit must not be.
struct Unread;

impl Read for Unread {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("read although refused by its size"))
    }
}

#[test]
fn reading_stops_one_byte_past_the_limit() {
    // A file that claims no size and never ends, as `/proc` files and devices do.
    let e = read_limited(std::io::repeat(b'x'), 0, 100).unwrap_err();
    assert_eq!(e.code, "file-too-large");
    assert_eq!(
        e.message,
        "more than 100 bytes; a bundle file may have at most 100 bytes"
    );
    // A file that grew past its claimed size while read.
    let e = read_limited(std::io::repeat(b'x'), 10, 100).unwrap_err();
    assert_eq!(e.code, "file-too-large");
    let exact = read_limited(std::io::repeat(b'x').take(100), 0, 100).unwrap();
    assert_eq!(exact.len(), 100);

    let e = read_limited(Unread, 101, 100).unwrap_err();
    assert_eq!(e.code, "file-too-large");
    let e = read_limited(Unread, 1, 100).unwrap_err();
    assert_eq!(e.code, "unreadable");
    assert!(e.message.contains("read although refused"), "{}", e.message);
}

#[test]
fn symlink_loops_end_with_a_finding_naming_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bundle");
    write(&root, "organization.json", ORG);
    write(&root, "accounts/111111111111/account.json", "{}");
    symlink(".", root.join("a")).unwrap();
    symlink(".", root.join("b")).unwrap();
    symlink("..", root.join("up")).unwrap();
    // Deeper: a link to an ancestor two levels up.
    symlink("../..", root.join("accounts/111111111111/back")).unwrap();
    // Links to each other: never a file or a directory.
    symlink("y.json", root.join("x.json")).unwrap();
    symlink("x.json", root.join("y.json")).unwrap();
    let got = findings(&root);
    assert_eq!(
        got,
        vec![
            ("a".to_owned(), "symlink-loop"),
            ("accounts/111111111111/back".to_owned(), "symlink-loop"),
            ("b".to_owned(), "symlink-loop"),
            ("up".to_owned(), "symlink-loop"),
            ("x.json".to_owned(), "symlink-loop"),
            ("y.json".to_owned(), "symlink-loop"),
        ]
    );
    check(&root, "a", "symlink-loop", "a symlink to `.`");
    check(&root, "up", "symlink-loop", "a symlink to `..`");
}

#[test]
fn a_directory_linked_twice_but_not_inside_itself_is_read_twice() {
    // Not a loop: two names for one directory. Each name is its own place in the layout.
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "shared/Readers.json", "{}");
    fs::create_dir_all(tmp.path().join("one")).unwrap();
    symlink("../shared", tmp.path().join("one/policies")).unwrap();
    symlink("shared", tmp.path().join("two")).unwrap();
    let files = read_within(tmp.path(), BOUND).unwrap();
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "one/policies/Readers.json",
            "shared/Readers.json",
            "two/Readers.json"
        ]
    );
}

#[test]
fn depth_and_entries_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a/b/c/d.json", "{}");
    let limits = |depth, entries| Limits {
        depth,
        entries,
        bytes: MAX_BUNDLE_BYTES,
    };
    assert!(read_with(tmp.path(), limits(3, 10)).is_ok());
    let e = read_with(tmp.path(), limits(2, 10)).unwrap_err();
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].file, "a/b/c");
    assert_eq!(e.findings[0].finding.code, "nested-too-deep");

    let e = read_with(tmp.path(), limits(3, 3)).unwrap_err();
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].file, "", "about the bundle as a whole");
    assert_eq!(e.findings[0].finding.code, "too-many-files");
    assert!(e.findings[0].finding.message.contains("`a/b/c/d.json`"));
}

#[test]
fn the_files_of_a_bundle_are_bounded_together() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["a.json", "b.json", "c.json"] {
        write(tmp.path(), name, &"x".repeat(40));
    }
    let limits = |bytes| Limits {
        depth: MAX_DEPTH,
        entries: MAX_ENTRIES,
        bytes,
    };
    assert_eq!(read_with(tmp.path(), limits(120)).unwrap().len(), 3);
    // The third file would pass the limit: it is not read, and the walk stops there.
    let e = read_with(tmp.path(), limits(100)).unwrap_err();
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].file, "c.json");
    assert_eq!(e.findings[0].finding.code, "bundle-too-large");
}

#[test]
fn links_to_files_outside_the_bundle_are_followed() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "elsewhere/org.json", ORG);
    let root = tmp.path().join("bundle");
    fs::create_dir_all(&root).unwrap();
    symlink(
        tmp.path().join("elsewhere/org.json"),
        root.join("organization.json"),
    )
    .unwrap();
    let files = read_within(&root, BOUND).unwrap();
    assert_eq!(
        files.get("organization.json").map(String::as_str),
        Some(ORG)
    );
}

#[test]
fn hidden_entries_and_swap_files_are_not_bundle_content() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "organization.json", ORG);
    write(tmp.path(), ".git/config.json", "not json");
    write(tmp.path(), "organization.json~", "not json");
    write(tmp.path(), "scps/.Deny.json.swp", "not json");
    write(tmp.path(), "scps/Deny.json.swp", "not json");
    write(tmp.path(), "real/x.json", "{}");
    // Hidden through a link too: the link's own name decides.
    symlink("real", tmp.path().join(".hidden")).unwrap();
    symlink("real/x.json", tmp.path().join(".x.json")).unwrap();
    let files = read_within(tmp.path(), BOUND).unwrap();
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["organization.json", "real/x.json"]);
}

#[test]
fn non_utf8_files_and_broken_links_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "organization.json", ORG);
    fs::create_dir_all(tmp.path().join("scps")).unwrap();
    fs::write(
        tmp.path().join("scps/Latin1.json"),
        b"{\"Sid\": \"caf\xe9\"}",
    )
    .unwrap();
    symlink("Gone.json", tmp.path().join("scps/Link.json")).unwrap();
    check(
        tmp.path(),
        "scps/Latin1.json",
        "invalid-encoding",
        "not UTF-8 (invalid byte at offset 12)",
    );
    check(
        tmp.path(),
        "scps/Link.json",
        "broken-link",
        "a symlink to `Gone.json`, which does not exist",
    );
}

/// The volume Kubernetes mounts for a ConfigMap or a projected volume: the data lives in
/// a timestamped hidden directory, `..data` links to it, and every visible entry links
/// through `..data`. An update writes a new timestamped directory and renames a new
/// `..data_tmp` link over `..data`, so readers see the old files or the new, never a mix.
struct Volume {
    root: tempfile::TempDir,
}

impl Volume {
    fn new(files: &[(&str, &str)]) -> Volume {
        let root = tempfile::tempdir().unwrap();
        let v = Volume { root };
        v.publish("..2026_12_02_01_00_00.123", files);
        for top in ["organization.json", "accounts", "scps"] {
            symlink(format!("..data/{top}"), v.root.path().join(top)).unwrap();
        }
        v
    }

    /// Writes `files` into a new timestamped directory and swaps `..data` to it at once.
    fn publish(&self, stamp: &str, files: &[(&str, &str)]) {
        for (rel, text) in files {
            write(&self.root.path().join(stamp), rel, text);
        }
        let tmp = self.root.path().join("..data_tmp");
        symlink(stamp, &tmp).unwrap();
        fs::rename(&tmp, self.root.path().join("..data")).unwrap();
    }
}

#[test]
fn the_kubernetes_volume_layout_loads_each_document_once_and_follows_a_swap() {
    let user = "accounts/111111111111/users/alice.json";
    let scp = "scps/DenyDeletes.json";
    let deny = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:DeleteUser", "Resource": "*"}]}"#;
    let v = Volume::new(&[
        ("organization.json", ORG),
        (user, r#"{"path": "/first/"}"#),
        (scp, deny),
    ]);
    let files = read_within(v.root.path(), BOUND).unwrap();
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "accounts/111111111111/users/alice.json",
            "organization.json",
            scp
        ]
    );
    let b = super::super::load_files(&files).unwrap();
    assert_eq!(b.accounts["111111111111"].users[0].path, "/first/");

    v.publish(
        "..2026_12_02_01_05_00.456",
        &[
            ("organization.json", ORG),
            (user, r#"{"path": "/second/"}"#),
            ("accounts/111111111111/users/bob.json", "{}"),
            (scp, deny),
        ],
    );
    // The old directory is still there (the kubelet removes it later): it is hidden, so
    // it is not read a second time.
    let b = super::super::load_dir(v.root.path()).unwrap();
    let users: Vec<(&str, &str)> = b.accounts["111111111111"]
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.path.as_str()))
        .collect();
    assert_eq!(users, [("alice", "/second/"), ("bob", "/")]);
}

#[test]
fn a_read_that_hangs_is_given_up_with_a_finding() {
    let (release, blocked) = mpsc::channel::<()>();
    let e = within(
        Duration::from_millis(50),
        Path::new("/nfs/bundle"),
        move || {
            // Stands in for a read stuck in the kernel: it returns only when the test ends.
            let _ = blocked.recv();
            Ok(BTreeMap::new())
        },
    )
    .unwrap_err();
    drop(release);
    assert!(e.is_about_the_bundle());
    assert_eq!(e.findings[0].finding.code, "read-timeout");
    assert_eq!(
        e.to_string(),
        "bundle directory `/nfs/bundle` was not read within 0.05 s (a hung file system?)"
    );
}

#[test]
fn a_name_with_a_control_character_is_refused_and_shown_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "organization.json", ORG);
    let forged = "x\n2026-12-02T00:00:00Z  INFO warden::source: snapshot published.json";
    write(tmp.path(), &format!("scps/{forged}"), "{}");
    let e = read_within(tmp.path(), BOUND).unwrap_err();
    assert_eq!(e.findings.len(), 1, "{e}");
    assert_eq!(e.findings[0].file, format!("scps/{forged:?}"));
    assert_eq!(e.findings[0].finding.code, "invalid-name");
    let line = e.findings[0].to_string();
    assert!(!line.contains('\n'), "one line: {line}");
}

#[test]
fn skipped_and_refused_names_count_against_the_limit_of_entries() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "organization.json", ORG);
    for n in 0..5 {
        write(tmp.path(), &format!(".hidden{n}"), "{}");
    }
    let limits = Limits {
        depth: MAX_DEPTH,
        entries: 4,
        bytes: MAX_BUNDLE_BYTES,
    };
    let e = read_with(tmp.path(), limits).unwrap_err();
    assert_eq!(e.findings.len(), 1);
    assert_eq!(e.findings[0].finding.code, "too-many-files");
}

#[test]
fn a_bundle_reached_through_a_symlink_is_read_from_the_tree_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "v1/organization.json", ORG);
    write(tmp.path(), "v1/scps/A.json", "{}");
    symlink("v1", tmp.path().join("current")).unwrap();
    let files = read_within(&tmp.path().join("current"), BOUND).unwrap();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["organization.json", "scps/A.json"]
    );
}
