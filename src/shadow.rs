//! Shadow mode (`warden serve --shadow-bundle DIR`): a candidate bundle decides real
//! traffic beside the serving snapshot, off the request path, and its disagreements are
//! counted (`warden_shadow_*`) and logged. The service offers each decided item to a
//! bounded queue ([`Shadow::offer`] never waits: a full queue drops and counts); one
//! thread of its own, at a lower CPU priority, decides them against the shadow snapshot
//! as the service would (the context screened by its rules, a session's policies looked
//! up in it, at the request's time). The shadow's directory is loaded at start and on
//! change (watched like the serving bundle's, when watching is on) and on SIGHUP; a load
//! that fails keeps the shadow it had (or none) and is counted.
//!
//! INVARIANT (shadow never decides): nothing of the shadow flows back into an answer; the
//! service hands over copies and never reads a result.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use metrics::{Counter, Gauge};
use tokio::sync::mpsc;

use crate::caller::Caller;
use crate::context::{CallerContext, CallerView};
use crate::eval::{Decision, Outcome, Reason};
use crate::request::{Action, parse_resource};
use crate::snapshot::{Question, Snapshot};
use crate::source::{DirectorySource, Source, SourceError, WatchConfig};
use crate::telemetry::RecordedContext;

/// How a shadow decision compared, as the metrics label it.
const SHADOW_RESULTS: [&str; 4] = ["Allow", "ExplicitDeny", "ImplicitDeny", "refused"];
const SERVING: [Decision; 3] = [
    Decision::Allow,
    Decision::ExplicitDeny,
    Decision::ImplicitDeny,
];

/// The shadow's metrics; registered with every server's (zero without a shadow).
pub struct ShadowMetrics {
    /// `warden_shadow_decisions_total{serving, shadow}`, indexed serving then shadow
    /// (`refused`: the shadow bundle refuses the request, such as an action its catalog
    /// lacks).
    decisions: [[Counter; 4]; 3],
    pub agreements: Counter,
    pub disagreements: Counter,
    /// Items not offered to the shadow: the queue was full.
    pub dropped: Counter,
    /// Items the shadow could not decide: no shadow snapshot loaded, or a context larger
    /// than a record keeps.
    pub skipped: Counter,
    pub loads_ok: Counter,
    pub loads_failed: Counter,
    /// The shadow snapshot's revision (its directory's reads in this process), 0 before
    /// the first load.
    pub revision: Gauge,
    /// 1 while a shadow snapshot is loaded.
    pub loaded: Gauge,
}

impl ShadowMetrics {
    /// Registers every shadow metric with the recorder in scope.
    pub fn register() -> ShadowMetrics {
        use metrics::{describe_counter, describe_gauge};
        describe_counter!(
            "warden_shadow_decisions_total",
            "Decisions the shadow bundle made beside the serving one, by the serving and the \
             shadow decision (`refused` when the shadow bundle refuses the request)"
        );
        describe_counter!(
            "warden_shadow_agreements_total",
            "Shadow decisions equal to the serving decision"
        );
        describe_counter!(
            "warden_shadow_disagreements_total",
            "Shadow decisions other than the serving decision"
        );
        describe_counter!(
            "warden_shadow_dropped_total",
            "Decisions not offered to the shadow because its queue was full"
        );
        describe_counter!(
            "warden_shadow_skipped_total",
            "Decisions the shadow could not make (no shadow bundle loaded, a context too large)"
        );
        describe_counter!(
            "warden_shadow_loads_total",
            "Loads of the shadow bundle, by result (`ok`, `error`)"
        );
        describe_gauge!(
            "warden_shadow_revision",
            "Revision of the loaded shadow bundle (0: none)"
        );
        describe_gauge!("warden_shadow_loaded", "1 while a shadow bundle is loaded");
        ShadowMetrics {
            decisions: SERVING.map(|serving| {
                SHADOW_RESULTS.map(|shadow| {
                    metrics::counter!(
                        "warden_shadow_decisions_total",
                        "serving" => serving.as_str(),
                        "shadow" => shadow
                    )
                })
            }),
            agreements: metrics::counter!("warden_shadow_agreements_total"),
            disagreements: metrics::counter!("warden_shadow_disagreements_total"),
            dropped: metrics::counter!("warden_shadow_dropped_total"),
            skipped: metrics::counter!("warden_shadow_skipped_total"),
            loads_ok: metrics::counter!("warden_shadow_loads_total", "result" => "ok"),
            loads_failed: metrics::counter!("warden_shadow_loads_total", "result" => "error"),
            revision: metrics::gauge!("warden_shadow_revision"),
            loaded: metrics::gauge!("warden_shadow_loaded"),
        }
    }

