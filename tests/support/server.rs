//! The real `warden serve` for the black-box tests: started on loopback port 0 with its own
//! copy of the example bundle (which a test may edit while it runs), read through its
//! `listening grpc=... admin=...` line, asked over gRPC and its admin port, and killed when
//! dropped. Included by each test file that needs it (`#[path]`), so that one helper
//! serves them all.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use warden::grpc::pb::authorizer_client::AuthorizerClient;

/// How long a test waits for something that should happen in a fraction of it: an upper
/// bound for a loaded machine, never a measure of speed.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running `warden serve`.
pub struct Server {
    pub child: Child,
    pub grpc: String,
    pub admin: String,
    /// The STS query API listener's address (`--sts-addr`); `None` when it is off.
    pub sts: Option<String>,
    pub bundle: tempfile::TempDir,
    stderr: PathBuf,
}

impl Server {
    /// Starts the binary with waits and deadlines long enough for a loaded machine (a test
    /// never waits them out unless it means to).
    pub fn start(extra: &[&str]) -> Server {
        Server::start_in(example_copy(), extra)
    }

    /// Like [`Server::start`], on the bundle in `bundle`.
    pub fn start_in(bundle: tempfile::TempDir, extra: &[&str]) -> Server {
        let defaults = [("--revision-wait", "20s"), ("--request-timeout", "30s")];
        Server::launch(bundle, extra, &defaults, None)
    }

    /// Like [`Server::start`], in fleet mode: the bundle from etcd at `endpoint` under
    /// `prefix` (`--etcd`, `--etcd-prefix`) instead of a directory.
    pub fn start_etcd(endpoint: &str, prefix: &str, extra: &[&str]) -> Server {
        let defaults = [
            ("--revision-wait", "20s"),
            ("--request-timeout", "30s"),
            ("--etcd", endpoint),
            ("--etcd-prefix", prefix),
        ];
        Server::launch(tempfile::tempdir().unwrap(), extra, &defaults, None)
    }

    /// Like [`Server::start`], with the shipped waits and deadlines.
    pub fn start_as_shipped(extra: &[&str]) -> Server {
        Server::launch(example_copy(), extra, &[], None)
    }

    /// Like [`Server::start_as_shipped`], under an open-files limit of `nofile`.
    pub fn start_with_open_files(nofile: Option<u32>, extra: &[&str]) -> Server {
        Server::launch(example_copy(), extra, &[], nofile)
    }

    fn launch(
        bundle: tempfile::TempDir,
        extra: &[&str],
        defaults: &[(&str, &str)],
        nofile: Option<u32>,
    ) -> Server {
        let stderr = bundle.path().with_extension("stderr");
        let bin = env!("CARGO_BIN_EXE_warden");
        let mut command = match nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut args: Vec<&str> = vec!["serve"];
        for (flag, value) in [
            ("--grpc-addr", "127.0.0.1:0"),
            ("--admin-addr", "127.0.0.1:0"),
        ]
        .iter()
        .chain(defaults)
        {
            if !extra.contains(flag) {
                args.extend([*flag, *value]);
            }
        }
        let fleet = args.contains(&"--etcd");
        if !fleet {
            if !extra.contains(&"--debounce") {
                args.extend(["--debounce", "50ms"]);
            }
            args.push("--bundle");
        }
        let mut child = command
            .args(&args)
            .args(if fleet { None } else { Some(bundle.path()) })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| {
                    panic!(
                        "no `{name}` in {line:?}; stderr:\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    )
                })
                .to_owned()
        };
        let (grpc, admin) = (field("grpc="), field("admin="));
        let sts = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("sts="))
            .filter(|a| *a != "off")
            .map(str::to_owned);
        Server {
            child,
            grpc,
            admin,
            sts,
            bundle,
            stderr,
        }
    }

    pub async fn channel(&self) -> Channel {
        warden::grpc::client::connect(&self.grpc, Duration::from_secs(5))
            .await
            .unwrap()
    }

    pub async fn client(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::new(self.channel().await)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.bundle.path().join(rel)
    }

    /// Writes a bundle file the way a deploy would: to a temporary name, then renamed.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        let tmp = path.with_extension("tmp-write");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// GET on the admin port: (status code, body), or `None` when the connection was
    /// closed without an answer (the port at its limit).
    pub async fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(&self.admin).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: warden\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_owned()))
    }

    /// GET on the admin port, which must answer.
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .await
            .unwrap_or_else(|| panic!("the admin port did not answer {path}"))
    }

    /// `/metrics`, asked until the admin port answers (it may be at its limit).
    pub async fn metrics(&self) -> Metrics {
        for _ in 0..100 {
            if let Some((200, body)) = self.try_get("/metrics").await {
                return Metrics::parse(&body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the admin port never answered /metrics");
    }

    pub async fn readyz(&self) -> (u16, serde_json::Value) {
        let (code, body) = self.get("/readyz").await;
        (code, serde_json::from_str(&body).unwrap())
    }

    /// Waits until `/readyz` satisfies `done`, for at most [`PATIENCE`].
    pub async fn until_ready(&self, what: &str, done: impl Fn(u16, &serde_json::Value) -> bool) {
        let give_up = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < give_up {
            let (code, body) = self.readyz().await;
            if done(code, &body) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("readiness never showed {what}: {:?}", self.readyz().await);
    }

    /// Waits until the metric `series` satisfies `done`, for at most [`PATIENCE`].
    pub async fn until_metric(&self, series: &str, done: impl Fn(f64) -> bool) -> f64 {
        let give_up = tokio::time::Instant::now() + PATIENCE;
        loop {
            let value = self.metrics().await.get(series);
            if done(value) {
                return value;
            }
            if tokio::time::Instant::now() > give_up {
                panic!("`{series}` stayed at {value}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the server is deciding `n` requests.
    pub async fn until_in_flight(&self, n: f64) {
        self.until_metric("warden_requests_in_flight", |v| v == n)
            .await;
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh copy of the example bundle.
pub fn example_copy() -> tempfile::TempDir {
    let bundle = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/org"),
        bundle.path(),
    );
    bundle
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Prometheus text, parsed: `name{labels}` to value.
pub struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut m = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad sample {line:?}"));
            m.insert(series.to_owned(), value);
        }
        Metrics(m)
    }

    pub fn get(&self, series: &str) -> f64 {
        *self
            .0
            .get(series)
            .unwrap_or_else(|| panic!("no series `{series}` in {:#?}", self.0.keys()))
    }
}

// === requests ===

pub const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
pub const BOB: &str = "arn:aws:iam::333333333333:user/engineering/bob";
pub const ORDER: &str = "arn:aws:orders:us-east-1:333333333333:order/42";
pub const READER: &str = "accounts/333333333333/policies/ReportsReader.json";

pub fn ask(principal: &str, action: &str, resource: &str) -> warden::grpc::pb::AuthorizeRequest {
    warden::grpc::pb::AuthorizeRequest {
        principal: principal.into(),
        action: action.into(),
        resource: resource.into(),
        ..Default::default()
    }
}

/// The example's `ReportsReader` policy, allowing `actions` on every resource.
pub fn reader_policy(actions: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ReadOrders", "Effect": "Allow", "Action": actions, "Resource": "*"}]
    })
    .to_string()
}

/// The status gRPC health reports for `service` on `channel` (NOT_FOUND: a service it does
/// not know).
pub async fn health(
    channel: Channel,
    service: &str,
) -> Result<tonic_health::pb::health_check_response::ServingStatus, tonic::Status> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let h = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await?
        .into_inner();
    Ok(h.status())
}
