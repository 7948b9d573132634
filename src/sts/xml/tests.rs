#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::sts::error::Code;

fn creds() -> Credentials {
    Credentials {
        access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY".into(),
        session_token: "v1.k2026a.AQoDYXdz+tok/en=".into(),
        // 2019-11-09T13:34:41Z
        expiration: UNIX_EPOCH + Duration::from_secs(1_573_306_481),
    }
}

fn user() -> AssumedRoleUser {
    AssumedRoleUser {
        assumed_role_id: "AROA123EXAMPLE123:TestAR".into(),
        arn: "arn:aws:sts::123456789012:assumed-role/demo/TestAR".into(),
    }
}

const ID: &str = "c6104cbe-af31-11e0-8154-cbc7ccf896c7";

#[test]
fn assume_role_golden() {
    let xml = response(
        &CallResult::AssumeRole {
            credentials: creds(),
            assumed_role_user: user(),
            packed_policy_size: Some(6),
            source_identity: Some("Alice".into()),
        },
        ID,
    );
    assert_eq!(
        xml,
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>v1.k2026a.AQoDYXdz+tok/en=</SessionToken>
      <Expiration>2019-11-09T13:34:41Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROA123EXAMPLE123:TestAR</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>
    </AssumedRoleUser>
    <PackedPolicySize>6</PackedPolicySize>
    <SourceIdentity>Alice</SourceIdentity>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
"#
    );
}

#[test]
fn caller_identity_and_session_token_golden() {
    let xml = response(
        &CallResult::GetCallerIdentity {
            user_id: "AIDACKCEVSQ6C2EXAMPLE".into(),
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/Alice".into(),
        },
        ID,
    );
    assert_eq!(
        xml,
        r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <UserId>AIDACKCEVSQ6C2EXAMPLE</UserId>
    <Account>123456789012</Account>
    <Arn>arn:aws:iam::123456789012:user/Alice</Arn>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
"#
    );
    let xml = response(
        &CallResult::GetSessionToken {
            credentials: creds(),
        },
        ID,
    );
    assert!(xml.starts_with(
        "<GetSessionTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
         <GetSessionTokenResult>\n    <Credentials>\n"
    ));
    assert!(xml.ends_with("</GetSessionTokenResponse>\n"));
}

#[test]
fn error_response_golden_and_escaped() {
    let e = StsError::new(
        Code::AccessDenied,
        "User: arn:aws:iam::1:user/<x> & 'y' \"z\" is not authorized\u{1}\r",
    );
    assert_eq!(
        error_response(&e, ID),
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::1:user/&lt;x&gt; &amp; &apos;y&apos; &quot;z&quot; is not authorized�&#13;</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>
"#
    );
    let e = StsError::new(Code::InternalFailure, "x");
    assert!(error_response(&e, ID).contains("<Type>Receiver</Type>"));
}

/// The element names of a document's `...Result`, in order (a minimal reader for tests).
fn result_members(xml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut parent = String::new();
    for tag in xml.split('<').skip(1) {
        let name = tag.split(['>', ' ']).next().unwrap();
        if name.starts_with('/') {
            depth -= 1;
            continue;
        }
        depth += 1;
        if depth == 2 {
            parent = name.to_owned();
        }
        if depth == 3 && parent.ends_with("Result") {
            names.push(name.to_owned());
        }
    }
    names
}

/// Member names copied from botocore's STS model (`botocore/data/sts/2011-06-15/
/// service-2.json`, the `...Response` shapes and `Credentials`/`AssumedRoleUser`): every
/// element written is one the SDKs read, and every required one is written.
#[test]
fn members_are_the_service_models() {
    let model: &[(&str, &[&str])] = &[
        (
            "AssumeRole",
            &[
                "Credentials",
                "AssumedRoleUser",
                "PackedPolicySize",
                "SourceIdentity",
            ],
        ),
        (
            "AssumeRoleWithWebIdentity",
            &[
                "Credentials",
                "SubjectFromWebIdentityToken",
                "AssumedRoleUser",
                "PackedPolicySize",
                "Provider",
                "Audience",
                "SourceIdentity",
            ],
        ),
        ("GetSessionToken", &["Credentials"]),
        ("GetCallerIdentity", &["UserId", "Account", "Arn"]),
    ];
    let results = [
        CallResult::AssumeRole {
            credentials: creds(),
            assumed_role_user: user(),
            packed_policy_size: Some(1),
            source_identity: Some("a1".into()),
        },
        CallResult::AssumeRoleWithWebIdentity {
            credentials: creds(),
            subject_from_web_identity_token: "sub-123".into(),
            assumed_role_user: user(),
            packed_policy_size: Some(1),
            provider: "https://issuer.example".into(),
            audience: "client".into(),
            source_identity: Some("a1".into()),
        },
        CallResult::GetSessionToken {
            credentials: creds(),
        },
        CallResult::GetCallerIdentity {
            user_id: "u".into(),
            account: "1".into(),
            arn: "a".into(),
        },
    ];
    for (result, (action, members)) in results.iter().zip(model) {
        assert_eq!(result.action(), *action);
        let xml = response(result, ID);
        let written = result_members(&xml);
        assert_eq!(&written, members, "{action}");
    }
    let xml = response(&results[0], ID);
    for member in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(xml.contains(&format!("<{member}>")), "{member}");
    }
    for member in ["AssumedRoleId", "Arn"] {
        assert!(xml.contains(&format!("<{member}>")), "{member}");
    }
    // Optional members are left out, not written empty.
    let xml = response(
        &CallResult::AssumeRole {
            credentials: creds(),
            assumed_role_user: user(),
            packed_policy_size: None,
            source_identity: None,
        },
        ID,
    );
    assert!(!xml.contains("PackedPolicySize") && !xml.contains("SourceIdentity"));
}

#[test]
fn request_ids_are_random_uuids() {
    let a = request_id();
    let b = request_id();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
    let groups: Vec<usize> = a.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12]);
    assert_eq!(&a[14..15], "4");
    assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
}
