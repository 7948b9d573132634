//! The one request path every face shares. A face (gRPC `Authorize` and `BatchAuthorize`,
//! the offline `warden authorize`, later Envoy `Check`) converts its wire format into a
//! [`Request`] — a caller, one or more action/resource items, context, `min_revision`,
//! `explain` — and converts the [`Answer`] or the one [`RequestError`] back. Everything
//! between is here, in this order:
//!
//! 1. admission (the concurrency limit), before the face's request is decoded;
//! 2. bounds: counts and sizes, before anything that grows with them (a face's decoder
//!    checks them while decoding, with the same limits);
//! 3. the serving snapshot at `min_revision`, waiting briefly for a newer one;
//! 4. the decision cache, for the whole request as it came: a request it answers whole
//!    was checked when it was stored, and is answered at once;
//! 5. the caller's context screened: keys the server owns are dropped and counted;
//! 6. validation, once, keeping the parsed values: each action (`service:Action`, no
//!    wildcard), each resource (an ARN in the bundle's partition, or `*`);
//! 7. the actions against the snapshot's catalog;
//! 8. principal resolution, once per request, which parses the principal's ARN (in the
//!    bundle's partition) unless it is a user the snapshot holds;
//! 9. per item: evaluation (stored in the cache unless it reads the time), the decision
//!    log and metrics.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::arn::Arn;
use crate::cache::{CacheCounters, DecisionCache, Identity as CacheIdentity, Lookup};
use crate::caller::{Caller, Presented};
use crate::context::{CallerContext, CallerView, Context};
use crate::eval::{Explanation, Outcome, Reason};
use crate::request::{Action, parse_resource};
use crate::snapshot::{Authorization, Question, Resolved, Snapshot};
use crate::source::Published;
use crate::telemetry::{
    DecisionLog, DecisionRecord, Face, NotReplayable, RECORD_CONTEXT_BYTES, RecordedContext,
    Telemetry,
};

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
    /// Context keys one item sees, at most: a batch item counts the shared keys and its
    /// own (a key in both once).
    pub max_context_entries: usize,
    /// Values in one context list.
    pub max_context_values: usize,
    /// Requests decided at once; more are refused at once (load shedding).
    pub max_concurrency: usize,
    /// How long a request may wait for its `min_revision` before it is answered
    /// FAILED_PRECONDITION. Shorter than the request deadline (the server's, see
    /// `server::Config`), so that the promised status is the one a caller sees.
    pub revision_wait: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_context_entries: 64,
            max_context_values: 64,
            max_concurrency: 1024,
            revision_wait: Duration::from_secs(1),
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
    /// The caller's session has expired.
    #[error("the session `{id}` has expired")]
    SessionExpired { id: String },
    /// The credentials the caller presented do not verify (or this server verifies none):
    /// `code` is AWS's (`InvalidClientTokenId`, `SignatureDoesNotMatch`, `ExpiredToken`,
    /// ...), `message` says what.
    #[error("{code}: {message}")]
    Unauthenticated { code: &'static str, message: String },
    /// A reverse query's cursor was made at a revision the server no longer serves: its
    /// answer cannot be continued (a page is never answered from another revision).
    #[error(
        "the cursor was made at revision {cursor}, and the server now serves revision {serving}: start the query again without a cursor"
    )]
    StaleCursor { cursor: u64, serving: u64 },
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
            RequestError::SessionExpired { .. } => "session_expired",
            RequestError::Unauthenticated { .. } => "unauthenticated",
            RequestError::StaleCursor { .. } => "stale_cursor",
        }
    }
}

