//! `cargo +nightly fuzz run request`: the body is `bodies/request.rs`, which `tests/fuzz_corpus.rs`
//! also runs on every file of `corpus/request/`.
#![no_main]

#[path = "../bodies/request.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = body::run(data);
});
