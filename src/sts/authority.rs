//! The authority: warden's STS behind both of its faces, and the verifier of the
//! credentials `Authorize` and `Check` accept. It holds the key ring (tokens are sealed and
//! opened with it), the secrets store (users' access keys, MFA devices), the OIDC verifier
//! (web identity tokens) and two caches that make a repeated caller cheap: opened session
//! tokens, kept until they expire, and SigV4 signing keys, derived once per key and day.
//!
//! Every call reads one snapshot, the serving one, and decides against it alone.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;

use crate::caller::{Caller, Presented, Session, SignedRequest};
use crate::oidc::Verifier;
use crate::service::{Authenticator, Verified};
use crate::sigv4::{self, HttpRequest, Payload, SigningKey, SigningKeys};
use crate::snapshot::Snapshot;
use crate::source::Published;

use super::assume::{
    self, AssumeRoleInput, Issued, MfaProof, SessionCallers, StsCaller, WebIdentityInput,
};
use super::container::ContainerCredentials;
use super::error::Code;
use super::http::{CallContext, RawRequest, StsHandler};
use super::keyring::KeyRingHandle;
use super::query::Call;
use super::secrets::SecretsHandle;
use super::token::{self, Opened};
use super::xml::{AssumedRoleUser, CallResult, Credentials};
use super::{Grant, StsError, Subject};

/// Opened session tokens kept, at most.
pub const OPENED_TOKENS: usize = 10_000;
/// Derived SigV4 signing keys kept, at most.
pub const SIGNING_KEYS: usize = 10_000;
/// Compiled session callers kept, at most.
pub const SESSION_CALLERS: usize = 10_000;
/// The clock skew allowed on a web identity token's times.
pub const WEB_IDENTITY_SKEW: Duration = Duration::from_secs(60);
/// The largest web identity token read (AWS: 20,000 characters).
pub const MAX_WEB_IDENTITY_TOKEN: usize = 20_000;

/// How the authority is set up.
#[derive(Debug, Clone)]
pub struct AuthorityConfig {
    /// The regions a signature may be scoped to (AWS's `Credential should be scoped to a
    /// valid region`). The first is the one warden names.
    pub regions: Vec<String>,
    /// The workload's role for the container credentials endpoint, if it serves one.
    pub container: Option<ContainerRole>,
}

impl Default for AuthorityConfig {
    fn default() -> AuthorityConfig {
        AuthorityConfig {
            regions: vec!["us-east-1".to_owned()],
            container: None,
        }
    }
}

/// The role the sidecar hands its workload, as AWS compute does: the sidecar assumes it
/// as a service principal, which the role's trust policy must allow.
#[derive(Debug, Clone)]
pub struct ContainerRole {
    pub role_arn: String,
    /// The service principal the sidecar assumes the role as (`ecs-tasks.amazonaws.com`
    /// by default, as for an ECS task role).
    pub service: String,
    /// The session name of the workload's sessions.
    pub session_name: String,
    /// How long each issued session lasts.
    pub duration: Duration,
}

/// An opened session token, cached until it expires, with what a repeated caller
/// presenting it needs again: its session as a decision caller at the last snapshot
/// revision it was asked at, and the SigV4 signing key of its secret for the last scope it
/// signed with. Both are the token's own (the cache finds an entry by the whole token, and
/// the secret is derived from it), so a hit needs no shared cache: no key to allocate or
/// hash, no grant or secret to compare.
struct OpenToken {
    opened: Opened,
    session: ArcSwapOption<SessionAt>,
    signing: ArcSwapOption<ScopedKey>,
}

impl OpenToken {
    fn new(opened: Opened) -> OpenToken {
        OpenToken {
            opened,
            session: ArcSwapOption::empty(),
            signing: ArcSwapOption::empty(),
        }
    }
}

/// A session built from a token's grant under one snapshot revision.
struct SessionAt {
    revision: u64,
    session: Arc<Session>,
}

