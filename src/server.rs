//! `warden serve` assembled: binds the listeners, loads the first snapshot, and runs the
//! gRPC server (Authorizer, health, reflection), the admin HTTP server and the bundle
//! watcher until shutdown, when in-flight requests drain before the process exits.
//! How connections are bounded (limits, idle timeout, keepalive) is in [`conn`].

pub mod conn;

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

use crate::ext_authz::Checker;
use crate::grpc::{self, Authorizer};
use crate::oidc::{RefreshConfig, Verifier};
use crate::server::conn::{Acceptor, Gate, TrackLayer};
use crate::service::{Service, ServiceConfig};
use crate::source::{DirectorySource, EtcdSource, Published, Publisher, Source, WatchConfig};
use crate::telemetry::{DecisionLog, LogSink, Telemetry};

/// Where the gRPC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    /// A Unix socket, for a sidecar that shares a volume rather than a network.
    Unix(PathBuf),
}

impl std::str::FromStr for Listen {
    type Err = String;
    /// `HOST:PORT`, or `unix:/PATH`.
    fn from_str(s: &str) -> Result<Listen, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("`{s}` names no socket path"));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        s.to_socket_addrs()
            .map_err(|e| format!("`{s}` is not HOST:PORT or unix:/PATH: {e}"))?
            .next()
            .map(Listen::Tcp)
            .ok_or_else(|| format!("`{s}` resolves to no address"))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Everything `warden serve` is told.
#[derive(Debug, Clone)]
pub struct Config {
    pub bundle: PathBuf,
    pub grpc: Listen,
    /// `None` turns the admin HTTP server off.
    pub admin: Option<SocketAddr>,
    /// Reload when the bundle's files change (SIGHUP always reloads).
    pub watch: bool,
    /// Quiet time after a change before reloading.
    pub debounce: Duration,
    /// The longest a change waits for quiet before the reload.
    pub max_debounce: Duration,
    pub service: ServiceConfig,
    /// The deadline of one request (a caller's shorter `grpc-timeout` wins); longer than the
    /// revision wait, so that a request waiting for `min_revision` is answered
    /// FAILED_PRECONDITION, as the API promises, before its deadline passes.
    pub request_timeout: Duration,
    /// Largest request message accepted.
    pub max_message_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    pub decision_log: Option<LogSink>,
    /// Records the decision log queues before it drops.
    pub decision_log_queue: usize,
    /// Connection limits and timeouts of both ports.
    pub connections: conn::Config,
    /// Credentials: STS, session tokens and SigV4 for `Authorize` and `Check`; `None`
    /// when the server verifies none (no key ring).
    pub credentials: Option<CredentialsConfig>,
    /// Fleet mode: the bundle comes from etcd (`bundle` unused); `None`: from the directory.
    pub fleet: Option<FleetConfig>,
    /// A candidate bundle decided beside the serving one, off the request path
    /// (`--shadow-bundle`); `None`: no shadow.
    pub shadow: Option<crate::shadow::ShadowConfig>,
}

/// Where a fleet's bundle lives: an etcd cluster and the key layout under its prefix.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `http://HOST:PORT`, one per member.
    pub endpoints: Vec<String>,
    pub layout: crate::etcd::Layout,
    /// How the prefix is followed (debounce, progress, backoff).
    pub follow: crate::source::etcd::EtcdConfig,
    /// Where the last published bundle is kept for a restart during an etcd outage.
    pub cache: Option<PathBuf>,
    /// The admin API's bootstrap token; `None`: only credentials authenticate.
    pub admin_token: Option<AdminTokenConfig>,
}

/// The admin API's bootstrap token: a file holding the secret, and the principal it
/// authenticates as (which the policies must still allow).
#[derive(Debug, Clone)]
pub struct AdminTokenConfig {
    pub file: PathBuf,
    pub principal: String,
}

/// How the server issues and verifies credentials.
#[derive(Debug, Clone)]
pub struct CredentialsConfig {
    /// The key ring that seals session tokens and the secrets store.
    pub key_ring: PathBuf,
    /// The secrets store (users' access keys, MFA devices); `None`: no long-term keys.
    pub secrets: Option<PathBuf>,
    pub authority: crate::sts::authority::AuthorityConfig,
    /// The STS listener (the AWS query API, and the container endpoint); `None`: STS is
    /// served over gRPC only.
    pub sts: Option<SocketAddr>,
    /// The STS listener's certificate and key (PEM): TLS when given.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The container credentials endpoint on the STS listener.
    pub container: Option<crate::sts::container::ContainerConfig>,
}

