//! OIDC web identity: tokens from the bundle's identity providers verified, and turned into
//! role sessions (`Snapshot::assume_role_with_web_identity`).
//!
//! A token is refused before any key is touched when it is too large, not three base64url
//! parts, or names an algorithm other than RS256, ES256 or EdDSA (so `none`, and HMAC with
//! a public key as its secret, never verify). Its `kid` picks one key of its provider's
//! set; then the signature, `iss`, `aud` and the times are checked. Verified tokens are
//! cached by provider, key set generation and token, so a key dropped from a set stops
//! verifying at once. Key sets outside the bundle are kept by a [`Verifier`]: fetched by a
//! background task ([`Verifier::spawn`]), and again (rate-limited) when a token names a
//! `kid` the set lacks.

pub mod jwks;
pub mod metrics;
pub mod mint;
pub mod provider;
pub mod refresh;
pub mod session;
pub mod token;

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use crate::snapshot::Snapshot;
use crate::source::Published;

pub use jwks::KeySet;
pub use metrics::OidcMetrics;
pub use provider::{KeySource, OidcProvider};
pub use refresh::RefreshConfig;
pub use session::{WebIdentity, WebIdentityDenied, check_session_name, web_identity_keys};
pub use token::Claims;

/// Why a token was refused: a stable code (a metric label, an answer's reason) and a
/// message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    /// `malformed`, `too_large`, `unsupported_alg`, `unknown_kid`, `bad_signature`,
    /// `wrong_issuer`, `wrong_audience`, `expired`, `not_yet_valid`, `unknown_provider`,
    /// `no_keys`.
    pub code: &'static str,
    pub message: String,
}

impl TokenError {
    pub fn new(code: &'static str, message: impl Into<String>) -> TokenError {
        TokenError {
            code,
            message: message.into(),
        }
    }
}

/// Verified tokens kept, at most.
pub const TOKEN_CACHE_ENTRIES: usize = 10_000;

/// The bytes at a token's end that find its place in the cache ([`Verifier::slot`]): 32
/// characters of base64url, 24 bytes of its signature.
const SLOT_TAIL: usize = 32;

/// Verifies tokens against the serving snapshot's providers, keeping their remote key sets
/// fresh and a cache of verified tokens.
pub struct Verifier {
    published: Arc<Published>,
    /// What fetches key sets: shared with the fetches an unknown `kid` starts, which may
    /// outlive the request that started them.
    fetcher: Fetcher,
    config: RefreshConfig,
    /// Verified tokens, found by a keyed hash of (provider, the token's length and end) and
    /// confirmed on a hit by the whole token, the provider's URL and client ids and the key set's generation
    /// ([`Verified::holds`]): a changed key set or provider misses, and the time claims are
    /// checked again at every hit. The hash's key is random per process, and a colliding
    /// entry is only a miss.
    cache: quick_cache::sync::Cache<u64, Arc<Verified>>,
    /// The key of `cache`'s hash: foldhash with a random seed (SipHash cost a cached
    /// token's request 2,000 instructions over its few hundred bytes).
    hasher: quick_cache::DefaultHashBuilder,
    /// Key sets fetched from files and URLs, by provider ARN. Written when a provider is
    /// first seen or its source changes; read briefly, never held across a fetch.
    remotes: RwLock<FxHashMap<String, Arc<refresh::Remote>>>,
    metrics: OidcMetrics,
}

/// Fetches remote key sets and records the outcome; cheap to clone.
#[derive(Clone)]
struct Fetcher {
    config: RefreshConfig,
    /// `None` when TLS could not be set up: URL sources then fail, and say why.
    client: Option<refresh::HttpClient>,
    metrics: OidcMetrics,
}

// === impl Fetcher ===

