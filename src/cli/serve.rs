//! `warden serve`: the decision service. Settings come from flags, then environment
//! variables (`WARDEN_...`), then a TOML configuration file (`--config`), then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use std::net::ToSocketAddrs;
use warden::server::{AdminTokenConfig, Config, CredentialsConfig, FleetConfig, Listen, Server};
use warden::service::{Limits, ServiceConfig};
use warden::telemetry::{LogFormat, LogSink};

/// The flags. Every one is optional here so that the file and the defaults can fill in.
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Args {
    /// A TOML file with any of these settings, named as the long flags (`grpc-addr = ...`).
    #[arg(long, env = "WARDEN_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// The bundle directory [default: examples/org, from the working directory or the
    /// source tree the binary was built from].
    #[arg(long, env = "WARDEN_BUNDLE", value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// gRPC listen address, `HOST:PORT` or `unix:/PATH` [default: 127.0.0.1:50051].
    #[arg(long, env = "WARDEN_GRPC_ADDR", value_name = "ADDR")]
    grpc_addr: Option<String>,
    /// Admin HTTP address (/metrics, /healthz, /readyz), or `off` [default: 127.0.0.1:9464].
    #[arg(long, env = "WARDEN_ADMIN_ADDR", value_name = "ADDR")]
    admin_addr: Option<String>,
    /// tokio worker threads [default: one per core].
    #[arg(long, env = "WARDEN_WORKER_THREADS", value_name = "N")]
    worker_threads: Option<usize>,
    /// Watch the bundle directory and reload on change (SIGHUP always reloads) [default: true].
    #[arg(long, env = "WARDEN_WATCH", value_name = "BOOL")]
    watch: Option<bool>,
    /// Quiet time after a change before reloading [default: 200ms].
    #[arg(long, env = "WARDEN_DEBOUNCE", value_name = "DURATION")]
    debounce: Option<String>,
    /// The longest a change waits for quiet: files changing without pause still reload
    /// this often [default: 2s].
    #[arg(long, env = "WARDEN_MAX_DEBOUNCE", value_name = "DURATION")]
    max_debounce: Option<String>,
    /// Decisions kept in the cache, 0 for none [default: 100000].
    #[arg(long, env = "WARDEN_CACHE_SIZE", value_name = "N")]
    cache_size: Option<usize>,
    /// Largest request message in bytes [default: 1048576].
    #[arg(long, env = "WARDEN_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    max_message_bytes: Option<usize>,
    /// Context keys in one request, at most [default: 64].
    #[arg(long, env = "WARDEN_MAX_CONTEXT_ENTRIES", value_name = "N")]
    max_context_entries: Option<usize>,
    /// Values in one context list, at most [default: 64].
    #[arg(long, env = "WARDEN_MAX_CONTEXT_VALUES", value_name = "N")]
    max_context_values: Option<usize>,
    /// Requests decided at once; more are refused with RESOURCE_EXHAUSTED [default: 1024].
    #[arg(long, env = "WARDEN_MAX_CONCURRENCY", value_name = "N")]
    max_concurrency: Option<usize>,
    /// Deadline of one request; a caller's shorter `grpc-timeout` wins; longer than the
    /// revision wait [default: 2s].
    #[arg(long, env = "WARDEN_REQUEST_TIMEOUT", value_name = "DURATION")]
    request_timeout: Option<String>,
    /// How long a request waits for its `min_revision` before FAILED_PRECONDITION; shorter
    /// than the request timeout [default: 1s].
    #[arg(long, env = "WARDEN_REVISION_WAIT", value_name = "DURATION")]
    revision_wait: Option<String>,
    /// How long shutdown waits for requests in flight [default: 30s].
    #[arg(long, env = "WARDEN_DRAIN_TIMEOUT", value_name = "DURATION")]
    drain_timeout: Option<String>,
    /// gRPC connections served at once; more are closed as soon as accepted [default: 512].
    #[arg(long, env = "WARDEN_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Admin connections served at once; more are closed as soon as accepted [default: 64].
    #[arg(long, env = "WARDEN_ADMIN_MAX_CONNECTIONS", value_name = "N")]
    admin_max_connections: Option<usize>,
    /// Close a gRPC connection with no request in flight for this long, 0 never [default: 5m].
    #[arg(long, env = "WARDEN_IDLE_TIMEOUT", value_name = "DURATION")]
    idle_timeout: Option<String>,
    /// HTTP/2 PING interval on the gRPC port and TCP keepalive idle time on both, 0 for
    /// neither [default: 30s].
    #[arg(long, env = "WARDEN_KEEPALIVE_INTERVAL", value_name = "DURATION")]
    keepalive_interval: Option<String>,
    /// Close a gRPC connection whose PING goes unanswered this long [default: 10s].
    #[arg(long, env = "WARDEN_KEEPALIVE_TIMEOUT", value_name = "DURATION")]
    keepalive_timeout: Option<String>,
    /// Close an admin connection that has not sent a whole request head this long after it
    /// opened or after its previous response, 0 never [default: 5s].
    #[arg(long, env = "WARDEN_HEADER_READ_TIMEOUT", value_name = "DURATION")]
    header_read_timeout: Option<String>,
    /// Write every decision as a JSON line to this file, or `-` for standard output.
    #[arg(long, env = "WARDEN_DECISION_LOG", value_name = "FILE")]
    decision_log: Option<String>,
    /// Decision records queued before they are dropped (and counted) [default: 65536].
    #[arg(long, env = "WARDEN_DECISION_LOG_QUEUE", value_name = "N")]
    decision_log_queue: Option<usize>,
    /// A candidate bundle directory to decide beside the serving bundle, off the request
    /// path: its disagreements are counted (`warden_shadow_*`) and logged; it never
    /// changes an answer. Reloaded on change (with `--watch`) and on SIGHUP.
    #[arg(long, env = "WARDEN_SHADOW_BUNDLE", value_name = "DIR")]
    shadow_bundle: Option<PathBuf>,
    /// Decisions queued for the shadow bundle before they are dropped (and counted)
    /// [default: 1024].
    #[arg(long, env = "WARDEN_SHADOW_QUEUE", value_name = "N")]
    shadow_queue: Option<usize>,
    /// Log format [default: text].
    #[arg(long, env = "WARDEN_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `warden=debug` (RUST_LOG overrides) [default: info].
    #[arg(long, env = "WARDEN_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// The key ring that seals session tokens (`warden keyring init`): turns on warden's
    /// STS over gRPC and credentials (session tokens, SigV4) in Authorize and Check.
    #[arg(long, env = "WARDEN_KEY_RING", value_name = "FILE")]
    key_ring: Option<PathBuf>,
    /// The secrets store of users' access keys and MFA devices (`warden keys create`).
    #[arg(long, env = "WARDEN_SECRETS", value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// The AWS STS query API's listen address (`HOST:PORT`), for the AWS SDKs and CLI;
    /// needs `--key-ring` [default: off].
    #[arg(long, env = "WARDEN_STS_ADDR", value_name = "ADDR")]
    sts_addr: Option<String>,
    /// The STS listener's certificate chain (PEM): TLS with `--sts-tls-key`.
    #[arg(long, env = "WARDEN_STS_TLS_CERT", value_name = "FILE")]
    sts_tls_cert: Option<PathBuf>,
    /// The STS listener's private key (PEM).
    #[arg(long, env = "WARDEN_STS_TLS_KEY", value_name = "FILE")]
    sts_tls_key: Option<PathBuf>,
    /// Regions a SigV4 signature may be scoped to, comma-separated [default: us-east-1].
    #[arg(long, env = "WARDEN_REGIONS", value_name = "LIST")]
    regions: Option<String>,
    /// Serve the container credentials endpoint on the STS listener, handing out sessions
    /// of this role (its trust policy must allow `--container-service`).
    #[arg(long, env = "WARDEN_CONTAINER_ROLE", value_name = "ARN")]
    container_role: Option<String>,
    /// The service principal the sidecar assumes the container role as
    /// [default: ecs-tasks.amazonaws.com].
    #[arg(long, env = "WARDEN_CONTAINER_SERVICE", value_name = "NAME")]
    container_service: Option<String>,
    /// The container endpoint's authorization token, as the workload's
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN` sends it.
    #[arg(
        long,
        env = "WARDEN_CONTAINER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    container_token: Option<String>,
    /// A file holding the container endpoint's token (read on every request).
    #[arg(long, env = "WARDEN_CONTAINER_TOKEN_FILE", value_name = "FILE")]
    container_token_file: Option<PathBuf>,
    /// The container endpoint's path [default: /v1/credentials].
    #[arg(long, env = "WARDEN_CONTAINER_PATH", value_name = "PATH")]
    container_path: Option<String>,
    /// How long each container session lasts, 15m to the role's maximum [default: 60m].
    #[arg(long, env = "WARDEN_CONTAINER_SESSION", value_name = "DURATION")]
    container_session: Option<String>,
    /// Read the bundle from etcd instead of a directory: its endpoints, comma-separated
    /// (`http://127.0.0.1:2379`). Fleet mode: every sidecar on the same etcd serves the
    /// same revisions.
    #[arg(
        long,
        env = "WARDEN_ETCD",
        value_name = "URLS",
        conflicts_with = "bundle"
    )]
    etcd: Option<String>,
    /// The etcd key prefix of the fleet's state: documents at `PREFIX bundle/PATH`
    /// [default: /warden/].
    #[arg(long, env = "WARDEN_ETCD_PREFIX", value_name = "PREFIX")]
    etcd_prefix: Option<String>,
    /// After a change in etcd, how long further changes may join the same snapshot
    /// [default: 20ms]; changes already received always join.
    #[arg(long, env = "WARDEN_ETCD_DEBOUNCE", value_name = "DURATION")]
    etcd_debounce: Option<String>,
    /// Keep the last bundle published from etcd in DIR, and start from it when etcd does
    /// not answer at start-up (readiness then says `from_cache` and `stale`).
    #[arg(long, env = "WARDEN_ETCD_CACHE", value_name = "DIR")]
    etcd_cache: Option<PathBuf>,
    /// A file holding the admin API's bootstrap token (a secret of at least 16 bytes),
    /// which callers send as `authorization: Bearer TOKEN`; needs `--etcd` and
    /// `--admin-token-principal`.
    #[arg(long, env = "WARDEN_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// The principal the bootstrap token authenticates as
    /// (`arn:aws:iam::111111111111:user/warden-admin`): the policies must allow it.
    #[arg(long, env = "WARDEN_ADMIN_TOKEN_PRINCIPAL", value_name = "ARN")]
    admin_token_principal: Option<String>,
    /// Serve reverse queries (`warden.v1.Analysis`: who can, what can, can any), which
    /// disclose who has access; off by default (PERMISSION_DENIED).
    #[arg(long, env = "WARDEN_ANALYSIS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    analysis: Option<bool>,
    /// Load the bundle, report, and exit: 0 when it loads, 1 when it does not.
    #[arg(long)]
    #[serde(skip)]
    check: bool,
}

