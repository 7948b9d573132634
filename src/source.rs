//! Where snapshots come from and how they are published.
//!
//! A [`Source`] yields whole bundles (the file map `bundle::load_files` takes), each under
//! a revision the source assigns. One [`Publisher`] serves every source alike: it loads and
//! compiles a bundle off the request path and publishes it, or records why not, and keeps
//! what readiness shows, the reload metrics and the revision watch that `min_revision`
//! waits on. [`run`] drives a source: one load per change the source reports and one per
//! SIGHUP, until shutdown.
//!
//! Sources: [`DirectorySource`], a watched directory, [`EtcdSource`] (fleet mode: a prefix
//! of an etcd cluster, watched), and [`MemorySource`], a fixed bundle (tests, embedding).
//!
//! INVARIANT (fail closed on reload): a bundle that fails to load never replaces the
//! serving snapshot; the failure is logged, counted, and kept for readiness to show.
//!
//! INVARIANT (revisions only grow): a bundle is published only under a revision above the
//! serving one; a source that offers an older one is refused like a failed load, so a
//! request that waited for `min_revision` never sees an older bundle afterwards.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::snapshot::Snapshot;
use crate::telemetry::{Metrics, Telemetry};

pub mod etcd;

pub use etcd::EtcdSource;

/// The serving snapshot, published whole, and what is known about the loads behind it.
///
/// Requests read `current` without locks; only the publisher writes it.
pub struct Published {
    current: ArcSwapOption<Snapshot>,
    /// The serving revision (0 before the first snapshot), for requests that wait for a
    /// newer one (`min_revision`) and for health.
    revision: watch::Sender<u64>,
    /// Load history for readiness; touched once per load, never by requests.
    status: Mutex<LoadStatus>,
    /// How a remote source (etcd) is in touch with its store, for readiness and metrics;
    /// unset for a local source.
    contact: std::sync::OnceLock<Arc<Contact>>,
}

/// What readiness reports about loading.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LoadStatus {
    /// The serving revision; absent until a bundle has loaded.
    pub revision: Option<u64>,
    /// The content digest of the serving bundle ([`crate::digest`]): equal on every
    /// sidecar that serves the same files.
    pub digest: Option<String>,
    /// Unix time in seconds when the serving snapshot was published.
    pub loaded_at: Option<u64>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// The most recent failed load, while no later load has succeeded.
    pub last_error: Option<LoadError>,
    /// Where bundles come from, e.g. `directory /etc/warden/bundle`.
    pub source: String,
    /// How the source follows changes: `watching`, `off` (SIGHUP only), or `lost: WHY`
    /// when changes can no longer be seen (the serving snapshot stays).
    pub watch: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoadError {
    /// Unix time in seconds of the failed load.
    pub at: u64,
    /// The revision the source offered.
    pub revision: u64,
    /// Every finding, with file, JSON path and line:column.
    pub message: String,
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Published {
    pub fn new() -> Published {
        Published {
            current: ArcSwapOption::empty(),
            revision: watch::channel(0).0,
            status: Mutex::new(LoadStatus::default()),
            contact: std::sync::OnceLock::new(),
        }
    }

    /// Shows `contact` in readiness and metrics (once; a server has one source).
    pub fn set_contact(&self, contact: Arc<Contact>) {
        let _ = self.contact.set(contact);
    }

    /// The remote source's contact with its store, if the source is remote.
    pub fn contact(&self) -> Option<&Arc<Contact>> {
        self.contact.get()
    }

    /// The serving snapshot, if any. Lock-free.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// The serving revision, 0 before the first snapshot.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Follows the serving revision.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    pub fn status(&self) -> LoadStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoadStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a snapshot: requests that start after this see it. The caller keeps
    /// revisions growing ([`Publisher::offer`] does).
    pub fn publish(&self, snapshot: Snapshot, metrics: &Metrics) {
        let revision = snapshot.revision();
        let now = SystemTime::now();
        {
            let mut status = self.lock();
            status.revision = Some(revision);
            status.digest = Some(snapshot.digest().to_string());
            status.loaded_at = Some(unix_seconds(now));
            status.reloads_ok += 1;
            status.last_error = None;
        }
        let previous = self.current.swap(Some(Arc::new(snapshot)));
        retire(previous);
        metrics.reloads_ok.increment(1);
        metrics.snapshot_revision.set(revision as f64);
        metrics.snapshot_loaded.set(unix_seconds(now) as f64);
        self.revision.send_replace(revision);
    }

    /// Records a failed load; the serving snapshot stays.
    pub fn record_failure(&self, revision: u64, message: String, metrics: &Metrics) {
        let mut status = self.lock();
        status.reloads_failed += 1;
        status.last_error = Some(LoadError {
            at: unix_seconds(SystemTime::now()),
            revision,
            message,
        });
        metrics.reloads_failed.increment(1);
    }

    /// Records where bundles come from and how their changes are followed.
    pub fn set_source(&self, source: String, watch: String) {
        let mut status = self.lock();
        status.source = source;
        status.watch = watch;
    }

    /// The serving snapshot once its revision is at least `min`, waiting up to `wait` for
    /// it; `None` when none is that recent in time.
    pub async fn at_least(&self, min: u64, wait: Duration) -> Option<Arc<Snapshot>> {
        if let Some(s) = self.current()
            && s.revision() >= min
        {
            return Some(s);
        }
        let mut rx = self.subscribe();
        let reached = tokio::time::timeout(wait, rx.wait_for(|r| *r >= min)).await;
        match reached {
            Ok(Ok(_)) => self.current().filter(|s| s.revision() >= min),
            _ => None,
        }
    }
}

impl Default for Published {
    fn default() -> Published {
        Published::new()
    }
}

// === impl Contact ===

/// Why a remote source read its whole store again instead of following its changes, for
/// `warden_source_resyncs_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// The first read.
    Start,
    /// Contact with the store was lost and is back: changes made meanwhile (deletes too)
    /// are only seen by reading again.
    Reconnect,
    /// The store compacted the history the watch still needed.
    Compacted,
    /// A change arrived while the files held could not be known (a refused read).
    Content,
    /// SIGHUP.
    Hangup,
}

