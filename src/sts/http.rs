//! The STS listener: the AWS query API (`POST /` with a form body, `GET /?Action=...`) and
//! the container credentials endpoint, over HTTP/1.1 with optional TLS. Connections come
//! from the same [`Acceptor`] as the admin port's (a connection limit, keepalive, accept
//! back-off) and are served by hyper with a header-read timeout; TLS handshakes and
//! request bodies have deadlines of their own, and bodies a size limit checked before they
//! are read. Every answer carries a fresh `x-amzn-RequestId`, also inside the XML.
//!
//! What a call does is the [`StsHandler`]'s: this face parses ([`query`]), hands the call
//! with the request as received to the handler, and renders what it answers ([`xml`]).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::container::{ContainerCredentials, ContainerEndpoint};
use super::error::{Code, StsError};
use super::query::{self, Call};
use super::xml::{self, CallResult};
use crate::server::conn::{Acceptor, Listener};

/// The response header AWS puts the request id in.
pub const REQUEST_ID_HEADER: &str = "x-amzn-RequestId";

/// An HTTP request as received, for the handler to verify its SigV4 signature. The lead's
/// handler borrows it as a `sigv4::HttpRequest` (`method`, `target`, the headers as
/// `(&str, &str)` pairs, `Payload::Bytes(&body)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest {
    pub method: String,
    /// The path with its raw query, as received (`/`, `/?Action=...&X-Amz-Signature=...`).
    pub target: String,
    /// Every header in the order received, names lower-case (HTTP/1 names are
    /// case-insensitive, and SigV4 lower-cases them), repeated names kept apart. A value
    /// that is not UTF-8 is read lossily, so it fails its signature rather than the parse.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Which face a call came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// The query API: the signed request *is* the call, its signature covers the
    /// parameters.
    Query,
    /// gRPC: the signed request is a proof of identity the caller made for the purpose
    /// (normally a `GetCallerIdentity` POST to the STS endpoint); the call's parameters
    /// are not in it.
    Grpc,
}

/// Everything about a call besides its parameters.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The id the answer will carry (`x-amzn-RequestId`), for the handler's logs.
    pub request_id: &'a str,
    pub face: Face,
    /// The request that authenticates the caller: always present on the query face
    /// (signed or not), the `caller` field on the gRPC face (`None` when absent, as for
    /// `AssumeRoleWithWebIdentity`).
    pub signed: Option<&'a RawRequest>,
    pub now: SystemTime,
}

/// What STS does, behind both faces: authenticates the caller from the signed request
/// (SigV4, session tokens), decides and issues. Parameters reach it parsed and validated
/// against AWS's constraints; errors it returns are answered as AWS answers them.
#[tonic::async_trait]
pub trait StsHandler: Send + Sync + 'static {
    /// Performs one call.
    async fn call(&self, cx: CallContext<'_>, call: Call) -> Result<CallResult, StsError>;

    /// Issues new credentials for the workload's configured role, for the container
    /// endpoint ([`ContainerEndpoint`] caches them and asks again near their expiry).
    async fn container_credentials(
        &self,
        now: SystemTime,
    ) -> Result<ContainerCredentials, StsError>;
}

/// How the listener bounds its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The body and the query string together, and their parameter count.
    pub limits: query::Limits,
    /// A connection that has not sent a whole request head this long after it opened (or
    /// after its previous answer) is closed; `None` never (see `admin::serve`).
    pub header_read_timeout: Option<Duration>,
    /// The longest a request's body may take to arrive.
    pub body_read_timeout: Duration,
    /// The longest a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limits: query::Limits::default(),
            header_read_timeout: Some(Duration::from_secs(10)),
            body_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The listener's routes: the query API on `/`, the container endpoint on its path.
pub struct StsHttp {
    handler: Arc<dyn StsHandler>,
    config: Config,
    container: Option<Arc<ContainerEndpoint>>,
}

impl StsHttp {
    pub fn new(
        handler: Arc<dyn StsHandler>,
        config: Config,
        container: Option<Arc<ContainerEndpoint>>,
    ) -> StsHttp {
        StsHttp {
            handler,
            config,
            container,
        }
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let request_id = xml::request_id();
        let mut response = self.route(req, &request_id).await;
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }

