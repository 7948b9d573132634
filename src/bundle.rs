//! A bundle: the whole authorization state as files, one document per file, so the same
//! layout can live as keys under an etcd prefix. Loading reads every file, validates
//! everything at once (references, quotas, names, every policy by kind, the catalog) and
//! yields a checked [`Bundle`] or every finding.
//!
//! Layout (paths relative to the bundle root):
//! ```text
//! organization.json                 the tree: root -> OUs -> accounts, SCP/RCP attachments
//! quotas.json                       optional: quota overrides
//! catalog/SERVICE.json              one service of the service catalog
//! scps/NAME.json, rcps/NAME.json    organization policies
//! accounts/ACCOUNT/account.json     optional: {"name": "prod"}
//! accounts/ACCOUNT/policies/NAME.json   customer managed policy (an IAM policy document)
//! accounts/ACCOUNT/users/NAME.json      user: path, tags, groups, policies, boundary
//! accounts/ACCOUNT/groups/NAME.json     group: path, policies
//! accounts/ACCOUNT/roles/NAME.json      role: path, tags, trust policy, policies, boundary
//! accounts/ACCOUNT/resources/NAME.json  resource-based policy bound to an ARN or pattern
//! routes/LISTENER.json              an Envoy listener's routes and principal sources
//!                                   (HTTP request -> action and resource, see `routes`)
//! accounts/ACCOUNT/oidc-providers/NAME.json  OIDC identity provider: url, client_ids, and
//!                                       its keys: inline `jwks`, `jwks_file` or `jwks_uri`
//! ```

pub mod builtin;
pub mod catalog;
pub mod dir;
pub mod read;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::json::{self, Node, Pos};
use crate::policy::{self, Policy, PolicyKind, Severity};
use catalog::Catalog;
use read::{BundleFinding, FileReader};

pub use dir::MAX_FILE_BYTES;

/// A file's text as a load is given it: owned (`String`), or shared between loads
/// (`Arc<str>`). A source that keeps its files (etcd's) hands the same allocation for a
/// file that did not change, and an incremental load ([`Incremental`],
/// [`crate::digest::Cache`]) that holds that allocation from the previous load then knows
/// the text unchanged by its address alone; any other text is compared byte for byte.
pub trait Text {
    /// The text.
    fn text(&self) -> &str;
    /// The shared allocation holding it, when it is one.
    fn shared(&self) -> Option<&Arc<str>>;
}

impl Text for String {
    fn text(&self) -> &str {
        self
    }
    fn shared(&self) -> Option<&Arc<str>> {
        None
    }
}

impl Text for Arc<str> {
    fn text(&self) -> &str {
        self
    }
    fn shared(&self) -> Option<&Arc<str>> {
        Some(self)
    }
}

/// A bundle's files as sources hand them to the publisher: `relative path -> text`, each
/// text shared (see [`Text`]).
pub type SharedFiles = BTreeMap<String, Arc<str>>;

/// `files` with each text moved into a shared allocation.
pub fn share(files: BTreeMap<String, String>) -> SharedFiles {
    files.into_iter().map(|(p, t)| (p, Arc::from(t))).collect()
}

/// Whether the text `kept` (held since an earlier load) is `text`: by address when `text`
/// is that very allocation, byte for byte otherwise.
fn same_text(kept: &Arc<str>, text: &str, shared: Option<&Arc<str>>) -> bool {
    shared.is_some_and(|s| Arc::ptr_eq(s, kept)) || **kept == *text
}

/// Why a bundle did not load: every error found, plus the warnings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BundleError {
    pub findings: Vec<BundleFinding>,
}

impl BundleError {
    /// Whether every error is about the bundle as a whole (its directory is missing, is
    /// not a directory, or was not read in time) rather than about a file in it.
    pub fn is_about_the_bundle(&self) -> bool {
        let mut errors = self.errors().peekable();
        errors.peek().is_some() && errors.all(|e| e.file.is_empty())
    }

    fn errors(&self) -> impl Iterator<Item = &BundleFinding> {
        self.findings
            .iter()
            .filter(|x| x.finding.severity == Severity::Error)
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line when there is no bundle to speak of: the message names the directory.
        if self.is_about_the_bundle() {
            let messages: Vec<&str> = self.errors().map(|e| e.finding.message.as_str()).collect();
            return f.write_str(&messages.join("; "));
        }
        let errors: Vec<&BundleFinding> = self.errors().collect();
        write!(f, "bundle has {} error(s)", errors.len())?;
        for e in errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// AWS's IAM quotas (reference §8.3), adjustable in `quotas.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    pub managed_policies_per_user: u64,
    pub managed_policies_per_role: u64,
    pub managed_policies_per_group: u64,
    pub groups_per_user: u64,
    pub inline_chars_per_user: u64,
    pub inline_chars_per_group: u64,
    pub inline_chars_per_role: u64,
    pub managed_policy_chars: u64,
    pub trust_policy_chars: u64,
    pub org_policy_chars: u64,
    pub org_policies_per_node: u64,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            managed_policies_per_user: 10,
            managed_policies_per_role: 10,
            managed_policies_per_group: 10,
            groups_per_user: 10,
            inline_chars_per_user: 2_048,
            inline_chars_per_group: 5_120,
            inline_chars_per_role: 10_240,
            managed_policy_chars: 6_144,
            trust_policy_chars: 2_048,
            org_policy_chars: 5_120,
            org_policies_per_node: 5,
        }
    }
}

/// A node of the organization tree (the root or an OU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUnit {
    pub id: String,
    pub name: String,
    pub scps: Vec<String>,
    pub rcps: Vec<String>,
    pub units: Vec<OrgUnit>,
    pub accounts: Vec<OrgAccount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub scps: Vec<String>,
    pub rcps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// `o-...`
    pub id: String,
    pub management_account: String,
    pub root: OrgUnit,
}

/// A reference to a managed policy, resolved to its ARN.
pub type PolicyArn = String;

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub tags: Vec<(String, String)>,
    pub groups: Vec<String>,
    pub inline: Vec<Arc<Policy>>,
    pub managed: Vec<PolicyArn>,
    pub boundary: Option<PolicyArn>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub inline: Vec<Arc<Policy>>,
    pub managed: Vec<PolicyArn>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub tags: Vec<(String, String)>,
    pub trust: Arc<Policy>,
    pub inline: Vec<Arc<Policy>>,
    pub managed: Vec<PolicyArn>,
    pub boundary: Option<PolicyArn>,
    pub max_session_duration: u64,
}

/// A resource-based policy bound to an ARN or an ARN pattern.
#[derive(Debug, Clone)]
pub struct ResourcePolicy {
    pub arn: String,
    pub tags: Vec<(String, String)>,
    pub policy: Arc<Policy>,
}

#[derive(Debug, Clone, Default)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub users: Vec<Arc<User>>,
    pub groups: Vec<Arc<Group>>,
    pub roles: Vec<Arc<Role>>,
    pub resources: Vec<Arc<ResourcePolicy>>,
    /// OIDC identity providers, each by its ARN (`arn:aws:iam::ACCT:oidc-provider/HOST`).
    pub oidc_providers: Vec<Arc<crate::oidc::OidcProvider>>,
}

/// A loaded, fully validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub organization: Option<Organization>,
    pub catalog: Catalog,
    pub quotas: Quotas,
    pub accounts: BTreeMap<String, Account>,
    /// Managed policies by ARN: customer managed and built-in.
    pub managed: BTreeMap<PolicyArn, Arc<Policy>>,
    pub scps: BTreeMap<String, Arc<Policy>>,
    pub rcps: BTreeMap<String, Arc<Policy>>,
    /// Envoy listeners by name (`routes/NAME.json`), checked against everything above.
    pub listeners: BTreeMap<String, Arc<crate::routes::Listener>>,
    pub warnings: Vec<BundleFinding>,
    /// Each policy's JSON text, when loaded with [`load_files_with_sources`]; else empty.
    pub sources: Sources,
    /// Each policy's file, when loaded with [`load_files_with_places`]; else empty.
    pub places: Places,
}

/// The partition of every ARN warden builds.
pub const PARTITION: &str = "aws";

/// Whether `partition` is [`PARTITION`]: a slice pattern, compared in place (`==` calls
/// `memcmp` for three bytes, on every request).
pub fn is_partition(partition: &str) -> bool {
    matches!(partition.as_bytes(), b"aws")
}

/// Reads every file of a bundle directory into `relative path -> text` (paths relative to
/// `dir`, `/`-separated), or every finding.
///
/// - **Regular files only.** A FIFO, socket or device is a `not-a-regular-file` finding; it
///   is never read, and files are opened non-blocking and checked again once open, so the
///   read cannot block on one swapped in meanwhile.
/// - **Bounded.** A file over [`MAX_FILE_BYTES`] is `file-too-large`, judged by its size
///   before reading and by what it yields while reading, so no more than that is read.
///   Walking stops past [`dir::MAX_ENTRIES`] entries and [`dir::MAX_DEPTH`] levels.
/// - **Symlinks followed**, to files and directories, also outside `dir` (a Kubernetes
///   volume's files and `git-sync`'s checkout are symlinks). A link to a directory that
///   holds it (`.`, `..`, a cycle of links) is a `symlink-loop` finding naming the link.
/// - **Skipped:** hidden entries (names starting with `.`, such as `.git` and a Kubernetes
///   volume's `..data` and `..TIMESTAMP`), and editors' `~` and `.swp` files. A visible link
///   into a hidden directory is read, once, under its own name: that is how a ConfigMap
///   volume shows each key.
/// - **Text:** UTF-8 (`invalid-encoding` otherwise); a leading byte-order mark is removed
///   when the file is parsed ([`load_files`]).
/// - A missing or non-directory `dir` is one finding about the bundle itself (an empty
///   `file`) whose message names `dir`.
///
/// Plain blocking `std` I/O, callable from any thread; the caller bounds its time (the
/// directory source runs it on a worker with its own limit; the CLI uses
/// [`read_dir_within`]).
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, BundleError> {
    dir::read(dir)
}

