//! Reading a bundle never holds more than its size limit of any one file: a sparse 2 GiB
//! file and a link to `/dev/zero` are refused without being read into memory.
//!
//! The capped allocator (`cap`) is this test binary's global allocator and counts every
//! thread's allocations, so the binary holds this one test and nothing runs beside it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test"
)]

use std::alloc::System;
use std::os::unix::fs::symlink;
use std::path::Path;

use cap::Cap;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// What the read may allocate beyond what is already allocated: a few times the largest
/// file it may read (1 MiB), far below the 2 GiB a file could claim.
const HEADROOM: usize = 16 << 20;

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn huge_and_endless_files_are_refused_within_a_bounded_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "organization.json",
        r#"{"id": "o-exampleorg1", "management_account": "111111111111",
 "root": {"id": "r-root", "accounts": [{"id": "111111111111"}]}}"#,
    );
    std::fs::create_dir_all(tmp.path().join("scps")).unwrap();
    // Sparse: 2 GiB that take no disk, and 2 GiB of memory if read.
    let sparse = std::fs::File::create(tmp.path().join("scps/Huge.json")).unwrap();
    sparse.set_len(2 << 30).unwrap();
    symlink("/dev/zero", tmp.path().join("scps/Zero.json")).unwrap();

    // Over the cap, an allocation fails: `std::fs::read` reports it as an error, a growing
    // buffer aborts the binary. Either way this test fails.
    ALLOC.set_limit(ALLOC.allocated() + HEADROOM).unwrap();
    let read = warden::bundle::read_dir(tmp.path());
    ALLOC.set_limit(usize::MAX).unwrap();

    let err = read.unwrap_err();
    let found: Vec<(&str, &str)> = err
        .findings
        .iter()
        .map(|f| (f.file.as_str(), f.finding.code))
        .collect();
    assert_eq!(
        found,
        [
            ("scps/Huge.json", "file-too-large"),
            ("scps/Zero.json", "not-a-regular-file"),
        ],
        "{err}"
    );
}
