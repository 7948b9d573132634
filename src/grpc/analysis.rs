//! `warden.v1.Analysis` over tonic: reverse queries ([`crate::reverse`]) against the
//! serving snapshot. Served only when the server is started with `--analysis` (answers
//! disclose who has access); otherwise every call is PERMISSION_DENIED, saying so.
//!
//! Bounded like the other faces: the request message is small (its decoding limit,
//! [`MAX_REQUEST_BYTES`], bounds the context map before it is counted), the context is
//! checked and screened as `Authorize`'s, the call is admitted by the service's
//! concurrency limit, waits for `min_revision` as `Authorize` does, and its page runs on a
//! blocking thread within the page's work budget, under the server's request deadline.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::context::{Context, ContextValue};
use crate::grpc::pb;
use crate::grpc::server::analysis_server;
use crate::reverse::{self, Answer, Item, PageRequest, Query};
use crate::service::{RequestError, Service};

pub use analysis_server::AnalysisServer;

/// The health service name of Analysis.
pub const SERVICE_NAME: &str = "warden.v1.Analysis";

/// Bytes in a request message, at most: a query is a few names and a context.
pub const MAX_REQUEST_BYTES: usize = 64 << 10;

/// The `warden.v1.Analysis` service.
pub struct Analysis {
    service: Arc<Service>,
    /// Whether reverse queries are served (`warden serve --analysis`).
    enabled: bool,
    limits: reverse::Limits,
}

impl Analysis {
    pub fn new(service: Arc<Service>, enabled: bool) -> Analysis {
        Analysis {
            service,
            enabled,
            limits: reverse::Limits::default(),
        }
    }

    pub fn into_server(self, max_message_bytes: usize) -> AnalysisServer<Analysis> {
        AnalysisServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(max_message_bytes.max(16 << 20))
    }

    async fn run(
        &self,
        query: Query,
        context: std::collections::BTreeMap<String, pb::ContextValue>,
        page: Option<pb::Page>,
        min_revision: u64,
    ) -> Result<Response<pb::ReverseResponse>, Status> {
        if !self.enabled {
            return Err(Status::permission_denied(
                "reverse queries disclose who has access and are off on this server: start `warden serve` with `--analysis` to serve them",
            ));
        }
        let _admitted = self.service.admit().map_err(|e| super::status(&e))?;
        let context = context_from_pb(context).map_err(|e| super::status(&e))?;
        let snapshot = self
            .service
            .snapshot(min_revision)
            .await
            .map_err(|e| super::status(&e))?;
        let context = self
            .service
            .screen_caller_context(&snapshot, context)
            .map_err(|e| super::status(&e))?;
        let page = match page {
            Some(pb::Page { size, cursor }) => PageRequest {
                size: Some(size as usize),
                cursor: (!cursor.is_empty()).then_some(cursor),
            },
            None => PageRequest::default(),
        };
        let now = self.service.now();
        let limits = self.limits;
        let answer = tokio::task::spawn_blocking(move || {
            reverse::answer(&snapshot, &query, &context, &page, &limits, now)
        })
        .await
        .map_err(|_| Status::internal("the reverse query's thread stopped"))?
        .map_err(|e| super::status(&e))?;
        Ok(Response::new(answer_to_pb(answer)))
    }
}

#[tonic::async_trait]
impl analysis_server::Analysis for Analysis {
    async fn who_can(
        &self,
        request: Request<pb::WhoCanRequest>,
    ) -> Result<Response<pb::ReverseResponse>, Status> {
        let pb::WhoCanRequest {
            action,
            resource,
            context,
            session_name,
            assume_with_mfa,
            page,
            min_revision,
        } = request.into_inner();
        let session_name = if session_name.is_empty() {
            reverse::DEFAULT_SESSION.to_owned()
        } else {
            session_name
        };
        let query = Query::WhoCan {
            action,
            resource,
            session_name,
            assume_with_mfa,
        };
        self.run(query, context, page, min_revision).await
    }

