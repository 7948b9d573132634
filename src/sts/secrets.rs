//! The secrets store: users' access keys (`AKIA…`, at most two per user, active or
//! inactive) and virtual MFA devices (TOTP secrets). It is a file apart from the bundle
//! (the bundle may be public; these are secrets), sealed with the key ring and written
//! atomically with mode 0600. A [`SecretsHandle`] follows the file (and the ring) and
//! keeps the last good store; it also remembers, per MFA device, the last step a code was
//! accepted for, so a code is never accepted twice.
//!
//! The file: `{"format":"warden-secrets","version":1,"key":"<ring key id>","sealed":"<base64url(nonce (24 bytes) || ciphertext)>"}`,
//! the associated data being `warden-secrets v1 <key id>`. The plaintext:
//! `{"access_keys":[{"id":"AKIA…","user":"arn:aws:iam::ACCT:user/NAME","secret":"…","status":"Active","created":"RFC 3339"}],
//!   "mfa_devices":[{"serial":"arn:aws:iam::ACCT:mfa/NAME","user":"…","secret":"<base32>","enabled":"RFC 3339"}]}`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use base64::Engine as _;
use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead as _, Payload};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::error::{Code, StsError};
use super::keyring::{
    KeyRing, KeyRingHandle, RELOAD_EVERY, RandomError, Stamp, is_key_id, random_bytes,
    read_private, stamp, write_private,
};
use super::token::{INVALID, KeyIdKind, new_access_key_id};
use super::totp;

/// The largest store file read.
pub const MAX_STORE_BYTES: u64 = 64 << 20;
/// Access keys per user, as AWS's quota.
pub const MAX_KEYS_PER_USER: usize = 2;
/// MFA devices per user, as AWS's quota.
pub const MAX_MFA_PER_USER: usize = 8;
/// Bytes of a virtual MFA device's secret (160 bits, as RFC 4226 recommends).
pub const MFA_SECRET_LEN: usize = 20;

const FORMAT: &str = "warden-secrets";
const VERSION: u32 = 1;
const NONCE_LEN: usize = 24;

/// Why a store could not be read or written: the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("secrets store `{}`: {what}", path.display())]
pub struct SecretsError {
    pub path: PathBuf,
    pub what: String,
}

impl SecretsError {
    fn new(path: &Path, what: impl Into<String>) -> SecretsError {
        SecretsError {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}

/// What a change to the store refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("`{0}` is not an IAM user ARN (`arn:aws:iam::ACCOUNT:user/NAME`)")]
    NotAUser(String),
    #[error(
        "user `{0}` has {MAX_KEYS_PER_USER} access keys already (the most a user has, as in AWS); delete one first"
    )]
    TooManyKeys(String),
    #[error("user `{user}` has no access key `{key}`")]
    NoSuchKey { user: String, key: String },
    #[error("`{0}` is not an MFA device name (1 to 128 of letters, digits and `+=,.@_-`)")]
    BadDeviceName(String),
    #[error("the MFA device `{0}` exists already")]
    DeviceExists(String),
    #[error(
        "user `{0}` has {MAX_MFA_PER_USER} MFA devices already (the most a user has, as in AWS)"
    )]
    TooManyDevices(String),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Whether an access key signs requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
pub enum KeyStatus {
    Active,
    Inactive,
}

// === impl AccessKey ===

/// A user's long-term access key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// `AKIA` + 16 characters.
    pub id: String,
    #[serde(rename = "user")]
    pub user_arn: String,
    secret: String,
    pub status: KeyStatus,
    /// RFC 3339.
    pub created: String,
}

impl AccessKey {
    /// The secret access key: for verifying signatures, and shown once when created.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn is_active(&self) -> bool {
        self.status == KeyStatus::Active
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("user_arn", &self.user_arn)
            .field("secret", &"<redacted>")
            .field("status", &self.status)
            .field("created", &self.created)
            .finish()
    }
}

// === impl MfaDevice ===

/// A user's virtual MFA device.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaDevice {
    /// `arn:aws:iam::ACCT:mfa/NAME`.
    pub serial: String,
    pub user_arn: String,
    secret: Vec<u8>,
    /// RFC 3339.
    pub enabled_at: String,
}