impl Resync {
    pub const ALL: [Resync; 5] = [
        Resync::Start,
        Resync::Reconnect,
        Resync::Compacted,
        Resync::Content,
        Resync::Hangup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resync::Start => "start",
            Resync::Reconnect => "reconnect",
            Resync::Compacted => "compacted",
            Resync::Content => "content",
            Resync::Hangup => "hangup",
        }
    }
}

/// How a remote source is in touch with its store: what readiness calls stale and the
/// `warden_source_*` metrics show. Written by the source's follower task, read by the admin
/// port; never by requests.
#[derive(Debug)]
pub struct Contact {
    /// Without an answer from the store for longer than this, the source is stale even
    /// while its connection looks open (a store that stopped answering).
    stale_after: Duration,
    state: Mutex<ContactState>,
}

#[derive(Debug, Default)]
struct ContactState {
    connected: bool,
    /// The serving bundle came from a local cache and the store has not answered since.
    from_cache: bool,
    /// The last answer from the store (a read, a watch response, a progress notification).
    last: Option<Instant>,
    /// The highest revision the store said it was at.
    revision: u64,
    resyncs: [u64; Resync::ALL.len()],
}

/// Contact as readiness shows it (flattened into `/readyz`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Freshness {
    /// The store has not been heard from recently: the serving snapshot may be behind.
    pub stale: bool,
    /// A watch on the store is open.
    pub connected: bool,
    /// What was offered came from the local cache (`--etcd-cache`), and the store has not
    /// answered since.
    pub from_cache: bool,
    /// Seconds since the store last answered; absent when it never has.
    pub last_contact_seconds: Option<f64>,
    /// The highest revision the store said it was at (0 when it never answered).
    pub source_revision: u64,
}

