//! Keys that live outside the bundle (`jwks_file`, `jwks_uri`): fetched within a size
//! limit and a timeout, refreshed on a schedule, retried with exponential backoff after a
//! failure, and never dropped for a failed fetch: the last good set keeps serving.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::jwks::{self, KeySet, Mode};
use super::provider::KeySource;

/// How remote key sets are kept fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshConfig {
    /// Between two successful fetches of one set.
    pub interval: Duration,
    /// The first retry after a failure; doubled at each further failure...
    pub backoff_min: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
    /// One fetch, connection to last byte.
    pub timeout: Duration,
    /// Bytes in a fetched set, at most.
    pub max_bytes: usize,
    /// A token naming an unknown `kid` fetches its provider's set again, at most once in
    /// this long (a key rotated in before the schedule's next fetch), so that tokens with
    /// made-up `kid`s cannot make warden hammer the identity provider.
    pub unknown_kid_gap: Duration,
    /// How long a request whose token names an unknown `kid` waits for that fetch before it
    /// is answered `unknown_kid`; the fetch goes on in the background. Well under Envoy's
    /// ext_authz timeout, so that a slow or hanging key server turns into a deny, never a
    /// timeout that `failure_mode_allow` would pass.
    pub unknown_kid_wait: Duration,
}

impl Default for RefreshConfig {
    fn default() -> RefreshConfig {
        RefreshConfig {
            interval: Duration::from_secs(600),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            max_bytes: 256 * 1024,
            unknown_kid_gap: Duration::from_secs(30),
            unknown_kid_wait: Duration::from_millis(100),
        }
    }
}

impl RefreshConfig {
    /// The wait before retrying after `failures` failures in a row (at least one).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.backoff_min
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// The HTTP(S) client of key fetches: rustls on ring with the Mozilla roots; it follows
/// no redirect.
pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub(crate) fn http_client() -> Result<HttpClient, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("tls set-up: {e}"))?
        // Plain http is allowed by the bundle for loopback addresses only.
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// One remote set's state.
#[derive(Debug)]
pub(crate) struct Remote {
    pub source: KeySource,
    pub state: Mutex<RemoteState>,
    /// One fetch at a time per set: concurrent `unknown_kid` tokens share one.
    pub fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
pub(crate) struct RemoteState {
    /// The last good set; `None` until a fetch succeeds.
    pub keys: Option<Arc<KeySet>>,
    /// Failures since the last success.
    pub failures: u32,
    /// When the schedule fetches it next.
    pub next_at: Instant,
    /// The last fetch an unknown `kid` asked for.
    pub last_forced: Option<Instant>,
    /// Fetches done (successful or not): a waiter that finds it moved knows another
    /// fetch ran meanwhile.
    pub attempts: u64,
    pub last_error: Option<String>,
}

impl Remote {
    pub fn new(source: KeySource, now: Instant) -> Remote {
        Remote {
            source,
            state: Mutex::new(RemoteState {
                keys: None,
                failures: 0,
                next_at: now,
                last_forced: None,
                attempts: 0,
                last_error: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.state.lock().ok().and_then(|s| s.keys.clone())
    }

    /// Records a fetch's result at `now`: a good set replaces the old one; a failure keeps
    /// it and backs off.
    pub fn record(
        &self,
        result: Result<KeySet, String>,
        now: Instant,
        config: &RefreshConfig,
    ) -> Result<(), String> {
        let Ok(mut s) = self.state.lock() else {
            return Err("key state poisoned".to_owned());
        };
        s.attempts += 1;
        match result {
            Ok(set) => {
                s.keys = Some(Arc::new(set));
                s.failures = 0;
                s.next_at = now + config.interval;
                s.last_error = None;
                Ok(())
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                s.next_at = now + config.backoff(s.failures);
                s.last_error = Some(e.clone());
                Err(e)
            }
        }
    }
}

/// Fetches and reads a set, within the size limit and the timeout.
pub(crate) async fn fetch(
    source: &KeySource,
    config: &RefreshConfig,
    client: Option<&HttpClient>,
) -> Result<KeySet, String> {
    let bytes = match tokio::time::timeout(config.timeout, read(source, config, client)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(format!(
                "no answer within {:?} from {}",
                config.timeout,
                source.describe()
            ));
        }
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not JSON: {e}", source.describe()))?;
    jwks::parse(&value, Mode::Lenient).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("{}: {}", source.describe(), list.join("; "))
    })
}

async fn read(
    source: &KeySource,
    config: &RefreshConfig,
    client: Option<&HttpClient>,
) -> Result<Vec<u8>, String> {
    match source {
        KeySource::Inline(_) => Err("inline keys are not fetched".to_owned()),
        KeySource::File(path) => read_file(path, config.max_bytes).await,
        KeySource::Uri(uri) => {
            let client = client.ok_or_else(|| "no HTTP client".to_owned())?;
            get(client, uri, config.max_bytes).await
        }
    }
}

async fn read_file(path: &Path, max: usize) -> Result<Vec<u8>, String> {
    let shown = path.display();
    // A regular file only: a FIFO would block the read.
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("`{shown}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{shown}` is not a regular file"));
    }
    if meta.len() > max as u64 {
        return Err(format!("`{shown}` has {} bytes; at most {max}", meta.len()));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("`{shown}`: {e}"))?;
    let mut out = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut out)
        .await
        .map_err(|e| format!("`{shown}`: {e}"))?;
    if out.len() > max {
        return Err(format!("`{shown}` has more than {max} bytes"));
    }
    Ok(out)
}

async fn get(client: &HttpClient, uri: &str, max: usize) -> Result<Vec<u8>, String> {
    let request = http::Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, "warden")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("`{uri}`: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("`{uri}`: {}", crate::error::report(&e)))?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("`{uri}` answered {}", response.status()));
    }
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(format!("`{uri}` sends more than {max} bytes"));
    }
    let body = Limited::new(response.into_body(), max)
        .collect()
        .await
        .map_err(|e| format!("`{uri}`: {e}"))?;
    Ok(body.to_bytes().to_vec())
}