/// A signing key derived from a session's secret for one scope (date, region, service).
struct ScopedKey {
    date: Box<str>,
    region: Box<str>,
    service: Box<str>,
    key: SigningKey,
}

/// Who signed a request: a user's long-term key, or a session's credentials.
enum Signer {
    User { arn: String, access_key_id: String },
    Session(Arc<OpenToken>),
}

/// warden's STS and credential verifier.
pub struct Authority {
    published: Arc<Published>,
    ring: Arc<KeyRingHandle>,
    secrets: Arc<SecretsHandle>,
    verifier: Arc<Verifier>,
    config: AuthorityConfig,
    keys: SigningKeys,
    opened: quick_cache::sync::Cache<Arc<str>, Arc<OpenToken>>,
    sessions: SessionCallers,
}

impl Authority {
    pub fn new(
        published: Arc<Published>,
        ring: Arc<KeyRingHandle>,
        secrets: Arc<SecretsHandle>,
        verifier: Arc<Verifier>,
        config: AuthorityConfig,
    ) -> Authority {
        Authority {
            published,
            ring,
            secrets,
            verifier,
            config,
            keys: SigningKeys::new(SIGNING_KEYS),
            opened: quick_cache::sync::Cache::new(OPENED_TOKENS),
            sessions: SessionCallers::new(SESSION_CALLERS),
        }
    }

    pub fn config(&self) -> &AuthorityConfig {
        &self.config
    }

    fn snapshot(&self) -> Result<Arc<Snapshot>, StsError> {
        self.published.current().ok_or_else(|| {
            StsError::new(Code::ServiceUnavailable, "no policy snapshot is loaded yet")
        })
    }

    /// Opens a session token (cached until it expires). `access_key_id`: the key the
    /// request was signed with, which must be the token's. A token sealed with a key the
    /// ring has since retired is refused even when cached.
    fn open(
        &self,
        session_token: &str,
        access_key_id: Option<&str>,
        now: SystemTime,
    ) -> Result<Arc<OpenToken>, StsError> {
        let ring = self.ring.current();
        let open = match self.opened.get(session_token) {
            Some(open) if ring.key(&open.opened.key_id).is_some() => open,
            _ => {
                let opened = token::open(&ring, session_token, now)?;
                let open = Arc::new(OpenToken::new(opened));
                self.opened.insert(session_token.into(), open.clone());
                open
            }
        };
        let grant = &open.opened.grant;
        if seconds(now) >= grant.expires_at {
            self.opened.remove(session_token);
            return Err(StsError::new(Code::ExpiredToken, token::EXPIRED));
        }
        if let Some(id) = access_key_id
            && id != grant.access_key_id
        {
            return Err(StsError::new(
                Code::InvalidClientTokenId,
                "The security token included in the request is invalid: it is not the token of the access key the request is signed with.",
            ));
        }
        Ok(open)
    }

    /// Verifies a signed request: its signature with the signer's secret, its time, and
    /// its scope's region. Returns the signer and the service the signature is scoped to.
    fn verify_signed(
        &self,
        req: &HttpRequest<'_>,
        now: SystemTime,
    ) -> Result<(Signer, String), StsError> {
        let Some(signed) = sigv4::parse(req)? else {
            return Err(sigv4::missing_authentication());
        };
        let signer = match &signed.security_token {
            Some(t) => {
                let open = self.open(t, Some(signed.access_key_id), now)?;
                let key = Authority::session_key(&open, &signed);
                signed.verify(req, &key, now)?;
                Signer::Session(open)
            }
            None => {
                if signed.access_key_id.starts_with("ASIA") {
                    return Err(StsError::new(
                        Code::InvalidClientTokenId,
                        "The security token included in the request is invalid: temporary credentials need their session token (X-Amz-Security-Token).",
                    ));
                }
                let store = self.secrets.current();
                let user = store.active_key(signed.access_key_id)?;
                let key = self.keys.get(
                    signed.access_key_id,
                    user.secret(),
                    signed.date,
                    signed.region,
                    signed.service,
                );
                signed.verify(req, &key, now)?;
                Signer::User {
                    arn: user.user_arn.clone(),
                    access_key_id: user.id.clone(),
                }
            }
        };
        self.check_region(signed.region, &signer)?;
        Ok((signer, signed.service.to_owned()))
    }

