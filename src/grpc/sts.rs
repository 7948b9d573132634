//! `warden.v1.Sts` over tonic: each request converted to the same typed [`Call`] the query
//! API parses, validated by the same rules, performed by the same [`StsHandler`] with the
//! caller's signed request, and its [`CallResult`] converted back. One function maps an
//! [`StsError`] to a status whose message starts with AWS's code.

use std::sync::Arc;
use std::time::SystemTime;

use tonic::{Request, Response, Status};

use crate::grpc::pb;
use crate::grpc::server::sts_server;
use crate::sts::error::{Code, StsError};
use crate::sts::http::{CallContext, Face, RawRequest, StsHandler};
use crate::sts::query::{self, AssumeRole, AssumeRoleWithWebIdentity, Call, GetSessionToken};
use crate::sts::xml::{self, AssumedRoleUser, CallResult, Credentials};

pub use sts_server::StsServer;

/// The health service name of Sts.
pub const SERVICE_NAME: &str = "warden.v1.Sts";

/// The most headers a signed request may carry (hyper's own default for HTTP/1).
const MAX_HEADERS: usize = 100;

/// The `warden.v1.Sts` service.
pub struct Sts {
    handler: Arc<dyn StsHandler>,
    limits: query::Limits,
}

impl Sts {
    /// `limits.max_body_bytes` bounds the signed request's body.
    pub fn new(handler: Arc<dyn StsHandler>, limits: query::Limits) -> Sts {
        Sts { handler, limits }
    }

    pub fn into_server(self, max_message_bytes: usize) -> StsServer<Sts> {
        StsServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes.max(64 << 10))
    }

    async fn perform(
        &self,
        caller: Option<pb::SignedRequest>,
        call: Call,
    ) -> Result<CallResult, Status> {
        let request_id = xml::request_id();
        let signed = caller
            .map(|c| signed_request(c, &self.limits))
            .transpose()
            .map_err(|e| status(&e))?;
        call.validate().map_err(|e| status(&e))?;
        let cx = CallContext {
            request_id: &request_id,
            face: Face::Grpc,
            signed: signed.as_ref(),
            now: SystemTime::now(),
        };
        let action = call.action();
        let result = self.handler.call(cx, call).await.map_err(|e| {
            tracing::debug!(request_id, "sts {action}: {e}");
            status(&e)
        })?;
        if result.action() != action {
            // A handler bug: never answer one call with another's result.
            return Err(status(&StsError::new(
                Code::InternalFailure,
                format!(
                    "`{action}` was answered with a `{}` result",
                    result.action()
                ),
            )));
        }
        Ok(result)
    }
}

/// Maps an STS error to its status: the one place this happens. The message starts with
/// AWS's code, so a client can tell `ExpiredToken` from `InvalidClientTokenId`.
pub fn status(e: &StsError) -> Status {
    let message = e.to_string();
    match e.code {
        Code::ValidationError
        | Code::InvalidParameterValue
        | Code::InvalidAction
        | Code::MalformedPolicyDocument
        | Code::PackedPolicyTooLarge
        | Code::InvalidIdentityToken
        | Code::IdpRejectedClaim => Status::invalid_argument(message),
        Code::ExpiredToken
        | Code::InvalidClientTokenId
        | Code::SignatureDoesNotMatch
        | Code::IncompleteSignature
        | Code::MissingAuthenticationToken
        | Code::RequestExpired => Status::unauthenticated(message),
        Code::AccessDenied | Code::RegionDisabledException => Status::permission_denied(message),
        Code::ServiceUnavailable | Code::IDPCommunicationError => Status::unavailable(message),
        Code::InternalFailure => Status::internal(message),
    }
}

/// The caller's signed request, within limits; header names lower-cased as the query
/// face gives them.
fn signed_request(
    request: pb::SignedRequest,
    limits: &query::Limits,
) -> Result<RawRequest, StsError> {
    let pb::SignedRequest {
        method,
        target,
        headers,
        body,
    } = request;
    if headers.len() > MAX_HEADERS {
        return Err(StsError::validation(format!(
            "the signed request has {} headers, more than {MAX_HEADERS}",
            headers.len()
        )));
    }
    if body.len() > limits.max_body_bytes {
        return Err(StsError::validation(format!(
            "the signed request's body is larger than {} bytes",
            limits.max_body_bytes
        )));
    }
    Ok(RawRequest {
        method,
        target,
        headers: headers
            .into_iter()
            .map(|pb::Header { name, value }| (name.to_ascii_lowercase(), value))
            .collect(),
        body,
    })
}

fn policy_arns(arns: Vec<pb::PolicyDescriptor>) -> Vec<String> {
    arns.into_iter()
        .map(|pb::PolicyDescriptor { arn }| arn)
        .collect()
}

