//! A real etcd (Debian's `etcd-server`, installed by `.ci/run`) for the fleet tests: started
//! on free loopback ports in a temporary directory with fast election settings, stopped and
//! started again on the same data (an outage), and killed when dropped. Included by each
//! test file that needs it (`#[path]`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running (or stopped) single-member etcd cluster.
pub struct Etcd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`, what warden's `--etcd` takes.
    pub endpoint: String,
    client_port: u16,
    peer_port: u16,
    /// Flags after the defaults (the last of a repeated flag wins).
    extra: Vec<String>,
}

/// A port free now on loopback (the listener is dropped; etcd takes it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The etcd binary: `$WARDEN_TEST_ETCD`, else `etcd` on the PATH.
pub fn binary() -> PathBuf {
    std::env::var_os("WARDEN_TEST_ETCD").map_or_else(|| PathBuf::from("etcd"), PathBuf::from)
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub fn start() -> Etcd {
        Etcd::start_with(&[])
    }

    /// Starts etcd with `extra` flags after the defaults (`--max-txn-ops 128`: etcd's own
    /// default limit back).
    pub fn start_with(extra: &[&str]) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (client_port, peer_port) = (free_port(), free_port());
        let mut etcd = Etcd {
            child: None,
            dir,
            endpoint: format!("http://127.0.0.1:{client_port}"),
            client_port,
            peer_port,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        etcd.resume();
        etcd
    }

    /// Starts the stopped etcd again on its data and ports, and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is running");
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .unwrap();
        let child = Command::new(binary())
            .args(["--name", "warden-test"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("warden-test={peer}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            // `warden push` writes a whole bundle in one transaction: more operations and
            // bytes than etcd's defaults (128, 1.5 MiB) for the large synthetic bundles.
            .args(["--max-txn-ops", "200000", "--max-request-bytes", "67108864"])
            .args(["--log-level", "warn"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start etcd ({}): {e}; install Debian's etcd-server (.ci/run does)",
                    binary().display()
                )
            });
        self.child = Some(child);
        self.until_up();
    }

    /// Stops etcd (SIGKILL: an outage, not a shutdown); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until etcd serves reads, for at most 20 s.
    fn until_up(&mut self) {
        let give_up = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self
                .etcdctl(&["endpoint", "health"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("etcd exited ({status}): {}", self.log());
            }
            assert!(
                std::time::Instant::now() < give_up,
                "etcd never became healthy: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `etcdctl` against this cluster (API v3), output discarded unless asked for.
    pub fn etcdctl(&self, args: &[&str]) -> Command {
        let mut c = Command::new(
            binary()
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("etcdctl"), |p| p.join("etcdctl")),
        );
        c.env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint, "--dial-timeout", "1s"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// `etcdctl ARGS`, which must succeed: its standard output.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self
            .etcdctl(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `ops` in one transaction, which must succeed: its revision.
#[allow(dead_code, reason = "not every file that includes this helper writes")]
pub async fn write(
    client: &warden::etcd::Etcd,
    ops: Vec<warden::etcd::pb::etcdserverpb::RequestOp>,
) -> i64 {
    let r = client
        .txn(warden::etcd::pb::etcdserverpb::TxnRequest {
            success: ops,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(r.succeeded);
    r.header.unwrap().revision
}