    /// The signature's region must be one this server serves: an AWS region it does not
    /// is `RegionDisabledException`, as STS answers for a region not activated; anything
    /// else is not a region at all.
    fn check_region(&self, region: &str, signer: &Signer) -> Result<(), StsError> {
        if self.config.regions.iter().any(|r| r == region) {
            return Ok(());
        }
        let looks_like_a_region = {
            let parts: Vec<&str> = region.split('-').collect();
            parts.len() >= 3
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
                && parts
                    .last()
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
                && region.len() <= 32
        };
        if !looks_like_a_region {
            return Err(StsError::new(
                Code::SignatureDoesNotMatch,
                format!(
                    "Credential should be scoped to a valid region, not '{}'.",
                    region.chars().take(32).collect::<String>()
                ),
            ));
        }
        let arn = match signer {
            Signer::User { arn, .. } => arn.clone(),
            Signer::Session(open) => open.opened.grant.arn(),
        };
        let account = arn.split(':').nth(4).unwrap_or_default();
        Err(StsError::new(
            Code::RegionDisabledException,
            format!(
                "STS is not activated in this region for account:{account}. Your account administrator can activate STS in this region using the IAM Console."
            ),
        ))
    }

    /// The signing key of an opened session's secret in the request's scope: the one the
    /// token keeps when the scope is the same as last time, else derived and kept.
    fn session_key(open: &OpenToken, signed: &sigv4::Signed<'_>) -> SigningKey {
        if let Some(k) = &*open.signing.load()
            && *k.date == *signed.date
            && *k.region == *signed.region
            && *k.service == *signed.service
        {
            return k.key.clone();
        }
        let key = SigningKey::derive(
            &open.opened.secret_access_key,
            signed.date,
            signed.region,
            signed.service,
        );
        open.signing.store(Some(Arc::new(ScopedKey {
            date: signed.date.into(),
            region: signed.region.into(),
            service: signed.service.into(),
            key: key.clone(),
        })));
        key
    }

    /// A verified signer as a decision caller. A session's is kept beside its opened
    /// token for the revision it was built at.
    fn caller(&self, snapshot: &Snapshot, signer: &Signer) -> Result<Caller, StsError> {
        match signer {
            Signer::User { arn, access_key_id } => Ok(Caller::AccessKey {
                user_arn: arn.clone(),
                access_key_id: access_key_id.clone(),
            }),
            Signer::Session(open) => {
                let revision = snapshot.revision();
                if let Some(at) = &*open.session.load()
                    && at.revision == revision
                {
                    return Ok(Caller::Session(at.session.clone()));
                }
                let session = self.sessions.get(snapshot, &open.opened.grant)?;
                open.session.store(Some(Arc::new(SessionAt {
                    revision,
                    session: session.clone(),
                })));
                Ok(Caller::Session(session))
            }
        }
    }

    /// Seals an issued grant into credentials.
    fn credentials(&self, grant: &Grant) -> Result<Credentials, StsError> {
        let ring = self.ring.current();
        let sealed = token::seal(&ring, grant)?;
        Ok(Credentials {
            access_key_id: grant.access_key_id.clone(),
            secret_access_key: sealed.secret_access_key,
            session_token: sealed.session_token,
            expiration: UNIX_EPOCH + Duration::from_secs(grant.expires_at),
        })
    }

