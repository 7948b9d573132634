#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;

const ROLE: &str = "arn:aws:iam::111122223333:role/Deployer";

fn body(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn parse_body(params: &[(&str, &str)]) -> Result<Call, StsError> {
    parse("", body(params).as_bytes(), &Limits::default())
}

/// The error of a request that must fail: its code and message.
fn refused(params: &[(&str, &str)]) -> (Code, String) {
    let e = parse_body(params).expect_err("the request must be refused");
    (e.code, e.message)
}

fn assume(extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut p: Vec<(&str, String)> = vec![
        ("Action", "AssumeRole".into()),
        ("Version", VERSION.into()),
        ("RoleArn", ROLE.into()),
        ("RoleSessionName", "ci-42".into()),
    ];
    for (k, v) in extra {
        let k: &'static str = Box::leak(k.to_string().into_boxed_str());
        p.push((k, (*v).to_owned()));
    }
    p
}

fn parse_owned(p: &[(&str, String)]) -> Result<Call, StsError> {
    let borrowed: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
    parse_body(&borrowed)
}

#[test]
fn assume_role_reads_every_parameter() {
    let p = assume(&[
        ("DurationSeconds", "1800"),
        ("Policy", r#"{"Version":"2012-10-17","Statement":[]}"#),
        (
            "PolicyArns.member.2.arn",
            "arn:aws:iam::111122223333:policy/B",
        ),
        (
            "PolicyArns.member.1.arn",
            "arn:aws:iam::111122223333:policy/A",
        ),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "blue green"),
        ("Tags.member.2.Key", "cost-center"),
        ("Tags.member.2.Value", ""),
        ("TransitiveTagKeys.member.1", "team"),
        ("ExternalId", "ext-123:/x"),
        ("SerialNumber", "arn:aws:iam::111122223333:mfa/alice"),
        ("TokenCode", "123456"),
        ("SourceIdentity", "alice@example.com"),
    ]);
    let Call::AssumeRole(c) = parse_owned(&p).unwrap() else {
        panic!("not AssumeRole")
    };
    assert_eq!(
        c,
        AssumeRole {
            role_arn: ROLE.into(),
            role_session_name: "ci-42".into(),
            policy_arns: vec![
                "arn:aws:iam::111122223333:policy/A".into(),
                "arn:aws:iam::111122223333:policy/B".into()
            ],
            policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            duration_seconds: Some(1800),
            tags: vec![
                ("team".into(), "blue green".into()),
                ("cost-center".into(), String::new())
            ],
            transitive_tag_keys: vec!["team".into()],
            external_id: Some("ext-123:/x".into()),
            serial_number: Some("arn:aws:iam::111122223333:mfa/alice".into()),
            token_code: Some("123456".into()),
            source_identity: Some("alice@example.com".into()),
        }
    );
}

#[test]
fn web_identity_session_token_and_caller_identity_parse() {
    let call = parse_body(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", VERSION),
        ("RoleArn", ROLE),
        ("RoleSessionName", "web"),
        ("WebIdentityToken", "eyJhbGciOi.x.y"),
        ("ProviderId", "accounts.example.com"),
        ("DurationSeconds", "900"),
        (
            "PolicyArns.member.1.arn",
            "arn:aws:iam::111122223333:policy/A",
        ),
    ])
    .unwrap();
    assert_eq!(
        call,
        Call::AssumeRoleWithWebIdentity(AssumeRoleWithWebIdentity {
            role_arn: ROLE.into(),
            role_session_name: "web".into(),
            web_identity_token: "eyJhbGciOi.x.y".into(),
            provider_id: Some("accounts.example.com".into()),
            policy_arns: vec!["arn:aws:iam::111122223333:policy/A".into()],
            policy: None,
            duration_seconds: Some(900),
        })
    );
    assert_eq!(
        parse_body(&[
            ("Action", "GetSessionToken"),
            ("Version", VERSION),
            ("DurationSeconds", "129600"),
            ("SerialNumber", "arn:aws:iam::111122223333:mfa/alice"),
            ("TokenCode", "000111"),
        ])
        .unwrap(),
        Call::GetSessionToken(GetSessionToken {
            duration_seconds: Some(129_600),
            serial_number: Some("arn:aws:iam::111122223333:mfa/alice".into()),
            token_code: Some("000111".into()),
        })
    );
    // boto3's own body, as captured.
    assert_eq!(
        parse(
            "",
            b"Action=GetCallerIdentity&Version=2011-06-15",
            &Limits::default()
        )
        .unwrap(),
        Call::GetCallerIdentity
    );
}