impl Contact {
    pub fn new(stale_after: Duration) -> Contact {
        Contact {
            stale_after,
            state: Mutex::new(ContactState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ContactState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store answered, at `revision` (0: it did not say).
    pub fn heard(&self, revision: u64) {
        let mut s = self.lock();
        s.last = Some(Instant::now());
        s.revision = s.revision.max(revision);
    }

    /// The bundle offered came from the local cache (`true`), or the store answered.
    pub fn set_from_cache(&self, from_cache: bool) {
        self.lock().from_cache = from_cache;
    }

    /// A watch opened (`true`) or was lost (`false`).
    pub fn set_connected(&self, connected: bool) {
        self.lock().connected = connected;
    }

    pub fn count_resync(&self, why: Resync) {
        if let Some(n) = self.lock().resyncs.get_mut(why as usize) {
            *n += 1;
        }
    }

    pub fn freshness(&self) -> Freshness {
        let s = self.lock();
        let age = s.last.map(|t| t.elapsed());
        Freshness {
            stale: !s.connected || age.is_none_or(|a| a > self.stale_after),
            connected: s.connected,
            from_cache: s.from_cache,
            last_contact_seconds: age.map(|a| (a.as_millis() as f64) / 1000.0),
            source_revision: s.revision,
        }
    }

    /// Resyncs so far, by reason, in the order of [`Resync::ALL`].
    pub fn resyncs(&self) -> [u64; Resync::ALL.len()] {
        self.lock().resyncs
    }
}

// === sources ===

/// A boxed future, so that sources of any kind drive alike.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A bundle as a source read it.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Assigned by the source, above every revision it gave before.
    pub revision: u64,
    /// `relative path -> text`, or why the source could not read it. Shared, so that a
    /// source that keeps the files (etcd's, for its local cache) hands them over without
    /// a copy.
    pub files: Result<Arc<crate::bundle::SharedFiles>, String>,
}

/// What a source reports while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The bundle may have changed: fetch it.
    Bundle,
    /// How changes are followed changed (see [`Source::watch`]); the bundle did not.
    Watch,
}

/// Where bundles come from. A source only reads; the [`Publisher`] decides what serves.
pub trait Source: Send + 'static {
    /// What the source reads, for logs and readiness: `directory /etc/warden/bundle`.
    fn describe(&self) -> String;

    /// How the source follows changes, for readiness: `watching`, `off`, or `lost: WHY`.
    fn watch(&self) -> String;

    /// The bundle as it is now, under a revision above every one this source gave before.
    fn fetch(&mut self) -> BoxFuture<'_, Fetched>;

    /// Resolves when the source changes; pending forever for a source that never does.
    fn changed(&mut self) -> BoxFuture<'_, Change>;

    /// SIGHUP: `true` when the source re-reads its store by itself and reports the result
    /// through [`Source::changed`] (etcd: a full resync); `false` to have the caller fetch
    /// now (a directory).
    fn resync(&mut self) -> bool {
        false
    }

    /// How a remote source is in touch with its store; `None` for a local one.
    fn contact(&self) -> Option<Arc<Contact>> {
        None
    }

    /// The Publisher published the bundle this source fetched at `revision` (etcd keeps
    /// it in its cache).
    fn published(&mut self, revision: u64) {
        let _ = revision;
    }
}

/// Why a source cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The bundle directory is missing, not a directory, or unreadable; the message names
    /// it as the bundle reader does.
    #[error("{0}")]
    NotADirectory(String),
    #[error("cannot watch the bundle `{dir}`: {message}")]
    Watch { dir: String, message: String },
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(String),
    /// The etcd endpoints cannot be used (not a reachability problem: that is retried).
    #[error("{0}")]
    Etcd(String),
}

/// Lines of a failed load's report kept for readiness and the log.
pub const REPORTED_LINES: usize = 50;
/// Bytes of a failed load's report kept, about.
pub const REPORTED_BYTES: usize = 16 << 10;

// === impl Publisher ===

/// Turns what sources fetch into published snapshots: the one place that loads, compiles,
/// publishes, refuses, and records.
#[derive(Clone)]
pub struct Publisher {
    published: Arc<Published>,
    telemetry: Arc<Telemetry>,
    /// The one loader of every bundle this publisher offers: it keeps the previous load's
    /// work, so that a change costs what changed ([`crate::snapshot::Loader`]). Held by
    /// the loading thread for the length of a load; offers come one at a time.
    loader: Arc<Mutex<crate::snapshot::Loader>>,
}

impl Publisher {
    pub fn new(published: Arc<Published>, telemetry: Arc<Telemetry>) -> Publisher {
        Publisher {
            published,
            telemetry,
            loader: Arc::default(),
        }
    }

    pub fn published(&self) -> &Arc<Published> {
        &self.published
    }

