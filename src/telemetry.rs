//! Telemetry of the decision service: metric names and handles (Prometheus), tracing
//! set-up (text or JSON logs), and the decision log (JSON Lines through a bounded queue
//! that drops and counts rather than block a decision).
//!
//! Metrics live in a recorder owned by [`Telemetry`], not a process-global one, so several
//! servers in one process (tests) keep separate counts.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use tokio::sync::mpsc;

use smol_str::SmolStr;

use crate::context::ContextValue;
use crate::eval::{Decision, Outcome, Reason};

/// Latency buckets in seconds: a decision takes microseconds, a slow one milliseconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.1, 1.0,
];

/// The faces a request comes through: metrics and the decision log are labelled by face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// gRPC `warden.v1.Authorizer/Authorize`.
    Authorize,
    /// gRPC `warden.v1.Authorizer/BatchAuthorize`.
    BatchAuthorize,
    /// gRPC `envoy.service.auth.v3.Authorization/Check` (Envoy ext_authz).
    Check,
    /// `warden authorize`, without a server.
    Offline,
    /// gRPC `warden.v1.Admin`: who may read and write the bundle's documents.
    Admin,
}

impl Face {
    /// Every face, in the order of their discriminants.
    pub const ALL: [Face; 5] = [
        Face::Authorize,
        Face::BatchAuthorize,
        Face::Check,
        Face::Offline,
        Face::Admin,
    ];
    /// The faces that are RPCs, whose durations are measured.
    pub const RPCS: [Face; 3] = [Face::Authorize, Face::BatchAuthorize, Face::Check];

    pub fn as_str(self) -> &'static str {
        match self {
            Face::Authorize => "Authorize",
            Face::BatchAuthorize => "BatchAuthorize",
            Face::Check => "Check",
            Face::Offline => "offline",
            Face::Admin => "Admin",
        }
    }
}

/// What a measured RPC ended with: a decision (for a batch, the strongest deny among its
/// items, or `Allow` when every item was allowed), or an error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcResult {
    Decided(Decision),
    Error,
}

/// Owns the metrics recorder and every metric handle, created once.
pub struct Telemetry {
    prometheus: PrometheusHandle,
    pub metrics: Metrics,
    pub connections: Connections,
    /// OIDC token and key set metrics ([`crate::oidc::metrics`]), in the same recorder.
    pub oidc: crate::oidc::OidcMetrics,
    /// The shadow bundle's metrics ([`crate::shadow`]), in the same recorder.
    pub shadow: Arc<crate::shadow::ShadowMetrics>,
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".to_owned()),
                &LATENCY_BUCKETS,
            )
            .map(PrometheusBuilder::build_recorder)
            // The buckets are a non-empty constant, so the builder cannot refuse them.
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let prometheus = recorder.handle();
        let metrics = metrics::with_local_recorder(&recorder, Metrics::register);
        let connections = metrics::with_local_recorder(&recorder, Connections::register);
        let shadow = Arc::new(metrics::with_local_recorder(
            &recorder,
            crate::shadow::ShadowMetrics::register,
        ));
        // Kept: the OIDC metrics register a provider's handles when it is first fetched.
        let oidc = crate::oidc::OidcMetrics::register(Arc::new(recorder));
        Telemetry {
            prometheus,
            metrics,
            connections,
            oidc,
            shadow,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.prometheus.render()
    }

    /// Drains histogram samples into their buckets; run it every few seconds.
    pub fn run_upkeep(&self) {
        self.prometheus.run_upkeep();
    }
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        Telemetry::new()
    }
}

// === impl Metrics ===