    /// Verifies an MFA code for the caller: the device must be the calling user's.
    fn mfa(
        &self,
        caller: &StsCaller<'_>,
        serial: Option<&str>,
        code: Option<&str>,
        now: SystemTime,
    ) -> Result<Option<MfaProof>, StsError> {
        let (serial, code) = match (serial, code) {
            (None, None) => return Ok(None),
            (Some(s), Some(c)) => (s, c),
            (Some(_), None) | (None, Some(_)) => {
                return Err(StsError::new(
                    Code::AccessDenied,
                    "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code.",
                ));
            }
        };
        let user = match caller {
            StsCaller::User { arn } => Some(*arn),
            StsCaller::Session(Grant {
                subject: Subject::User { user_arn },
                ..
            }) => Some(user_arn.as_str()),
            _ => None,
        };
        let Some(user) = user else {
            return Err(StsError::denied(
                "MultiFactorAuthentication failed: only an IAM user's credentials can present an MFA code.",
            ));
        };
        let at = self.secrets.verify_mfa(serial, code, Some(user), now)?;
        Ok(Some(MfaProof {
            serial: serial.to_owned(),
            authenticated_at: at,
        }))
    }

    /// The container endpoint's credentials: the workload role assumed by the sidecar as
    /// its service principal.
    fn container(&self, now: SystemTime) -> Result<ContainerCredentials, StsError> {
        let Some(role) = &self.config.container else {
            return Err(StsError::new(
                Code::InternalFailure,
                "no container role is configured",
            ));
        };
        let snapshot = self.snapshot()?;
        let input = AssumeRoleInput {
            role_arn: role.role_arn.clone(),
            session_name: role.session_name.clone(),
            duration: u32::try_from(role.duration.as_secs()).ok(),
            ..AssumeRoleInput::default()
        };
        let issued = assume::assume_role(
            &snapshot,
            &StsCaller::Service {
                name: &role.service,
            },
            &input,
            now,
        )?;
        Ok(ContainerCredentials {
            credentials: self.credentials(&issued.grant)?,
            role_arn: role.role_arn.clone(),
        })
    }

    fn assumed_role_user(issued: &Issued) -> AssumedRoleUser {
        AssumedRoleUser {
            assumed_role_id: issued.assumed_role_id.clone().unwrap_or_default(),
            arn: issued.grant.arn(),
        }
    }

    /// `AssumeRoleWithWebIdentity`: the token's issuer names the provider (in the role's
    /// account); the verifier checks its signature and times; the trust policy decides.
    async fn web_identity(
        &self,
        snapshot: &Snapshot,
        call: &super::query::AssumeRoleWithWebIdentity,
        now: SystemTime,
    ) -> Result<CallResult, StsError> {
        let token = call.web_identity_token.as_str();
        if token.len() > MAX_WEB_IDENTITY_TOKEN {
            return Err(StsError::validation(format!(
                "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length less than or equal to {MAX_WEB_IDENTITY_TOKEN}"
            )));
        }
        let issuer = unverified_issuer(token).ok_or_else(|| {
            StsError::new(
                Code::InvalidIdentityToken,
                "The web identity token is not a JWT with an `iss` claim.",
            )
        })?;
        let role_account = call.role_arn.split(':').nth(4).unwrap_or_default();
        let provider = snapshot
            .oidc_providers()
            .find(|p| p.account() == role_account && p.url() == issuer)
            .ok_or_else(|| {
                StsError::new(
                    Code::InvalidIdentityToken,
                    format!("No OpenIDConnect provider found in your account for {issuer}"),
                )
            })?;
        let provider_arn = provider.arn().to_owned();
        let claims = self
            .verifier
            .verify(snapshot, &provider_arn, token, WEB_IDENTITY_SKEW, now)
            .await
            .map_err(|e| match e.code {
                "expired" => StsError::new(Code::ExpiredToken, format!("Token expired: {e}")),
                "no_keys" => StsError::new(Code::IDPCommunicationError, e.message),
                _ => StsError::new(Code::InvalidIdentityToken, e.message),
            })?;
        let issued = assume::assume_role_with_web_identity(
            snapshot,
            &WebIdentityInput {
                provider_arn: &provider_arn,
                role_arn: &call.role_arn,
                session_name: &call.role_session_name,
                claims: &claims,
                skew: WEB_IDENTITY_SKEW,
                duration: call.duration_seconds,
                policy: call.policy.as_deref(),
                policy_arns: &call.policy_arns,
            },
            now,
        )?;
        Ok(CallResult::AssumeRoleWithWebIdentity {
            credentials: self.credentials(&issued.grant)?,
            subject_from_web_identity_token: claims.subject().unwrap_or_default().to_owned(),
            assumed_role_user: Authority::assumed_role_user(&issued),
            packed_policy_size: issued.packed_policy_percent,
            provider: provider.url().to_owned(),
            audience: provider
                .accepted_audience(&claims)
                .unwrap_or_default()
                .to_owned(),
            source_identity: issued.grant.source_identity.clone(),
        })
    }
}