impl MfaDevice {
    /// The TOTP secret.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl fmt::Debug for MfaDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaDevice")
            .field("serial", &self.serial)
            .field("user_arn", &self.user_arn)
            .field("secret", &"<redacted>")
            .field("enabled_at", &self.enabled_at)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaFile {
    serial: String,
    user: String,
    /// Base32 (RFC 4648, no padding), as authenticator apps take it.
    secret: String,
    enabled: String,
}

/// A device just enabled: what the user puts in an authenticator app, shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct EnabledMfa {
    pub serial: String,
    /// The secret in base32 without padding (`Base32StringSeed`).
    pub base32_secret: String,
    /// `otpauth://totp/…`, for a QR code.
    pub otpauth_uri: String,
    pub enabled_at: String,
}

impl fmt::Debug for EnabledMfa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnabledMfa")
            .field("serial", &self.serial)
            .field("base32_secret", &"<redacted>")
            .field("otpauth_uri", &"<redacted>")
            .field("enabled_at", &self.enabled_at)
            .finish()
    }
}

// === impl SecretsStore ===

/// Users' access keys by id and MFA devices by serial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretsStore {
    keys: BTreeMap<String, AccessKey>,
    devices: BTreeMap<String, MfaDevice>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    version: u32,
    key: String,
    sealed: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Contents {
    #[serde(default)]
    access_keys: Vec<AccessKey>,
    #[serde(default)]
    mfa_devices: Vec<MfaFile>,
}

