//! The gRPC faces: `warden.v1.Authorizer` over tonic. The only place that knows protobuf:
//! requests are decoded within the service's limits (`wire`), decided by [`Service`], and
//! converted back. Response conversions destructure every field, so a new field breaks the
//! build until it is handled. One function maps request errors to `tonic::Status`.

pub mod admin;
pub mod analysis;
pub mod check;
pub mod client;
pub mod sts;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::context::{Context, ContextValue};
use crate::eval::{
    Decision, Explanation, LayerExplanation, LayerResult, Matched, Mismatch, Outcome,
    StatementExplanation,
};
use crate::policy::Effect;
use crate::service::{Answer, Decided, RequestError, Service};
use crate::telemetry::{Face, RpcResult};

/// The messages and the client, generated from `proto/warden/v1/authorizer.proto` at build
/// time.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/api/warden.v1.rs"));

    /// The encoded descriptors of the warden API, for the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/warden_descriptor.bin"));
}

/// The server side of the API, generated over the requests' bytes (see [`wire`]).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/server/warden.v1.rs"));
}

pub use server::authorizer_server::AuthorizerServer;
use wire::{AuthorizeBytes, AuthorizeResponseBytes, BatchAuthorizeBytes, put};

/// Maps a request error to its status: the one place this happens.
pub fn status(e: &RequestError) -> Status {
    match e {
        RequestError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        RequestError::NoSnapshot => Status::unavailable(e.to_string()),
        RequestError::RevisionBehind { .. } | RequestError::StaleCursor { .. } => {
            Status::failed_precondition(e.to_string())
        }
        RequestError::Overloaded { .. } => Status::resource_exhausted(e.to_string()),
        RequestError::SessionExpired { .. } | RequestError::Unauthenticated { .. } => {
            Status::unauthenticated(e.to_string())
        }
    }
}

/// The `warden.v1.Authorizer` service.
pub struct Authorizer {
    service: Arc<Service>,
}

impl Authorizer {
    pub fn new(service: Arc<Service>) -> Authorizer {
        Authorizer { service }
    }

    pub fn into_server(self, max_message_bytes: usize) -> AuthorizerServer<Authorizer> {
        AuthorizerServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes.max(4 << 20))
    }

    fn finish<T>(
        &self,
        rpc: Face,
        started: Instant,
        result: Result<(T, Decision, Arc<str>), RequestError>,
    ) -> Result<Response<T>, Status> {
        let metrics = &self.service.telemetry().metrics;
        match result {
            Ok((body, decision, digest)) => {
                metrics.rpc(rpc, RpcResult::Decided(decision), started.elapsed());
                let mut response = Response::new(body);
                if let Ok(value) = MetadataValue::try_from(&*digest) {
                    response.metadata_mut().insert(DIGEST_METADATA, value);
                }
                Ok(response)
            }
            Err(e) => {
                metrics.rpc(rpc, RpcResult::Error, started.elapsed());
                Err(status(&e))
            }
        }
    }
}