/// The `iss` of a JWT, read without verifying anything: only to find the provider whose
/// keys will verify it.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A face's request as the verifier reads it.
fn http_request<'a>(
    method: &'a str,
    target: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Option<&'a [u8]>,
) -> HttpRequest<'a> {
    HttpRequest {
        method,
        target,
        headers,
        payload: body.map_or(Payload::Unknown, Payload::Bytes),
    }
}

impl Authenticator for Authority {
    fn authenticate(
        &self,
        snapshot: &Snapshot,
        presented: &Presented,
        now: SystemTime,
    ) -> Result<Verified, StsError> {
        match presented {
            Presented::SessionToken(t) => {
                let open = self.open(t, None, now)?;
                let signer = Signer::Session(open);
                Ok(Verified {
                    caller: self.caller(snapshot, &signer)?,
                    scope_service: None,
                })
            }
            Presented::Signed(SignedRequest {
                method,
                target,
                headers,
                body,
            }) => {
                let pairs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let req = http_request(method, target, &pairs, body.as_deref());
                let (signer, service) = self.verify_signed(&req, now)?;
                Ok(Verified {
                    caller: self.caller(snapshot, &signer)?,
                    scope_service: Some(service),
                })
            }
        }
    }
}

#[tonic::async_trait]
impl StsHandler for Authority {
    async fn call(&self, cx: CallContext<'_>, call: Call) -> Result<CallResult, StsError> {
        let snapshot = self.snapshot()?;
        if let Call::AssumeRoleWithWebIdentity(w) = &call {
            return self.web_identity(&snapshot, w, cx.now).await;
        }
        let raw: &RawRequest = cx.signed.ok_or_else(sigv4::missing_authentication)?;
        let pairs: Vec<(&str, &str)> = raw
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = http_request(&raw.method, &raw.target, &pairs, Some(&raw.body));
        let (signer, service) = self.verify_signed(&req, cx.now)?;
        if cx.face == super::http::Face::Grpc {
            // The gRPC face's proof of identity is a signed `GetCallerIdentity` and nothing
            // else: a captured query-API request (an `AssumeRole` with other parameters)
            // cannot stand in for it.
            let query = raw.target.split_once('?').map_or("", |(_, q)| q);
            let proof = super::query::parse(query, &raw.body, &super::query::Limits::default());
            if !matches!(proof, Ok(Call::GetCallerIdentity)) {
                return Err(StsError::new(
                    Code::IncompleteSignature,
                    "the caller must be a signed GetCallerIdentity request (Action=GetCallerIdentity&Version=2011-06-15)",
                ));
            }
        }
        if service != "sts" {
            return Err(StsError::new(
                Code::SignatureDoesNotMatch,
                "Credential should be scoped to correct service: 'sts'.",
            ));
        }
        let caller = match &signer {
            Signer::User { arn, .. } => StsCaller::User { arn },
            Signer::Session(open) => StsCaller::Session(&open.opened.grant),
        };
        match call {
            Call::GetCallerIdentity => {
                let id = assume::caller_identity(&snapshot, &caller)?;
                Ok(CallResult::GetCallerIdentity {
                    user_id: id.user_id,
                    account: id.account,
                    arn: id.arn,
                })
            }
            Call::GetSessionToken(g) => {
                let mfa = self.mfa(
                    &caller,
                    g.serial_number.as_deref(),
                    g.token_code.as_deref(),
                    cx.now,
                )?;
                let issued = assume::get_session_token(
                    &snapshot,
                    &caller,
                    g.duration_seconds,
                    mfa.as_ref(),
                    cx.now,
                )?;
                Ok(CallResult::GetSessionToken {
                    credentials: self.credentials(&issued.grant)?,
                })
            }
            Call::AssumeRole(a) => {
                let mfa = self.mfa(
                    &caller,
                    a.serial_number.as_deref(),
                    a.token_code.as_deref(),
                    cx.now,
                )?;
                let input = AssumeRoleInput {
                    role_arn: a.role_arn,
                    session_name: a.role_session_name,
                    duration: a.duration_seconds,
                    policy: a.policy,
                    policy_arns: a.policy_arns,
                    tags: a.tags,
                    transitive_tag_keys: a.transitive_tag_keys,
                    external_id: a.external_id,
                    source_identity: a.source_identity,
                    mfa,
                };
                let issued = assume::assume_role(&snapshot, &caller, &input, cx.now)?;
                Ok(CallResult::AssumeRole {
                    credentials: self.credentials(&issued.grant)?,
                    assumed_role_user: Authority::assumed_role_user(&issued),
                    packed_policy_size: issued.packed_policy_percent,
                    source_identity: issued.grant.source_identity.clone(),
                })
            }
            Call::AssumeRoleWithWebIdentity(_) => Err(StsError::new(
                Code::InternalFailure,
                "AssumeRoleWithWebIdentity reached the signed path",
            )),
        }
    }

