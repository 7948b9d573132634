//! The fuzz targets' corpora (`fuzz/corpus/TARGET/`) replayed as ordinary tests, so every
//! test run checks them on stable: each target's body (`fuzz/bodies/TARGET.rs`, the same
//! file `cargo +nightly fuzz run TARGET` runs) is run on every file of its corpus, and a
//! body that panics or finds an invariant broken fails the test, naming the file.
//!
//! Each replay also checks that its corpus goes deep — documents that compile and ones
//! refused, bundles that load and decide, requests that are answered, matcher answers
//! compared with the reference — and `matchers_catch_a_wrong_reference` shows that a
//! reference that answers wrongly is caught, so the differential check cannot pass
//! vacuously.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a panic is a failed test"
)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[cfg(test)]
#[path = "../fuzz/bodies/bundle.rs"]
mod bundle;
#[cfg(test)]
#[path = "../fuzz/bodies/check.rs"]
mod check;
#[cfg(test)]
#[path = "../fuzz/bodies/matchers.rs"]
mod matchers;
#[cfg(test)]
#[path = "../fuzz/bodies/policy.rs"]
mod policy;
#[cfg(test)]
#[path = "../fuzz/bodies/request.rs"]
mod request;

/// The files of `fuzz/corpus/{target}`, sorted; at least `min` of them (so an emptied or
/// missing corpus cannot pass unnoticed).
fn corpus(target: &str, min: usize) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "`{}` holds {} files, fewer than {min}",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `body` on every file of `fuzz/corpus/{target}`; fails naming every file it
/// panics on; returns what each run reached.
fn replay<T>(target: &str, min: usize, body: fn(&[u8]) -> T) -> Vec<T> {
    let mut failed = Vec::new();
    let mut reached = Vec::new();
    for file in corpus(target, min) {
        let data = std::fs::read(&file).unwrap();
        match catch_unwind(AssertUnwindSafe(|| body(&data))) {
            Ok(r) => reached.push(r),
            Err(_) => failed.push(file.display().to_string()),
        }
    }
    assert!(
        failed.is_empty(),
        "the `{target}` body fails on {failed:#?}"
    );
    reached
}

#[test]
fn policy_corpus() {
    let reached = replay("policy", 20, policy::run);
    let json = reached.iter().filter(|r| r.json).count();
    let compiled = reached.iter().filter(|r| r.compiled).count();
    let refused = reached.iter().filter(|r| r.refused).count();
    assert!(json >= 10, "only {json} inputs are JSON");
    assert!(compiled >= 10, "only {compiled} inputs compile to a policy");
    assert!(refused >= 5, "only {refused} inputs are refused");
}

#[test]
fn matchers_corpus() {
    let mut total = matchers::Compared::default();
    for c in replay("matchers", 10, matchers::run) {
        total += c;
    }
    let matchers::Compared {
        glob,
        tokens,
        action,
        arn,
        condition,
    } = total;
    for (check, n) in [
        ("glob", glob),
        ("tokens", tokens),
        ("action", action),
        ("arn", arn),
        ("condition", condition),
    ] {
        assert!(
            n > 0,
            "no `{check}` answer of the corpus is compared: {total:?}"
        );
    }
}

/// With the reference made to answer wrongly, the body fails on every corpus file that
/// compares an answer: a disagreement is caught, not skipped.
#[test]
fn matchers_catch_a_wrong_reference() {
    let files = corpus("matchers", 10);
    let mut comparing = 0;
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let compared = matchers::run(&data);
        if compared == matchers::Compared::default() {
            continue;
        }
        comparing += 1;
        matchers::sabotage_reference(true);
        let caught = catch_unwind(AssertUnwindSafe(|| matchers::run(&data))).is_err();
        matchers::sabotage_reference(false);
        assert!(
            caught,
            "a wrong reference passes on `{}` ({compared:?})",
            file.display()
        );
    }
    assert!(comparing > 0, "no corpus file compares an answer");
}

#[test]
fn request_corpus() {
    let decisions: usize = replay("request", 10, request::run).into_iter().sum();
    assert!(
        decisions >= 10,
        "the corpus is answered with only {decisions} decisions"
    );
}

#[test]
fn check_corpus() {
    let allowed = replay("check", 20, check::run);
    let n = allowed.iter().filter(|a| **a).count();
    // Both answers are reached: the corpus routes, identifies and decides.
    assert!(
        n >= 1 && n < allowed.len(),
        "{n} of {} allowed",
        allowed.len()
    );
}

#[test]
fn bundle_corpus() {
    let reached = replay("bundle", 5, bundle::run);
    let loaded = reached.iter().filter(|r| r.loaded).count();
    let decisions: usize = reached.iter().map(|r| r.decisions).sum();
    assert!(loaded >= 3, "only {loaded} inputs load as a bundle");
    assert!(decisions > 0, "no request is decided on a loaded bundle");
}
