//! The one request path every face shares (Authorize, BatchAuthorize, and later Envoy
//! Check): admission, validation, the serving snapshot (at a minimum revision), the
//! decision cache, evaluation, the decision log and metrics. Faces convert their wire
//! format to [`Ask`] and back; they decide nothing themselves.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::arn::Arn;
use crate::cache::{CacheCounters, DecisionCache, Lookup};
use crate::context::Context;
use crate::eval::{Explanation, Outcome};
use crate::request::Principal;
use crate::snapshot::{Query, Snapshot};
use crate::source::Published;
use crate::telemetry::{DecisionLog, DecisionRecord, Telemetry};

/// Items in one `BatchAuthorize` call, at most.
pub const BATCH_MAX: usize = 128;
/// Bytes in a principal, action or resource, at most.
pub const MAX_NAME_BYTES: usize = 2048;
/// Bytes in a context key, at most.
pub const MAX_KEY_BYTES: usize = 256;
/// Bytes in one context value, at most.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Bounds on what one request may carry and on the work in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Context keys in one request (a batch item counts the shared keys and its own).
    pub max_context_entries: usize,
    /// Values in one context list.
    pub max_context_values: usize,
    /// Requests decided at once; more are refused at once (load shedding).
    pub max_concurrency: usize,
    /// How long a request may wait for `min_revision`.
    pub revision_wait: Duration,
    /// The deadline of one request. A decision is synchronous and takes microseconds, so
    /// the only wait it bounds is the one for `min_revision`; enforcing it there keeps a
    /// timer off every other request (a caller's own `grpc-timeout` still applies).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_context_entries: 64,
            max_context_values: 64,
            max_concurrency: 1024,
            revision_wait: Duration::from_secs(2),
            request_timeout: Duration::from_secs(1),
        }
    }
}

/// A request that cannot be decided. A deny is not an error: it is an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request is malformed; `field` names where (`items[2].action`, `context`).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no snapshot is loaded yet")]
    NoSnapshot,
    #[error(
        "the serving snapshot is at revision {serving}, older than the requested minimum {wanted}"
    )]
    RevisionBehind { wanted: u64, serving: u64 },
    #[error("overloaded: {limit} requests are already being decided")]
    Overloaded { limit: usize },
    #[error("the request deadline of {deadline:?} passed waiting for revision {wanted}")]
    DeadlineExceeded { deadline: Duration, wanted: u64 },
}

impl RequestError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> RequestError {
        RequestError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A stable code, usable as a metric label.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Invalid { .. } => "invalid",
            RequestError::NoSnapshot => "no_snapshot",
            RequestError::RevisionBehind { .. } => "revision_behind",
            RequestError::Overloaded { .. } => "overloaded",
            RequestError::DeadlineExceeded { .. } => "deadline_exceeded",
        }
    }
}

/// One question, borrowed from the face's request.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub principal: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
    pub explain: bool,
}

/// An answer: the outcome (shared with the cache), its id, and an explanation when asked.
#[derive(Debug, Clone)]
pub struct Decided {
    pub outcome: Arc<Outcome>,
    pub decision_id: String,
    pub explanation: Option<Explanation>,
    pub cached: bool,
}

/// How the service is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Decisions kept in the cache; 0 turns the cache off.
    pub cache_size: usize,
    pub limits: Limits,
}

/// The decision service shared by every face.
pub struct Service {
    published: Arc<Published>,
    /// `None` when the cache is off.
    cache: Option<DecisionCache>,
    telemetry: Arc<Telemetry>,
    /// `None` when decisions are not logged.
    log: Option<DecisionLog>,
    ids: DecisionIds,
    limits: Limits,
    /// Admission: one permit per request being decided, so overload is refused at once
    /// instead of queueing without bound.
    admission: Semaphore,
}

/// A request admitted for decision; dropping it frees the slot.
pub struct Admitted<'a> {
    _permit: SemaphorePermit<'a>,
    service: &'a Service,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.service.telemetry.metrics.in_flight.decrement(1.0);
    }
}

impl Service {
    pub fn new(
        published: Arc<Published>,
        telemetry: Arc<Telemetry>,
        log: Option<DecisionLog>,
        config: ServiceConfig,
    ) -> Service {
        let m = &telemetry.metrics;
        let cache = (config.cache_size > 0).then(|| {
            DecisionCache::new(
                config.cache_size,
                CacheCounters {
                    hits: m.cache_hits.clone(),
                    misses: m.cache_misses.clone(),
                    evictions: m.cache_evictions.clone(),
                },
            )
        });
        Service {
            published,
            cache,
            log,
            ids: DecisionIds::new(),
            limits: config.limits,
            admission: Semaphore::new(config.limits.max_concurrency.max(1)),
            telemetry,
        }
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Admits a request, or refuses it when the concurrency limit is reached.
    pub fn admit(&self) -> Result<Admitted<'_>, RequestError> {
        match self.admission.try_acquire() {
            Ok(permit) => {
                self.telemetry.metrics.in_flight.increment(1.0);
                Ok(Admitted {
                    _permit: permit,
                    service: self,
                })
            }
            Err(_) => {
                self.telemetry.metrics.shed.increment(1);
                Err(RequestError::Overloaded {
                    limit: self.limits.max_concurrency,
                })
            }
        }
    }

