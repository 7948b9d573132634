//! The client side of `warden.v1.Authorizer`, for `warden check` and `warden loadgen`:
//! connecting over TCP or a Unix socket, and calling with requests built from domain
//! values.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest as EnvoyHttp, Peer, Request as EnvoyRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use super::pb;
use super::pb::authorizer_client::AuthorizerClient;
use crate::context::Context;

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("`{addr}` is not an address: {message}")]
    BadAddress { addr: String, message: String },
    #[error("cannot connect to `{addr}`: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
}

/// Connects to `addr`: `HOST:PORT`, `http://HOST:PORT`, or `unix:/PATH` for a Unix socket.
pub async fn connect(addr: &str, timeout: Duration) -> Result<Channel, ConnectError> {
    let bad = |message: String| ConnectError::BadAddress {
        addr: addr.to_owned(),
        message,
    };
    let failed = |source| ConnectError::Connect {
        addr: addr.to_owned(),
        source,
    };
    if let Some(path) = addr.strip_prefix("unix:") {
        let path = path.to_owned();
        // The URI is required by the API and unused: the connector decides where to go.
        let endpoint = Endpoint::try_from("http://localhost")
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        return endpoint
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(failed);
    }
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    // The connector below speaks plain HTTP/2 over TCP, to the port named or 80: an
    // `https://` address would reach a TLS port without TLS.
    if !uri.starts_with("http://") {
        return Err(bad(
            "only `http://`, `HOST:PORT` or `unix:/PATH` (this client has no TLS)".to_owned(),
        ));
    }
    Endpoint::try_from(uri)
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(timeout)
        .connect_with_connector(tower::service_fn(|uri: tonic::transport::Uri| async move {
            let host = uri.host().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let stream =
                tokio::net::TcpStream::connect((host, uri.port_u16().unwrap_or(80))).await?;
            tcp_stream(stream)
        }))
        .await
        .map_err(failed)
}

/// A client's TCP connection: without Nagle's delay, and without vectored writes. On a
/// vectored socket h2 writes a request body of 256 bytes or more as a slice of its own and
/// flushes for it, so a Check request (about 300 bytes) cost two `writev` calls and reached
/// the server in two pieces, where a shorter Authorize cost one (`warden load` measured
/// 1.9 and 1.0 writes per request); unvectored, h2 copies it into its buffer and writes a
/// batch of requests at once, as the server does its answers (`server::conn::Conn`).
fn tcp_stream(
    stream: tokio::net::TcpStream,
) -> std::io::Result<TokioIo<crate::server::conn::Unvectored<tokio::net::TcpStream>>> {
    stream.set_nodelay(true)?;
    Ok(TokioIo::new(crate::server::conn::Unvectored(stream)))
}

/// An Authorize request from domain values.
pub fn authorize_request(
    principal: &str,
    action: &str,
    resource: &str,
    context: &Context,
    explain: bool,
) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        principal: principal.to_owned(),
        action: action.to_owned(),
        resource: resource.to_owned(),
        context: super::context_to_pb(context),
        explain,
        ..Default::default()
    }
}

/// A client that sends prepared requests as their encoded bytes and keeps the answers'
/// bytes undecoded, for the load generator: so that what it measures is the server, not the
/// generator's own encoding and decoding (on this project's machines the two share the
/// cores). Both faces are sent alike. An error is the gRPC status code's name.
#[derive(Clone)]
pub struct Unary {
    grpc: tonic::client::Grpc<Channel>,
    path: &'static str,
}

impl Unary {
    pub fn new(channel: Channel, path: &'static str) -> Unary {
        Unary {
            grpc: tonic::client::Grpc::new(channel),
            path,
        }
    }

    /// Sends one request's bytes.
    pub async fn call(&mut self, request: prost::bytes::Bytes) -> Result<(), String> {
        self.grpc
            .ready()
            .await
            .map_err(|e| format!("Unknown: the channel was not ready: {e}"))?;
        let codec = tonic_prost::ProstCodec::<super::wire::Raw, super::wire::Raw>::default();
        self.grpc
            .unary(
                tonic::Request::new(super::wire::Raw(request)),
                tonic::codegen::http::uri::PathAndQuery::from_static(self.path),
                codec,
            )
            .await
            .map(drop)
            .map_err(|status| format!("{:?}", status.code()))
    }
}

/// Calls Authorize once.
pub async fn authorize(
    channel: Channel,
    request: pb::AuthorizeRequest,
    timeout: Duration,
) -> Result<pb::AuthorizeResponse, tonic::Status> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    let response = AuthorizerClient::new(channel).authorize(request).await?;
    Ok(response.into_inner())
}

/// Whether a response allows.
pub fn is_allow(response: &pb::AuthorizeResponse) -> bool {
    response.decision() == pb::Decision::Allow
}

