//! A small client of etcd's v3 API: what the etcd source and the admin API need (a prefix
//! read at one revision, paged; transactions; a prefix watch; the cluster's status), over
//! tonic with the messages `build.rs` compiles from `proto/etcd-api`.
//!
//! Why not the `etcd-client` crate: its build script runs a system `protoc`, and a first
//! `cargo build` of warden must need none. The calls used here are a handful; their
//! messages are etcd's own.
//!
//! Everything read from etcd is hostile until checked: a read is paged (at most
//! [`PAGE_KEYS`] keys and [`MAX_MESSAGE_BYTES`] per message) and stops at the bundle's own
//! limits (entries, bytes) before it holds more; keys outside the prefix, keys that are no
//! UTF-8 path and values that are no UTF-8 text are refused with the key named.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// etcd's messages and clients, generated from `proto/etcd-api` at build time.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    pub mod etcdserverpb {
        include!(concat!(env!("OUT_DIR"), "/etcd/etcdserverpb.rs"));
    }
    pub mod mvccpb {
        include!(concat!(env!("OUT_DIR"), "/etcd/mvccpb.rs"));
    }
    pub mod authpb {
        include!(concat!(env!("OUT_DIR"), "/etcd/authpb.rs"));
    }
}

use pb::etcdserverpb as rpc;
pub use rpc::kv_client::KvClient;
pub use rpc::maintenance_client::MaintenanceClient;
pub use rpc::watch_client::WatchClient;

/// Keys asked for per page of a prefix read. A page whose message would pass
/// [`MAX_MESSAGE_BYTES`] (large values, side by side) is asked again with half as many
/// keys, down to one, so that no content of etcd makes every read fail.
pub const PAGE_KEYS: i64 = 1000;

/// The largest message taken from etcd (checked against the message's length prefix,
/// before it is read).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// How long connecting to an endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// HTTP/2 keepalive: a connection whose peer stops answering (etcd killed, a partition) is
/// found dead within about interval + timeout, so a watch ends instead of waiting forever.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call to etcd failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// An endpoint that is no URL.
    #[error("etcd endpoint `{endpoint}`: {message}")]
    Endpoint { endpoint: String, message: String },
    /// etcd could not be reached or answered with an error.
    #[error("etcd: {0}")]
    Call(String),
    /// The revision asked for was compacted away.
    #[error("etcd: revision {revision} was compacted (the oldest kept is {compacted})")]
    Compacted { revision: i64, compacted: i64 },
    /// What etcd holds cannot be a bundle: a key or value warden refuses.
    #[error("etcd key `{key}`: {message}")]
    Content { key: String, message: String },
    /// The prefix holds more than a bundle may.
    #[error("etcd prefix `{prefix}`: {message}")]
    TooLarge { prefix: String, message: String },
}

impl EtcdError {
    pub(crate) fn call(status: &tonic::Status) -> EtcdError {
        let message = status.message();
        if message.contains("required revision has been compacted") {
            // The revision is in the request; the caller names it (`range_at`).
            return EtcdError::Compacted {
                revision: 0,
                compacted: 0,
            };
        }
        let code = status.code();
        if message.is_empty() {
            EtcdError::Call(format!("{code:?}"))
        } else {
            EtcdError::Call(format!("{code:?}: {message}"))
        }
    }
}

/// A bundle's files as one prefix held them at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRead {
    /// The store's revision the read was made at.
    pub revision: i64,
    /// `relative path -> text`: the keys without the prefix.
    pub files: BTreeMap<String, String>,
    /// The highest `mod_revision` among the keys (0 when there are none).
    pub max_mod_revision: i64,
    /// Keys that cannot be documents (a bad path, a value too large or not UTF-8), with
    /// why: only in a read that keeps them ([`Etcd::read_prefix_keeping_refused`]); any
    /// other read fails on the first.
    pub refused: Vec<(Vec<u8>, String)>,
}