/// The credentials machinery of a bound server.
struct Credentials {
    authority: Arc<crate::sts::authority::Authority>,
    ring: Arc<crate::sts::keyring::KeyRingHandle>,
    secrets: Arc<crate::sts::secrets::SecretsHandle>,
    listener: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    container: Option<Arc<crate::sts::container::ContainerEndpoint>>,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot open the decision log: {0}")]
    DecisionLog(std::io::Error),
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error("the gRPC server failed")]
    Grpc(#[from] tonic::transport::Error),
    /// The key ring, the secrets store, the TLS files or the container endpoint.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The etcd endpoints or the admin token.
    #[error("fleet: {0}")]
    Fleet(String),
}

enum GrpcListener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A server with its listeners bound and its first snapshot loaded (or its failure
/// recorded), ready to run.
pub struct Server {
    config: Config,
    grpc: GrpcListener,
    grpc_addr: String,
    admin: Option<TcpListener>,
    published: Arc<Published>,
    telemetry: Arc<Telemetry>,
    service: Arc<Service>,
    source: Box<dyn Source>,
    publisher: Publisher,
    hangup: tokio::signal::unix::Signal,
    verifier: Arc<Verifier>,
    credentials: Option<Credentials>,
    /// The admin API (fleet mode): writes the bundle in etcd.
    fleet_admin: Option<Arc<crate::fleet::Admin>>,
    /// Reloads the shadow bundle (`--shadow-bundle`); stopped with the server.
    shadow_task: Option<tokio::task::JoinHandle<()>>,
    /// Whether `warden.v1.Analysis` answers reverse queries (`--analysis`); registered
    /// either way, so that a caller is told it is off.
    analysis: bool,
}

impl Server {
    /// Opens the bundle directory, binds the listeners and loads the bundle once. A
    /// directory that does not exist is an error; a bundle that fails to load is not: the
    /// server starts unready and serves once a load succeeds.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let watch = config.watch.then_some(WatchConfig {
            debounce: config.debounce,
            max_delay: config.max_debounce,
        });
        if let Some(fleet) = &config.fleet {
            let etcd = crate::etcd::Etcd::new(&fleet.endpoints)
                .map_err(|e| crate::source::SourceError::Etcd(e.to_string()))?;
            let cache = fleet.cache.clone().map(crate::source::etcd::Cache::new);
            let source = EtcdSource::open(etcd, &fleet.layout, fleet.follow, cache);
            return Server::bind_source(config, Box::new(source)).await;
        }
        let source = DirectorySource::open(config.bundle.clone(), watch)?;
        Server::bind_source(config, Box::new(source)).await
    }

    /// Like [`Server::bind`], serving what `source` yields (`config.bundle` unused).
    pub async fn bind_source(
        config: Config,
        mut source: Box<dyn Source>,
    ) -> Result<Server, ServeError> {
        // Before the first load, so that a SIGHUP never finds the default action (exit).
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| crate::source::SourceError::Signal(crate::error::cause(&e)))?;
        let bind_err = |addr: String| move |source| ServeError::Bind { addr, source };
        let (grpc, grpc_addr) = match &config.grpc {
            Listen::Tcp(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(bind_err(addr.to_string()))?;
                let local = l.local_addr().map_err(bind_err(addr.to_string()))?;
                (GrpcListener::Tcp(l), local.to_string())
            }
            Listen::Unix(path) => {
                // A socket file left by a previous run would make bind fail.
                if path.exists() {
                    let _ = std::fs::remove_file(path);
                }
                let l = UnixListener::bind(path).map_err(bind_err(config.grpc.to_string()))?;
                (GrpcListener::Unix(l, path.clone()), config.grpc.to_string())
            }
        };
        let admin = match config.admin {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(bind_err(addr.to_string()))?,
            ),
            None => None,
        };
        conn::check_open_files(&config.connections, admin.is_some());
        let telemetry = Arc::new(Telemetry::new());
        let published = Arc::new(Published::new());
        // The verifier keeps the OIDC providers' keys fresh while the server runs (for
        // Check and for AssumeRoleWithWebIdentity).
        let verifier = Arc::new(Verifier::with_config(
            published.clone(),
            RefreshConfig::default(),
            telemetry.oidc.clone(),
        ));
        let credentials = match &config.credentials {
            Some(c) => Some(bind_credentials(c, &published, &verifier).await?),
            None => None,
        };
        let log = match &config.decision_log {
            Some(sink) => Some(
                DecisionLog::start(sink, config.decision_log_queue, &telemetry.metrics)
                    .map_err(ServeError::DecisionLog)?,
            ),
            None => None,
        };
        let mut service = Service::new(published.clone(), telemetry.clone(), log, config.service);
        if let Some(c) = &credentials {
            service = service.with_authenticator(c.authority.clone());
        }
        let shadow_task = match &config.shadow {
            Some(shadow) => {
                let watch = config.watch.then_some(WatchConfig {
                    debounce: config.debounce,
                    max_delay: config.max_debounce,
                });
                let (shadow, task) =
                    crate::shadow::Shadow::start(shadow, watch, telemetry.shadow.clone()).await?;
                service = service.with_shadow(shadow);
                Some(task)
            }
            None => None,
        };
        let service = Arc::new(service);
        let fleet_admin = match &config.fleet {
            Some(fleet) => Some(Arc::new(bind_fleet_admin(fleet, &service)?)),
            None => None,
        };
        let publisher = Publisher::new(published.clone(), telemetry.clone());
        let name = source.describe();
        published.set_source(name.clone(), source.watch());
        if let Some(contact) = source.contact() {
            published.set_contact(contact);
        }
        let first = source.fetch().await;
        if let Ok(revision) = publisher.offer(&name, first).await {
            source.published(revision);
        }
        Ok(Server {
            config,
            grpc,
            grpc_addr,
            admin,
            published,
            telemetry,
            service,
            source,
            publisher,
            hangup,
            verifier,
            credentials,
            fleet_admin,
            shadow_task,
            analysis: false,
        })
    }

    /// Serves reverse queries (`warden.v1.Analysis`) when `on`: they disclose who has
    /// access, so they are off unless asked for.
    pub fn with_analysis(mut self, on: bool) -> Server {
        self.analysis = on;
        self
    }

    /// The STS listener's address actually bound.
    pub fn sts_addr(&self) -> Option<SocketAddr> {
        self.credentials
            .as_ref()
            .and_then(|c| c.listener.as_ref())
            .and_then(|l| l.local_addr().ok())
    }

    /// The gRPC address actually bound (`127.0.0.1:PORT` or `unix:/PATH`).
    pub fn grpc_addr(&self) -> &str {
        &self.grpc_addr
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn published(&self) -> &Arc<Published> {
        &self.published
    }

    /// Serves until `shutdown` completes, then stops taking requests, drains the ones in
    /// flight (up to the drain timeout) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let Server {
            config,
            grpc,
            grpc_addr: _,
            admin,
            published,
            telemetry,
            service,
            source,
            publisher,
            hangup,
            verifier,
            credentials,
            fleet_admin,
            shadow_task,
            analysis,
        } = self;
        let stop = CancellationToken::new();

        let upkeep = {
            let telemetry = telemetry.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = every.tick() => telemetry.run_upkeep(),
                    }
                }
            })
        };

        // Health follows the snapshot: NOT_SERVING until one is loaded.
        let services = Served {
            sts: credentials.is_some(),
            admin: fleet_admin.is_some(),
            analysis,
        };
        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, ServingStatus::NotServing, services).await;
        let health_task = {
            let health = health.clone();
            let mut revision = published.subscribe();
            let stop = stop.clone();
            tokio::spawn(async move {
                let ready = tokio::select! {
                    () = stop.cancelled() => false,
                    r = revision.wait_for(|r| *r > 0) => r.is_ok(),
                };
                if ready {
                    set_health(&health, ServingStatus::Serving, services).await;
                }
            })
        };

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(grpc::check::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(grpc::check::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        // Envoy's Check shares the service (snapshot, cache, admission, log, metrics).
        let refresh = verifier.spawn(stop.clone().cancelled_owned());
        let checker = Arc::new(Checker::new(service.clone(), verifier));
        let limits = &config.connections;
        let router = tonic::transport::Server::builder()
            .timeout(config.request_timeout)
            .http2_keepalive_interval(limits.keepalive_interval)
            .http2_keepalive_timeout(Some(limits.keepalive_timeout))
            .layer(TrackLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                grpc::analysis::Analysis::new(service.clone(), analysis)
                    .into_server(config.max_message_bytes),
            )
            .add_service(Authorizer::new(service).into_server(config.max_message_bytes))
            .add_service(
                grpc::check::Authorization::new(checker).into_server(config.max_message_bytes),
            )
            .add_optional_service(credentials.as_ref().map(|c| {
                grpc::sts::Sts::new(c.authority.clone(), crate::sts::query::Limits::default())
                    .into_server(config.max_message_bytes)
            }))
            .add_optional_service(
                fleet_admin.map(|admin| grpc::admin::Admin::new(admin).into_server()),
            );

        let (grpc_stop, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
        let grpc_signal = async {
            let _ = grpc_stopped.await;
        };
        let grpc_gate = Gate::new("grpc", limits.max_grpc, &telemetry.connections.grpc);
        let grpc_task = match grpc {
            GrpcListener::Tcp(l) => {
                let listener = conn::Tcp::new(l, limits);
                let incoming = Acceptor::new(listener, grpc_gate, limits.idle_timeout);
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, grpc_signal))
            }
            GrpcListener::Unix(l, path) => {
                let incoming = Acceptor::new(l, grpc_gate, limits.idle_timeout);
                let served = router.serve_with_incoming_shutdown(incoming, grpc_signal);
                tokio::spawn(async move {
                    let r = served.await;
                    let _ = std::fs::remove_file(path);
                    r
                })
            }
        };

        let admin_task = admin.map(|listener| {
            let app = crate::admin::router(published.clone(), telemetry.clone());
            let gate = Gate::new("admin", limits.max_admin, &telemetry.connections.admin);
            // No idle timeout of its own: hyper's header-read timeout covers the wait
            // between requests (see `admin::serve`).
            let acceptor = Acceptor::new(conn::Tcp::new(listener, limits), gate, None);
            tokio::spawn(crate::admin::serve(
                acceptor,
                app,
                limits.header_read_timeout,
                stop.clone(),
                config.drain_timeout,
            ))
        });

        let mut credential_tasks = Vec::new();
        if let Some(c) = credentials {
            credential_tasks.push(c.ring.spawn_reload(stop.clone()));
            credential_tasks.push(c.secrets.spawn_reload(stop.clone()));
            if let Some(listener) = c.listener {
                let app = Arc::new(crate::sts::http::StsHttp::new(
                    c.authority.clone(),
                    crate::sts::http::Config {
                        header_read_timeout: limits.header_read_timeout,
                        ..crate::sts::http::Config::default()
                    },
                    c.container,
                ));
                let gate = Gate::new("sts", limits.max_admin, &telemetry.connections.sts);
                let acceptor = Acceptor::new(conn::Tcp::new(listener, limits), gate, None);
                credential_tasks.push(tokio::spawn(crate::sts::http::serve(
                    acceptor,
                    app,
                    c.tls,
                    stop.clone(),
                    config.drain_timeout,
                )));
            }
        }

        let source_task = tokio::spawn(crate::source::run(source, publisher, hangup, stop.clone()));

        let mut grpc_task = grpc_task;
        let mut result = Ok(());
        let drain = tokio::select! {
            () = shutdown => {
                tracing::info!("shutting down: draining the requests in flight");
                true
            }
            r = &mut grpc_task => {
                if let Ok(Err(e)) = r {
                    result = Err(ServeError::Grpc(e));
                }
                false
            }
        };
        if drain {
            set_health(&health, ServingStatus::NotServing, services).await;
            let _ = grpc_stop.send(());
            match tokio::time::timeout(config.drain_timeout, &mut grpc_task).await {
                Ok(Ok(Err(e))) if result.is_ok() => result = Err(ServeError::Grpc(e)),
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(
                        "requests still in flight after {:?}: stopping anyway",
                        config.drain_timeout
                    );
                    grpc_task.abort();
                }
            }
        }
        // The source keeps reloading while requests drain (one may wait for a revision);
        // only now does everything else stop.
        stop.cancel();
        if let Some(t) = admin_task {
            let _ = t.await;
        }
        let _ = source_task.await;
        let _ = upkeep.await;
        let _ = health_task.await;
        let _ = refresh.await;
        if let Some(t) = shadow_task {
            t.abort();
        }
        for t in credential_tasks {
            let _ = t.await;
        }
        tracing::info!("stopped");
        result
    }
}

