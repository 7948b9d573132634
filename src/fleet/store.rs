//! The bundle in etcd, written whole or in part: every write is one transaction that puts
//! the marker key (`PREFIX written`) beside its changes, compare-and-swap against a
//! revision (`MOD(marker) < E+1` and `MOD(PREFIX bundle/...) < E+1`, so that deletes are
//! seen too), and refused, naming etcd's flags, when etcd finds it too large. `warden push`
//! and `warden pull` are here; the admin API writes through [`commit`].

use std::collections::BTreeMap;

use crate::bundle::{self, BundleError};
use crate::etcd::pb::etcdserverpb as rpc;
use crate::etcd::{Etcd, EtcdError, Layout, PrefixRead, delete_op, prefix_end, put_op};

/// How many times a write without an expected revision is retried when the bundle
/// changed between its read and its transaction.
pub const ATTEMPTS: usize = 3;

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The would-be bundle does not load: every finding.
    #[error("{0}")]
    Invalid(BundleError),
    /// Compare-and-swap: the bundle changed after `expected`.
    #[error(
        "the bundle changed at revision {changed_at}, after the expected revision {expected}: \
         nothing was written"
    )]
    Conflict { expected: i64, changed_at: i64 },
    /// Without an expected revision, the bundle changed under every attempt.
    #[error(
        "the bundle changed during each of {ATTEMPTS} attempts to write it: nothing was written"
    )]
    Busy,
    /// etcd refused the transaction for its size.
    #[error(
        "etcd refused the transaction as too large ({message}): a whole bundle is written as \
         one transaction, so start etcd with a larger `--max-txn-ops` (default 128) and \
         `--max-request-bytes` (default 1.5 MiB)"
    )]
    TooLarge { message: String },
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// A transaction's changes: deletes of whole keys and puts, each key at most once (etcd
/// refuses a transaction that touches a key twice).
#[derive(Debug, Default)]
pub struct Changes {
    pub deletes: Vec<Vec<u8>>,
    pub puts: Vec<(Vec<u8>, String)>,
}

/// Commits `changes` and the marker (`marker` as its value) if nothing under the layout
/// changed after revision `expected`: the new revision, or the revision it changed at.
pub async fn commit(
    etcd: &Etcd,
    layout: &Layout,
    expected: i64,
    changes: Changes,
    marker: &str,
) -> Result<i64, StoreError> {
    use rpc::compare::{CompareResult, CompareTarget, TargetUnion};
    use rpc::request_op::Request as Op;
    let bundle = layout.bundle().into_bytes();
    let bundle_end = prefix_end(&bundle);
    let unchanged = |key: Vec<u8>, range_end: Vec<u8>| rpc::Compare {
        result: CompareResult::Less as i32,
        target: CompareTarget::Mod as i32,
        key,
        range_end,
        target_union: Some(TargetUnion::ModRevision(expected.saturating_add(1))),
    };
    let op = |request| rpc::RequestOp {
        request: Some(request),
    };
    let mut success = Vec::with_capacity(changes.deletes.len() + changes.puts.len() + 1);
    success.extend(changes.deletes.into_iter().map(delete_op));
    success.extend(
        changes
            .puts
            .into_iter()
            .map(|(key, text)| put_op(key, text.into_bytes())),
    );
    success.push(put_op(layout.written(), marker.as_bytes().to_vec()));
    // When the comparison fails: the marker's and the newest document's revisions, so
    // the refusal can name when the bundle changed.
    let newest = |key: Vec<u8>, range_end: Vec<u8>| {
        op(Op::RequestRange(rpc::RangeRequest {
            key,
            range_end,
            limit: 1,
            keys_only: true,
            sort_order: rpc::range_request::SortOrder::Descend as i32,
            sort_target: rpc::range_request::SortTarget::Mod as i32,
            ..Default::default()
        }))
    };
    let request = rpc::TxnRequest {
        compare: vec![
            unchanged(layout.written(), Vec::new()),
            unchanged(bundle.clone(), bundle_end.clone()),
        ],
        success,
        failure: vec![
            newest(layout.written(), Vec::new()),
            newest(bundle, bundle_end),
        ],
    };
    let response = etcd.txn(request).await.map_err(too_large)?;
    let revision = response.header.as_ref().map_or(0, |h| h.revision);
    if response.succeeded {
        return Ok(revision);
    }
    let changed_at = response
        .responses
        .iter()
        .filter_map(|r| match &r.response {
            Some(rpc::response_op::Response::ResponseRange(range)) => {
                range.kvs.iter().map(|kv| kv.mod_revision).max()
            }
            _ => None,
        })
        .max()
        .unwrap_or(revision);
    Err(StoreError::Conflict {
        expected,
        changed_at,
    })
}