    /// Loads and compiles what `source` fetched on a thread of its own, at a lower CPU
    /// priority than the requests' ([`LOAD_NICE`]), and publishes it, or records why not
    /// (the serving snapshot stays). Returns the published revision.
    pub async fn offer(&self, source: &str, fetched: Fetched) -> Result<u64, String> {
        let Fetched { revision, files } = fetched;
        let serving = self.published.revision();
        let loaded = match files {
            Err(message) => Err(message),
            Ok(_) if revision <= serving => Err(format!(
                "revision {revision} is not above the serving revision {serving}"
            )),
            Ok(files) => load_in_background(self.loader.clone(), files, revision).await,
        };
        let metrics = &self.telemetry.metrics;
        match loaded {
            Ok(snapshot) => {
                tracing::info!(
                    source,
                    revision,
                    digest = &*snapshot.digest().to_string(),
                    statements = snapshot.statement_count(),
                    "snapshot published"
                );
                self.published.publish(snapshot, metrics);
                Ok(revision)
            }
            Err(message) => {
                // A hostile bundle can make a finding per file: what is kept and shown
                // stays small (`warden validate` lists every finding).
                let message = crate::error::truncated(message, REPORTED_LINES, REPORTED_BYTES);
                let logged = crate::error::for_log(&message);
                if serving == 0 {
                    tracing::error!(
                        source,
                        revision,
                        "bundle load failed; no snapshot is serving, so requests are refused \
                         until a bundle loads: {logged}"
                    );
                } else {
                    tracing::error!(
                        source,
                        revision,
                        serving,
                        "bundle load failed, keeping the serving snapshot: {logged}"
                    );
                }
                self.published
                    .record_failure(revision, message.clone(), metrics);
                Err(message)
            }
        }
    }
}

/// How much lower than the requests' the CPU priority of a bundle's load is (Linux `nice`,
/// which is per thread): a reload takes the CPU that requests leave, so that decisions per
/// second hold while bundles change (fleet mode publishes every write on every sidecar).
/// On a saturated machine a publish then takes longer; it never blocks a request.
pub const LOAD_NICE: i32 = 10;

/// Loads and compiles `files` with `loader` on a new thread whose priority is lowered by
/// [`LOAD_NICE`] (not tokio's blocking pool, whose threads serve other work afterwards). A
/// thread that cannot lower its priority loads at the normal one.
fn load_in_background(
    loader: Arc<Mutex<crate::snapshot::Loader>>,
    files: Arc<crate::bundle::SharedFiles>,
    revision: u64,
) -> impl Future<Output = Result<Snapshot, String>> + Send {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("warden-bundle-load".to_owned())
        .spawn(move || {
            lower_priority(LOAD_NICE);
            // A load that panicked left nothing half-made that a later one trusts: the
            // loader is replaced whole then.
            let mut loader = loader.lock().unwrap_or_else(|poisoned| {
                let mut l = poisoned.into_inner();
                *l = crate::snapshot::Loader::default();
                l
            });
            let loaded = loader.load(&files, revision).map_err(|e| e.to_string());
            let _ = tx.send(loaded);
        })
        .map_err(|e| format!("cannot start the loader: {}", crate::error::cause(&e)));
    async move {
        started?;
        rx.await
            .unwrap_or_else(|_| Err("the loader stopped".to_owned()))
    }
}

/// Drops a snapshot that no longer serves on a thread of its own at the loader's priority:
/// freeing a large snapshot takes tens of milliseconds, which would otherwise be taken
/// from the runtime thread that published. (A request still holding it frees it when it
/// ends, as before.)
fn retire(snapshot: Option<Arc<Snapshot>>) {
    let Some(snapshot) = snapshot else { return };
    if Arc::strong_count(&snapshot) > 1 {
        return;
    }
    let dropped = std::thread::Builder::new()
        .name("warden-bundle-drop".to_owned())
        .spawn(move || {
            lower_priority(LOAD_NICE);
            drop(snapshot);
        });
    // Without a thread, the snapshot was dropped with the closure, here.
    let _ = dropped;
}

/// Lowers the calling thread's CPU priority by `by` (at most to 19); on Linux the nice value
/// is the thread's own.
pub(crate) fn lower_priority(by: i32) {
    use rustix::process::{getpriority_process, setpriority_process};
    if let Ok(now) = getpriority_process(None) {
        let _ = setpriority_process(None, (now + by).min(19));
    }
}

/// Drives `source` until `stop`: a load for each change it reports and for each SIGHUP
/// (`hangup`), each offered to `publisher`. The first load is the caller's (before the
/// server says it listens).
pub async fn run(
    mut source: Box<dyn Source>,
    publisher: Publisher,
    mut hangup: tokio::signal::unix::Signal,
    stop: CancellationToken,
) {
    let name = source.describe();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = hangup.recv() => {
                if source.resync() {
                    tracing::info!(source = name, "SIGHUP: resyncing with the source");
                    continue;
                }
                tracing::info!(source = name, "SIGHUP: reloading the bundle");
            }
            change = source.changed() => {
                publisher.published.set_source(name.clone(), source.watch());
                match change {
                    Change::Watch => {
                        tracing::warn!(source = name, watch = source.watch(), "the watch changed");
                        continue;
                    }
                    Change::Bundle => {
                        tracing::info!(source = name, "bundle changed: reloading");
                    }
                }
            }
        }
        let fetched = tokio::select! {
            () = stop.cancelled() => return,
            f = source.fetch() => f,
        };
        // A large bundle compiles for seconds: shutdown does not wait for it (the
        // compiling thread is left to the runtime's shutdown timeout).
        tokio::select! {
            () = stop.cancelled() => return,
            offered = publisher.offer(&name, fetched) => {
                if let Ok(revision) = offered {
                    source.published(revision);
                }
            }
        }
    }
}