/// [`read_dir`], given up after `limit` with a `read-timeout` finding: the read runs on a
/// thread of its own, which is left behind if a file system hangs.
pub fn read_dir_within(
    dir: &Path,
    limit: std::time::Duration,
) -> Result<BTreeMap<String, String>, BundleError> {
    dir::read_within(dir, limit)
}

/// Loads a bundle directory ([`read_dir`], then [`load_files`]).
pub fn load_dir(dir: &Path) -> Result<Bundle, BundleError> {
    load_files(&read_dir(dir)?)
}

/// Loads a bundle from `relative path -> text` (a directory's files or an etcd prefix).
pub fn load_files<T: Text>(files: &BTreeMap<String, T>) -> Result<Bundle, BundleError> {
    Loader::default().load(files)
}

/// Like [`load_files`], keeping each policy's JSON text in [`Bundle::sources`]: for tools
/// that write a decision's policies out (`warden authorize --case`), not for serving.
pub fn load_files_with_sources(files: &BTreeMap<String, String>) -> Result<Bundle, BundleError> {
    Loader {
        sources: Some(Sources::default()),
        ..Loader::default()
    }
    .load(files)
}

/// Like [`load_files`], keeping the file each policy was read from in [`Bundle::places`]:
/// for tools that name a statement at `file:line:column` (`warden test`'s coverage).
pub fn load_files_with_places(files: &BTreeMap<String, String>) -> Result<Bundle, BundleError> {
    Loader {
        places: Some(Places::default()),
        ..Loader::default()
    }
    .load(files)
}

/// The file of each policy of a bundle (its statements' positions are in that file), by
/// the policy's allocation as in [`Sources`]. Built-in policies have none.
#[derive(Debug, Clone, Default)]
pub struct Places {
    by_policy: rustc_hash::FxHashMap<usize, Arc<str>>,
}

impl Places {
    /// The bundle-relative path `p` was read from, when kept.
    pub fn of(&self, p: &Arc<Policy>) -> Option<&str> {
        self.by_policy.get(&(Arc::as_ptr(p) as usize)).map(|f| &**f)
    }

    fn add(&mut self, p: &Arc<Policy>, file: &str) {
        self.by_policy.insert(Arc::as_ptr(p) as usize, file.into());
    }
}

/// The JSON text of each policy of a bundle, by the policy's allocation: the bundle holds
/// every policy for as long as it lives, so no two of its policies share an address.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    by_policy: rustc_hash::FxHashMap<usize, String>,
}

impl Sources {
    /// The text `p` was compiled from, when kept.
    pub fn of(&self, p: &Arc<Policy>) -> Option<&str> {
        self.by_policy
            .get(&(Arc::as_ptr(p) as usize))
            .map(String::as_str)
    }

    fn add(&mut self, p: &Arc<Policy>, text: String) {
        self.by_policy.insert(Arc::as_ptr(p) as usize, text);
    }
}

#[derive(Default)]
struct Loader {
    findings: Vec<BundleFinding>,
    /// `Some` when the policies' texts are kept.
    sources: Option<Sources>,
    /// `Some` when the policies' files are kept.
    places: Option<Places>,
    /// `Some` when loading incrementally ([`Incremental`]): the previous load's documents
    /// and this load's. Never with `sources` or `places`, whose keys are allocations.
    reuse: Option<Reuse>,
}

/// Loads bundles one after another, each document's result reused from the previous load
/// when it is provably what loading it again would give: a write's cost is then the
/// changed documents' (parsed and validated again) plus the checks across documents,
/// which always run.
///
/// A document's result (its policy, user, group, role or resource policy, and every
/// finding it made, with their places) is kept by its path and reused only when
/// - its text is byte for byte the text it was loaded from (kept with the result);
/// - the quotas and the catalog (everything a document's validation reads beyond its
///   own text, its path and its account) are equal to the ones it was loaded under: a
///   change of `quotas.json` or of `catalog/` loads every document again;
/// - every managed policy name it resolved (attachments, boundaries) resolves to the
///   same ARN, or to none, as before (asked again only when the managed policies, or
///   those that did not load, are not the same names as in the previous load).
///
/// Everything else is done again on every load: `organization.json`, `quotas.json`,
/// `catalog/`, `account.json`, OIDC providers, listeners, and every check across
/// documents (names, groups, attachments to the organization). The entries of documents
/// no longer in the bundle are dropped, so what is kept is bounded by the bundle itself.
///
/// A load whose files differ from the last load's only in the texts of customer managed
/// policies, users, groups, roles and resource policies (the same paths, every text
/// shared) starts from the last load's bundle, when that load succeeded and its bundle
/// was handed back ([`Incremental::keep`]): only the changed documents are loaded again
/// and put in its place, and the checks they take part in run again (their account's
/// names and groups). Anything else is a whole load as above: a path added or removed,
/// any other file changed, a finding in what runs again (now or in the last load, so
/// that the bundle's warnings stay the very list a whole load makes), a role whose ARN
/// changed. So a write of one document costs a walk over the paths and its own load, not
/// every document's.
#[derive(Default)]
pub struct Incremental {
    memo: Memo,
    /// The last bundle loaded, handed back by [`Incremental::keep`], and its files.
    last: Option<Last>,
    /// The files of the last load, when it can be a [`Last`]: it succeeded, every text
    /// shared.
    loaded: Option<Vec<(String, Arc<str>)>>,
    /// When the last load started from the one before it ([`Incremental::changed`]): the
    /// indices of the files whose text changed, and of those given as another allocation
    /// of the same text.
    changed: Option<(Vec<usize>, Vec<usize>)>,
}

/// A bundle loaded, and its files in path order (each text the
/// allocation it was loaded from, held so that no other text can take its address).
struct Last {
    bundle: Bundle,
    files: Vec<(String, Arc<str>)>,
}

/// What [`Incremental`] keeps of its last load.
#[derive(Default)]
struct Memo {
    /// The ARNs of the managed policies, then of the customer policies that did not load:
    /// what a name resolves to depends on these alone (and the account).
    names: Option<(Vec<String>, Vec<String>)>,
    /// The quotas and catalog the documents were loaded under.
    env: Option<(Quotas, Catalog)>,
    /// The built-in policies for that catalog: kept, so that their allocations (and the
    /// compiled sets that hold them) survive a load.
    builtins: Option<Builtins>,
    /// Each document's result, by path: kept in place from load to load, each entry
    /// marked with the last load that found it (reused or loaded); the others are dropped
    /// when a load ends.
    docs: rustc_hash::FxHashMap<String, Doc>,
    /// The number of the last load.
    generation: u64,
    /// Each account's checks across its documents, by account id.
    checks: rustc_hash::FxHashMap<String, Arc<Checked>>,
}

/// What the checks across one account's documents found ([`Loader::check_account`]),
/// and what they read: its users, groups and roles (each the result of its document,
/// whose text it holds). The same allocations, in the same order, find the same.
struct Checked {
    users: Vec<Arc<User>>,
    groups: Vec<Arc<Group>>,
    roles: Vec<Arc<Role>>,
    findings: Vec<BundleFinding>,
}

#[derive(Clone)]
struct Builtins {
    managed: Vec<Arc<Policy>>,
    full_aws_access: Arc<Policy>,
}

/// One document's result.
struct Doc {
    /// The text it was loaded from: held, so that a text given again as this very
    /// allocation is known to be it by address ([`Text`]).
    text: Arc<str>,
    /// The last load that found it ([`Memo::docs`]).
    seen: u64,
    findings: Vec<BundleFinding>,
    /// Each managed policy name the document resolved, and what it resolved to.
    lookups: Vec<(String, Option<PolicyArn>)>,
    out: Out,
}

#[derive(Clone)]
enum Out {
    Policy(Option<Arc<Policy>>),
    User(Option<Arc<User>>),
    Group(Option<Arc<Group>>),
    Role(Option<Arc<Role>>),
    Resource(Option<Arc<ResourcePolicy>>),
}

/// An incremental load in progress.
struct Reuse {
    old: Memo,
    /// Whether the quotas and catalog are the ones `old`'s documents were loaded under.
    same_env: bool,
    /// Whether the managed policies (and those that did not load) have the names they had
    /// in `old`: every name then resolves as it did.
    same_names: bool,
    names: Option<(Vec<String>, Vec<String>)>,
    env: Option<(Quotas, Catalog)>,
    builtins: Option<Builtins>,
    /// The previous load's documents (taken from `old`), and this load's as it finds
    /// them, marked with `generation`.
    docs: rustc_hash::FxHashMap<String, Doc>,
    generation: u64,
    checks: rustc_hash::FxHashMap<String, Arc<Checked>>,
    reused: usize,
    loaded: usize,
}

/// How much of a load [`Incremental`] reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reused {
    /// Documents whose previous result was reused.
    pub documents: usize,
    /// Documents parsed and validated.
    pub loaded: usize,
    /// Whether the load started from the last load's bundle (see [`Incremental`]).
    pub patched: bool,
}

impl Reuse {
    /// Notes the names managed policies resolve among, and whether they are the old ones.
    fn note_names(
        &mut self,
        managed: &BTreeMap<PolicyArn, Arc<Policy>>,
        broken: &std::collections::BTreeSet<String>,
    ) {
        let same = |old: &(Vec<String>, Vec<String>)| {
            old.0.iter().eq(managed.keys()) && old.1.iter().eq(broken.iter())
        };
        match self.old.names.take() {
            Some(old) if same(&old) => {
                self.same_names = true;
                self.names = Some(old);
            }
            _ => {
                self.same_names = false;
                self.names = Some((
                    managed.keys().cloned().collect(),
                    broken.iter().cloned().collect(),
                ));
            }
        }
    }
}

impl Incremental {
    /// Loads `files` as [`load_files`] does (the same bundle, or the same findings in the
    /// same order), reusing what the previous load found for every unchanged document.
    pub fn load<T: Text>(&mut self, files: &BTreeMap<String, T>) -> Result<Bundle, BundleError> {
        self.load_counted(files).0
    }

