//! The key ring: the AEAD keys that seal session tokens ([`crate::sts::token`]) and the
//! secrets store ([`crate::sts::secrets`]), each under an id that the sealed text names, so
//! keys rotate: the newest key seals, every key not retired opens. A [`KeyRingHandle`]
//! follows the file and keeps the last good ring when a new one does not load.
//!
//! The file is JSON, oldest key first:
//! `{"keys":[{"id":"k20260115ab12cd","secret":"<base64 of 32 bytes>","created":"2026-01-15T10:00:00Z","retired":false}]}`.
//! It is written atomically (a temporary file with mode 0600, fsync, rename, fsync of the
//! directory), so a reader sees the old ring or the new one, never half of one.
//!
//! Each key's secret is never used directly: per purpose subkeys are derived from it with
//! HMAC-SHA256 (token sealing, session secrets, the secrets store), so no two uses share
//! key material.

use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305};
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The largest key ring file read: far above any real ring, small enough to read whole.
pub const MAX_RING_BYTES: u64 = 1 << 20;
/// The most keys a ring holds (retired ones included).
pub const MAX_KEYS: usize = 256;
/// The longest key id; ids are `[A-Za-z0-9_-]`, so they sit in a token between dots.
pub const MAX_KEY_ID: usize = 64;

/// Why a key ring could not be read, written or changed: the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("key ring `{}`: {what}", path.display())]
pub struct KeyRingError {
    pub path: PathBuf,
    pub what: String,
}

impl KeyRingError {
    fn new(path: &Path, what: impl Into<String>) -> KeyRingError {
        KeyRingError {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}

/// What [`KeyRing::retire`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetireError {
    #[error("no key `{0}` in the key ring")]
    Unknown(String),
    #[error("key `{0}` is the only key that seals; rotate first, then retire it")]
    LastSealing(String),
}

/// The system's random number generator failed (it does not, on a running Linux system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// `N` bytes from the operating system's random number generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(bytes)
}

// === impl RingKey ===

/// One key of the ring, with the subkeys derived from its secret.
#[derive(Clone)]
pub struct RingKey {
    id: String,
    secret: [u8; 32],
    created: String,
    retired: bool,
    /// Seals and opens session tokens.
    token: XChaCha20Poly1305,
    /// Derives a session's secret access key from its token.
    session_secret: hmac::Key,
    /// Seals and opens the secrets store.
    store: XChaCha20Poly1305,
}