    /// The serving snapshot, at `min_revision` or later (0: any), waiting briefly for a
    /// newer one when needed.
    pub async fn snapshot(&self, min_revision: u64) -> Result<Arc<Snapshot>, RequestError> {
        let current = self.published.current().ok_or(RequestError::NoSnapshot)?;
        if current.revision() >= min_revision {
            return Ok(current);
        }
        let Limits {
            revision_wait,
            request_timeout,
            ..
        } = self.limits;
        match self
            .published
            .at_least(min_revision, revision_wait.min(request_timeout))
            .await
        {
            Some(s) => Ok(s),
            None if request_timeout < revision_wait => Err(RequestError::DeadlineExceeded {
                deadline: request_timeout,
                wanted: min_revision,
            }),
            None => Err(RequestError::RevisionBehind {
                wanted: min_revision,
                serving: self.published.revision(),
            }),
        }
    }

    /// Checks what the faces cannot: the shapes of principal, action and resource, and
    /// the size of the context. `at` prefixes field names (`items[3].`).
    pub fn validate(&self, at: &str, ask: &Ask<'_>) -> Result<(), RequestError> {
        let field = |name: &str| format!("{at}{name}");
        check_name(&field("principal"), ask.principal)?;
        if let Err(e) = Principal::from_arn(ask.principal) {
            return Err(RequestError::invalid(field("principal"), e.to_string()));
        }
        check_name(&field("action"), ask.action)?;
        match ask.action.split_once(':') {
            Some((service, name))
                if !service.is_empty()
                    && !name.is_empty()
                    && !name.contains(':')
                    && ask.action.bytes().all(|b| b.is_ascii_graphic()) => {}
            _ => {
                return Err(RequestError::invalid(
                    field("action"),
                    format!("`{}` is not `service:Action`", ask.action),
                ));
            }
        }
        check_name(&field("resource"), ask.resource)?;
        if ask.resource != "*" && Arn::parse(ask.resource).is_none() {
            return Err(RequestError::invalid(
                field("resource"),
                format!(
                    "`{}` is neither an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`) nor `*`",
                    ask.resource
                ),
            ));
        }
        self.check_context(&field("context"), ask.context)
    }

    fn check_context(&self, field: &str, context: &Context) -> Result<(), RequestError> {
        if context.len() > self.limits.max_context_entries {
            return Err(RequestError::invalid(
                field,
                format!(
                    "{} keys, more than the limit of {}",
                    context.len(),
                    self.limits.max_context_entries
                ),
            ));
        }
        for (key, value) in context.iter() {
            if key.is_empty() {
                return Err(RequestError::invalid(field, "a key is empty"));
            }
            if key.len() > MAX_KEY_BYTES {
                return Err(RequestError::invalid(
                    field,
                    format!("key `{key}` is longer than {MAX_KEY_BYTES} bytes"),
                ));
            }
            let values = value.values();
            if values.len() > self.limits.max_context_values {
                return Err(RequestError::invalid(
                    field,
                    format!(
                        "key `{key}` has {} values, more than the limit of {}",
                        values.len(),
                        self.limits.max_context_values
                    ),
                ));
            }
            if values.iter().any(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(RequestError::invalid(
                    field,
                    format!("a value of key `{key}` is longer than {MAX_VALUE_BYTES} bytes"),
                ));
            }
        }
        Ok(())
    }

    /// Decides one request against `snapshot`, validating it (see [`Service::validate`])
    /// unless the cache answers. Synchronous: nothing here waits.
    pub fn decide(
        &self,
        at: &str,
        snapshot: &Snapshot,
        ask: &Ask<'_>,
    ) -> Result<Decided, RequestError> {
        let revision = snapshot.revision();
        let query = Query {
            principal: ask.principal,
            action: ask.action,
            resource: ask.resource,
            context: ask.context,
            now: SystemTime::now(),
        };
        let lookup = Lookup {
            revision,
            principal: ask.principal,
            action: ask.action,
            resource: ask.resource,
            context: ask.context,
        };
        // INVARIANT (a hit was validated): entries are keyed by the exact request, and only
        // a validated request is ever stored, so a hit needs no validation; it costs three
        // times the lookup (benches/cache.rs).
        let hit = if ask.explain {
            None
        } else {
            self.cache.as_ref().and_then(|c| c.get(&lookup))
        };
        if hit.is_none() {
            self.validate(at, ask)?;
        }
        let decision_id = self.ids.next();
        // At debug level, so that a server logging at info pays nothing for it.
        let span = tracing::debug_span!("decide", decision_id = %decision_id);
        let _entered = span.enter();
        let (outcome, explanation, cached) = if let Some(hit) = hit {
            (hit, None, true)
        } else if ask.explain {
            // An explanation evaluates every statement; it bypasses the cache both ways.
            let (auth, explanation) = snapshot.explain(&query);
            (Arc::new(auth.outcome), explanation, false)
        } else {
            let auth = snapshot.authorize(&query);
            let outcome = Arc::new(auth.outcome);
            if let Some(cache) = &self.cache {
                // INVARIANT (cache never outlives a condition): a decision that tests the
                // time is never stored; every other entry is keyed by its revision.
                if auth.time_dependent {
                    self.telemetry.metrics.cache_uncacheable.increment(1);
                } else {
                    cache.insert(&lookup, outcome.clone());
                }
            }
            (outcome, None, false)
        };
        self.telemetry.metrics.decision(outcome.reason);
        tracing::debug!(
            revision,
            principal = ask.principal,
            action = ask.action,
            resource = ask.resource,
            decision = outcome.decision.as_str(),
            reason = outcome.reason.as_str(),
            cached,
            "decided"
        );
        if let Some(log) = &self.log {
            log.record(DecisionRecord::new(
                &decision_id,
                revision,
                (ask.principal, ask.action, ask.resource),
                &outcome,
                cached,
            ));
        }
        Ok(Decided {
            outcome,
            decision_id,
            explanation,
            cached,
        })
    }
}

