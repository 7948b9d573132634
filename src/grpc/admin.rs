//! The `warden.v1.Admin` face: converts the admin API's messages into [`fleet::Admin`]
//! calls and its refusals into statuses, in one place ([`status`]). The credentials come
//! from the request's `credentials` or the `authorization: Bearer` metadata (the bootstrap
//! token), never from a principal the caller names. Repeated fields are counted in the
//! request's bytes before prost builds them (see `wire`).

use std::sync::Arc;

use prost::Message;
use prost::bytes::Bytes;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use tonic::{Code, Request, Response, Status};

use super::pb;
use super::server::admin_server::{self, AdminServer};
use super::wire::{
    GetBytes, MAX_SIGNED_BODY_BYTES, MAX_SIGNED_HEADERS, MAX_TARGET_BYTES, MAX_TOKEN_BYTES,
    WriteBytes,
};
use crate::caller::{Presented, SignedRequest};
use crate::fleet::store::StoreError;
use crate::fleet::{self, AdminError, Change, Credentials, MAX_CHANGES, MAX_WRITE_BYTES};
use crate::service::RequestError;

/// The service's name, for health and reflection.
pub const SERVICE_NAME: &str = "warden.v1.Admin";

/// The largest request message: a write's documents and what surrounds them.
pub const MAX_REQUEST_BYTES: usize = MAX_WRITE_BYTES as usize + (1 << 20);

/// The refusal's message and details stay within what an HTTP/2 peer takes in trailers.
const MAX_MESSAGE_CHARS: usize = 4096;
const MAX_DETAILS_BYTES: usize = 8192;

/// The `warden.v1.Admin` service.
pub struct Admin {
    admin: Arc<fleet::Admin>,
}

impl Admin {
    pub fn new(admin: Arc<fleet::Admin>) -> Admin {
        Admin { admin }
    }

    pub fn into_server(self) -> AdminServer<Admin> {
        AdminServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(256 << 20)
    }
}

/// Maps an admin refusal to its status: the one place this happens.
pub fn status(e: &AdminError) -> Status {
    match e {
        AdminError::Unauthenticated(_) => Status::unauthenticated(e.to_string()),
        AdminError::Denied { .. } => Status::permission_denied(e.to_string()),
        AdminError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        AdminError::NotFound { .. } => Status::not_found(e.to_string()),
        AdminError::HistoryBehind { .. } => Status::failed_precondition(e.to_string()),
        AdminError::Store(StoreError::Invalid(bundle)) => refused(bundle),
        AdminError::Store(StoreError::Conflict { .. } | StoreError::Busy) => {
            Status::aborted(e.to_string())
        }
        AdminError::Store(StoreError::TooLarge { .. }) => {
            Status::failed_precondition(e.to_string())
        }
        AdminError::Store(StoreError::Etcd(etcd)) => match etcd {
            crate::etcd::EtcdError::Compacted { .. } => Status::failed_precondition(e.to_string()),
            crate::etcd::EtcdError::Call(_) | crate::etcd::EtcdError::Endpoint { .. } => {
                Status::unavailable(e.to_string())
            }
            crate::etcd::EtcdError::Content { .. } | crate::etcd::EtcdError::TooLarge { .. } => {
                Status::failed_precondition(e.to_string())
            }
        },
        AdminError::Request(r) => match r {
            RequestError::Invalid { .. } => Status::invalid_argument(e.to_string()),
            RequestError::NoSnapshot => Status::unavailable(e.to_string()),
            RequestError::RevisionBehind { .. } | RequestError::StaleCursor { .. } => {
                Status::failed_precondition(e.to_string())
            }
            RequestError::Overloaded { .. } => Status::resource_exhausted(e.to_string()),
            RequestError::SessionExpired { .. } | RequestError::Unauthenticated { .. } => {
                Status::unauthenticated(e.to_string())
            }
        },
    }
}