#[test]
fn a_get_query_string_is_read_and_signing_parameters_are_ignored() {
    let call = parse(
        "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIA%2F20260101%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Signature=ab",
        b"",
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(call, Call::GetCallerIdentity);
    assert_eq!(call.action(), "GetCallerIdentity");
}

#[test]
fn action_and_version_are_checked_first() {
    let check = |params: &[(&str, &str)], message: &str| {
        let (code, m) = refused(params);
        assert_eq!((code, m.as_str()), (Code::InvalidAction, message));
    };
    check(
        &[("Action", "AssumeRole"), ("RoleArn", "x")],
        "Could not find operation AssumeRole for version NO_VERSION_SPECIFIED",
    );
    check(
        &[("Action", "AssumeRole"), ("Version", "2010-01-01")],
        "Could not find operation AssumeRole for version 2010-01-01",
    );
    check(
        &[("Action", "GetFederationToken"), ("Version", VERSION)],
        "Could not find operation GetFederationToken for version 2011-06-15",
    );
    check(&[("Version", VERSION)], "Missing Action");
}

#[test]
fn missing_required_parameters_are_named_as_aws_names_them() {
    let (code, m) = refused(&[("Action", "AssumeRole"), ("Version", VERSION)]);
    assert_eq!(code, Code::ValidationError);
    assert_eq!(
        m,
        "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: \
         Member must not be null; Value null at 'roleSessionName' failed to satisfy \
         constraint: Member must not be null"
    );
    let (_, m) = refused(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", VERSION),
        ("RoleArn", ROLE),
        ("RoleSessionName", "web"),
    ]);
    assert_eq!(
        m,
        "1 validation error detected: Value null at 'webIdentityToken' failed to satisfy \
         constraint: Member must not be null"
    );
}

#[test]
fn constraint_failures_read_as_aws_writes_them() {
    let check = |extra: &[(&str, &str)], message: &str| {
        let e = parse_owned(&assume(extra)).expect_err("must be refused");
        assert_eq!(e.code, Code::ValidationError, "{extra:?}");
        assert_eq!(e.message, message, "{extra:?}");
    };
    check(
        &[("DurationSeconds", "899")],
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy \
         constraint: Member must have value greater than or equal to 900",
    );
    check(
        &[("DurationSeconds", "43201")],
        "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy \
         constraint: Member must have value less than or equal to 43200",
    );
    check(
        &[("TokenCode", "12345a")],
        "1 validation error detected: Value '12345a' at 'tokenCode' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [\\d]*",
    );
    check(
        &[("ExternalId", "x")],
        "1 validation error detected: Value 'x' at 'externalId' failed to satisfy \
         constraint: Member must have length greater than or equal to 2",
    );
    check(
        &[
            ("Tags.member.1.Key", "bad*key"),
            ("Tags.member.1.Value", "v"),
        ],
        "1 validation error detected: Value 'bad*key' at 'tags.1.member.key' failed to \
         satisfy constraint: Member must satisfy regular expression pattern: \
         [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
    );
    check(
        &[("PolicyArns.member.1.arn", "short")],
        "1 validation error detected: Value 'short' at 'policyArns.1.member.arn' failed to \
         satisfy constraint: Member must have length greater than or equal to 20",
    );
    check(
        &[("SourceIdentity", "a b")],
        "1 validation error detected: Value 'a b' at 'sourceIdentity' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
    );
    check(
        &[("Policy", "")],
        "1 validation error detected: Value '' at 'policy' failed to satisfy constraint: \
         Member must have length greater than or equal to 1",
    );
}

#[test]
fn a_bad_session_name_fails_each_constraint() {
    let mut p = assume(&[]);
    p[3].1 = "x".repeat(65);
    let e = parse_owned(&p).unwrap_err();
    assert!(
        e.message
            .starts_with("1 validation error detected: Value 'xxx")
    );
    assert!(e.message.ends_with(
        "at 'roleSessionName' failed to satisfy constraint: Member must have length less \
         than or equal to 64"
    ));
    p[3].1 = "a/b".into();
    let e = parse_owned(&p).unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value 'a/b' at 'roleSessionName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
    );
}

