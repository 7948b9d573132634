//! What a request is about: the calling principal, the action, the resource and the
//! context. Built once per request, before evaluation, so evaluation allocates nothing.

use std::borrow::Cow;

use arrayvec::ArrayString;

use crate::arn::Arn;
use crate::context::{Context, ContextValue, Lookup};

/// The caller, as resolved from an ARN (or, in a bundle, from the identity store).
///
/// Its strings borrow where they can (from the ARN a request names, from the snapshot's
/// identity), so that resolving a role session per request allocates only its unique id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal<'a> {
    /// The ARN the caller presents: a user ARN, or a session ARN for a role session.
    pub arn: Cow<'a, str>,
    pub partition: Cow<'a, str>,
    pub account: Cow<'a, str>,
    pub kind: PrincipalKind<'a>,
    /// `AIDA...` for a user, `AROA...:SESSION` for a role session, where known.
    pub unique_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind<'a> {
    User {
        name: Cow<'a, str>,
    },
    AssumedRole {
        role_name: Cow<'a, str>,
        session_name: Cow<'a, str>,
        /// The role's ARN with its path (`aws:PrincipalArn`); a session ARN omits the
        /// path, so without an identity store this is `role/NAME`.
        role_arn: Cow<'a, str>,
    },
    FederatedUser {
        name: Cow<'a, str>,
    },
    /// The account's root user.
    Root,
    /// An AWS service acting with its own identity (`ec2.amazonaws.com`).
    Service {
        name: Cow<'a, str>,
    },
    /// A web-identity or SAML caller presenting a token from this provider.
    WebIdentity {
        provider: Cow<'a, str>,
    },
    Anonymous,
}

impl PrincipalKind<'_> {
    /// The value of `aws:PrincipalType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            PrincipalKind::User { .. } => "User",
            PrincipalKind::AssumedRole { .. } | PrincipalKind::WebIdentity { .. } => "AssumedRole",
            PrincipalKind::FederatedUser { .. } => "FederatedUser",
            PrincipalKind::Root => "Account",
            PrincipalKind::Service { .. } => "Service",
            PrincipalKind::Anonymous => "Anonymous",
        }
    }

    fn into_owned(self) -> PrincipalKind<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        match self {
            PrincipalKind::User { name } => PrincipalKind::User { name: own(name) },
            PrincipalKind::AssumedRole {
                role_name,
                session_name,
                role_arn,
            } => PrincipalKind::AssumedRole {
                role_name: own(role_name),
                session_name: own(session_name),
                role_arn: own(role_arn),
            },
            PrincipalKind::FederatedUser { name } => {
                PrincipalKind::FederatedUser { name: own(name) }
            }
            PrincipalKind::Root => PrincipalKind::Root,
            PrincipalKind::Service { name } => PrincipalKind::Service { name: own(name) },
            PrincipalKind::WebIdentity { provider } => PrincipalKind::WebIdentity {
                provider: own(provider),
            },
            PrincipalKind::Anonymous => PrincipalKind::Anonymous,
        }
    }
}

/// Why a principal ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a principal ARN: expected `arn:aws:iam::ACCOUNT:user/NAME`, `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, `arn:aws:sts::ACCOUNT:federated-user/NAME` or `arn:aws:iam::ACCOUNT:root`"
)]
pub struct BadPrincipal(pub String);

/// A principal's ARN, split once: what kind of principal, in which partition and account.
/// Resolving it against a snapshot reads these parts; nothing parses the text again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalArn<'a> {
    pub text: &'a str,
    pub partition: &'a str,
    /// Twelve digits.
    pub account: &'a str,
    pub kind: ArnKind<'a>,
}