    /// [`Incremental::load`], and how much it reused.
    pub fn load_counted<T: Text>(
        &mut self,
        files: &BTreeMap<String, T>,
    ) -> (Result<Bundle, BundleError>, Reused) {
        self.loaded = None;
        self.changed = None;
        if let Some(last) = self.last.take()
            && let Some(patched) = self.patch(last, files)
        {
            return patched;
        }
        let (loaded, counted) = self.load_whole(files);
        if loaded.is_ok() {
            self.loaded = files
                .iter()
                .map(|(path, t)| Some((path.clone(), t.shared()?.clone())))
                .collect();
        }
        (loaded, counted)
    }

    /// When the last load succeeded starting from the bundle of the one before it (its
    /// files then had the very paths of that load's, every text shared): the indices, in
    /// path order, of the files whose text changed, and of the files given as another
    /// allocation of the same text (a source that read them again). `None` after any
    /// other load.
    pub fn changed(&self) -> Option<(&[usize], &[usize])> {
        self.changed
            .as_ref()
            .map(|(changed, replaced)| (changed.as_slice(), replaced.as_slice()))
    }

    /// Hands back `bundle`, the one the last load returned, for the next load to start
    /// from (see [`Incremental`]). Nothing when that load cannot be one to start from.
    pub fn keep(&mut self, bundle: Bundle) {
        self.last = self.loaded.take().map(|files| Last { bundle, files });
    }

    /// The load of `files` from `last`, when they differ from its files only in documents
    /// that load again without a finding (see [`Incremental`]); `None` otherwise, with
    /// the memo as valid as before (each document's result is its text's).
    fn patch<T: Text>(
        &mut self,
        mut last: Last,
        files: &BTreeMap<String, T>,
    ) -> Option<(Result<Bundle, BundleError>, Reused)> {
        if files.len() != last.files.len() {
            return None;
        }
        let (mut changed, mut replaced): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for (i, ((path, t), (was_path, was))) in files.iter().zip(&mut last.files).enumerate() {
            let shared = t.shared()?;
            if path != was_path {
                return None;
            }
            if Arc::ptr_eq(shared, was) {
                continue;
            }
            // This allocation is the source's now, changed or not.
            let same = **was == *t.text();
            *was = shared.clone();
            if same {
                replaced.push(i);
            } else {
                changed.push(i);
            }
        }
        let mut memo = std::mem::take(&mut self.memo);
        let mut loader = Loader {
            reuse: Some(Reuse {
                old: Memo {
                    checks: std::mem::take(&mut memo.checks),
                    ..Memo::default()
                },
                same_env: true,
                same_names: true,
                names: None,
                env: None,
                builtins: None,
                docs: std::mem::take(&mut memo.docs),
                // The same load as far as the memo goes: every document it holds is still
                // in the bundle, none to drop.
                generation: memo.generation,
                checks: rustc_hash::FxHashMap::default(),
                reused: 0,
                loaded: 0,
            }),
            ..Loader::default()
        };
        let patched = loader.patch(&mut last, &changed);
        if let Some(reuse) = loader.reuse.take() {
            memo.docs = reuse.docs;
            memo.checks = reuse.old.checks;
            memo.checks.extend(reuse.checks);
        }
        self.memo = memo;
        patched?;
        // A text given as another allocation of the same bytes (a source that read it
        // again) is adopted, as a whole load adopts it: the memo lets go of the old one.
        for &i in &replaced {
            if let Some((path, text)) = last.files.get(i)
                && let Some(doc) = self.memo.docs.get_mut(path)
                && *doc.text == **text
            {
                doc.text = text.clone();
            }
        }
        let documents = self.memo.docs.len();
        let counted = Reused {
            documents: documents.saturating_sub(changed.len()),
            loaded: changed.len(),
            patched: true,
        };
        self.loaded = Some(last.files);
        self.changed = Some((changed, replaced));
        Some((Ok(last.bundle), counted))
    }

    fn load_whole<T: Text>(
        &mut self,
        files: &BTreeMap<String, T>,
    ) -> (Result<Bundle, BundleError>, Reused) {
        let mut old = std::mem::take(&mut self.memo);
        let docs = std::mem::take(&mut old.docs);
        let generation = old.generation.wrapping_add(1);
        let mut loader = Loader {
            reuse: Some(Reuse {
                old,
                same_env: false,
                same_names: false,
                names: None,
                env: None,
                builtins: None,
                docs,
                generation,
                checks: rustc_hash::FxHashMap::default(),
                reused: 0,
                loaded: 0,
            }),
            ..Loader::default()
        };
        let loaded = loader.run(files);
        let mut counted = Reused::default();
        if let Some(reuse) = loader.reuse.take() {
            counted = Reused {
                documents: reuse.reused,
                loaded: reuse.loaded,
                patched: false,
            };
            // The documents this load did not find (no longer in the bundle, or loaded
            // under a name that changed) are dropped; the old memo drops here.
            let mut docs = reuse.docs;
            docs.retain(|_, doc| doc.seen == generation);
            self.memo = Memo {
                names: reuse.names,
                env: reuse.env,
                builtins: reuse.builtins,
                docs,
                generation,
                checks: reuse.checks,
            };
        }
        (loaded, counted)
    }
}

/// The organization file, which every bundle has.
const ORGANIZATION: &str = "organization.json";