impl Fetcher {
    /// A fetch an unknown `kid` asks for: skipped when another fetch of the set ran while
    /// this one waited its turn, or when one was forced less than
    /// [`RefreshConfig::unknown_kid_gap`] ago.
    async fn fetch_forced(&self, arn: &str, remote: &refresh::Remote) {
        let seen = remote.state.lock().map(|s| s.attempts).unwrap_or(0);
        let _turn = remote.fetching.lock().await;
        let now = Instant::now();
        {
            let Ok(mut s) = remote.state.lock() else {
                return;
            };
            if s.attempts != seen {
                return;
            }
            if let Some(t) = s.last_forced
                && now.saturating_duration_since(t) < self.config.unknown_kid_gap
            {
                return;
            }
            s.last_forced = Some(now);
        }
        self.fetch_and_record(arn, remote, now).await;
    }

    async fn fetch_and_record(&self, arn: &str, remote: &refresh::Remote, now: Instant) {
        let result = refresh::fetch(&remote.source, &self.config, self.client.as_ref()).await;
        match remote.record(result, now, &self.config) {
            Ok(()) => {
                self.metrics.refresh(arn, "ok");
                tracing::debug!(provider = arn, "oidc: keys fetched");
            }
            Err(e) => {
                self.metrics.refresh(arn, "error");
                tracing::warn!(
                    provider = arn,
                    error = %crate::error::for_log(&e),
                    "oidc: keys not fetched; the last good set (if any) stays"
                );
            }
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with the default refresh schedule and no metrics.
    pub fn new(published: Arc<Published>) -> Verifier {
        Verifier::with_config(published, RefreshConfig::default(), OidcMetrics::detached())
    }

    pub fn with_config(
        published: Arc<Published>,
        config: RefreshConfig,
        metrics: OidcMetrics,
    ) -> Verifier {
        let client = match refresh::http_client() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "oidc: no https client; jwks_uri sources will fail");
                None
            }
        };
        Verifier {
            published,
            fetcher: Fetcher {
                config,
                client,
                metrics: metrics.clone(),
            },
            config,
            cache: quick_cache::sync::Cache::new(TOKEN_CACHE_ENTRIES),
            hasher: quick_cache::DefaultHashBuilder::default(),
            remotes: RwLock::new(FxHashMap::default()),
            metrics,
        }
    }

    /// Verifies `token` as one of `provider_arn`'s (a provider of `snapshot`), allowing
    /// `skew` of clock difference on its times.
    pub async fn verify(
        &self,
        snapshot: &Snapshot,
        provider_arn: &str,
        token: &str,
        skew: Duration,
        now: SystemTime,
    ) -> Result<Arc<Claims>, TokenError> {
        let result = self
            .verify_counted(snapshot, provider_arn, token, skew, now)
            .await;
        self.metrics.token(match &result {
            Ok(_) => "ok",
            Err(e) => e.code,
        });
        result
    }

    async fn verify_counted(
        &self,
        snapshot: &Snapshot,
        provider_arn: &str,
        token: &str,
        skew: Duration,
        now: SystemTime,
    ) -> Result<Arc<Claims>, TokenError> {
        // The size first: the cache lookup hashes and compares the whole token.
        if token.len() > token::MAX_TOKEN_BYTES {
            return Err(TokenError::new(
                "too_large",
                format!(
                    "a token of {} bytes; at most {}",
                    token.len(),
                    token::MAX_TOKEN_BYTES
                ),
            ));
        }
        // A token verified before is found without parsing it again: its provider and
        // the provider's current key set must be the ones it was verified with.
        let found = snapshot.oidc_provider(provider_arn).map(|p| {
            let remote = self.remote(p);
            let keys = self.current_keys(p, remote.as_ref());
            (p, remote, keys)
        });
        let slot = self.slot(provider_arn, token);
        if let Some((provider, _, Some(keys))) = &found
            && let Some(hit) = self.cache.get(&slot)
            && hit.holds(provider, keys.generation(), token)
        {
            if let Err(e) = hit.claims.check_time(skew, now) {
                if e.code == "expired" {
                    self.cache.remove(&slot);
                }
                return Err(e);
            }
            self.metrics.cache_hit();
            return Ok(hit.claims.clone());
        }
        // Refused before any key is used: size, shape, algorithm, `kid`.
        let parsed = token::parse(token)?;
        let Some((provider, remote, mut keys)) = found else {
            return Err(TokenError::new(
                "unknown_provider",
                format!("no OIDC provider `{provider_arn}` in the bundle"),
            ));
        };
        let known = keys.as_ref().is_some_and(|k| k.get(&parsed.kid).is_some());
        if !known
            && let Some(r) = &remote
            && self.may_force(r)
        {
            // A key rotated in since the last fetch (or no fetch yet): one more try,
            // rate-limited per provider, waited for only briefly. The fetch runs on its own
            // task and finishes even when this request stops waiting.
            let (fetcher, arn, r2) = (self.fetcher.clone(), provider.arn().to_owned(), r.clone());
            let fetch = tokio::spawn(async move { fetcher.fetch_forced(&arn, &r2).await });
            let _ = tokio::time::timeout(self.config.unknown_kid_wait, fetch).await;
            keys = r.keys();
        }
        let Some(keys) = keys else {
            return Err(TokenError::new(
                "no_keys",
                format!("the keys of `{provider_arn}` could not be fetched yet"),
            ));
        };
        let Some(key) = keys.get(&parsed.kid) else {
            return Err(TokenError::new(
                "unknown_kid",
                format!(
                    "no key `{}` in the key set of `{provider_arn}`",
                    parsed.kid.chars().take(64).collect::<String>()
                ),
            ));
        };
        token::verify_signature(&parsed, key)?;
        let claims = token::claims(&parsed, token)?;
        provider.check_claims(&claims)?;
        claims.check_time(skew, now)?;
        let claims = Arc::new(claims);
        self.cache.insert(
            slot,
            Arc::new(Verified {
                token: token.into(),
                url: provider.url().into(),
                client_ids: provider.client_ids().into(),
                generation: *keys.generation(),
                claims: claims.clone(),
            }),
        );
        Ok(claims)
    }

    /// Whether an unknown `kid` may start a fetch of `remote`'s set: not while one runs,
    /// nor within [`RefreshConfig::unknown_kid_gap`] of the last one it forced, so that
    /// tokens with made-up `kid`s start no task each (the fetch checks both again).
    fn may_force(&self, remote: &refresh::Remote) -> bool {
        let idle = remote.fetching.try_lock().is_ok();
        let recent = remote
            .state
            .lock()
            .ok()
            .and_then(|s| s.last_forced)
            .is_some_and(|t| {
                Instant::now().saturating_duration_since(t) < self.config.unknown_kid_gap
            });
        idle && !recent
    }

    /// Where a token of a provider sits in the cache: a keyed hash of the provider, the
    /// token's length and its last [`SLOT_TAIL`] bytes, the end of its signature, which
    /// differs between any two tokens a key signed. Not the whole token: that cost a hash of
    /// every byte of it on every request. A slot is only where to look: a hit is used only
    /// when its token is the very same ([`Verified::holds`] compares them whole), and only
    /// verified tokens are put in, so two tokens sharing a slot cost a verification, never
    /// a decision.
    fn slot(&self, provider_arn: &str, token: &str) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.hasher.build_hasher();
        provider_arn.hash(&mut h);
        let bytes = token.as_bytes();
        h.write_usize(bytes.len());
        bytes
            .get(bytes.len().saturating_sub(SLOT_TAIL)..)
            .unwrap_or(bytes)
            .hash(&mut h);
        h.finish()
    }

    /// `provider`'s key set as it is now: inline, or the last good one fetched.
    fn current_keys(
        &self,
        provider: &OidcProvider,
        remote: Option<&Arc<refresh::Remote>>,
    ) -> Option<Arc<KeySet>> {
        match remote {
            None => match provider.keys() {
                KeySource::Inline(set) => Some(set.clone()),
                _ => None,
            },
            Some(r) => r.keys(),
        }
    }

    /// The remote state of `provider`'s keys, made when first needed (or when a new
    /// bundle moved them); `None` for inline keys.
    fn remote(&self, provider: &OidcProvider) -> Option<Arc<refresh::Remote>> {
        if matches!(provider.keys(), KeySource::Inline(_)) {
            return None;
        }
        let describe = provider.keys().describe();
        if let Ok(map) = self.remotes.read()
            && let Some(r) = map.get(provider.arn())
            && r.source.describe() == describe
        {
            return Some(r.clone());
        }
        let mut map = self.remotes.write().ok()?;
        let entry = map.entry(provider.arn().to_owned()).or_insert_with(|| {
            Arc::new(refresh::Remote::new(
                provider.keys().clone(),
                Instant::now(),
            ))
        });
        if entry.source.describe() != describe {
            *entry = Arc::new(refresh::Remote::new(
                provider.keys().clone(),
                Instant::now(),
            ));
        }
        Some(entry.clone())
    }

    /// Fetches every remote key set of the serving snapshot whose time has come at `now`
    /// (its schedule, or its backoff after a failure), and forgets the sets of providers
    /// the snapshot no longer has. Returns how many it fetched.
    pub async fn refresh_due(&self, now: Instant) -> usize {
        let Some(snapshot) = self.published.current() else {
            return 0;
        };
        let mut due = Vec::new();
        for provider in snapshot.oidc_providers() {
            let Some(remote) = self.remote(provider) else {
                continue;
            };
            // A set never fetched is due whatever the clock says.
            let due_now = remote
                .state
                .lock()
                .map(|s| s.attempts == 0 || s.next_at <= now)
                .unwrap_or(true);
            if due_now {
                due.push((provider.arn().to_owned(), remote));
            }
        }
        if let Ok(mut map) = self.remotes.write() {
            map.retain(|arn, _| snapshot.oidc_provider(arn).is_some());
        }
        let mut fetched = 0;
        for (arn, remote) in due {
            // A fetch already under way (an unknown `kid`'s) does this one's work.
            let Ok(_turn) = remote.fetching.try_lock() else {
                continue;
            };
            self.fetcher.fetch_and_record(&arn, &remote, now).await;
            fetched += 1;
        }
        fetched
    }

    /// When the next remote set is due, if any.
    fn next_due(&self) -> Option<Instant> {
        let map = self.remotes.read().ok()?;
        map.values()
            .filter_map(|r| r.state.lock().ok().map(|s| s.next_at))
            .min()
    }

    /// Keeps the remote key sets fresh until `shutdown` completes: fetches what is due,
    /// then sleeps until the next is due (at most one interval), or until a new snapshot
    /// is published (it may name new providers).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut revisions = self.published.subscribe();
        tokio::pin!(shutdown);
        loop {
            let now = Instant::now();
            self.refresh_due(now).await;
            let next = self
                .next_due()
                .map_or(now + self.config.interval, |t| {
                    t.min(now + self.config.interval)
                })
                .max(Instant::now() + Duration::from_millis(10));
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(next) => {}
                changed = revisions.changed() => {
                    if changed.is_err() {
                        // No publisher any more: keep to the schedule.
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep_until(next) => {}
                        }
                    }
                }
            }
        }
    }

    /// Spawns [`Verifier::run`] on the current runtime.
    pub fn spawn(
        self: &Arc<Self>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().run(shutdown))
    }

    /// The current keys of `provider_arn` in the serving snapshot (inline, or the last
    /// good fetched set), for status pages and tests.
    pub fn keys(&self, provider_arn: &str) -> Option<Arc<KeySet>> {
        let snapshot = self.published.current()?;
        let provider = snapshot.oidc_provider(provider_arn)?;
        match provider.keys() {
            KeySource::Inline(set) => Some(set.clone()),
            _ => self.remote(provider)?.keys(),
        }
    }
}

/// A verified token in the cache, with what it was verified against.
struct Verified {
    token: Box<str>,
    url: Box<str>,
    client_ids: Box<[String]>,
    generation: [u8; 32],
    claims: Arc<Claims>,
}

impl Verified {
    /// Whether this entry is `token`, verified by `provider` as it is now, with the key set
    /// of this `generation`.
    fn holds(&self, provider: &OidcProvider, generation: &[u8; 32], token: &str) -> bool {
        *self.token == *token
            && self.generation == *generation
            && *self.url == *provider.url()
            && *self.client_ids == *provider.client_ids()
    }
}

#[cfg(test)]
mod tests;