/// Every metric of the service. Handles are created once; labels are `&'static str`.
pub struct Metrics {
    /// `warden_rpc_duration_seconds{rpc, decision}`: one per RPC face and result.
    rpc: [[Histogram; 4]; 3],
    /// `warden_decisions_total{face, decision, reason}`, indexed by the face's then the
    /// reason's discriminant.
    decisions: Box<[Counter]>,
    /// `warden_check_refusals_total{reason}`: Check requests denied before the engine (no
    /// route, no principal, a path or token refused), by [`crate::ext_authz::REFUSALS`].
    check_refusals: Box<[(&'static str, Counter)]>,
    /// Check requests denied but let through because their route is in dry-run.
    pub check_dry_run: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub cache_evictions: Counter,
    /// Decisions the cache must not keep: they test the time.
    pub cache_uncacheable: Counter,
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    pub snapshot_revision: Gauge,
    /// Unix time when the serving snapshot was published.
    pub snapshot_loaded: Gauge,
    /// Seconds since the serving snapshot was published, set at each scrape.
    pub snapshot_age: Gauge,
    /// Requests refused because the concurrency limit was reached.
    pub shed: Counter,
    /// Requests refused as malformed.
    pub invalid: Counter,
    /// `warden_context_keys_dropped_total{key}`: caller values dropped for keys the server
    /// owns, by the registry's name of the key (`unregistered` for an unknown `aws:` key,
    /// `web_identity` for an OIDC provider's token key).
    context_keys_dropped: Box<[(&'static str, Counter)]>,
    pub in_flight: Gauge,
    pub log_written: Counter,
    pub log_dropped: Counter,
}

fn result_index(r: RpcResult) -> usize {
    match r {
        RpcResult::Decided(Decision::Allow) => 0,
        RpcResult::Decided(Decision::ExplicitDeny) => 1,
        RpcResult::Decided(Decision::ImplicitDeny) => 2,
        RpcResult::Error => 3,
    }
}

impl Metrics {
    /// Registers every metric with the recorder in scope.
    fn register() -> Metrics {
        use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_histogram!(
            "warden_rpc_duration_seconds",
            Unit::Seconds,
            "Time to answer an RPC, by RPC and decision (`error` for an error status)"
        );
        describe_counter!(
            "warden_decisions_total",
            "Decisions made, by face, decision and stable reason code"
        );
        describe_counter!(
            "warden_check_refusals_total",
            "Envoy Check requests denied before evaluation (no route, no principal, a path or \
             token refused), by reason"
        );
        describe_counter!("warden_cache_hits_total", "Decision cache hits");
        describe_counter!("warden_cache_misses_total", "Decision cache misses");
        describe_counter!(
            "warden_cache_evictions_total",
            "Decisions evicted from the full cache"
        );
        describe_counter!(
            "warden_cache_uncacheable_total",
            "Decisions not cached because a condition tests the time"
        );
        describe_counter!(
            "warden_reloads_total",
            "Bundle loads, by result (`ok`, `error`); a failed load keeps the serving snapshot"
        );
        describe_gauge!(
            "warden_snapshot_revision",
            "Revision of the serving snapshot"
        );
        describe_gauge!(
            "warden_snapshot_loaded_timestamp_seconds",
            Unit::Seconds,
            "Unix time the serving snapshot was published"
        );
        describe_gauge!(
            "warden_snapshot_age_seconds",
            Unit::Seconds,
            "Age of the serving snapshot"
        );
        describe_counter!(
            "warden_shed_total",
            "Requests refused because the concurrency limit was reached"
        );
        describe_counter!(
            "warden_invalid_requests_total",
            "Requests refused as malformed"
        );
        describe_counter!(
            "warden_check_dry_run_passed_total",
            "Envoy Check requests denied but let through because their route is in dry-run"
        );
        describe_gauge!("warden_requests_in_flight", "Requests being decided");
        describe_counter!(
            "warden_context_keys_dropped_total",
            "Context keys a caller sent for keys the server owns, dropped, by key"
        );
        describe_counter!(
            "warden_decision_log_written_total",
            "Decision log records queued"
        );
        describe_counter!(
            "warden_decision_log_dropped_total",
            "Decision log records dropped because the sink was slow"
        );

        let rpc = Face::RPCS.map(|rpc| {
            ["Allow", "ExplicitDeny", "ImplicitDeny", "error"].map(|decision| {
                metrics::histogram!(
                    "warden_rpc_duration_seconds",
                    "rpc" => rpc.as_str(),
                    "decision" => decision
                )
            })
        });
        // Indexed by the face's, then the reason's discriminant: `Face::ALL` and
        // `Reason::all()` yield them in order.
        let decisions: Vec<Counter> = Face::ALL
            .iter()
            .flat_map(|face| {
                Reason::all().map(|r| {
                    metrics::counter!(
                        "warden_decisions_total",
                        "face" => face.as_str(),
                        "decision" => r.decision().as_str(),
                        "reason" => r.as_str()
                    )
                })
            })
            .collect();
        Metrics {
            rpc,
            decisions: decisions.into_boxed_slice(),
            check_refusals: crate::ext_authz::REFUSALS
                .iter()
                .map(|&reason| {
                    let c = metrics::counter!("warden_check_refusals_total", "reason" => reason);
                    (reason, c)
                })
                .collect(),
            cache_hits: metrics::counter!("warden_cache_hits_total"),
            cache_misses: metrics::counter!("warden_cache_misses_total"),
            cache_evictions: metrics::counter!("warden_cache_evictions_total"),
            cache_uncacheable: metrics::counter!("warden_cache_uncacheable_total"),
            reloads_ok: metrics::counter!("warden_reloads_total", "result" => "ok"),
            reloads_failed: metrics::counter!("warden_reloads_total", "result" => "error"),
            snapshot_revision: metrics::gauge!("warden_snapshot_revision"),
            snapshot_loaded: metrics::gauge!("warden_snapshot_loaded_timestamp_seconds"),
            snapshot_age: metrics::gauge!("warden_snapshot_age_seconds"),
            shed: metrics::counter!("warden_shed_total"),
            invalid: metrics::counter!("warden_invalid_requests_total"),
            context_keys_dropped: crate::keys::GLOBAL_KEYS
                .iter()
                .map(|k| k.name)
                .chain(["unregistered", "web_identity"])
                .map(|key| {
                    let c = metrics::counter!("warden_context_keys_dropped_total", "key" => key);
                    (key, c)
                })
                .collect(),
            check_dry_run: metrics::counter!("warden_check_dry_run_passed_total"),
            in_flight: metrics::gauge!("warden_requests_in_flight"),
            log_written: metrics::counter!("warden_decision_log_written_total"),
            log_dropped: metrics::counter!("warden_decision_log_dropped_total"),
        }
    }

    /// Records how long an RPC took and how it ended.
    pub fn rpc(&self, rpc: Face, result: RpcResult, elapsed: Duration) {
        let row = match rpc {
            Face::Authorize => &self.rpc[0],
            Face::BatchAuthorize => &self.rpc[1],
            Face::Check => &self.rpc[2],
            Face::Offline | Face::Admin => return,
        };
        if let Some(h) = row.get(result_index(result)) {
            h.record(elapsed.as_secs_f64());
        }
    }

    /// Counts a Check request denied before evaluation; a reason the registry does not
    /// hold is counted as `other`.
    pub fn check_refused(&self, reason: &str) {
        let found = self.check_refusals.iter().find(|(r, _)| *r == reason);
        let other = || self.check_refusals.iter().find(|(r, _)| *r == "other");
        if let Some((_, c)) = found.or_else(other) {
            c.increment(1);
        }
    }

    /// Counts a caller's value for a key the server owns (lowercase), dropped.
    /// Counts a caller's value dropped for an OIDC provider's token key (`HOST:sub`), under
    /// the label `web_identity`.
    pub fn web_identity_key_dropped(&self) {
        if let Some((_, c)) = self
            .context_keys_dropped
            .iter()
            .find(|(k, _)| *k == "web_identity")
        {
            c.increment(1);
        }
    }

    pub fn context_key_dropped(&self, lower_key: &str) {
        let label = crate::keys::label(lower_key);
        if let Some((_, c)) = self.context_keys_dropped.iter().find(|(k, _)| *k == label) {
            c.increment(1);
        }
    }

    /// Counts one decision by its reason.
    pub fn decision(&self, face: Face, reason: Reason) {
        let at = face as usize * <Reason as strum::EnumCount>::COUNT + reason as usize;
        if let Some(c) = self.decisions.get(at) {
            c.increment(1);
        }
    }
}

// === impl Connections ===

/// The connection metrics of both listening ports (kept by `server::conn`).
pub struct Connections {
    pub grpc: PortMetrics,
    pub admin: PortMetrics,
    /// The STS listener (the AWS query API and the container credentials endpoint).
    pub sts: PortMetrics,
}

/// The connection metrics of one port; every series carries `port="grpc"` or `"admin"`.
#[derive(Clone)]
pub struct PortMetrics {
    /// `warden_connections_open`: connections being served.
    pub open: Gauge,
    /// `warden_connections_refused_total`: connections closed at once, the port being at
    /// its connection limit.
    pub refused: Counter,
    /// `warden_connections_idle_closed_total`: connections closed for idling.
    pub idle_closed: Counter,
    /// `warden_connections_accept_errors_total`: failed accepts, such as descriptors
    /// running out.
    pub accept_errors: Counter,
}

impl Connections {
    /// Registers the connection metrics with the recorder in scope.
    fn register() -> Connections {
        use metrics::{describe_counter, describe_gauge};
        describe_gauge!(
            "warden_connections_open",
            "Connections being served, by port (`grpc`, `admin`, `sts`)"
        );
        describe_counter!(
            "warden_connections_refused_total",
            "Connections closed as soon as accepted because the port was at its connection limit"
        );
        describe_counter!(
            "warden_connections_idle_closed_total",
            "Connections closed for idling: on `grpc`, no request for the idle timeout; on \
             `admin`, no whole request head within the header-read timeout"
        );
        describe_counter!(
            "warden_connections_accept_errors_total",
            "Failed accepts (such as the process running out of descriptors), by port"
        );
        Connections {
            grpc: PortMetrics::register("grpc"),
            admin: PortMetrics::register("admin"),
            sts: PortMetrics::register("sts"),
        }
    }
}

impl PortMetrics {
    fn register(port: &'static str) -> PortMetrics {
        PortMetrics {
            open: metrics::gauge!("warden_connections_open", "port" => port),
            refused: metrics::counter!("warden_connections_refused_total", "port" => port),
            idle_closed: metrics::counter!("warden_connections_idle_closed_total", "port" => port),
            accept_errors: metrics::counter!(
                "warden_connections_accept_errors_total",
                "port" => port
            ),
        }
    }

    /// Handles that record nothing, for tests of the connection machinery.
    pub fn noop() -> PortMetrics {
        PortMetrics {
            open: Gauge::noop(),
            refused: Counter::noop(),
            idle_closed: Counter::noop(),
            accept_errors: Counter::noop(),
        }
    }
}

// === tracing ===

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the process-wide tracing subscriber writing to standard error. `filter` is
/// an `EnvFilter` directive such as `info` or `warden=debug`; `RUST_LOG` overrides it.
pub fn init_tracing(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    // The file watcher logs at info each watch of a deleted directory it cannot remove
    // (one per subdirectory): noise unless asked for by name.
    let quiet_watcher = |f: &str| {
        if f.contains("notify") {
            f.to_owned()
        } else {
            format!("{f},notify=warn")
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(quiet_watcher(filter)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialisation (tests running several servers) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}

// === impl DecisionLog ===

/// Where decision records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSink {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for LogSink {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<LogSink, Self::Err> {
        Ok(match s {
            "-" | "stdout" => LogSink::Stdout,
            path => LogSink::File(PathBuf::from(path)),
        })
    }
}

/// Bytes of context keys and values one record keeps, at most: a request with more is
/// logged without its context and marked `context_too_large` (replay reports it as not
/// replayable), so a record stays small whatever the service's limits allow.
pub const RECORD_CONTEXT_BYTES: usize = 16 << 10;

/// One line of the decision log.
///
/// Besides the decision, a record keeps what a replay needs to decide the same request
/// again (`warden replay`): the time the decision used (`ts_ms`), the context the item was
/// decided with as the service screened it (`context`: keys the server dropped are not in
/// it), and a session caller's facts (`session`). What cannot be replayed exactly is named
/// in `not_replayable`. Lines written before these fields existed have none of them.
#[derive(Debug, Serialize)]
pub struct DecisionRecord {
    /// Unix time in milliseconds: the time the decision used (its time keys, a session's
    /// MFA age).
    pub ts_ms: u64,
    /// The face the request came through (`Authorize`, `Check`, ...).
    pub face: &'static str,
    pub decision_id: String,
    pub revision: u64,
    pub principal: String,
    /// How the principal was established (`asserted`, `session`).
    pub caller: &'static str,
    pub action: String,
    pub resource: String,
    pub decision: &'static str,
    pub reason: &'static str,
    pub statements: Vec<String>,
    pub cached: bool,
    /// The item's screened context (its own keys over the request's shared ones), sorted
    /// by lowercase key; `None` when not recorded (see `not_replayable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<RecordedContext>,
    /// A session caller's facts; `None` for any other caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<RecordedSession>,
    /// Why a replay cannot decide this record as it was decided, as a stable code
    /// ([`NotReplayable`]); `None` when it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_replayable: Option<&'static str>,
}

/// Why a logged decision cannot be replayed exactly: stable codes, shared by the log's
/// writer and `warden replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NotReplayable {
    /// A line written before records kept their context.
    NoContext,
    /// The context was larger than [`RECORD_CONTEXT_BYTES`] and was not recorded.
    ContextTooLarge,
    /// The session carried an inline session policy, which the log does not keep.
    InlineSessionPolicy,
    /// An OIDC web-identity session: its token's claims are not logged.
    WebIdentitySession,
    /// Denied before the engine (the Check face: no route, no principal, a token refused).
    RefusedBeforeEvaluation,
    /// Credentials that were never verified.
    UnverifiedCaller,
}

impl NotReplayable {
    pub const ALL: [NotReplayable; 6] = [
        NotReplayable::NoContext,
        NotReplayable::ContextTooLarge,
        NotReplayable::InlineSessionPolicy,
        NotReplayable::WebIdentitySession,
        NotReplayable::RefusedBeforeEvaluation,
        NotReplayable::UnverifiedCaller,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotReplayable::NoContext => "no_context",
            NotReplayable::ContextTooLarge => "context_too_large",
            NotReplayable::InlineSessionPolicy => "inline_session_policy",
            NotReplayable::WebIdentitySession => "web_identity_session",
            NotReplayable::RefusedBeforeEvaluation => "refused_before_evaluation",
            NotReplayable::UnverifiedCaller => "unverified_caller",
        }
    }

    /// What it means, for people.
    pub fn describe(self) -> &'static str {
        match self {
            NotReplayable::NoContext => "no context recorded",
            NotReplayable::ContextTooLarge => "the context was too large to record",
            NotReplayable::InlineSessionPolicy => {
                "the session's inline session policy is not recorded"
            }
            NotReplayable::WebIdentitySession => {
                "a web-identity session's token claims are not recorded"
            }
            NotReplayable::RefusedBeforeEvaluation => "refused before evaluation",
            NotReplayable::UnverifiedCaller => "the caller's credentials were not verified",
        }
    }

    /// The code read back from a log line.
    pub fn from_code(code: &str) -> Option<NotReplayable> {
        NotReplayable::ALL.into_iter().find(|n| n.as_str() == code)
    }
}

/// A record's copy of the context an item was decided with: (lowercase key, value),
/// sorted by key, written as a JSON object of strings and lists of strings.
#[derive(Debug, Clone, Default)]
pub struct RecordedContext(pub Vec<(SmolStr, ContextValue)>);

impl RecordedContext {
    /// A copy of `entries` (lowercase keys, each once), sorted by key, or `None` when
    /// their keys and values hold more than `budget` bytes (counted before each copy, so
    /// an oversized context is never copied whole).
    pub fn copy<'a>(
        entries: impl Iterator<Item = (&'a str, &'a ContextValue)>,
        budget: usize,
    ) -> Option<RecordedContext> {
        let mut left = budget;
        let mut copied = Vec::new();
        for (key, value) in entries {
            let size = key.len() + value.values().iter().map(String::len).sum::<usize>();
            left = left.checked_sub(size)?;
            copied.push((SmolStr::new(key), value.clone()));
        }
        if !copied.is_sorted_by(|a, b| a.0 <= b.0) {
            copied.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        Some(RecordedContext(copied))
    }

    /// The context as the engine reads it.
    pub fn to_context(&self) -> crate::context::Context {
        let mut context = crate::context::Context::new();
        for (key, value) in &self.0 {
            context.insert(key, value.clone());
        }
        context
    }
}

impl Serialize for RecordedContext {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            match value {
                ContextValue::Single(v) => map.serialize_entry(key.as_str(), v)?,
                ContextValue::Multi(vs) => map.serialize_entry(key.as_str(), vs)?,
            }
        }
        map.end()
    }
}