/// The kinds of principal an ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArnKind<'a> {
    /// `arn:P:iam::ACCT:user/PATH/NAME`: the name is the last part.
    User { name: &'a str },
    /// `arn:P:sts::ACCT:assumed-role/ROLE/SESSION`.
    AssumedRole { role: &'a str, session: &'a str },
    /// `arn:P:sts::ACCT:federated-user/NAME`.
    FederatedUser { name: &'a str },
    /// `arn:P:iam::ACCT:root`.
    Root,
}

impl<'a> PrincipalArn<'a> {
    /// Reads a principal ARN: an IAM user, a role session, a federated user or an
    /// account's root.
    pub fn parse(text: &'a str) -> Result<PrincipalArn<'a>, BadPrincipal> {
        let bad = || BadPrincipal(text.to_owned());
        let arn = Arn::parse(text).ok_or_else(bad)?;
        if arn.partition.is_empty()
            || arn.account.len() != 12
            || !arn.account.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        // Byte scans rather than `split_once`: every request's principal is read here.
        let split = |s: &'a str| {
            let i = s.bytes().position(|b| b == b'/')?;
            Some((s.get(..i)?, s.get(i + 1..)?))
        };
        let kind = match (arn.service, split(arn.resource)) {
            ("iam", None) if arn.resource == "root" => ArnKind::Root,
            ("iam", Some(("user", rest))) if !rest.is_empty() => ArnKind::User {
                name: match rest.bytes().rposition(|b| b == b'/') {
                    Some(i) => rest.get(i + 1..).unwrap_or(rest),
                    None => rest,
                },
            },
            ("sts", Some(("assumed-role", rest))) => {
                let (role, session) = split(rest).ok_or_else(bad)?;
                if role.is_empty() || session.is_empty() || session.bytes().any(|b| b == b'/') {
                    return Err(bad());
                }
                ArnKind::AssumedRole { role, session }
            }
            ("sts", Some(("federated-user", name))) if !name.is_empty() => {
                ArnKind::FederatedUser { name }
            }
            _ => return Err(bad()),
        };
        Ok(PrincipalArn {
            text,
            partition: arn.partition,
            account: arn.account,
            kind,
        })
    }
}

/// Reads a request's principal ARN, which must be in the bundle's partition.
pub fn parse_principal(text: &str) -> Result<PrincipalArn<'_>, String> {
    let arn = PrincipalArn::parse(text).map_err(|e| e.to_string())?;
    if !crate::bundle::is_partition(arn.partition) {
        return Err(format!(
            "`{text}` is in partition `{}`; the bundle's is `{}`",
            arn.partition,
            crate::bundle::PARTITION
        ));
    }
    Ok(arn)
}