impl Args {
    /// Fills what the flags and environment left unset from `file`.
    fn or(self, file: Args) -> Args {
        Args {
            config: self.config,
            bundle: self.bundle.or(file.bundle),
            etcd: self.etcd.or(file.etcd),
            etcd_prefix: self.etcd_prefix.or(file.etcd_prefix),
            etcd_debounce: self.etcd_debounce.or(file.etcd_debounce),
            etcd_cache: self.etcd_cache.or(file.etcd_cache),
            admin_token_file: self.admin_token_file.or(file.admin_token_file),
            admin_token_principal: self.admin_token_principal.or(file.admin_token_principal),
            grpc_addr: self.grpc_addr.or(file.grpc_addr),
            admin_addr: self.admin_addr.or(file.admin_addr),
            worker_threads: self.worker_threads.or(file.worker_threads),
            watch: self.watch.or(file.watch),
            debounce: self.debounce.or(file.debounce),
            max_debounce: self.max_debounce.or(file.max_debounce),
            cache_size: self.cache_size.or(file.cache_size),
            max_message_bytes: self.max_message_bytes.or(file.max_message_bytes),
            max_context_entries: self.max_context_entries.or(file.max_context_entries),
            max_context_values: self.max_context_values.or(file.max_context_values),
            max_concurrency: self.max_concurrency.or(file.max_concurrency),
            request_timeout: self.request_timeout.or(file.request_timeout),
            revision_wait: self.revision_wait.or(file.revision_wait),
            drain_timeout: self.drain_timeout.or(file.drain_timeout),
            max_connections: self.max_connections.or(file.max_connections),
            admin_max_connections: self.admin_max_connections.or(file.admin_max_connections),
            idle_timeout: self.idle_timeout.or(file.idle_timeout),
            keepalive_interval: self.keepalive_interval.or(file.keepalive_interval),
            keepalive_timeout: self.keepalive_timeout.or(file.keepalive_timeout),
            header_read_timeout: self.header_read_timeout.or(file.header_read_timeout),
            decision_log: self.decision_log.or(file.decision_log),
            decision_log_queue: self.decision_log_queue.or(file.decision_log_queue),
            shadow_bundle: self.shadow_bundle.or(file.shadow_bundle),
            shadow_queue: self.shadow_queue.or(file.shadow_queue),
            log_format: self.log_format.or(file.log_format),
            log: self.log.or(file.log),
            key_ring: self.key_ring.or(file.key_ring),
            secrets: self.secrets.or(file.secrets),
            sts_addr: self.sts_addr.or(file.sts_addr),
            sts_tls_cert: self.sts_tls_cert.or(file.sts_tls_cert),
            sts_tls_key: self.sts_tls_key.or(file.sts_tls_key),
            regions: self.regions.or(file.regions),
            container_role: self.container_role.or(file.container_role),
            container_service: self.container_service.or(file.container_service),
            container_token: self.container_token.or(file.container_token),
            container_token_file: self.container_token_file.or(file.container_token_file),
            container_path: self.container_path.or(file.container_path),
            container_session: self.container_session.or(file.container_session),
            analysis: self.analysis.or(file.analysis),
            check: self.check,
        }
    }
}

