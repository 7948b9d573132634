//! `warden keyring`, `warden keys` and `warden mfa`: the key ring that seals session tokens
//! and the secrets store, users' access keys, and their virtual MFA devices. Secrets are
//! printed once, when made (`keys create`, `mfa enable`), and nowhere else.
//!
//! Every command reads the ring from `--key-ring` (or `WARDEN_KEY_RING`) and the store from
//! `--store` (or `WARDEN_SECRETS`); both files are rewritten atomically with mode 0600.
//! Two commands changing the same store at once may lose one change: run them one at a time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use serde::Serialize;
use warden::sts::keyring::KeyRing;
use warden::sts::secrets::{KeyStatus, SecretsStore, user_parts};
use warden::sts::totp;

// === warden keyring ===

#[derive(Debug, clap::Args)]
pub struct KeyringArgs {
    #[command(subcommand)]
    command: KeyringCommand,
}

#[derive(Debug, clap::Args)]
struct RingArg {
    /// The key ring file.
    #[arg(long = "key-ring", env = "WARDEN_KEY_RING", value_name = "FILE")]
    key_ring: PathBuf,
}

#[derive(Debug, clap::Args)]
struct OptionalStoreArg {
    /// The secrets store to re-seal with the ring's sealing key (so that it stays
    /// readable once older keys are retired).
    #[arg(long, env = "WARDEN_SECRETS", value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum KeyringCommand {
    /// Make a new key ring with one key (refused if the file exists).
    Init {
        #[command(flatten)]
        ring: RingArg,
    },
    /// Add a new key, which seals from now on; older keys still open what they sealed.
    Rotate {
        #[command(flatten)]
        ring: RingArg,
        #[command(flatten)]
        store: OptionalStoreArg,
    },
    /// Retire a key: the session tokens it sealed no longer open. The store (when given)
    /// is re-sealed with a key that stays first.
    Retire {
        /// The key's id (see `warden keyring list`).
        id: String,
        #[command(flatten)]
        ring: RingArg,
        #[command(flatten)]
        store: OptionalStoreArg,
    },
    /// List the keys (ids, creation times, states; never secrets).
    List {
        #[command(flatten)]
        ring: RingArg,
    },
}

