//! The etcd source (fleet mode): a bundle kept under `PREFIX bundle/`, one document per key,
//! read whole at one revision and then followed through a watch from the next one.
//!
//! A follower task owns the connection: it reads, watches, batches the watch's events into
//! one offer per quiet moment (never splitting an etcd revision), asks etcd for progress
//! every second so that it knows etcd is alive, and on any loss reconnects with a capped,
//! jittered backoff and reads the whole prefix again. The [`EtcdSource`] hands its offers
//! to the one [`super::Publisher`], which compiles them or refuses them.
//!
//! INVARIANT (the snapshot revision is etcd's): an offer's revision is the etcd revision
//! its files were read at (a read's header revision, or the highest `mod_revision` of the
//! events applied), so one revision means the same files on every sidecar.
//!
//! INVARIANT (a transaction is never half visible): events are applied per watch response
//! and etcd never splits one revision's events across responses (no fragmenting is asked),
//! so an offer holds every change of each revision it includes, or none.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{BoxFuture, Change, Contact, Fetched, Resync, Source};
use crate::bundle::SharedFiles;
use crate::etcd::pb::etcdserverpb as rpc;
use crate::etcd::pb::mvccpb;
use crate::etcd::{Etcd, EtcdError, Layout, shown};

pub mod cache;

pub use cache::Cache;

/// How the etcd source follows its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdConfig {
    /// After a watch response with changes, how long further responses may still join the
    /// same snapshot (responses already queued always join).
    pub debounce: Duration,
    /// How often etcd is asked for progress: the proof of contact while nothing changes.
    pub progress_interval: Duration,
    /// Progress requests left unanswered before the watch is given up as dead.
    pub unanswered_limit: u32,
    /// The first and the longest wait before reconnecting (doubled per failure, jittered).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The longest a whole-prefix read may take.
    pub read_timeout: Duration,
    /// How long the first fetch (before the server listens) waits for etcd's first answer.
    pub first_wait: Duration,
}

impl Default for EtcdConfig {
    fn default() -> EtcdConfig {
        EtcdConfig {
            debounce: Duration::from_millis(20),
            progress_interval: Duration::from_secs(1),
            unanswered_limit: 3,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            first_wait: Duration::from_secs(10),
        }
    }
}

impl EtcdConfig {
    /// Without an answer for this long, the source is stale.
    pub fn stale_after(&self) -> Duration {
        self.progress_interval * (self.unanswered_limit + 1)
    }
}

// === impl Files ===

/// The bundle as the source knows it: the documents under the prefix, updated by watch
/// events, within the bundle's limits.
///
/// A key that cannot be a document (a bad path, a value too big or not UTF-8) is kept as
/// refused (by its key's digest, with the message naming it): the bundle then fails to load
/// with that message until the key is fixed or deleted. Past the bundle's limits, or after
/// a read that was refused, the files are unknown and the next change reads them again.
#[derive(Debug, Clone)]
pub struct Files {
    prefix: String,
    /// Shared with the offers made from it: a change copies the map (its paths and
    /// pointers) only while an offer still holds it (the follower lets go of an offer
    /// once the source has fetched it, [`Follower::release_fetched`]; with a cache, the
    /// cache's copy of the last bundle holds it), never a text, and a text not changed
    /// stays the very allocation the loader knows ([`crate::bundle::Text`]).
    documents: Arc<SharedFiles>,
    /// Bytes of `documents`' texts.
    bytes: u64,
    /// Refused keys by the SHA-256 of the key: why (the key named, shortened).
    refused: BTreeMap<[u8; 32], String>,
    /// Why the files are not known (they must be read again), if so.
    unknown: Option<String>,
}

fn key_digest(key: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key).into()
}

impl Files {
    /// Files read whole from `prefix`, or why the read was refused.
    pub fn read(prefix: &str, read: Result<BTreeMap<String, String>, EtcdError>) -> Files {
        let mut files = Files {
            prefix: prefix.to_owned(),
            documents: Arc::default(),
            bytes: 0,
            refused: BTreeMap::new(),
            unknown: None,
        };
        match read {
            Ok(documents) => {
                files.bytes = documents.values().map(|t| t.len() as u64).sum();
                files.documents = Arc::new(crate::bundle::share(documents));
            }
            Err(e) => files.unknown = Some(e.to_string()),
        }
        files
    }