fn aad(key_id: &str) -> String {
    format!("{FORMAT} v{VERSION} {key_id}")
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl SecretsStore {
    /// An empty store.
    pub fn new() -> SecretsStore {
        SecretsStore::default()
    }

    /// Reads, opens and checks the store at `path` with `ring`. Every failure names the
    /// file and what is wrong: not a store, sealed with a key the ring does not hold or has
    /// retired, altered (or sealed by another ring), contents that do not check.
    pub fn load(path: &Path, ring: &KeyRing) -> Result<SecretsStore, SecretsError> {
        let bytes = read_private(path, MAX_STORE_BYTES).map_err(|e| SecretsError::new(path, e))?;
        SecretsStore::open(&bytes, ring).map_err(|e| SecretsError::new(path, e))
    }

    /// [`SecretsStore::load`], or an empty store when no file is at `path` (the first
    /// `warden keys create`).
    pub fn load_or_empty(path: &Path, ring: &KeyRing) -> Result<SecretsStore, SecretsError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SecretsStore::new()),
            _ => SecretsStore::load(path, ring),
        }
    }

    fn open(bytes: &[u8], ring: &KeyRing) -> Result<SecretsStore, String> {
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| format!("not a secrets store ({e})"))?;
        if envelope.format != FORMAT || envelope.version != VERSION {
            return Err(format!(
                "not a secrets store of a known version (`{}` version {}; expected `{FORMAT}` version {VERSION})",
                envelope.format.escape_debug(),
                envelope.version
            ));
        }
        let id = &envelope.key;
        if !is_key_id(id) {
            return Err("the key id it names is malformed".into());
        }
        let key = match ring.find(id) {
            None => {
                return Err(format!(
                    "sealed with key `{id}`, which the key ring does not hold (another key ring?)"
                ));
            }
            Some(k) if k.is_retired() => {
                return Err(format!(
                    "sealed with key `{id}`, which the key ring has retired; re-seal the store before retiring its key (`warden keyring retire --store`)"
                ));
            }
            Some(k) => k,
        };
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(envelope.sealed.as_bytes())
            .map_err(|_| "the sealed part is not base64url".to_owned())?;
        let (Some(nonce), Some(sealed)) = (body.get(..NONCE_LEN), body.get(NONCE_LEN..)) else {
            return Err("the sealed part is too short".into());
        };
        let plain = key
            .store_cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad(id).as_bytes(),
                },
            )
            .map_err(|_| {
                format!(
                    "does not open with key `{id}`: the file was altered, or the key ring holds another key under that id"
                )
            })?;
        let contents: Contents = serde_json::from_slice(&plain)
            .map_err(|e| format!("the sealed contents do not read ({e})"))?;
        SecretsStore::from_contents(contents)
    }

    fn from_contents(contents: Contents) -> Result<SecretsStore, String> {
        let mut store = SecretsStore::new();
        let mut per_user: HashMap<&str, usize> = HashMap::new();
        for (n, k) in contents.access_keys.iter().enumerate() {
            let at = format!("access_keys[{n}]");
            if !is_access_key_id(&k.id, "AKIA") {
                return Err(format!(
                    "{at}: `{}` is not an `AKIA…` access key id",
                    k.id.escape_debug()
                ));
            }
            user_parts(&k.user_arn).map_err(|e| format!("{at} (`{}`): {e}", k.id))?;
            if k.secret.len() != 40 {
                return Err(format!(
                    "{at} (`{}`): the secret is not 40 characters",
                    k.id
                ));
            }
            let count = per_user.entry(k.user_arn.as_str()).or_default();
            *count += 1;
            if *count > MAX_KEYS_PER_USER {
                return Err(format!(
                    "{at} (`{}`): user `{}` has more than {MAX_KEYS_PER_USER} access keys",
                    k.id, k.user_arn
                ));
            }
            if store.keys.insert(k.id.clone(), k.clone()).is_some() {
                return Err(format!("{at}: `{}` appears twice", k.id));
            }
        }
        per_user.clear();
        for (n, d) in contents.mfa_devices.into_iter().enumerate() {
            let at = format!("mfa_devices[{n}]");
            let (account, _) =
                user_parts(&d.user).map_err(|e| format!("{at} (`{}`): {e}", d.serial))?;
            let name = d
                .serial
                .strip_prefix(&format!("arn:aws:iam::{account}:mfa/"))
                .unwrap_or_default();
            if !is_device_name(name) {
                return Err(format!(
                    "{at}: `{}` is not an MFA serial of the user's account (`arn:aws:iam::{account}:mfa/NAME`)",
                    d.serial.escape_debug()
                ));
            }
            let secret = data_encoding::BASE32_NOPAD
                .decode(d.secret.as_bytes())
                .ok()
                .filter(|s| (10..=64).contains(&s.len()))
                .ok_or_else(|| {
                    format!(
                        "{at} (`{}`): the secret is not base32 of 10 to 64 bytes",
                        d.serial
                    )
                })?;
            if store.devices_of(&d.user).count() >= MAX_MFA_PER_USER {
                return Err(format!(
                    "{at} (`{}`): user `{}` has more than {MAX_MFA_PER_USER} MFA devices",
                    d.serial, d.user
                ));
            }
            let device = MfaDevice {
                serial: d.serial.clone(),
                user_arn: d.user,
                secret,
                enabled_at: d.enabled,
            };
            if store.devices.insert(d.serial.clone(), device).is_some() {
                return Err(format!("{at}: `{}` appears twice", d.serial));
            }
        }
        Ok(store)
    }

    /// Seals the store with the ring's sealing key and writes it atomically with mode 0600.
    pub fn save(&self, path: &Path, ring: &KeyRing) -> Result<(), SecretsError> {
        let fail = |what: String| SecretsError::new(path, what);
        let key = ring
            .sealing_key()
            .ok_or_else(|| fail("no key of the key ring seals: every key is retired".into()))?;
        let contents = Contents {
            access_keys: self.keys.values().cloned().collect(),
            mfa_devices: self
                .devices
                .values()
                .map(|d| MfaFile {
                    serial: d.serial.clone(),
                    user: d.user_arn.clone(),
                    secret: data_encoding::BASE32_NOPAD.encode(&d.secret),
                    enabled: d.enabled_at.clone(),
                })
                .collect(),
        };
        let plain =
            serde_json::to_vec(&contents).map_err(|e| fail(format!("cannot encode: {e}")))?;
        let nonce = random_bytes::<NONCE_LEN>().map_err(|e| fail(e.to_string()))?;
        let sealed = key
            .store_cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: aad(key.id()).as_bytes(),
                },
            )
            .map_err(|_| fail("cannot seal".into()))?;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&sealed);
        let envelope = Envelope {
            format: FORMAT.into(),
            version: VERSION,
            key: key.id().to_owned(),
            sealed: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body),
        };
        let mut text =
            serde_json::to_vec(&envelope).map_err(|e| fail(format!("cannot encode: {e}")))?;
        text.push(b'\n');
        write_private(path, &text).map_err(|e| fail(format!("cannot write: {e}")))
    }

    // --- access keys ---

    /// A new active access key for `user_arn` (an `AKIA…` id and a 40-character secret).
    /// Refused when the user has [`MAX_KEYS_PER_USER`] keys already, active or not.
    pub fn create_key(&mut self, user_arn: &str) -> Result<AccessKey, EditError> {
        user_parts(user_arn).map_err(|_| EditError::NotAUser(user_arn.to_owned()))?;
        if self.keys_of(user_arn).count() >= MAX_KEYS_PER_USER {
            return Err(EditError::TooManyKeys(user_arn.to_owned()));
        }
        let id = loop {
            let id = new_access_key_id(KeyIdKind::LongTerm).map_err(|_| RandomError)?;
            if !self.keys.contains_key(&id) {
                break id;
            }
        };
        // 30 random bytes are 40 characters of base64, as AWS's secrets.
        let secret = base64::engine::general_purpose::STANDARD.encode(random_bytes::<30>()?);
        let key = AccessKey {
            id: id.clone(),
            user_arn: user_arn.to_owned(),
            secret,
            status: KeyStatus::Active,
            created: now_rfc3339(),
        };
        self.keys.insert(id, key.clone());
        Ok(key)
    }

    /// Every access key, by id.
    pub fn keys(&self) -> impl Iterator<Item = &AccessKey> {
        self.keys.values()
    }

    /// The user's access keys.
    pub fn keys_of<'a>(&'a self, user_arn: &'a str) -> impl Iterator<Item = &'a AccessKey> {
        self.keys.values().filter(move |k| k.user_arn == user_arn)
    }

    /// The access key with this id, active or not.
    pub fn key(&self, access_key_id: &str) -> Option<&AccessKey> {
        self.keys.get(access_key_id)
    }

    /// The access key with this id if it may sign requests; else `InvalidClientTokenId`
    /// with AWS's message (unknown and inactive keys are refused alike, as AWS does).
    pub fn active_key(&self, access_key_id: &str) -> Result<&AccessKey, StsError> {
        self.key(access_key_id)
            .filter(|k| k.is_active())
            .ok_or_else(|| StsError::new(Code::InvalidClientTokenId, format!("{INVALID}.")))
    }

    /// Activates or deactivates one of the user's keys.
    pub fn set_key_status(
        &mut self,
        user_arn: &str,
        access_key_id: &str,
        status: KeyStatus,
    ) -> Result<(), EditError> {
        let key = self
            .keys
            .get_mut(access_key_id)
            .filter(|k| k.user_arn == user_arn)
            .ok_or_else(|| EditError::NoSuchKey {
                user: user_arn.to_owned(),
                key: access_key_id.to_owned(),
            })?;
        key.status = status;
        Ok(())
    }

    /// Deletes one of the user's keys.
    pub fn delete_key(&mut self, user_arn: &str, access_key_id: &str) -> Result<(), EditError> {
        if self
            .keys
            .get(access_key_id)
            .is_none_or(|k| k.user_arn != user_arn)
        {
            return Err(EditError::NoSuchKey {
                user: user_arn.to_owned(),
                key: access_key_id.to_owned(),
            });
        }
        self.keys.remove(access_key_id);
        Ok(())
    }

    // --- MFA devices ---

    /// Enables a new virtual MFA device `name` for the user: serial
    /// `arn:aws:iam::ACCT:mfa/NAME`, a random 160-bit secret.
    pub fn enable_mfa(&mut self, user_arn: &str, name: &str) -> Result<EnabledMfa, EditError> {
        let (account, _) =
            user_parts(user_arn).map_err(|_| EditError::NotAUser(user_arn.to_owned()))?;
        if !is_device_name(name) {
            return Err(EditError::BadDeviceName(name.to_owned()));
        }
        let serial = format!("arn:aws:iam::{account}:mfa/{name}");
        if self.devices.contains_key(&serial) {
            return Err(EditError::DeviceExists(serial));
        }
        if self.devices_of(user_arn).count() >= MAX_MFA_PER_USER {
            return Err(EditError::TooManyDevices(user_arn.to_owned()));
        }
        let secret = random_bytes::<MFA_SECRET_LEN>()?;
        let base32_secret = data_encoding::BASE32_NOPAD.encode(&secret);
        let enabled_at = now_rfc3339();
        let otpauth_uri = otpauth_uri(account, name, &base32_secret);
        self.devices.insert(
            serial.clone(),
            MfaDevice {
                serial: serial.clone(),
                user_arn: user_arn.to_owned(),
                secret: secret.to_vec(),
                enabled_at: enabled_at.clone(),
            },
        );
        Ok(EnabledMfa {
            serial,
            base32_secret,
            otpauth_uri,
            enabled_at,
        })
    }

    /// The MFA device with this serial.
    pub fn mfa(&self, serial: &str) -> Option<&MfaDevice> {
        self.devices.get(serial)
    }

    /// The user's MFA devices.
    pub fn devices_of<'a>(&'a self, user_arn: &'a str) -> impl Iterator<Item = &'a MfaDevice> {
        self.devices
            .values()
            .filter(move |d| d.user_arn == user_arn)
    }
}