// === impl MemorySource ===

/// A fixed bundle held in memory: each fetch offers the same files under the next
/// revision (so a SIGHUP republishes them); it never changes by itself.
pub struct MemorySource {
    files: Arc<crate::bundle::SharedFiles>,
    revision: u64,
}

impl MemorySource {
    pub fn new(files: BTreeMap<String, String>) -> MemorySource {
        MemorySource {
            files: Arc::new(crate::bundle::share(files)),
            revision: 0,
        }
    }
}

impl Source for MemorySource {
    fn describe(&self) -> String {
        format!("memory ({} files)", self.files.len())
    }

    fn watch(&self) -> String {
        "off".to_owned()
    }

    fn fetch(&mut self) -> BoxFuture<'_, Fetched> {
        self.revision += 1;
        let fetched = Fetched {
            revision: self.revision,
            files: Ok(self.files.clone()),
        };
        Box::pin(async move { fetched })
    }

    fn changed(&mut self) -> BoxFuture<'_, Change> {
        Box::pin(std::future::pending())
    }
}

// === impl DirectorySource ===

/// How long reading a bundle directory may take before the read is given up (and the
/// load fails): a file that blocks (a hung network mount) cannot stall reloads or
/// shutdown.
pub const READ_LIMIT: Duration = Duration::from_secs(30);

/// How often a watched directory is checked to still be the one watched: a directory
/// deleted and re-created (a redeploy, `rm -rf` then a copy) is watched again, and one
/// that is gone makes readiness say the watch is lost.
pub const WATCH_CHECK: Duration = Duration::from_secs(1);

/// How a directory source waits for changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchConfig {
    /// Quiet time after a change before reloading (an editor or a deploy writes several
    /// files).
    pub debounce: Duration,
    /// The longest a change waits for quiet: a file touched without pause still reloads.
    pub max_delay: Duration,
}

/// A bundle directory, watched for changes (inotify, recursively) when asked.
///
/// Its revisions count its reads in this process: 1 for the first, one more for each
/// reload, whether it loads or not. They only grow, but they say nothing across processes:
/// two sidecars on the same files may report different revisions and always report the
/// same digest.
pub struct DirectorySource {
    dir: PathBuf,
    revision: u64,
    watch: Option<DirWatch>,
    /// Set while a read runs on its thread; a read that blocks past [`READ_LIMIT`] keeps
    /// it set, and no other read starts until it ends (a hung mount costs one thread).
    reading: Arc<std::sync::atomic::AtomicBool>,
    /// Reads the directory into a file map ([`crate::bundle::read_dir`]; a test's own).
    read: Reader,
}

/// How a [`DirectorySource`] reads its directory.
type Reader = Arc<dyn Fn(&Path) -> Result<BTreeMap<String, String>, String> + Send + Sync>;

/// How many reads of a directory that keeps changing are tried before the load fails.
pub const UNSTEADY_READS: u32 = 5;

struct DirWatch {
    config: WatchConfig,
    watcher: notify::RecommendedWatcher,
    changed: mpsc::Receiver<()>,
    /// Counts the changes seen, so that a read can tell whether the directory changed
    /// while it ran.
    changes: Arc<std::sync::atomic::AtomicU64>,
    /// Set by the watcher when the watched directory itself was removed or renamed: a
    /// directory at its path afterwards is another one, even when it reuses the inode.
    root_gone: Arc<std::sync::atomic::AtomicBool>,
    /// Why the watcher, on its own thread, stopped seeing changes (the system's limit of
    /// watches reached): taken by the next check, which says the watch is lost.
    trouble: Arc<Mutex<Option<String>>>,
    /// The directory watched: its device and inode.
    identity: Option<(u64, u64)>,
    /// Why the directory cannot be watched now.
    lost: Option<String>,
    /// Set when the last change ended by `max_delay` rather than by quiet: the directory
    /// may still be changing, so its read is confirmed by a second one.
    forced: bool,
    /// Set when a load failed because the directory was never steady: the next load is
    /// tried after the next quiet even if no change comes (the last read may have been
    /// the whole bundle, unconfirmed).
    retry: bool,
    check: tokio::time::Interval,
}

