//! The content digest of a bundle, in two levels. Its files in path order fall into runs:
//! consecutive files of one group, a file's group being its path through the second `/`
//! (`accounts/ID/`, `catalog/x/`) or, with fewer, the whole path. Each file is its path's
//! length (8 bytes, little-endian), its path, and the SHA-256 of its text (32 bytes); each
//! run is its group's length (8 bytes, little-endian), its group, and the SHA-256 of its
//! files; the digest is the SHA-256 of the runs, as 64 lowercase hex digits. It depends on
//! nothing but the files' paths and bytes (not the order a directory lists them in, their
//! times, the source, or the machine), so two sidecars serving the same bundle report the
//! same digest whatever their revisions.
//!
//! Each text is hashed on its own so that [`Cache`] can keep a file's hash between loads
//! and a write rehashes only the files it changed; each run is hashed on its own so that
//! a write whose paths are the last load's ([`Cache::update`]) rehashes only its runs: at
//! 100,000 statements one account's run is a thirtieth of the bundle. [`of_files`] and a
//! [`Cache`] give the same digest for the same files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::bundle::Text;

/// The digest of a bundle held as `relative path -> text`.
pub fn of_files<T: Text>(files: &BTreeMap<String, T>) -> String {
    let hashed: Vec<(&str, [u8; 32])> = files
        .iter()
        .map(|(path, text)| (path.as_str(), of_text(text.text())))
        .collect();
    let runs = runs(&hashed);
    top(&hashed, &runs)
}

/// The SHA-256 of one file's text.
fn of_text(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// One file's (or run's) part of its hash. The path's length first, so that no two
/// different file maps hash the same bytes (a hash has a fixed length).
fn add(hash: &mut Sha256, path: &str, text: &[u8; 32]) {
    hash.update((path.len() as u64).to_le_bytes());
    hash.update(path.as_bytes());
    hash.update(text);
}

/// A file's group: its path through the second `/`, or the whole path.
fn group(path: &str) -> &str {
    match path.match_indices('/').nth(1) {
        Some((i, _)) => path.get(..=i).unwrap_or(path),
        None => path,
    }
}

/// A file as the digest reads it: its path and its text's hash (a file being hashed, or
/// one the [`Cache`] keeps).
trait Hashed {
    fn path(&self) -> &str;
    fn hash(&self) -> &[u8; 32];
}

impl Hashed for (&str, [u8; 32]) {
    fn path(&self) -> &str {
        self.0
    }

    fn hash(&self) -> &[u8; 32] {
        &self.1
    }
}

/// A file the [`Cache`] keeps: its path, its text, the text's hash.
type Kept = (String, Arc<str>, [u8; 32]);

impl Hashed for Kept {
    fn path(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> &[u8; 32] {
        &self.2
    }
}

/// The runs of `files` (in path order): each run's first index and its hash.
fn runs(files: &[impl Hashed]) -> Vec<(usize, [u8; 32])> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < files.len() {
        let end = run_end(files, start);
        out.push((start, run_hash(files.get(start..end).unwrap_or(&[]))));
        start = end;
    }
    out
}

/// Where the run that starts at `start` ends (exclusive).
fn run_end(files: &[impl Hashed], start: usize) -> usize {
    let Some(first) = files.get(start) else {
        return start;
    };
    let g = group(first.path());
    let rest = files.get(start + 1..).unwrap_or(&[]);
    start + 1 + rest.iter().take_while(|f| group(f.path()) == g).count()
}

fn run_hash(files: &[impl Hashed]) -> [u8; 32] {
    let mut h = Sha256::new();
    for f in files {
        add(&mut h, f.path(), f.hash());
    }
    h.finalize().into()
}

/// The digest of `files` from their runs.
fn top(files: &[impl Hashed], runs: &[(usize, [u8; 32])]) -> String {
    let mut h = Sha256::new();
    for (start, hash) in runs {
        if let Some(first) = files.get(*start) {
            add(&mut h, group(first.path()), hash);
        }
    }
    h.finalize()
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
    files: Vec<Kept>,
    /// Its runs (first index, hash), when every one of its texts was shared: then `files`
    /// is the whole bundle, and [`Cache::update`] can start from it.
    runs: Option<Vec<(usize, [u8; 32])>>,
}

impl Cache {
    /// The digest of `files`, as [`of_files`] gives it.
    pub fn of_files<T: Text>(&mut self, files: &BTreeMap<String, T>) -> String {
        let mut kept = Vec::with_capacity(files.len());
        let mut hashed: Vec<(&str, [u8; 32])> = Vec::with_capacity(files.len());
        let mut whole = true;
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
                whole = false;
                hashed.push((path, of_text(text)));
                continue;
            };
            let (kept_path, file) = match before {
                Some((p, was, file)) if Arc::ptr_eq(&was, shared) || (*was == *text) => (p, file),
                Some((p, _, _)) => (p, of_text(text)),
                None => (path.clone(), of_text(text)),
            };
            hashed.push((path, file));
            kept.push((kept_path, shared.clone(), file));
        }
        let runs = runs(&hashed);
        let digest = top(&hashed, &runs);
        self.runs = whole.then_some(runs);
        self.files = kept;
        digest
    }

    /// The digest of `files`, which have the very paths of the bundle this cache last
    /// digested whole (every text shared), their texts changed at most at the indices
    /// `changed` (in path order), and given as another allocation of the same text at the
    /// indices `replaced`: each changed file and its run are hashed again, and nothing
    /// else; a replaced text's allocation is the one kept from now on. `None` (and
    /// [`Cache::of_files`] to call) when this cache cannot start from that bundle.
    pub fn update<T: Text>(
        &mut self,
        files: &BTreeMap<String, T>,
        changed: &[usize],
        replaced: &[usize],
    ) -> Option<String> {
        let runs = self.runs.as_mut()?;
        if self.files.len() != files.len() {
            self.runs = None;
            return None;
        }
        for &i in replaced {
            let Some((path, text, _)) = self.files.get_mut(i) else {
                self.runs = None;
                return None;
            };
            match files.get(path.as_str()).and_then(Text::shared) {
                // The same text (compared again: a source that read every file again,
                // rare): its hash stands.
                Some(shared) if **shared == **text => *text = shared.clone(),
                _ => {
                    self.runs = None;
                    return None;
                }
            }
        }
        let mut dirty: Vec<usize> = Vec::with_capacity(changed.len());
        for &i in changed {
            let Some((path, text, hash)) = self.files.get_mut(i) else {
                self.runs = None;
                return None;
            };
            let Some(shared) = files.get(path.as_str()).and_then(Text::shared) else {
                self.runs = None;
                return None;
            };
            if !Arc::ptr_eq(text, shared) {
                *hash = of_text(shared);
                *text = shared.clone();
            }
            // The run that holds file `i`: the last that starts at or before it. In path
            // order, a run's files come one after another: it is the last one marked, or
            // a new one (not a search of every run marked, which a write of many files
            // across many runs would pay for each file).
            let r = runs
                .partition_point(|(start, _)| *start <= i)
                .saturating_sub(1);
            if dirty.last() != Some(&r) {
                dirty.push(r);
            }
        }
        for r in dirty {
            let start = runs.get(r).map_or(0, |(start, _)| *start);
            let end = run_end(&self.files, start);
            let hash = run_hash(self.files.get(start..end).unwrap_or(&[]));
            if let Some((_, h)) = runs.get_mut(r) {
                *h = hash;
            }
        }
        Some(top(&self.files, runs))
    }
}

#[cfg(test)]
mod tests;