fn credentials_to_pb(c: Credentials) -> pb::Credentials {
    let Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
    } = c;
    pb::Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration: xml::timestamp(expiration),
    }
}

fn user_to_pb(u: AssumedRoleUser) -> pb::AssumedRoleUser {
    let AssumedRoleUser {
        assumed_role_id,
        arn,
    } = u;
    pb::AssumedRoleUser {
        assumed_role_id,
        arn,
    }
}

/// The result of a call that answered another call's kind: [`Sts::perform`] has refused
/// that already.
fn mismatch() -> Status {
    Status::internal("InternalFailure: a call was answered with another call's result")
}

#[tonic::async_trait]
impl sts_server::Sts for Sts {
    async fn assume_role(
        &self,
        request: Request<pb::AssumeRoleRequest>,
    ) -> Result<Response<pb::AssumeRoleResponse>, Status> {
        let pb::AssumeRoleRequest {
            caller,
            role_arn,
            role_session_name,
            policy_arns: arns,
            policy,
            duration_seconds,
            tags,
            transitive_tag_keys,
            external_id,
            serial_number,
            token_code,
            source_identity,
        } = request.into_inner();
        let call = Call::AssumeRole(AssumeRole {
            role_arn,
            role_session_name,
            policy_arns: policy_arns(arns),
            policy,
            duration_seconds,
            tags: tags
                .into_iter()
                .map(|pb::Tag { key, value }| (key, value))
                .collect(),
            transitive_tag_keys,
            external_id,
            serial_number,
            token_code,
            source_identity,
        });
        match self.perform(caller, call).await? {
            CallResult::AssumeRole {
                credentials,
                assumed_role_user,
                packed_policy_size,
                source_identity,
            } => Ok(Response::new(pb::AssumeRoleResponse {
                credentials: Some(credentials_to_pb(credentials)),
                assumed_role_user: Some(user_to_pb(assumed_role_user)),
                packed_policy_size,
                source_identity,
            })),
            _ => Err(mismatch()),
        }
    }

    async fn assume_role_with_web_identity(
        &self,
        request: Request<pb::AssumeRoleWithWebIdentityRequest>,
    ) -> Result<Response<pb::AssumeRoleWithWebIdentityResponse>, Status> {
        let pb::AssumeRoleWithWebIdentityRequest {
            role_arn,
            role_session_name,
            web_identity_token,
            provider_id,
            policy_arns: arns,
            policy,
            duration_seconds,
        } = request.into_inner();
        let call = Call::AssumeRoleWithWebIdentity(AssumeRoleWithWebIdentity {
            role_arn,
            role_session_name,
            web_identity_token,
            provider_id,
            policy_arns: policy_arns(arns),
            policy,
            duration_seconds,
        });
        match self.perform(None, call).await? {
            CallResult::AssumeRoleWithWebIdentity {
                credentials,
                subject_from_web_identity_token,
                assumed_role_user,
                packed_policy_size,
                provider,
                audience,
                source_identity,
            } => Ok(Response::new(pb::AssumeRoleWithWebIdentityResponse {
                credentials: Some(credentials_to_pb(credentials)),
                subject_from_web_identity_token,
                assumed_role_user: Some(user_to_pb(assumed_role_user)),
                packed_policy_size,
                provider,
                audience,
                source_identity,
            })),
            _ => Err(mismatch()),
        }
    }

    async fn get_session_token(
        &self,
        request: Request<pb::GetSessionTokenRequest>,
    ) -> Result<Response<pb::GetSessionTokenResponse>, Status> {
        let pb::GetSessionTokenRequest {
            caller,
            duration_seconds,
            serial_number,
            token_code,
        } = request.into_inner();
        let call = Call::GetSessionToken(GetSessionToken {
            duration_seconds,
            serial_number,
            token_code,
        });
        match self.perform(caller, call).await? {
            CallResult::GetSessionToken { credentials } => {
                Ok(Response::new(pb::GetSessionTokenResponse {
                    credentials: Some(credentials_to_pb(credentials)),
                }))
            }
            _ => Err(mismatch()),
        }
    }

    async fn get_caller_identity(
        &self,
        request: Request<pb::GetCallerIdentityRequest>,
    ) -> Result<Response<pb::GetCallerIdentityResponse>, Status> {
        let pb::GetCallerIdentityRequest { caller } = request.into_inner();
        match self.perform(caller, Call::GetCallerIdentity).await? {
            CallResult::GetCallerIdentity {
                user_id,
                account,
                arn,
            } => Ok(Response::new(pb::GetCallerIdentityResponse {
                user_id,
                account,
                arn,
            })),
            _ => Err(mismatch()),
        }
    }
}

#[cfg(test)]
mod tests;
