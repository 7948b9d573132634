#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use sts_server::Sts as _;

use super::*;
use crate::sts::container::ContainerCredentials;

/// Records the context and call it is given; answers GetCallerIdentity when a caller was
/// passed, `MissingAuthenticationToken` otherwise, and a wrong result for GetSessionToken.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(Face, Option<RawRequest>, Call)>>,
}

#[tonic::async_trait]
impl StsHandler for Recorder {
    async fn call(&self, cx: CallContext<'_>, call: Call) -> Result<CallResult, StsError> {
        self.seen
            .lock()
            .unwrap()
            .push((cx.face, cx.signed.cloned(), call.clone()));
        if cx.signed.is_none() {
            return Err(StsError::new(
                Code::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ));
        }
        Ok(CallResult::GetCallerIdentity {
            user_id: "AIDAALICE".into(),
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/alice".into(),
        })
    }

    async fn container_credentials(&self, _: SystemTime) -> Result<ContainerCredentials, StsError> {
        Err(StsError::denied("no"))
    }
}

fn service() -> (Sts, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    (
        Sts::new(recorder.clone(), query::Limits::default()),
        recorder,
    )
}

fn signed() -> pb::SignedRequest {
    pb::SignedRequest {
        method: "POST".into(),
        target: "/".into(),
        headers: vec![
            pb::Header {
                name: "Host".into(),
                value: "sts.example:8443".into(),
            },
            pb::Header {
                name: "X-Amz-Date".into(),
                value: "20260101T000000Z".into(),
            },
        ],
        body: b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
    }
}

#[tokio::test]
async fn the_signed_request_reaches_the_handler_as_received() {
    let (svc, recorder) = service();
    let answer = svc
        .get_caller_identity(Request::new(pb::GetCallerIdentityRequest {
            caller: Some(signed()),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.arn, "arn:aws:iam::111122223333:user/alice");
    let seen = recorder.seen.lock().unwrap();
    let (face, raw, call) = seen.last().unwrap();
    assert_eq!(*face, Face::Grpc);
    assert_eq!(*call, Call::GetCallerIdentity);
    let raw = raw.as_ref().unwrap();
    assert_eq!(raw.headers[0], ("host".into(), "sts.example:8443".into()));
    assert_eq!(raw.body, b"Action=GetCallerIdentity&Version=2011-06-15");
}

#[tokio::test]
async fn errors_map_to_statuses_with_the_aws_code_first() {
    let (svc, _) = service();
    let e = svc
        .get_caller_identity(Request::new(pb::GetCallerIdentityRequest { caller: None }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        e.message(),
        "MissingAuthenticationToken: Request is missing Authentication Token"
    );
    // Validation as the query API validates, before the handler.
    let e = svc
        .assume_role(Request::new(pb::AssumeRoleRequest {
            caller: Some(signed()),
            role_arn: "arn:aws:iam::111122223333:role/R".into(),
            role_session_name: "x".into(),
            duration_seconds: Some(60),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().starts_with(
            "ValidationError: 2 validation errors detected: Value 'x' at 'roleSessionName'"
        ),
        "{}",
        e.message()
    );
    // A handler answering another call's result is an internal error, not a wrong answer.
    let e = svc
        .get_session_token(Request::new(pb::GetSessionTokenRequest {
            caller: Some(signed()),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal);
    let table = [
        (Code::AccessDenied, tonic::Code::PermissionDenied),
        (Code::ExpiredToken, tonic::Code::Unauthenticated),
        (Code::InvalidClientTokenId, tonic::Code::Unauthenticated),
        (Code::SignatureDoesNotMatch, tonic::Code::Unauthenticated),
        (Code::MalformedPolicyDocument, tonic::Code::InvalidArgument),
        (Code::PackedPolicyTooLarge, tonic::Code::InvalidArgument),
        (Code::ServiceUnavailable, tonic::Code::Unavailable),
        (Code::InternalFailure, tonic::Code::Internal),
    ];
    for (code, expected) in table {
        let s = status(&StsError::new(code, "m"));
        assert_eq!(s.code(), expected, "{code}");
        assert_eq!(s.message(), format!("{code}: m"));
    }
}

#[tokio::test]
async fn signed_requests_are_bounded() {
    let (svc, recorder) = service();
    let mut caller = signed();
    caller.headers = (0..101)
        .map(|i| pb::Header {
            name: format!("h{i}"),
            value: String::new(),
        })
        .collect();
    let e = svc
        .get_caller_identity(Request::new(pb::GetCallerIdentityRequest {
            caller: Some(caller),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let mut caller = signed();
    caller.body = vec![b'a'; (64 << 10) + 1];
    let e = svc
        .get_caller_identity(Request::new(pb::GetCallerIdentityRequest {
            caller: Some(caller),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(recorder.seen.lock().unwrap().is_empty());
}

#[test]
fn credentials_convert_with_aws_timestamps() {
    let c = credentials_to_pb(Credentials {
        access_key_id: "ASIA".into(),
        secret_access_key: "s".into(),
        session_token: "t".into(),
        expiration: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    });
    assert_eq!(c.expiration, "2027-01-15T08:00:00Z");
}

/// Reflection serves `grpc::pb::FILE_DESCRIPTOR_SET`: the Sts service and the messages
/// `Authorize` will reuse are in it.
#[test]
fn the_descriptor_set_has_the_service() {
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let file = set
        .file
        .iter()
        .find(|f| f.name() == "warden/v1/sts.proto")
        .unwrap();
    assert_eq!(file.package(), "warden.v1");
    let service = file.service.iter().find(|s| s.name() == "Sts").unwrap();
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        [
            "AssumeRole",
            "AssumeRoleWithWebIdentity",
            "GetSessionToken",
            "GetCallerIdentity"
        ]
    );
    // The caller's messages are shared with the Authorizer, from credentials.proto.
    assert!(
        file.dependency
            .iter()
            .any(|d| d == "warden/v1/credentials.proto")
    );
    let credentials = set
        .file
        .iter()
        .find(|f| f.name() == "warden/v1/credentials.proto")
        .unwrap();
    for message in ["SignedRequest", "Header"] {
        assert!(credentials.message_type.iter().any(|m| m.name() == message));
    }
}