#[test]
fn bad_numbers_are_refused() {
    for bad in ["abc", "", "-900", "+900", " 900", "900.0", "0x400"] {
        let e = parse_owned(&assume(&[("DurationSeconds", bad)])).unwrap_err();
        assert_eq!(e.code, Code::ValidationError, "{bad}");
        assert_eq!(
            e.message,
            format!(
                "1 validation error detected: Value '{bad}' at 'durationSeconds' failed to \
                 satisfy constraint: Member must be an integer"
            )
        );
    }
    // Past u32: out of range, never wrapped.
    let e = parse_owned(&assume(&[("DurationSeconds", "99999999999999999999")])).unwrap_err();
    assert!(
        e.message.contains("less than or equal to 43200"),
        "{}",
        e.message
    );
    // GetSessionToken's range is its own.
    let e = parse_body(&[
        ("Action", "GetSessionToken"),
        ("Version", VERSION),
        ("DurationSeconds", "129601"),
    ])
    .unwrap_err();
    assert!(e.message.contains("less than or equal to 129600"));
}

#[test]
fn member_lists_must_be_whole() {
    let e = parse_owned(&assume(&[("PolicyArns.member.2.arn", ROLE)])).unwrap_err();
    assert!(e.message.contains("'policyArns'"), "{}", e.message);
    let e = parse_owned(&assume(&[("Tags.member.1.Key", "team")])).unwrap_err();
    assert!(
        e.message.contains("Value null at 'tags.1.member.value'"),
        "{}",
        e.message
    );
    let e = parse_owned(&assume(&[("Tags.member.1.Value", "v")])).unwrap_err();
    assert!(
        e.message.contains("Value null at 'tags.1.member.key'"),
        "{}",
        e.message
    );
    let e = parse_owned(&assume(&[("TransitiveTagKeys.member.0", "team")])).unwrap_err();
    assert!(e.message.contains("'transitiveTagKeys'"), "{}", e.message);
}

#[test]
fn more_than_fifty_tags_are_refused() {
    let mut extra = Vec::new();
    for i in 1..=51 {
        extra.push((format!("Tags.member.{i}.Key"), format!("k{i}")));
        extra.push((format!("Tags.member.{i}.Value"), "v".to_owned()));
    }
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let e = parse_owned(&assume(&extra)).unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member \
         must have length less than or equal to 50"
    );
}

#[test]
fn limits_come_before_any_decoding() {
    let limits = Limits {
        max_body_bytes: 100,
        max_params: 4,
    };
    let big = vec![b'a'; 101];
    let e = parse("", &big, &limits).unwrap_err();
    assert_eq!(e.code, Code::ValidationError);
    assert!(
        e.message.contains("more than the limit of 100"),
        "{}",
        e.message
    );
    let e = parse("a=1", &big[..98], &limits).unwrap_err();
    assert!(e.message.contains("more than the limit"));
    let e = parse(
        "",
        b"Action=GetCallerIdentity&Version=2011-06-15&a=1&b=2&c=3",
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.message, "the request has more than 4 parameters");
}

#[test]
fn a_parameter_given_twice_is_refused() {
    let e = parse(
        "RoleArn=x",
        body(&[
            ("Action", "AssumeRole"),
            ("Version", VERSION),
            ("RoleArn", ROLE),
        ])
        .as_bytes(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::InvalidParameterValue);
    assert_eq!(e.message, "the parameter `RoleArn` is given more than once");
}

#[test]
fn a_sensitive_value_is_never_quoted() {
    let e = parse_body(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", VERSION),
        ("RoleArn", ROLE),
        ("RoleSessionName", "web"),
        ("WebIdentityToken", "abc"),
    ])
    .unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'webIdentityToken' failed to satisfy \
         constraint: Member must have length greater than or equal to 4"
    );
}

#[test]
fn plus_and_percent_decode_as_in_a_form() {
    let call = parse(
        "",
        b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FDeployer&RoleSessionName=a%2Bb&Tags.member.1.Key=k&Tags.member.1.Value=two+words",
        &Limits::default(),
    )
    .unwrap();
    let Call::AssumeRole(c) = call else { panic!() };
    assert_eq!(c.role_arn, ROLE);
    assert_eq!(c.role_session_name, "a+b");
    assert_eq!(c.tags, vec![("k".into(), "two words".into())]);
}