/// INVALID_ARGUMENT for a bundle that would not load: every finding in the message (file,
/// line:column, what) and, encoded as a `WriteRefused`, in the details; both cut where
/// trailers would grow too large, saying how many findings were left out.
fn refused(bundle: &crate::bundle::BundleError) -> Status {
    let errors = bundle
        .findings
        .iter()
        .filter(|f| f.finding.severity == crate::policy::Severity::Error)
        .count();
    let mut message = format!("the bundle would not load ({errors} error(s)); nothing was written");
    let mut shown = 0;
    for f in &bundle.findings {
        let line = format!("\n  {f}");
        if message.len() + line.len() > MAX_MESSAGE_CHARS {
            break;
        }
        message.push_str(&line);
        shown += 1;
    }
    if shown < bundle.findings.len() {
        message.push_str(&format!(
            "\n  ... and {} more finding(s)",
            bundle.findings.len() - shown
        ));
    }
    let mut details = pb::WriteRefused::default();
    for f in &bundle.findings {
        let finding = pb::Finding {
            file: f.file.clone(),
            line: f.finding.pos.line,
            column: f.finding.pos.column,
            severity: match f.finding.severity {
                crate::policy::Severity::Error => "error",
                crate::policy::Severity::Warning => "warning",
            }
            .to_owned(),
            code: f.finding.code.to_owned(),
            json_path: f.finding.path.clone(),
            message: f.finding.message.clone(),
        };
        if details.encoded_len() + finding.encoded_len() + 8 > MAX_DETAILS_BYTES {
            break;
        }
        details.findings.push(finding);
    }
    Status::with_details(
        Code::InvalidArgument,
        message,
        Bytes::from(details.encode_to_vec()),
    )
}

/// How often a single message field may be repeated on the wire before the request is
/// refused.
const MAX_REPEATED_SINGLE: usize = 4;

/// The length-delimited values of field `tag` in a message's top level, without decoding
/// them: at most `at_most + 1` of them (the scan stops there, so that a message of millions
/// of empty fields costs no list of millions).
fn fields(mut buf: &[u8], tag: u32, at_most: usize) -> Result<Vec<&[u8]>, Status> {
    let malformed = |e: prost::DecodeError| Status::invalid_argument(format!("malformed: {e}"));
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (t, wire) = decode_key(&mut buf).map_err(malformed)?;
        if t == tag && wire == WireType::LengthDelimited {
            let len = usize::try_from(decode_varint(&mut buf).map_err(malformed)?)
                .map_err(|_| Status::invalid_argument("malformed: a length too large"))?;
            let Some((value, rest)) = buf.split_at_checked(len) else {
                return Err(Status::invalid_argument("malformed: a truncated field"));
            };
            out.push(value);
            if out.len() > at_most {
                return Ok(out);
            }
            buf = rest;
        } else {
            skip_field(wire, t, &mut buf, DecodeContext::default()).map_err(malformed)?;
        }
    }
    Ok(out)
}

/// `found`, unless a single field was repeated more than [`MAX_REPEATED_SINGLE`] times.
fn singles<'a>(found: Vec<&'a [u8]>, what: &str) -> Result<Vec<&'a [u8]>, Status> {
    if found.len() > MAX_REPEATED_SINGLE {
        return Err(Status::invalid_argument(format!(
            "{what}: given more than {MAX_REPEATED_SINGLE} times"
        )));
    }
    Ok(found)
}

/// Counts the repeated fields of a request before prost builds them: `list` (the tag of
/// `changes` or `paths`) at most [`MAX_CHANGES`], a signed request's headers at most
/// [`MAX_SIGNED_HEADERS`].
fn count(bytes: &[u8], list: u32, name: &str) -> Result<(), Status> {
    if fields(bytes, list, MAX_CHANGES)?.len() > MAX_CHANGES {
        return Err(Status::invalid_argument(format!(
            "{name}: 1 to {MAX_CHANGES}, not more"
        )));
    }
    // `credentials` and `signed_request` are single fields, which protobuf lets a message
    // repeat (the last wins): a few repeats are read, a flood is refused.
    for credentials in singles(fields(bytes, 1, MAX_REPEATED_SINGLE)?, "credentials")? {
        for signed in singles(
            fields(credentials, 2, MAX_REPEATED_SINGLE)?,
            "credentials.signed_request",
        )? {
            if fields(signed, 3, MAX_SIGNED_HEADERS)?.len() > MAX_SIGNED_HEADERS {
                return Err(Status::invalid_argument(format!(
                    "credentials.signed_request.headers: more than the limit of \
                     {MAX_SIGNED_HEADERS} headers"
                )));
            }
        }
    }
    Ok(())
}