    /// Keeps `key` as refused, for `why` (a read that found it cannot be a document).
    pub fn refuse(&mut self, key: &[u8], why: &str) {
        if self.unknown.is_none() {
            self.refused
                .insert(key_digest(key), format!("etcd key `{}`: {why}", shown(key)));
            self.check_limits();
        }
    }

    /// Whether the files must be read again before they can be offered.
    pub fn is_unknown(&self) -> bool {
        self.unknown.is_some()
    }

    /// Applies one watch event (a put or a delete of a key under the prefix).
    pub fn apply(&mut self, event: &mvccpb::Event) {
        if self.unknown.is_some() {
            return;
        }
        let Some(kv) = &event.kv else {
            return;
        };
        let digest = key_digest(&kv.key);
        let path = crate::etcd::relative(&self.prefix, &kv.key);
        // Whatever the key held before goes first, so that a put replaces it and a
        // delete frees it.
        self.refused.remove(&digest);
        if let Ok(path) = &path
            && self.documents.contains_key(path)
            && let Some(old) = Arc::make_mut(&mut self.documents).remove(path)
        {
            self.bytes -= old.len() as u64;
        }
        if event.r#type == mvccpb::event::EventType::Delete as i32 {
            return;
        }
        match crate::etcd::document(&self.prefix, &kv.key, &kv.value) {
            Ok((path, text)) => {
                self.bytes += text.len() as u64;
                Arc::make_mut(&mut self.documents).insert(path, Arc::from(text));
            }
            Err(why) => {
                self.refused
                    .insert(digest, format!("etcd key `{}`: {why}", shown(&kv.key)));
            }
        }
        self.check_limits();
    }

    /// Past the bundle's limits the files are dropped (memory stays bounded) and known
    /// again only by a whole read, which refuses them with the same limits.
    fn check_limits(&mut self) {
        let entries = self.documents.len() + self.refused.len();
        let why = if entries > crate::bundle::dir::MAX_ENTRIES {
            format!(
                "etcd prefix `{}`: more than {} keys (a bundle's limit of files)",
                self.prefix,
                crate::bundle::dir::MAX_ENTRIES
            )
        } else if self.bytes > crate::bundle::dir::MAX_BUNDLE_BYTES {
            format!(
                "etcd prefix `{}`: more than {} bytes (a bundle's limit)",
                self.prefix,
                crate::bundle::dir::MAX_BUNDLE_BYTES
            )
        } else {
            return;
        };
        self.documents = Arc::default();
        self.refused.clear();
        self.bytes = 0;
        self.unknown = Some(why);
    }

    /// The bundle to offer: its files, or why it cannot load (every refused key named).
    pub fn bundle(&self) -> Result<Arc<SharedFiles>, String> {
        if let Some(why) = &self.unknown {
            return Err(why.clone());
        }
        if !self.refused.is_empty() {
            let mut why: Vec<&str> = self.refused.values().map(String::as_str).collect();
            why.sort_unstable();
            return Err(why.join("\n"));
        }
        Ok(self.documents.clone())
    }
}

// === impl EtcdSource ===

/// A bundle's files at a revision.
type Revised = (u64, Arc<SharedFiles>);

/// A bundle's files, shared until fetched, or why they cannot load.
type Offered = Result<Arc<SharedFiles>, String>;

/// What the follower has to offer, and how it follows etcd.
#[derive(Debug, Clone, Default)]
struct Following {
    /// Counts offers, so that the source can tell a new one.
    seq: u64,
    /// The latest offer: its revision and its files or why they cannot load.
    offer: Option<(u64, Offered)>,
    /// Readiness's `watch`: `watching`, `connecting`, or `lost: WHY`.
    watch: String,
    /// Whether the first read has been tried (answered or failed).
    tried: bool,
}

/// A bundle kept in etcd under a prefix (see the module doc).
pub struct EtcdSource {
    describe: String,
    following: watch::Receiver<Following>,
    /// The offer last fetched (its `seq`): a later one is a change.
    fetched: u64,
    /// The same, for the follower to let go of that offer's files.
    taken: Arc<AtomicU64>,
    /// The watch state last reported: another one is a [`Change::Watch`].
    reported: String,
    first_wait: Duration,
    resync: Arc<Notify>,
    contact: Arc<Contact>,
    /// The bundle last fetched, to keep in the cache once it is published (with a cache
    /// only: it holds the files' map, which the next change would then copy).
    last: Option<Revised>,
    /// Bundles published, for the cache's writer (the latest wins); `None` without a cache.
    to_cache: Option<watch::Sender<Option<Revised>>>,
    /// The revision the cache holds, not written again.
    cached: u64,
    /// Stops the follower (and the cache's writer) when the source is dropped.
    _stop: DropGuard,
}

