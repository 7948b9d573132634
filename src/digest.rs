//! The content digest of a bundle: SHA-256 over its files in path order, each path and
//! text prefixed by its length, as 64 lowercase hex digits. It depends on nothing but the
//! files' paths and bytes (not the order a directory lists them in, their times, or the
//! machine), so two sidecars serving the same bundle report the same digest whatever
//! their revisions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

/// The digest of a bundle held as `relative path -> text`.
pub fn of_files(files: &BTreeMap<String, String>) -> String {
    let mut hash = Sha256::new();
    for (path, text) in files {
        // Lengths first, so that no two different file maps hash the same bytes.
        for part in [path.as_bytes(), text.as_bytes()] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    }
    hash.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests;
