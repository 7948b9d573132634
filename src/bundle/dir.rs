//! Reading a bundle directory into `relative path -> text`: regular files only, symlinks
//! followed without looping, hidden entries skipped, every file bounded in size. A device,
//! a FIFO, a link cycle or a huge file in the tree is a finding, never a hang, an endless
//! walk or an allocation beyond the limit.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::BundleError;
use super::read::BundleFinding;
use crate::json::Pos;
use crate::policy::{Finding, Severity};

/// Largest file a bundle may hold; policies are a few KiB, so this only stops mistakes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Deepest nesting of directories under the root. The layout itself is three deep
/// (`accounts/ACCOUNT/users/`); the rest is room for volumes that nest their data.
pub const MAX_DEPTH: usize = 32;

/// Most entries (files and directories) a bundle may have. The 100,000-statement synthetic
/// organization of `BENCHMARKS.md` has about 30,000 files; a link that takes in a system
/// tree stops here instead of reading it.
pub const MAX_ENTRIES: usize = 100_000;

/// Most bytes all the files of a bundle may hold together. The 100,000-statement synthetic
/// organization holds 22 MB; a link that takes in a tree of large files stops here instead
/// of holding them all in memory (at most one file past it is read).
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;

/// Whether an entry is not bundle content: dot-files and dot-directories (`.git`, the
/// `..data` and `..TIMESTAMP` entries of a Kubernetes volume) and editors' swap files.
pub fn is_skipped(name: &str) -> bool {
    name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp")
}

/// What is wrong with one entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

impl Problem {
    fn new(code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
        }
    }
}

/// A finding about `file` as a whole (no line inside it). An empty `file` is the bundle
/// itself: its directory is missing, unreadable, or too large to walk.
pub fn file_error(file: String, code: &'static str, message: String) -> BundleFinding {
    BundleFinding {
        file,
        finding: Finding {
            severity: Severity::Error,
            code,
            path: "$".into(),
            pos: Pos::default(),
            message,
        },
    }
}

/// How far a walk may go.
#[derive(Debug, Clone, Copy)]
struct Limits {
    depth: usize,
    entries: usize,
    bytes: u64,
}

/// Reads the bundle under `dir`; see [`super::read_dir`] for the rules.
pub fn read(dir: &Path) -> Result<BTreeMap<String, String>, BundleError> {
    read_with(
        dir,
        Limits {
            depth: MAX_DEPTH,
            entries: MAX_ENTRIES,
            bytes: MAX_BUNDLE_BYTES,
        },
    )
}

/// The bundle directory's metadata, or what is wrong with it: the one place that says a
/// bundle path is missing or no directory, for the reader and for the watched source.
pub fn root(dir: &Path) -> Result<Metadata, Problem> {
    let shown = dir.display();
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(m),
        Ok(_) => Err(Problem::new(
            "not-a-directory",
            format!("`{shown}` is not a directory; a bundle is a directory"),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Problem::new(
            "not-found",
            format!("bundle directory `{shown}` does not exist"),
        )),
        Err(e) => Err(Problem::new(
            "unreadable",
            format!("cannot read the bundle directory `{shown}`: {e}"),
        )),
    }
}

fn read_with(dir: &Path, limits: Limits) -> Result<BTreeMap<String, String>, BundleError> {
    let shown = dir.display();
    let root_error = |code, message| BundleError {
        findings: vec![file_error(String::new(), code, message)],
    };
    let meta = root(dir).map_err(|p| root_error(p.code, p.message))?;
    let canonical = fs::canonicalize(dir).map_err(|e| {
        root_error(
            "unreadable",
            format!("cannot read the bundle directory `{shown}`: {e}"),
        )
    })?;
    let mut walk = Walk {
        files: BTreeMap::new(),
        findings: Vec::new(),
        entries: 0,
        bytes: 0,
        limits,
        on_path: vec![(canonical.clone(), (meta.dev(), meta.ino()))],
    };
    // The walk goes down the canonical path: a bundle directory reached through a symlink
    // that is swapped while the walk runs (the git-sync layout) is read whole from the
    // tree it named when the walk began, never half from each.
    // `Err` only when the walk stopped at a limit, already recorded as a finding.
    let _ = walk.dir(&canonical, "");
    if walk.findings.is_empty() {
        Ok(walk.files)
    } else {
        Err(BundleError {
            findings: walk.findings,
        })
    }
}

/// [`read`] on its own thread, given up after `limit`: for a command that must end even
/// when a file system hangs. The thread is left to finish the read on its own.
pub fn read_within(dir: &Path, limit: Duration) -> Result<BTreeMap<String, String>, BundleError> {
    let owned = dir.to_path_buf();
    within(limit, dir, move || read(&owned))
}