impl EtcdSource {
    /// Starts following `layout`'s bundle prefix on `etcd` (a task on the current runtime).
    /// Never fails on an etcd that is down: the follower keeps trying. With a `cache`, the
    /// bundle last published is kept there, and offered first when etcd does not answer at
    /// start-up.
    pub fn open(
        etcd: Etcd,
        layout: &Layout,
        config: EtcdConfig,
        cache: Option<Cache>,
    ) -> EtcdSource {
        let prefix = layout.bundle();
        let describe = format!("etcd {} prefix {prefix}", etcd.endpoints().join(","));
        let contact = Arc::new(Contact::new(config.stale_after()));
        let cached = match cache.as_ref().map(Cache::read) {
            Some(Ok(Some(cached))) => {
                tracing::info!(
                    cache = %cache.as_ref().map_or(Path::new(""), Cache::dir).display(),
                    revision = cached.revision,
                    "etcd: the cached bundle is offered until etcd answers"
                );
                contact.set_from_cache(true);
                Some(cached)
            }
            Some(Err(e)) => {
                tracing::warn!("etcd: the cache is not used: {e}");
                None
            }
            Some(Ok(None)) | None => None,
        };
        let offered = cached.as_ref().map_or(0, |c| c.revision);
        let (tx, following) = watch::channel(Following {
            watch: "connecting".to_owned(),
            seq: u64::from(cached.is_some()),
            offer: cached.map(|c| (c.revision, Ok(Arc::new(crate::bundle::share(c.files))))),
            tried: false,
        });
        let stop = CancellationToken::new();
        let resync = Arc::new(Notify::new());
        let taken = Arc::new(AtomicU64::new(0));
        let to_cache = cache.map(|cache| {
            let (tx, rx) = watch::channel(None);
            tokio::spawn(write_cache(cache, rx, stop.clone()));
            tx
        });
        let follower = Follower {
            etcd,
            files: Files::read(&prefix, Ok(BTreeMap::new())),
            prefix,
            config,
            tx,
            contact: contact.clone(),
            resync: resync.clone(),
            stop: stop.clone(),
            offered,
            taken: taken.clone(),
            backoff: Backoff::new(config.backoff_min, config.backoff_max),
        };
        tokio::spawn(follower.run());
        EtcdSource {
            describe,
            following,
            fetched: 0,
            taken,
            reported: "connecting".to_owned(),
            first_wait: config.first_wait,
            resync,
            contact,
            last: None,
            to_cache,
            cached: offered,
            _stop: stop.drop_guard(),
        }
    }
}

/// Writes each bundle `published` sends to `cache`, the latest first, one at a time.
async fn write_cache(
    cache: Cache,
    mut published: watch::Receiver<Option<Revised>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = published.changed() => if changed.is_err() { return },
        }
        let Some((revision, files)) = published.borrow_and_update().clone() else {
            continue;
        };
        let cache = cache.clone();
        let written =
            tokio::task::spawn_blocking(move || cache.write(revision, &files).map(|()| cache))
                .await;
        match written {
            Ok(Ok(cache)) => tracing::debug!(
                cache = %cache.dir().display(),
                revision,
                "etcd: bundle cached"
            ),
            Ok(Err(e)) => tracing::warn!(revision, "etcd: the bundle was not cached: {e}"),
            Err(e) => tracing::warn!(revision, "etcd: the cache writer stopped: {e}"),
        }
    }
}