impl RingKey {
    fn new(id: String, secret: [u8; 32], created: String, retired: bool) -> RingKey {
        let master = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let subkey = |purpose: &[u8]| hmac::sign(&master, purpose);
        let token = XChaCha20Poly1305::new_from_slice(subkey(b"warden token v1").as_ref());
        let store = XChaCha20Poly1305::new_from_slice(subkey(b"warden secrets store v1").as_ref());
        let session_secret = hmac::Key::new(
            hmac::HMAC_SHA256,
            subkey(b"warden session secret v1").as_ref(),
        );
        // HMAC-SHA256 tags are 32 bytes, XChaCha20-Poly1305 keys are 32 bytes: `new_from_slice`
        // cannot fail; the fallback (the master key itself) is unreachable but keeps the
        // code free of panics.
        let fallback = || XChaCha20Poly1305::new(&secret.into());
        RingKey {
            id,
            secret,
            created,
            retired,
            token: token.unwrap_or_else(|_| fallback()),
            session_secret,
            store: store.unwrap_or_else(|_| fallback()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the key was made (RFC 3339).
    pub fn created(&self) -> &str {
        &self.created
    }

    pub fn is_retired(&self) -> bool {
        self.retired
    }

    /// The AEAD that seals session tokens.
    pub(crate) fn token_cipher(&self) -> &XChaCha20Poly1305 {
        &self.token
    }

    /// The HMAC key that derives sessions' secret access keys.
    pub(crate) fn session_secret_key(&self) -> &hmac::Key {
        &self.session_secret
    }

    /// The AEAD that seals the secrets store.
    pub(crate) fn store_cipher(&self) -> &XChaCha20Poly1305 {
        &self.store
    }
}

impl fmt::Debug for RingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("created", &self.created)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

// === impl KeyRing ===

/// The keys, oldest first. The last key that is not retired seals; every key that is not
/// retired opens. Retired keys stay listed so that their ids are never reused.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RingFile {
    keys: Vec<KeyFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    id: String,
    secret: String,
    created: String,
    #[serde(default)]
    retired: bool,
}

impl KeyRing {
    /// Reads and checks a key ring file: a regular file of at most [`MAX_RING_BYTES`], at
    /// least one key, ids unique and well formed, secrets of 32 bytes, RFC 3339 times.
    pub fn load(path: &Path) -> Result<KeyRing, KeyRingError> {
        let bytes = read_private(path, MAX_RING_BYTES).map_err(|e| KeyRingError::new(path, e))?;
        KeyRing::parse(&bytes).map_err(|e| KeyRingError::new(path, e))
    }

    fn parse(bytes: &[u8]) -> Result<KeyRing, String> {
        let file: RingFile = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a key ring file ({e}); expected {{\"keys\":[...]}}"))?;
        if file.keys.is_empty() {
            return Err("no keys; `warden keyring init` makes a ring".into());
        }
        if file.keys.len() > MAX_KEYS {
            return Err(format!(
                "{} keys; a ring holds at most {MAX_KEYS}",
                file.keys.len()
            ));
        }
        let mut keys: Vec<RingKey> = Vec::with_capacity(file.keys.len());
        for (n, k) in file.keys.into_iter().enumerate() {
            let at = format!("keys[{n}]");
            if !is_key_id(&k.id) {
                return Err(format!(
                    "{at}: the id `{}` is not 1 to {MAX_KEY_ID} characters of A-Z a-z 0-9 _ -",
                    k.id.escape_debug()
                ));
            }
            if keys.iter().any(|seen| seen.id == k.id) {
                return Err(format!("{at}: the id `{}` appears twice", k.id));
            }
            let secret = base64::engine::general_purpose::STANDARD
                .decode(k.secret.as_bytes())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    format!("{at} (`{}`): the secret is not base64 of 32 bytes", k.id)
                })?;
            if chrono::DateTime::parse_from_rfc3339(&k.created).is_err() {
                return Err(format!(
                    "{at} (`{}`): `created` is not an RFC 3339 time",
                    k.id
                ));
            }
            keys.push(RingKey::new(k.id, secret, k.created, k.retired));
        }
        Ok(KeyRing { keys })
    }

    /// A new ring with one fresh key.
    pub fn generate() -> Result<KeyRing, RandomError> {
        let mut ring = KeyRing { keys: Vec::new() };
        ring.rotate()?;
        Ok(ring)
    }

    /// Adds a fresh key, which seals from now on; returns its id. The keys before it still
    /// open what they sealed until they are retired.
    pub fn rotate(&mut self) -> Result<&str, RandomError> {
        let now = chrono::Utc::now();
        let id = loop {
            let suffix = random_bytes::<4>()?;
            let id = format!(
                "k{}{}",
                now.format("%Y%m%d"),
                data_encoding::BASE32_NOPAD
                    .encode(&suffix)
                    .to_ascii_lowercase()
            );
            if !self.keys.iter().any(|k| k.id == id) {
                break id;
            }
        };
        let secret = random_bytes::<32>()?;
        let created = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.keys.push(RingKey::new(id, secret, created, false));
        Ok(self.keys.last().map_or("", |k| k.id.as_str()))
    }

    /// Retires a key: what it sealed no longer opens. The last key that seals cannot be
    /// retired (nothing could be issued); retiring a retired key changes nothing.
    pub fn retire(&mut self, id: &str) -> Result<(), RetireError> {
        let active = self.keys.iter().filter(|k| !k.retired).count();
        let Some(key) = self.keys.iter_mut().find(|k| k.id == id) else {
            return Err(RetireError::Unknown(id.to_owned()));
        };
        if key.retired {
            return Ok(());
        }
        if active <= 1 {
            return Err(RetireError::LastSealing(id.to_owned()));
        }
        key.retired = true;
        Ok(())
    }