/// Runs `read` on a thread of its own and waits at most `limit` for it.
pub fn within(
    limit: Duration,
    dir: &Path,
    read: impl FnOnce() -> Result<BTreeMap<String, String>, BundleError> + Send + 'static,
) -> Result<BTreeMap<String, String>, BundleError> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("bundle-read".into())
        .spawn(move || {
            // The receiver is gone when the read took too long: nobody waits for it.
            let _ = tx.send(read());
        });
    let gave_up = |code, message| BundleError {
        findings: vec![file_error(String::new(), code, message)],
    };
    if let Err(e) = spawned {
        return Err(gave_up(
            "unreadable",
            format!("cannot start reading `{}`: {e}", dir.display()),
        ));
    }
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(gave_up(
            "read-timeout",
            format!(
                "bundle directory `{}` was not read within {} s (a hung file system?)",
                dir.display(),
                limit.as_secs_f64()
            ),
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(gave_up(
            "unreadable",
            format!("reading `{}` stopped without an answer", dir.display()),
        )),
    }
}

struct Walk {
    files: BTreeMap<String, String>,
    findings: Vec<BundleFinding>,
    entries: usize,
    /// Bytes of the files read so far.
    bytes: u64,
    limits: Limits,
    /// Each directory from the root down to the one being read: its canonical path and
    /// its (device, inode). A directory whose path holds one of these, or that is one of
    /// them, would be read again inside itself.
    on_path: Vec<(PathBuf, (u64, u64))>,
}

/// The walk stopped at its limit of entries.
struct Stop;

impl Walk {
    fn error(&mut self, file: &str, problem: Problem) {
        self.findings
            .push(file_error(file.to_owned(), problem.code, problem.message));
    }