/// A file's JSON text: without a leading UTF-8 byte-order mark, which some Windows editors
/// write and JSON does not allow. Columns then count from the first visible character.
fn json_text(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// A file's text parsed as JSON, or a finding.
fn parse_file(findings: &mut Vec<BundleFinding>, file: &str, text: &str) -> Option<Node> {
    match json::parse(json_text(text)) {
        Ok(n) => Some(n),
        Err(e) => {
            FileReader { file, findings }.error("invalid-json", "$", e.pos, e.message);
            None
        }
    }
}

/// An IAM name: letters, digits and `+=,.@_-`, 1 to `max` characters.
fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.chars().count() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// An IAM path: `/` or `/a/b/`, at most 512 characters.
fn valid_path(path: &str) -> bool {
    path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && !path.contains("//")
        && path.chars().all(|c| c.is_ascii_graphic())
}

/// A file under `accounts/ACCT/`: its path, what it is, its text (and shared allocation).
type AccountEntry<'a> = (&'a str, AccountFile<'a>, (&'a str, Option<&'a Arc<str>>));

/// What a file under `accounts/ACCT/` is.
enum AccountFile<'a> {
    Account,
    Policy(&'a str),
    User(&'a str),
    Group(&'a str),
    Role(&'a str),
    Resource,
    OidcProvider(&'a str),
}

impl<'a> AccountFile<'a> {
    /// What the file at `rest` (its path under `accounts/ACCT/`, split at `/`) is.
    fn of(rest: &[&'a str]) -> Option<AccountFile<'a>> {
        match rest {
            ["account.json"] => Some(AccountFile::Account),
            ["policies", f] => f.strip_suffix(".json").map(AccountFile::Policy),
            ["users", f] => f.strip_suffix(".json").map(AccountFile::User),
            ["groups", f] => f.strip_suffix(".json").map(AccountFile::Group),
            ["roles", f] => f.strip_suffix(".json").map(AccountFile::Role),
            ["resources", f] if f.ends_with(".json") => Some(AccountFile::Resource),
            ["oidc-providers", f] => f.strip_suffix(".json").map(AccountFile::OidcProvider),
            _ => None,
        }
    }
}

impl Loader {
    /// A customer managed policy's document (`arn` its ARN), reused when unchanged.
    fn managed_policy(
        &mut self,
        file: &str,
        (text, shared): (&str, Option<&Arc<str>>),
        arn: &str,
        quotas: &Quotas,
        catalog: &Catalog,
    ) -> Out {
        self.document(file, (text, shared), None, |this| {
            Out::Policy(parse_file(&mut this.findings, file, text).and_then(|node| {
                this.policy(
                    file,
                    "$",
                    &node,
                    PolicyKind::Identity,
                    arn,
                    Some(quotas.managed_policy_chars),
                    catalog,
                )
            }))
        })
    }

    /// A user's, group's, role's or resource policy's document, reused when unchanged;
    /// `None` for another kind of file.
    fn identity(
        &mut self,
        file: &str,
        kind: &AccountFile<'_>,
        (text, shared): (&str, Option<&Arc<str>>),
        cx: &Cx<'_>,
    ) -> Option<Out> {
        let out = match kind {
            AccountFile::User(name) => self.document(file, (text, shared), Some(cx), |this| {
                Out::User(
                    parse_file(&mut this.findings, file, text)
                        .and_then(|node| this.user(file, name, &node, cx))
                        .map(Arc::new),
                )
            }),
            AccountFile::Group(name) => self.document(file, (text, shared), Some(cx), |this| {
                Out::Group(
                    parse_file(&mut this.findings, file, text)
                        .and_then(|node| this.group(file, name, &node, cx))
                        .map(Arc::new),
                )
            }),
            AccountFile::Role(name) => self.document(file, (text, shared), Some(cx), |this| {
                Out::Role(
                    parse_file(&mut this.findings, file, text)
                        .and_then(|node| this.role(file, name, &node, cx))
                        .map(Arc::new),
                )
            }),
            AccountFile::Resource => self.document(file, (text, shared), Some(cx), |this| {
                Out::Resource(
                    parse_file(&mut this.findings, file, text)
                        .and_then(|node| this.resource(file, &node, cx))
                        .map(Arc::new),
                )
            }),
            AccountFile::Account | AccountFile::Policy(_) | AccountFile::OidcProvider(_) => {
                return None;
            }
        };
        Some(out)
    }

    /// Loads the documents of `last.files` at `changed` again and puts each result in
    /// `last.bundle` where the document's previous result was; then runs the checks of
    /// each account whose users, groups or roles changed. `None` (the bundle then half
    /// changed, to be dropped) when a changed file is not such a document, when anything
    /// is found now or was found before in what runs again (so the bundle's findings are
    /// the same list, from the documents and checks that did not run), or when a role's
    /// ARN changed (listeners name roles by ARN).
    fn patch(&mut self, last: &mut Last, changed: &[usize]) -> Option<()> {
        let Last { bundle, files } = last;
        let no_broken = std::collections::BTreeSet::new();
        // Managed policies first, as a whole load does: identities resolve their names.
        let mut policies = Vec::new();
        let mut documents = Vec::new();
        for &i in changed {
            let (path, text) = files.get(i)?;
            let found_before = self
                .reuse
                .as_ref()?
                .docs
                .get(path.as_str())
                .is_none_or(|doc| !doc.findings.is_empty());
            if found_before {
                return None;
            }
            let parts: smallvec::SmallVec<[&str; 5]> = path.split('/').collect();
            let ["accounts", acct, rest @ ..] = parts.as_slice() else {
                return None;
            };
            match AccountFile::of(rest)? {
                AccountFile::Policy(name) => {
                    let arn = format!("arn:{PARTITION}:iam::{acct}:policy/{name}");
                    bundle.managed.get(&arn)?;
                    let file = (&**text, Some(text));
                    let out =
                        self.managed_policy(path, file, &arn, &bundle.quotas, &bundle.catalog);
                    let Out::Policy(Some(p)) = out else {
                        return None;
                    };
                    policies.push((arn, p));
                }
                AccountFile::Account | AccountFile::OidcProvider(_) => return None,
                _ => documents.push((i, *acct, rest.first().copied()?)),
            }
        }
        if !self.findings.is_empty() {
            return None;
        }
        for (arn, p) in policies {
            bundle.managed.insert(arn, p);
        }
        let mut outs = Vec::with_capacity(documents.len());
        for &(i, acct, dir) in &documents {
            let (path, text) = files.get(i)?;
            let parts: smallvec::SmallVec<[&str; 5]> = path.split('/').collect();
            let kind = AccountFile::of(parts.get(2..)?)?;
            let cx = Cx {
                acct,
                quotas: &bundle.quotas,
                catalog: &bundle.catalog,
                managed: &bundle.managed,
                broken: &no_broken,
                lookups: std::cell::RefCell::default(),
            };
            let out = self.identity(path, &kind, (&**text, Some(text)), &cx)?;
            // Its place among its account's documents of its kind, all of which loaded
            // (as many results of the kind as files in its directory, checked below).
            let dir = format!("accounts/{acct}/{dir}/");
            let start = files.partition_point(|(p, _)| p.as_str() < dir.as_str());
            let count = files
                .get(start..)?
                .iter()
                .take_while(|(p, _)| p.starts_with(&dir))
                .count();
            outs.push((acct.to_owned(), i.checked_sub(start)?, count, out));
        }
        if !self.findings.is_empty() {
            return None;
        }
        let mut checked: Vec<String> = Vec::new();
        for (acct, rank, count, out) in outs {
            let account = bundle.accounts.get_mut(&acct)?;
            let names = match out {
                Out::User(Some(u)) if account.users.len() == count => {
                    let was = account.users.get_mut(rank)?;
                    (was.name == u.name).then(|| *was = u)
                }
                Out::Group(Some(g)) if account.groups.len() == count => {
                    let was = account.groups.get_mut(rank)?;
                    (was.name == g.name).then(|| *was = g)
                }
                Out::Role(Some(r)) if account.roles.len() == count => {
                    let was = account.roles.get_mut(rank)?;
                    (was.name == r.name && was.arn == r.arn).then(|| *was = r)
                }
                Out::Resource(Some(r)) if account.resources.len() == count => {
                    let was = account.resources.get_mut(rank)?;
                    *was = r;
                    continue;
                }
                _ => None,
            };
            names?;
            if !checked.contains(&acct) {
                checked.push(acct);
            }
        }
        for acct in checked {
            let checks = &self.reuse.as_ref()?.old.checks;
            if checks.get(&acct).is_none_or(|c| !c.findings.is_empty()) {
                return None;
            }
            let account = bundle.accounts.get(&acct)?;
            let prefix = format!("accounts/{acct}/");
            let start = files.partition_point(|(p, _)| p.as_str() < prefix.as_str());
            let entries: Vec<AccountEntry<'_>> = files
                .get(start..)?
                .iter()
                .take_while(|(p, _)| p.starts_with(&prefix))
                .filter_map(|(p, text)| {
                    let parts: Vec<&str> = p.split('/').skip(2).collect();
                    let kind = AccountFile::of(&parts)?;
                    Some((p.as_str(), kind, (&**text, Some(text))))
                })
                .collect();
            self.checked_account(account, &entries, &bundle.quotas);
        }
        self.findings.is_empty().then_some(())
    }

    fn reader<'a>(&'a mut self, file: &'a str) -> FileReader<'a> {
        FileReader {
            file,
            findings: &mut self.findings,
        }
    }

    fn load<T: Text>(mut self, files: &BTreeMap<String, T>) -> Result<Bundle, BundleError> {
        self.run(files)
    }

    /// The previous result of document `file`, when it is reused (see [`Incremental`]):
    /// its findings are added again, in order.
    fn reused(
        &mut self,
        file: &str,
        text: &str,
        shared: Option<&Arc<str>>,
        cx: Option<&Cx<'_>>,
    ) -> Option<Out> {
        let reuse = self.reuse.as_mut()?;
        if !reuse.same_env {
            return None;
        }
        let doc = reuse.docs.get_mut(file)?;
        // Found once per load (a path is one file); never one this load made.
        if doc.seen == reuse.generation || !same_text(&doc.text, text, shared) {
            return None;
        }
        let same_lookups = reuse.same_names
            || doc.lookups.iter().all(|(name, arn)| match cx {
                Some(cx) => cx.resolve_unrecorded(name) == *arn,
                None => false,
            });
        if !same_lookups {
            return None;
        }
        // Kept in place for this load: nothing moved or allocated per document.
        doc.seen = reuse.generation;
        reuse.reused += 1;
        // The same text in another allocation: this one is what the source keeps now,
        // so the next load knows it by address.
        if let Some(s) = shared
            && !Arc::ptr_eq(s, &doc.text)
        {
            doc.text = s.clone();
        }
        self.findings.extend(doc.findings.iter().cloned());
        Some(doc.out.clone())
    }

    /// Loads document `file` with `run`, keeping its result for the next load when
    /// loading incrementally.
    fn document(
        &mut self,
        file: &str,
        (text, shared): (&str, Option<&Arc<str>>),
        cx: Option<&Cx<'_>>,
        run: impl FnOnce(&mut Loader) -> Out,
    ) -> Out {
        if let Some(out) = self.reused(file, text, shared, cx) {
            return out;
        }
        let before = self.findings.len();
        if let Some(cx) = cx {
            cx.lookups.borrow_mut().clear();
        }
        let out = run(self);
        if let Some(reuse) = self.reuse.as_mut() {
            reuse.loaded += 1;
            let doc = Doc {
                text: shared.cloned().unwrap_or_else(|| text.into()),
                seen: reuse.generation,
                findings: self.findings.get(before..).unwrap_or_default().to_vec(),
                lookups: cx.map(|cx| cx.lookups.take()).unwrap_or_default(),
                out: out.clone(),
            };
            match reuse.docs.get_mut(file) {
                Some(kept) => *kept = doc,
                None => {
                    reuse.docs.insert(file.to_owned(), doc);
                }
            }
        }
        out
    }

    fn run<T: Text>(&mut self, files: &BTreeMap<String, T>) -> Result<Bundle, BundleError> {
        // Without it a bundle would have no SCPs or RCPs at all: a file lost in a copy, or an
        // emptied directory, would silently lift every organization deny.
        if !files.contains_key(ORGANIZATION) {
            self.reader(ORGANIZATION).error(
                "missing-organization",
                "$",
                Pos::default(),
                "a bundle needs `organization.json`; a standalone account is an organization \
                 with one account, its management account (see the README's bundle layout)",
            );
        }
        // Quotas first: they set the size limits of everything else.
        let quotas = match files.get("quotas.json") {
            Some(text) => self.quotas("quotas.json", text.text()),
            None => Quotas::default(),
        };
        let mut catalog = Catalog::builtin();
        for (file, text) in files.iter().filter(|(f, _)| f.starts_with("catalog/")) {
            if !file.ends_with(".json") || file.matches('/').count() != 1 {
                self.reader(file).error(
                    "unexpected-file",
                    "$",
                    Pos::default(),
                    "the catalog holds `catalog/SERVICE.json` files only",
                );
                continue;
            }
            if let Some(node) = parse_file(&mut self.findings, file, text.text()) {
                catalog.read_service(
                    &mut FileReader {
                        file,
                        findings: &mut self.findings,
                    },
                    &node,
                );
            }
        }

        let builtins = self.builtins(&quotas, &catalog);
        let mut managed: BTreeMap<PolicyArn, Arc<Policy>> = builtins
            .managed
            .iter()
            .map(|p| (p.id.to_string(), p.clone()))
            .collect();
        let mut scps = BTreeMap::new();
        let mut rcps = BTreeMap::new();
        scps.insert("FullAWSAccess".to_owned(), builtins.full_aws_access);
        let mut accounts: BTreeMap<String, Account> = BTreeMap::new();
        let mut organization = None;
        // Account files, grouped so that managed policies are known before identities.
        let mut account_files: BTreeMap<&str, Vec<AccountEntry<'_>>> = BTreeMap::new();
        // Listener documents, read last: they name accounts, roles and actions.
        let mut route_files: Vec<(&str, &str, &str)> = Vec::new();

        for (file, t) in files {
            let (text, shared) = (t.text(), t.shared());
            let parts: smallvec::SmallVec<[&str; 4]> = file.split('/').collect();
            let stem = |f: &'_ str| f.strip_suffix(".json").map(str::to_owned);
            match parts.as_slice() {
                [ORGANIZATION] => {
                    if let Some(node) = parse_file(&mut self.findings, file, text) {
                        organization = self.organization(file, &node);
                    }
                }
                ["quotas.json"] => {}
                ["catalog", _] => {}
                ["routes", f] => match f.strip_suffix(".json") {
                    Some(name) if crate::routes::load::valid_listener_name(name) => {
                        route_files.push((file.as_str(), name, text));
                    }
                    _ => self.reader(file).error(
                        "unexpected-file",
                        "$",
                        Pos::default(),
                        "routes are `routes/LISTENER.json` files, the listener's name 1 to 64 letters, digits or `._-`",
                    ),
                },
                [dir @ ("scps" | "rcps"), name] => {
                    let Some(name) = stem(name) else {
                        self.reader(file).error(
                            "unexpected-file",
                            "$",
                            Pos::default(),
                            "organization policies are `.json` files",
                        );
                        continue;
                    };
                    let kind = if *dir == "scps" {
                        PolicyKind::Scp
                    } else {
                        PolicyKind::Rcp
                    };
                    let compiled = self.document(file, (text, shared), None, |this| {
                        Out::Policy(parse_file(&mut this.findings, file, text).and_then(
                            |node| {
                                this.policy(
                                    file,
                                    "$",
                                    &node,
                                    kind,
                                    &name,
                                    Some(quotas.org_policy_chars),
                                    &catalog,
                                )
                            },
                        ))
                    });
                    if let Out::Policy(Some(p)) = compiled {
                        let map = if kind == PolicyKind::Scp {
                            &mut scps
                        } else {
                            &mut rcps
                        };
                        if map.insert(name.clone(), p).is_some() {
                            self.reader(file).error(
                                "duplicate-policy",
                                "$",
                                Pos::default(),
                                format!("`{name}` is a built-in organization policy name"),
                            );
                        }
                    }
                }
                ["accounts", acct, rest @ ..] => {
                    if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
                        self.reader(file).error(
                            "invalid-account",
                            "$",
                            Pos::default(),
                            format!("`{acct}` is not a 12-digit account id"),
                        );
                        continue;
                    }
                    match AccountFile::of(rest) {
                        Some(k) => account_files.entry(acct).or_default().push((file.as_str(), k, (text, shared))),
                        None => self.reader(file).error("unexpected-file", "$", Pos::default(), "expected `account.json` or `policies/`, `users/`, `groups/`, `roles/`, `resources/`, `oidc-providers/` with `NAME.json` files"),
                    }
                }
                _ => self.reader(file).error(
                    "unexpected-file",
                    "$",
                    Pos::default(),
                    "not part of the bundle layout (see the README)",
                ),
            }
        }

        // Customer managed policies of every account first. A policy with errors is
        // reported in its own file; `broken` keeps references to it from being reported
        // a second time as missing.
        let mut broken: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (acct, list) in &account_files {
            for (file, kind, (text, shared)) in list {
                if let AccountFile::Policy(name) = kind {
                    if !valid_name(name, 128) {
                        self.reader(file).error(
                            "invalid-name",
                            "$",
                            Pos::default(),
                            format!(
                                "`{name}`: a policy name has 1 to 128 letters, digits or `+=,.@_-`"
                            ),
                        );
                        continue;
                    }
                    // A bare name resolves to the account's policy before the built-in one:
                    // a customer policy named `PowerUserAccess` would take over every
                    // attachment (and boundary) that names the built-in.
                    if builtin::arn_of(name).is_some() {
                        self.reader(file).error(
                            "reserved-name",
                            "$",
                            Pos::default(),
                            format!(
                                "`{name}` is the name of a built-in managed policy: a customer \
                                 policy cannot take it (it would replace the built-in wherever \
                                 it is attached by name)"
                            ),
                        );
                        continue;
                    }
                    let arn = format!("arn:{PARTITION}:iam::{acct}:policy/{name}");
                    let compiled =
                        self.managed_policy(file, (text, *shared), &arn, &quotas, &catalog);
                    match compiled {
                        Out::Policy(Some(p)) => {
                            managed.insert(arn, p);
                        }
                        _ => {
                            broken.insert(arn);
                        }
                    }
                }
            }
        }
        if let Some(reuse) = self.reuse.as_mut() {
            reuse.note_names(&managed, &broken);
        }
        for (acct, list) in &account_files {
            let mut account = Account {
                id: (*acct).to_owned(),
                ..Account::default()
            };
            for (file, kind, (text, shared)) in list {
                let cx = Cx {
                    acct,
                    quotas: &quotas,
                    catalog: &catalog,
                    managed: &managed,
                    broken: &broken,
                    lookups: std::cell::RefCell::default(),
                };
                // Users, groups, roles and resource policies: one document each, reused
                // when unchanged (see `Incremental`).
                if let Some(out) = self.identity(file, kind, (text, *shared), &cx) {
                    match out {
                        Out::User(Some(u)) => account.users.push(u),
                        Out::Group(Some(g)) => account.groups.push(g),
                        Out::Role(Some(r)) => account.roles.push(r),
                        Out::Resource(Some(r)) => account.resources.push(r),
                        _ => {}
                    }
                    continue;
                }
                let node = match kind {
                    AccountFile::Policy(_) => continue,
                    _ => match parse_file(&mut self.findings, file, text) {
                        Some(n) => n,
                        None => continue,
                    },
                };
                match kind {
                    AccountFile::Account => {
                        let mut r = self.reader(file);
                        if r.object(&node, "$", &["name"]).is_some() {
                            account.name = r
                                .string(&node, "$", "name")
                                .map(|s| s.0)
                                .unwrap_or_default();
                        }
                    }
                    AccountFile::OidcProvider(name) => {
                        if let Some(p) = self.oidc_provider(file, name, &node, &cx) {
                            if let Some(other) =
                                account.oidc_providers.iter().find(|o| o.arn() == p.arn())
                            {
                                let message = format!(
                                    "`{}` is also the provider of `{}` (one file per provider URL)",
                                    p.arn(),
                                    other.url()
                                );
                                self.reader(file).error(
                                    "duplicate-provider",
                                    "$.url",
                                    node.get("url").map_or(node.pos, |n| n.pos),
                                    message,
                                );
                            } else {
                                account.oidc_providers.push(Arc::new(p));
                            }
                        }
                    }
                    AccountFile::Policy(_)
                    | AccountFile::User(_)
                    | AccountFile::Group(_)
                    | AccountFile::Role(_)
                    | AccountFile::Resource => {}
                }
            }
            self.checked_account(&account, list, &quotas);
            accounts.insert((*acct).to_owned(), account);
        }
        if let Some(org) = &organization {
            self.check_organization(org, &accounts, &scps, &rcps, &quotas);
        }
        let listeners = self.listeners(&route_files, organization.as_ref(), &accounts, &catalog);

        let (errors, warnings): (Vec<_>, Vec<_>) = std::mem::take(&mut self.findings)
            .into_iter()
            .partition(|f| f.finding.severity == Severity::Error);
        if !errors.is_empty() {
            let mut findings = errors;
            findings.extend(warnings);
            return Err(BundleError { findings });
        }
        Ok(Bundle {
            organization,
            catalog,
            quotas,
            accounts,
            managed,
            scps,
            rcps,
            listeners,
            warnings,
            sources: self.sources.take().unwrap_or_default(),
            places: self.places.take().unwrap_or_default(),
        })
    }

    /// The built-in managed policies and `FullAWSAccess` for `catalog`; when loading
    /// incrementally, the previous load's when its quotas and catalog are these, which
    /// decides whether any document is reused.
    fn builtins(&mut self, quotas: &Quotas, catalog: &Catalog) -> Builtins {
        if let Some(reuse) = self.reuse.as_mut() {
            let env = (quotas.clone(), catalog.clone());
            reuse.same_env = reuse.old.env.as_ref() == Some(&env);
            reuse.env = Some(env);
            let builtins = match &reuse.old.builtins {
                Some(b) if reuse.same_env => b.clone(),
                _ => Builtins {
                    managed: builtin::policies(catalog)
                        .into_iter()
                        .map(|b| Arc::new(b.policy))
                        .collect(),
                    full_aws_access: Arc::new(builtin::full_aws_access().policy),
                },
            };
            reuse.builtins = Some(builtins.clone());
            return builtins;
        }
        let mut builtin_policy = |b: builtin::Builtin| {
            let p = Arc::new(b.policy);
            if let Some(sources) = &mut self.sources {
                sources.add(&p, b.document);
            }
            p
        };
        Builtins {
            managed: builtin::policies(catalog)
                .into_iter()
                .map(&mut builtin_policy)
                .collect(),
            full_aws_access: builtin_policy(builtin::full_aws_access()),
        }
    }

    /// The listeners of `routes/`, checked against the organization, roles and catalog.
    fn listeners(
        &mut self,
        files: &[(&str, &str, &str)],
        organization: Option<&Organization>,
        accounts: &BTreeMap<String, Account>,
        catalog: &Catalog,
    ) -> BTreeMap<String, Arc<crate::routes::Listener>> {
        let mut out = BTreeMap::new();
        if files.is_empty() {
            return out;
        }
        let actions = Arc::new(crate::routes::KnownActions::of(catalog));
        let org_accounts = organization.map(crate::routes::load::org_accounts);
        let role_exists = |arn: &str| {
            crate::arn::Arn::parse(arn)
                .and_then(|a| accounts.get(a.account))
                .is_some_and(|acct| acct.roles.iter().any(|r| r.arn == arn))
        };
        let cx = crate::routes::load::LoadContext {
            catalog,
            actions: &actions,
            org_accounts: org_accounts.as_ref(),
            role_exists: &role_exists,
        };
        for (file, name, text) in files {
            let Some(node) = parse_file(&mut self.findings, file, text) else {
                continue;
            };
            let mut r = self.reader(file);
            if let Some(l) = crate::routes::read_listener(&mut r, name, &node, &cx) {
                out.insert((*name).to_owned(), Arc::new(l));
            }
        }
        out
    }

    fn quotas(&mut self, file: &str, text: &str) -> Quotas {
        let mut q = Quotas::default();
        let Some(node) = parse_file(&mut self.findings, file, text) else {
            return q;
        };
        let mut r = self.reader(file);
        let fields: [(&str, &mut u64, u64); 11] = [
            (
                "managed_policies_per_user",
                &mut q.managed_policies_per_user,
                20,
            ),
            (
                "managed_policies_per_role",
                &mut q.managed_policies_per_role,
                25,
            ),
            (
                "managed_policies_per_group",
                &mut q.managed_policies_per_group,
                10,
            ),
            ("groups_per_user", &mut q.groups_per_user, 10),
            ("inline_chars_per_user", &mut q.inline_chars_per_user, 2_048),
            (
                "inline_chars_per_group",
                &mut q.inline_chars_per_group,
                5_120,
            ),
            (
                "inline_chars_per_role",
                &mut q.inline_chars_per_role,
                10_240,
            ),
            ("managed_policy_chars", &mut q.managed_policy_chars, 6_144),
            ("trust_policy_chars", &mut q.trust_policy_chars, 8_192),
            ("org_policy_chars", &mut q.org_policy_chars, 5_120),
            ("org_policies_per_node", &mut q.org_policies_per_node, 5),
        ];
        let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
        if r.object(&node, "$", &names).is_none() {
            return Quotas::default();
        }
        for (name, slot, max) in fields {
            // AWS's own maxima bound the adjustable quotas.
            if let Some(v) = r.number(&node, "$", name, 1..=max) {
                *slot = v;
            }
        }
        q
    }

    /// Validates and compiles a policy found at `path` in `file`; also checks it against
    /// the catalog.
    #[allow(clippy::too_many_arguments)]
    fn policy(
        &mut self,
        file: &str,
        path: &str,
        node: &Node,
        kind: PolicyKind,
        id: &str,
        max: Option<u64>,
        catalog: &Catalog,
    ) -> Option<Arc<Policy>> {
        let parsed = policy::parse_node_with(node, kind, id, max.map(|m| m as usize));
        let mut r = FileReader {
            file,
            findings: &mut self.findings,
        };
        r.policy_findings(path, parsed.findings);
        let p = Arc::new(parsed.policy?);
        catalog.check_policy(&mut r, node, path);
        if let Some(sources) = &mut self.sources {
            sources.add(&p, node.to_json());
        }
        if let Some(places) = &mut self.places {
            places.add(&p, file);
        }
        Some(p)
    }

    fn organization(&mut self, file: &str, node: &Node) -> Option<Organization> {
        let mut r = self.reader(file);
        r.object(node, "$", &["id", "management_account", "root"])?;
        let id = match r.string(node, "$", "id") {
            Some((id, pos)) => {
                if !(id.starts_with("o-")
                    && id.len() >= 12
                    && id.len() <= 34
                    && id[2..]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
                {
                    r.error("invalid-org-id", "$.id", pos, format!("`{id}` is not an organization id (`o-` and 10 to 32 lowercase letters or digits)"));
                }
                id
            }
            None => {
                r.error(
                    "missing-key",
                    "$",
                    node.pos,
                    "the organization needs an `id`",
                );
                return None;
            }
        };
        let Some((management_account, _)) = r.string(node, "$", "management_account") else {
            r.error(
                "missing-key",
                "$",
                node.pos,
                "the organization needs a `management_account`",
            );
            return None;
        };
        let Some(root) = node.get("root") else {
            r.error(
                "missing-key",
                "$",
                node.pos,
                "the organization needs a `root`",
            );
            return None;
        };
        let root = org_unit(&mut r, root, "$.root", 0)?;
        Some(Organization {
            id,
            management_account,
            root,
        })
    }

    fn check_organization(
        &mut self,
        org: &Organization,
        accounts: &BTreeMap<String, Account>,
        scps: &BTreeMap<String, Arc<Policy>>,
        rcps: &BTreeMap<String, Arc<Policy>>,
        q: &Quotas,
    ) {
        let file = ORGANIZATION;
        let mut seen_accounts: Vec<&str> = Vec::new();
        let mut seen_units: Vec<&str> = Vec::new();
        let mut stack = vec![(&org.root, "$.root".to_owned())];
        let mut r = FileReader {
            file,
            findings: &mut self.findings,
        };
        let pos = Pos::default();
        let check_attach = |r: &mut FileReader<'_>,
                            path: &str,
                            names: &[String],
                            map: &BTreeMap<String, Arc<Policy>>,
                            what: &str| {
            if names.len() as u64 > q.org_policies_per_node {
                r.error(
                    "too-many-policies",
                    path,
                    pos,
                    format!(
                        "{} {what}s attached; at most {} per node",
                        names.len(),
                        q.org_policies_per_node
                    ),
                );
            }
            for n in names {
                if !map.contains_key(n) {
                    r.error(
                        "unknown-policy",
                        path,
                        pos,
                        format!(
                            "{what} `{n}` is not in `{what}s/` (nor built in)",
                            what = what.to_ascii_lowercase()
                        ),
                    );
                }
            }
        };
        while let Some((unit, path)) = stack.pop() {
            if seen_units.contains(&unit.id.as_str()) {
                r.error(
                    "duplicate-unit",
                    &path,
                    pos,
                    format!("unit `{}` appears twice", unit.id),
                );
            }
            seen_units.push(&unit.id);
            check_attach(&mut r, &format!("{path}.scps"), &unit.scps, scps, "SCP");
            check_attach(&mut r, &format!("{path}.rcps"), &unit.rcps, rcps, "RCP");
            for (i, a) in unit.accounts.iter().enumerate() {
                let apath = format!("{path}.accounts[{i}]");
                if seen_accounts.contains(&a.id.as_str()) {
                    r.error(
                        "duplicate-account",
                        &apath,
                        pos,
                        format!("account `{}` appears twice in the organization", a.id),
                    );
                }
                seen_accounts.push(&a.id);
                check_attach(&mut r, &format!("{apath}.scps"), &a.scps, scps, "SCP");
                check_attach(&mut r, &format!("{apath}.rcps"), &a.rcps, rcps, "RCP");
            }
            for (i, u) in unit.units.iter().enumerate() {
                stack.push((u, format!("{path}.units[{i}]")));
            }
        }
        if !seen_accounts.contains(&org.management_account.as_str()) {
            r.error(
                "unknown-account",
                "$.management_account",
                pos,
                format!(
                    "the management account `{}` is not in the tree",
                    org.management_account
                ),
            );
        }
        for acct in accounts.keys() {
            if !seen_accounts.contains(&acct.as_str()) {
                r.warn("account-outside-org", "$", pos, format!("account `{acct}` has identities but is not in the organization: no SCP or RCP governs it"));
            }
        }
    }

    /// Reads `policies` (attached managed ARNs or names), `inline_policies` and the
    /// permissions boundary common to users, groups and roles.
    fn attachments(
        &mut self,
        file: &str,
        node: &Node,
        cx: &Cx<'_>,
        inline_budget: u64,
        kind_label: &str,
    ) -> (Vec<Arc<Policy>>, Vec<PolicyArn>) {
        let mut managed = Vec::new();
        let refs = self.reader(file).strings(node, "$", "managed_policies");
        for (name, pos, path) in refs {
            match cx.resolve(&name) {
                Some(arn) => {
                    if managed.contains(&arn) {
                        self.reader(file).error("duplicate-attachment", &path, pos, format!("`{name}` is attached twice"));
                    }
                    managed.push(arn);
                }
                None => self.reader(file).error("unknown-policy", &path, pos, format!("no managed policy `{name}` (customer policies live in `accounts/{}/policies/`)", cx.acct)),
            }
        }
        let mut inline = Vec::new();
        let mut total = 0u64;
        if let Some(n) = node.get("inline_policies") {
            let members = self
                .reader(file)
                .object(n, "$.inline_policies", &[])
                .map(<[_]>::to_vec)
                .unwrap_or_default();
            for m in members {
                let path = format!("$.inline_policies.{}", m.key);
                if !valid_name(&m.key, 128) {
                    self.reader(file).error(
                        "invalid-name",
                        &path,
                        m.key_pos,
                        format!(
                            "`{}`: a policy name has 1 to 128 letters, digits or `+=,.@_-`",
                            m.key
                        ),
                    );
                }
                total += policy::compact_size(&m.value) as u64;
                let id = format!("{}/inline/{}", file.trim_end_matches(".json"), m.key);
                if let Some(p) = self.policy(
                    file,
                    &path,
                    &m.value,
                    PolicyKind::Identity,
                    &id,
                    None,
                    cx.catalog,
                ) {
                    inline.push(p);
                }
            }
            if total > inline_budget {
                self.reader(file).error("inline-too-large", "$.inline_policies", n.pos, format!("inline policies total {total} characters without white space; a {kind_label} may have at most {inline_budget}"));
            }
        }
        (inline, managed)
    }

    fn boundary(&mut self, file: &str, node: &Node, cx: &Cx<'_>) -> Option<PolicyArn> {
        let (name, pos) = self
            .reader(file)
            .string(node, "$", "permissions_boundary")?;
        let arn = cx.resolve(&name);
        if arn.is_none() {
            self.reader(file).error(
                "unknown-policy",
                "$.permissions_boundary",
                pos,
                format!("no managed policy `{name}` to use as a permissions boundary"),
            );
        }
        arn
    }

    fn name_and_path(
        &mut self,
        file: &str,
        name: &str,
        node: &Node,
        max: usize,
        what: &str,
    ) -> Option<String> {
        let mut r = self.reader(file);
        if !valid_name(name, max) {
            r.error(
                "invalid-name",
                "$",
                Pos::default(),
                format!("`{name}`: a {what} name has 1 to {max} letters, digits or `+=,.@_-`"),
            );
            return None;
        }
        match r.string(node, "$", "path") {
            None => Some("/".to_owned()),
            Some((p, pos)) if valid_path(&p) => {
                let _ = pos;
                Some(p)
            }
            Some((p, pos)) => {
                r.error(
                    "invalid-path",
                    "$.path",
                    pos,
                    format!("`{p}`: a path starts and ends with `/`, such as `/engineering/`"),
                );
                None
            }
        }
    }

    fn user(&mut self, file: &str, name: &str, node: &Node, cx: &Cx<'_>) -> Option<User> {
        self.reader(file).object(
            node,
            "$",
            &[
                "path",
                "tags",
                "groups",
                "managed_policies",
                "inline_policies",
                "permissions_boundary",
            ],
        )?;
        let path = self.name_and_path(file, name, node, 64, "user")?;
        let tags = self.reader(file).tags(node, "$");
        let groups: Vec<(String, Pos, String)> = self.reader(file).strings(node, "$", "groups");
        if groups.len() as u64 > cx.quotas.groups_per_user {
            self.reader(file).error(
                "too-many-groups",
                "$.groups",
                node.pos,
                format!(
                    "in {} groups; a user may be in at most {}",
                    groups.len(),
                    cx.quotas.groups_per_user
                ),
            );
        }
        let (inline, managed) =
            self.attachments(file, node, cx, cx.quotas.inline_chars_per_user, "user");
        if managed.len() as u64 > cx.quotas.managed_policies_per_user {
            self.reader(file).error(
                "too-many-attachments",
                "$.managed_policies",
                node.pos,
                format!(
                    "{} managed policies attached; a user may have at most {}",
                    managed.len(),
                    cx.quotas.managed_policies_per_user
                ),
            );
        }
        let boundary = self.boundary(file, node, cx);
        Some(User {
            arn: format!("arn:{PARTITION}:iam::{}:user{path}{name}", cx.acct),
            name: name.to_owned(),
            path,
            tags,
            groups: groups.into_iter().map(|g| g.0).collect(),
            inline,
            managed,
            boundary,
        })
    }

    fn group(&mut self, file: &str, name: &str, node: &Node, cx: &Cx<'_>) -> Option<Group> {
        self.reader(file)
            .object(node, "$", &["path", "managed_policies", "inline_policies"])?;
        let path = self.name_and_path(file, name, node, 128, "group")?;
        let (inline, managed) =
            self.attachments(file, node, cx, cx.quotas.inline_chars_per_group, "group");
        if managed.len() as u64 > cx.quotas.managed_policies_per_group {
            self.reader(file).error(
                "too-many-attachments",
                "$.managed_policies",
                node.pos,
                format!(
                    "{} managed policies attached; a group may have at most {}",
                    managed.len(),
                    cx.quotas.managed_policies_per_group
                ),
            );
        }
        Some(Group {
            arn: format!("arn:{PARTITION}:iam::{}:group{path}{name}", cx.acct),
            name: name.to_owned(),
            path,
            inline,
            managed,
        })
    }

    fn role(&mut self, file: &str, name: &str, node: &Node, cx: &Cx<'_>) -> Option<Role> {
        self.reader(file).object(
            node,
            "$",
            &[
                "path",
                "tags",
                "trust_policy",
                "managed_policies",
                "inline_policies",
                "permissions_boundary",
                "max_session_duration",
            ],
        )?;
        let path = self.name_and_path(file, name, node, 64, "role")?;
        let tags = self.reader(file).tags(node, "$");
        let arn = format!("arn:{PARTITION}:iam::{}:role{path}{name}", cx.acct);
        let trust = match node.get("trust_policy") {
            Some(t) => self.policy(
                file,
                "$.trust_policy",
                t,
                PolicyKind::Trust,
                &format!("{arn}/trust"),
                Some(cx.quotas.trust_policy_chars),
                cx.catalog,
            ),
            None => {
                self.reader(file).error(
                    "missing-trust-policy",
                    "$",
                    node.pos,
                    "a role needs a `trust_policy` saying who may assume it",
                );
                None
            }
        };
        let (inline, managed) =
            self.attachments(file, node, cx, cx.quotas.inline_chars_per_role, "role");
        if managed.len() as u64 > cx.quotas.managed_policies_per_role {
            self.reader(file).error(
                "too-many-attachments",
                "$.managed_policies",
                node.pos,
                format!(
                    "{} managed policies attached; a role may have at most {}",
                    managed.len(),
                    cx.quotas.managed_policies_per_role
                ),
            );
        }
        let boundary = self.boundary(file, node, cx);
        let max_session_duration = self
            .reader(file)
            .number(node, "$", "max_session_duration", 3_600..=43_200)
            .unwrap_or(3_600);
        Some(Role {
            name: name.to_owned(),
            path,
            arn,
            tags,
            trust: trust?,
            inline,
            managed,
            boundary,
            max_session_duration,
        })
    }

    fn resource(&mut self, file: &str, node: &Node, cx: &Cx<'_>) -> Option<ResourcePolicy> {
        self.reader(file)
            .object(node, "$", &["arn", "tags", "policy"])?;
        let Some((arn, pos)) = self.reader(file).string(node, "$", "arn") else {
            self.reader(file).error(
                "missing-key",
                "$",
                node.pos,
                "a resource policy file needs the `arn` (or ARN pattern) it is bound to",
            );
            return None;
        };
        match crate::arn::Arn::parse(&arn) {
            None => {
                self.reader(file).error(
                    "invalid-arn",
                    "$.arn",
                    pos,
                    format!("`{arn}` is not an ARN"),
                );
                return None;
            }
            Some(a) if !a.account.is_empty() && a.account != cx.acct => {
                self.reader(file).error(
                    "wrong-account",
                    "$.arn",
                    pos,
                    format!(
                        "`{arn}` belongs to account `{}`, not `{}`",
                        a.account, cx.acct
                    ),
                );
                return None;
            }
            Some(_) => {}
        }
        let tags = self.reader(file).tags(node, "$");
        let Some(doc) = node.get("policy") else {
            self.reader(file).error(
                "missing-key",
                "$",
                node.pos,
                "a resource policy file needs a `policy`",
            );
            return None;
        };
        let policy = self.policy(
            file,
            "$.policy",
            doc,
            PolicyKind::Resource,
            &arn,
            None,
            cx.catalog,
        )?;
        Some(ResourcePolicy { arn, tags, policy })
    }

    /// An OIDC provider file: `url` (`https://HOST[/PATH]`), `client_ids` (1 to 100
    /// audiences), and exactly one of `jwks` (inline, checked here), `jwks_file` (an
    /// absolute path on the server) or `jwks_uri` (`https://`; `http://` to a loopback
    /// address only).
    fn oidc_provider(
        &mut self,
        file: &str,
        name: &str,
        node: &Node,
        cx: &Cx<'_>,
    ) -> Option<crate::oidc::OidcProvider> {
        use crate::oidc::{KeySource, OidcProvider, jwks, provider};
        self.reader(file).object(
            node,
            "$",
            &["url", "client_ids", "jwks", "jwks_file", "jwks_uri"],
        )?;
        if !valid_name(name, 128) {
            self.reader(file).error(
                "invalid-name",
                "$",
                Pos::default(),
                format!("`{name}`: a provider file name has 1 to 128 letters, digits or `+=,.@_-`"),
            );
        }
        let mut ok = true;
        let url = match self.reader(file).string(node, "$", "url") {
            Some((url, pos)) => match provider::check_url(&url) {
                Ok(_) => Some(url),
                Err(m) => {
                    self.reader(file)
                        .error("invalid-provider-url", "$.url", pos, m);
                    None
                }
            },
            None => {
                self.reader(file).error(
                    "missing-key",
                    "$",
                    node.pos,
                    "a provider needs its `url` (`https://HOST[/PATH]`, the tokens' issuer)",
                );
                None
            }
        };
        let ids = self.reader(file).strings(node, "$", "client_ids");
        if !(1..=provider::MAX_CLIENT_IDS).contains(&ids.len()) {
            self.reader(file).error(
                "invalid-client-ids",
                "$.client_ids",
                node.get("client_ids").map_or(node.pos, |n| n.pos),
                format!(
                    "a provider has 1 to {} `client_ids` (the audiences its tokens are for)",
                    provider::MAX_CLIENT_IDS
                ),
            );
            ok = false;
        }
        let mut client_ids: Vec<String> = Vec::with_capacity(ids.len());
        for (id, pos, path) in ids {
            if id.is_empty() || id.chars().count() > provider::MAX_URL_CHARS {
                self.reader(file).error(
                    "invalid-client-ids",
                    &path,
                    pos,
                    format!(
                        "a client id has 1 to {} characters",
                        provider::MAX_URL_CHARS
                    ),
                );
                ok = false;
            } else if client_ids.contains(&id) {
                self.reader(file).error(
                    "invalid-client-ids",
                    &path,
                    pos,
                    format!("client id `{id}` is listed twice"),
                );
                ok = false;
            } else {
                client_ids.push(id);
            }
        }
        let given: Vec<&str> = ["jwks", "jwks_file", "jwks_uri"]
            .into_iter()
            .filter(|k| node.get(k).is_some())
            .collect();
        if given.len() != 1 {
            self.reader(file).error(
                "invalid-jwks",
                "$",
                node.pos,
                format!(
                    "a provider needs exactly one of `jwks` (inline), `jwks_file` or `jwks_uri`; found {}",
                    if given.is_empty() { "none".to_owned() } else { given.join(", ") }
                ),
            );
            return None;
        }
        let keys = if let Some(n) = node.get("jwks") {
            let value: Option<serde_json::Value> = serde_json::from_str(&n.to_json()).ok();
            match value.map(|v| jwks::parse(&v, jwks::Mode::Strict)) {
                Some(Ok(set)) => Some(KeySource::Inline(Arc::new(set))),
                Some(Err(problems)) => {
                    for p in problems {
                        let pos = jwks_pos(n, &p);
                        let path = format!("$.jwks{}", p.path().strip_prefix('$').unwrap_or(""));
                        self.reader(file)
                            .error("invalid-jwks", &path, pos, p.message);
                    }
                    None
                }
                None => {
                    self.reader(file).error(
                        "invalid-jwks",
                        "$.jwks",
                        n.pos,
                        "`jwks` is not valid JSON",
                    );
                    None
                }
            }
        } else if let Some((path, pos)) = self.reader(file).string(node, "$", "jwks_file") {
            let p = std::path::PathBuf::from(&path);
            if p.is_absolute() {
                Some(KeySource::File(p))
            } else {
                self.reader(file).error(
                    "invalid-jwks",
                    "$.jwks_file",
                    pos,
                    format!("`{path}`: `jwks_file` is an absolute path on the server"),
                );
                None
            }
        } else if let Some((uri, pos)) = self.reader(file).string(node, "$", "jwks_uri") {
            match provider::check_jwks_uri(&uri) {
                Ok(()) => Some(KeySource::Uri(uri)),
                Err(m) => {
                    self.reader(file)
                        .error("invalid-jwks", "$.jwks_uri", pos, m);
                    None
                }
            }
        } else {
            None
        };
        let (url, keys) = (url?, keys?);
        if !ok {
            return None;
        }
        match OidcProvider::new(cx.acct, &url, client_ids, keys) {
            Ok(p) => Some(p),
            Err(m) => {
                self.reader(file)
                    .error("invalid-provider-url", "$.url", node.pos, m);
                None
            }
        }
    }

    /// [`Loader::check_account`]; when loading incrementally, the previous load's findings
    /// when it checked the very same users, groups and roles.
    fn checked_account(&mut self, account: &Account, files: &[AccountEntry<'_>], q: &Quotas) {
        fn same<T>(a: &[Arc<T>], b: &[Arc<T>]) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
        }
        let Some(reuse) = self.reuse.as_mut() else {
            self.check_account(account, files, q);
            return;
        };
        if let Some((id, checked)) = reuse.old.checks.remove_entry(&account.id)
            && same(&checked.users, &account.users)
            && same(&checked.groups, &account.groups)
            && same(&checked.roles, &account.roles)
        {
            self.findings.extend(checked.findings.iter().cloned());
            reuse.checks.insert(id, checked);
            return;
        }
        let before = self.findings.len();
        self.check_account(account, files, q);
        let findings = self.findings.get(before..).unwrap_or_default().to_vec();
        if let Some(reuse) = self.reuse.as_mut() {
            reuse.checks.insert(
                account.id.clone(),
                Arc::new(Checked {
                    users: account.users.clone(),
                    groups: account.groups.clone(),
                    roles: account.roles.clone(),
                    findings,
                }),
            );
        }
    }

    /// Cross-file checks of one account: duplicate names, group references.
    fn check_account(&mut self, account: &Account, files: &[AccountEntry<'_>], _q: &Quotas) {
        let file_of = |kind: &str, name: &str| -> String {
            format!("accounts/{}/{kind}/{name}.json", account.id)
        };
        // Each name seen, lowercase, by kind (a set: the check was quadratic in an
        // account's identities).
        let mut names: rustc_hash::FxHashSet<(&str, String)> = rustc_hash::FxHashSet::default();
        for (kind, list) in [
            (
                "users",
                account
                    .users
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>(),
            ),
            (
                "groups",
                account.groups.iter().map(|g| g.name.as_str()).collect(),
            ),
            (
                "roles",
                account.roles.iter().map(|r| r.name.as_str()).collect(),
            ),
        ] {
            for n in list {
                if !names.insert((kind, n.to_ascii_lowercase())) {
                    let other = n.to_ascii_lowercase();
                    self.reader(&file_of(kind, n)).error("duplicate-name", "$", Pos::default(), format!("`{n}` and `{other}` differ only in case; IAM names are unique regardless of case"));
                }
            }
        }
        for u in &account.users {
            let file = file_of("users", &u.name);
            for (i, g) in u.groups.iter().enumerate() {
                if !account.groups.iter().any(|x| x.name == *g) {
                    let pos = files
                        .iter()
                        .find(|(f, _, _)| *f == file)
                        .and_then(|(_, _, (text, _))| json::parse(json_text(text)).ok())
                        .and_then(|n| {
                            n.get("groups").map(|g| match &g.value {
                                json::Value::Array(items) => items.get(i).map_or(g.pos, |x| x.pos),
                                _ => g.pos,
                            })
                        })
                        .unwrap_or_default();
                    self.reader(&file).error(
                        "unknown-group",
                        &format!("$.groups[{i}]"),
                        pos,
                        format!("no group `{g}` in account `{}`", account.id),
                    );
                }
            }
        }
    }
}

fn org_unit(r: &mut FileReader<'_>, node: &Node, path: &str, depth: usize) -> Option<OrgUnit> {
    r.object(
        node,
        path,
        &["id", "name", "scps", "rcps", "units", "accounts"],
    )?;
    if depth > 5 {
        r.error(
            "too-deep",
            path,
            node.pos,
            "an organization nests at most five levels of units",
        );
        return None;
    }
    let Some((id, _)) = r.string(node, path, "id") else {
        r.error(
            "missing-key",
            path,
            node.pos,
            "a unit needs an `id` (`r-...` for the root, `ou-...` for a unit)",
        );
        return None;
    };
    let name = r
        .string(node, path, "name")
        .map(|s| s.0)
        .unwrap_or_else(|| id.clone());
    let names = |r: &mut FileReader<'_>, key: &str| {
        r.strings(node, path, key)
            .into_iter()
            .map(|s| s.0)
            .collect::<Vec<_>>()
    };
    // A node without `scps` has the full-access SCP, as AWS attaches it by default.
    let scps = if node.get("scps").is_none() {
        vec!["FullAWSAccess".to_owned()]
    } else {
        names(r, "scps")
    };
    if scps.is_empty() {
        r.error("no-scp", &format!("{path}.scps"), node.pos, "every node needs at least one SCP (attach `FullAWSAccess` to allow what other SCPs do not deny)");
    }
    let rcps = names(r, "rcps");
    let mut units = Vec::new();
    if let Some(json::Node {
        value: json::Value::Array(items),
        ..
    }) = node.get("units")
    {
        for (i, u) in items.iter().enumerate() {
            if let Some(u) = org_unit(r, u, &format!("{path}.units[{i}]"), depth + 1) {
                units.push(u);
            }
        }
    }
    let mut accounts = Vec::new();
    if let Some(json::Node {
        value: json::Value::Array(items),
        ..
    }) = node.get("accounts")
    {
        for (i, a) in items.iter().enumerate() {
            let apath = format!("{path}.accounts[{i}]");
            if r.object(a, &apath, &["id", "scps", "rcps"]).is_none() {
                continue;
            }
            let Some((aid, pos)) = r.string(a, &apath, "id") else {
                r.error("missing-key", &apath, a.pos, "an account needs an `id`");
                continue;
            };
            if aid.len() != 12 || !aid.bytes().all(|b| b.is_ascii_digit()) {
                r.error(
                    "invalid-account",
                    &format!("{apath}.id"),
                    pos,
                    format!("`{aid}` is not a 12-digit account id"),
                );
                continue;
            }
            let a_scps: Vec<String> = if a.get("scps").is_none() {
                vec!["FullAWSAccess".to_owned()]
            } else {
                r.strings(a, &apath, "scps")
                    .into_iter()
                    .map(|s| s.0)
                    .collect()
            };
            if a_scps.is_empty() {
                r.error("no-scp", &format!("{apath}.scps"), a.pos, "every account needs at least one SCP (attach `FullAWSAccess` to allow what other SCPs do not deny)");
            }
            let a_rcps = r
                .strings(a, &apath, "rcps")
                .into_iter()
                .map(|s| s.0)
                .collect();
            accounts.push(OrgAccount {
                id: aid,
                scps: a_scps,
                rcps: a_rcps,
            });
        }
    }
    Some(OrgUnit {
        id,
        name,
        scps,
        rcps,
        units,
        accounts,
    })
}

/// Where a problem of an inline key set is: the key's member, the key, or the set.
fn jwks_pos(set: &Node, p: &crate::oidc::jwks::Problem) -> Pos {
    let keys = set.get("keys");
    let key = match (keys, p.key) {
        (
            Some(json::Node {
                value: json::Value::Array(items),
                ..
            }),
            Some(i),
        ) => items.get(i),
        _ => None,
    };
    match (key, p.field) {
        (Some(k), Some(f)) => k.get(f).map_or(k.pos, |n| n.pos),
        (Some(k), None) => k.pos,
        (None, Some(f)) => set.get(f).map_or(set.pos, |n| n.pos),
        (None, None) => set.pos,
    }
}

/// What resolving names in one account needs.
struct Cx<'a> {
    acct: &'a str,
    quotas: &'a Quotas,
    catalog: &'a Catalog,
    managed: &'a BTreeMap<PolicyArn, Arc<Policy>>,
    /// Customer policies whose files have errors: they exist, but did not compile.
    broken: &'a std::collections::BTreeSet<String>,
    /// Every name resolved, and to what: a document's result depends on them.
    lookups: std::cell::RefCell<Vec<(String, Option<PolicyArn>)>>,
}

impl Cx<'_> {
    /// A managed policy by ARN, or by bare name: the account's customer policy of that
    /// name, else the built-in one. Recorded in `lookups`.
    fn resolve(&self, name: &str) -> Option<PolicyArn> {
        let arn = self.resolve_unrecorded(name);
        self.lookups
            .borrow_mut()
            .push((name.to_owned(), arn.clone()));
        arn
    }

    /// [`Cx::resolve`], not recorded.
    fn resolve_unrecorded(&self, name: &str) -> Option<PolicyArn> {
        let known = |arn: &str| self.managed.contains_key(arn) || self.broken.contains(arn);
        if name.starts_with("arn:") {
            return known(name).then(|| name.to_owned());
        }
        let customer = format!("arn:{PARTITION}:iam::{}:policy/{name}", self.acct);
        if known(&customer) {
            return Some(customer);
        }
        builtin::arn_of(name).filter(|arn| self.managed.contains_key(arn))
    }
}

#[cfg(test)]
mod tests;
