//! Where snapshots come from and how they are published: a bundle directory, loaded and
//! compiled off the request path, reloaded when its files change (debounced) or on SIGHUP.
//!
//! INVARIANT (fail closed on reload): a bundle that fails to load never replaces the
//! serving snapshot; the failure is logged, counted, and kept for readiness to show.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::snapshot::Snapshot;
use crate::telemetry::Metrics;

/// The serving snapshot, published whole, and what is known about the loads behind it.
///
/// Requests read `current` without locks; only the source writes it.
pub struct Published {
    current: ArcSwapOption<Snapshot>,
    /// The serving revision (0 before the first snapshot), for requests that wait for a
    /// newer one (`min_revision`) and for health.
    revision: watch::Sender<u64>,
    /// Load history for readiness; touched once per load, never by requests.
    status: Mutex<LoadStatus>,
}

/// What readiness reports about loading.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LoadStatus {
    /// The serving revision; absent until a bundle has loaded.
    pub revision: Option<u64>,
    /// Unix time in seconds when the serving snapshot was published.
    pub loaded_at: Option<u64>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// The most recent failed load, while no later load has succeeded.
    pub last_error: Option<LoadError>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoadError {
    /// Unix time in seconds of the failed load.
    pub at: u64,
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
        }
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
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Publishes a snapshot: requests that start after this see it.
    pub fn publish(&self, snapshot: Snapshot, metrics: &Metrics) {
        let revision = snapshot.revision();
        let now = SystemTime::now();
        {
            let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
            status.revision = Some(revision);
            status.loaded_at = Some(unix_seconds(now));
            status.reloads_ok += 1;
            status.last_error = None;
        }
        self.current.store(Some(Arc::new(snapshot)));
        metrics.reloads_ok.increment(1);
        metrics.snapshot_revision.set(revision as f64);
        metrics.snapshot_loaded.set(unix_seconds(now) as f64);
        self.revision.send_replace(revision);
    }

    /// Records a failed load; the serving snapshot stays.
    pub fn record_failure(&self, message: String, metrics: &Metrics) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.reloads_failed += 1;
        status.last_error = Some(LoadError {
            at: unix_seconds(SystemTime::now()),
            message,
        });
        metrics.reloads_failed.increment(1);
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

/// Loads a bundle directory into [`Published`], now and whenever asked or changed.
pub struct DirectorySource {
    dir: PathBuf,
    published: Arc<Published>,
    metrics: Arc<crate::telemetry::Telemetry>,
    debounce: Duration,
}

/// Why the directory cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot watch the bundle `{dir}`: {source}")]
    Watch { dir: String, source: notify::Error },
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(std::io::Error),
}

impl DirectorySource {
    pub fn new(
        dir: PathBuf,
        published: Arc<Published>,
        telemetry: Arc<crate::telemetry::Telemetry>,
        debounce: Duration,
    ) -> DirectorySource {
        DirectorySource {
            dir,
            published,
            metrics: telemetry,
            debounce,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads and compiles the bundle on a blocking thread and publishes it under the next
    /// revision; a failure is recorded and leaves the serving snapshot in place.
    pub async fn reload(&self) -> Result<u64, String> {
        let dir = self.dir.clone();
        let revision = self.published.revision() + 1;
        let loaded = tokio::task::spawn_blocking(move || Snapshot::load_dir(&dir, revision))
            .await
            .map_err(|e| format!("the loader stopped: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        let metrics = &self.metrics.metrics;
        match loaded {
            Ok(snapshot) => {
                tracing::info!(
                    bundle = %self.dir.display(),
                    revision,
                    statements = snapshot.statement_count(),
                    "snapshot published"
                );
                self.published.publish(snapshot, metrics);
                Ok(revision)
            }
            Err(message) => {
                tracing::error!(
                    bundle = %self.dir.display(),
                    serving = self.published.revision(),
                    "bundle load failed, keeping the serving snapshot: {message}"
                );
                self.published.record_failure(message.clone(), metrics);
                Err(message)
            }
        }
    }

    /// Starts listening for what triggers a reload: changes under the directory (when
    /// `watch`) and SIGHUP. Call it before the first load, so no change is missed and a
    /// SIGHUP never finds the default action (exit) in place.
    pub fn triggers(&self, watch: bool) -> Result<Triggers, SourceError> {
        use notify::{EventKind, RecursiveMode, Watcher};
        use tokio::signal::unix::{SignalKind, signal};

        let hangup = signal(SignalKind::hangup()).map_err(SourceError::Signal)?;
        let (tx, changed) = mpsc::channel::<()>(1);
        if !watch {
            return Ok(Triggers {
                _watcher: None,
                changed,
                hangup,
            });
        }
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match event {
                    // Reading the bundle opens and closes its files: that is no change, and
                    // taking it for one would reload forever.
                    Ok(e) => match e.kind {
                        EventKind::Access(notify::event::AccessKind::Close(
                            notify::event::AccessMode::Write,
                        )) => true,
                        EventKind::Access(_) => false,
                        _ => true,
                    },
                    Err(_) => true,
                };
                if relevant {
                    // A full queue already holds a pending change.
                    let _ = tx.try_send(());
                }
            })
            .map_err(|source| SourceError::Watch {
                dir: self.dir.display().to_string(),
                source,
            })?;
        watcher
            .watch(&self.dir, RecursiveMode::Recursive)
            .map_err(|source| SourceError::Watch {
                dir: self.dir.display().to_string(),
                source,
            })?;
        Ok(Triggers {
            _watcher: Some(watcher),
            changed,
            hangup,
        })
    }

    /// Reloads on every trigger (a change, after `debounce` of quiet; a SIGHUP at once),
    /// until `stop` is cancelled.
    pub async fn run(self, mut triggers: Triggers, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = triggers.hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the bundle");
                }
                Some(()) = triggers.changed.recv() => {
                    // An editor or a deploy writes several files: wait for quiet.
                    while let Ok(Some(())) =
                        tokio::time::timeout(self.debounce, triggers.changed.recv()).await
                    {}
                    tracing::info!(bundle = %self.dir.display(), "bundle changed: reloading");
                }
            }
            let _ = self.reload().await;
        }
    }
}

/// What makes the source reload; see [`DirectorySource::triggers`].
pub struct Triggers {
    /// Kept alive for as long as changes are wanted.
    _watcher: Option<notify::RecommendedWatcher>,
    changed: mpsc::Receiver<()>,
    hangup: tokio::signal::unix::Signal,
}