    fn decision(&self, serving: Decision, shadow: Option<Decision>) {
        let row = SERVING.iter().position(|d| *d == serving);
        let col = match shadow {
            Some(d) => SHADOW_RESULTS.iter().position(|s| *s == d.as_str()),
            None => Some(3),
        };
        if let Some(c) = row
            .and_then(|r| self.decisions.get(r))
            .and_then(|row| col.and_then(|c| row.get(c)))
        {
            c.increment(1);
        }
    }
}

/// One decided item, copied for the shadow.
pub struct Asked {
    pub caller: Caller,
    pub action: String,
    pub resource: String,
    /// The item's screened context; `None` when larger than a record keeps.
    pub context: Option<RecordedContext>,
    /// The time the serving decision used.
    pub now: SystemTime,
    pub serving: (Decision, Reason),
    pub revision: u64,
}

/// The service's handle: offers decided items to the shadow, never waiting.
#[derive(Clone)]
pub struct Shadow {
    tx: mpsc::Sender<Asked>,
    metrics: Arc<ShadowMetrics>,
}

/// The shadow's settings.
#[derive(Debug, Clone)]
pub struct ShadowConfig {
    /// The candidate bundle directory.
    pub dir: PathBuf,
    /// Items queued for the shadow before they are dropped (and counted).
    pub queue: usize,
}

impl Shadow {
    /// Queues an item, or drops and counts it when the queue is full.
    pub fn offer(&self, asked: Asked) {
        if self.tx.try_send(asked).is_err() {
            self.metrics.dropped.increment(1);
        }
    }

    /// Opens the shadow's directory, loads it once, and starts the thread that decides
    /// and the task that reloads it (watched with `watch`, and on SIGHUP); the task is
    /// returned for the server to stop. A directory that does not exist is an error; a
    /// bundle that fails to load is not (counted and logged; the shadow decides nothing
    /// until one loads). Call within a tokio runtime.
    pub async fn start(
        config: &ShadowConfig,
        watch: Option<WatchConfig>,
        metrics: Arc<ShadowMetrics>,
    ) -> Result<(Shadow, tokio::task::JoinHandle<()>), SourceError> {
        let mut source = DirectorySource::open(config.dir.clone(), watch)?;
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| SourceError::Signal(crate::error::cause(&e)))?;
        let current: Arc<ArcSwapOption<Snapshot>> = Arc::new(ArcSwapOption::empty());
        load(&mut source, &current, &metrics).await;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        {
            let current = current.clone();
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name("warden-shadow".to_owned())
                .spawn(move || decide_all(rx, &current, &metrics))
                .map_err(|e| SourceError::Signal(crate::error::cause(&e)))?;
        }
        let reload = tokio::spawn(follow(source, hangup, current, metrics.clone()));
        Ok((Shadow { tx, metrics }, reload))
    }
}

/// Reloads the shadow on each change and SIGHUP.
async fn follow(
    mut source: DirectorySource,
    mut hangup: tokio::signal::unix::Signal,
    current: Arc<ArcSwapOption<Snapshot>>,
    metrics: Arc<ShadowMetrics>,
) {
    loop {
        tokio::select! {
            _ = hangup.recv() => {}
            change = source.changed() => {
                if change != crate::source::Change::Bundle {
                    continue;
                }
            }
        }
        load(&mut source, &current, &metrics).await;
    }
}