/// Reads a request's resource: `*` (`None`: an action without resource-level
/// permissions), or an ARN in the bundle's partition.
pub fn parse_resource(text: &str) -> Result<Option<Arn<'_>>, String> {
    if text == "*" {
        return Ok(None);
    }
    let arn = Arn::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is neither an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`) nor `*`"
        )
    })?;
    if !crate::bundle::is_partition(arn.partition) {
        return Err(format!(
            "`{text}` is in partition `{}`; the bundle's is `{}`",
            arn.partition,
            crate::bundle::PARTITION
        ));
    }
    Ok(Some(arn))
}

impl<'a> Principal<'a> {
    /// Reads a caller from its ARN, borrowing from it. A role session's role ARN is
    /// `arn:PARTITION:iam::ACCOUNT:role/ROLE` (no path: a session ARN does not carry it).
    pub fn from_arn(text: &'a str) -> Result<Principal<'a>, BadPrincipal> {
        let parsed = PrincipalArn::parse(text)?;
        Ok(Principal::from_parsed(
            &parsed,
            |partition, account, role| {
                Cow::Owned(format!("arn:{partition}:iam::{account}:role/{role}"))
            },
        ))
    }

    /// The principal an ARN split beforehand names, with the role ARN of a role session
    /// given by `role_arn(partition, account, role name)`: an identity store knows the
    /// role's path, and lends its ARN instead of formatting one per request.
    pub fn from_parsed(
        arn: &PrincipalArn<'a>,
        role_arn: impl FnOnce(&'a str, &'a str, &'a str) -> Cow<'a, str>,
    ) -> Principal<'a> {
        let kind = match arn.kind {
            ArnKind::Root => PrincipalKind::Root,
            ArnKind::User { name } => PrincipalKind::User {
                name: Cow::Borrowed(name),
            },
            ArnKind::AssumedRole { role, session } => PrincipalKind::AssumedRole {
                role_name: Cow::Borrowed(role),
                session_name: Cow::Borrowed(session),
                role_arn: role_arn(arn.partition, arn.account, role),
            },
            ArnKind::FederatedUser { name } => PrincipalKind::FederatedUser {
                name: Cow::Borrowed(name),
            },
        };
        Principal {
            arn: Cow::Borrowed(arn.text),
            partition: Cow::Borrowed(arn.partition),
            account: Cow::Borrowed(arn.account),
            kind,
            unique_id: None,
        }
    }

    /// The same principal, owning its strings.
    pub fn into_owned(self) -> Principal<'static> {
        Principal {
            arn: Cow::Owned(self.arn.into_owned()),
            partition: Cow::Owned(self.partition.into_owned()),
            account: Cow::Owned(self.account.into_owned()),
            kind: self.kind.into_owned(),
            unique_id: self.unique_id.map(|u| Cow::Owned(u.into_owned())),
        }
    }

    pub fn is_authenticated(&self) -> bool {
        !matches!(self.kind, PrincipalKind::Anonymous)
    }

    /// The value of `aws:PrincipalArn`: the role ARN for a role session.
    pub fn principal_arn(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Anonymous
            | PrincipalKind::Service { .. }
            | PrincipalKind::WebIdentity { .. } => None,
            PrincipalKind::AssumedRole { role_arn, .. } => Some(role_arn),
            _ => Some(&self.arn),
        }
    }

    /// Fills the context keys that follow from the principal, keeping any value the
    /// context already has (the conformance cases' rule; the server overwrites instead).
    pub fn fill_context_defaults(&self, ctx: &mut Context) {
        let single = |s: &str| ContextValue::Single(s.to_owned());
        if let Some(arn) = self.principal_arn() {
            ctx.insert_default("aws:PrincipalArn", single(arn));
        }
        if self.is_authenticated() {
            ctx.insert_default("aws:PrincipalAccount", single(&self.account));
        }
        ctx.insert_default("aws:PrincipalType", single(self.kind.type_name()));
        if let PrincipalKind::User { name } = &self.kind {
            ctx.insert_default("aws:username", single(name));
        }
        if let Some(id) = &self.unique_id {
            ctx.insert_default("aws:userid", single(id));
        }
    }
}

/// One authorization request, prepared for evaluation.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: &'a Principal<'a>,
    pub action: &'a Action,
    pub resource: &'a str,
    resource_arn: Option<Arn<'a>>,
    /// The account that owns the resource.
    pub resource_account: &'a str,
    pub context: &'a dyn Lookup,
}

impl<'a> Request<'a> {
    pub fn new(
        principal: &'a Principal<'a>,
        action: &'a Action,
        resource: &'a str,
        resource_account: &'a str,
        context: &'a dyn Lookup,
    ) -> Request<'a> {
        Request::with_resource_arn(
            principal,
            action,
            resource,
            Arn::parse(resource),
            resource_account,
            context,
        )
    }

    /// Like [`Request::new`] with the resource already split (`Arn::parse(resource)`), for a
    /// caller that parsed it when it validated the request.
    pub fn with_resource_arn(
        principal: &'a Principal<'a>,
        action: &'a Action,
        resource: &'a str,
        resource_arn: Option<Arn<'a>>,
        resource_account: &'a str,
        context: &'a dyn Lookup,
    ) -> Request<'a> {
        Request {
            principal,
            action,
            resource,
            resource_arn,
            resource_account,
            context,
        }
    }

    /// The lowercase action.
    pub fn action(&self) -> &str {
        self.action.as_str()
    }

    /// The lowercase action split at its colon.
    pub fn action_parts(&self) -> (&str, &str) {
        (self.action.service(), self.action.name())
    }

    pub fn resource_arn(&self) -> Option<&Arn<'a>> {
        self.resource_arn.as_ref()
    }

    pub fn same_account(&self) -> bool {
        self.principal.is_authenticated() && self.principal.account == self.resource_account
    }
}

// === impl Action ===

const OTHER: u8 = 0;
const ALNUM: u8 = 1;
const DASH: u8 = 2;
const COLON: u8 = 3;

/// The class of each byte in an action: one load per byte where a range match costs
/// several compares.
#[expect(
    clippy::indexing_slicing,
    reason = "a constant loop over 0..256 into a table of 256: checked at compile time"
)]
static ACTION_BYTES: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphanumeric() {
            ALNUM
        } else if c == b'-' {
            DASH
        } else if c == b':' {
            COLON
        } else {
            OTHER
        };
        b += 1;
    }
    table
};

/// A request's action, checked and lowercased once: `service:Action`, naming one action.
#[derive(Debug, Clone)]
pub struct Action {
    /// Lowercased here so that matching does not allocate.
    lower: LowerAction,
    colon: usize,
    /// The index keys of the action and of its service (`compile::key`), computed once for
    /// the catalog check and every policy set's lookup.
    keys: (u64, u64),
}

impl Action {
    /// Reads `service:Action`, split at its colon and lowercased. The name is checked in
    /// full by [`Action::problem`] when the catalog does not know it: an action the
    /// catalog knows is well formed by construction, so a request for one (nearly every
    /// request, callgrind) pays for no character check.
    pub fn parse(text: &str) -> Result<Action, String> {
        // A byte scan: `find` sets up a searcher, which costs more than this short string.
        match text.bytes().position(|b| b == b':') {
            Some(c) if c > 0 && c + 1 < text.len() => {
                let lower = LowerAction::new(text);
                let lowered = lower.as_str();
                let keys = (
                    crate::compile::key(lowered),
                    crate::compile::key(lowered.get(..c).unwrap_or_default()),
                );
                Ok(Action {
                    lower,
                    colon: c,
                    keys,
                })
            }
            _ => Err(Action::problem(text)),
        }
    }

    /// Reads an action where there is no catalog to check it against (a self-contained
    /// case): the whole name is checked here.
    pub fn parse_checked(text: &str) -> Result<Action, String> {
        let action = Action::parse(text)?;
        let problem = Action::problem(text);
        if problem.ends_with("of the catalog") {
            Ok(action)
        } else {
            Err(problem)
        }
    }

    /// What is wrong with an action that is not in the catalog: a wildcard (a request names
    /// one action, and `orders:Delete*` would match the statements of the actions it covers
    /// only by accident), the shape (`service:Action`: a service prefix of letters, digits
    /// and hyphens, a name of letters and digits), or neither (the catalog has no such
    /// action).
    pub fn problem(text: &str) -> String {
        if text.contains(['*', '?']) {
            return format!(
                "`{text}` holds a wildcard: a request names one action, such as `s3:GetObject`"
            );
        }
        let mut colon = None;
        let mut well_formed = true;
        for (i, &b) in text.as_bytes().iter().enumerate() {
            match ACTION_BYTES.get(usize::from(b)).copied().unwrap_or(OTHER) {
                ALNUM => {}
                DASH if colon.is_none() => {}
                COLON if colon.is_none() => colon = Some(i),
                _ => {
                    well_formed = false;
                    break;
                }
            }
        }
        match colon {
            Some(c) if well_formed && c > 0 && c + 1 < text.len() => {
                format!("`{text}` is not an action of the catalog")
            }
            _ => format!(
                "`{text}` is not `service:Action` (a service prefix of letters, digits and `-`, \
                 an action name of letters and digits)"
            ),
        }
    }

    /// The lowercase action.
    pub fn as_str(&self) -> &str {
        self.lower.as_str()
    }

    /// The index keys of the action and of its service (see [`crate::compile::key`]).
    pub fn keys(&self) -> (u64, u64) {
        self.keys
    }

    /// The lowercase service prefix.
    pub fn service(&self) -> &str {
        self.as_str().get(..self.colon).unwrap_or_default()
    }

    /// The lowercase action name.
    pub fn name(&self) -> &str {
        self.as_str().get(self.colon + 1..).unwrap_or_default()
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Actions up to this long are lowercased on the stack; AWS's longest are about 60.
const INLINE_ACTION: usize = 64;

/// A lowercase copy of the action, inline when it is short (nearly always), so that
/// building a request does not allocate. `arrayvec` rather than a hand-made buffer: its
/// `ArrayString` hands out `&str` without checking the UTF-8 again on every read.
#[derive(Debug, Clone)]
enum LowerAction {
    Inline(ArrayString<INLINE_ACTION>),
    Heap(String),
}

impl LowerAction {
    fn new(action: &str) -> LowerAction {
        match ArrayString::from(action) {
            Ok(mut inline) => {
                inline.make_ascii_lowercase();
                LowerAction::Inline(inline)
            }
            Err(_) => LowerAction::Heap(action.to_ascii_lowercase()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            LowerAction::Inline(s) => s,
            LowerAction::Heap(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_of_every_form() {
        let p = Principal::from_arn("arn:aws:iam::111111111111:user/eng/bob").unwrap();
        assert_eq!(p.kind, PrincipalKind::User { name: "bob".into() });
        assert_eq!(p.account, "111111111111");
        let s = Principal::from_arn("arn:aws:sts::111111111111:assumed-role/Dev/s1").unwrap();
        assert_eq!(
            s.principal_arn(),
            Some("arn:aws:iam::111111111111:role/Dev")
        );
        assert!(Principal::from_arn("arn:aws:iam::111111111111:root").is_ok());
        assert!(Principal::from_arn("arn:aws:sts::111111111111:federated-user/bob").is_ok());
        for bad in [
            "alice",
            "arn:aws:iam::1:user/a",
            "arn:aws:iam::111111111111:group/g",
            "arn:aws:sts::111111111111:assumed-role/Dev",
        ] {
            assert!(Principal::from_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions_are_lowercased_inline_or_on_the_heap() {
        let short = Action::parse("Orders:GetOrder").unwrap();
        assert_eq!(short.as_str(), "orders:getorder");
        assert_eq!((short.service(), short.name()), ("orders", "getorder"));
        let long_name = format!("Svc:{}", "Ab".repeat(INLINE_ACTION));
        let long = Action::parse(&long_name).unwrap();
        assert!(matches!(long.lower, LowerAction::Heap(_)));
        assert_eq!(long.as_str(), long_name.to_ascii_lowercase());
        assert_eq!(long.service(), "svc");
    }

    #[test]
    fn an_action_is_split_at_its_colon_and_its_problems_are_named() {
        for good in [
            "s3:GetObject",
            "ec2-instance-connect:SendSSHPublicKey",
            "a:b1",
        ] {
            assert!(Action::parse(good).is_ok(), "{good}");
            assert!(Action::problem(good).ends_with("is not an action of the catalog"));
        }
        // No colon, or nothing on a side of it: refused at once.
        for bad in ["GetOrder", "orders:", ":GetOrder", "", "*"] {
            assert!(Action::parse(bad).is_err(), "{bad}");
        }
        // Anything else is refused unless the catalog knows it; what is wrong is named.
        for (bad, why) in [
            ("orders:Delete*", "holds a wildcard"),
            ("orders:Delete?rder", "holds a wildcard"),
            ("orders:*", "holds a wildcard"),
            ("*:*", "holds a wildcard"),
            ("orders:Get:Order", "is not `service:Action`"),
            ("orders:Get Order", "is not `service:Action`"),
            ("orders:GetOrder ", "is not `service:Action`"),
            ("ord ers:GetOrder", "is not `service:Action`"),
            ("orders:GetÖrder", "is not `service:Action`"),
        ] {
            assert!(
                Action::problem(bad).contains(why),
                "{bad}: {}",
                Action::problem(bad)
            );
        }
    }

    #[test]
    fn derived_context_keeps_given_values() {
        let p = Principal::from_arn("arn:aws:iam::111111111111:user/alice").unwrap();
        let mut ctx = Context::new();
        ctx.insert("aws:username", ContextValue::Single("given".into()));
        p.fill_context_defaults(&mut ctx);
        assert_eq!(
            ctx.get("aws:username").and_then(ContextValue::single),
            Some("given")
        );
        assert_eq!(
            ctx.get("aws:principalaccount")
                .and_then(ContextValue::single),
            Some("111111111111")
        );
    }
}
