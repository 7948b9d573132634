//! Fleet mode's write side: the admin API's domain (who may read and write which bundle
//! document, and writes that are validated whole before anything is written) and the
//! bundle in etcd (`store`: one transaction per write, compare-and-swap, `warden push` and
//! `warden pull`). Knows no protobuf: the gRPC face (`grpc::admin`) converts.
//!
//! A write, in order: limits and paths (before any work); the caller authenticated (its
//! credentials, or the bootstrap token; never an ARN it names) and every change authorized
//! by the serving snapshot's policies through the one [`Service`] pipeline; the prefix read
//! at revision R and the changes applied in memory; the whole would-be bundle loaded
//! (`bundle::load_files`); one etcd transaction, compare-and-swap against the caller's
//! expected revision or R. Any refusal writes nothing.

pub mod access;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::bundle::{self, BundleError};
use crate::caller::{Caller, Presented};
use crate::context::Context;
use crate::etcd::{Etcd, EtcdError, Layout};
use crate::eval::Decision;
use crate::service::{Item, Request, RequestError, Service, Shape};
use crate::telemetry::Face;
use access::Verb;
use store::{Changes, StoreError};

/// Changes in one write, and paths in one read, at most: one authorization request
/// ([`crate::service::BATCH_MAX`]).
pub const MAX_CHANGES: usize = crate::service::BATCH_MAX;
/// The bytes of all documents one write puts, at most.
pub const MAX_WRITE_BYTES: u64 = 8 << 20;
/// The shortest bootstrap token accepted.
pub const MIN_TOKEN_BYTES: usize = 16;

/// One change of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Creates or replaces the document at `path`.
    Put { path: String, text: String },
    /// Removes the document at `path`, which must exist.
    Delete { path: String },
}

impl Change {
    pub fn path(&self) -> &str {
        match self {
            Change::Put { path, .. } | Change::Delete { path } => path,
        }
    }

    fn verb(&self) -> Verb {
        match self {
            Change::Put { .. } => Verb::Put,
            Change::Delete { .. } => Verb::Delete,
        }
    }
}

/// What a caller presented to prove who it is.
#[derive(Clone)]
pub enum Credentials {
    None,
    /// `authorization: Bearer TOKEN`: the bootstrap token.
    Bearer(String),
    /// A session token or a signed request, verified as `Authorize` verifies them.
    Presented(Presented),
}

impl std::fmt::Debug for Credentials {
    /// Credentials are never written out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::Presented(p) => write!(f, "Presented({p:?})"),
        }
    }
}

/// The bootstrap token: a secret that authenticates as one configured principal, which
/// the policies must still allow. Only its SHA-256 is kept, and compared in constant time.
pub struct BootstrapToken {
    digest: [u8; 32],
    principal: String,
}

impl std::fmt::Debug for BootstrapToken {
    /// The secret is never written out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl BootstrapToken {
    /// The token `secret` (surrounding whitespace trimmed) standing for `principal`.
    pub fn new(secret: &str, principal: &str) -> Result<BootstrapToken, String> {
        let secret = secret.trim();
        if secret.len() < MIN_TOKEN_BYTES {
            return Err(format!(
                "the admin token has {} bytes; at least {MIN_TOKEN_BYTES} are needed",
                secret.len()
            ));
        }
        if crate::request::parse_resource(principal)
            .ok()
            .flatten()
            .is_none()
        {
            return Err(format!(
                "the admin token's principal `{principal}` is no ARN"
            ));
        }
        Ok(BootstrapToken {
            digest: Sha256::digest(secret.as_bytes()).into(),
            principal: principal.to_owned(),
        })
    }

    /// Whether `presented` is the token: equal digests, compared in constant time (the
    /// digests also hide the secret's length).
    fn verifies(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }
}

