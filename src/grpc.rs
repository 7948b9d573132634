//! The gRPC faces: `warden.v1.Authorizer` over tonic. The only place that knows protobuf:
//! requests are converted to [`service::Ask`] here, decided by [`Service`], and converted
//! back. Conversions destructure every protobuf field, so a new field breaks the build
//! until it is handled. One function maps request errors to `tonic::Status`.

pub mod client;

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use crate::context::{Context, ContextValue};
use crate::eval::{
    Decision, Explanation, LayerExplanation, LayerResult, Matched, Mismatch, Outcome,
    StatementExplanation,
};
use crate::policy::Effect;
use crate::service::{Ask, BATCH_MAX, Decided, RequestError, Service};
use crate::telemetry::{Rpc, RpcResult};

/// Code generated from `proto/warden/v1/authorizer.proto` at build time.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("warden.v1");

    /// The encoded descriptors of the warden API, for the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/warden_descriptor.bin"));
}

pub use pb::authorizer_server::AuthorizerServer;

/// Maps a request error to its status: the one place this happens.
pub fn status(e: &RequestError) -> Status {
    match e {
        RequestError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        RequestError::NoSnapshot => Status::unavailable(e.to_string()),
        RequestError::RevisionBehind { .. } => Status::failed_precondition(e.to_string()),
        RequestError::Overloaded { .. } => Status::resource_exhausted(e.to_string()),
        RequestError::DeadlineExceeded { .. } => Status::deadline_exceeded(e.to_string()),
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
        rpc: Rpc,
        started: Instant,
        result: Result<(T, Decision), RequestError>,
    ) -> Result<Response<T>, Status> {
        let metrics = &self.service.telemetry().metrics;
        match result {
            Ok((body, decision)) => {
                metrics.rpc(rpc, RpcResult::Decided(decision), started.elapsed());
                Ok(Response::new(body))
            }
            Err(e) => {
                metrics.rpc(rpc, RpcResult::Error, started.elapsed());
                if matches!(e, RequestError::Invalid { .. }) {
                    metrics.invalid.increment(1);
                }
                Err(status(&e))
            }
        }
    }

    async fn authorize_inner(
        &self,
        req: pb::AuthorizeRequest,
    ) -> Result<(pb::AuthorizeResponse, Decision), RequestError> {
        let _admitted = self.service.admit()?;
        let pb::AuthorizeRequest {
            principal,
            action,
            resource,
            context,
            explain,
            min_revision,
        } = req;
        let context = context_from_pb("context", context)?;
        let ask = Ask {
            principal: &principal,
            action: &action,
            resource: &resource,
            context: &context,
            explain,
        };
        if min_revision > 0 {
            // Refuse a malformed request before it waits for a revision.
            self.service.validate("", &ask)?;
        }
        let snapshot = self.service.snapshot(min_revision).await?;
        let decided = self.service.decide("", &snapshot, &ask)?;
        let decision = decided.outcome.decision;
        Ok((response(decided, snapshot.revision()), decision))
    }

    async fn batch_inner(
        &self,
        req: pb::BatchAuthorizeRequest,
    ) -> Result<(pb::BatchAuthorizeResponse, Decision), RequestError> {
        let _admitted = self.service.admit()?;
        let pb::BatchAuthorizeRequest {
            principal,
            context,
            items,
            explain,
            min_revision,
        } = req;
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
        let shared = context_from_pb("context", context)?;
        let mut asks = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let pb::BatchItem {
                action,
                resource,
                context,
            } = item;
            let own = context_from_pb(&format!("items[{i}].context"), context)?;
            let mut merged = shared.clone();
            for (k, v) in own.iter() {
                merged.insert(k, v.clone());
            }
            asks.push((action, resource, merged));
        }
        for (i, (action, resource, context)) in asks.iter().enumerate() {
            let ask = Ask {
                principal: &principal,
                action,
                resource,
                context,
                explain,
            };
            self.service.validate(&format!("items[{i}]."), &ask)?;
        }
        // INVARIANT (one snapshot per batch): every item is decided at the same revision.
        let snapshot = self.service.snapshot(min_revision).await?;
        let revision = snapshot.revision();
        let mut overall = Decision::Allow;
        let mut results = Vec::with_capacity(asks.len());
        for (i, (action, resource, context)) in asks.iter().enumerate() {
            let ask = Ask {
                principal: &principal,
                action,
                resource,
                context,
                explain,
            };
            let decided = self
                .service
                .decide(&format!("items[{i}]."), &snapshot, &ask)?;
            overall = strongest(overall, decided.outcome.decision);
            results.push(response(decided, revision));
        }
        Ok((pb::BatchAuthorizeResponse { results, revision }, overall))
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
impl pb::authorizer_server::Authorizer for Authorizer {
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        let started = Instant::now();
        let result = self.authorize_inner(request.into_inner()).await;
        self.finish(Rpc::Authorize, started, result)
    }

    async fn batch_authorize(
        &self,
        request: Request<pb::BatchAuthorizeRequest>,
    ) -> Result<Response<pb::BatchAuthorizeResponse>, Status> {
        let started = Instant::now();
        let result = self.batch_inner(request.into_inner()).await;
        self.finish(Rpc::BatchAuthorize, started, result)
    }
}

