//! The container credentials endpoint, as the AWS SDKs' container provider reads it
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`): a
//! `GET` whose `Authorization` header is the configured token verbatim (compared in
//! constant time), answered with the workload role's temporary credentials as JSON
//! (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`, `RoleArn`). The credentials
//! are issued by the [`StsHandler`] and kept until less than `refresh_before` of them
//! remains, so the SDK, which refreshes 15 minutes before expiry, always gets fresh ones.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::io::AsyncReadExt;

use super::error::{Code, StsError};
use super::http::StsHandler;
use super::xml::{Credentials, timestamp};

/// Where the SDKs' ECS convention puts the endpoint.
pub const DEFAULT_PATH: &str = "/v1/credentials";

/// Credentials are re-issued when less than this remains: the SDKs refresh 15 minutes
/// (advisory) and 10 minutes (mandatory) before expiry, and must not be handed the same
/// credentials again then.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);

/// The largest token file read; a token is a few dozen bytes.
const MAX_TOKEN_FILE_BYTES: u64 = 8 << 10;

/// Where the expected `Authorization` value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The value itself (as `AWS_CONTAINER_AUTHORIZATION_TOKEN` gives it to the SDK).
    Value(String),
    /// A file holding it (as `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`), read on every
    /// request so that a rotated token takes effect at once; a trailing newline is not
    /// part of the token.
    File(PathBuf),
}

/// How the endpoint is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The request path, `/v1/credentials` by default.
    pub path: String,
    pub token: TokenSource,
    /// Re-issue when less than this remains of the cached credentials.
    pub refresh_before: Duration,
}

/// A container endpoint that cannot be configured as given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerError {
    #[error("the container credentials path `{0}` does not start with `/`")]
    Path(String),
    #[error("the container authorization token is empty")]
    EmptyToken,
}

/// What the handler issues for the endpoint: the workload role's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCredentials {
    pub credentials: Credentials,
    /// The role the credentials are a session of.
    pub role_arn: String,
}

/// An answer of the endpoint: the HTTP status and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// The endpoint: its configuration and the credentials it hands out.
pub struct ContainerEndpoint {
    config: ContainerConfig,
    /// The credentials last issued. A mutex held across the issue, so that concurrent
    /// requests near expiry wait for one new session instead of each starting one.
    cache: tokio::sync::Mutex<Option<ContainerCredentials>>,
}

/// The JSON botocore's `ContainerProvider` reads (`credentials.py`: `AccessKeyId`,
/// `SecretAccessKey`, `Token`, `Expiration`), with `RoleArn` as ECS also writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: String,
    role_arn: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl ContainerEndpoint {
    pub fn new(config: ContainerConfig) -> Result<ContainerEndpoint, ContainerError> {
        if !config.path.starts_with('/') {
            return Err(ContainerError::Path(config.path));
        }
        if config.token == TokenSource::Value(String::new()) {
            return Err(ContainerError::EmptyToken);
        }
        Ok(ContainerEndpoint {
            config,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The request path the endpoint answers on.
    pub fn path(&self) -> &str {
        &self.config.path
    }

    /// Answers one request: `authorization` is its `Authorization` header's bytes.
    pub async fn answer(
        &self,
        authorization: Option<&[u8]>,
        handler: &dyn StsHandler,
        now: SystemTime,
    ) -> Answer {
        if let Err(e) = self.authorize(authorization).await {
            return error_answer(&e);
        }
        match self.credentials(handler, now).await {
            Ok(c) => Answer {
                status: 200,
                body: body(&c),
            },
            Err(e) => error_answer(&e),
        }
    }

    /// Whether `presented` is the configured token. Both are hashed and the digests
    /// compared in constant time, so neither the content nor the length of the token
    /// shows in the time taken.
    async fn authorize(&self, presented: Option<&[u8]>) -> Result<(), StsError> {
        let Some(presented) = presented else {
            return Err(StsError::denied("the request has no Authorization header"));
        };
        let expected = match &self.config.token {
            TokenSource::Value(token) => token.as_bytes().to_vec(),
            TokenSource::File(path) => read_token(path).await?,
        };
        if expected.is_empty() {
            return Err(StsError::new(
                Code::InternalFailure,
                "the container authorization token is empty",
            ));
        }
        let a = ring::digest::digest(&ring::digest::SHA256, presented);
        let b = ring::digest::digest(&ring::digest::SHA256, &expected);
        if bool::from(a.as_ref().ct_eq(b.as_ref())) {
            Ok(())
        } else {
            Err(StsError::denied(
                "the Authorization header is not the container authorization token",
            ))
        }
    }

    /// The cached credentials while more than `refresh_before` of them remains; new ones
    /// otherwise. When the issue fails and the cached ones have not expired, those are
    /// served (the SDK will ask again).
    async fn credentials(
        &self,
        handler: &dyn StsHandler,
        now: SystemTime,
    ) -> Result<ContainerCredentials, StsError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = &*cache
            && now
                .checked_add(self.config.refresh_before)
                .is_some_and(|t| c.credentials.expiration > t)
        {
            return Ok(c.clone());
        }
        match handler.container_credentials(now).await {
            Ok(fresh) => {
                *cache = Some(fresh.clone());
                Ok(fresh)
            }
            Err(e) => match &*cache {
                Some(c) if c.credentials.expiration > now => {
                    tracing::warn!(
                        "cannot issue new container credentials, serving the cached ones: {e}"
                    );
                    Ok(c.clone())
                }
                _ => Err(e),
            },
        }
    }
}

async fn read_token(path: &std::path::Path) -> Result<Vec<u8>, StsError> {
    let failed = |e: std::io::Error| {
        tracing::warn!(
            "cannot read the container authorization token file `{}`: {e}",
            path.display()
        );
        StsError::new(
            Code::InternalFailure,
            "the container authorization token cannot be read",
        )
    };
    let file = tokio::fs::File::open(path).await.map_err(failed)?;
    let mut token = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut token)
        .await
        .map_err(failed)?;
    if token.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(failed(std::io::Error::other(format!(
            "longer than {MAX_TOKEN_FILE_BYTES} bytes"
        ))));
    }
    while token.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        token.pop();
    }
    Ok(token)
}

fn body(c: &ContainerCredentials) -> String {
    let Credentials {
        access_key_id,
        secret_access_key,
        session_token,
        expiration,
    } = &c.credentials;
    serde_json::to_string(&Body {
        access_key_id,
        secret_access_key,
        token: session_token,
        expiration: timestamp(*expiration),
        role_arn: &c.role_arn,
    })
    .unwrap_or_default()
}

fn error_answer(e: &StsError) -> Answer {
    Answer {
        status: e.code.http_status(),
        body: serde_json::to_string(&ErrorBody {
            code: e.code.as_str(),
            message: &e.message,
        })
        .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
