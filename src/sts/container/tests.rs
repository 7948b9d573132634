#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::UNIX_EPOCH;

use super::*;
use crate::sts::http::CallContext;
use crate::sts::query::Call;
use crate::sts::xml::CallResult;

const ROLE: &str = "arn:aws:iam::111122223333:role/Workload";

/// Issues sessions of one hour, numbered, or fails when told to.
#[derive(Default)]
struct Issuer {
    issued: AtomicU32,
    fail: std::sync::atomic::AtomicBool,
}

#[tonic::async_trait]
impl StsHandler for Issuer {
    async fn call(&self, _: CallContext<'_>, _: Call) -> Result<CallResult, StsError> {
        Err(StsError::denied("not in this test"))
    }

    async fn container_credentials(
        &self,
        now: SystemTime,
    ) -> Result<ContainerCredentials, StsError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StsError::new(Code::ServiceUnavailable, "no snapshot"));
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(ContainerCredentials {
            credentials: Credentials {
                access_key_id: format!("ASIAWORKLOAD{n:08}"),
                secret_access_key: "s3cret/+x".into(),
                session_token: format!("token-{n}"),
                expiration: now + Duration::from_secs(3600),
            },
            role_arn: ROLE.into(),
        })
    }
}

fn endpoint(token: TokenSource) -> ContainerEndpoint {
    ContainerEndpoint::new(ContainerConfig {
        path: DEFAULT_PATH.into(),
        token,
        refresh_before: DEFAULT_REFRESH_BEFORE,
    })
    .unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

#[tokio::test]
async fn the_right_token_gets_the_json_botocore_reads() {
    let e = endpoint(TokenSource::Value("Bearer-ish token/with spaces".into()));
    let issuer = Issuer::default();
    let a = e
        .answer(Some(b"Bearer-ish token/with spaces"), &issuer, at(0))
        .await;
    assert_eq!(a.status, 200);
    let json: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "AccessKeyId": "ASIAWORKLOAD00000001",
            "SecretAccessKey": "s3cret/+x",
            "Token": "token-1",
            "Expiration": "2027-01-15T09:00:00Z",
            "RoleArn": ROLE,
        })
    );
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_with_403() {
    let e = endpoint(TokenSource::Value("right".into()));
    let issuer = Issuer::default();
    for presented in [
        Some(&b"wrong"[..]),
        Some(b"righ"),
        Some(b"right "),
        Some(b""),
        None,
    ] {
        let a = e.answer(presented, &issuer, at(0)).await;
        assert_eq!(a.status, 403, "{presented:?}");
        let json: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(json["Code"], "AccessDenied");
        assert!(json["Message"].as_str().unwrap().contains("Authorization"));
    }
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 0, "nothing issued");
}

#[tokio::test]
async fn credentials_are_reissued_when_less_than_the_margin_remains() {
    let e = endpoint(TokenSource::Value("t".into()));
    let issuer = Issuer::default();
    let token = |a: Answer| {
        let json: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        json["Token"].as_str().unwrap().to_owned()
    };
    assert_eq!(token(e.answer(Some(b"t"), &issuer, at(0)).await), "token-1");
    // 45 minutes and one second left: still the same session.
    assert_eq!(
        token(e.answer(Some(b"t"), &issuer, at(899)).await),
        "token-1"
    );
    // 15 minutes left: a new one.
    assert_eq!(
        token(e.answer(Some(b"t"), &issuer, at(2700)).await),
        "token-2"
    );
    assert_eq!(
        token(e.answer(Some(b"t"), &issuer, at(2701)).await),
        "token-2"
    );
    assert_eq!(issuer.issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failed_issue_serves_unexpired_credentials_then_the_error() {
    let e = endpoint(TokenSource::Value("t".into()));
    let issuer = Issuer::default();
    assert_eq!(e.answer(Some(b"t"), &issuer, at(0)).await.status, 200);
    issuer.fail.store(true, Ordering::SeqCst);
    let a = e.answer(Some(b"t"), &issuer, at(3000)).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("token-1"));
    let a = e.answer(Some(b"t"), &issuer, at(3600)).await;
    assert_eq!(a.status, 503);
    assert!(a.body.contains("ServiceUnavailable"), "{}", a.body);
}

#[tokio::test]
async fn a_token_file_is_read_on_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "first\n").unwrap();
    let e = endpoint(TokenSource::File(path.clone()));
    let issuer = Issuer::default();
    assert_eq!(e.answer(Some(b"first"), &issuer, at(0)).await.status, 200);
    std::fs::write(&path, "second").unwrap();
    assert_eq!(e.answer(Some(b"first"), &issuer, at(0)).await.status, 403);
    assert_eq!(e.answer(Some(b"second"), &issuer, at(0)).await.status, 200);
    std::fs::write(&path, vec![b'x'; 9000]).unwrap();
    assert_eq!(e.answer(Some(b"second"), &issuer, at(0)).await.status, 500);
    std::fs::remove_file(&path).unwrap();
    let a = e.answer(Some(b"second"), &issuer, at(0)).await;
    assert_eq!(a.status, 500);
    assert!(
        !a.body.contains(dir.path().to_str().unwrap()),
        "no path leaks"
    );
}

#[test]
fn bad_configurations_are_refused() {
    let config = |path: &str, token: &str| ContainerConfig {
        path: path.into(),
        token: TokenSource::Value(token.into()),
        refresh_before: DEFAULT_REFRESH_BEFORE,
    };
    assert_eq!(
        ContainerEndpoint::new(config("v1/credentials", "t")).err(),
        Some(ContainerError::Path("v1/credentials".into()))
    );
    assert_eq!(
        ContainerEndpoint::new(config("/v1/credentials", "")).err(),
        Some(ContainerError::EmptyToken)
    );
}
