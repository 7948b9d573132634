//! `cargo +nightly fuzz run request`: the body is `bodies/request.rs`, which `tests/fuzz_corpus.rs`
//! also runs on every file of `corpus/request/`.
#![no_main]

// What the body returns is for the replay test (`tests/fuzz_corpus.rs`).
#[allow(dead_code)]
#[path = "../bodies/request.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
