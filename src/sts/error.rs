//! Why an STS call or a credential was refused, as AWS names it: an error code from AWS's
//! list (`AccessDenied`, `ExpiredToken`, ...), a message for people, and the HTTP status
//! the query API answers with. Both faces map from this one type (the gRPC face to a
//! status whose message starts with the code).

/// An AWS error: `code` is AWS's error code, `message` says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StsError {
    pub code: Code,
    pub message: String,
}

/// The error codes warden answers with, as AWS STS spells them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
pub enum Code {
    /// The caller may not do this (a trust policy, an identity policy, an MFA requirement).
    AccessDenied,
    /// The session token's credentials have expired.
    ExpiredToken,
    /// The access key id (or session token) is not one the server knows, or is inactive.
    InvalidClientTokenId,
    /// The request's signature does not match the one computed with the key's secret.
    SignatureDoesNotMatch,
    /// The `Authorization` header is not a whole SigV4 signature.
    IncompleteSignature,
    /// No credentials at all where they are required.
    MissingAuthenticationToken,
    /// A parameter is missing or has a value outside its constraints.
    ValidationError,
    /// A parameter is not one the action takes.
    InvalidParameterValue,
    /// An `Action` the STS API does not have.
    InvalidAction,
    /// The inline session policy is not a valid policy.
    MalformedPolicyDocument,
    /// The session policies and tags packed together exceed AWS's limit.
    PackedPolicyTooLarge,
    /// STS is not served for the region the request was signed for.
    RegionDisabledException,
    /// A web identity token that does not verify.
    InvalidIdentityToken,
    /// A web identity token from a provider that is not in the bundle.
    IdpRejectedClaim,
    /// The token's issuer could not be reached (its key set cannot be fetched).
    IDPCommunicationError,
    /// The server has no snapshot, or is shedding load.
    ServiceUnavailable,
    /// Something that is the server's fault, never the caller's.
    InternalFailure,
    /// The request's date is outside the allowed clock skew.
    RequestExpired,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The HTTP status the AWS query API answers this error with.
    pub fn http_status(self) -> u16 {
        match self {
            Code::AccessDenied
            | Code::ExpiredToken
            | Code::InvalidClientTokenId
            | Code::SignatureDoesNotMatch
            | Code::IncompleteSignature
            | Code::MissingAuthenticationToken
            | Code::RegionDisabledException
            | Code::RequestExpired => 403,
            Code::ValidationError
            | Code::InvalidParameterValue
            | Code::InvalidAction
            | Code::MalformedPolicyDocument
            | Code::PackedPolicyTooLarge
            | Code::InvalidIdentityToken
            | Code::IdpRejectedClaim
            | Code::IDPCommunicationError => 400,
            Code::ServiceUnavailable => 503,
            Code::InternalFailure => 500,
        }
    }

    /// `Sender` for the caller's errors, `Receiver` for the server's (the `Type` of AWS's
    /// `ErrorResponse`).
    pub fn fault(self) -> &'static str {
        match self {
            Code::ServiceUnavailable | Code::InternalFailure => "Receiver",
            _ => "Sender",
        }
    }
}

impl StsError {
    pub fn new(code: Code, message: impl Into<String>) -> StsError {
        StsError {
            code,
            message: message.into(),
        }
    }

    pub fn denied(message: impl Into<String>) -> StsError {
        StsError::new(Code::AccessDenied, message)
    }

    pub fn validation(message: impl Into<String>) -> StsError {
        StsError::new(Code::ValidationError, message)
    }
}