    async fn container_credentials(
        &self,
        now: SystemTime,
    ) -> Result<ContainerCredentials, StsError> {
        self.container(now)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::Path;

    use super::*;
    use crate::sigv4::Signer as SigV4Signer;
    use crate::sts::keyring::KeyRing;
    use crate::sts::secrets::SecretsStore;
    use crate::telemetry::Telemetry;

    const ALICE: &str = "arn:aws:iam::333333333333:user/engineering/alice";
    const ASSUME: &str = "Action=AssumeRole&Version=2011-06-15\
         &RoleArn=arn%3Aaws%3Aiam%3A%3A555555555555%3Arole%2FDeveloper&RoleSessionName=tests";

    struct Setup {
        published: Arc<Published>,
        telemetry: Telemetry,
        bundle: crate::bundle::Bundle,
        authority: Authority,
        now: SystemTime,
    }

    fn setup() -> (Setup, (String, String)) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bundle = crate::bundle::load_dir(&root.join("examples/org")).unwrap();
        let published = Arc::new(Published::new());
        let telemetry = Telemetry::new();
        published.publish(Snapshot::compile(&bundle, 1), &telemetry.metrics);
        let ring = Arc::new(KeyRingHandle::new(KeyRing::generate().unwrap(), None));
        let mut store = SecretsStore::new();
        let key = store.create_key(ALICE).unwrap();
        let alice = (key.id.clone(), key.secret().to_owned());
        let secrets = Arc::new(SecretsHandle::new(store, None, ring.clone()));
        let verifier = Arc::new(Verifier::new(published.clone()));
        let authority = Authority::new(
            published.clone(),
            ring,
            secrets,
            verifier,
            AuthorityConfig::default(),
        );
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let setup = Setup {
            published,
            telemetry,
            bundle,
            authority,
            now,
        };
        (setup, alice)
    }