pub fn keyring(args: KeyringArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeyringCommand::Init { ring } => {
            let path = ring.key_ring;
            if std::fs::symlink_metadata(&path).is_ok() {
                bail!(
                    "`{}` exists already; a new ring would orphan every session token and the secrets store it seals (use `warden keyring rotate`)",
                    path.display()
                );
            }
            let ring = KeyRing::generate()?;
            ring.save(&path)?;
            let id = ring.sealing_key().map_or("", |k| k.id());
            say(&format!(
                "created the key ring `{}` with key `{id}`",
                path.display()
            ))
        }
        KeyringCommand::Rotate { ring, store } => {
            let path = ring.key_ring;
            let mut ring = KeyRing::load(&path)?;
            let secrets = load_store_if(&store.store, &ring)?;
            let id = ring.rotate()?.to_owned();
            // The ring first: a reader that sees the new store then knows its key.
            ring.save(&path)?;
            if let (Some(store_path), Some(secrets)) = (&store.store, secrets) {
                secrets.save(store_path, &ring)?;
            }
            say(&format!("key `{id}` seals from now on"))
        }
        KeyringCommand::Retire { id, ring, store } => {
            let path = ring.key_ring;
            let before = KeyRing::load(&path)?;
            let secrets = load_store_if(&store.store, &before)?;
            let mut after = before.clone();
            after
                .retire(&id)
                .map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))?;
            // The store first, with a key both rings open with: it never is unreadable.
            if let (Some(store_path), Some(secrets)) = (&store.store, secrets) {
                secrets.save(store_path, &after)?;
            }
            after.save(&path)?;
            if store.store.is_none() {
                eprintln!(
                    "warden: no secrets store given (--store or WARDEN_SECRETS): a store sealed with `{id}` no longer opens"
                );
            }
            say(&format!("key `{id}` is retired"))
        }
        KeyringCommand::List { ring } => {
            let ring = KeyRing::load(&ring.key_ring)?;
            let sealing = ring.sealing_key().map(|k| k.id().to_owned());
            let mut out = String::new();
            for key in ring.keys() {
                let state = if key.is_retired() {
                    "retired"
                } else if sealing.as_deref() == Some(key.id()) {
                    "sealing"
                } else {
                    "active"
                };
                out.push_str(&format!("{}\t{}\t{state}\n", key.id(), key.created()));
            }
            crate::cli::write_stdout(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load_store_if(path: &Option<PathBuf>, ring: &KeyRing) -> anyhow::Result<Option<SecretsStore>> {
    path.as_deref()
        .map(|p| SecretsStore::load_or_empty(p, ring))
        .transpose()
        .map_err(Into::into)
}

fn say(line: &str) -> anyhow::Result<ExitCode> {
    crate::cli::write_stdout(format!("{line}\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

// === warden keys ===

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// The secrets store file.
    #[arg(long, env = "WARDEN_SECRETS", value_name = "FILE")]
    store: PathBuf,
    #[command(flatten)]
    ring: RingArg,
}

#[derive(Debug, clap::Args)]
struct UserArg {
    /// The user's ARN, `arn:aws:iam::ACCOUNT:user/NAME`.
    #[arg(long, value_name = "ARN")]
    user: String,
}

#[derive(Debug, clap::Args)]
struct BundleArg {
    /// Check that the user exists in this bundle first.
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct KeyChange {
    #[command(flatten)]
    user: UserArg,
    /// The access key id, `AKIA…`.
    #[arg(long, value_name = "AKIA…")]
    key: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Create an access key for a user (at most two per user) and print it with its
    /// secret, once, as `aws iam create-access-key` does.
    Create {
        #[command(flatten)]
        user: UserArg,
        #[command(flatten)]
        bundle: BundleArg,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List access keys (of one user, or all), without secrets.
    List {
        /// Only this user's keys.
        #[arg(long, value_name = "ARN")]
        user: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make an access key inactive: requests it signs are refused.
    Deactivate(KeyChange),
    /// Make an inactive access key active again.
    Activate(KeyChange),
    /// Delete an access key.
    Delete(KeyChange),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreatedKey<'a> {
    access_key: KeyView<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyView<'a> {
    user_name: &'a str,
    #[serde(rename = "UserArn")]
    user_arn: &'a str,
    access_key_id: &'a str,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_access_key: Option<&'a str>,
    create_date: &'a str,
}

#[derive(Serialize)]
struct KeyList<'a> {
    #[serde(rename = "AccessKeyMetadata")]
    access_key_metadata: Vec<KeyView<'a>>,
}

pub fn keys(args: KeysArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeysCommand::Create {
            user,
            bundle,
            store,
        } => {
            let name = user_name(&user.user)?;
            check_in_bundle(bundle.bundle.as_deref(), &user.user)?;
            let (ring, mut secrets) = open_store(&store)?;
            let key = secrets
                .create_key(&user.user)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            secrets.save(&store.store, &ring)?;
            let status = key.status.to_string();
            print_json(&CreatedKey {
                access_key: KeyView {
                    user_name: name,
                    user_arn: &key.user_arn,
                    access_key_id: &key.id,
                    status,
                    secret_access_key: Some(key.secret()),
                    create_date: &key.created,
                },
            })
        }
        KeysCommand::List { user, store } => {
            if let Some(user) = &user {
                user_name(user)?;
            }
            let (_, secrets) = open_store(&store)?;
            let access_key_metadata = secrets
                .keys()
                .filter(|k| user.as_deref().is_none_or(|u| k.user_arn == u))
                .map(|k| KeyView {
                    user_name: user_parts(&k.user_arn).map_or("", |(_, name)| name),
                    user_arn: &k.user_arn,
                    access_key_id: &k.id,
                    status: k.status.to_string(),
                    secret_access_key: None,
                    create_date: &k.created,
                })
                .collect();
            print_json(&KeyList {
                access_key_metadata,
            })
        }
        KeysCommand::Deactivate(change) => change_key(change, |s, u, k| {
            s.set_key_status(u, k, KeyStatus::Inactive)
        }),
        KeysCommand::Activate(change) => {
            change_key(change, |s, u, k| s.set_key_status(u, k, KeyStatus::Active))
        }
        KeysCommand::Delete(change) => change_key(change, SecretsStore::delete_key),
    }
}

fn change_key(
    change: KeyChange,
    edit: impl FnOnce(&mut SecretsStore, &str, &str) -> Result<(), warden::sts::secrets::EditError>,
) -> anyhow::Result<ExitCode> {
    user_name(&change.user.user)?;
    let (ring, mut secrets) = open_store(&change.store)?;
    edit(&mut secrets, &change.user.user, &change.key).map_err(|e| anyhow::anyhow!("{e}"))?;
    secrets.save(&change.store.store, &ring)?;
    Ok(ExitCode::SUCCESS)
}

fn open_store(store: &StoreArgs) -> anyhow::Result<(KeyRing, SecretsStore)> {
    let ring = KeyRing::load(&store.ring.key_ring)?;
    let secrets = SecretsStore::load_or_empty(&store.store, &ring)?;
    Ok((ring, secrets))
}

fn user_name(arn: &str) -> anyhow::Result<&str> {
    user_parts(arn)
        .map(|(_, name)| name)
        .map_err(|e| anyhow::anyhow!("--user: {e}"))
}

/// Refuses a user the bundle at `dir` does not have.
fn check_in_bundle(dir: Option<&Path>, user_arn: &str) -> anyhow::Result<()> {
    let Some(dir) = dir else {
        return Ok(());
    };
    let files = warden::bundle::read_dir_within(dir, super::validate::READ_LIMIT)
        .with_context(|| format!("cannot load the bundle `{}`", dir.display()))?;
    let bundle = warden::bundle::load_files(&files)
        .with_context(|| format!("cannot load the bundle `{}`", dir.display()))?;
    let mut users = bundle.accounts.values().flat_map(|a| a.users.iter());
    if users.clone().any(|u| u.arn == user_arn) {
        return Ok(());
    }
    // The same name under another path: the ARN of a user with a path includes it.
    let (account, name) = user_parts(user_arn).map_err(|e| anyhow::anyhow!("--user: {e}"))?;
    let hint = users
        .find(|u| u.name == name && u.arn.contains(&format!("::{account}:")))
        .map(|u| format!(" (did you mean `{}`?)", u.arn))
        .unwrap_or_default();
    bail!(
        "the bundle `{}` has no user `{user_arn}`{hint}",
        dir.display()
    )
}

fn print_json(value: &impl Serialize) -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(value)?;
    crate::cli::write_stdout(format!("{text}\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

// === warden mfa ===

#[derive(Debug, clap::Args)]
pub struct MfaArgs {
    #[command(subcommand)]
    command: MfaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum MfaCommand {
    /// Enable a virtual MFA device for a user and print its serial, its base32 secret and
    /// an `otpauth://` URI for an authenticator app, once.
    Enable {
        #[command(flatten)]
        user: UserArg,
        /// The device's name: its serial is `arn:aws:iam::ACCOUNT:mfa/NAME`.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        bundle: BundleArg,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the current TOTP code of a base32 secret. DEMO AND TESTS ONLY: it is what an
    /// authenticator app shows.
    Code {
        /// The device's base32 secret (as `mfa enable` printed it).
        #[arg(
            long,
            env = "WARDEN_MFA_SECRET",
            hide_env_values = true,
            value_name = "BASE32"
        )]
        secret: String,
        /// The code at this Unix time instead of now.
        #[arg(long, value_name = "SECONDS")]
        at: Option<u64>,
    },
}

#[derive(Serialize)]
struct EnabledView<'a> {
    #[serde(rename = "VirtualMFADevice")]
    device: DeviceView<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeviceView<'a> {
    serial_number: &'a str,
    base32_string_seed: &'a str,
    #[serde(rename = "OtpauthURI")]
    otpauth_uri: &'a str,
    user_name: &'a str,
    #[serde(rename = "UserArn")]
    user_arn: &'a str,
    enable_date: &'a str,
}

pub fn mfa(args: MfaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        MfaCommand::Enable {
            user,
            name,
            bundle,
            store,
        } => {
            let user_name = user_name(&user.user)?;
            check_in_bundle(bundle.bundle.as_deref(), &user.user)?;
            let (ring, mut secrets) = open_store(&store)?;
            let enabled = secrets
                .enable_mfa(&user.user, &name)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            secrets.save(&store.store, &ring)?;
            print_json(&EnabledView {
                device: DeviceView {
                    serial_number: &enabled.serial,
                    base32_string_seed: &enabled.base32_secret,
                    otpauth_uri: &enabled.otpauth_uri,
                    user_name,
                    user_arn: &user.user,
                    enable_date: &enabled.enabled_at,
                },
            })
        }
        MfaCommand::Code { secret, at } => {
            let normalized: String = secret
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '=')
                .collect::<String>()
                .to_ascii_uppercase();
            let key = data_encoding::BASE32_NOPAD
                .decode(normalized.as_bytes())
                .map_err(|_| anyhow::anyhow!("--secret: not a base32 secret"))?;
            let at = at.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            });
            say(&totp::code_at(&key, at))
        }
    }
}
