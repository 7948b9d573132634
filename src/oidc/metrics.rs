//! The OIDC metrics, in the telemetry's recorder: token verifications by result
//! (`warden_oidc_tokens_total{result}`, the error codes and `ok`), token cache hits, and
//! key set fetches by provider and result (`warden_oidc_jwks_refresh_total{provider,
//! result}`). Token handles are created once; a provider's are made the first time it is
//! fetched (its ARN is the one label not known in advance) and kept.

use std::sync::{Arc, Mutex};

use metrics::{Counter, Recorder};
use rustc_hash::FxHashMap;

/// Every result a token verification counts under.
pub const TOKEN_RESULTS: [&str; 13] = [
    "ok",
    "malformed",
    "too_large",
    "unsupported_alg",
    "unknown_kid",
    "bad_signature",
    "wrong_issuer",
    "wrong_audience",
    "expired",
    "not_yet_valid",
    "unknown_provider",
    "no_keys",
    "internal",
];

/// Handles of the OIDC metrics; cheap to clone.
#[derive(Clone)]
pub struct OidcMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where a provider's handles are registered when first needed; `None`: not recorded.
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
    tokens: Box<[(&'static str, Counter)]>,
    cache_hits: Counter,
    refresh: Mutex<FxHashMap<(String, &'static str), Counter>>,
}

impl std::fmt::Debug for OidcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcMetrics")
            .field("recorded", &self.inner.recorder.is_some())
            .finish()
    }
}

impl OidcMetrics {
    /// Handles that record nothing (a verifier without telemetry: tools, tests).
    pub fn detached() -> OidcMetrics {
        OidcMetrics {
            inner: Arc::new(Inner {
                recorder: None,
                tokens: TOKEN_RESULTS
                    .iter()
                    .map(|r| (*r, Counter::noop()))
                    .collect(),
                cache_hits: Counter::noop(),
                refresh: Mutex::new(FxHashMap::default()),
            }),
        }
    }

    /// Registers the metrics with `recorder` (the telemetry's).
    pub fn register(recorder: Arc<dyn Recorder + Send + Sync>) -> OidcMetrics {
        let (tokens, cache_hits) = metrics::with_local_recorder(&*recorder, || {
            metrics::describe_counter!(
                "warden_oidc_tokens_total",
                "OIDC tokens verified, by result (`ok` or the error code)"
            );
            metrics::describe_counter!(
                "warden_oidc_token_cache_hits_total",
                "OIDC tokens answered from the token cache"
            );
            metrics::describe_counter!(
                "warden_oidc_jwks_refresh_total",
                "Fetches of a provider's key set, by provider ARN and result"
            );
            let tokens: Box<[(&'static str, Counter)]> = TOKEN_RESULTS
                .iter()
                .map(|r| {
                    (
                        *r,
                        metrics::counter!("warden_oidc_tokens_total", "result" => *r),
                    )
                })
                .collect();
            (
                tokens,
                metrics::counter!("warden_oidc_token_cache_hits_total"),
            )
        });
        OidcMetrics {
            inner: Arc::new(Inner {
                recorder: Some(recorder),
                tokens,
                cache_hits,
                refresh: Mutex::new(FxHashMap::default()),
            }),
        }
    }

    /// Counts one verification ending with `result` (`ok` or an error code).
    pub fn token(&self, result: &str) {
        let found = self.inner.tokens.iter().find(|(r, _)| *r == result);
        // A code not in the list counts as `internal`, never silently.
        let c = found.or_else(|| self.inner.tokens.iter().find(|(r, _)| *r == "internal"));
        if let Some((_, c)) = c {
            c.increment(1);
        }
    }

    pub fn cache_hit(&self) {
        self.inner.cache_hits.increment(1);
    }

    /// Counts one fetch of `provider`'s set: `ok` or `error`.
    pub fn refresh(&self, provider: &str, result: &'static str) {
        let Some(recorder) = &self.inner.recorder else {
            return;
        };
        let Ok(mut map) = self.inner.refresh.lock() else {
            return;
        };
        let key = (provider.to_owned(), result);
        let counter = map.entry(key).or_insert_with(|| {
            metrics::with_local_recorder(&**recorder, || {
                metrics::counter!(
                    "warden_oidc_jwks_refresh_total",
                    "provider" => provider.to_owned(),
                    "result" => result
                )
            })
        });
        counter.increment(1);
    }
}