/// Reads `250ms`, `2s`, `1m` or a bare number of seconds.
pub fn parse_duration(field: &str, text: &str) -> anyhow::Result<Duration> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| anyhow!("{field}: `{text}` is not a duration such as `250ms` or `2s`"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => bail!("{field}: `{text}` has unit `{unit}`; use `ms`, `s` or `m`"),
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| anyhow!("{field}: `{text}` is not a duration such as `250ms` or `2s`"))
}

/// The connection limits and timeouts. The defaults, and why:
/// - 512 gRPC connections: a sidecar's callers are a few local processes, each holding one
///   or a few multiplexed HTTP/2 connections, so 512 is far above honest use; and 512 + 64
///   admin + the reserve fits under 1024, the open-files soft limit many shells and
///   systemd services start with, so the default never trips the start-up warning.
/// - 64 admin connections: a scraper or two and the orchestrator's probes.
/// - 5m idle: a caller that calls at all keeps its connection (a reconnect costs a
///   handshake), while an abandoned one gives its descriptor back within minutes.
/// - 30s PING interval, 10s PING timeout: a half-open peer is found within 40s, at the
///   cost of one 17-byte frame per connection per 30s.
/// - 5s header read: a scraper or probe sends its request head as soon as it connects; a
///   slowloris or a silent connection holds an admin slot for 5s at most.
fn connections(args: &Args) -> anyhow::Result<warden::server::conn::Config> {
    let duration = |field: &str, v: &Option<String>, default: Duration| match v {
        Some(text) => parse_duration(field, text),
        None => Ok(default),
    };
    let off_if_zero = |d: Duration| (!d.is_zero()).then_some(d);
    let at_least_one = |field: &str, v: Option<usize>, default: usize| match v {
        Some(0) => bail!("{field}: `0` would refuse every connection; use at least 1"),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let keepalive_timeout = duration(
        "keepalive-timeout",
        &args.keepalive_timeout,
        Duration::from_secs(10),
    )?;
    if keepalive_timeout.is_zero() {
        let text = args.keepalive_timeout.as_deref().unwrap_or_default();
        bail!("keepalive-timeout: `{text}` leaves no time for an answer; use more than 0");
    }
    Ok(warden::server::conn::Config {
        max_grpc: at_least_one("max-connections", args.max_connections, 512)?,
        max_admin: at_least_one("admin-max-connections", args.admin_max_connections, 64)?,
        idle_timeout: off_if_zero(duration(
            "idle-timeout",
            &args.idle_timeout,
            Duration::from_secs(300),
        )?),
        keepalive_interval: off_if_zero(duration(
            "keepalive-interval",
            &args.keepalive_interval,
            Duration::from_secs(30),
        )?),
        keepalive_timeout,
        header_read_timeout: off_if_zero(duration(
            "header-read-timeout",
            &args.header_read_timeout,
            Duration::from_secs(5),
        )?),
    })
}

fn read_file(path: &Path) -> anyhow::Result<Args> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration `{}`", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("configuration `{}`: {e}", path.display()))
}