/// A session caller's facts that its decisions read (tags, MFA, issue time, source
/// identity, managed session policy ARNs), written when the record is.
#[derive(Debug, Clone)]
pub struct RecordedSession(pub Arc<crate::caller::Session>);

/// Milliseconds since the epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Serialize for RecordedSession {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let session = &*self.0;
        let mut out = s.serialize_struct("Session", 5)?;
        out.serialize_field("issued_at_ms", &unix_ms(session.issued_at))?;
        if let Some(at) = session.mfa_at {
            out.serialize_field("mfa_at_ms", &unix_ms(at))?;
        }
        if let Some(id) = &session.source_identity {
            out.serialize_field("source_identity", id)?;
        }
        if !session.tags.is_empty() {
            out.serialize_field("tags", &session.tags)?;
        }
        if !session.policy_arns.is_empty() {
            out.serialize_field("policy_arns", &session.policy_arns)?;
        }
        out.end()
    }
}

impl DecisionRecord {
    /// A record of a decision made at the system's time, without its context; see
    /// [`DecisionRecord::at`] and [`DecisionRecord::with_context`].
    pub fn new(
        face: Face,
        decision_id: &str,
        revision: u64,
        caller: &crate::caller::Caller,
        (action, resource): (&str, &str),
        outcome: &Outcome,
        cached: bool,
    ) -> DecisionRecord {
        use crate::caller::Caller;
        let (session, not_replayable) = match caller {
            Caller::Session(s) => {
                let why = if s.web_identity.is_some() {
                    Some(NotReplayable::WebIdentitySession)
                } else if s.inline_policy.is_some() {
                    Some(NotReplayable::InlineSessionPolicy)
                } else {
                    None
                };
                (Some(RecordedSession(s.clone())), why)
            }
            Caller::Presented(_) => (None, Some(NotReplayable::UnverifiedCaller)),
            Caller::Asserted(_) | Caller::AccessKey { .. } => (None, None),
        };
        DecisionRecord {
            ts_ms: unix_ms(SystemTime::now()),
            face: face.as_str(),
            decision_id: decision_id.to_owned(),
            revision,
            principal: caller.arn().to_owned(),
            caller: caller.how(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            decision: outcome.decision.as_str(),
            reason: outcome.reason.as_str(),
            statements: outcome.statements.iter().map(ToString::to_string).collect(),
            cached,
            context: None,
            session,
            not_replayable: not_replayable.map(NotReplayable::as_str),
        }
    }

    /// The same record, decided at `now` (the service's clock, which its time keys read).
    pub fn at(mut self, now: SystemTime) -> DecisionRecord {
        self.ts_ms = unix_ms(now);
        self
    }

    /// The same record with the context its item was decided with (`None`: larger than
    /// [`RECORD_CONTEXT_BYTES`], marked `context_too_large`).
    pub fn with_context(mut self, context: Option<RecordedContext>) -> DecisionRecord {
        match context {
            Some(context) => self.context = Some(context),
            None => {
                self.not_replayable = self
                    .not_replayable
                    .or(Some(NotReplayable::ContextTooLarge.as_str()));
            }
        }
        self
    }

    /// The same record, marked as not replayable for `why`.
    pub fn not_replayable(mut self, why: NotReplayable) -> DecisionRecord {
        self.not_replayable = Some(why.as_str());
        self
    }
}

/// The sending half of the decision log: `record` never waits.
#[derive(Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<DecisionRecord>,
    written: Counter,
    dropped: Counter,
}