/// etcd's refusals of a transaction's size, named as such.
fn too_large(e: EtcdError) -> StoreError {
    match &e {
        EtcdError::Call(message)
            if message.contains("too many operations")
                || message.contains("request is too large")
                || message.contains("message larger than max")
                || message.contains("exceeds the limit") =>
        {
            StoreError::TooLarge {
                message: message.clone(),
            }
        }
        _ => StoreError::Etcd(e),
    }
}

/// Every key under the bundle's prefix, as raw bytes (a key warden would refuse to read is
/// still one a push deletes), read at one revision: the keys and the revision.
async fn keys(etcd: &Etcd, layout: &Layout) -> Result<(Vec<Vec<u8>>, i64), EtcdError> {
    let prefix = layout.bundle().into_bytes();
    let end = prefix_end(&prefix);
    let mut kv = etcd.kv();
    let mut keys = Vec::new();
    let mut from = prefix;
    let mut revision = 0;
    loop {
        let response = kv
            .range(rpc::RangeRequest {
                key: from.clone(),
                range_end: end.clone(),
                limit: crate::etcd::PAGE_KEYS,
                revision,
                keys_only: true,
                sort_order: rpc::range_request::SortOrder::Ascend as i32,
                sort_target: rpc::range_request::SortTarget::Key as i32,
                ..Default::default()
            })
            .await
            .map_err(|s| EtcdError::call(&s))?
            .into_inner();
        if revision == 0 {
            revision = response.header.as_ref().map_or(0, |h| h.revision);
        }
        if keys.len() + response.kvs.len() > crate::bundle::dir::MAX_ENTRIES {
            return Err(EtcdError::TooLarge {
                prefix: layout.bundle(),
                message: format!(
                    "more than {} keys (a bundle's limit of files)",
                    crate::bundle::dir::MAX_ENTRIES
                ),
            });
        }
        let more = response.more;
        let last = response.kvs.last().map(|kv| kv.key.clone());
        keys.extend(response.kvs.into_iter().map(|kv| kv.key));
        match last {
            Some(mut after) if more => {
                after.push(0);
                from = after;
            }
            _ => return Ok((keys, revision)),
        }
    }
}

/// Writes `files` as the whole bundle: validated first (an invalid bundle writes nothing),
/// then one transaction that deletes the keys no longer present and puts every file,
/// compare-and-swap against `expected` (or the revision the keys were read at, retried a
/// few times). The new revision.
pub async fn push(
    etcd: &Etcd,
    layout: &Layout,
    files: &BTreeMap<String, String>,
    expected: Option<i64>,
    marker: &str,
) -> Result<i64, StoreError> {
    for path in files.keys() {
        crate::etcd::check_path(path).map_err(|message| {
            StoreError::Etcd(EtcdError::Content {
                key: path.clone(),
                message,
            })
        })?;
    }
    bundle::load_files(files).map_err(StoreError::Invalid)?;
    let attempts = if expected.is_some() { 1 } else { ATTEMPTS };
    for _ in 0..attempts {
        let (present, read_at) = keys(etcd, layout).await?;
        let puts: Vec<(Vec<u8>, String)> = files
            .iter()
            .map(|(path, text)| (layout.key(path), text.clone()))
            .collect();
        let wanted: std::collections::BTreeSet<&[u8]> =
            puts.iter().map(|(k, _)| k.as_slice()).collect();
        let deletes = present
            .into_iter()
            .filter(|k| !wanted.contains(k.as_slice()))
            .collect();
        let changes = Changes { deletes, puts };
        match commit(etcd, layout, expected.unwrap_or(read_at), changes, marker).await {
            Err(StoreError::Conflict { .. }) if expected.is_none() => continue,
            other => return other,
        }
    }
    Err(StoreError::Busy)
}

/// The bundle as etcd holds it, at `at` or now: checked as [`Etcd::read_prefix`] checks
/// every key (a path that could escape a directory is refused).
pub async fn pull(etcd: &Etcd, layout: &Layout, at: Option<i64>) -> Result<PrefixRead, EtcdError> {
    etcd.read_prefix(&layout.bundle(), at).await
}