    /// A request signed with `(id, secret, token)` for `service`.
    fn signed(
        keys: (&str, &str, Option<&str>),
        service: &str,
        body: &[u8],
        at: SystemTime,
    ) -> RawRequest {
        let mut headers = vec![("host".to_owned(), "sts.example.com".to_owned())];
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let added = sigv4::sign_headers(
            &http_request("POST", "/", &pairs, Some(body)),
            &SigV4Signer {
                access_key_id: keys.0,
                secret_access_key: keys.1,
                session_token: keys.2,
                region: "us-east-1",
                service,
            },
            at,
        );
        headers.extend(added.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)));
        RawRequest {
            method: "POST".to_owned(),
            target: "/".to_owned(),
            headers,
            body: body.to_vec(),
        }
    }

    fn ready<T>(f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        match f
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("waited"),
        }
    }

    fn credentials(s: &Setup, alice: &(String, String)) -> Credentials {
        let raw = signed((&alice.0, &alice.1, None), "sts", ASSUME.as_bytes(), s.now);
        let call = super::super::query::parse("", &raw.body, &Default::default()).unwrap();
        let cx = CallContext {
            request_id: "t",
            face: super::super::http::Face::Query,
            signed: Some(&raw),
            now: s.now,
        };
        match ready(s.authority.call(cx, call)).unwrap() {
            CallResult::AssumeRole { credentials, .. } => credentials,
            other => panic!("{}", other.action()),
        }
    }

    fn presented(raw: &RawRequest) -> Presented {
        Presented::Signed(SignedRequest {
            method: raw.method.clone(),
            target: raw.target.clone(),
            headers: raw.headers.clone(),
            body: Some(raw.body.clone().into()),
        })
    }

    fn session(v: Verified) -> Arc<Session> {
        match v.caller {
            Caller::Session(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tokens_session_is_kept_per_revision_and_rebuilt_at_a_new_one() {
        let (s, alice) = setup();
        let c = credentials(&s, &alice);
        let token = Presented::SessionToken(c.session_token.clone());
        let one = s.published.current().unwrap();
        let first = session(s.authority.authenticate(&one, &token, s.now).unwrap());
        let again = session(s.authority.authenticate(&one, &token, s.now).unwrap());
        assert!(Arc::ptr_eq(&first, &again), "the same revision reuses it");
        assert_eq!(first.id, c.access_key_id);
        s.published
            .publish(Snapshot::compile(&s.bundle, 2), &s.telemetry.metrics);
        let two = s.published.current().unwrap();
        assert_eq!(two.revision(), 2);
        let rebuilt = session(s.authority.authenticate(&two, &token, s.now).unwrap());
        assert!(!Arc::ptr_eq(&first, &rebuilt), "a new revision rebuilds it");
        let kept = session(s.authority.authenticate(&two, &token, s.now).unwrap());
        assert!(Arc::ptr_eq(&rebuilt, &kept));
    }

    #[test]
    fn a_tokens_signing_key_serves_only_its_scope_and_its_secret() {
        let (s, alice) = setup();
        let c = credentials(&s, &alice);
        let snapshot = s.published.current().unwrap();
        let keys = (
            c.access_key_id.as_str(),
            c.secret_access_key.as_str(),
            Some(c.session_token.as_str()),
        );
        let check = |raw: &RawRequest| {
            s.authority
                .authenticate(&snapshot, &presented(raw), s.now)
                .map(|v| v.scope_service)
        };
        let orders = signed(keys, "orders", b"", s.now);
        assert_eq!(check(&orders).unwrap().as_deref(), Some("orders"));
        assert_eq!(check(&orders).unwrap().as_deref(), Some("orders"));
        // Another service (another scope) derives its own key.
        let db = signed(keys, "db", b"", s.now);
        assert_eq!(check(&db).unwrap().as_deref(), Some("db"));
        // With the key for `db` kept, a wrong secret still fails.
        let wrong = signed((keys.0, "not-the-secret", keys.2), "db", b"", s.now);
        let e = check(&wrong).unwrap_err();
        assert_eq!(e.code, Code::SignatureDoesNotMatch, "{e:?}");
        assert_eq!(check(&orders).unwrap().as_deref(), Some("orders"));
    }
}