/// Why an admin request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Unauthenticated(String),
    /// The first change (or read) the policies do not allow.
    #[error(
        "`{principal}` is not allowed `{action}` on `{resource}` ({reason}): nothing was written"
    )]
    Denied {
        principal: String,
        action: String,
        resource: String,
        reason: &'static str,
    },
    /// A malformed request: a path outside the layout, a limit exceeded.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no document at `{path}`")]
    NotFound { path: String },
    /// The write (validation, compare-and-swap, etcd).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The decision pipeline refused (no snapshot served yet, overload, credentials).
    #[error(transparent)]
    Request(RequestError),
    /// etcd's revision is below the serving snapshot's: its history is not the one the
    /// fleet serves (an etcd restored from a backup), and a write there would be skipped by
    /// every sidecar and mean something else on one restarted.
    #[error(
        "etcd is at revision {etcd}, behind the serving revision {serving}: its history is \
         not the one this sidecar serves (an etcd restored from a backup?); restart the \
         sidecars on it before writing: nothing was written"
    )]
    HistoryBehind { etcd: i64, serving: u64 },
}

impl AdminError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The findings of a write whose bundle would not load.
    pub fn findings(&self) -> Option<&BundleError> {
        match self {
            AdminError::Store(StoreError::Invalid(e)) => Some(e),
            _ => None,
        }
    }
}

impl From<EtcdError> for AdminError {
    fn from(e: EtcdError) -> AdminError {
        AdminError::Store(StoreError::Etcd(e))
    }
}

/// The admin API over one etcd cluster's bundle, authorized by `service`'s snapshot.
pub struct Admin {
    etcd: Etcd,
    layout: Layout,
    service: Arc<Service>,
    /// `None`: no bootstrap token is configured, and a bearer token is refused.
    token: Option<BootstrapToken>,
    /// One write at a time reads and loads the whole bundle (compare-and-swap serializes
    /// writes anyway): concurrent writes cannot take every core and hold a copy of the
    /// bundle each.
    writing: tokio::sync::Semaphore,
}

impl Admin {
    pub fn new(
        etcd: Etcd,
        layout: Layout,
        service: Arc<Service>,
        token: Option<BootstrapToken>,
    ) -> Admin {
        Admin {
            etcd,
            layout,
            service,
            token,
            writing: tokio::sync::Semaphore::new(1),
        }
    }