// === conversions ===

/// Reads a protobuf context map. Keys are case-insensitive, so two spellings of one key
/// are refused rather than one silently winning.
pub fn context_from_pb(
    field: &str,
    map: std::collections::BTreeMap<String, pb::ContextValue>,
) -> Result<Context, RequestError> {
    use pb::context_value::Kind;
    let mut context = Context::new();
    for (key, value) in map {
        let pb::ContextValue { kind } = value;
        let value = match kind {
            Some(Kind::String(s)) => ContextValue::Single(s),
            Some(Kind::List(pb::StringList { values })) => ContextValue::Multi(values),
            None => {
                return Err(RequestError::invalid(
                    field,
                    format!("key `{key}` has no value (set `string` or `list`)"),
                ));
            }
        };
        if context.get(&key.to_ascii_lowercase()).is_some() {
            return Err(RequestError::invalid(
                field,
                format!("key `{key}` is given twice (keys are case-insensitive)"),
            ));
        }
        context.insert(&key, value);
    }
    Ok(context)
}

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

fn response(decided: Decided, revision: u64) -> pb::AuthorizeResponse {
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
        policy,
        index,
        sid,
        effect,
    } = m;
    pb::Statement {
        kind: kind.as_str().to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use pb::context_value::Kind;

    fn value(s: &str) -> pb::ContextValue {
        pb::ContextValue {
            kind: Some(Kind::String(s.into())),
        }
    }

    #[test]
    fn a_context_key_given_twice_is_refused() {
        let mut map = std::collections::BTreeMap::new();
        map.insert("aws:SourceVpc".to_owned(), value("a"));
        map.insert("AWS:sourcevpc".to_owned(), value("b"));
        let e = context_from_pb("context", map).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn a_context_value_without_kind_is_refused() {
        let mut map = std::collections::BTreeMap::new();
        map.insert("k".to_owned(), pb::ContextValue { kind: None });
        let e = context_from_pb("context", map).unwrap_err();
        assert_eq!(
            e.to_string(),
            "context: key `k` has no value (set `string` or `list`)"
        );
    }

    #[test]
    fn contexts_round_trip() {
        let ctx = crate::context::Context::from_pairs(&[
            "aws:TagKeys=a".into(),
            "aws:tagkeys=b".into(),
            "s3:prefix=home/".into(),
        ])
        .unwrap();
        assert_eq!(context_from_pb("c", context_to_pb(&ctx)).unwrap(), ctx);
    }

    #[test]
    fn the_batch_decision_is_the_strongest() {
        use Decision::*;
        assert_eq!(strongest(Allow, Allow), Allow);
        assert_eq!(strongest(Allow, ImplicitDeny), ImplicitDeny);
        assert_eq!(strongest(ExplicitDeny, ImplicitDeny), ExplicitDeny);
    }
}