    async fn what_can(
        &self,
        request: Request<pb::WhatCanRequest>,
    ) -> Result<Response<pb::ReverseResponse>, Status> {
        let pb::WhatCanRequest {
            principal,
            resource,
            context,
            page,
            min_revision,
        } = request.into_inner();
        let query = Query::WhatCan {
            principal,
            resource: (!resource.is_empty()).then_some(resource),
        };
        self.run(query, context, page, min_revision).await
    }

    async fn can_any(
        &self,
        request: Request<pb::CanAnyRequest>,
    ) -> Result<Response<pb::ReverseResponse>, Status> {
        let pb::CanAnyRequest {
            principal,
            resource_type,
            context,
            page,
            min_revision,
        } = request.into_inner();
        let query = Query::CanAny {
            principal,
            resource_type,
        };
        self.run(query, context, page, min_revision).await
    }
}

/// The context of a request; its size was bounded by the message limit, and its counts
/// are checked by the service's screening.
fn context_from_pb(
    map: std::collections::BTreeMap<String, pb::ContextValue>,
) -> Result<Context, RequestError> {
    use pb::context_value::Kind;
    let mut entries = Vec::with_capacity(map.len());
    for (key, value) in map {
        let value = match value.kind {
            Some(Kind::String(s)) => ContextValue::Single(s),
            Some(Kind::List(pb::StringList { values })) => ContextValue::Multi(values),
            None => {
                return Err(RequestError::invalid(
                    "context",
                    format!("the value of `{key}` is empty"),
                ));
            }
        };
        entries.push((key, value));
    }
    Context::from_entries(entries).map_err(|m| RequestError::invalid("context", m))
}

fn because_to_pb(b: reverse::Because) -> pb::Because {
    let reverse::Because {
        effect,
        statement,
        via,
    } = b;
    pb::Because {
        effect: effect.to_owned(),
        statement,
        via,
    }
}

fn answer_to_pb(a: Answer) -> pb::ReverseResponse {
    let Answer {
        revision,
        items,
        complete,
        next_cursor,
        examined,
        decisions,
        undecided,
    } = a;
    pb::ReverseResponse {
        revision,
        items: items.into_iter().map(item_to_pb).collect(),
        complete,
        next_cursor: next_cursor.unwrap_or_default(),
        examined: examined as u64,
        decisions: decisions as u64,
        undecided: undecided
            .into_iter()
            .map(|reverse::Undecided { action, why }| pb::Undecided { action, why })
            .collect(),
    }
}

fn item_to_pb(item: Item) -> pb::ReverseItem {
    use pb::reverse_item::Item as P;
    let item = match item {
        Item::Principal(reverse::PrincipalItem {
            principal,
            kind,
            role,
            reason,
            statements,
            assumable_by,
        }) => P::Principal(pb::PrincipalItem {
            principal,
            kind: kind.to_owned(),
            role: role.unwrap_or_default(),
            reason: reason.to_owned(),
            statements: statements.into_iter().map(because_to_pb).collect(),
            assumable_by: assumable_by
                .into_iter()
                .map(
                    |reverse::AssumePath { principal, through }| pb::AssumePath {
                        principal,
                        through,
                    },
                )
                .collect(),
        }),
        Item::Action(reverse::ActionItem {
            action,
            service,
            access,
            exact,
            reason,
            statements,
            patterns,
            more_patterns,
            narrowed_by,
        }) => P::Action(pb::ActionItem {
            action,
            service,
            access: access.to_owned(),
            exact: exact.to_owned(),
            reason: reason.to_owned(),
            statements: statements.into_iter().map(because_to_pb).collect(),
            patterns: patterns
                .into_iter()
                .map(
                    |reverse::PatternItem {
                         pattern,
                         from,
                         witness,
                         decision,
                         reason,
                     }| pb::PatternItem {
                        pattern,
                        from,
                        witness,
                        decision: decision.to_owned(),
                        reason: reason.to_owned(),
                    },
                )
                .collect(),
            more_patterns,
            narrowed_by,
        }),
        Item::Witness(reverse::WitnessItem {
            action,
            access,
            resource,
            reason,
            statements,
        }) => P::Witness(pb::WitnessItem {
            action,
            access: access.to_owned(),
            resource,
            reason: reason.to_owned(),
            statements: statements.into_iter().map(because_to_pb).collect(),
        }),
    };
    pb::ReverseItem { item: Some(item) }
}
