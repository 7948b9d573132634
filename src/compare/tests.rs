#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::space::{self, Witnesses};
use crate::matcher::{Pattern, glob_tokens};

fn toks(p: &str) -> Vec<crate::matcher::Token> {
    glob_tokens(p).collect()
}

#[test]
fn placeholder() {
    let w: Witnesses = space::strings(&[toks("a*")], &[], 100);
    assert!(w.complete);
    assert!(Pattern::new("a*").matches("a"));
}