impl Source for EtcdSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn watch(&self) -> String {
        self.following.borrow().watch.clone()
    }

    fn fetch(&mut self) -> BoxFuture<'_, Fetched> {
        Box::pin(async move {
            // The first fetch comes before the server listens: it waits for etcd's first
            // answer, bounded, so that an etcd that is down starts the server unready.
            let wait = self.following.wait_for(|f| f.tried);
            let _ = tokio::time::timeout(self.first_wait, wait).await;
            let following = self.following.borrow_and_update().clone();
            self.fetched = following.seq;
            self.taken.store(following.seq, Ordering::Release);
            match following.offer {
                Some((revision, files)) => {
                    if self.to_cache.is_some() {
                        self.last = files.as_ref().ok().map(|f| (revision, f.clone()));
                    }
                    Fetched { revision, files }
                }
                None => Fetched {
                    revision: 0,
                    files: Err(format!(
                        "no bundle read from etcd yet ({})",
                        following.watch
                    )),
                },
            }
        })
    }

    fn changed(&mut self) -> BoxFuture<'_, Change> {
        Box::pin(async move {
            loop {
                if self.following.changed().await.is_err() {
                    // The follower stopped (shutdown): nothing changes any more.
                    return std::future::pending().await;
                }
                let following = self.following.borrow_and_update();
                if following.seq != self.fetched {
                    return Change::Bundle;
                }
                if following.watch != self.reported {
                    self.reported = following.watch.clone();
                    return Change::Watch;
                }
            }
        })
    }

    fn resync(&mut self) -> bool {
        self.resync.notify_one();
        true
    }

    fn published(&mut self, revision: u64) {
        if let Some(to_cache) = &self.to_cache
            && let Some((fetched, files)) = &self.last
            && *fetched == revision
            && revision > self.cached
        {
            self.cached = revision;
            to_cache.send_replace(Some((revision, files.clone())));
        }
    }

    fn contact(&self) -> Option<Arc<Contact>> {
        Some(self.contact.clone())
    }
}

// === impl Follower ===

/// Why following stopped.
#[derive(Debug)]
enum Ended {
    Stop,
    /// Contact lost: reconnect after the backoff, then read again.
    Lost(String),
    /// Read again at once, for this reason.
    Resync(Resync),
}

/// The task that owns the connection to etcd (see the module doc).
struct Follower {
    etcd: Etcd,
    prefix: String,
    config: EtcdConfig,
    files: Files,
    tx: watch::Sender<Following>,
    contact: Arc<Contact>,
    resync: Arc<Notify>,
    stop: CancellationToken,
    /// The highest revision offered: offers only grow (the Publisher refuses the others).
    offered: u64,
    /// The `seq` of the offer the source fetched last.
    taken: Arc<AtomicU64>,
    backoff: Backoff,
}

/// A revision from etcd as a snapshot revision (etcd's are positive; anything else is 0,
/// which the Publisher refuses).
fn revision(r: i64) -> u64 {
    u64::try_from(r).unwrap_or(0)
}