    /// Writes the ring atomically with mode 0600 (see [`write_private`]).
    pub fn save(&self, path: &Path) -> Result<(), KeyRingError> {
        let file = RingFile {
            keys: self
                .keys
                .iter()
                .map(|k| KeyFile {
                    id: k.id.clone(),
                    secret: base64::engine::general_purpose::STANDARD.encode(k.secret),
                    created: k.created.clone(),
                    retired: k.retired,
                })
                .collect(),
        };
        let mut text = serde_json::to_vec_pretty(&file)
            .map_err(|e| KeyRingError::new(path, format!("cannot encode: {e}")))?;
        text.push(b'\n');
        write_private(path, &text)
            .map_err(|e| KeyRingError::new(path, format!("cannot write: {e}")))
    }

    /// The key that seals: the newest one not retired.
    pub fn sealing_key(&self) -> Option<&RingKey> {
        self.keys.iter().rev().find(|k| !k.retired)
    }

    /// The key with this id if it may open; `None` when unknown or retired.
    pub fn key(&self, id: &str) -> Option<&RingKey> {
        self.find(id).filter(|k| !k.retired)
    }

    /// The key with this id, retired or not (to say why something does not open).
    pub fn find(&self, id: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> &[RingKey] {
        &self.keys
    }
}

/// Whether `id` may name a key: 1 to [`MAX_KEY_ID`] of `[A-Za-z0-9_-]`.
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

// === files ===

/// Reads a whole regular file of at most `limit` bytes. Opened non-blocking (a FIFO does
/// not block the read) and checked once open, so a file swapped in after a check is
/// refused by its own metadata.
pub(crate) fn read_private(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > limit {
        return Err(format!("{} bytes; at most {limit} are read", meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("more than {limit} bytes; at most {limit} are read"));
    }
    Ok(bytes)
}

/// Replaces `path` with `bytes` atomically, readable by its owner only: a new file (mode
/// 0600, never an existing one) beside it, written and synced, renamed over `path`, and
/// the directory synced so the rename survives a crash. A reader sees the old file or the
/// new one whole.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let suffix = random_bytes::<8>().map_err(io::Error::other)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", data_encoding::HEXLOWER.encode(&suffix)));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What identifies a file's version cheaply: a change of any field means it may have
/// changed (an atomic rename gives a new inode; an in-place write a new mtime or size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The stamp of the file at `path` (symlinks followed, as a Kubernetes volume's are), or
/// `None` when it cannot be read.
pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let m = fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// How often a handle looks at its file.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

// === impl KeyRingHandle ===

/// The serving key ring, swapped whole when its file changes. Readers take it without
/// locks; a file that does not load keeps the last good ring (and is logged once per
/// change of the file).
pub struct KeyRingHandle {
    current: ArcSwap<KeyRing>,
    path: Option<PathBuf>,
    /// The stamp of the file as last tried, so an unchanged file is not read again and a
    /// bad one is logged once.
    tried: Mutex<Option<Stamp>>,
}

impl KeyRingHandle {
    /// Serves `ring`; with a `path`, [`KeyRingHandle::reload`] follows that file (its
    /// first call reads the file if one is there).
    pub fn new(ring: KeyRing, path: Option<PathBuf>) -> KeyRingHandle {
        KeyRingHandle {
            current: ArcSwap::from_pointee(ring),
            path,
            tried: Mutex::new(None),
        }
    }

    /// Loads the ring at `path` and follows it.
    pub fn load(path: &Path) -> Result<KeyRingHandle, KeyRingError> {
        let before = stamp(path);
        let ring = KeyRing::load(path)?;
        let handle = KeyRingHandle::new(ring, Some(path.to_owned()));
        *handle.lock() = before;
        Ok(handle)
    }

    /// The serving ring. Lock-free.
    pub fn current(&self) -> Arc<KeyRing> {
        self.current.load_full()
    }

    /// The file followed, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Stamp>> {
        self.tried.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the file again if it changed since last tried: `Ok(true)` when a new ring
    /// serves, `Ok(false)` when nothing changed, `Err` when the changed file does not load
    /// (the last good ring keeps serving).
    pub fn reload(&self) -> Result<bool, KeyRingError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let now = stamp(path);
        {
            let mut tried = self.lock();
            if *tried == now {
                return Ok(false);
            }
            *tried = now;
        }
        let ring = KeyRing::load(path)?;
        self.current.store(Arc::new(ring));
        tracing::info!(path = %path.display(), "key ring reloaded");
        Ok(true)
    }

    /// Polls the file every [`RELOAD_EVERY`] until `cancel`, logging a ring that does not
    /// load (once per change of the file).
    pub fn spawn_reload(
        self: &Arc<Self>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RELOAD_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = every.tick() => {}
                }
                let handle = Arc::clone(&this);
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || handle.reload()).await {
                    tracing::warn!(error = %e, "key ring not reloaded; the last good ring serves");
                }
            }
        })
    }
}

