//! A constant-answer `warden.v1.Authorizer`: the no-op server `warden load --baseline`
//! measures against. It decodes the same requests and encodes the very answer the real
//! service gave to the first of them, and decides nothing, so the difference is the cost
//! of deciding.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use prost::Message;

use crate::grpc::pb;
use crate::grpc::server::authorizer_server::{Authorizer, AuthorizerServer};
use crate::grpc::wire::{AuthorizeBytes, BatchAuthorizeBytes};

struct Constant {
    answer: pb::AuthorizeResponse,
}

#[tonic::async_trait]
impl Authorizer for Constant {
    async fn authorize(
        &self,
        request: Request<AuthorizeBytes>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        // Decoded as prost decodes it, so that the baseline pays for reading a request.
        let decoded = pb::AuthorizeRequest::decode(request.into_inner().0)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        drop(decoded);
        Ok(Response::new(self.answer.clone()))
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
    /// Starts the server on `127.0.0.1:0` on a runtime of its own with `workers` threads,
    /// so it does not share the load generator's; it answers every Authorize with `answer`.
    pub fn start(workers: usize, answer: pb::AuthorizeResponse) -> std::io::Result<Baseline> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("warden-baseline")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("warden-baseline".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let incoming = tonic::transport::server::TcpIncoming::from(listener)
                        .with_nodelay(Some(true));
                    let served = tonic::transport::Server::builder()
                        .add_service(AuthorizerServer::new(Constant { answer }))
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

/// An answer as bytes, to hand to a baseline server in another process.
pub fn encode_answer(answer: &pb::AuthorizeResponse) -> Vec<u8> {
    prost::Message::encode_to_vec(answer)
}

/// Reads an answer written by [`encode_answer`].
pub fn decode_answer(bytes: &[u8]) -> Result<pb::AuthorizeResponse, prost::DecodeError> {
    prost::Message::decode(bytes)
}