struct Settings {
    config: Config,
    /// `warden.v1.Analysis` is served (`--analysis`).
    analysis: bool,
    worker_threads: Option<usize>,
    log_format: LogFormat,
    log: String,
    check: bool,
}

fn settings(args: Args) -> anyhow::Result<Settings> {
    let args = match &args.config {
        Some(path) => {
            let file = read_file(path)?;
            args.or(file)
        }
        None => args,
    };
    let duration = |field: &str, v: &Option<String>, default: Duration| match v {
        Some(text) => parse_duration(field, text),
        None => Ok(default),
    };
    let grpc: Listen = args
        .grpc_addr
        .as_deref()
        .unwrap_or("127.0.0.1:50051")
        .parse()
        .map_err(|e| anyhow!("grpc-addr: {e}"))?;
    let admin = match args.admin_addr.as_deref().unwrap_or("127.0.0.1:9464") {
        "off" => None,
        text => match text
            .parse::<Listen>()
            .map_err(|e| anyhow!("admin-addr: {e}"))?
        {
            Listen::Tcp(addr) => Some(addr),
            Listen::Unix(_) => bail!("admin-addr: `{text}`: the admin server listens on TCP"),
        },
    };
    let defaults = Limits::default();
    let connections = connections(&args)?;
    let revision_wait = duration("revision-wait", &args.revision_wait, defaults.revision_wait)?;
    let request_timeout = duration(
        "request-timeout",
        &args.request_timeout,
        Duration::from_secs(2),
    )?;
    // The API promises FAILED_PRECONDITION when `min_revision` does not come in time: the
    // wait must end before the deadline does.
    if revision_wait >= request_timeout {
        bail!(
            "revision-wait ({revision_wait:?}) must be shorter than request-timeout \
             ({request_timeout:?}), so that a request waiting for a revision is answered \
             FAILED_PRECONDITION before its deadline"
        );
    }
    let debounce = duration("debounce", &args.debounce, Duration::from_millis(200))?;
    let max_debounce = duration("max-debounce", &args.max_debounce, Duration::from_secs(2))?;
    if max_debounce < debounce {
        bail!("max-debounce ({max_debounce:?}) must not be shorter than debounce ({debounce:?})");
    }
    let credentials = credentials(&args)?;
    let fleet = fleet(&args)?;
    let config = Config {
        credentials,
        fleet,
        bundle: args.bundle.unwrap_or_else(super::default_bundle),
        grpc,
        admin,
        watch: args.watch.unwrap_or(true),
        debounce,
        max_debounce,
        service: ServiceConfig {
            cache_size: args.cache_size.unwrap_or(100_000),
            limits: Limits {
                max_context_entries: args
                    .max_context_entries
                    .unwrap_or(defaults.max_context_entries),
                max_context_values: args
                    .max_context_values
                    .unwrap_or(defaults.max_context_values),
                max_concurrency: args.max_concurrency.unwrap_or(defaults.max_concurrency),
                revision_wait,
            },
        },
        request_timeout,
        max_message_bytes: args.max_message_bytes.unwrap_or(1 << 20),
        drain_timeout: duration(
            "drain-timeout",
            &args.drain_timeout,
            Duration::from_secs(30),
        )?,
        decision_log: args
            .decision_log
            .map(|s| s.parse::<LogSink>().unwrap_or_else(|never| match never {})),
        decision_log_queue: args.decision_log_queue.unwrap_or(65_536),
        shadow: args.shadow_bundle.map(|dir| warden::shadow::ShadowConfig {
            dir,
            queue: args.shadow_queue.unwrap_or(1024),
        }),
        connections,
    };
    Ok(Settings {
        config,
        analysis: args.analysis.unwrap_or(false),
        worker_threads: args.worker_threads,
        log_format: args.log_format.unwrap_or_default(),
        log: args.log.unwrap_or_else(|| "info".to_owned()),
        check: args.check,
    })
}

