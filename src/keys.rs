//! The global condition keys (`aws:...`, reference §6) in one typed registry: who supplies
//! each one, and whether its value changes as time passes. The caller's context, the
//! server-owned context and the decision cache all derive from it.
//!
//! **Every `aws:` key that is not a caller's is the server's**: a key missing from the
//! registry (one AWS adds later, or a misspelling) is refused from callers by default.

/// Who supplies a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supplier {
    /// An attribute of the request as the calling service saw it (its network, headers,
    /// the tags it passes). A caller may set it; the server never invents it.
    Caller,
    /// Known to the server; a caller's value is dropped (and counted).
    Server(Fact),
}

/// What a server-owned key describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// The principal: its ARN, type, ids, tags.
    Principal,
    /// The principal's session: issue time, MFA, source identity, session tags.
    Session,
    /// The organization of the principal's, the resource's or another account.
    Organization,
    /// The resource's owner.
    Resource,
    /// The request's path through services (forward access sessions); warden has none.
    RequestPath,
    /// The clock.
    Time,
}

/// One global condition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalKey {
    /// As AWS spells it; a tag family ends with `/` (`aws:RequestTag/`) and names every
    /// key that starts with it.
    pub name: &'static str,
    pub supplier: Supplier,
    /// Its value changes while a snapshot serves, with no change of policy: a decision
    /// that reads it is never cached.
    pub varies_with_time: bool,
}

const fn caller(name: &'static str) -> GlobalKey {
    GlobalKey {
        name,
        supplier: Supplier::Caller,
        varies_with_time: false,
    }
}

const fn server(name: &'static str, fact: Fact) -> GlobalKey {
    GlobalKey {
        name,
        supplier: Supplier::Server(fact),
        varies_with_time: false,
    }
}

const fn clock(name: &'static str, fact: Fact) -> GlobalKey {
    GlobalKey {
        name,
        supplier: Supplier::Server(fact),
        varies_with_time: true,
    }
}

use Fact::*;

/// Every `aws:` key of AWS's "global condition context keys" page (2026), by the page's
/// sections. The caller's keys are the request attributes a calling service sees: its
/// network path, the request's headers and the tags it passes, and the resource a service
/// principal acts for (`aws:SourceArn`, `aws:SourceAccount`). `aws:ResourceTag/` is the
/// caller's unless the bundle declares the resource's tags, which then replace it.
pub static GLOBAL_KEYS: &[GlobalKey] = &[
    // Properties of the principal.
    server("aws:PrincipalArn", Principal),
    server("aws:PrincipalAccount", Principal),
    server("aws:PrincipalOrgPaths", Organization),
    server("aws:PrincipalOrgID", Organization),
    server("aws:PrincipalTag/", Principal),
    server("aws:PrincipalIsAWSService", Principal),
    server("aws:PrincipalServiceName", Principal),
    server("aws:PrincipalServiceNamesList", Principal),
    server("aws:PrincipalType", Principal),
    server("aws:userid", Principal),
    server("aws:username", Principal),
    // Properties of a role session.
    server("aws:AssumedRoot", Session),
    server("aws:FederatedProvider", Session),
    server("aws:TokenIssueTime", Session),
    server("aws:SignInSessionArn", Session),
    clock("aws:MultiFactorAuthAge", Session),
    server("aws:MultiFactorAuthPresent", Session),
    server("aws:ChatbotSourceArn", Session),
    server("aws:Ec2InstanceSourceVpc", Session),
    server("aws:Ec2InstanceSourcePrivateIPv4", Session),
    server("aws:SourceIdentity", Session),
    // Properties of the network.
    caller("aws:SourceIp"),
    caller("aws:SourceVpc"),
    caller("aws:SourceVpcArn"),
    caller("aws:SourceVpce"),
    caller("aws:VpceAccount"),
    server("aws:VpceOrgID", Organization),
    server("aws:VpceOrgPaths", Organization),
    caller("aws:VpcSourceIp"),
    // Properties of the resource.
    server("aws:ResourceAccount", Resource),
    server("aws:ResourceOrgID", Organization),
    server("aws:ResourceOrgPaths", Organization),
    caller("aws:ResourceTag/"),
    // Properties of the request.
    server("aws:CalledVia", RequestPath),
    server("aws:CalledViaFirst", RequestPath),
    server("aws:CalledViaLast", RequestPath),
    server("aws:CalledViaAWSMCP", RequestPath),
    server("aws:ViaAWSService", RequestPath),
    server("aws:ViaAWSMCPService", RequestPath),
    server("aws:IsMcpServiceAction", RequestPath),
    clock("aws:CurrentTime", Time),
    clock("aws:EpochTime", Time),
    caller("aws:referer"),
    caller("aws:RequestedRegion"),
    caller("aws:RequestTag/"),
    caller("aws:TagKeys"),
    caller("aws:SecureTransport"),
    caller("aws:SourceAccount"),
    caller("aws:SourceArn"),
    server("aws:SourceOrgID", Organization),
    server("aws:SourceOrgPaths", Organization),
    caller("aws:UserAgent"),
];