/// `otpauth://totp/warden:NAME@ACCT?secret=…&issuer=warden&algorithm=SHA1&digits=6&period=30`
/// (Google Authenticator's key URI format).
fn otpauth_uri(account: &str, name: &str, base32_secret: &str) -> String {
    let label: String = format!("warden:{name}@{account}")
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'@') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/{label}?secret={base32_secret}&issuer=warden&algorithm=SHA1&digits={}&period={}",
        totp::DIGITS,
        totp::STEP
    )
}

/// The account and the name of an IAM user's ARN `arn:aws:iam::ACCT:user/PATH/NAME`.
pub fn user_parts(arn: &str) -> Result<(&str, &str), String> {
    let bad = || {
        format!(
            "`{}` is not an IAM user ARN (`arn:aws:iam::ACCOUNT:user/NAME`)",
            arn.escape_debug()
        )
    };
    if arn.len() > 2048 || arn.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(bad)?;
    let (account, resource) = rest.split_once(':').ok_or_else(bad)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let path = resource.strip_prefix("user/").ok_or_else(bad)?;
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name.len() > 64 || path.split('/').any(str::is_empty) {
        return Err(bad());
    }
    Ok((account, name))
}

/// A virtual MFA device name, as AWS's: 1 to 128 of `[\w+=,.@-]`.
fn is_device_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// `PREFIX` and 16 of `A-Z2-7`.
fn is_access_key_id(id: &str, prefix: &str) -> bool {
    id.len() == 20
        && id.starts_with(prefix)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

// === impl SecretsHandle ===

/// The serving secrets store, swapped whole when its file (or the key ring) changes; the
/// last good store keeps serving when a new one does not load. It also keeps the last
/// step an MFA code was accepted for, per device, in memory (the file is not written on
/// logins): a code is accepted once per sidecar.
pub struct SecretsHandle {
    ring: Arc<KeyRingHandle>,
    path: Option<PathBuf>,
    current: ArcSwap<SecretsStore>,
    /// The file's stamp and the ring as last tried: either changing means a new read.
    tried: Mutex<(Option<Stamp>, Arc<KeyRing>)>,
    /// Per device serial, the last step a code was accepted for; a code of that step or
    /// an earlier one is a replay. Entries for devices the store no longer has are
    /// dropped on reload, so it holds at most one entry per device.
    used_steps: Mutex<HashMap<String, u64>>,
}

impl SecretsHandle {
    /// Serves `store`; with a `path`, [`SecretsHandle::reload`] follows that file, opened
    /// with `ring`'s current ring: its first call reads the file if one is there (a store
    /// that appears later too).
    pub fn new(
        store: SecretsStore,
        path: Option<PathBuf>,
        ring: Arc<KeyRingHandle>,
    ) -> SecretsHandle {
        let tried = (None, ring.current());
        SecretsHandle {
            ring,
            path,
            current: ArcSwap::from_pointee(store),
            tried: Mutex::new(tried),
            used_steps: Mutex::new(HashMap::new()),
        }
    }

    /// Loads the store at `path` with the ring's current ring, and follows it.
    pub fn load(path: &Path, ring: Arc<KeyRingHandle>) -> Result<SecretsHandle, SecretsError> {
        let before = stamp(path);
        let keys = ring.current();
        let store = SecretsStore::load(path, &keys)?;
        let handle = SecretsHandle::new(store, Some(path.to_owned()), ring);
        handle.lock_tried().0 = before;
        Ok(handle)
    }

    /// The serving store. Lock-free.
    pub fn current(&self) -> Arc<SecretsStore> {
        self.current.load_full()
    }

    fn lock_tried(&self) -> std::sync::MutexGuard<'_, (Option<Stamp>, Arc<KeyRing>)> {
        self.tried.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_steps(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.used_steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the file again if it or the key ring changed since last tried: `Ok(true)`
    /// when a new store serves, `Ok(false)` when nothing changed (or no file is there yet),
    /// `Err` when it does not load (the last good store keeps serving).
    pub fn reload(&self) -> Result<bool, SecretsError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let now = stamp(path);
        let ring = self.ring.current();
        {
            let mut tried = self.lock_tried();
            if tried.0 == now && Arc::ptr_eq(&tried.1, &ring) {
                return Ok(false);
            }
            *tried = (now, Arc::clone(&ring));
        }
        if now.is_none() && self.current().keys.is_empty() && self.current().devices.is_empty() {
            return Ok(false);
        }
        let store = SecretsStore::load(path, &ring)?;
        self.lock_steps()
            .retain(|serial, _| store.devices.contains_key(serial));
        self.current.store(Arc::new(store));
        tracing::info!(path = %path.display(), "secrets store reloaded");
        Ok(true)
    }

    /// Polls the file and the ring every [`RELOAD_EVERY`] until `cancel`, logging a store
    /// that does not load (once per change).
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
                    tracing::warn!(error = %e, "secrets store not reloaded; the last good store serves");
                }
            }
        })
    }

    /// Checks an MFA code for the device `serial` at `now`: the time it was authenticated
    /// (`now`, for `aws:MultiFactorAuthAge`), or `AccessDenied` with AWS's messages when
    /// the device is unknown, belongs to another user than `caller_user` (when the caller
    /// is a user), or the code is wrong or was accepted already (a replay: this code or an
    /// older one of the same device). A code that is not six digits is a `ValidationError`
    /// as AWS's.
    pub fn verify_mfa(
        &self,
        serial: &str,
        code: &str,
        caller_user: Option<&str>,
        now: SystemTime,
    ) -> Result<SystemTime, StsError> {
        if code.len() != totp::DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StsError::validation(format!(
                "1 validation error detected: Value '{}' at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]*, and have length 6",
                code.chars().take(16).collect::<String>().escape_debug()
            )));
        }
        let store = self.current();
        let device = store
            .mfa(serial)
            .filter(|d| caller_user.is_none_or(|u| d.user_arn == u))
            .ok_or_else(|| {
                StsError::denied(
                    "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.",
                )
            })?;
        let invalid = |why: &str| {
            StsError::denied(format!(
                "MultiFactorAuthentication failed with invalid MFA one time pass code{why}."
            ))
        };
        let step =
            totp::verify(device.secret(), code, now, totp::WINDOW).ok_or_else(|| invalid(""))?;
        let mut used = self.lock_steps();
        if used.get(serial).is_some_and(|last| step <= *last) {
            return Err(invalid(" (this code, or a later one, was used already)"));
        }
        used.insert(serial.to_owned(), step);
        Ok(now)
    }
}

