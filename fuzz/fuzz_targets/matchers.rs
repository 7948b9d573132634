//! `cargo +nightly fuzz run matchers`: the body is `bodies/matchers.rs`, which `tests/fuzz_corpus.rs`
//! also runs on every file of `corpus/matchers/`.
#![no_main]

#[path = "../bodies/matchers.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