impl DecisionLog {
    /// Opens the sink and starts the writer task; `capacity` bounds the queue.
    pub fn start(
        sink: &LogSink,
        capacity: usize,
        metrics: &Metrics,
    ) -> std::io::Result<DecisionLog> {
        let out: Box<dyn Write + Send> = match sink {
            LogSink::Stdout => Box::new(std::io::stdout()),
            LogSink::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        DecisionLog::start_with(out, capacity, metrics)
    }

    fn start_with(
        out: Box<dyn Write + Send>,
        capacity: usize,
        metrics: &Metrics,
    ) -> std::io::Result<DecisionLog> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        // The sink is blocking I/O: it gets a thread of its own rather than a runtime worker.
        std::thread::Builder::new()
            .name("warden-decision-log".to_owned())
            .spawn(move || write_records(rx, out))?;
        Ok(DecisionLog {
            tx,
            written: metrics.log_written.clone(),
            dropped: metrics.log_dropped.clone(),
        })
    }

    /// Queues a record, or drops and counts it when the queue is full.
    pub fn record(&self, record: DecisionRecord) {
        match self.tx.try_send(record) {
            Ok(()) => self.written.increment(1),
            Err(_) => self.dropped.increment(1),
        }
    }
}

fn write_records(mut rx: mpsc::Receiver<DecisionRecord>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    while let Some(record) = rx.blocking_recv() {
        let ok = serde_json::to_writer(&mut out, &record).is_ok() && out.write_all(b"\n").is_ok();
        // Flush when the queue is momentarily empty, so records appear promptly but a burst
        // is written in one go.
        if !ok || (rx.is_empty() && out.flush().is_err()) {
            tracing::warn!("the decision log sink failed; records are being lost");
        }
    }
    let _ = out.flush();
}

