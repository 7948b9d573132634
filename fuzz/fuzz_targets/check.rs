//! `cargo +nightly fuzz run check`: the body is `bodies/check.rs`, which `tests/fuzz_corpus.rs`
//! also runs on every file of `corpus/check/`.
#![no_main]

// What the body returns is for the replay test (`tests/fuzz_corpus.rs`).
#[allow(dead_code)]
#[path = "../bodies/check.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