/// Reads and compiles the shadow's bundle on a blocking thread; publishes it, or counts
/// and logs why not (the shadow it had stays).
async fn load(
    source: &mut DirectorySource,
    current: &ArcSwapOption<Snapshot>,
    metrics: &ShadowMetrics,
) {
    let fetched = source.fetch().await;
    let name = source.describe();
    let revision = fetched.revision;
    let loaded = match fetched.files {
        Ok(files) => tokio::task::spawn_blocking(move || {
            Snapshot::load_files(&files, revision).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the load stopped: {e}"))),
        Err(message) => Err(message),
    };
    match loaded {
        Ok(snapshot) => {
            tracing::info!(
                source = name,
                revision,
                digest = &*snapshot.digest().clone(),
                "shadow bundle loaded"
            );
            metrics.loads_ok.increment(1);
            metrics.revision.set(revision as f64);
            metrics.loaded.set(1.0);
            current.store(Some(Arc::new(snapshot)));
        }
        Err(message) => {
            tracing::warn!(
                source = name,
                revision,
                error = message,
                "the shadow bundle failed to load; the shadow keeps what it had"
            );
            metrics.loads_failed.increment(1);
        }
    }
}

/// The shadow's thread: decides each queued item until the service is gone.
fn decide_all(
    mut rx: mpsc::Receiver<Asked>,
    current: &ArcSwapOption<Snapshot>,
    metrics: &ShadowMetrics,
) {
    crate::source::lower_priority(10);
    while let Some(asked) = rx.blocking_recv() {
        let Some(snapshot) = current.load_full() else {
            metrics.skipped.increment(1);
            continue;
        };
        let Some(context) = &asked.context else {
            metrics.skipped.increment(1);
            continue;
        };
        let shadow = decide(&snapshot, &asked, context);
        let (serving, serving_reason) = asked.serving;
        metrics.decision(serving, shadow.as_ref().ok().map(|o| o.decision));
        let agrees = shadow.as_ref().is_ok_and(|o| o.decision == serving);
        if agrees {
            metrics.agreements.increment(1);
            continue;
        }
        metrics.disagreements.increment(1);
        let (decision, reason) = match &shadow {
            Ok(o) => (o.decision.as_str(), o.reason.as_str().to_owned()),
            Err(m) => ("refused", m.clone()),
        };
        tracing::info!(
            principal = asked.caller.arn(),
            action = asked.action,
            resource = asked.resource,
            serving = serving.as_str(),
            serving_reason = serving_reason.as_str(),
            serving_revision = asked.revision,
            shadow = decision,
            shadow_reason = reason,
            shadow_revision = snapshot.revision(),
            "the shadow bundle disagrees"
        );
    }
}

/// One item decided against the shadow as the service would decide it; `Err` when the
/// shadow refuses the request.
pub fn decide(
    snapshot: &Snapshot,
    asked: &Asked,
    context: &RecordedContext,
) -> Result<Outcome, String> {
    let action = Action::parse(&asked.action)?;
    snapshot.check_action(&action, &asked.action)?;
    let resource_arn = parse_resource(&asked.resource)?;
    let context = CallerContext::screen_with(
        context.to_context(),
        |k| snapshot.is_web_identity_key(k),
        |_| {},
    );
    let question = Question {
        action: &action,
        resource: &asked.resource,
        resource_arn,
        context: CallerView::of(&context),
    };
    let session = match &asked.caller {
        Caller::Session(s) => Some(s.for_snapshot(snapshot)),
        Caller::Asserted(_) | Caller::AccessKey { .. } => None,
        Caller::Presented(_) => return Err("the caller was not verified".to_owned()),
    };
    Ok(
        match snapshot.resolve(asked.caller.arn(), session.as_ref(), asked.now)? {
            Some(who) => snapshot.decide(&who, &question, asked.now, false).0.outcome,
            None => Outcome::unknown_principal(),
        },
    )
}