/// The fleet settings: an etcd source when `--etcd` is given.
fn fleet(args: &Args) -> anyhow::Result<Option<FleetConfig>> {
    let Some(urls) = &args.etcd else {
        if args.etcd_prefix.is_some() {
            bail!("etcd-prefix: given without etcd");
        }
        if args.etcd_debounce.is_some() {
            bail!("etcd-debounce: given without etcd");
        }
        if args.etcd_cache.is_some() {
            bail!("etcd-cache: given without etcd");
        }
        if args.admin_token_file.is_some() || args.admin_token_principal.is_some() {
            bail!("admin-token-file: the admin API serves fleet mode only (--etcd)");
        }
        return Ok(None);
    };
    if args.bundle.is_some() {
        bail!("etcd: the bundle comes from etcd or from a directory (--bundle), not both");
    }
    let endpoints: Vec<String> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if endpoints.is_empty() {
        bail!("etcd: no endpoint in `{urls}`");
    }
    let layout = warden::etcd::Layout::new(
        args.etcd_prefix
            .as_deref()
            .unwrap_or(warden::etcd::Layout::DEFAULT_PREFIX),
    )
    .map_err(|e| anyhow!("etcd-prefix: {e}"))?;
    let mut follow = warden::source::etcd::EtcdConfig::default();
    if let Some(text) = &args.etcd_debounce {
        follow.debounce = parse_duration("etcd-debounce", text)?;
    }
    let admin_token = match (&args.admin_token_file, &args.admin_token_principal) {
        (Some(file), Some(principal)) => Some(AdminTokenConfig {
            file: file.clone(),
            principal: principal.clone(),
        }),
        (None, None) => None,
        (Some(_), None) => bail!("admin-token-file: needs admin-token-principal"),
        (None, Some(_)) => bail!("admin-token-principal: needs admin-token-file"),
    };
    Ok(Some(FleetConfig {
        endpoints,
        layout,
        follow,
        cache: args.etcd_cache.clone(),
        admin_token,
    }))
}