fn check_name(field: &str, value: &str) -> Result<(), RequestError> {
    if value.is_empty() {
        return Err(RequestError::invalid(field, "is required"));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(RequestError::invalid(
            field,
            format!("is longer than {MAX_NAME_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Decision ids: a random per-process prefix and a counter, unique without coordination.
struct DecisionIds {
    prefix: u64,
    next: AtomicU64,
}

impl DecisionIds {
    fn new() -> DecisionIds {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        DecisionIds {
            // RandomState is seeded from the OS, so two processes get different prefixes.
            prefix: RandomState::new().hash_one((now, std::process::id())),
            next: AtomicU64::new(1),
        }
    }

    /// 32 lowercase hex digits: the prefix, then the counter.
    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(32);
        for word in [self.prefix, n] {
            for shift in (0..16).rev() {
                let digit = ((word >> (shift * 4)) & 0xf) as u32;
                id.push(char::from_digit(digit, 16).unwrap_or('0'));
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContextValue;

    fn service(cache_size: usize) -> Service {
        Service::new(
            Arc::new(Published::new()),
            Arc::new(Telemetry::new()),
            None,
            ServiceConfig {
                cache_size,
                limits: Limits {
                    max_concurrency: 2,
                    ..Limits::default()
                },
            },
        )
    }

    fn check(principal: &str, action: &str, resource: &str, field: Option<&str>) {
        let s = service(0);
        let ctx = Context::new();
        let ask = Ask {
            principal,
            action,
            resource,
            context: &ctx,
            explain: false,
        };
        match (s.validate("", &ask), field) {
            (Ok(()), None) => {}
            (Err(RequestError::Invalid { field: got, .. }), Some(want)) => assert_eq!(got, want),
            (got, want) => panic!("{principal} {action} {resource}: {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn requests_are_validated_field_by_field() {
        let alice = "arn:aws:iam::111122223333:user/alice";
        check(alice, "s3:GetObject", "arn:aws:s3:::b/k", None);
        check(alice, "s3:GetObject", "*", None);
        check("", "s3:GetObject", "*", Some("principal"));
        check("alice", "s3:GetObject", "*", Some("principal"));
        check(alice, "", "*", Some("action"));
        check(alice, "GetObject", "*", Some("action"));
        check(alice, "s3:", "*", Some("action"));
        check(alice, "s3:Get Object", "*", Some("action"));
        check(alice, "s3:GetObject", "", Some("resource"));
        check(alice, "s3:GetObject", "bucket/key", Some("resource"));
        check(alice, "s3:GetObject", &"a".repeat(3000), Some("resource"));
    }

    #[test]
    fn oversized_contexts_are_refused() {
        let s = service(0);
        let mut ctx = Context::new();
        for i in 0..65 {
            ctx.insert(&format!("k{i}"), ContextValue::Single("v".into()));
        }
        assert!(s.check_context("context", &ctx).is_err());
        let mut ctx = Context::new();
        ctx.insert("k", ContextValue::Multi(vec!["v".into(); 65]));
        assert!(s.check_context("context", &ctx).is_err());
        let mut ctx = Context::new();
        ctx.insert("k", ContextValue::Single("v".repeat(MAX_VALUE_BYTES + 1)));
        assert!(s.check_context("context", &ctx).is_err());
    }

    #[test]
    fn admission_sheds_beyond_the_limit() {
        let s = service(0);
        let a = s.admit().unwrap();
        let _b = s.admit().unwrap();
        assert_eq!(s.admit().err(), Some(RequestError::Overloaded { limit: 2 }));
        drop(a);
        assert!(s.admit().is_ok());
    }

    #[tokio::test]
    async fn no_snapshot_is_an_error_not_a_decision() {
        let s = service(0);
        assert_eq!(s.snapshot(0).await.err(), Some(RequestError::NoSnapshot));
    }

    #[test]
    fn decision_ids_are_unique() {
        let ids = DecisionIds::new();
        let a = ids.next();
        assert_ne!(a, ids.next());
        assert_eq!(a, format!("{:016x}{:016x}", ids.prefix, 1));
    }
}