    async fn route(&self, req: Request<Incoming>, request_id: &str) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        if let Some(container) = &self.container
            && parts.uri.path() == container.path()
        {
            if parts.method != Method::GET {
                return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
            }
            let authorization = parts
                .headers
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            let answer = container
                .answer(authorization, &*self.handler, SystemTime::now())
                .await;
            let status =
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return with_type(status, "application/json", answer.body);
        }
        if parts.uri.path() != "/" {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        let query = parts.uri.query().unwrap_or_default();
        let body = match parts.method {
            Method::GET => Vec::new(),
            Method::POST => {
                let form = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_none_or(|v| {
                        v.split(';')
                            .next()
                            .unwrap_or_default()
                            .trim()
                            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                    });
                if !form {
                    let e = StsError::validation(
                        "the body of a query API request must be \
                         `application/x-www-form-urlencoded`",
                    );
                    return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e, request_id);
                }
                match self.read_body(&parts.headers, body, query.len()).await {
                    Ok(body) => body,
                    Err((status, e)) => return error(status, &e, request_id),
                }
            }
            _ => return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST\n"),
        };
        let call = match query::parse(query, &body, &self.config.limits) {
            Ok(call) => call,
            Err(e) => return error(status_of(&e), &e, request_id),
        };
        let raw = RawRequest {
            method: parts.method.as_str().to_owned(),
            target: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        };
        let cx = CallContext {
            request_id,
            face: Face::Query,
            signed: Some(&raw),
            now: SystemTime::now(),
        };
        match self.handler.call(cx, call).await {
            Ok(result) => with_type(
                StatusCode::OK,
                "text/xml",
                xml::response(&result, request_id),
            ),
            Err(e) => error(status_of(&e), &e, request_id),
        }
    }

    /// The body, within the size limit (what the query string already took counts) and
    /// the read deadline. A declared length over the limit is refused before any byte is
    /// read.
    async fn read_body(
        &self,
        headers: &http::HeaderMap,
        body: Incoming,
        query_len: usize,
    ) -> Result<Vec<u8>, (StatusCode, StsError)> {
        let max = self.config.limits.max_body_bytes.saturating_sub(query_len);
        let too_large = || {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                StsError::validation(format!(
                    "the request body is larger than the limit of {max} bytes"
                )),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let read = tokio::time::timeout(
            self.config.body_read_timeout,
            Limited::new(body, max).collect(),
        )
        .await;
        match read {
            Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(e)) => Err((
                StatusCode::BAD_REQUEST,
                StsError::validation(format!("cannot read the request body: {e}")),
            )),
            Err(_) => Err((
                StatusCode::REQUEST_TIMEOUT,
                StsError::validation(format!(
                    "the request body did not arrive within {:?}",
                    self.config.body_read_timeout
                )),
            )),
        }
    }
}

fn status_of(e: &StsError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn error(status: StatusCode, e: &StsError, request_id: &str) -> Response<Full<Bytes>> {
    if e.code == Code::InternalFailure {
        tracing::warn!(request_id, "sts: {e}");
    } else {
        tracing::debug!(request_id, "sts: {e}");
    }
    with_type(status, "text/xml", xml::error_response(e, request_id))
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(status, "text/plain", body.to_owned())
}

/// Serves `app` on the connections `acceptor` admits, over TLS when `tls` is given, until
/// `stop`; then stops accepting and waits up to `drain` for the requests in flight.
pub async fn serve<L: Listener>(
    mut acceptor: Acceptor<L>,
    app: Arc<StsHttp>,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
    drain: Duration,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(app.config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let idle_closed = acceptor.gate().metrics().idle_closed.clone();
    let handshake = app.config.tls_handshake_timeout;
    loop {
        let conn = tokio::select! {
            () = stop.cancelled() => break,
            conn = acceptor.accept() => conn,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle(req).await) }
        });
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let idle_closed = idle_closed.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(conn), service))
                        .await
                }
                Some(tls) => {
                    // The handshake holds the connection's slot: it gets a deadline, or a
                    // client that never finishes one would keep the slot forever.
                    let stream = match tokio::time::timeout(handshake, tls.accept(conn)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!("sts TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            idle_closed.increment(1);
                            tracing::debug!("sts TLS handshake took longer than {handshake:?}");
                            return;
                        }
                    };
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(e) = served {
                if e.is_timeout() {
                    idle_closed.increment(1);
                }
                tracing::debug!("sts connection ended: {e}");
            }
        });
    }
    drop(acceptor);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("sts requests still in flight after {drain:?}: stopping anyway");
    }
}

/// A TLS configuration that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain `{path}`: {source}")]
    Certificate {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("the certificate file `{0}` holds no certificate")]
    NoCertificate(PathBuf),
    #[error("cannot read the private key `{path}`: {source}")]
    Key {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("the certificate and key do not make a TLS server: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS acceptor for the listener from a PEM certificate chain (leaf first) and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1), on ring, offering HTTP/1.1.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Certificate {
            path: cert.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_owned(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests;