impl GlobalKey {
    /// Whether `name` names a tag family (`aws:RequestTag/`).
    pub fn is_family(&self) -> bool {
        self.name.ends_with('/')
    }

    /// Whether this entry names `lower_key` (lowercase): equal, or a key of the family.
    fn names(&self, lower_key: &str) -> bool {
        if self.is_family() {
            lower_key.len() > self.name.len()
                && lower_key
                    .get(..self.name.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(self.name))
        } else {
            lower_key.eq_ignore_ascii_case(self.name)
        }
    }
}

/// Whether a lowercase key is a global one (`aws:` prefix), registered or not.
pub fn is_global(lower_key: &str) -> bool {
    lower_key.starts_with("aws:")
}

/// The registry by lowercase name (families apart): a caller's every `aws:` key is looked up,
/// and a hash lookup costs a tenth of comparing it with each name (callgrind,
/// `benches/service_misses.rs`).
static BY_NAME: std::sync::LazyLock<rustc_hash::FxHashMap<Box<str>, &'static GlobalKey>> =
    std::sync::LazyLock::new(|| {
        GLOBAL_KEYS
            .iter()
            .filter(|k| !k.is_family())
            .map(|k| (k.name.to_ascii_lowercase().into_boxed_str(), k))
            .collect()
    });

/// The registry's entry for a lowercase key, when it has one.
pub fn find(lower_key: &str) -> Option<&'static GlobalKey> {
    if !is_global(lower_key) {
        return None;
    }
    if let Some(k) = BY_NAME.get(lower_key) {
        return Some(k);
    }
    GLOBAL_KEYS
        .iter()
        .filter(|k| k.is_family())
        .find(|k| k.names(lower_key))
}

/// Who supplies a lowercase key: a service's own keys (`orders:amount`) and the caller's
/// global keys come from the caller; every other `aws:` key, registered or not, from the
/// server.
pub fn supplier(lower_key: &str) -> Supplier {
    if !is_global(lower_key) {
        return Supplier::Caller;
    }
    match find(lower_key) {
        Some(k) => k.supplier,
        // Unregistered: protected by default. Of the facts, the principal's is the
        // closest; none is filled for it.
        None => Supplier::Server(Principal),
    }
}

/// Whether a caller may supply a lowercase key.
pub fn caller_supplies(lower_key: &str) -> bool {
    supplier(lower_key) == Supplier::Caller
}

/// The registry's name for a lowercase key, for a metric label: `unregistered` for an
/// `aws:` key it does not hold, `service` for a service's own key.
pub fn label(lower_key: &str) -> &'static str {
    match find(lower_key) {
        Some(k) => k.name,
        None if is_global(lower_key) => "unregistered",
        None => "service",
    }
}

/// Whether a decision that reads this lowercase key (as a condition key or a policy
/// variable) may change as time passes.
pub fn varies_with_time(lower_key: &str) -> bool {
    find(lower_key).is_some_and(|k| k.varies_with_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aws_key_that_is_not_the_callers_is_the_servers() {
        for (key, caller) in [
            ("aws:sourceip", true),
            ("aws:requesttag/team", true),
            ("aws:resourcetag/env", true),
            ("aws:tagkeys", true),
            ("orders:amount", true),
            ("aws:principalisawsservice", false),
            ("aws:multifactorauthpresent", false),
            ("aws:principaltag/team", false),
            ("aws:viaawsservice", false),
            ("aws:tokenissuetime", false),
            // A family's bare prefix is no key of it, and an unknown key is the server's.
            ("aws:requesttag/", false),
            ("aws:somethingnew", false),
            ("aws:sourceip2", false),
        ] {
            assert_eq!(caller_supplies(key), caller, "{key}");
        }
    }

    #[test]
    fn names_are_unique_and_lookups_ignore_case() {
        for (i, a) in GLOBAL_KEYS.iter().enumerate() {
            assert!(a.name.starts_with("aws:"), "{}", a.name);
            for b in GLOBAL_KEYS.get(i + 1..).unwrap_or_default() {
                assert!(!a.name.eq_ignore_ascii_case(b.name), "{} twice", a.name);
            }
            let lower = a.name.to_ascii_lowercase();
            let probe = if a.is_family() {
                format!("{lower}k")
            } else {
                lower
            };
            assert_eq!(find(&probe).map(|k| k.name), Some(a.name));
        }
        assert_eq!(label("aws:principaltag/team"), "aws:PrincipalTag/");
        assert_eq!(label("aws:nosuchkey"), "unregistered");
        assert_eq!(label("s3:prefix"), "service");
    }

    #[test]
    fn the_clock_keys_vary_with_time() {
        let varying: Vec<&str> = GLOBAL_KEYS
            .iter()
            .filter(|k| k.varies_with_time)
            .map(|k| k.name)
            .collect();
        assert_eq!(
            varying,
            ["aws:MultiFactorAuthAge", "aws:CurrentTime", "aws:EpochTime"]
        );
        assert!(varies_with_time("aws:currenttime"));
        assert!(!varies_with_time("aws:tokenissuetime"));
    }
}
