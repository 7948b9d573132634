//! The local copy of the last bundle published from etcd (`--etcd-cache DIR`), so that a
//! sidecar restarted during an etcd outage starts from its last good bundle instead of
//! refusing every request until etcd is back.
//!
//! One file, `DIR/bundle.json` (`{"revision": N, "files": {PATH: TEXT}}`), written to a
//! temporary name, synced, and renamed over the old one: a reader sees the old bundle or the
//! new one, never a mix. (A whole directory cannot be renamed over a non-empty one; a file
//! can.) Read back with the same checks as etcd's content: it is only a copy of it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "bundle.json";
const TEMPORARY: &str = "bundle.json.tmp";

/// A bundle as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cached {
    pub revision: u64,
    pub files: BTreeMap<String, String>,
}

/// The cache at `dir`.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

use std::os::unix::fs::OpenOptionsExt as _;

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached bundle; `Ok(None)` when there is none; an error naming the file when it
    /// cannot be used (the server then starts without it).
    pub fn read(&self) -> Result<Option<Cached>, String> {
        let path = self.dir.join(FILE);
        let shown = path.display();
        // Opened as the bundle reader opens a file: non-blocking (a FIFO swapped in cannot
        // hang the start-up), refused unless its own `fstat` says a regular file, and read
        // no further than the limit whatever size it claims.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("`{shown}`: {}", crate::error::cause(&e))),
        };
        let meta = file
            .metadata()
            .map_err(|e| format!("`{shown}`: {}", crate::error::cause(&e)))?;
        if !meta.is_file() {
            return Err(format!("`{shown}`: not a regular file"));
        }
        // Room for the bundle's bytes and the JSON escaping of its texts.
        let limit = crate::bundle::dir::MAX_BUNDLE_BYTES.saturating_mul(2);
        let text = crate::bundle::dir::read_limited(file, meta.len(), limit)
            .map_err(|p| format!("`{shown}`: {}", p.message))?;
        let cached: Cached =
            serde_json::from_slice(&text).map_err(|e| format!("`{shown}`: {e}"))?;
        if cached.files.len() > crate::bundle::dir::MAX_ENTRIES {
            return Err(format!("`{shown}`: more files than a bundle may hold"));
        }
        let mut bytes: u64 = 0;
        for (file, content) in &cached.files {
            crate::etcd::check_path(file).map_err(|e| format!("`{shown}`: `{file}`: {e}"))?;
            if content.len() as u64 > crate::bundle::MAX_FILE_BYTES {
                return Err(format!(
                    "`{shown}`: `{file}` is above the limit of a bundle file"
                ));
            }
            bytes += content.len() as u64;
        }
        if bytes > crate::bundle::dir::MAX_BUNDLE_BYTES {
            return Err(format!("`{shown}`: more bytes than a bundle may hold"));
        }
        Ok(Some(cached))
    }

    /// Replaces the cached bundle with `files` at `revision`, atomically (see the module
    /// doc).
    pub fn write<T: crate::bundle::Text>(
        &self,
        revision: u64,
        files: &BTreeMap<String, T>,
    ) -> Result<(), String> {
        #[derive(Serialize)]
        #[serde(bound = "")]
        struct Borrowed<'a, T: crate::bundle::Text> {
            revision: u64,
            files: Texts<'a, T>,
        }
        struct Texts<'a, T>(&'a BTreeMap<String, T>);
        impl<T: crate::bundle::Text> Serialize for Texts<'_, T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(path, text)| (path, text.text())))
            }
        }
        let failed = |what: &str, e: &std::io::Error| {
            format!(
                "cannot {what} `{}`: {}",
                self.dir.display(),
                crate::error::cause(e)
            )
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| failed("create", &e))?;
        let temporary = self.dir.join(TEMPORARY);
        let text = serde_json::to_vec(&Borrowed {
            revision,
            files: Texts(files),
        })
        .map_err(|e| e.to_string())?;
        let mut file = std::fs::File::create(&temporary).map_err(|e| failed("write to", &e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| failed("write to", &e))?;
        drop(file);
        std::fs::rename(&temporary, self.dir.join(FILE)).map_err(|e| failed("write to", &e))?;
        // The rename itself lasts once the directory is synced.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests: a panic is a failed test"
    )]

    use super::*;

    #[test]
    fn a_bundle_written_reads_back_and_replaces_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        assert_eq!(cache.read(), Ok(None));
        let mut bundle = Cached {
            revision: 5,
            files: BTreeMap::from([("organization.json".to_owned(), "{}".to_owned())]),
        };
        cache.write(bundle.revision, &bundle.files).unwrap();
        assert_eq!(cache.read(), Ok(Some(bundle.clone())));
        bundle.revision = 9;
        bundle
            .files
            .insert("scps/a.json".to_owned(), "[]".to_owned());
        cache.write(bundle.revision, &bundle.files).unwrap();
        assert_eq!(cache.read(), Ok(Some(bundle)));
        assert!(!cache.dir().join(TEMPORARY).exists());
    }

    #[test]
    fn a_cache_that_is_no_bundle_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        for (text, says) in [
            ("{", "EOF"),
            (
                r#"{"revision": 1, "files": {"../x.json": "{}"}}"#,
                "`../x.json`",
            ),
            (
                r#"{"revision": 1, "files": {}, "more": 1}"#,
                "unknown field",
            ),
        ] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            let e = cache.read().unwrap_err();
            assert!(e.contains("bundle.json") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_cache_that_is_no_regular_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        // A FIFO with no writer: opening it to read would block forever.
        let fifo = dir.path().join(FILE);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = cache.read().unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_file(&fifo).unwrap();
        // A link to somewhere else is not followed.
        std::os::unix::fs::symlink("/dev/zero", &fifo).unwrap();
        assert!(cache.read().is_err());
    }
}