impl fmt::Debug for KeyRingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRingHandle")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_generated_ring_saves_and_loads_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.json");
        let mut ring = KeyRing::generate().unwrap();
        let first = ring.sealing_key().unwrap().id().to_owned();
        let second = ring.rotate().unwrap().to_owned();
        assert_ne!(first, second);
        ring.save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = KeyRing::load(&path).unwrap();
        assert_eq!(loaded.sealing_key().unwrap().id(), second);
        assert!(loaded.key(&first).is_some());
        assert_eq!(loaded.keys()[0].secret, ring.keys()[0].secret);
        // No temporary file is left beside it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn retiring_keeps_one_sealing_key() {
        let mut ring = KeyRing::generate().unwrap();
        let first = ring.sealing_key().unwrap().id().to_owned();
        assert_eq!(
            ring.retire(&first),
            Err(RetireError::LastSealing(first.clone()))
        );
        let second = ring.rotate().unwrap().to_owned();
        ring.retire(&first).unwrap();
        assert!(ring.key(&first).is_none());
        assert!(ring.find(&first).unwrap().is_retired());
        assert_eq!(ring.sealing_key().unwrap().id(), second);
        assert_eq!(
            ring.retire("nope"),
            Err(RetireError::Unknown("nope".into()))
        );
        // Retiring the newest while an older key is active: the older one seals again.
        let third = ring.rotate().unwrap().to_owned();
        ring.retire(&third).unwrap();
        assert_eq!(ring.sealing_key().unwrap().id(), second);
    }

    #[test]
    fn bad_files_are_refused_with_what_is_wrong() {
        let secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let key = |id: &str, secret: &str, created: &str| {
            format!(r#"{{"id":"{id}","secret":"{secret}","created":"{created}"}}"#)
        };
        let good = key("k1", &secret, "2026-01-01T00:00:00Z");
        let cases = [
            ("{}".to_owned(), "not a key ring file"),
            (r#"{"keys":[]}"#.to_owned(), "no keys"),
            (format!(r#"{{"keys":[{good},{good}]}}"#), "appears twice"),
            (
                format!(
                    r#"{{"keys":[{}]}}"#,
                    key("k.1", &secret, "2026-01-01T00:00:00Z")
                ),
                "is not 1 to 64 characters",
            ),
            (
                format!(
                    r#"{{"keys":[{}]}}"#,
                    key("k1", "c2hvcnQ=", "2026-01-01T00:00:00Z")
                ),
                "not base64 of 32 bytes",
            ),
            (
                format!(r#"{{"keys":[{}]}}"#, key("k1", &secret, "yesterday")),
                "not an RFC 3339 time",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.json");
        for (text, expected) in cases {
            fs::write(&path, &text).unwrap();
            let e = KeyRing::load(&path).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
            assert!(e.contains("ring.json"), "{e}");
        }
        fs::write(&path, format!(r#"{{"keys":[{good}]}}"#)).unwrap();
        assert!(KeyRing::load(&path).is_ok());
        let e = KeyRing::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let ring = KeyRing::generate().unwrap();
        let secret = base64::engine::general_purpose::STANDARD.encode(ring.keys()[0].secret);
        let text = format!("{ring:?}");
        assert!(!text.contains(&secret), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }

    #[test]
    fn the_handle_reloads_a_changed_file_and_keeps_the_last_good_ring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.json");
        let mut ring = KeyRing::generate().unwrap();
        ring.save(&path).unwrap();
        let handle = KeyRingHandle::load(&path).unwrap();
        assert!(!handle.reload().unwrap(), "unchanged");
        let new = ring.rotate().unwrap().to_owned();
        ring.save(&path).unwrap();
        assert!(handle.reload().unwrap());
        assert_eq!(handle.current().sealing_key().unwrap().id(), new);
        fs::write(&path, "{ broken").unwrap();
        assert!(handle.reload().is_err());
        assert_eq!(handle.current().sealing_key().unwrap().id(), new);
        // The same broken file is not tried again.
        assert!(!handle.reload().unwrap());
    }
}