impl Follower {
    async fn run(mut self) {
        let mut why = Resync::Start;
        loop {
            self.contact.count_resync(why);
            let ended = self.follow().await;
            self.contact.set_connected(false);
            why = match ended {
                Ended::Stop => return,
                Ended::Resync(why) => {
                    tracing::info!(
                        source = self.prefix,
                        reason = why.as_str(),
                        "etcd: resyncing"
                    );
                    why
                }
                Ended::Lost(message) => {
                    let wait = self.backoff.next();
                    tracing::warn!(
                        source = self.prefix,
                        retry_in = ?wait,
                        "etcd: {message}; serving the last snapshot"
                    );
                    self.tx.send_modify(|f| {
                        f.tried = true;
                        f.watch = format!("lost: {message}");
                    });
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = tokio::time::sleep(wait) => Resync::Reconnect,
                        () = self.resync.notified() => Resync::Hangup,
                    }
                }
            };
        }
    }

    /// One read of the whole prefix at one revision, then its watch until it ends.
    async fn follow(&mut self) -> Ended {
        let stop = self.stop.clone();
        let limit = self.config.read_timeout;
        let read = tokio::select! {
            () = stop.cancelled() => return Ended::Stop,
            r = tokio::time::timeout(limit, self.read()) => match r {
                Ok(read) => read,
                Err(_) => Err(format!(
                    "reading the prefix took longer than {:?}",
                    self.config.read_timeout
                )),
            },
        };
        let at = match read {
            Ok(at) => at,
            Err(message) => return Ended::Lost(message),
        };

        let (requests, queue) = mpsc::channel(4);
        let create = rpc::WatchRequest {
            request_union: Some(rpc::watch_request::RequestUnion::CreateRequest(
                rpc::WatchCreateRequest {
                    key: self.prefix.as_bytes().to_vec(),
                    range_end: crate::etcd::prefix_end(self.prefix.as_bytes()),
                    start_revision: i64::try_from(at.saturating_add(1)).unwrap_or(i64::MAX),
                    ..Default::default()
                },
            )),
        };
        if requests.send(create).await.is_err() {
            return Ended::Lost("the watch request queue closed".to_owned());
        }
        let mut client = self.etcd.watch_client();
        let opened = tokio::select! {
            () = self.stop.cancelled() => return Ended::Stop,
            o = client.watch(require_leader(tokio_stream::wrappers::ReceiverStream::new(queue))) => o,
        };
        let mut stream = match opened {
            Ok(s) => s.into_inner(),
            Err(s) => return Ended::Lost(format!("cannot watch: {}", status(&s))),
        };
        let mut ticks = tokio::time::interval(self.config.progress_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unanswered = 0;
        loop {
            // Biased: what etcd already sent is read before a tick counts it silent (a
            // sidecar paused and resumed finds both ready at once).
            let response = tokio::select! {
                biased;
                () = self.stop.cancelled() => return Ended::Stop,
                m = stream.message() => m,
                () = self.resync.notified() => return Ended::Resync(Resync::Hangup),
                _ = ticks.tick() => {
                    if unanswered >= self.config.unanswered_limit {
                        return Ended::Lost(format!(
                            "etcd answered none of {unanswered} progress requests"
                        ));
                    }
                    unanswered += 1;
                    let _ = requests.try_send(progress());
                    continue;
                }
            };
            unanswered = 0;
            let response = match response {
                Ok(Some(r)) => r,
                Ok(None) => return Ended::Lost("the watch ended".to_owned()),
                Err(s) => return Ended::Lost(format!("the watch failed: {}", status(&s))),
            };
            match self.batch(response, &mut stream).await {
                Batch::Go => {}
                Batch::End(ended) => return ended,
            }
        }
    }

    /// Reads the whole prefix at the current revision into `files`; the revision, or why
    /// etcd could not be asked. A read etcd answered but warden refuses (a hostile key)
    /// is a read: its offer fails with the key named, and the watch goes on.
    async fn read(&mut self) -> Result<u64, String> {
        // The revision first, so that a refused read still has one.
        let at = self.etcd.revision().await.map_err(|e| e.to_string())?;
        // Keys that cannot be documents are kept as refused, as the watch keeps them: the
        // load fails naming them, and the watch goes on (a whole read per later change, on
        // every sidecar, would be the price of one hostile key).
        let (read, refused) = match self
            .etcd
            .read_prefix_keeping_refused(&self.prefix, Some(at))
            .await
        {
            Ok(read) => (Ok(read.files), read.refused),
            Err(e @ EtcdError::TooLarge { .. }) => (Err(e), Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        self.contact.heard(revision(at));
        self.contact.set_connected(true);
        // Whatever the cache held, etcd's answer is what serves from here on (a cache
        // above etcd's revision keeps serving: see SECURITY.md).
        self.contact.set_from_cache(false);
        self.files = Files::read(&self.prefix, read);
        for (key, why) in refused {
            self.files.refuse(&key, &why);
        }
        let at = revision(at);
        // Offered now, before the first fetch is told that etcd answered.
        self.offer(at);
        self.tx.send_modify(|f| {
            f.watch = "watching".to_owned();
            f.tried = true;
        });
        Ok(at)
    }

    /// Applies `first` and whatever further responses are queued or arrive within the
    /// debounce, then offers the result once.
    async fn batch<S>(&mut self, first: rpc::WatchResponse, stream: &mut S) -> Batch
    where
        S: tokio_stream::Stream<Item = Result<rpc::WatchResponse, tonic::Status>> + Unpin,
    {
        use tokio_stream::StreamExt as _;
        let mut applied = None;
        let mut next = Some(first);
        let deadline = Instant::now() + self.config.debounce;
        let ended = loop {
            if let Some(response) = next.take() {
                match self.apply(response) {
                    Ok(None) => {}
                    Ok(Some(r)) => {
                        applied = applied.max(Some(r));
                        // A watch started while the files were unknown: read them again.
                        if self.files.is_unknown() {
                            break Some(Ended::Resync(Resync::Content));
                        }
                    }
                    Err(ended) => break Some(ended),
                }
            }
            if applied.is_none() {
                // Only a response with changes starts a batch.
                break None;
            }
            // `timeout_at` polls the stream before the deadline: queued responses join
            // even with no debounce.
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(r))) => next = Some(r),
                Ok(None) => break Some(Ended::Lost("the watch ended".to_owned())),
                Ok(Some(Err(s))) => {
                    break Some(Ended::Lost(format!("the watch failed: {}", status(&s))));
                }
                Err(_) => break None,
            }
        };
        // What was applied is whole revisions: it is offered even when the watch ends.
        if let Some(r) = applied
            && !self.files.is_unknown()
        {
            self.offer(r);
        }
        match ended {
            None => Batch::Go,
            Some(e) => Batch::End(e),
        }
    }

    /// Applies one watch response: the highest revision it changed the files to, if any,
    /// or why the watch is over.
    fn apply(&mut self, response: rpc::WatchResponse) -> Result<Option<u64>, Ended> {
        let rpc::WatchResponse {
            header,
            watch_id: _,
            created: _,
            canceled,
            compact_revision,
            cancel_reason,
            fragment: _,
            events,
        } = response;
        self.contact
            .heard(header.map_or(0, |h| revision(h.revision)));
        self.backoff.reset();
        if compact_revision != 0 {
            tracing::warn!(
                source = self.prefix,
                compact_revision,
                "etcd compacted the history the watch needed"
            );
            return Err(Ended::Resync(Resync::Compacted));
        }
        if canceled {
            tracing::warn!(
                source = self.prefix,
                cancel_reason,
                "etcd canceled the watch"
            );
            return Err(Ended::Resync(Resync::Compacted));
        }
        let mut highest = None;
        if !events.is_empty() {
            self.release_fetched();
        }
        for event in &events {
            self.files.apply(event);
            if let Some(kv) = &event.kv {
                highest = highest.max(Some(revision(kv.mod_revision)));
            }
        }
        Ok(highest)
    }

    /// Lets go of the files of the latest offer once the source has fetched it (the source
    /// and its loader hold them as long as they need them; a fetch is made only for a later
    /// offer), so that the next change edits the map in place: otherwise each change
    /// copied it, 30,000 paths at 100,000 statements, and dropped the copy it replaced,
    /// on a runtime thread.
    fn release_fetched(&self) {
        let taken = self.taken.load(Ordering::Acquire);
        self.tx.send_if_modified(|f| {
            if f.seq == taken
                && let Some((revision, Ok(_))) = &f.offer
            {
                f.offer = Some((
                    *revision,
                    Err(format!("the offer at revision {revision} was fetched")),
                ));
            }
            // Nothing a receiver waits for changed.
            false
        });
    }

    /// Offers the files at `at`, if above every revision offered before.
    fn offer(&mut self, at: u64) {
        if at <= self.offered {
            return;
        }
        self.offered = at;
        let files = self.files.bundle();
        self.tx.send_modify(|f| {
            f.seq += 1;
            f.offer = Some((at, files));
            f.tried = true;
        });
    }
}

