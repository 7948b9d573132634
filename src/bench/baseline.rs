//! A constant-answer `warden.v1.Authorizer` and Envoy `Check`: the no-op server `warden
//! load --baseline` measures against (and Envoy's constant ext_authz server for the `wrk`
//! comparison). It decodes the same requests with prost and encodes with prost the very
//! answer the real service gave to the first of them, and decides nothing, so the
//! difference is the cost of deciding.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use prost::Message;

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, OkHttpResponse};

use crate::grpc::check::server::authorization_server::{Authorization, AuthorizationServer};
use crate::grpc::pb;
use crate::grpc::server::authorizer_server::{Authorizer, AuthorizerServer};
use crate::grpc::wire::{
    AuthorizeBytes, AuthorizeResponseBytes, BatchAuthorizeBytes, CheckBytes, CheckResponseBytes,
};

/// The answers a baseline gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answers {
    pub authorize: pb::AuthorizeResponse,
    pub check: CheckResponse,
}

impl Answers {
    /// Answers for a baseline started on its own (Envoy's constant ext_authz server): an
    /// Allow, and an OK that sets the two headers warden sets for the upstream.
    pub fn allow() -> Answers {
        let header = |key: &str, value: &str| HeaderValueOption {
            header: Some(HeaderValue {
                key: key.to_owned(),
                value: value.to_owned(),
                raw_value: Vec::new(),
            }),
            ..HeaderValueOption::default()
        };
        Answers {
            authorize: pb::AuthorizeResponse {
                decision: pb::Decision::Allow as i32,
                reason: "identity_allow".to_owned(),
                decision_id: "0".repeat(32),
                ..pb::AuthorizeResponse::default()
            },
            check: CheckResponse {
                status: Some(envoy_types::pb::google::rpc::Status::default()),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers: vec![
                        header(
                            "x-warden-principal-arn",
                            "arn:aws:iam::333333333333:user/engineering/alice",
                        ),
                        header("x-warden-decision-id", &"0".repeat(32)),
                    ],
                    ..OkHttpResponse::default()
                })),
                dynamic_metadata: None,
            },
        }
    }
}

struct Constant {
    answer: pb::AuthorizeResponse,
}

struct ConstantCheck {
    answer: CheckResponse,
}

#[tonic::async_trait]
impl Authorization for ConstantCheck {
    async fn check(
        &self,
        request: Request<CheckBytes>,
    ) -> Result<Response<CheckResponseBytes>, Status> {
        let decoded = CheckRequest::decode(request.into_inner().0)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        drop(decoded);
        Ok(Response::new(CheckResponseBytes(
            self.answer.encode_to_vec().into(),
        )))
    }
}

#[tonic::async_trait]
impl Authorizer for Constant {
    async fn authorize(
        &self,
        request: Request<AuthorizeBytes>,
    ) -> Result<Response<AuthorizeResponseBytes>, Status> {
        // Decoded as prost decodes it, so that the baseline pays for reading a request.
        let decoded = pb::AuthorizeRequest::decode(request.into_inner().0)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        drop(decoded);
        Ok(Response::new(AuthorizeResponseBytes(
            self.answer.encode_to_vec().into(),
        )))
    }

    async fn batch_authorize(
        &self,
        request: Request<BatchAuthorizeBytes>,
    ) -> Result<Response<pb::BatchAuthorizeResponse>, Status> {
        let n = pb::BatchAuthorizeRequest::decode(request.into_inner().0)
            .map_err(|e| Status::invalid_argument(e.to_string()))?
            .items
            .len();
        Ok(Response::new(pb::BatchAuthorizeResponse {
            results: vec![self.answer.clone(); n],
            revision: self.answer.revision,
        }))
    }
}

/// A running baseline server; dropping it stops the server.
pub struct Baseline {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Baseline {
    /// Starts the server on `addr` (`127.0.0.1:0` for any port) on a runtime of its own
    /// with `workers` threads, so it does not share the load generator's; it answers every
    /// Authorize and every Check with `answers`.
    pub fn start(workers: usize, answers: Answers, addr: SocketAddr) -> std::io::Result<Baseline> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("warden-baseline")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("warden-baseline".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    // Written as warden's server writes (`server::conn::Unvectored`).
                    let incoming = tonic::codegen::tokio_stream::StreamExt::map(
                        tonic::transport::server::TcpIncoming::from(listener)
                            .with_nodelay(Some(true)),
                        |io| io.map(crate::server::conn::Unvectored),
                    );
                    let served = tonic::transport::Server::builder()
                        .add_service(AuthorizerServer::new(Constant {
                            answer: answers.authorize,
                        }))
                        .add_service(AuthorizationServer::new(ConstantCheck {
                            answer: answers.check,
                        }))
                        .serve_with_incoming_shutdown(incoming, async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!("the baseline server failed: {e}");
                    }
                });
            })?;
        Ok(Baseline {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers as bytes, to hand to a baseline server in another process: the Authorize
/// answer, then the Check answer, each after its length (a varint).
pub fn encode_answers(answers: &Answers) -> Vec<u8> {
    let mut out = answers.authorize.encode_length_delimited_to_vec();
    out.extend(answers.check.encode_length_delimited_to_vec());
    out
}

/// Reads answers written by [`encode_answers`].
pub fn decode_answers(mut bytes: &[u8]) -> Result<Answers, prost::DecodeError> {
    let authorize = pb::AuthorizeResponse::decode_length_delimited(&mut bytes)?;
    let check = CheckResponse::decode_length_delimited(&mut bytes)?;
    Ok(Answers { authorize, check })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_survive_the_trip_to_the_child_process() {
        let answers = Answers::allow();
        assert_eq!(decode_answers(&encode_answers(&answers)).unwrap(), answers);
        assert!(decode_answers(b"\x05ab").is_err());
    }
}