impl fmt::Debug for SecretsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsHandle")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const BOB: &str = "arn:aws:iam::111122223333:user/team/bob";

    fn setup() -> (tempfile::TempDir, PathBuf, KeyRing) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        (dir, path, KeyRing::generate().unwrap())
    }

    #[test]
    fn a_store_round_trips_sealed_with_mode_0600() {
        use std::os::unix::fs::MetadataExt as _;
        let (_dir, path, ring) = setup();
        let mut store = SecretsStore::new();
        let a = store.create_key(ALICE).unwrap();
        let b = store.create_key(BOB).unwrap();
        store
            .set_key_status(BOB, &b.id, KeyStatus::Inactive)
            .unwrap();
        let mfa = store.enable_mfa(ALICE, "alice-phone").unwrap();
        assert_eq!(mfa.serial, "arn:aws:iam::111122223333:mfa/alice-phone");
        assert!(
            mfa.otpauth_uri
                .starts_with("otpauth://totp/warden:alice-phone@111122223333?secret=")
        );
        store.save(&path, &ring).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(a.secret()) && !text.contains(ALICE),
            "sealed: {text}"
        );
        let loaded = SecretsStore::load(&path, &ring).unwrap();
        assert_eq!(loaded, store);
        assert_eq!(loaded.active_key(&a.id).unwrap().secret(), a.secret());
        assert_eq!(
            loaded.active_key(&b.id).unwrap_err().code,
            Code::InvalidClientTokenId
        );
        assert_eq!(
            loaded.active_key("AKIANOTHERE").unwrap_err().code,
            Code::InvalidClientTokenId
        );
        let device = loaded.mfa(&mfa.serial).unwrap();
        assert_eq!(
            data_encoding::BASE32_NOPAD.encode(device.secret()),
            mfa.base32_secret
        );
    }

    #[test]
    fn two_keys_per_user_at_most() {
        let mut store = SecretsStore::new();
        let first = store.create_key(ALICE).unwrap();
        let second = store.create_key(ALICE).unwrap();
        assert!(first.id.starts_with("AKIA") && first.id.len() == 20);
        assert_eq!(first.secret().len(), 40);
        assert_ne!(first.id, second.id);
        store
            .set_key_status(ALICE, &first.id, KeyStatus::Inactive)
            .unwrap();
        assert_eq!(
            store.create_key(ALICE),
            Err(EditError::TooManyKeys(ALICE.into()))
        );
        store.create_key(BOB).unwrap();
        store.delete_key(ALICE, &first.id).unwrap();
        store.create_key(ALICE).unwrap();
        assert_eq!(store.keys_of(ALICE).count(), 2);
        // Another user's key is not theirs to change.
        assert!(matches!(
            store.delete_key(BOB, &second.id),
            Err(EditError::NoSuchKey { .. })
        ));
        assert!(matches!(
            store.create_key("arn:aws:iam::111122223333:role/R"),
            Err(EditError::NotAUser(_))
        ));
    }

    #[test]
    fn an_altered_store_or_another_ring_is_refused_clearly() {
        let (_dir, path, ring) = setup();
        let mut store = SecretsStore::new();
        store.create_key(ALICE).unwrap();
        store.save(&path, &ring).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sealed = envelope["sealed"].as_str().unwrap().to_owned();
        let mut flipped = sealed.into_bytes();
        let i = flipped.len() / 2;
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        envelope["sealed"] = String::from_utf8(flipped).unwrap().into();
        std::fs::write(&path, envelope.to_string()).unwrap();
        let e = SecretsStore::load(&path, &ring).unwrap_err().to_string();
        assert!(
            e.contains("secrets.json") && e.contains("was altered"),
            "{e}"
        );

        store.save(&path, &ring).unwrap();
        let other = KeyRing::generate().unwrap();
        let e = SecretsStore::load(&path, &other).unwrap_err().to_string();
        assert!(e.contains("which the key ring does not hold"), "{e}");

        std::fs::write(&path, "not json").unwrap();
        let e = SecretsStore::load(&path, &ring).unwrap_err().to_string();
        assert!(e.contains("not a secrets store"), "{e}");
    }

    #[test]
    fn a_store_sealed_with_a_retired_key_says_so() {
        let (_dir, path, mut ring) = setup();
        let old = ring.sealing_key().unwrap().id().to_owned();
        SecretsStore::new().save(&path, &ring).unwrap();
        ring.rotate().unwrap();
        // Still sealed with the old key, which still opens it.
        assert!(SecretsStore::load(&path, &ring).is_ok());
        ring.retire(&old).unwrap();
        let e = SecretsStore::load(&path, &ring).unwrap_err().to_string();
        assert!(e.contains("retired"), "{e}");
    }

    #[test]
    fn a_missing_store_is_empty_only_when_asked() {
        let (_dir, path, ring) = setup();
        assert_eq!(
            SecretsStore::load_or_empty(&path, &ring).unwrap(),
            SecretsStore::new()
        );
        assert!(SecretsStore::load(&path, &ring).is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut store = SecretsStore::new();
        let key = store.create_key(ALICE).unwrap();
        let mfa = store.enable_mfa(ALICE, "phone").unwrap();
        let device = store.mfa(&mfa.serial).unwrap();
        let text = format!("{store:?} {key:?} {mfa:?} {device:?}");
        assert!(!text.contains(key.secret()), "{text}");
        assert!(!text.contains(&mfa.base32_secret), "{text}");
        assert!(!text.contains(&format!("{:?}", device.secret())), "{text}");
    }

    fn handle_with_device() -> (tempfile::TempDir, SecretsHandle, EnabledMfa, Vec<u8>) {
        let (dir, path, ring) = setup();
        let mut store = SecretsStore::new();
        let mfa = store.enable_mfa(ALICE, "phone").unwrap();
        store.save(&path, &ring).unwrap();
        let ring_path = dir.path().join("ring.json");
        ring.save(&ring_path).unwrap();
        let ring = Arc::new(KeyRingHandle::load(&ring_path).unwrap());
        let handle = SecretsHandle::load(&path, ring).unwrap();
        let secret = handle.current().mfa(&mfa.serial).unwrap().secret().to_vec();
        (dir, handle, mfa, secret)
    }

    #[test]
    fn an_mfa_code_is_accepted_once() {
        let (_dir, handle, mfa, secret) = handle_with_device();
        let t = 1_700_000_000;
        let now = UNIX_EPOCH + Duration::from_secs(t);
        let code = totp::code_at(&secret, t);
        assert_eq!(
            handle
                .verify_mfa(&mfa.serial, &code, Some(ALICE), now)
                .unwrap(),
            now
        );
        let e = handle
            .verify_mfa(&mfa.serial, &code, Some(ALICE), now)
            .unwrap_err();
        assert_eq!(e.code, Code::AccessDenied);
        assert!(e.message.contains("used already"), "{e}");
        // The previous step's code, still within the window: older than the one used.
        let previous = totp::code_at(&secret, t - 30);
        assert!(
            handle
                .verify_mfa(&mfa.serial, &previous, None, now)
                .is_err()
        );
        // The next step's code is new.
        let next = totp::code_at(&secret, t + 30);
        let later = now + Duration::from_secs(30);
        assert!(handle.verify_mfa(&mfa.serial, &next, None, later).is_ok());
    }

    #[test]
    fn wrong_codes_devices_and_users_are_refused() {
        let (_dir, handle, mfa, secret) = handle_with_device();
        let t = 1_700_000_000;
        let now = UNIX_EPOCH + Duration::from_secs(t);
        let code = totp::code_at(&secret, t);
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        let e = handle
            .verify_mfa(&mfa.serial, &wrong, None, now)
            .unwrap_err();
        assert_eq!(e.code, Code::AccessDenied);
        assert!(e.message.contains("invalid MFA one time pass code"), "{e}");
        let e = handle
            .verify_mfa("arn:aws:iam::111122223333:mfa/none", &code, None, now)
            .unwrap_err();
        assert!(e.message.contains("unable to validate MFA code"), "{e}");
        let e = handle
            .verify_mfa(&mfa.serial, &code, Some(BOB), now)
            .unwrap_err();
        assert!(e.message.contains("associated with this user"), "{e}");
        let e = handle
            .verify_mfa(&mfa.serial, "12ab56", None, now)
            .unwrap_err();
        assert_eq!(e.code, Code::ValidationError);
        // None of these used the code up.
        assert!(
            handle
                .verify_mfa(&mfa.serial, &code, Some(ALICE), now)
                .is_ok()
        );
    }

    #[test]
    fn the_handle_reloads_and_keeps_the_last_good_store() {
        let (dir, handle, _mfa, _) = handle_with_device();
        let path = dir.path().join("secrets.json");
        let ring = KeyRing::load(&dir.path().join("ring.json")).unwrap();
        assert!(!handle.reload().unwrap());
        let mut store = (*handle.current()).clone();
        let key = store.create_key(BOB).unwrap();
        store.save(&path, &ring).unwrap();
        assert!(handle.reload().unwrap());
        assert!(handle.current().key(&key.id).is_some());
        std::fs::write(&path, "garbage").unwrap();
        assert!(handle.reload().is_err());
        assert!(
            handle.current().key(&key.id).is_some(),
            "the last good store serves"
        );
        assert!(!handle.reload().unwrap(), "a bad file is tried once");
    }
}