    /// Reads directory `abs`, at `rel` in the bundle (`""` for the root), which is the
    /// last entry of `on_path`.
    fn dir(&mut self, abs: &Path, rel: &str) -> Result<(), Stop> {
        let shown = if rel.is_empty() { "." } else { rel };
        let entries = match fs::read_dir(abs) {
            Ok(entries) => entries,
            Err(e) => {
                self.error(
                    rel,
                    Problem::new("unreadable", format!("cannot read the directory: {e}")),
                );
                return Ok(());
            }
        };
        let mut names: Vec<OsString> = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => names.push(e.file_name()),
                Err(e) => self.error(
                    rel,
                    Problem::new(
                        "unreadable",
                        format!("cannot list the directory `{shown}`: {e}"),
                    ),
                ),
            }
        }
        // Sorted, so findings come in the same order on every file system.
        names.sort();
        for name in names {
            // Every name counts, skipped or refused too: the limit bounds the walk's work
            // and its findings.
            self.entries += 1;
            let child_rel = join(rel, &name.to_string_lossy());
            if self.entries > self.limits.entries {
                let most = self.limits.entries;
                self.error(
                    "",
                    Problem::new(
                        "too-many-files",
                        format!(
                            "more than {most} files and directories; reading stopped at `{child_rel}` (does a symlink take in a large tree?)"
                        ),
                    ),
                );
                return Err(Stop);
            }
            let Some(name) = name.to_str() else {
                self.error(
                    &child_rel,
                    Problem::new("invalid-name", "the name is not UTF-8"),
                );
                continue;
            };
            if is_skipped(name) {
                continue;
            }
            // A control character (a newline) in a name would reach logs and findings as
            // it is, and could forge a line.
            if name.chars().any(char::is_control) {
                self.error(
                    &join(rel, &format!("{name:?}")),
                    Problem::new(
                        "invalid-name",
                        "the name holds a control character (shown escaped)",
                    ),
                );
                continue;
            }
            let child = abs.join(name);
            match self.entry(&child, &child_rel) {
                Ok(Some(meta)) => self.subdir(&child, &child_rel, &meta)?,
                Ok(None) => {}
                Err(p) if p.code == "bundle-too-large" => {
                    self.error(&child_rel, p);
                    return Err(Stop);
                }
                Err(p) => self.error(&child_rel, p),
            }
        }
        Ok(())
    }

    /// Reads a file entry into `files`; a directory's metadata is handed back to walk it.
    fn entry(&mut self, abs: &Path, rel: &str) -> Result<Option<Metadata>, Problem> {
        // `metadata` follows symlinks: a link counts as what it points at.
        let meta = fs::metadata(abs).map_err(|e| match fs::read_link(abs) {
            Ok(target) if e.kind() == std::io::ErrorKind::NotFound => Problem::new(
                "broken-link",
                format!("a symlink to `{}`, which does not exist", target.display()),
            ),
            Ok(target) if e.raw_os_error() == Some(libc::ELOOP) => Problem::new(
                "symlink-loop",
                format!(
                    "a symlink to `{}`, which never reaches a file or directory: a loop",
                    target.display()
                ),
            ),
            _ => Problem::new("unreadable", format!("cannot read the entry: {e}")),
        })?;
        if meta.is_dir() {
            return Ok(Some(meta));
        }
        // A device or a FIFO is refused before it is opened: opening one can block (a FIFO
        // without a writer) or act on a device (a tape rewinds on close).
        if !meta.is_file() {
            return Err(not_regular(&meta));
        }
        // A file past its own limit is refused by it (`file-too-large`), not here.
        if self.bytes.saturating_add(meta.len().min(MAX_FILE_BYTES)) > self.limits.bytes {
            return Err(Problem::new(
                "bundle-too-large",
                format!(
                    "the bundle's files would hold more than {} bytes with this one; reading \
                     stopped (does a symlink take in a large tree?)",
                    self.limits.bytes
                ),
            ));
        }
        let text = read_file(abs)?;
        self.bytes += text.len() as u64;
        self.files.insert(rel.to_owned(), text);
        Ok(None)
    }

    fn subdir(&mut self, abs: &Path, rel: &str, meta: &Metadata) -> Result<(), Stop> {
        if self.on_path.len() > self.limits.depth {
            let most = self.limits.depth;
            self.error(
                rel,
                Problem::new(
                    "nested-too-deep",
                    format!("more than {most} directories deep"),
                ),
            );
            return Ok(());
        }
        let canonical = match fs::canonicalize(abs) {
            Ok(c) => c,
            Err(e) => {
                self.error(
                    rel,
                    Problem::new("unreadable", format!("cannot resolve the directory: {e}")),
                );
                return Ok(());
            }
        };
        let id = (meta.dev(), meta.ino());
        // INVARIANT (the walk ends): no directory is entered while it, or a directory it
        // holds, is being read; with the depth bound, every path through links is finite.
        let holds_itself = self
            .on_path
            .iter()
            .any(|(path, seen)| *seen == id || path.starts_with(&canonical));
        if holds_itself {
            let target = fs::read_link(abs)
                .map(|t| format!("a symlink to `{}`", t.display()))
                .unwrap_or_else(|_| "a directory".to_owned());
            self.error(
                rel,
                Problem::new(
                    "symlink-loop",
                    format!(
                        "{target}, which leads back to a directory that holds it (`{}`): a loop",
                        canonical.display()
                    ),
                ),
            );
            return Ok(());
        }
        self.on_path.push((canonical.clone(), id));
        // Down the canonical path, as from the root: a link swapped while the walk runs
        // (a ConfigMap's `..data`) cannot mix two trees in one directory.
        let walked = self.dir(&canonical, rel);
        self.on_path.pop();
        walked
    }
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn not_regular(meta: &Metadata) -> Problem {
    let t = meta.file_type();
    let kind = if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    };
    Problem::new(
        "not-a-regular-file",
        format!("{kind}; a bundle holds regular files (and symlinks to them) only"),
    )
}

/// Reads one regular file as UTF-8 text, at most [`MAX_FILE_BYTES`].
pub fn read_file(path: &Path) -> Result<String, Problem> {
    // Non-blocking, so that a FIFO swapped in after the `metadata` check above opens at
    // once instead of waiting for a writer; it is then refused by its own `fstat`.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Problem::new("unreadable", format!("cannot open the file: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Problem::new("unreadable", format!("cannot read the file: {e}")))?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let bytes = read_limited(file, meta.len(), MAX_FILE_BYTES)?;
    String::from_utf8(bytes).map_err(|e| {
        Problem::new(
            "invalid-encoding",
            format!(
                "the file is not UTF-8 (invalid byte at offset {}); bundle files are UTF-8 JSON",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Reads `reader` to its end, refusing more than `limit` bytes: first by the size the file
/// claims (a sparse file), then by what it yields (a file that grows, or one that claims
/// no size, as `/proc` files do), so no more than `limit + 1` bytes are ever read.
pub fn read_limited(reader: impl Read, claimed: u64, limit: u64) -> Result<Vec<u8>, Problem> {
    let too_large = |what: String| {
        Problem::new(
            "file-too-large",
            format!("{what}; a bundle file may have at most {limit} bytes"),
        )
    };
    if claimed > limit {
        return Err(too_large(format!("{claimed} bytes")));
    }
    let capacity = usize::try_from(claimed).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Problem::new("unreadable", format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(format!("more than {limit} bytes")));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