/// A connection to an etcd cluster (one or more endpoints, balanced).
#[derive(Clone)]
pub struct Etcd {
    channel: Channel,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// The end of the key range that holds every key starting with `prefix` (etcd's
/// `WithPrefix`): the prefix with its last byte below 0xff incremented; `\0` (every key)
/// when there is none.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Etcd {
    /// A client of the cluster at `endpoints` (`http://127.0.0.1:2379`, comma-separated
    /// lists split by the caller). Connects lazily: a cluster that is down now is reached
    /// when it is back.
    pub fn new(endpoints: &[String]) -> Result<Etcd, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::Endpoint {
                endpoint: String::new(),
                message: "no endpoint given".to_owned(),
            });
        }
        let mut list = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let url = if endpoint.contains("://") {
                endpoint.clone()
            } else {
                format!("http://{endpoint}")
            };
            if !url.starts_with("http://") {
                return Err(EtcdError::Endpoint {
                    endpoint: endpoint.clone(),
                    message: "only http:// endpoints are supported (run etcd on loopback or a \
                              private network, or put a TLS proxy beside it)"
                        .to_owned(),
                });
            }
            let e = Endpoint::from_shared(url)
                .map_err(|e| EtcdError::Endpoint {
                    endpoint: endpoint.clone(),
                    message: e.to_string(),
                })?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                .keep_alive_timeout(KEEPALIVE_TIMEOUT)
                .keep_alive_while_idle(true);
            list.push(e);
        }
        Ok(Etcd {
            channel: Channel::balance_list(list.into_iter()),
            endpoints: endpoints.to_vec(),
        })
    }

    /// The endpoints, for logs and readiness.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn kv(&self) -> KvClient<Channel> {
        KvClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn watch_client(&self) -> WatchClient<Channel> {
        WatchClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn maintenance(&self) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.channel.clone())
    }

    /// The cluster's current revision (a serializable-free, linearizable read of nothing).
    pub async fn revision(&self) -> Result<i64, EtcdError> {
        let response = self
            .kv()
            .range(rpc::RangeRequest {
                key: vec![0],
                limit: 1,
                count_only: true,
                ..Default::default()
            })
            .await
            .map_err(|s| EtcdError::call(&s))?
            .into_inner();
        Ok(response.header.map_or(0, |h| h.revision))
    }

    /// Every key under `prefix` as a bundle's files, read at one revision (the current
    /// one, or `at`), a page at a time, refused as soon as it holds more than a bundle may.
    pub async fn read_prefix(
        &self,
        prefix: &str,
        at: Option<i64>,
    ) -> Result<PrefixRead, EtcdError> {
        self.read_pages(prefix, at, Read::Documents).await
    }

    /// Like [`Etcd::read_prefix`], keeping the keys that cannot be documents in
    /// [`PrefixRead::refused`] instead of failing on them (each still counts toward the
    /// bundle's limit of files): a source follows the prefix on, and loads it again once
    /// they are fixed or deleted, without reading it whole on every change.
    pub async fn read_prefix_keeping_refused(
        &self,
        prefix: &str,
        at: Option<i64>,
    ) -> Result<PrefixRead, EtcdError> {
        self.read_pages(prefix, at, Read::KeepingRefused).await
    }

    /// The paths of the documents under `prefix` (keys only: no value is sent), at one
    /// revision: a listing costs the keys, not the bundle.
    pub async fn list_prefix(
        &self,
        prefix: &str,
        at: Option<i64>,
    ) -> Result<(Vec<String>, i64), EtcdError> {
        let read = self.read_pages(prefix, at, Read::Keys).await?;
        Ok((read.files.into_keys().collect(), read.revision))
    }

    async fn read_pages(
        &self,
        prefix: &str,
        at: Option<i64>,
        how: Read,
    ) -> Result<PrefixRead, EtcdError> {
        let keep_refused = how == Read::KeepingRefused;
        let end = prefix_end(prefix.as_bytes());
        let mut refused: Vec<(Vec<u8>, String)> = Vec::new();
        let mut kv = self.kv();
        let mut files = BTreeMap::new();
        let mut key = prefix.as_bytes().to_vec();
        let mut revision = at.unwrap_or(0);
        let mut max_mod_revision = 0;
        let mut bytes: u64 = 0;
        let mut limit = PAGE_KEYS;
        loop {
            let request = rpc::RangeRequest {
                key: key.clone(),
                range_end: end.clone(),
                limit,
                revision,
                keys_only: how == Read::Keys,
                sort_order: rpc::range_request::SortOrder::Ascend as i32,
                sort_target: rpc::range_request::SortTarget::Key as i32,
                ..Default::default()
            };
            let response = match kv.range(request).await {
                Ok(r) => r.into_inner(),
                Err(s) if limit > 1 && too_large(&s) => {
                    limit /= 2;
                    continue;
                }
                Err(s) => {
                    return Err(match EtcdError::call(&s) {
                        EtcdError::Compacted { .. } => EtcdError::Compacted {
                            revision,
                            compacted: 0,
                        },
                        other => other,
                    });
                }
            };
            if revision == 0 {
                revision = response.header.as_ref().map_or(0, |h| h.revision);
            }
            let last = response.kvs.last().map(|kv| kv.key.clone());
            for kv in response.kvs {
                if files.len() + refused.len() >= crate::bundle::dir::MAX_ENTRIES {
                    return Err(EtcdError::TooLarge {
                        prefix: prefix.to_owned(),
                        message: format!(
                            "more than {} keys (a bundle's limit of files)",
                            crate::bundle::dir::MAX_ENTRIES
                        ),
                    });
                }
                let (path, text) = match document(prefix, &kv.key, &kv.value) {
                    Ok(d) => d,
                    Err(why) if keep_refused => {
                        refused.push((kv.key, why));
                        continue;
                    }
                    Err(why) => {
                        return Err(EtcdError::Content {
                            key: shown(&kv.key),
                            message: why,
                        });
                    }
                };
                bytes += text.len() as u64;
                if bytes > crate::bundle::dir::MAX_BUNDLE_BYTES {
                    return Err(EtcdError::TooLarge {
                        prefix: prefix.to_owned(),
                        message: format!(
                            "more than {} bytes (a bundle's limit)",
                            crate::bundle::dir::MAX_BUNDLE_BYTES
                        ),
                    });
                }
                max_mod_revision = max_mod_revision.max(kv.mod_revision);
                files.insert(path, text);
            }
            match last {
                Some(mut after) if response.more => {
                    // The next page starts just after the last key read.
                    after.push(0);
                    key = after;
                }
                _ => break,
            }
        }
        Ok(PrefixRead {
            revision,
            files,
            max_mod_revision,
            refused,
        })
    }

    /// Runs a transaction; the response says whether its comparisons held.
    pub async fn txn(&self, request: rpc::TxnRequest) -> Result<rpc::TxnResponse, EtcdError> {
        self.kv()
            .txn(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| EtcdError::call(&s))
    }

    /// Compacts the store's history up to `revision` (tests and operators).
    pub async fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        self.kv()
            .compact(rpc::CompactionRequest {
                revision,
                physical: true,
            })
            .await
            .map(|_| ())
            .map_err(|s| EtcdError::call(&s))
    }
}