    /// Applies `changes` as one transaction if the caller may make every one of them and
    /// the bundle they make loads: the new revision. `expected`: compare-and-swap.
    pub async fn write(
        &self,
        credentials: Credentials,
        peer: Option<std::net::IpAddr>,
        changes: Vec<Change>,
        expected: Option<i64>,
    ) -> Result<i64, AdminError> {
        check_changes(&changes)?;
        if let Some(e) = expected
            && e <= 0
        {
            return Err(AdminError::invalid(
                "expected_revision",
                format!("`{e}` is no revision"),
            ));
        }
        let asks: Vec<(&str, Verb)> = changes.iter().map(|c| (c.path(), c.verb())).collect();
        let attempts = if expected.is_some() {
            1
        } else {
            store::ATTEMPTS
        };
        // The snapshot that authorizes the write must hold the policies the write lands on:
        // it is at least the caller's expected revision (waited for, bounded), and the
        // transaction compares against the older of the two, so a bundle changed after the
        // authorizing snapshot (a revoked right the sidecar has not applied yet) is a
        // conflict, never a write by policies that no longer hold.
        let mut wait_for = expected.map_or(0, |e| u64::try_from(e).unwrap_or(0));
        for _ in 0..attempts {
            let (principal, authorized_at) = self
                .authorize(credentials.clone(), peer, &asks, wait_for)
                .await?;
            // Authorized callers only, one at a time, from here: the whole bundle is read
            // and loaded (the load on a blocking thread, off the request workers).
            let _writing = self.writing.acquire().await.map_err(|_| StoreError::Busy)?;
            let marker = format!("{{\"principal\":{}}}", json_string(&principal));
            let read = self.etcd.read_prefix(&self.layout.bundle(), None).await?;
            if u64::try_from(read.revision).unwrap_or(0) < authorized_at {
                return Err(AdminError::HistoryBehind {
                    etcd: read.revision,
                    serving: authorized_at,
                });
            }
            if let Some(e) = expected
                && read.max_mod_revision > e
            {
                return Err(StoreError::Conflict {
                    expected: e,
                    changed_at: read.max_mod_revision,
                }
                .into());
            }
            let mut files = read.files;
            let old: BTreeMap<String, String> = changes
                .iter()
                .filter_map(|c| {
                    files
                        .get(c.path())
                        .map(|t| (c.path().to_owned(), t.clone()))
                })
                .collect();
            let mut txn = Changes::default();
            for change in &changes {
                match change {
                    Change::Put { path, text } => {
                        files.insert(path.clone(), text.clone());
                        txn.puts.push((self.layout.key(path), text.clone()));
                    }
                    Change::Delete { path } => {
                        if files.remove(path).is_none() {
                            return Err(AdminError::NotFound { path: path.clone() });
                        }
                        txn.deletes.push(self.layout.key(path));
                    }
                }
            }
            // A resource policy applies to the ARN (or pattern) its document binds it to, and
            // an identity's path is part of its ARN, neither named by the file's path: the
            // caller must also be allowed the change on what the document governs, before
            // and after.
            let bound = bound_resources(&changes, &old);
            if !bound.is_empty() {
                self.authorize_items(credentials.clone(), peer, authorized_at, |_| Ok(bound))
                    .await?;
            }
            tokio::task::spawn_blocking(move || bundle::load_files(&files))
                .await
                .map_err(|_| StoreError::Busy)?
                .map_err(StoreError::Invalid)?;
            let authorized_at = i64::try_from(authorized_at).unwrap_or(i64::MAX);
            let base = expected.unwrap_or(read.revision).min(authorized_at);
            match store::commit(&self.etcd, &self.layout, base, txn, &marker).await {
                Ok(revision) => {
                    tracing::info!(principal, revision, changes = changes.len(), "admin write");
                    return Ok(revision);
                }
                // Another writer, or a sidecar behind etcd: authorize again on a snapshot
                // that has the change.
                Err(StoreError::Conflict { changed_at, .. }) if expected.is_none() => {
                    wait_for = u64::try_from(changed_at).unwrap_or(0);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Busy.into())
    }

    /// The documents at `paths`, read at one revision (`at`, or now): the documents in the
    /// order asked and the revision.
    pub async fn get(
        &self,
        credentials: Credentials,
        peer: Option<std::net::IpAddr>,
        paths: Vec<String>,
        at: Option<i64>,
    ) -> Result<(Vec<(String, String)>, i64), AdminError> {
        if paths.is_empty() || paths.len() > MAX_CHANGES {
            return Err(AdminError::invalid(
                "paths",
                format!("1 to {MAX_CHANGES} paths, not {}", paths.len()),
            ));
        }
        for (i, path) in paths.iter().enumerate() {
            access::access(path, Verb::Get, None)
                .map_err(|m| AdminError::invalid(format!("paths[{i}]"), m))?;
        }
        let asks: Vec<(&str, Verb)> = paths.iter().map(|p| (p.as_str(), Verb::Get)).collect();
        self.authorize(credentials, peer, &asks, 0).await?;
        let mut revision = at.unwrap_or(0);
        let mut documents = Vec::with_capacity(paths.len());
        for path in paths {
            let (text, read_at) = self.get_one(&path, revision).await?;
            revision = read_at;
            match text {
                Some(text) => documents.push((path, text)),
                None => return Err(AdminError::NotFound { path }),
            }
        }
        Ok((documents, revision))
    }

    /// One document's text at `revision` (0: now), and the revision read at.
    async fn get_one(
        &self,
        path: &str,
        revision: i64,
    ) -> Result<(Option<String>, i64), AdminError> {
        use crate::etcd::pb::etcdserverpb as rpc;
        let response = self
            .etcd
            .kv()
            .range(rpc::RangeRequest {
                key: self.layout.key(path),
                revision,
                ..Default::default()
            })
            .await
            .map_err(|s| match EtcdError::call(&s) {
                EtcdError::Compacted { .. } => EtcdError::Compacted {
                    revision,
                    compacted: 0,
                },
                other => other,
            })?
            .into_inner();
        let read_at = if revision == 0 {
            response.header.as_ref().map_or(0, |h| h.revision)
        } else {
            revision
        };
        let text = match response.kvs.into_iter().next() {
            Some(kv) => Some(String::from_utf8(kv.value).map_err(|_| EtcdError::Content {
                key: path.to_owned(),
                message: "the value is not UTF-8 text".to_owned(),
            })?),
            None => None,
        };
        Ok((text, read_at))
    }

    /// The paths of every document, at `at` or now, and the revision read at.
    pub async fn list(
        &self,
        credentials: Credentials,
        peer: Option<std::net::IpAddr>,
        at: Option<i64>,
    ) -> Result<(Vec<String>, i64), AdminError> {
        self.authorize_items(credentials, peer, 0, |management| {
            Ok(vec![(
                "warden:ListDocuments".to_owned(),
                access::bundle_resource(management),
            )])
        })
        .await?;
        Ok(self.etcd.list_prefix(&self.layout.bundle(), at).await?)
    }

    /// Authenticates the caller and authorizes `verb` on each path, on the serving
    /// snapshot once it is at `min_revision` or later: the principal, and the revision of
    /// the snapshot that decided.
    async fn authorize(
        &self,
        credentials: Credentials,
        peer: Option<std::net::IpAddr>,
        asks: &[(&str, Verb)],
        min_revision: u64,
    ) -> Result<(String, u64), AdminError> {
        self.authorize_items(credentials, peer, min_revision, |management| {
            asks.iter()
                .enumerate()
                .map(|(i, (path, verb))| {
                    access::access(path, *verb, management)
                        .map(|a| (a.action, a.resource))
                        .map_err(|m| AdminError::invalid(format!("changes[{i}].path"), m))
                })
                .collect()
        })
        .await
    }

    /// Decides `items` (built from the serving snapshot's management account) for the
    /// caller the credentials prove, through the service's pipeline on the serving
    /// snapshot (at `min_revision` or later, waited for as `min_revision` is in
    /// `Authorize`): every one must be allowed. The principal and the snapshot's revision.
    async fn authorize_items(
        &self,
        credentials: Credentials,
        peer: Option<std::net::IpAddr>,
        min_revision: u64,
        items: impl FnOnce(Option<&str>) -> Result<Vec<(String, String)>, AdminError>,
    ) -> Result<(String, u64), AdminError> {
        let caller = match credentials {
            Credentials::None => {
                return Err(AdminError::Unauthenticated(
                    "no credentials: present a session token, a request signed for service \
                     `warden`, or the admin token (`authorization: Bearer ...`)"
                        .to_owned(),
                ));
            }
            Credentials::Bearer(token) => match &self.token {
                Some(t) if t.verifies(&token) => Caller::Asserted(t.principal.clone()),
                Some(_) => {
                    return Err(AdminError::Unauthenticated(
                        "the bearer token is not the admin token".to_owned(),
                    ));
                }
                None => {
                    return Err(AdminError::Unauthenticated(
                        "this server takes no admin token (`--admin-token-file`)".to_owned(),
                    ));
                }
            },
            Credentials::Presented(p) => Caller::Presented(Arc::new(p)),
        };
        let snapshot = self
            .service
            .snapshot(min_revision)
            .await
            .map_err(AdminError::Request)?;
        let decided_at = snapshot.revision();
        let asked = items(snapshot.management_account())?;
        let request_items = asked
            .iter()
            .map(|(action, resource)| Item {
                action: action.clone(),
                resource: resource.clone(),
                context: Context::default(),
            })
            .collect();
        let asserted = match &caller {
            Caller::Asserted(arn) => Some(arn.clone()),
            _ => None,
        };
        let request = Request {
            caller,
            context: request_context(peer),
            items: request_items,
            min_revision: 0,
            explain: false,
            shape: Shape::Batch,
            face: Face::Admin,
            snapshot: Some(snapshot),
        };
        let answer = self
            .service
            .handle(|_| Ok(request))
            .await
            .map_err(|e| match e {
                RequestError::Unauthenticated { .. } | RequestError::SessionExpired { .. } => {
                    AdminError::Unauthenticated(e.to_string())
                }
                e => AdminError::Request(e),
            })?;
        let principal = answer
            .verified
            .as_ref()
            .map(|c| c.arn().to_owned())
            .or(asserted)
            .unwrap_or_default();
        for ((action, resource), decided) in asked.into_iter().zip(&answer.decisions) {
            if decided.outcome.decision != Decision::Allow {
                return Err(AdminError::Denied {
                    principal,
                    action,
                    resource,
                    reason: decided.outcome.reason.as_str(),
                });
            }
        }
        Ok((principal, decided_at))
    }
}

/// Limits and paths, before any work: the count of changes, each path in the layout and
/// named once, each document's size and the total.
/// The keys the server fills for an admin request, as the Check face fills them: the
/// caller's address (`aws:SourceIp`, the connection's peer) and `aws:SecureTransport`
/// (`false`: the gRPC port has no TLS of its own), so that a policy's network conditions
/// (an allowed range, a deny without TLS) hold for the admin API as for any request.
fn request_context(peer: Option<std::net::IpAddr>) -> Context {
    use crate::context::ContextValue;
    let mut context = Context::default();
    context.insert(
        "aws:SecureTransport",
        ContextValue::Single("false".to_owned()),
    );
    if let Some(ip) = peer {
        context.insert("aws:SourceIp", ContextValue::Single(ip.to_string()));
    }
    context
}

/// What the documents a write changes govern beyond their names, each to be allowed too:
/// for an `accounts/A/resources/` document, `warden:PutResourcePolicy` (or `Delete...`) on
/// the `arn` its old text and its new text bind it to; for a user, group or role whose old
/// or new document sets a `path` other than `/`, its action on the ARN with that path
/// (`arn:aws:warden::A:role/breakglass/app`), as IAM authorizes `CreateRole` on the ARN
/// with its path. A document that is not JSON is refused by the load that follows.
fn bound_resources(changes: &[Change], old: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let field = |text: &str, key: &str| {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get(key).and_then(|a| a.as_str()).map(str::to_owned))
    };
    let mut bound = Vec::new();
    for change in changes {
        let path = change.path();
        let parts: Vec<&str> = path.split('/').collect();
        let texts = [
            old.get(path).map(String::as_str),
            match change {
                Change::Put { text, .. } => Some(text.as_str()),
                Change::Delete { .. } => None,
            },
        ];
        let governed: Vec<(String, String)> = match parts.as_slice() {
            ["accounts", _, "resources", _] => texts
                .into_iter()
                .flatten()
                .filter_map(|t| field(t, "arn"))
                .map(|arn| {
                    (
                        format!("warden:{}ResourcePolicy", change.verb().as_str()),
                        arn,
                    )
                })
                .collect(),
            [
                "accounts",
                acct,
                kind @ ("users" | "groups" | "roles"),
                file,
            ] => {
                let (noun, resource_type) = match *kind {
                    "users" => ("User", "user"),
                    "groups" => ("Group", "group"),
                    _ => ("Role", "role"),
                };
                let name = file.strip_suffix(".json").unwrap_or(file);
                texts
                    .into_iter()
                    .flatten()
                    .filter_map(|t| field(t, "path"))
                    .filter(|p| p != "/")
                    .map(|p| {
                        (
                            format!("warden:{}{noun}", change.verb().as_str()),
                            format!("arn:aws:warden::{acct}:{resource_type}{p}{name}"),
                        )
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        for item in governed {
            if !bound.contains(&item) {
                bound.push(item);
            }
        }
    }
    bound
}

fn check_changes(changes: &[Change]) -> Result<(), AdminError> {
    if changes.is_empty() || changes.len() > MAX_CHANGES {
        return Err(AdminError::invalid(
            "changes",
            format!("1 to {MAX_CHANGES} changes, not {}", changes.len()),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut total: u64 = 0;
    for (i, change) in changes.iter().enumerate() {
        let field = || format!("changes[{i}].path");
        let path = change.path();
        access::access(path, Verb::Put, None).map_err(|m| AdminError::invalid(field(), m))?;
        if !seen.insert(path) {
            return Err(AdminError::invalid(
                field(),
                format!("`{path}` is changed twice in one write"),
            ));
        }
        if let Change::Put { text, .. } = change {
            let bytes = text.len() as u64;
            if bytes > bundle::MAX_FILE_BYTES {
                return Err(AdminError::invalid(
                    format!("changes[{i}].put"),
                    format!(
                        "{bytes} bytes, above the limit of {} bytes for a document",
                        bundle::MAX_FILE_BYTES
                    ),
                ));
            }
            total += bytes;
            if total > MAX_WRITE_BYTES {
                return Err(AdminError::invalid(
                    "changes",
                    format!("more than {MAX_WRITE_BYTES} bytes of documents in one write"),
                ));
            }
        }
    }
    Ok(())
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests;