/// The device and inode of the directory at `dir`, or why there is none.
fn identity(dir: &Path) -> Result<(u64, u64), String> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok((m.dev(), m.ino())),
        Ok(_) => Err("not a directory".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no such directory".to_owned()),
        Err(e) => Err(crate::error::cause(&e)),
    }
}

impl DirectorySource {
    /// A source on `dir`, watched when `watch` is given. Fails when `dir` is not a
    /// directory, so a mistyped path is an error at start-up in every mode.
    pub fn open(dir: PathBuf, watch: Option<WatchConfig>) -> Result<DirectorySource, SourceError> {
        let first = crate::bundle::dir::root(&dir)
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino())
            })
            .map_err(|p| SourceError::NotADirectory(p.message))?;
        let watch = match watch {
            None => None,
            Some(config) => {
                let (tx, changed) = mpsc::channel::<()>(1);
                let changes = Arc::new(std::sync::atomic::AtomicU64::new(0));
                let seen = changes.clone();
                let trouble = Arc::new(Mutex::new(None));
                let told = trouble.clone();
                let root_gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let gone = root_gone.clone();
                let root = dir.clone();
                let handler = move |event: notify::Result<notify::Event>| {
                    if let Ok(e) = &event
                        && e.paths.contains(&root)
                        && matches!(
                            e.kind,
                            notify::EventKind::Remove(_)
                                | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
                        )
                    {
                        gone.store(true, std::sync::atomic::Ordering::Release);
                    }
                    if let Err(e) = &event
                        && let notify::ErrorKind::MaxFilesWatch = e.kind
                    {
                        *told.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(notify_cause(e));
                    }
                    if relevant(&event) {
                        seen.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                        // A full queue already holds a pending change.
                        let _ = tx.try_send(());
                    }
                };
                // Symlinks are not followed: a link could take in any tree (`/`) and use
                // up the system's watches. Links inside the bundle lead to directories that
                // are watched as themselves; changes behind links that lead out of it are
                // not seen (SIGHUP reloads).
                let watcher = <notify::RecommendedWatcher as notify::Watcher>::new(
                    handler,
                    notify::Config::default().with_follow_symlinks(false),
                )
                .map_err(|e| SourceError::Watch {
                    dir: dir.display().to_string(),
                    message: notify_cause(&e),
                })?;
                let mut w = DirWatch {
                    config,
                    watcher,
                    changed,
                    changes,
                    root_gone,
                    trouble,
                    identity: None,
                    lost: None,
                    forced: false,
                    retry: false,
                    check: tokio::time::interval_at(Instant::now() + WATCH_CHECK, WATCH_CHECK),
                };
                w.check
                    .set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // A directory that cannot be watched (one of its subdirectories unreadable,
                // the system's watches used up) still serves: readiness says the watch is
                // lost, and the check tries again every second.
                if let Err(why) = w.rewatch(&dir, first) {
                    tracing::warn!(dir = %dir.display(), "cannot watch the bundle: {why}");
                    w.lost = Some(why);
                }
                Some(w)
            }
        };
        Ok(DirectorySource {
            dir,
            revision: 0,
            watch,
            reading: Arc::default(),
            read: Arc::new(|dir: &Path| crate::bundle::read_dir(dir).map_err(|e| e.to_string())),
        })
    }

    /// Reads with `read` instead of the bundle reader (tests).
    #[cfg(test)]
    fn with_reader(mut self, read: Reader) -> DirectorySource {
        self.read = read;
        self
    }

    /// Changes the watch has seen so far; `None` without a watch.
    fn changes(&self) -> Option<u64> {
        self.watch
            .as_ref()
            .map(|w| w.changes.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Reads the directory whole. A read that the watch saw the directory change under
    /// may mix old and new files (a deploy that copies file by file): it is thrown away
    /// and, after the debounce, read again. When the change that led here ended by
    /// `max_delay` rather than by quiet, the directory may still be changing between
    /// reads too (a copy that writes a file every few milliseconds): its read serves only
    /// when a second one, a debounce later, finds the same files. After
    /// [`UNSTEADY_READS`] reads that did not hold, the load fails and is tried again
    /// after the next quiet.
    async fn read_whole(&mut self) -> Result<BTreeMap<String, String>, String> {
        let forced = self
            .watch
            .as_mut()
            .is_some_and(|w| std::mem::take(&mut w.forced));
        let quiet = self
            .watch
            .as_ref()
            .map_or(Duration::ZERO, |w| w.config.debounce);
        let mut unconfirmed: Option<BTreeMap<String, String>> = None;
        let mut differed = Vec::new();
        for _ in 0..UNSTEADY_READS {
            if let Some(w) = &mut self.watch {
                // What came before this read is in it.
                while w.changed.try_recv().is_ok() {}
            }
            let before = self.changes();
            let read = self.read.clone();
            let dir = self.dir.clone();
            let files = read_bounded(move || read(&dir), self.reading.clone(), READ_LIMIT).await?;
            let torn = self.changes() != before;
            if !torn && (!forced || unconfirmed.as_ref() == Some(&files)) {
                return Ok(files);
            }
            if torn {
                tracing::info!(
                    dir = %self.dir.display(),
                    "the bundle changed while it was read: reading it again"
                );
            } else {
                if let Some(previous) = &unconfirmed {
                    differed = differing(previous, &files);
                }
                unconfirmed = Some(files);
            }
            tokio::time::sleep(quiet).await;
        }
        if let Some(w) = &mut self.watch {
            w.retry = true;
        }
        let named = if differed.is_empty() {
            String::new()
        } else {
            format!("; files that kept changing: {}", differed.join(", "))
        };
        Err(format!(
            "the bundle kept changing while it was read ({UNSTEADY_READS} reads, {quiet:?} \
             apart, none whole and steady{named}); it is read again after the next quiet \
             (deploy a bundle by an atomic swap: see the README)"
        ))
    }
}

/// The paths whose files differ between two reads (added, removed or changed), the first
/// few of them, for a report.
fn differing(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    const SHOWN: usize = 5;
    let changed = |(path, text): (&String, &String), other: &BTreeMap<String, String>| {
        (other.get(path) != Some(text)).then(|| path.clone())
    };
    let mut paths: Vec<String> = a
        .iter()
        .filter_map(|f| changed(f, b))
        .chain(b.iter().filter_map(|f| changed(f, a)))
        .collect();
    paths.sort();
    paths.dedup();
    let more = paths.len().saturating_sub(SHOWN);
    paths.truncate(SHOWN);
    if more > 0 {
        paths.push(format!("and {more} more"));
    }
    paths
}

/// Whether a file-system event may change the bundle.
fn relevant(event: &notify::Result<notify::Event>) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    match event {
        // Reading the bundle opens and closes its files: that is no change, and taking it
        // for one would reload forever.
        Ok(e) => match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
        // An error (the queue overflowed) may hide a change.
        Err(_) => true,
    }
}