/// Request number `seq` of a load generator's requests, cycling through them.
fn nth<T>(requests: &[T], seq: u64) -> Option<&T> {
    let n = requests.len().max(1) as u64;
    requests.get(usize::try_from(seq % n).unwrap_or(0))
}

/// A load-generator target that cycles through prepared requests of one face, encoded
/// once ([`encoded`]). A deny is an answer, not an error: only a gRPC status counts as one.
pub struct Prepared {
    client: Unary,
    requests: std::sync::Arc<[prost::bytes::Bytes]>,
}

/// The method `warden.v1.Authorizer/Authorize`, for [`Prepared::new`].
pub const AUTHORIZE_PATH: &str = "/warden.v1.Authorizer/Authorize";
/// The method `envoy.service.auth.v3.Authorization/Check`, for [`Prepared::new`].
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

impl Prepared {
    /// `requests` must not be empty.
    pub fn new(
        channel: Channel,
        path: &'static str,
        requests: std::sync::Arc<[prost::bytes::Bytes]>,
    ) -> Self {
        Prepared {
            client: Unary::new(channel, path),
            requests,
        }
    }
}

impl crate::bench::loadgen::Target for Prepared {
    async fn call(&mut self, seq: u64) -> Result<(), String> {
        match nth(&self.requests, seq) {
            Some(request) => self.client.call(request.clone()).await,
            None => Err("NoRequest".to_owned()),
        }
    }
}

/// Each message's bytes, for a load-generator target.
pub fn encoded<M: prost::Message>(messages: &[M]) -> std::sync::Arc<[prost::bytes::Bytes]> {
    messages.iter().map(|m| m.encode_to_vec().into()).collect()
}

// === Check (Envoy ext_authz) ===

/// An HTTP request as Envoy would ask about it, for the load generator and tests.
#[derive(Debug, Clone, Default)]
pub struct HttpAsk {
    pub method: String,
    pub host: String,
    /// With the query string.
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// The route's `context_extensions` (`warden.listener`, ...).
    pub extensions: Vec<(String, String)>,
    /// The downstream peer's address.
    pub peer: String,
    /// The peer certificate's URI SAN, for an mTLS principal.
    pub peer_principal: String,
}

/// A `CheckRequest` as Envoy 1.40 sends it (`tests/fixtures/envoy`): the pseudo-headers
/// beside the headers, the socket addresses, the context extensions.
pub fn check_request(ask: &HttpAsk) -> CheckRequest {
    let mut headers: std::collections::HashMap<String, String> = ask
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    headers.insert(":method".into(), ask.method.clone());
    headers.insert(":path".into(), ask.path.clone());
    headers.insert(":authority".into(), ask.host.clone());
    headers.insert(":scheme".into(), "http".into());
    let socket = |ip: &str, port: u32| Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_owned(),
            port_specifier: Some(
                envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(
                    port,
                ),
            ),
            ..SocketAddress::default()
        })),
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(socket(&ask.peer, 40000)),
                principal: ask.peer_principal.clone(),
                ..Peer::default()
            }),
            destination: Some(Peer {
                address: Some(socket("127.0.0.1", 10000)),
                ..Peer::default()
            }),
            request: Some(EnvoyRequest {
                time: None,
                http: Some(EnvoyHttp {
                    method: ask.method.clone(),
                    path: ask.path.clone(),
                    host: ask.host.clone(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    headers,
                    ..EnvoyHttp::default()
                }),
            }),
            context_extensions: ask.extensions.iter().cloned().collect(),
            ..AttributeContext::default()
        }),
    }
}

/// Calls Check once.
pub async fn check(
    channel: Channel,
    request: CheckRequest,
    timeout: Duration,
) -> Result<CheckResponse, tonic::Status> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    let response = AuthorizationClient::new(channel).check(request).await?;
    Ok(response.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use hyper::rt::Write as _;

    use super::*;

    #[tokio::test]
    async fn an_address_with_another_scheme_is_refused_by_name() {
        for addr in ["https://127.0.0.1:443", "grpc://127.0.0.1:1"] {
            let e = connect(addr, Duration::from_secs(1)).await.unwrap_err();
            assert!(matches!(e, ConnectError::BadAddress { .. }), "{addr}: {e}");
            assert!(e.to_string().contains(addr), "{e}");
        }
    }

    #[tokio::test]
    async fn a_client_connection_writes_unvectored_and_without_delay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let plain = tokio::net::TcpStream::connect(addr).await.unwrap();
        // What h2 would see without the wrapper: a socket that takes vectored writes.
        assert!(TokioIo::new(plain).is_write_vectored());
        let stream = tcp_stream(tokio::net::TcpStream::connect(addr).await.unwrap()).unwrap();
        assert!(!stream.is_write_vectored());
        assert!(stream.inner().0.nodelay().unwrap());
    }
}
