//! The content digest of a bundle: SHA-256 over its files in path order, each file as its
//! path's length (8 bytes, little-endian), its path, and the SHA-256 of its text (32
//! bytes), as 64 lowercase hex digits. It depends on nothing but the files' paths and
//! bytes (not the order a directory lists them in, their times, the source, or the
//! machine), so two sidecars serving the same bundle report the same digest whatever their
//! revisions.
//!
//! Each text is hashed on its own so that [`Cache`] can keep a file's hash between loads
//! and a write rehashes only the files it changed; [`of_files`] and a [`Cache`] give the
//! same digest for the same files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::bundle::Text;

/// The digest of a bundle held as `relative path -> text`.
pub fn of_files<T: Text>(files: &BTreeMap<String, T>) -> String {
    let mut hash = Sha256::new();
    for (path, text) in files {
        add(&mut hash, path, &of_text(text.text()));
    }
    hex(hash)
}

/// The SHA-256 of one file's text.
fn of_text(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// One file's part of the digest. The path's length first, so that no two different file
/// maps hash the same bytes (a text's hash has a fixed length).
fn add(hash: &mut Sha256, path: &str, text: &[u8; 32]) {
    hash.update((path.len() as u64).to_le_bytes());
    hash.update(path.as_bytes());
    hash.update(text);
}

fn hex(hash: Sha256) -> String {
    hash.finalize()
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// [`of_files`] for bundles given one after another, each shared text's hash kept from the
/// previous bundle: a text given again as the very allocation it was hashed from (which
/// the cache holds, so no other text can be at that address) is not hashed again; any
/// other text is compared byte for byte with the one kept for its path, and hashed when
/// it differs. It keeps the current bundle's shared texts only (the same allocations the
/// bundle's source holds), so its memory is bounded by the bundle's.
#[derive(Default)]
pub struct Cache {
    /// The previous bundle's shared files, in path order: path, text, the text's hash.
    files: Vec<(String, Arc<str>, [u8; 32])>,
}

impl Cache {
    /// The digest of `files`, as [`of_files`] gives it.
    pub fn of_files<T: Text>(&mut self, files: &BTreeMap<String, T>) -> String {
        let mut hash = Sha256::new();
        let mut kept = Vec::with_capacity(files.len());
        // Both in path order: one merge walk, without hashing the paths.
        let mut old = std::mem::take(&mut self.files).into_iter().peekable();
        for (path, t) in files {
            let text = t.text();
            // Most often the previous bundle's next path is this one: one comparison, not a
            // `<` that scans to the end of two equal paths and then an `==`.
            let before = old.next_if(|(p, _, _)| p == path).or_else(|| {
                while old.next_if(|(p, _, _)| p < path).is_some() {}
                old.next_if(|(p, _, _)| p == path)
            });
            let Some(shared) = t.shared() else {
                add(&mut hash, path, &of_text(text));
                continue;
            };
            let (path, file) = match before {
                Some((p, was, file)) if Arc::ptr_eq(&was, shared) || (*was == *text) => (p, file),
                Some((p, _, _)) => (p, of_text(text)),
                None => (path.clone(), of_text(text)),
            };
            add(&mut hash, &path, &file);
            kept.push((path, shared.clone(), file));
        }
        self.files = kept;
        hex(hash)
    }
}

#[cfg(test)]
mod tests;
