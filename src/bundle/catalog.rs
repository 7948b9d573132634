//! The service catalog: each service's actions (with an access level), resource types
//! (with ARN formats) and condition keys. It validates policies (an unknown service or
//! action is an error, an unknown condition key a warning) and defines the built-in
//! job-function policies over access levels and service categories.

use std::collections::BTreeMap;

use crate::arn::{ArnPattern, ShortArn};
use crate::json::{Node, Value};
use crate::matcher::Pattern;

use super::read::FileReader;

/// AWS's access levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessLevel {
    List,
    Read,
    Write,
    Tagging,
    PermissionsManagement,
}

impl AccessLevel {
    pub fn from_name(s: &str) -> Option<AccessLevel> {
        Some(match s {
            "List" => AccessLevel::List,
            "Read" => AccessLevel::Read,
            "Write" => AccessLevel::Write,
            "Tagging" => AccessLevel::Tagging,
            "Permissions management" => AccessLevel::PermissionsManagement,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// As the catalog spells it (`GetOrder`).
    pub name: String,
    pub access: AccessLevel,
    /// Resource types the action authorizes; empty for an action without resource-level
    /// permissions (authorized against `*`).
    pub resource_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The lowercase prefix (`orders`).
    pub prefix: String,
    pub name: String,
    /// Categories such as `database`, `network`, `security`: the job-function policies
    /// select services by them.
    pub categories: Vec<String>,
    /// By lowercase name.
    pub actions: BTreeMap<String, Action>,
    /// Resource type name to ARN format.
    pub resource_types: BTreeMap<String, String>,
    /// Lowercase condition keys the service defines (`orders:amount`).
    pub condition_keys: Vec<String>,
}

/// All services, by lowercase prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub services: BTreeMap<String, Service>,
}

impl Catalog {
    /// The services warden itself relies on: `sts` (assuming roles), `iam` and
    /// `organizations` (named by the built-in policies), and `warden` (the admin API's
    /// actions on the bundle's documents, [`crate::fleet::access`]).
    pub fn builtin() -> Catalog {
        use AccessLevel::*;
        let mut c = Catalog::default();
        let svc = |prefix: &str,
                   name: &str,
                   cats: &[&str],
                   actions: &[(&str, AccessLevel, &[&str])],
                   types: &[(&str, &str)],
                   keys: &[&str]| Service {
            prefix: prefix.to_owned(),
            name: name.to_owned(),
            categories: cats.iter().map(|s| (*s).to_owned()).collect(),
            actions: actions
                .iter()
                .map(|(n, a, r)| {
                    (
                        n.to_ascii_lowercase(),
                        Action {
                            name: (*n).to_owned(),
                            access: *a,
                            resource_types: r.iter().map(|s| (*s).to_owned()).collect(),
                        },
                    )
                })
                .collect(),
            resource_types: types
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            condition_keys: keys.iter().map(|k| k.to_ascii_lowercase()).collect(),
        };
        let role: &[&str] = &["role"];
        let user: &[&str] = &["user"];
        let policy: &[&str] = &["policy"];
        c.insert(svc(
            "sts",
            "AWS Security Token Service",
            &["security"],
            &[
                ("AssumeRole", Write, role),
                ("AssumeRoleWithSAML", Write, role),
                ("AssumeRoleWithWebIdentity", Write, role),
                ("TagSession", Tagging, role),
                ("SetSourceIdentity", Write, role),
                ("SetContext", Write, role),
                ("GetCallerIdentity", Read, &[]),
                ("GetSessionToken", Read, &[]),
                ("GetFederationToken", Read, &["user"]),
            ],
            &[
                (
                    "role",
                    "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
                ),
                (
                    "user",
                    "arn:${Partition}:iam::${Account}:user/${UserNameWithPath}",
                ),
            ],
            &[
                "sts:ExternalId",
                "sts:RoleSessionName",
                "sts:SourceIdentity",
                "sts:TransitiveTagKeys",
                "sts:DurationSeconds",
            ],
        ));
        c.insert(svc(
            "iam",
            "AWS Identity and Access Management",
            &["security"],
            &[
                ("ListUsers", List, &[]),
                ("ListRoles", List, &[]),
                ("ListGroups", List, &[]),
                ("ListPolicies", List, &[]),
                ("ListAttachedRolePolicies", List, role),
                ("ListAttachedUserPolicies", List, user),
                ("GetUser", Read, user),
                ("GetRole", Read, role),
                ("GetPolicy", Read, policy),
                ("GetPolicyVersion", Read, policy),
                ("GetAccountAuthorizationDetails", Read, &[]),
                ("CreateUser", Write, user),
                ("DeleteUser", Write, user),
                ("CreateRole", Write, role),
                ("DeleteRole", Write, role),
                ("PassRole", Write, role),
                ("CreateServiceLinkedRole", Write, role),
                ("DeleteServiceLinkedRole", Write, role),
                ("CreateAccessKey", Write, user),
                ("TagRole", Tagging, role),
                ("TagUser", Tagging, user),
                ("AttachRolePolicy", PermissionsManagement, role),
                ("AttachUserPolicy", PermissionsManagement, user),
                ("PutRolePolicy", PermissionsManagement, role),
                ("PutUserPolicy", PermissionsManagement, user),
                ("CreatePolicy", PermissionsManagement, policy),
                ("DeletePolicy", PermissionsManagement, policy),
                ("UpdateAssumeRolePolicy", PermissionsManagement, role),
            ],
            &[
                (
                    "role",
                    "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
                ),
                (
                    "user",
                    "arn:${Partition}:iam::${Account}:user/${UserNameWithPath}",
                ),
                (
                    "policy",
                    "arn:${Partition}:iam::${Account}:policy/${PolicyNameWithPath}",
                ),
            ],
            &[
                "iam:PassedToService",
                "iam:PolicyARN",
                "iam:PermissionsBoundary",
            ],
        ));
        c.insert(svc(
            "organizations",
            "AWS Organizations",
            &["security"],
            &[
                ("DescribeOrganization", Read, &[]),
                ("DescribeEffectivePolicy", Read, &[]),
                ("ListAccounts", List, &[]),
                ("ListPolicies", List, &[]),
                ("AttachPolicy", Write, &[]),
                ("CreatePolicy", Write, &[]),
            ],
            &[],
            &[],
        ));
        c.insert(warden_service());
        c
    }

    fn insert(&mut self, s: Service) {
        self.services.insert(s.prefix.clone(), s);
    }

    pub fn service(&self, prefix: &str) -> Option<&Service> {
        self.services.get(&prefix.to_ascii_lowercase())
    }

    /// The catalog entry of an action (`orders:GetOrder`, any case).
    pub fn action(&self, action: &str) -> Option<(&Service, &Action)> {
        let (svc, name) = action.split_once(':')?;
        let s = self.service(svc)?;
        Some((s, s.actions.get(&name.to_ascii_lowercase())?))
    }

    /// Every action, as `prefix:Name`, with its service and entry.
    pub fn actions(&self) -> impl Iterator<Item = (&Service, &Action)> {
        self.services
            .values()
            .flat_map(|s| s.actions.values().map(move |a| (s, a)))
    }

    /// Checks one action pattern of a policy: `Err` for an unknown service or action,
    /// `Ok(Some(..))` for a warning.
    pub fn check_action(&self, text: &str) -> Result<Option<String>, String> {
        if text == "*" {
            return Ok(None);
        }
        let Some((svc, name)) = text.split_once(':') else {
            return Ok(None); // the policy reader already refused it
        };
        if svc.contains(['*', '?']) {
            return Ok(None);
        }
        let Some(service) = self.service(svc) else {
            return Err(format!("`{text}`: no service `{svc}` in the catalog"));
        };
        let pattern = Pattern::new(&name.to_ascii_lowercase());
        let any = service.actions.keys().any(|a| pattern.matches(a));
        match (pattern.is_exact(), any) {
            (_, true) => Ok(None),
            (true, false) => Err(format!(
                "`{text}`: service `{}` has no action `{name}`",
                service.prefix
            )),
            (false, false) => Ok(Some(format!(
                "`{text}` matches no action of service `{}`",
                service.prefix
            ))),
        }
    }

    /// Whether a condition key is known: a global key, a tag key, or a key the service
    /// declares.
    pub fn knows_key(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        if crate::keys::find(&lower).is_some() {
            return true;
        }
        let Some((svc, _)) = lower.split_once(':') else {
            return false;
        };
        // Identity providers' claims (`accounts.google.com:aud`, `saml:sub`) are keys of
        // web-identity and SAML trust policies.
        if svc.contains('.') || svc == "saml" {
            return true;
        }
        self.service(svc).is_some_and(|s| {
            s.condition_keys.iter().any(|k| {
                // A key declared as `svc:Key/${TagKey}` covers every `svc:Key/...`.
                match k.split_once("/${") {
                    Some((prefix, _)) => lower.starts_with(&format!("{prefix}/")),
                    None => *k == lower,
                }
            })
        })
    }

    /// Reads one catalog file (one service); findings go to `r`.
    pub fn read_service(&mut self, r: &mut FileReader<'_>, node: &Node) {
        let Some(_) = r.object(
            node,
            "$",
            &[
                "prefix",
                "name",
                "categories",
                "actions",
                "resource_types",
                "condition_keys",
            ],
        ) else {
            return;
        };
        let Some((prefix, ppos)) = r.string(node, "$", "prefix") else {
            r.error(
                "missing-key",
                "$",
                node.pos,
                "a catalog service needs a `prefix`",
            );
            return;
        };
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            r.error(
                "invalid-prefix",
                "$.prefix",
                ppos,
                format!("`{prefix}`: a service prefix holds lowercase letters, digits and `-`"),
            );
            return;
        }
        if self.services.contains_key(&prefix) {
            r.error(
                "duplicate-service",
                "$.prefix",
                ppos,
                format!("service `{prefix}` is declared twice (or is built in)"),
            );
            return;
        }
        let name = r
            .string(node, "$", "name")
            .map(|(s, _)| s)
            .unwrap_or_else(|| prefix.clone());
        let categories = r
            .strings(node, "$", "categories")
            .into_iter()
            .map(|(s, _, _)| s)
            .collect();
        let mut resource_types = BTreeMap::new();
        if let Some(rt) = node.get("resource_types")
            && let Some(members) = r.object(rt, "$.resource_types", &[])
        {
            for m in members {
                let mpath = format!("$.resource_types.{}", m.key);
                let Some(arn) = m.value.get("arn").and_then(Node::as_str) else {
                    r.error(
                        "missing-key",
                        &mpath,
                        m.value.pos,
                        "a resource type needs an `arn` format",
                    );
                    continue;
                };
                if !arn.starts_with("arn:") || format_pattern(arn).is_none() {
                    r.error(
                        "invalid-arn-format",
                        &format!("{mpath}.arn"),
                        m.value.pos,
                        format!(
                            "`{arn}` is not an ARN format: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, each `${{Name}}` closed"
                        ),
                    );
                }
                resource_types.insert(m.key.clone(), arn.to_owned());
            }
        }
        let condition_keys: Vec<String> = r
            .strings(node, "$", "condition_keys")
            .into_iter()
            .map(|(k, pos, path)| {
                if !k.to_ascii_lowercase().starts_with(&format!("{prefix}:")) {
                    r.error(
                        "invalid-condition-key",
                        &path,
                        pos,
                        format!("`{k}`: a service's condition keys start with `{prefix}:`"),
                    );
                }
                k.to_ascii_lowercase()
            })
            .collect();
        let mut actions = BTreeMap::new();
        match node.get("actions") {
            None => r.error(
                "missing-key",
                "$",
                node.pos,
                "a catalog service needs `actions`",
            ),
            Some(an) => {
                if let Some(members) = r.object(an, "$.actions", &[]) {
                    for m in members {
                        let mpath = format!("$.actions.{}", m.key);
                        if m.key.is_empty() || !m.key.chars().all(|c| c.is_ascii_alphanumeric()) {
                            r.error(
                                "invalid-action",
                                &mpath,
                                m.key_pos,
                                format!("`{}`: an action name holds letters and digits", m.key),
                            );
                            continue;
                        }
                        if actions.contains_key(&m.key.to_ascii_lowercase()) {
                            r.error(
                                "duplicate-action",
                                &mpath,
                                m.key_pos,
                                format!("action `{}` is declared twice (names ignore case)", m.key),
                            );
                            continue;
                        }
                        let Some(_) =
                            r.object(&m.value, &mpath, &["access", "resources", "condition_keys"])
                        else {
                            continue;
                        };
                        let access = match r.string(&m.value, &mpath, "access") {
                            Some((a, pos)) => match AccessLevel::from_name(&a) {
                                Some(l) => l,
                                None => {
                                    r.error("invalid-access-level", &format!("{mpath}.access"), pos, format!("`{a}`: the access level is one of `List`, `Read`, `Write`, `Tagging`, `Permissions management`"));
                                    continue;
                                }
                            },
                            None => {
                                r.error(
                                    "missing-key",
                                    &mpath,
                                    m.value.pos,
                                    "an action needs an `access` level",
                                );
                                continue;
                            }
                        };
                        let mut types = Vec::new();
                        for (t, pos, path) in r.strings(&m.value, &mpath, "resources") {
                            if !resource_types.contains_key(&t) {
                                r.error(
                                    "unknown-resource-type",
                                    &path,
                                    pos,
                                    format!("`{t}` is not a resource type of service `{prefix}`"),
                                );
                            }
                            types.push(t);
                        }
                        for (k, pos, path) in r.strings(&m.value, &mpath, "condition_keys") {
                            if !k.contains(':') {
                                r.error(
                                    "invalid-condition-key",
                                    &path,
                                    pos,
                                    format!("`{k}` is not a condition key (`service:Key`)"),
                                );
                            }
                        }
                        actions.insert(
                            m.key.to_ascii_lowercase(),
                            Action {
                                name: m.key.clone(),
                                access,
                                resource_types: types,
                            },
                        );
                    }
                }
            }
        }
        self.insert(Service {
            prefix,
            name,
            categories,
            actions,
            resource_types,
            condition_keys,
        });
    }

    /// Checks the actions and condition keys of a policy document that compiled, placing
    /// each finding at its value.
    pub fn check_policy(&self, r: &mut FileReader<'_>, doc: &Node, base: &str) {
        let statements: Vec<(String, &Node)> = match doc.get("Statement").map(|s| &s.value) {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("{base}.Statement[{i}]"), n))
                .collect(),
            Some(Value::Object(_)) => doc
                .get("Statement")
                .map(|n| vec![(format!("{base}.Statement"), n)])
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        for (spath, st) in statements {
            for key in ["Action", "NotAction"] {
                for (text, pos, path) in r.strings(st, &spath, key) {
                    match self.check_action(&text) {
                        Ok(None) => {}
                        Ok(Some(w)) => r.warn("action-matches-nothing", &path, pos, w),
                        Err(e) => r.error("unknown-action", &path, pos, e),
                    }
                }
            }
            if let Some(ops) = st.get("Condition").and_then(Node::as_object) {
                for op in ops {
                    for k in op.value.as_object().unwrap_or_default() {
                        if !self.knows_key(&k.key) {
                            r.warn(
                                "unknown-condition-key",
                                &format!("{spath}.Condition.{}.{}", op.key, k.key),
                                k.key_pos,
                                format!("`{}` is neither a global condition key nor one the catalog declares", k.key),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The `warden` service: one action per kind of bundle document and verb
/// ([`crate::fleet::access::Kind`]), plus `ListDocuments`, each on the document's resource
/// type. Derived from the one table of kinds, so a new kind cannot be forgotten here.
fn warden_service() -> Service {
    use crate::fleet::access::{Kind, Verb};
    let mut actions = BTreeMap::new();
    let mut resource_types = BTreeMap::new();
    for kind in Kind::ALL {
        resource_types.insert(kind.resource_type().to_owned(), kind.arn_format());
        for verb in Verb::ALL {
            let name = format!("{}{}", verb.as_str(), kind.as_str());
            let access = match verb {
                Verb::Get => AccessLevel::Read,
                Verb::Put | Verb::Delete => AccessLevel::PermissionsManagement,
            };
            actions.insert(
                name.to_ascii_lowercase(),
                Action {
                    name,
                    access,
                    resource_types: vec![kind.resource_type().to_owned()],
                },
            );
        }
    }
    resource_types.insert(
        "bundle".to_owned(),
        "arn:${Partition}:warden::${Account}:bundle".to_owned(),
    );
    actions.insert(
        "listdocuments".to_owned(),
        Action {
            name: "ListDocuments".to_owned(),
            access: AccessLevel::List,
            resource_types: vec!["bundle".to_owned()],
        },
    );
    Service {
        prefix: "warden".to_owned(),
        name: "warden".to_owned(),
        categories: vec!["security".to_owned()],
        actions,
        resource_types,
        condition_keys: Vec::new(),
    }
}

/// A catalog ARN format (`arn:${Partition}:orders:${Region}:${Account}:order/${OrderId}`)
/// as the pattern of every ARN of its type: each `${...}` is `*`. `None` unless it has the
/// six parts of an ARN and every `${` is closed.
pub fn format_pattern(format: &str) -> Option<ArnPattern> {
    let text = fill_format(format, |_| "*")?;
    if text.splitn(6, ':').count() < 6 {
        return None;
    }
    ArnPattern::new(&text, false, ShortArn::Never).ok()
}

/// A catalog ARN format with each `${NAME}` replaced by `fill(NAME)`; `None` when a `${`
/// is not closed.
pub fn fill_format<'f>(format: &str, fill: impl Fn(&str) -> &'f str) -> Option<String> {
    let mut out = String::new();
    let mut rest = format;
    while let Some(start) = rest.find("${") {
        out.push_str(rest.get(..start)?);
        let after = rest.get(start + 2..)?;
        let end = after.find('}')?;
        out.push_str(fill(after.get(..end)?));
        rest = after.get(end + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}