/// A whole request, as a face hands it over.
#[derive(Debug, Clone)]
pub struct Request {
    pub caller: Caller,
    /// Context every item shares.
    pub context: Context,
    /// At least one, at most [`BATCH_MAX`].
    pub items: Vec<Item>,
    /// Decide at this snapshot revision or a later one; 0 for any.
    pub min_revision: u64,
    /// Also explain every layer and statement (bypasses the cache).
    pub explain: bool,
    /// How error messages name the fields.
    pub shape: Shape,
    /// The face it came through, for metrics and the decision log.
    pub face: Face,
    /// Decide at this snapshot: a face that read the snapshot to build the request (the
    /// Check face routes and verifies tokens with it) decides at the same one. `None`: the
    /// serving snapshot at `min_revision`.
    pub snapshot: Option<Arc<Snapshot>>,
}

/// How a face names a request's fields in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One item, whose fields sit beside the principal (`action`, `resource`).
    One,
    /// A list of items (`items[3].action`).
    Batch,
}

/// One action on one resource.
#[derive(Debug, Clone)]
pub struct Item {
    pub action: String,
    pub resource: String,
    /// Context for this item only; a key here hides the shared key of the same name.
    pub context: Context,
}

/// The decisions of a request, one per item, in order, all at one revision.
#[derive(Debug, Clone)]
pub struct Answer {
    pub revision: u64,
    /// The content digest of the snapshot's bundle, for the face to report.
    pub digest: Arc<str>,
    pub decisions: Vec<Decided>,
    /// Who the credentials a request presented proved to be; `None` when the request named
    /// its caller. A face reports it (the Check face's upstream principal header).
    pub verified: Option<Caller>,
}

/// One item's answer: the outcome (shared with the cache), its id, and an explanation
/// when asked.
#[derive(Debug, Clone)]
pub struct Decided {
    pub outcome: Arc<Outcome>,
    pub decision_id: String,
    pub explanation: Option<Explanation>,
    pub cached: bool,
}

/// Where the service reads the time: the system clock, or a test's own.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Verifies the credentials a caller presented ([`Caller::Presented`]) against the
/// snapshot that will decide the request; warden's STS ([`crate::sts::Authority`]) is one.
pub trait Authenticator: Send + Sync {
    fn authenticate(
        &self,
        snapshot: &Snapshot,
        presented: &Presented,
        now: SystemTime,
    ) -> Result<Verified, crate::sts::StsError>;
}

/// What presented credentials proved.
#[derive(Debug, Clone)]
pub struct Verified {
    /// A verified caller: never [`Caller::Presented`].
    pub caller: Caller,
    /// For a signed request, the service its signature is scoped to: every action the
    /// request asks about must be that service's, as an AWS service refuses a signature
    /// scoped to another.
    pub scope_service: Option<String>,
}

/// A caller that reached the engine unverified: never expected, refused.
fn unverified() -> RequestError {
    RequestError::Unauthenticated {
        code: "InternalFailure",
        message: "the caller's credentials were not verified".to_owned(),
    }
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
    clock: Arc<dyn Clock>,
    /// Verifies presented credentials; `None`: this server verifies none, and a request
    /// that presents some is refused.
    authenticator: Option<Arc<dyn Authenticator>>,
    /// The shadow bundle, offered a copy of every decided item; `None` without one.
    shadow: Option<crate::shadow::Shadow>,
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

/// A request within its bounds, its contexts screened, its values parsed (the principal is
/// parsed where it is resolved: a known user's ARN needs no parse).
struct Valid<'r> {
    shared: CallerContext,
    items: Vec<ValidItem<'r>>,
}

