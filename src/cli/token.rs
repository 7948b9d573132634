//! `warden token --key PEM --sub SUB --aud AUD`: a signed JWT for the demo walk-through
//! (`examples/demo-oidc/`), or with `--jwks` the key's public key set for a provider file.
//! DEMO ONLY: anyone holding the key file can mint tokens the demo provider accepts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{Map, Value};
use warden::oidc::mint::SigningKey;

/// The demo provider's URL (`examples/org/accounts/333333333333/oidc-providers/demo.json`).
const DEMO_ISSUER: &str = "https://demo.warden.invalid";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The private key (PEM: Ed25519, EC P-256 or RSA); its `kid` is its public key's
    /// RFC 7638 thumbprint, as in the JWKS `--jwks` prints.
    #[arg(long)]
    key: PathBuf,
    /// `sub`.
    #[arg(long, required_unless_present = "jwks")]
    sub: Option<String>,
    /// `aud` (repeat for several).
    #[arg(long, required_unless_present = "jwks")]
    aud: Vec<String>,
    /// Seconds until `exp`.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// `iss`.
    #[arg(long, default_value = DEMO_ISSUER)]
    issuer: String,
    /// Another claim, `NAME=VALUE`; a VALUE that is JSON (`42`, `true`, `["a"]`) is kept
    /// as JSON, any other as a string.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// Print the key's public JWKS instead of a token.
    #[arg(long)]
    jwks: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pem = std::fs::read(&args.key)
        .with_context(|| format!("cannot read `{}`", args.key.display()))?;
    let key =
        SigningKey::from_pem(&pem).map_err(|e| anyhow::anyhow!("`{}`: {e}", args.key.display()))?;
    if args.jwks {
        let text = serde_json::to_string_pretty(&key.public_jwks())?;
        crate::cli::write_stdout(format!("{text}\n").as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::String(args.issuer));
    if let Some(sub) = args.sub {
        claims.insert("sub".into(), Value::String(sub));
    }
    let aud = match args.aud.as_slice() {
        [one] => Value::String(one.clone()),
        many => Value::Array(many.iter().cloned().map(Value::String).collect()),
    };
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now.saturating_add(args.ttl)));
    for pair in &args.claims {
        let Some((name, value)) = pair.split_once('=') else {
            anyhow::bail!("`--claim {pair}`: expected NAME=VALUE");
        };
        let value = serde_json::from_str::<Value>(value)
            .unwrap_or_else(|_| Value::String(value.to_owned()));
        claims.insert(name.to_owned(), value);
    }
    let token = key
        .sign(&Value::Object(claims))
        .map_err(|e| anyhow::anyhow!("signing failed: {e}"))?;
    crate::cli::write_stdout(format!("{token}\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