/// The batch's decision for metrics: an explicit deny over an implicit one over Allow.
fn strongest(a: Decision, b: Decision) -> Decision {
    match (a, b) {
        (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => Decision::ExplicitDeny,
        (Decision::ImplicitDeny, _) | (_, Decision::ImplicitDeny) => Decision::ImplicitDeny,
        (Decision::Allow, Decision::Allow) => Decision::Allow,
    }
}

#[tonic::async_trait]
impl server::authorizer_server::Authorizer for Authorizer {
    async fn authorize(
        &self,
        request: Request<AuthorizeBytes>,
    ) -> Result<Response<AuthorizeResponseBytes>, Status> {
        let started = Instant::now();
        let bytes = request.into_inner().0;
        let answered = self
            .service
            .handle(|limits| wire::authorize(&bytes, limits))
            .await;
        let result = answered.map(
            |Answer {
                 revision,
                 digest,
                 decisions,
                 ..
             }| {
                let decision = decisions
                    .first()
                    .map_or(Decision::ImplicitDeny, |d| d.outcome.decision);
                let response = decisions
                    .into_iter()
                    .next()
                    .map(|d| AuthorizeResponseBytes(encode_response(d, revision)))
                    .unwrap_or_default();
                (response, decision, digest)
            },
        );
        self.finish(Face::Authorize, started, result)
    }

    async fn batch_authorize(
        &self,
        request: Request<BatchAuthorizeBytes>,
    ) -> Result<Response<pb::BatchAuthorizeResponse>, Status> {
        let started = Instant::now();
        let bytes = request.into_inner().0;
        let answered = self
            .service
            .handle(|limits| wire::batch(&bytes, limits))
            .await;
        let result = answered.map(
            |Answer {
                 revision,
                 digest,
                 decisions,
                 ..
             }| {
                let overall = decisions
                    .iter()
                    .fold(Decision::Allow, |acc, d| strongest(acc, d.outcome.decision));
                let results = decisions
                    .into_iter()
                    .map(|d| response(d, revision))
                    .collect();
                (
                    pb::BatchAuthorizeResponse { results, revision },
                    overall,
                    digest,
                )
            },
        );
        self.finish(Face::BatchAuthorize, started, result)
    }
}

// === conversions ===

/// Writes a context as a protobuf map (the client's direction).
pub fn context_to_pb(context: &Context) -> std::collections::BTreeMap<String, pb::ContextValue> {
    use pb::context_value::Kind;
    context
        .iter()
        .map(|(k, v)| {
            let kind = match v {
                ContextValue::Single(s) => Kind::String(s.clone()),
                ContextValue::Multi(values) => Kind::List(pb::StringList {
                    values: values.clone(),
                }),
            };
            (k.to_owned(), pb::ContextValue { kind: Some(kind) })
        })
        .collect()
}

/// One item's answer as a response.
pub fn response(decided: Decided, revision: u64) -> pb::AuthorizeResponse {
    let Decided {
        outcome,
        decision_id,
        explanation,
        cached: _,
    } = decided;
    let Outcome {
        decision,
        reason,
        denied_by,
        statements,
    } = &*outcome;
    pb::AuthorizeResponse {
        decision: decision_to_pb(*decision) as i32,
        reason: reason.as_str().to_owned(),
        denied_by: denied_by.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        statements: statements.iter().map(statement_to_pb).collect(),
        revision,
        decision_id,
        explanation: explanation.map(explanation_to_pb),
    }
}

/// One item's answer as the bytes of an `AuthorizeResponse`, written from the decision
/// without building the message (an Authorize's answer, on every request): the same bytes
/// as [`response`] encoded by prost, which a test holds them to.
pub fn encode_response(decided: Decided, revision: u64) -> prost::bytes::Bytes {
    let Decided {
        outcome,
        decision_id,
        explanation,
        cached: _,
    } = decided;
    let Outcome {
        decision,
        reason,
        denied_by,
        statements,
    } = &*outcome;
    // Room for the whole answer at once: a statement takes under 128 bytes.
    let mut buf = prost::bytes::BytesMut::with_capacity(128 + 128 * statements.len());
    put::varint(1, decision_to_pb(*decision) as u64, &mut buf);
    put::str(2, reason.as_str(), &mut buf);
    put::str(3, denied_by.map_or("", |k| k.as_str()), &mut buf);
    for m in statements {
        put::message(4, &mut buf, |buf| put_statement(m, buf));
    }
    put::varint(5, revision, &mut buf);
    put::str(6, &decision_id, &mut buf);
    if let Some(e) = explanation {
        prost::encoding::message::encode(7, &explanation_to_pb(e), &mut buf);
    }
    buf.freeze()
}

/// The fields of a `Statement` as [`statement_to_pb`] makes it, in the order prost writes
/// them.
fn put_statement(m: &Matched, buf: &mut prost::bytes::BytesMut) {
    let Matched {
        kind,
        level,
        policy,
        index,
        sid,
        effect,
    } = m;
    let number = |n: usize| u64::from(u32::try_from(n).unwrap_or(u32::MAX));
    put::str(1, kind.as_str(), buf);
    put::str(2, policy, buf);
    put::varint(3, number(*index), buf);
    put::str(4, sid.as_deref().unwrap_or_default(), buf);
    put::varint(5, effect_to_pb(*effect) as u64, buf);
    if let Some(level) = level {
        // `optional`: written when present, even as 0.
        put::present_varint(6, number(*level), buf);
    }
}

pub fn decision_to_pb(d: Decision) -> pb::Decision {
    match d {
        Decision::Allow => pb::Decision::Allow,
        Decision::ExplicitDeny => pb::Decision::ExplicitDeny,
        Decision::ImplicitDeny => pb::Decision::ImplicitDeny,
    }
}

fn effect_to_pb(e: Effect) -> pb::Effect {
    match e {
        Effect::Allow => pb::Effect::Allow,
        Effect::Deny => pb::Effect::Deny,
    }
}

fn statement_to_pb(m: &Matched) -> pb::Statement {
    let Matched {
        kind,
        level,
        policy,
        index,
        sid,
        effect,
    } = m;
    pb::Statement {
        kind: kind.as_str().to_owned(),
        level: level.map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
        policy: policy.to_string(),
        index: u32::try_from(*index).unwrap_or(u32::MAX),
        sid: sid.as_deref().unwrap_or_default().to_owned(),
        effect: effect_to_pb(*effect) as i32,
    }
}

fn explanation_to_pb(e: Explanation) -> pb::Explanation {
    let Explanation { layers } = e;
    pb::Explanation {
        layers: layers.into_iter().map(layer_to_pb).collect(),
    }
}

fn layer_to_pb(l: LayerExplanation) -> pb::LayerExplanation {
    let LayerExplanation {
        kind,
        level,
        result,
        statements,
    } = l;
    let result = match result {
        LayerResult::Allow => pb::LayerResult::LayerAllow,
        LayerResult::Deny => pb::LayerResult::LayerDeny,
        LayerResult::NoMatch => pb::LayerResult::LayerNoMatch,
    };
    pb::LayerExplanation {
        kind: kind.as_str().to_owned(),
        level: level.map(|l| u32::try_from(l).unwrap_or(u32::MAX)),
        result: result as i32,
        statements: statements
            .into_iter()
            .map(statement_explanation_to_pb)
            .collect(),
    }
}

fn statement_explanation_to_pb(s: StatementExplanation) -> pb::StatementExplanation {
    let StatementExplanation {
        policy,
        index,
        sid,
        effect,
        matched,
        mismatch,
    } = s;
    let (mismatch, condition_key) = match mismatch {
        None => (pb::Mismatch::Unspecified, String::new()),
        Some(Mismatch::Action) => (pb::Mismatch::Action, String::new()),
        Some(Mismatch::Resource) => (pb::Mismatch::Resource, String::new()),
        Some(Mismatch::Principal) => (pb::Mismatch::Principal, String::new()),
        Some(Mismatch::Condition { key }) => (pb::Mismatch::Condition, key.into()),
    };
    pb::StatementExplanation {
        policy: policy.to_string(),
        index: u32::try_from(index).unwrap_or(u32::MAX),
        sid: sid.as_deref().unwrap_or_default().to_owned(),
        effect: effect_to_pb(effect) as i32,
        matched,
        mismatch: mismatch as i32,
        condition_key,
    }
}

/// The health service name of the Authorizer, for tonic-health.
pub const SERVICE_NAME: &str = "warden.v1.Authorizer";

/// The response metadata that names the content digest of the bundle a decision was made
/// on ([`crate::digest`]): two sidecars that answer with the same digest decided on the
/// same files.
pub const DIGEST_METADATA: &str = "warden-bundle-digest";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_decision_is_the_strongest() {
        use Decision::*;
        assert_eq!(strongest(Allow, Allow), Allow);
        assert_eq!(strongest(Allow, ImplicitDeny), ImplicitDeny);
        assert_eq!(strongest(ExplicitDeny, ImplicitDeny), ExplicitDeny);
    }

    /// A random decision: every reason and layer, statements with and without a level or
    /// a Sid, indexes past `u32`, sometimes an explanation.
    fn random_decided(rng: &mut oorandom::Rand32) -> Decided {
        use crate::eval::Reason;
        use crate::policy::PolicyKind;
        let pick = |rng: &mut oorandom::Rand32, n: usize| rng.rand_range(0..n as u32) as usize;
        let kinds = PolicyKind::ALL;
        let reasons: Vec<Reason> = Reason::all().collect();
        let decisions = [
            Decision::Allow,
            Decision::ExplicitDeny,
            Decision::ImplicitDeny,
        ];
        let statements = (0..pick(rng, 4))
            .map(|i| Matched {
                kind: kinds[pick(rng, kinds.len())],
                level: [None, Some(0), Some(3), Some(usize::MAX)][pick(rng, 4)],
                policy: format!("arn:aws:iam::1:policy/p{}", rng.rand_u32()).into(),
                index: [0, i, 300, usize::MAX][pick(rng, 4)],
                sid: [None, Some(""), Some("Read")][pick(rng, 3)].map(Arc::from),
                effect: [Effect::Allow, Effect::Deny][pick(rng, 2)],
            })
            .collect();
        let explanation = (pick(rng, 4) == 0).then(|| Explanation {
            layers: vec![LayerExplanation {
                kind: kinds[pick(rng, kinds.len())],
                level: Some(1),
                result: LayerResult::NoMatch,
                statements: Vec::new(),
            }],
        });
        Decided {
            outcome: Arc::new(Outcome {
                decision: decisions[pick(rng, 3)],
                reason: reasons[pick(rng, reasons.len())],
                denied_by: [None, Some(kinds[pick(rng, kinds.len())])][pick(rng, 2)],
                statements,
            }),
            decision_id: ["", "0123456789abcdef0123456789abcdef"][pick(rng, 2)].to_owned(),
            explanation,
            cached: false,
        }
    }

    #[test]
    fn the_written_answer_is_the_bytes_prost_writes_for_the_message() {
        use prost::Message;
        let mut rng = oorandom::Rand32::new(12);
        for _ in 0..2000 {
            let decided = random_decided(&mut rng);
            let revision = [0, 1, 300, u64::MAX][rng.rand_range(0..4) as usize];
            let written = encode_response(decided.clone(), revision);
            let message = response(decided, revision);
            assert_eq!(&written[..], &message.encode_to_vec()[..], "{message:?}");
            assert_eq!(pb::AuthorizeResponse::decode(written).unwrap(), message);
        }
    }
}