enum Batch {
    Go,
    End(Ended),
}

/// A watch that etcd cancels when its member loses the cluster's leader (etcd's
/// `WithRequireLeader`: the `hasleader` metadata). Without it, a member cut off from the
/// quorum keeps the watch open and answers progress requests from its own stale state, so
/// a sidecar on it would miss every later change while it looks fresh.
fn require_leader<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "hasleader",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request
}

fn progress() -> rpc::WatchRequest {
    rpc::WatchRequest {
        request_union: Some(rpc::watch_request::RequestUnion::ProgressRequest(
            rpc::WatchProgressRequest {},
        )),
    }
}

fn status(s: &tonic::Status) -> String {
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        format!("{:?}: {}", s.code(), s.message())
    }
}

// === impl Backoff ===

/// Capped exponential backoff with jitter, so that a fleet of sidecars does not reconnect
/// to a recovering etcd all at once.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    rng: oorandom::Rand32,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Backoff {
            min,
            max: max.max(min),
            current: min,
            rng: oorandom::Rand32::new(seed),
        }
    }

    /// The next wait: between half and all of the current step, which then doubles.
    fn next(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        step.mul_f32(0.5 + self.rng.rand_float() * 0.5)
    }

    fn reset(&mut self) {
        self.current = self.min;
    }
}

#[cfg(test)]
mod tests;