/// Where a fleet's state lives under the configured prefix (`--etcd-prefix`, `/warden/` by
/// default): each bundle document at `PREFIX bundle/PATH` (the bundle directory's layout,
/// one file per key), and `PREFIX written`, which every admin write and every `warden push`
/// puts in the same transaction, so that compare-and-swap sees deletes too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// The default prefix.
    pub const DEFAULT_PREFIX: &'static str = "/warden/";

    /// A layout under `prefix`, which must end with `/` and hold no control character.
    pub fn new(prefix: &str) -> Result<Layout, String> {
        if !prefix.ends_with('/') {
            return Err(format!("the etcd prefix `{prefix}` must end with `/`"));
        }
        if prefix.chars().any(char::is_control) {
            return Err("the etcd prefix holds a control character".to_owned());
        }
        Ok(Layout {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The prefix of every bundle document: `PREFIX bundle/`.
    pub fn bundle(&self) -> String {
        format!("{}bundle/", self.prefix)
    }

    /// The key of the bundle document at `path`.
    pub fn key(&self, path: &str) -> Vec<u8> {
        format!("{}bundle/{path}", self.prefix).into_bytes()
    }

    /// The key every write puts: `PREFIX written`.
    pub fn written(&self) -> Vec<u8> {
        format!("{}written", self.prefix).into_bytes()
    }
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            prefix: Layout::DEFAULT_PREFIX.to_owned(),
        }
    }
}

/// Whether etcd's answer was refused for passing [`MAX_MESSAGE_BYTES`].
fn too_large(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::Internal
    ) && status.message().contains("too large")
}

/// What a prefix read takes from etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Every document, failing on the first key that cannot be one.
    Documents,
    /// Every document, keeping the keys that cannot be one in `refused`.
    KeepingRefused,
    /// The keys alone (their texts empty).
    Keys,
}

/// A transaction's put of `value` at `key`.
pub fn put_op(key: Vec<u8>, value: Vec<u8>) -> rpc::RequestOp {
    rpc::RequestOp {
        request: Some(rpc::request_op::Request::RequestPut(rpc::PutRequest {
            key,
            value,
            ..Default::default()
        })),
    }
}