/// The caller's credentials: the request's, or the bootstrap token in the metadata; not
/// both, and not two kinds at once.
fn credentials(
    metadata: &tonic::metadata::MetadataMap,
    given: Option<pb::AdminCredentials>,
) -> Result<Credentials, Status> {
    let bearer = match metadata.get("authorization") {
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| Status::unauthenticated("the authorization metadata is not text"))?;
            let token = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .ok_or_else(|| {
                    Status::unauthenticated("the authorization metadata is not `Bearer TOKEN`")
                })?;
            Some(token.trim().to_owned())
        }
        None => None,
    };
    let pb::AdminCredentials {
        session_token,
        signed_request,
    } = given.unwrap_or_default();
    if session_token.len() > MAX_TOKEN_BYTES {
        return Err(Status::invalid_argument(format!(
            "credentials.session_token: longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    let presented = match (session_token.is_empty(), signed_request) {
        (true, None) => None,
        (false, None) => Some(Presented::SessionToken(session_token)),
        (true, Some(signed)) => Some(Presented::Signed(signed_request_of(signed)?)),
        (false, Some(_)) => {
            return Err(Status::invalid_argument(
                "credentials: present a `session_token` or a `signed_request`, not both",
            ));
        }
    };
    match (bearer, presented) {
        (None, None) => Ok(Credentials::None),
        (Some(token), None) => Ok(Credentials::Bearer(token)),
        (None, Some(p)) => Ok(Credentials::Presented(p)),
        (Some(_), Some(_)) => Err(Status::invalid_argument(
            "credentials: present the admin token or credentials, not both",
        )),
    }
}

/// A signed request within bounds.
fn signed_request_of(r: pb::SignedRequest) -> Result<SignedRequest, Status> {
    let pb::SignedRequest {
        method,
        target,
        headers,
        body,
    } = r;
    if method.len() > 16 || target.len() > MAX_TARGET_BYTES || body.len() > MAX_SIGNED_BODY_BYTES {
        return Err(Status::invalid_argument(
            "credentials.signed_request: its method, target or body is too long",
        ));
    }
    Ok(SignedRequest {
        method,
        target,
        headers: headers
            .into_iter()
            .map(|pb::Header { name, value }| (name, value))
            .collect(),
        body: Some(Bytes::from(body)),
    })
}

/// `0` is none; a negative revision is refused.
fn revision(field: &str, value: i64) -> Result<Option<i64>, Status> {
    match value {
        0 => Ok(None),
        v if v > 0 => Ok(Some(v)),
        v => Err(Status::invalid_argument(format!(
            "{field}: `{v}` is no revision"
        ))),
    }
}

#[tonic::async_trait]
impl admin_server::Admin for Admin {
    async fn write(
        &self,
        request: Request<WriteBytes>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        let (metadata, _, WriteBytes(bytes)) = request.into_parts();
        count(&bytes, 2, "changes")?;
        let pb::WriteRequest {
            credentials: given,
            changes,
            expected_revision,
        } = pb::WriteRequest::decode(bytes)
            .map_err(|e| Status::invalid_argument(format!("malformed: {e}")))?;
        let credentials = credentials(&metadata, given)?;
        let expected = revision("expected_revision", expected_revision)?;
        let changes = changes
            .into_iter()
            .enumerate()
            .map(|(i, pb::Change { path, op })| match op {
                Some(pb::change::Op::Put(text)) => Ok(Change::Put { path, text }),
                Some(pb::change::Op::Delete(true)) => Ok(Change::Delete { path }),
                Some(pb::change::Op::Delete(false)) | None => Err(Status::invalid_argument(
                    format!("changes[{i}]: neither `put` nor `delete`"),
                )),
            })
            .collect::<Result<Vec<Change>, Status>>()?;
        let revision = self
            .admin
            .write(credentials, peer, changes, expected)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::WriteResponse { revision }))
    }

    async fn get(&self, request: Request<GetBytes>) -> Result<Response<pb::GetResponse>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        let (metadata, _, GetBytes(bytes)) = request.into_parts();
        count(&bytes, 2, "paths")?;
        let pb::GetRequest {
            credentials: given,
            paths,
            revision: at,
        } = pb::GetRequest::decode(bytes)
            .map_err(|e| Status::invalid_argument(format!("malformed: {e}")))?;
        let credentials = credentials(&metadata, given)?;
        let at = revision("revision", at)?;
        let (documents, revision) = self
            .admin
            .get(credentials, peer, paths, at)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::GetResponse {
            documents: documents
                .into_iter()
                .map(|(path, text)| pb::Document { path, text })
                .collect(),
            revision,
        }))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let peer = request.remote_addr().map(|a| a.ip());
        let (metadata, _, message) = request.into_parts();
        let pb::ListRequest {
            credentials: given,
            revision: at,
        } = message;
        let credentials = credentials(&metadata, given)?;
        let at = revision("revision", at)?;
        let (paths, revision) = self
            .admin
            .list(credentials, peer, at)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::ListResponse { paths, revision }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_empty_fields_is_refused_after_a_bounded_scan() {
        // 9 MiB of empty `changes` (tag 2, length 0): 4.7 million fields.
        let flood: Vec<u8> = [0x12u8, 0x00].repeat(9 << 19);
        assert_eq!(
            fields(&flood, 2, MAX_CHANGES).unwrap().len(),
            MAX_CHANGES + 1
        );
        let e = count(&flood, 2, "changes").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        // Repeated single fields (credentials, tag 1) are refused too.
        let repeated: Vec<u8> = [0x0au8, 0x00].repeat(1000);
        let e = count(&repeated, 2, "changes").unwrap_err();
        assert!(e.message().contains("credentials"), "{e:?}");
    }

    #[test]
    fn a_refusal_with_many_findings_stays_within_trailers_and_says_what_it_left_out() {
        use crate::bundle::read::BundleFinding;
        use crate::json::Pos;
        use crate::policy::{Finding, Severity};
        let finding = |i: u32| BundleFinding {
            file: format!("accounts/555555555555/policies/P{i}.json"),
            finding: Finding {
                severity: Severity::Error,
                code: "invalid-effect",
                path: "$.Statement[0].Effect".to_owned(),
                pos: Pos { line: 3, column: 7 },
                message: "`Perhaps` is not `Allow` or `Deny`".to_owned(),
            },
        };
        let few = crate::bundle::BundleError {
            findings: (0..2).map(finding).collect(),
        };
        let status = refused(&few);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status
                .message()
                .contains("accounts/555555555555/policies/P1.json:3:7"),
            "{}",
            status.message()
        );
        assert_eq!(
            pb::WriteRefused::decode(status.details())
                .unwrap()
                .findings
                .len(),
            2
        );

        let many = crate::bundle::BundleError {
            findings: (0..1000).map(finding).collect(),
        };
        let status = refused(&many);
        assert!(status.message().len() < MAX_MESSAGE_CHARS + 100);
        assert!(
            status.message().contains("more finding(s)"),
            "{}",
            status.message()
        );
        assert!(status.details().len() <= MAX_DETAILS_BYTES);
        let details = pb::WriteRefused::decode(status.details()).unwrap();
        assert!(!details.findings.is_empty() && details.findings.len() < 1000);
        assert_eq!(
            (details.findings[0].line, details.findings[0].column),
            (3, 7)
        );
    }

    #[test]
    fn repeated_fields_are_counted_before_decoding() {
        let change = pb::Change {
            path: "scps/A.json".to_owned(),
            op: Some(pb::change::Op::Delete(true)),
        };
        let write = |n: usize, headers: usize| pb::WriteRequest {
            credentials: Some(pb::AdminCredentials {
                session_token: String::new(),
                signed_request: Some(pb::SignedRequest {
                    headers: vec![pb::Header::default(); headers],
                    ..Default::default()
                }),
            }),
            changes: vec![change.clone(); n],
            expected_revision: 0,
        };
        assert!(count(&write(MAX_CHANGES, 3).encode_to_vec(), 2, "changes").is_ok());
        let e = count(&write(MAX_CHANGES + 1, 3).encode_to_vec(), 2, "changes").unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().starts_with("changes:"), "{}", e.message());
        let e = count(
            &write(1, MAX_SIGNED_HEADERS + 1).encode_to_vec(),
            2,
            "changes",
        )
        .unwrap_err();
        assert!(e.message().contains("headers"), "{}", e.message());
        assert!(count(&[0x12, 0x05, 0x01], 2, "changes").is_err());
    }
}
