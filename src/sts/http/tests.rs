#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Mutex;

use http_body_util::BodyExt;
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::server::conn::{self, Gate, Tcp};
use crate::sts::container::{ContainerConfig, DEFAULT_PATH, DEFAULT_REFRESH_BEFORE, TokenSource};
use crate::sts::xml::{AssumedRoleUser, Credentials};
use crate::telemetry::PortMetrics;

const ROLE: &str = "arn:aws:iam::111122223333:role/Deployer";

/// Answers as a server would without checking signatures: a request with an
/// `authorization` header (or a presigned one) is alice's; it records what it was given.
#[derive(Default)]
struct TestHandler {
    seen: Mutex<Vec<(RawRequest, Call)>>,
}

fn creds() -> Credentials {
    Credentials {
        access_key_id: "ASIATESTTESTTEST0001".into(),
        secret_access_key: "secret<&>".into(),
        session_token: "tok".into(),
        expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

#[tonic::async_trait]
impl StsHandler for TestHandler {
    async fn call(&self, cx: CallContext<'_>, call: Call) -> Result<CallResult, StsError> {
        assert_eq!(cx.face, Face::Query);
        let raw = cx.signed.expect("the query face always passes its request");
        self.seen.lock().unwrap().push((raw.clone(), call.clone()));
        let signed = raw.headers.iter().any(|(n, _)| n == "authorization")
            || raw.target.contains("X-Amz-Signature=");
        if !signed {
            return Err(StsError::new(
                Code::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ));
        }
        Ok(match call {
            Call::GetCallerIdentity => CallResult::GetCallerIdentity {
                user_id: "AIDAALICE".into(),
                account: "111122223333".into(),
                arn: "arn:aws:iam::111122223333:user/alice".into(),
            },
            Call::AssumeRole(c) => CallResult::AssumeRole {
                credentials: creds(),
                assumed_role_user: AssumedRoleUser {
                    assumed_role_id: format!("AROATEST:{}", c.role_session_name),
                    arn: crate::sts::grant::assumed_role_arn(&c.role_arn, &c.role_session_name),
                },
                packed_policy_size: None,
                source_identity: None,
            },
            _ => return Err(StsError::denied("not in this test")),
        })
    }

    async fn container_credentials(&self, _: SystemTime) -> Result<ContainerCredentials, StsError> {
        Ok(ContainerCredentials {
            credentials: Credentials {
                expiration: SystemTime::now() + Duration::from_secs(3600),
                ..creds()
            },
            role_arn: ROLE.into(),
        })
    }
}

struct Running {
    addr: std::net::SocketAddr,
    handler: Arc<TestHandler>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(tls: Option<TlsAcceptor>, limits: query::Limits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = conn::Config {
        max_grpc: 16,
        max_admin: 16,
        idle_timeout: None,
        keepalive_interval: None,
        keepalive_timeout: Duration::from_secs(10),
        header_read_timeout: Some(Duration::from_secs(5)),
    };
    let acceptor = Acceptor::new(
        Tcp::new(listener, &connections),
        Gate::new("sts", 16, &PortMetrics::noop()),
        None,
    );
    let handler = Arc::new(TestHandler::default());
    let container = ContainerEndpoint::new(ContainerConfig {
        path: DEFAULT_PATH.into(),
        token: TokenSource::Value("container-token".into()),
        refresh_before: DEFAULT_REFRESH_BEFORE,
    })
    .unwrap();
    let app = Arc::new(StsHttp::new(
        handler.clone(),
        Config {
            limits,
            ..Config::default()
        },
        Some(Arc::new(container)),
    ));
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(
        acceptor,
        app,
        tls,
        stop.clone(),
        Duration::from_secs(1),
    ));
    Running {
        addr,
        handler,
        stop,
        task,
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn client<S>(io: S) -> Sender
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn send(
    sender: &mut Sender,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .header("host", "127.0.0.1");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = sender.send_request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

const FORM: (&str, &str) = (
    "content-type",
    "application/x-www-form-urlencoded; charset=utf-8",
);
const SIGNED: (&str, &str) = (
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=AKIAPROBEEXAMPLE0001/20260101/us-east-1/sts/aws4_request, \
     SignedHeaders=content-type;host;x-amz-date, Signature=00",
);

/// The request id of the header, which the XML must repeat.
fn request_id_of(a: &Answer) -> String {
    let id = a.headers[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert!(
        a.body.contains(&format!("<RequestId>{id}</RequestId>")),
        "{}",
        a.body
    );
    id
}

#[tokio::test]
async fn the_query_api_over_http() {
    let running = start(None, query::Limits::default()).await;
    let mut c = client(TcpStream::connect(running.addr).await.unwrap()).await;

    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let a = send(
        &mut c,
        "POST",
        "/",
        &[FORM, SIGNED, ("X-Amz-Date", "20260101T000000Z")],
        body,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers["content-type"], "text/xml");
    assert!(
        a.body
            .contains("<Arn>arn:aws:iam::111122223333:user/alice</Arn>")
    );
    let first = request_id_of(&a);
    {
        let seen = running.handler.seen.lock().unwrap();
        let (raw, call) = seen.last().unwrap();
        assert_eq!(*call, Call::GetCallerIdentity);
        assert_eq!(raw.method, "POST");
        assert_eq!(raw.target, "/");
        assert_eq!(raw.body, body.as_bytes());
        assert!(
            raw.headers
                .contains(&("x-amz-date".into(), "20260101T000000Z".into()))
        );
        assert!(raw.headers.contains(&("host".into(), "127.0.0.1".into())));
    }

    // Unsigned: the handler's error, as AWS's XML, with its status.
    let a = send(&mut c, "POST", "/", &[FORM], body).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">")
    );
    assert_ne!(request_id_of(&a), first, "a fresh id per request");

    // GET with a presigned query.
    let target = "/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Signature=00";
    let a = send(&mut c, "GET", target, &[], "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        running
            .handler
            .seen
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .0
            .target,
        target
    );

    // AssumeRole with its parameters.
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=ci-42",
        ROLE.replace(':', "%3A").replace('/', "%2F")
    );
    let a = send(&mut c, "POST", "/", &[FORM, SIGNED], &body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        a.body
            .contains("<Arn>arn:aws:sts::111122223333:assumed-role/Deployer/ci-42</Arn>")
    );
    assert!(
        a.body
            .contains("<SecretAccessKey>secret&lt;&amp;&gt;</SecretAccessKey>")
    );

    // Parse errors never reach the handler.
    let before = running.handler.seen.lock().unwrap().len();
    let a = send(
        &mut c,
        "POST",
        "/",
        &[FORM, SIGNED],
        "Action=GetCallerIdentity",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("<Code>InvalidAction</Code>"));
    assert!(a.body.contains("for version NO_VERSION_SPECIFIED"));
    let a = send(
        &mut c,
        "POST",
        "/",
        &[FORM, SIGNED],
        "Action=AssumeRole&Version=2011-06-15",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("<Code>ValidationError</Code>"));
    assert!(
        a.body
            .contains("<Message>2 validation errors detected: Value null at &apos;roleArn&apos;"),
        "{}",
        a.body
    );
    let a = send(
        &mut c,
        "POST",
        "/",
        &[("content-type", "application/json"), SIGNED],
        "{}",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(running.handler.seen.lock().unwrap().len(), before);

    // Other paths and methods.
    let a = send(&mut c, "POST", "/other", &[FORM], "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.headers.contains_key(REQUEST_ID_HEADER));
    let a = send(&mut c, "PUT", "/", &[FORM], "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);

    running.stop.cancel();
    running.task.await.unwrap();
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let limits = query::Limits {
        max_body_bytes: 200,
        max_params: 16,
    };
    let running = start(None, limits).await;
    let mut c = client(TcpStream::connect(running.addr).await.unwrap()).await;
    let big = format!(
        "Action=GetCallerIdentity&Version=2011-06-15&x={}",
        "a".repeat(300)
    );
    let a = send(&mut c, "POST", "/", &[FORM, SIGNED], &big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        a.body.contains("<Code>ValidationError</Code>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("larger than the limit of 200 bytes"));
    request_id_of(&a);
    // Without a declared length (chunked), the limit holds while reading.
    let io = TokioIo::new(TcpStream::connect(running.addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "127.0.0.1")
        .header(FORM.0, FORM.1)
        .body(chunked(big))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut c = client(TcpStream::connect(running.addr).await.unwrap()).await;
    // Many parameters within the size.
    let many = "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=1&k=2&l=3&m=4&n=5&o=6&p=7&q=8";
    let a = send(&mut c, "POST", "/", &[FORM, SIGNED], many).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("more than 16 parameters"), "{}", a.body);
    running.stop.cancel();
    running.task.await.unwrap();
}

type Chunk = Result<http_body::Frame<Bytes>, Infallible>;

/// A body sent in chunks of ten bytes, with no declared length.
fn chunked(
    text: String,
) -> http_body_util::StreamBody<tokio_stream::Iter<std::vec::IntoIter<Chunk>>> {
    let chunks: Vec<Chunk> = text
        .into_bytes()
        .chunks(10)
        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    http_body_util::StreamBody::new(tokio_stream::iter(chunks))
}

#[tokio::test]
async fn the_container_endpoint_on_the_listener() {
    let running = start(None, query::Limits::default()).await;
    let mut c = client(TcpStream::connect(running.addr).await.unwrap()).await;
    let a = send(
        &mut c,
        "GET",
        "/v1/credentials",
        &[("Authorization", "container-token")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(json["AccessKeyId"], "ASIATESTTESTTEST0001");
    assert_eq!(json["RoleArn"], ROLE);
    let a = send(
        &mut c,
        "GET",
        "/v1/credentials",
        &[("Authorization", "container-tokex")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("\"Code\":\"AccessDenied\""), "{}", a.body);
    let a = send(
        &mut c,
        "POST",
        "/v1/credentials",
        &[("Authorization", "container-token")],
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    running.stop.cancel();
    running.task.await.unwrap();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sts/tls")
        .join(name)
}

#[tokio::test]
async fn the_listener_over_tls() {
    let tls = tls_acceptor(&fixture("cert.pem"), &fixture("key.pem")).unwrap();
    let running = start(Some(tls), query::Limits::default()).await;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("cert.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(running.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let mut c = client(stream).await;
    let a = send(
        &mut c,
        "POST",
        "/",
        &[FORM, SIGNED],
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    request_id_of(&a);

    // Plain HTTP on the TLS port gets no answer.
    let mut plain = TcpStream::connect(running.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    plain
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));

    running.stop.cancel();
    running.task.await.unwrap();
}

#[test]
fn bad_tls_files_are_named() {
    let missing = fixture("missing.pem");
    let e = tls_acceptor(&missing, &fixture("key.pem")).err().unwrap();
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = tls_acceptor(&fixture("key.pem"), &fixture("key.pem"))
        .err()
        .unwrap();
    assert!(matches!(e, TlsError::NoCertificate(_)), "{e}");
    let e = tls_acceptor(&fixture("cert.pem"), &fixture("cert.pem"))
        .err()
        .unwrap();
    assert!(matches!(e, TlsError::Key { .. }), "{e}");
}