struct ValidItem<'r> {
    action: Action,
    resource: &'r str,
    resource_arn: Option<Arn<'r>>,
    context: CallerContext,
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
            clock: Arc::new(SystemClock),
            authenticator: None,
            shadow: None,
        }
    }

    /// A service of its own over one snapshot, published at once: for a tool that decides
    /// without a server (`warden authorize`), and for benchmarks.
    pub fn serving(snapshot: Snapshot, config: ServiceConfig) -> Service {
        let published = Arc::new(Published::new());
        let telemetry = Arc::new(Telemetry::new());
        published.publish(snapshot, &telemetry.metrics);
        Service::new(published, telemetry, None, config)
    }

    /// The same service reading the time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Service {
        self.clock = clock;
        self
    }

    /// The same service verifying presented credentials with `authenticator`.
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Service {
        self.authenticator = Some(authenticator);
        self
    }

    /// The same service offering every decided item to `shadow`, off the request path.
    pub fn with_shadow(mut self, shadow: crate::shadow::Shadow) -> Service {
        self.shadow = Some(shadow);
        self
    }

    /// The time as the service reads it.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Admits a request, or refuses it when the concurrency limit is reached. A face that
    /// works before it can build its request (the Check face) admits first, then calls
    /// [`Service::decide_admitted`].
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

    /// Decides a whole request (see the module's steps). `decode` turns the face's wire
    /// format into the request, within the limits it is given; it runs only once the
    /// request is admitted, so refused work costs nothing.
    pub async fn handle(
        &self,
        decode: impl FnOnce(&Limits) -> Result<Request, RequestError>,
    ) -> Result<Answer, RequestError> {
        let result = match self.admit() {
            Ok(admitted) => match decode(&self.limits) {
                Ok(request) => self.decide_admitted(&admitted, request).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(RequestError::Invalid { .. }) = &result {
            self.telemetry.metrics.invalid.increment(1);
        }
        result
    }

    /// Decides a request already admitted (see [`Service::admit`]).
    pub async fn decide_admitted(
        &self,
        _admitted: &Admitted<'_>,
        request: Request,
    ) -> Result<Answer, RequestError> {
        self.handle_inner(request).await
    }

    /// Records a request a face denied before it could ask the engine (the Check face: no
    /// route, no principal, a path or a token refused): the decision log and the face's
    /// metrics see it like any decision. Returns its decision id.
    pub fn refused(
        &self,
        face: Face,
        principal: &Caller,
        asked: (&str, &str),
        revision: u64,
        reason: &'static str,
    ) -> String {
        let decision_id = self.ids.next();
        tracing::debug!(
            revision,
            decision_id,
            face = face.as_str(),
            principal = principal.arn(),
            action = asked.0,
            resource = asked.1,
            reason,
            "refused before evaluation"
        );
        if let Some(log) = &self.log {
            let mut record = DecisionRecord::new(
                face,
                &decision_id,
                revision,
                principal,
                asked,
                &Outcome::unknown_principal(),
                false,
            )
            .at(self.clock.now())
            .not_replayable(NotReplayable::RefusedBeforeEvaluation);
            record.reason = reason;
            log.record(record);
        }
        decision_id
    }

    async fn handle_inner(&self, request: Request) -> Result<Answer, RequestError> {
        let Request {
            caller,
            context,
            mut items,
            min_revision,
            explain,
            shape,
            face,
            snapshot,
        } = request;
        self.check_bounds(&caller, &context, &items, shape)?;
        // INVARIANT (one snapshot per request): every item is decided at one revision.
        let snapshot = match snapshot {
            Some(s) if s.revision() < min_revision => {
                return Err(RequestError::RevisionBehind {
                    wanted: min_revision,
                    serving: s.revision(),
                });
            }
            Some(s) => s,
            None => self.snapshot(min_revision).await?,
        };
        // One time for the whole request: its expiry check and every item's time keys.
        let now = self.clock.now();
        let presented = matches!(caller, Caller::Presented(_));
        let caller = match caller {
            Caller::Presented(presented) => self.verify(&snapshot, &presented, &items, now)?,
            other => other,
        };
        if let Caller::Session(s) = &caller
            && s.expires_at <= now
        {
            return Err(RequestError::SessionExpired { id: s.id.clone() });
        }
        let revision = snapshot.revision();
        let identity = match &caller {
            Caller::Asserted(arn) | Caller::AccessKey { user_arn: arn, .. } => {
                CacheIdentity::Principal(arn)
            }
            Caller::Session(s) => CacheIdentity::Session(&s.id),
            Caller::Presented(_) => return Err(unverified()),
        };
        fn lookup<'a>(
            (revision, identity): (u64, CacheIdentity<'a>),
            item: &'a Item,
            shared: &'a Context,
        ) -> Lookup<'a> {
            Lookup {
                revision,
                identity,
                action: &item.action,
                resource: &item.resource,
                shared,
                own: &item.context,
            }
        }
        // A request the cache answers whole is answered as it came: only a request that
        // passed every check below is ever stored, so a hit needs none of them.
        let mut hits = match self.cache.as_ref().filter(|_| !explain) {
            Some(cache) => {
                let hits: Vec<Option<Arc<Outcome>>> = items
                    .iter()
                    .map(|item| cache.get(&lookup((revision, identity), item, &context)))
                    .collect();
                if hits.iter().all(Option::is_some) {
                    let decisions = items
                        .iter()
                        .zip(hits.into_iter().flatten())
                        .map(|(item, outcome)| {
                            // Only a request its screening left as sent is ever stored, so
                            // the context as sent is the screened one.
                            let seen = Seen::AsSent {
                                own: &item.context,
                                shared: &context,
                            };
                            self.decided(
                                (face, &caller, now),
                                (&item.action, &item.resource, seen),
                                revision,
                                outcome,
                                None,
                                true,
                            )
                        })
                        .collect();
                    return Ok(Answer {
                        revision,
                        digest: snapshot.digest().clone(),
                        decisions,
                        verified: presented.then(|| caller.clone()),
                    });
                }
                Some(hits.into_iter())
            }
            None => None,
        };
        // Each item's own context is taken from it (not copied), then the items are read.
        let own: Vec<CallerContext> = items
            .iter_mut()
            .map(|item| self.screen(&snapshot, std::mem::take(&mut item.context)))
            .collect();
        let valid = self.validate(&snapshot, context, own, &items, shape)?;
        for (i, (item, given)) in valid.items.iter().zip(&items).enumerate() {
            snapshot
                .check_action(&item.action, &given.action)
                .map_err(|m| RequestError::invalid(field(shape, i, "action"), m))?;
        }
        let session = match &caller {
            Caller::Asserted(_) | Caller::AccessKey { .. } => None,
            Caller::Session(s) => Some(&**s),
            Caller::Presented(_) => return Err(unverified()),
        };
        let who = snapshot
            .resolve(caller.arn(), session, now)
            .map_err(|m| RequestError::invalid("principal", m))?;
        let mut decisions = Vec::with_capacity(valid.items.len());
        for (item, given) in valid.items.iter().zip(&items) {
            let hit = hits.as_mut().and_then(Iterator::next).flatten();
            let question = Question {
                action: &item.action,
                resource: item.resource,
                resource_arn: item.resource_arn,
                context: CallerView {
                    own: &item.context,
                    shared: &valid.shared,
                },
            };
            // Keyed by the request as it came, which the screened contexts stand for when
            // screening changed nothing; a request it changed is not cached.
            let key = (valid.shared.is_as_sent() && item.context.is_as_sent()).then(|| Lookup {
                own: item.context.as_context(),
                ..lookup((revision, identity), given, valid.shared.as_context())
            });
            let (outcome, explanation, cached) = match (&who, hit) {
                (_, Some(hit)) => (hit, None, true),
                (None, None) => (Arc::new(Outcome::unknown_principal()), None, false),
                (Some(who), None) => {
                    self.decide(&snapshot, who, &question, key.as_ref(), now, explain)
                }
            };
            decisions.push(self.decided(
                (face, &caller, now),
                (&given.action, &given.resource, Seen::View(question.context)),
                revision,
                outcome,
                explanation,
                cached,
            ));
        }
        Ok(Answer {
            revision,
            digest: snapshot.digest().clone(),
            decisions,
            verified: presented.then(|| caller.clone()),
        })
    }

    /// Verifies presented credentials: the caller they prove, or why not. A signature
    /// scoped to one service answers only for that service's actions.
    fn verify(
        &self,
        snapshot: &Snapshot,
        presented: &Presented,
        items: &[Item],
        now: SystemTime,
    ) -> Result<Caller, RequestError> {
        let Some(authenticator) = &self.authenticator else {
            return Err(RequestError::Unauthenticated {
                code: "InvalidClientTokenId",
                message: "this server verifies no credentials (start it with a key ring, \
                          `--key-ring`); name the principal instead"
                    .to_owned(),
            });
        };
        let verified = authenticator
            .authenticate(snapshot, presented, now)
            .map_err(|e| RequestError::Unauthenticated {
                code: e.code.as_str(),
                message: e.message,
            })?;
        if let Some(service) = &verified.scope_service
            && let Some(item) = items.iter().find(|i| {
                i.action
                    .split_once(':')
                    .is_none_or(|(prefix, _)| !prefix.eq_ignore_ascii_case(service))
            })
        {
            return Err(RequestError::Unauthenticated {
                code: "SignatureDoesNotMatch",
                message: format!(
                    "Credential should be scoped to correct service: the request is signed for `{service}`, \
                     and asks about `{}`",
                    item.action
                ),
            });
        }
        if let Caller::Presented(_) = verified.caller {
            return Err(unverified());
        }
        Ok(verified.caller)
    }

    /// One item's answer, recorded.
    fn decided(
        &self,
        (face, caller, now): (Face, &Caller, SystemTime),
        asked: (&str, &str, Seen<'_>),
        revision: u64,
        outcome: Arc<Outcome>,
        explanation: Option<Explanation>,
        cached: bool,
    ) -> Decided {
        let decision_id = self.ids.next();
        self.record(
            (face, caller, now),
            &decision_id,
            asked,
            revision,
            &outcome,
            cached,
        );
        Decided {
            outcome,
            decision_id,
            explanation,
            cached,
        }
    }

    /// One item the cache did not answer, evaluated (and cached under `key` unless it reads
    /// the time or is explained).
    fn decide<'a>(
        &self,
        snapshot: &'a Snapshot,
        who: &Resolved<'a>,
        question: &Question<'a>,
        key: Option<&Lookup<'_>>,
        now: SystemTime,
        explain: bool,
    ) -> (Arc<Outcome>, Option<Explanation>, bool) {
        if explain {
            // An explanation evaluates every statement; it bypasses the cache both ways.
            let (auth, explanation) = snapshot.decide(who, question, now, true);
            return (Arc::new(auth.outcome), explanation, false);
        }
        let cache = self.cache.as_ref().zip(key);
        let (
            Authorization {
                outcome,
                time_dependent,
            },
            _,
        ) = snapshot.decide(who, question, now, false);
        let outcome = Arc::new(outcome);
        if let Some((cache, key)) = cache {
            // INVARIANT (cache never outlives a condition): a decision that reads the time
            // is never stored; every other entry is keyed by its revision and identity.
            if time_dependent {
                self.telemetry.metrics.cache_uncacheable.increment(1);
            } else if outcome.reason != Reason::InternalError {
                cache.insert(key, outcome.clone());
            }
        }
        (outcome, None, false)
    }

    /// Metrics, logs and the decision log for one decided item.
    fn record(
        &self,
        (face, caller, now): (Face, &Caller, SystemTime),
        decision_id: &str,
        (action, resource, seen): (&str, &str, Seen<'_>),
        revision: u64,
        outcome: &Outcome,
        cached: bool,
    ) {
        self.telemetry.metrics.decision(face, outcome.reason);
        if outcome.reason == Reason::InternalError {
            tracing::error!(
                revision,
                principal = caller.arn(),
                action,
                resource,
                layer = outcome.denied_by.map_or("", |k| k.as_str()),
                "the snapshot is inconsistent: an index entry names no statement; denied"
            );
        }
        tracing::debug!(
            revision,
            decision_id,
            principal = caller.arn(),
            action,
            resource,
            decision = outcome.decision.as_str(),
            reason = outcome.reason.as_str(),
            cached,
            "decided"
        );
        // Copied once for the log and the shadow, and only when one of them is on.
        let context = (self.log.is_some() || self.shadow.is_some()).then(|| seen.copy());
        if let Some(shadow) = &self.shadow {
            shadow.offer(crate::shadow::Asked {
                caller: caller.clone(),
                action: action.to_owned(),
                resource: resource.to_owned(),
                context: context.clone().flatten(),
                now,
                serving: (outcome.decision, outcome.reason),
                revision,
            });
        }
        if let Some(log) = &self.log {
            log.record(
                DecisionRecord::new(
                    face,
                    decision_id,
                    revision,
                    caller,
                    (action, resource),
                    outcome,
                    cached,
                )
                .at(now)
                .with_context(context.flatten()),
            );
        }
    }

    /// The serving snapshot, if any, without waiting.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.published.current()
    }

    /// The serving snapshot, at `min_revision` or later (0: any), waiting up to the
    /// revision wait for a newer one.
    pub async fn snapshot(&self, min_revision: u64) -> Result<Arc<Snapshot>, RequestError> {
        let current = self.published.current().ok_or(RequestError::NoSnapshot)?;
        if current.revision() >= min_revision {
            return Ok(current);
        }
        match self
            .published
            .at_least(min_revision, self.limits.revision_wait)
            .await
        {
            Some(s) => Ok(s),
            None => Err(RequestError::RevisionBehind {
                wanted: min_revision,
                serving: self.published.revision(),
            }),
        }
    }

    /// Counts and sizes, checked before any work that grows with them.
    fn check_bounds(
        &self,
        caller: &Caller,
        shared: &Context,
        items: &[Item],
        shape: Shape,
    ) -> Result<(), RequestError> {
        if items.is_empty() {
            return Err(RequestError::invalid(
                "items",
                "at least one item is required",
            ));
        }
        if items.len() > BATCH_MAX {
            return Err(RequestError::invalid(
                "items",
                format!(
                    "{} items, more than the maximum of {BATCH_MAX}",
                    items.len()
                ),
            ));
        }
        // A field's name is formatted only for the error (`items[3].action`).
        let at = |name: &'static str, i: usize| {
            move |m: String| RequestError::invalid(field(shape, i, name), m)
        };
        // Presented credentials are checked by their verifier, which bounds them.
        if !matches!(caller, Caller::Presented(_)) {
            check_name(caller.arn()).map_err(|m| RequestError::invalid("principal", m))?;
        }
        check_context(&self.limits, shared).map_err(|m| RequestError::invalid("context", m))?;
        for (i, item) in items.iter().enumerate() {
            check_name(&item.action).map_err(at("action", i))?;
            check_name(&item.resource).map_err(at("resource", i))?;
            check_context(&self.limits, &item.context).map_err(at("context", i))?;
        }
        Ok(())
    }

    /// Screens the shared context and parses every item once; `own` holds the items'
    /// contexts, screened. Bounds were checked.
    fn validate<'r>(
        &self,
        snapshot: &Snapshot,
        shared: Context,
        own: Vec<CallerContext>,
        items: &'r [Item],
        shape: Shape,
    ) -> Result<Valid<'r>, RequestError> {
        let shared = self.screen(snapshot, shared);
        let mut valid = Vec::with_capacity(items.len());
        for (i, (item, context)) in items.iter().zip(own).enumerate() {
            let action = Action::parse(&item.action)
                .map_err(|m| RequestError::invalid(field(shape, i, "action"), m))?;
            let resource_arn = parse_resource(&item.resource)
                .map_err(|m| RequestError::invalid(field(shape, i, "resource"), m))?;
            let seen = CallerView {
                own: &context,
                shared: &shared,
            }
            .len();
            if seen > self.limits.max_context_entries {
                return Err(RequestError::invalid(
                    field(shape, i, "context"),
                    format!(
                        "{seen} keys with the shared context, more than the limit of {}",
                        self.limits.max_context_entries
                    ),
                ));
            }
            valid.push(ValidItem {
                action,
                resource: &item.resource,
                resource_arn,
                context,
            });
        }
        Ok(Valid {
            shared,
            items: valid,
        })
    }

    /// A caller's context as `Authorize` takes it: within the limits (keys, values, sizes),
    /// then screened (server-owned keys dropped and counted). For faces that decide
    /// through [`Snapshot::decide`] themselves (reverse queries).
    pub fn screen_caller_context(
        &self,
        snapshot: &Snapshot,
        context: Context,
    ) -> Result<CallerContext, RequestError> {
        check_context(&self.limits, &context).map_err(|m| RequestError::invalid("context", m))?;
        Ok(self.screen(snapshot, context))
    }

    /// Drops (and counts) the keys a caller may not supply: the registry's server-owned
    /// keys, and the token keys of the snapshot's OIDC providers (`HOST:sub`), which only a
    /// verified web-identity session carries.
    fn screen(&self, snapshot: &Snapshot, context: Context) -> CallerContext {
        let metrics = &self.telemetry.metrics;
        CallerContext::screen_with(
            context,
            |key| snapshot.is_web_identity_key(key),
            |key| {
                if snapshot.is_web_identity_key(key) {
                    metrics.web_identity_key_dropped();
                } else {
                    metrics.context_key_dropped(key);
                }
            },
        )
    }
}