/// A watcher error's cause, said once (`notify::Error` repeats its source in its text).
fn notify_cause(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::Io(io) => crate::error::cause(io),
        notify::ErrorKind::PathNotFound => "no such directory".to_owned(),
        notify::ErrorKind::MaxFilesWatch => {
            "the system's limit of inotify watches is reached (fs.inotify.max_user_watches)"
                .to_owned()
        }
        notify::ErrorKind::Generic(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

impl DirWatch {
    /// Watches `dir` (again), now known as `identity`.
    fn rewatch(&mut self, dir: &Path, identity: (u64, u64)) -> Result<(), String> {
        use notify::{RecursiveMode, Watcher};
        if self.identity.is_some() {
            // The old directory is gone or replaced; its watch may already be gone too.
            let _ = self.watcher.unwatch(dir);
        }
        self.watcher
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|e| notify_cause(&e))?;
        self.identity = Some(identity);
        self.lost = None;
        Ok(())
    }

    /// Waits for a change, then for quiet (at most `max_delay` in all); or for the
    /// directory to go or come back; or, after a load that found the directory never
    /// steady, for the next try.
    async fn changed(&mut self, dir: &Path) -> Change {
        loop {
            if std::mem::take(&mut self.retry) {
                return self.settle(dir, true).await;
            }
            tokio::select! {
                Some(()) = self.changed.recv() => return self.settle(dir, false).await,
                _ = self.check.tick() => match self.check_identity(dir) {
                    None => {}
                    Some(Change::Watch) => return Change::Watch,
                    // A directory back or replaced: what was written into it before it
                    // was watched was not seen, so its quiet is waited for afresh.
                    Some(Change::Bundle) => return self.settle(dir, true).await,
                },
            }
        }
    }

    /// After a change: waits for quiet (at most `max_delay`), renews the watch, and says
    /// the bundle may have changed. The read that follows is confirmed by a second one
    /// (`forced`) when quiet never came, or when the caller says so.
    async fn settle(&mut self, dir: &Path, mut forced: bool) -> Change {
        loop {
            let latest = Instant::now() + self.config.max_delay;
            loop {
                let until = (Instant::now() + self.config.debounce).min(latest);
                match tokio::time::timeout_at(until, self.changed.recv()).await {
                    Ok(Some(())) => {}
                    _ => {
                        forced |= until == latest;
                        break;
                    }
                }
            }
            // Watch the directory afresh: a change may have replaced it, or a directory in
            // it, whose old watch sees nothing any more.
            let before = self.identity;
            let replaced = self
                .root_gone
                .swap(false, std::sync::atomic::Ordering::AcqRel);
            match identity(dir).and_then(|now| self.rewatch(dir, now)) {
                // A new directory (deleted and re-created, or renamed into place): writes
                // into it before this watch were not seen. Wait for its quiet too.
                Ok(()) if replaced || self.identity != before => forced = true,
                Ok(()) => break,
                Err(why) => {
                    let _ = self.lose(why);
                    break;
                }
            }
        }
        self.forced = forced;
        Change::Bundle
    }

    /// Compares the directory at `dir` with the one watched, and takes the watcher's
    /// trouble: `Some` when either changed.
    fn check_identity(&mut self, dir: &Path) -> Option<Change> {
        let trouble = self
            .trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(why) = trouble {
            tracing::warn!(dir = %dir.display(), "the watch misses changes: {why}");
            return self.lose(why);
        }
        match identity(dir) {
            Ok(now) if Some(now) == self.identity && self.lost.is_none() => None,
            Ok(now) => match self.rewatch(dir, now) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "the bundle directory is back: watching it again");
                    Some(Change::Bundle)
                }
                Err(why) => self.lose(why),
            },
            Err(why) => self.lose(why),
        }
    }

    fn lose(&mut self, why: String) -> Option<Change> {
        if self.lost.as_deref() == Some(&why) {
            return None;
        }
        self.lost = Some(why);
        Some(Change::Watch)
    }
}