/// A transaction's delete of `key`.
pub fn delete_op(key: Vec<u8>) -> rpc::RequestOp {
    rpc::RequestOp {
        request: Some(rpc::request_op::Request::RequestDeleteRange(
            rpc::DeleteRangeRequest {
                key,
                ..Default::default()
            },
        )),
    }
}

/// Bytes of a key shown in a message: a key can be as large as etcd allows.
const SHOWN_KEY_BYTES: usize = 256;

/// `key` for a message: lossy UTF-8, shortened past [`SHOWN_KEY_BYTES`].
pub fn shown(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    let mut end = text.len().min(SHOWN_KEY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text.get(..end) {
        Some(short) if end < text.len() => format!("{short}..."),
        _ => text.into_owned(),
    }
}

/// A key and value under `prefix` as a bundle document: its path and text, or why it cannot
/// be one (a bad path, a value above [`crate::bundle::MAX_FILE_BYTES`] or not UTF-8; the
/// caller names the key). The one check of etcd content, for reads and watch events alike.
pub fn document(prefix: &str, key: &[u8], value: &[u8]) -> Result<(String, String), String> {
    let path = relative(prefix, key).map_err(|e| match e {
        EtcdError::Content { message, .. } => message,
        other => other.to_string(),
    })?;
    if value.len() as u64 > crate::bundle::MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes, above the limit of {} bytes for a bundle file",
            value.len(),
            crate::bundle::MAX_FILE_BYTES
        ));
    }
    let text = std::str::from_utf8(value).map_err(|_| "the value is not UTF-8 text".to_owned())?;
    Ok((path, text.to_owned()))
}

/// The bundle path of `key` under `prefix`: UTF-8, relative, no `.` or `..` component, no
/// empty one, no backslash or NUL, so that a key can never name a file outside a bundle
/// written out to a directory (`warden pull`).
pub fn relative(prefix: &str, key: &[u8]) -> Result<String, EtcdError> {
    let shown = || String::from_utf8_lossy(key).into_owned();
    let Some(rest) = key.strip_prefix(prefix.as_bytes()) else {
        return Err(EtcdError::Content {
            key: shown(),
            message: format!("not under the prefix `{prefix}`"),
        });
    };
    let path = std::str::from_utf8(rest).map_err(|_| EtcdError::Content {
        key: shown(),
        message: "the key is not UTF-8".to_owned(),
    })?;
    check_path(path).map_err(|message| EtcdError::Content {
        key: shown(),
        message,
    })?;
    Ok(path.to_owned())
}

/// Whether `path` can be a bundle file's relative path: see [`relative`].
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the key is the prefix itself, not a file under it".to_owned());
    }
    if path.len() > 1024 {
        return Err(format!("a path of {} bytes (at most 1024)", path.len()));
    }
    if path.contains(['\\', '\0']) || path.chars().any(char::is_control) {
        return Err("the path holds a backslash or a control character".to_owned());
    }
    for component in path.split('/') {
        match component {
            "" => {
                return Err(
                    "the path has an empty component (`//`, or a leading or trailing `/`)"
                        .to_owned(),
                );
            }
            "." | ".." => return Err(format!("the path has a `{component}` component")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_etcds() {
        assert_eq!(prefix_end(b"/warden/"), b"/warden0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn keys_become_relative_paths_or_are_refused() {
        let p = "/warden/bundle/";
        assert_eq!(
            relative(p, b"/warden/bundle/accounts/1/policies/a.json").as_deref(),
            Ok("accounts/1/policies/a.json")
        );
        for bad in [
            &b"/warden/bundle/"[..],
            b"/warden/bundle/../x.json",
            b"/warden/bundle/a//b.json",
            b"/warden/bundle//etc/passwd",
            b"/warden/bundle/a/./b.json",
            b"/warden/bundle/a\\b.json",
            b"/warden/bundle/a\0b.json",
            b"/warden/bundle/a/",
            b"/warden/bundle/\xff.json",
            b"/other/a.json",
        ] {
            let e = relative(p, bad).unwrap_err();
            assert!(matches!(e, EtcdError::Content { .. }), "{bad:?}: {e}");
        }
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(Etcd::new(&[]).is_err());
        assert!(Etcd::new(&["https://etcd:2379".to_owned()]).is_err());
        assert!(Etcd::new(&["http://exa mple:2379".to_owned()]).is_err());
    }
}