/// Shared handle to the telemetry of one server.
pub type SharedTelemetry = Arc<Telemetry>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_counted_under_its_own_labels() {
        let t = Telemetry::new();
        for face in Face::ALL {
            for r in Reason::all() {
                t.metrics.decision(face, r);
            }
        }
        let text = t.render();
        for face in Face::ALL {
            for r in Reason::all() {
                let line = format!(
                    r#"warden_decisions_total{{face="{}",decision="{}",reason="{}"}} 1"#,
                    face.as_str(),
                    r.decision(),
                    r
                );
                assert!(text.contains(&line), "{line} in\n{text}");
            }
        }
        assert_eq!(
            t.metrics.decisions.len(),
            Face::ALL.len() * <Reason as strum::EnumCount>::COUNT
        );
    }

    /// A sink that takes nothing until it is let go.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_decision_log_drops_and_counts_instead_of_blocking() {
        let t = Telemetry::new();
        let (release, stuck) = std::sync::mpsc::channel();
        let log = DecisionLog::start_with(Box::new(Stuck(stuck)), 2, &t.metrics).unwrap();
        let outcome = Outcome::unknown_principal();
        for i in 0..50 {
            log.record(DecisionRecord::new(
                Face::Authorize,
                &format!("{i}"),
                1,
                &crate::caller::Caller::Asserted("p".into()),
                ("a", "r"),
                &outcome,
                false,
            ));
        }
        let text = t.render();
        let count = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap()
        };
        let (written, dropped) = (
            count("warden_decision_log_written_total"),
            count("warden_decision_log_dropped_total"),
        );
        assert_eq!(written + dropped, 50);
        // The writer holds at most one record and the queue two.
        assert!(written <= 3, "{written} written");
        drop(release);
    }

    #[test]
    fn a_record_keeps_a_context_within_its_budget_and_marks_a_larger_one() {
        let big = ContextValue::Single("v".repeat(RECORD_CONTEXT_BYTES / 2));
        let keys = ["orders:a", "orders:b", "orders:c"];
        let entries = |n: usize| keys.iter().take(n).map(|k| (*k, &big));
        let record = |context| {
            DecisionRecord::new(
                Face::Authorize,
                "id",
                1,
                &crate::caller::Caller::Asserted("p".into()),
                ("a", "r"),
                &Outcome::unknown_principal(),
                false,
            )
            .at(UNIX_EPOCH + Duration::from_millis(1_234))
            .with_context(context)
        };
        let kept = record(RecordedContext::copy(entries(1), RECORD_CONTEXT_BYTES));
        let line = serde_json::to_string(&kept).unwrap();
        assert!(line.starts_with(r#"{"ts_ms":1234,"#), "{line}");
        assert!(line.contains(r#""context":{"orders:a":"vvv"#), "{line}");
        assert!(!line.contains("not_replayable"), "{line}");
        // Two halves and a key: over the budget, found before the second value is copied.
        assert!(RecordedContext::copy(entries(3), RECORD_CONTEXT_BYTES).is_none());
        let marked = record(RecordedContext::copy(entries(3), RECORD_CONTEXT_BYTES));
        let line = serde_json::to_string(&marked).unwrap();
        assert!(!line.contains(r#""context""#), "{line}");
        assert!(
            line.ends_with(r#""not_replayable":"context_too_large"}"#),
            "{line}"
        );
    }

    #[test]
    fn metrics_render_with_labels() {
        let t = Telemetry::new();
        t.metrics.decision(Face::Authorize, Reason::ScpNoAllow);
        t.metrics.rpc(
            Face::Authorize,
            RpcResult::Decided(Decision::Allow),
            Duration::from_micros(30),
        );
        t.run_upkeep();
        let text = t.render();
        assert!(
            text.contains(
                r#"warden_decisions_total{face="Authorize",decision="ImplicitDeny",reason="scp_no_allow"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"warden_rpc_duration_seconds_bucket{rpc="Authorize",decision="Allow",le="0.00005"} 1"#
            ),
            "{text}"
        );
    }
}