/// Runs `read` (of a bundle) on a thread of its own, for at most `limit`: a read still
/// running then is abandoned (its thread ends when the read does, or with the process)
/// and the load fails. Not tokio's blocking pool: a runtime waits for those at shutdown.
fn read_bounded(
    read: impl FnOnce() -> Result<BTreeMap<String, String>, String> + Send + 'static,
    reading: Arc<std::sync::atomic::AtomicBool>,
    limit: Duration,
) -> impl Future<Output = Result<BTreeMap<String, String>, String>> + Send {
    use std::sync::atomic::Ordering;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = if reading.swap(true, Ordering::AcqRel) {
        Err(
            "the previous read of the bundle is still blocked; not reading again until it ends"
                .to_owned(),
        )
    } else {
        let done = reading.clone();
        std::thread::Builder::new()
            .name("warden-bundle-read".to_owned())
            .spawn(move || {
                let read = read();
                // Cleared before the answer goes, so that a read started on that answer
                // never finds this one still running.
                done.store(false, Ordering::Release);
                let _ = tx.send(read);
            })
            .map_err(|e| {
                reading.store(false, Ordering::Release);
                format!(
                    "cannot start the bundle reader: {}",
                    crate::error::cause(&e)
                )
            })
    };
    async move {
        started?;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(read)) => read,
            Ok(Err(_)) => Err("the bundle reader stopped".to_owned()),
            Err(_) => Err(format!(
                "reading the bundle took longer than {limit:?}: given up (a file that blocks?)"
            )),
        }
    }
}

impl Source for DirectorySource {
    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }

    fn watch(&self) -> String {
        match &self.watch {
            None => "off".to_owned(),
            Some(w) => match &w.lost {
                None => "watching".to_owned(),
                Some(why) => format!("lost: {why}"),
            },
        }
    }

    fn fetch(&mut self) -> BoxFuture<'_, Fetched> {
        self.revision += 1;
        let revision = self.revision;
        Box::pin(async move {
            Fetched {
                revision,
                files: self
                    .read_whole()
                    .await
                    .map(|f| Arc::new(crate::bundle::share(f))),
            }
        })
    }

    fn changed(&mut self) -> BoxFuture<'_, Change> {
        let dir = &self.dir;
        match &mut self.watch {
            Some(w) => Box::pin(w.changed(dir)),
            None => Box::pin(std::future::pending()),
        }
    }
}

#[cfg(test)]
mod tests;
