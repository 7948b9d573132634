//! `cargo +nightly fuzz run bundle`: the body is `bodies/bundle.rs`, which `tests/fuzz_corpus.rs`
//! also runs on every file of `corpus/bundle/`.
#![no_main]

// What the body returns is for the replay test (`tests/fuzz_corpus.rs`).
#[allow(dead_code)]
#[path = "../bodies/bundle.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