/// The context one item was decided with, as the decision log copies it.
#[derive(Debug, Clone, Copy)]
enum Seen<'a> {
    /// Screened: its own keys over the request's shared ones.
    View(CallerView<'a>),
    /// A request the cache answered whole, as sent.
    AsSent {
        own: &'a Context,
        shared: &'a Context,
    },
}

impl Seen<'_> {
    /// A copy for a record, or `None` when it is larger than a record keeps.
    fn copy(self) -> Option<RecordedContext> {
        match self {
            Seen::View(view) => RecordedContext::copy(view.iter(), RECORD_CONTEXT_BYTES),
            Seen::AsSent { own, shared } => RecordedContext::copy(
                own.iter()
                    .chain(shared.iter().filter(|(k, _)| own.get(k).is_none())),
                RECORD_CONTEXT_BYTES,
            ),
        }
    }
}

/// A field's name in error messages: `action`, or `items[3].action` in a batch.
fn field(shape: Shape, i: usize, name: &str) -> String {
    match shape {
        Shape::One => name.to_owned(),
        Shape::Batch => format!("items[{i}].{name}"),
    }
}

/// The bounds of one context: its number of keys, each key's and value's size, each
/// list's length (the faces' decoders check the same while decoding).
fn check_context(limits: &Limits, context: &Context) -> Result<(), String> {
    if context.len() > limits.max_context_entries {
        return Err(format!(
            "{} keys, more than the limit of {}",
            context.len(),
            limits.max_context_entries
        ));
    }
    for (key, value) in context.iter() {
        if key.is_empty() {
            return Err("a key is empty".into());
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(format!("key `{key}` is longer than {MAX_KEY_BYTES} bytes"));
        }
        let values = value.values();
        if values.len() > limits.max_context_values {
            return Err(format!(
                "key `{key}` has {} values, more than the limit of {}",
                values.len(),
                limits.max_context_values
            ));
        }
        if values.iter().any(|v| v.len() > MAX_VALUE_BYTES) {
            return Err(format!(
                "a value of key `{key}` is longer than {MAX_VALUE_BYTES} bytes"
            ));
        }
    }
    Ok(())
}

fn check_name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(format!("is longer than {MAX_NAME_BYTES} bytes"));
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
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        for (slot, word) in id.chunks_exact_mut(16).zip([self.prefix, n]) {
            for (i, digit) in slot.iter_mut().enumerate() {
                let nibble = (word >> ((15 - i) * 4)) & 0xf;
                *digit = HEX.get(nibble as usize).copied().unwrap_or(b'0');
            }
        }
        // Hex digits are ASCII: the conversion cannot fail.
        String::from_utf8(id.to_vec()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