/// The admin API of a fleet: an etcd client (connected lazily) and the bootstrap token
/// read from its file, whose failure stops the start naming the file.
fn bind_fleet_admin(
    fleet: &FleetConfig,
    service: &Arc<Service>,
) -> Result<crate::fleet::Admin, ServeError> {
    let etcd =
        crate::etcd::Etcd::new(&fleet.endpoints).map_err(|e| ServeError::Fleet(e.to_string()))?;
    let token = match &fleet.admin_token {
        Some(t) => {
            let secret = crate::bundle::dir::read_file(&t.file).map_err(|e| {
                ServeError::Fleet(format!("admin token `{}`: {}", t.file.display(), e.message))
            })?;
            Some(
                crate::fleet::BootstrapToken::new(&secret, &t.principal).map_err(|e| {
                    ServeError::Fleet(format!("admin token `{}`: {e}", t.file.display()))
                })?,
            )
        }
        None => None,
    };
    Ok(crate::fleet::Admin::new(
        etcd,
        fleet.layout.clone(),
        service.clone(),
        token,
    ))
}

/// Loads the key ring and the secrets store, binds the STS listener and reads its TLS
/// files: any failure stops the start, naming the file and what is wrong.
async fn bind_credentials(
    c: &CredentialsConfig,
    published: &Arc<Published>,
    verifier: &Arc<Verifier>,
) -> Result<Credentials, ServeError> {
    use crate::sts::{authority, container, keyring, secrets};
    let failed = |e: &dyn std::fmt::Display| ServeError::Credentials(e.to_string());
    let ring = Arc::new(keyring::KeyRingHandle::load(&c.key_ring).map_err(|e| failed(&e))?);
    let secrets = Arc::new(match &c.secrets {
        Some(path) => secrets::SecretsHandle::load(path, ring.clone()).map_err(|e| failed(&e))?,
        None => secrets::SecretsHandle::new(secrets::SecretsStore::new(), None, ring.clone()),
    });
    let authority = Arc::new(authority::Authority::new(
        published.clone(),
        ring.clone(),
        secrets.clone(),
        verifier.clone(),
        c.authority.clone(),
    ));
    let listener = match c.sts {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: addr.to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let tls = match &c.tls {
        Some((cert, key)) => {
            Some(crate::sts::http::tls_acceptor(cert, key).map_err(|e| failed(&e))?)
        }
        None => None,
    };
    let container = match &c.container {
        Some(config) => Some(Arc::new(
            container::ContainerEndpoint::new(config.clone()).map_err(|e| failed(&e))?,
        )),
        None => None,
    };
    Ok(Credentials {
        authority,
        ring,
        secrets,
        listener,
        tls,
        container,
    })
}

/// Which of the optional services this server answers.
#[derive(Debug, Clone, Copy)]
struct Served {
    /// `warden.v1.Sts` (registered only with credentials configured).
    sts: bool,
    /// `warden.v1.Admin` (registered only in fleet mode).
    admin: bool,
    /// `warden.v1.Analysis` answers (registered either way; without `--analysis` every
    /// call is PERMISSION_DENIED).
    analysis: bool,
}

/// Every registered service's health: `status`, except `warden.v1.Analysis` without
/// `--analysis`, which is never SERVING. A service not registered is not reported (a
/// health check for it is NOT_FOUND).
async fn set_health(
    health: &tonic_health::server::HealthReporter,
    status: ServingStatus,
    served: Served,
) {
    health.set_service_status("", status).await;
    health.set_service_status(grpc::SERVICE_NAME, status).await;
    health
        .set_service_status(grpc::check::SERVICE_NAME, status)
        .await;
    if served.sts {
        health
            .set_service_status(grpc::sts::SERVICE_NAME, status)
            .await;
    }
    if served.admin {
        health
            .set_service_status(grpc::admin::SERVICE_NAME, status)
            .await;
    }
    let analysis = if served.analysis {
        status
    } else {
        ServingStatus::NotServing
    };
    health
        .set_service_status(grpc::analysis::SERVICE_NAME, analysis)
        .await;
}