/// The credentials settings: all of them need the key ring.
fn credentials(args: &Args) -> anyhow::Result<Option<CredentialsConfig>> {
    use warden::sts::authority::{AuthorityConfig, ContainerRole};
    use warden::sts::container::{
        ContainerConfig, DEFAULT_PATH, DEFAULT_REFRESH_BEFORE, TokenSource,
    };
    let Some(key_ring) = args.key_ring.clone() else {
        let needs = [
            ("secrets", args.secrets.is_some()),
            ("sts-addr", args.sts_addr.is_some()),
            ("container-role", args.container_role.is_some()),
        ];
        if let Some((flag, _)) = needs.iter().find(|(_, set)| *set) {
            bail!("{flag} needs a key ring (`--key-ring FILE`; `warden keyring init` makes one)");
        }
        return Ok(None);
    };
    let sts = match &args.sts_addr {
        Some(a) => Some(
            a.to_socket_addrs()
                .with_context(|| format!("sts-addr: `{a}` is not HOST:PORT"))?
                .next()
                .ok_or_else(|| anyhow!("sts-addr: `{a}` resolves to no address"))?,
        ),
        None => None,
    };
    let tls = match (&args.sts_tls_cert, &args.sts_tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => bail!("sts-tls-cert and sts-tls-key go together"),
    };
    let regions: Vec<String> = match &args.regions {
        Some(list) => list
            .split(',')
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect(),
        None => vec!["us-east-1".to_owned()],
    };
    if regions.is_empty() {
        bail!("regions: name at least one region");
    }
    let (container_role, container) = match &args.container_role {
        Some(role) => {
            if sts.is_none() {
                bail!(
                    "container-role needs the STS listener (`--sts-addr`), which serves the endpoint"
                );
            }
            let token = match (&args.container_token, &args.container_token_file) {
                (Some(t), None) => TokenSource::Value(t.clone()),
                (None, Some(f)) => TokenSource::File(f.clone()),
                (None, None) => bail!(
                    "container-role needs the endpoint's token (`--container-token` or `--container-token-file`)"
                ),
                (Some(_), Some(_)) => {
                    bail!("container-token and container-token-file exclude each other")
                }
            };
            let duration = match &args.container_session {
                Some(text) => parse_duration("container-session", text)?,
                None => Duration::from_secs(3600),
            };
            if duration < Duration::from_secs(900) {
                bail!("container-session: at least 15m, AWS's shortest session");
            }
            (
                Some(ContainerRole {
                    role_arn: role.clone(),
                    service: args
                        .container_service
                        .clone()
                        .unwrap_or_else(|| "ecs-tasks.amazonaws.com".to_owned()),
                    session_name: "warden-container".to_owned(),
                    duration,
                }),
                Some(ContainerConfig {
                    path: args
                        .container_path
                        .clone()
                        .unwrap_or_else(|| DEFAULT_PATH.to_owned()),
                    token,
                    // Never more than a third of the session: fresh credentials are
                    // re-issued well before botocore's own refresh window.
                    refresh_before: DEFAULT_REFRESH_BEFORE.min(duration / 3),
                }),
            )
        }
        None => (None, None),
    };
    Ok(Some(CredentialsConfig {
        key_ring,
        secrets: args.secrets.clone(),
        authority: AuthorityConfig {
            regions,
            container: container_role,
        },
        sts,
        tls,
        container,
    }))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let s = settings(args)?;
    if s.check
        && let Some(fleet) = &s.config.fleet
    {
        return check_etcd(fleet);
    }
    if s.check {
        // Read as the server reads it: bounded in time, so a file that blocks cannot hang
        // the check.
        let loaded = warden::bundle::read_dir_within(&s.config.bundle, warden::source::READ_LIMIT)
            .and_then(|files| warden::snapshot::Snapshot::load_files(&files, 1));
        return match loaded {
            Ok(snapshot) => {
                println!(
                    "bundle `{}` loads: {} statements",
                    s.config.bundle.display(),
                    snapshot.statement_count()
                );
                Ok(ExitCode::SUCCESS)
            }
            // No bundle to report on: the finding names the directory itself.
            Err(e) if e.is_about_the_bundle() => {
                eprintln!("warden: {e}");
                Ok(ExitCode::from(1))
            }
            Err(e) => {
                eprintln!("bundle `{}`: {e}", s.config.bundle.display());
                Ok(ExitCode::from(1))
            }
        };
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = s.worker_threads {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime
        .thread_name("warden")
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let served = runtime.block_on(serve(s));
    // Requests are drained by now; a bundle still compiling on a blocking thread is of no
    // use any more, and waiting for it could outlast the orchestrator's grace period.
    runtime.shutdown_timeout(Duration::from_millis(100));
    served
}

/// `--check` in fleet mode: the prefix read once at one revision and loaded as the
/// server would.
fn check_etcd(fleet: &FleetConfig) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let prefix = fleet.layout.bundle();
    let read = runtime.block_on(async {
        let etcd = warden::etcd::Etcd::new(&fleet.endpoints)?;
        let limit = fleet.follow.read_timeout;
        tokio::time::timeout(limit, etcd.read_prefix(&prefix, None))
            .await
            .unwrap_or_else(|_| {
                Err(warden::etcd::EtcdError::Call(format!(
                    "no answer within {limit:?}"
                )))
            })
    });
    let read = match read {
        Ok(read) => read,
        Err(e) => {
            eprintln!("warden: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let revision = u64::try_from(read.revision).unwrap_or(0);
    match warden::snapshot::Snapshot::load_files(&read.files, revision) {
        Ok(snapshot) => {
            println!(
                "etcd prefix `{prefix}` at revision {revision} loads: {} statements",
                snapshot.statement_count()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("etcd prefix `{prefix}` at revision {revision}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn serve(s: Settings) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    warden::telemetry::init_tracing(s.log_format, &s.log);
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let server = Server::bind(s.config).await?.with_analysis(s.analysis);
    let admin = server
        .admin_addr()
        .map_or_else(|| "off".to_owned(), |a: SocketAddr| a.to_string());
    let sts = server
        .sts_addr()
        .map_or_else(|| "off".to_owned(), |a: SocketAddr| a.to_string());
    // One line on standard output that scripts and tests wait for: the bound addresses.
    println!(
        "listening grpc={} admin={admin} sts={sts} revision={}",
        server.grpc_addr(),
        server.published().revision()
    );
    tracing::info!(grpc = server.grpc_addr(), admin, "serving");
    server
        .run(async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM"),
                _ = interrupt.recv() => tracing::info!("SIGINT"),
            }
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units() {
        assert_eq!(
            parse_duration("x", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("x", "2").unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_duration("x", "1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("x", "1m").unwrap(), Duration::from_secs(60));
        let e = parse_duration("debounce", "5h").unwrap_err().to_string();
        assert_eq!(e, "debounce: `5h` has unit `h`; use `ms`, `s` or `m`");
        assert!(parse_duration("x", "soon").is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: Args =
            toml::from_str("bundle = \"from-file\"\ncache-size = 7\ngrpc-addr = \"127.0.0.1:1\"\n")
                .unwrap();
        let flags = Args {
            cache_size: Some(3),
            ..Args::default()
        };
        let merged = flags.or(file);
        assert_eq!(merged.cache_size, Some(3));
        assert_eq!(merged.bundle, Some(PathBuf::from("from-file")));
        let s = settings(merged).unwrap();
        assert_eq!(s.config.grpc, Listen::Tcp("127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn connection_settings_read_from_the_file_with_zero_for_off() {
        let file: Args = toml::from_str(
            "max-connections = 7\nadmin-max-connections = 3\nidle-timeout = \"0\"\n\
             keepalive-interval = \"1m\"\nheader-read-timeout = \"250ms\"\n",
        )
        .unwrap();
        let c = settings(Args::default().or(file))
            .unwrap()
            .config
            .connections;
        assert_eq!((c.max_grpc, c.max_admin), (7, 3));
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.keepalive_interval, Some(Duration::from_secs(60)));
        assert_eq!(c.keepalive_timeout, Duration::from_secs(10));
        assert_eq!(c.header_read_timeout, Some(Duration::from_millis(250)));

        let defaults = settings(Args::default()).unwrap().config.connections;
        assert_eq!(defaults.idle_timeout, Some(Duration::from_secs(300)));
        let none = Args {
            max_connections: Some(0),
            ..Args::default()
        };
        let e = settings(none).err().unwrap().to_string();
        assert_eq!(
            e,
            "max-connections: `0` would refuse every connection; use at least 1"
        );
    }

    #[test]
    fn the_admin_token_reads_from_the_file_in_fleet_mode_only() {
        let file: Args = toml::from_str(
            "etcd = \"http://127.0.0.1:2379\"\nadmin-token-file = \"/run/token\"\n\
             admin-token-principal = \"arn:aws:iam::111111111111:user/warden-admin\"\n",
        )
        .unwrap();
        let fleet = settings(Args::default().or(file))
            .unwrap()
            .config
            .fleet
            .unwrap();
        let token = fleet.admin_token.unwrap();
        assert_eq!(token.file, PathBuf::from("/run/token"));
        assert_eq!(
            token.principal,
            "arn:aws:iam::111111111111:user/warden-admin"
        );

        let alone = Args {
            admin_token_file: Some("/run/token".into()),
            admin_token_principal: Some("arn:aws:iam::111111111111:user/a".into()),
            ..Args::default()
        };
        let e = settings(alone).err().unwrap().to_string();
        assert!(e.contains("fleet mode only"), "{e}");
    }

    #[test]
    fn an_unknown_file_setting_is_refused() {
        let e = toml::from_str::<Args>("cache_size = 3\n").unwrap_err();
        assert!(e.to_string().contains("cache_size"), "{e}");
    }
}
