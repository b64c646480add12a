//! Assembly: a config (or the embedded default) into a running gateway.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use s3s::auth::SecretKey;
use zeroize::Zeroizing;

use crate::config::{cerr, resolve_secret, AuditConfig, Config, ConfigError, StoreKind};
use crate::gateway::{Gateway, GatewaySettings};
use crate::keyring::{self, Keyring, Policy};
use crate::server::{ServerSettings, Users};
use crate::store::local::LocalStore;
use crate::store::s3::{S3Settings, S3Store};
use crate::store::Store;

/// Reads an identity's passphrase: env var, file, or (on a terminal) a prompt.
pub fn passphrase_for(
    what: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(name) = env {
        let v = std::env::var(name)
            .map_err(|_| anyhow::anyhow!("{what}: environment variable {name} is not set"))?;
        return Ok(Zeroizing::new(v.into_bytes()));
    }
    if let Some(f) = file {
        let v = std::fs::read(f).with_context(|| format!("{what}: {}", f.display()))?;
        let mut v = Zeroizing::new(v);
        while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            v.pop();
        }
        return Ok(v);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let p = rpassword::prompt_password(format!("Passphrase for {what}: "))?;
        return Ok(Zeroizing::new(p.into_bytes()));
    }
    anyhow::bail!("{what}: no passphrase (set passphrase_env or passphrase_file)")
}

/// Fewest characters `gateway.secret` may have.
pub const MIN_GATEWAY_SECRET: usize = 32;
/// PBKDF2 iterations that stretch `gateway.secret` (so that a guessable
/// secret is at least slow to guess: upload ids and part records offer an
/// offline test of a guess to whoever sees them).
const GATEWAY_SECRET_ITERATIONS: u32 = 600_000;

/// The gateway's key from `gateway.secret`: at least 32 characters (a
/// generated secret, `sealgate secret`, is 43 characters of base64url from
/// 32 random bytes), stretched with PBKDF2-HMAC-SHA256. Every instance in
/// front of one store derives the same key from the same secret.
pub fn gateway_key(secret: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let secret = secret.trim();
    if secret.chars().count() < MIN_GATEWAY_SECRET {
        return Err(cerr(
            "gateway.secret",
            format!(
                "must be at least {MIN_GATEWAY_SECRET} characters of random text; generate one with `sealgate secret`"
            ),
        )
        .into());
    }
    let mut out = Zeroizing::new(vec![0u8; 32]);
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(GATEWAY_SECRET_ITERATIONS).expect("non-zero"),
        b"sealgate/v1/gateway-secret",
        secret.as_bytes(),
        &mut out,
    );
    Ok(out)
}

/// A new random gateway secret: 32 bytes from the system CSPRNG, base64url.
pub fn new_gateway_secret() -> Zeroizing<String> {
    use base64::Engine;
    let mut b = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut b[..]).expect("system randomness");
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b[..]))
}

pub struct Runtime {
    pub gateway: Gateway,
    pub users: Users,
    pub server: ServerSettings,
}

pub fn build_keyring(cfg: &Config) -> anyhow::Result<Keyring> {
    let mut identities = Vec::new();
    let mut recipients = Vec::new();
    for (i, id) in cfg.identities.iter().enumerate() {
        let what = format!("identities[{i}] ({})", id.name);
        let pass = passphrase_for(
            &what,
            id.passphrase_env.as_deref(),
            id.passphrase_file.as_deref(),
        )?;
        let ident = keyring::load_identity(&id.key_file, &pass)
            .map_err(|e| anyhow::anyhow!("config error at `identities[{i}].key_file`: {e}"))?;
        recipients.push((id.name.clone(), ident.recipient()?));
        identities.push((id.name.clone(), ident));
    }
    for (i, r) in cfg.recipients.iter().enumerate() {
        let rec = keyring::load_recipient(&r.public_key_file).map_err(|e| {
            anyhow::anyhow!("config error at `recipients[{i}].public_key_file`: {e}")
        })?;
        recipients.push((r.name.clone(), rec));
    }
    let policies = cfg
        .policies
        .iter()
        .map(|p| Policy {
            bucket: p.bucket.clone(),
            prefix: p.prefix.clone(),
            recipients: p.recipients.clone(),
        })
        .collect();
    Ok(Keyring::new(
        identities,
        recipients,
        policies,
        cfg.gateway.key_cache_entries,
        Duration::from_secs(cfg.gateway.key_cache_idle_secs),
    ))
}

pub fn build_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match cfg.store.kind {
        StoreKind::Local => {
            let p = cfg
                .store
                .path
                .as_ref()
                .ok_or_else(|| cerr("store.path", "missing"))?;
            Arc::new(
                LocalStore::open(p)
                    .map_err(|e| cerr("store.path", format!("{}: {e}", p.display())))?,
            )
        }
        StoreKind::S3 => {
            let s = &cfg.store;
            let secret = resolve_secret(
                "store.secret_key",
                s.secret_key.as_deref(),
                s.secret_key_file.as_deref(),
                s.secret_key_env.as_deref(),
            )?
            .ok_or_else(|| cerr("store.secret_key", "missing for kind = \"s3\""))?;
            Arc::new(S3Store::new(&S3Settings {
                endpoint: s.endpoint.clone().unwrap_or_default(),
                region: s.region.clone(),
                access_key: s.access_key.clone().unwrap_or_default(),
                secret_key: secret.to_string(),
                path_style: s.path_style,
                connect_timeout: Duration::from_secs(s.connect_timeout_secs),
                request_timeout: Duration::from_secs(s.request_timeout_secs),
                max_attempts: s.max_attempts,
            }))
        }
    })
}

pub fn build(cfg: &Config) -> anyhow::Result<Runtime> {
    build_over(cfg, build_keyring(cfg)?, build_store(cfg)?)
}

/// [`build`] with the keyring and the store given rather than loaded from
/// `cfg` (whose identities, recipients, policies and store sections are then
/// not read): the in-process tests run several gateways, with their own keys,
/// over one store they can also reach directly.
/// The groups runtime from `[sharing]` and `[[groups]]`, if configured.
pub fn build_groups(
    cfg: &Config,
    keyring: &Arc<Keyring>,
    store: &Arc<dyn Store>,
) -> anyhow::Result<Option<Arc<crate::groups::Groups>>> {
    let Some(sh) = &cfg.sharing else {
        return Ok(None);
    };
    let me = match &sh.identity {
        Some(n) => keyring.identities().iter().find(|(name, _)| name == n),
        None => keyring.identities().first(),
    }
    .map(|(_, id)| id.clone())
    .ok_or_else(|| cerr("sharing.identity", "this user's identity is not loaded"))?;
    let groups = cfg
        .groups
        .iter()
        .map(|g| crate::groups::GroupTrust {
            name: g.name.clone(),
            admins: g.admins.iter().filter_map(|a| a.parse().ok()).collect(),
            min_version: g.min_version,
        })
        .collect();
    if sh.state_dir.is_none() && !cfg.groups.is_empty() {
        tracing::warn!("sharing.state_dir is not set: the newest group version seen is remembered only while this process runs");
    }
    Ok(Some(Arc::new(crate::groups::Groups::new(
        crate::groups::GroupSettings {
            bucket: sh.bucket.clone(),
            member: sh.member.clone(),
            me,
            groups,
            state_dir: sh.state_dir.clone(),
            refresh: Duration::from_secs(sh.refresh_secs),
        },
        store.clone(),
        keyring.clone(),
    ))))
}

pub fn build_over(
    cfg: &Config,
    keyring: Keyring,
    store: Arc<dyn Store>,
) -> anyhow::Result<Runtime> {
    let keyring = Arc::new(keyring);
    let mut users = HashMap::new();
    let mut user_buckets = HashMap::new();
    for (i, u) in cfg.users.iter().enumerate() {
        let secret = resolve_secret(
            &format!("users[{i}].secret_key"),
            u.secret_key.as_deref(),
            u.secret_key_file.as_deref(),
            u.secret_key_env.as_deref(),
        )?
        .ok_or_else(|| cerr(format!("users[{i}].secret_key"), "missing"))?;
        users.insert(
            u.access_key.clone(),
            (SecretKey::from(secret.as_str()), u.buckets.clone()),
        );
        user_buckets.insert(u.access_key.clone(), u.buckets.clone());
    }
    let gw_secret = resolve_secret(
        "gateway.secret",
        cfg.gateway.secret.as_deref(),
        cfg.gateway.secret_file.as_deref(),
        cfg.gateway.secret_env.as_deref(),
    )?;
    let configured_secret = gw_secret.is_some();
    let gw_secret = match gw_secret {
        Some(s) => gateway_key(&s)?,
        None => {
            tracing::warn!("gateway.secret is not set: multipart uploads only survive on this instance until it restarts");
            let mut b = Zeroizing::new(vec![0u8; 32]);
            aws_lc_rs::rand::fill(&mut b[..]).expect("randomness");
            b
        }
    };
    let groups = build_groups(cfg, &keyring, &store)?;
    let wants_readback = keyring.policies().iter().any(|p| {
        p.recipients
            .iter()
            .any(|r| r.starts_with(crate::readback::RECIPIENT_PREFIX))
    });
    if wants_readback && keyring.readback().is_none() {
        let dir = match (&cfg.gateway.state_dir, configured_secret) {
            (Some(dir), true) => dir.join("readback"),
            _ => {
                return Err(cerr(
                    "policies",
                    "a readback: recipient needs gateway.state_dir and gateway.secret",
                )
                .into())
            }
        };
        let rb = crate::readback::Readback::open(&dir, &gw_secret, crate::readback::system_clock())
            .map_err(|e| cerr("gateway.state_dir", e.to_string()))?;
        keyring.set_readback(Arc::new(rb));
    }
    let index = match (&cfg.gateway.state_dir, configured_secret) {
        (Some(dir), true) if tokio::runtime::Handle::try_current().is_ok() => Some(Arc::new(
            crate::gateway::index::ListingIndex::open(dir, &gw_secret, cfg.gateway.index_entries)
                .map_err(|e| cerr("gateway.state_dir", format!("{}: {e}", dir.display())))?,
        )),
        (Some(_), false) => {
            tracing::warn!("gateway.state_dir without gateway.secret: no persistent listing index (nothing to seal it under)");
            None
        }
        _ => None,
    };
    let store_index = match (cfg.gateway.store_index_secs, configured_secret) {
        (0, _) | (_, false) => None,
        (secs, true) if tokio::runtime::Handle::try_current().is_ok() => {
            let si = crate::gateway::store_index::StoreIndex::new(
                store.clone(),
                &gw_secret,
                std::time::Duration::from_secs(secs),
                cfg.gateway.index_entries,
            )
            .map_err(|e| cerr("gateway.secret", e.to_string()))?;
            si.start();
            Some(si)
        }
        _ => None,
    };
    let gateway = Gateway::new(
        store,
        keyring,
        GatewaySettings {
            groups,
            index,
            store_index,
            users: user_buckets,
            object_cache_entries: cfg.gateway.object_cache_entries,
            list_concurrency: cfg.gateway.list_concurrency,
            max_object_size: cfg.server.max_object_size,
            region: cfg.server.region.clone(),
            gateway_secret: gw_secret,
            conditional_writes: cfg.store.conditional_writes,
        },
    );
    let tls = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(c), Some(k)) => Some(crate::server::load_tls(c, k)?),
        _ => None,
    };
    Ok(Runtime {
        gateway,
        users: Users(Arc::new(users)),
        server: ServerSettings {
            listen: cfg
                .server
                .listen
                .parse()
                .map_err(|e| cerr("server.listen", format!("{e}")))?,
            tls_listen: cfg
                .server
                .tls_listen
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| cerr("server.tls_listen", format!("{e}")))?,
            tls,
            domains: cfg.server.domains.clone(),
            grace: cfg.shutdown_grace(),
            max_connections: cfg.server.max_connections,
            trusted_proxies: crate::audit::TrustedProxies::parse(&cfg.server.trusted_proxies)
                .map_err(|e| cerr("server.trusted_proxies", e))?,
        },
    })
}

/// The audit log `[audit]` asks for, or `None` when it is off; a file that
/// cannot be opened for appending fails naming `audit.path`. Only `serve`
/// starts one: the other commands make no S3 requests.
pub fn audit_log(cfg: &AuditConfig) -> Result<Option<crate::audit::AuditLog>, ConfigError> {
    use crate::audit::{AuditLog, Destination};
    cfg.validate()?;
    let destination = match (&cfg.path, cfg.stderr) {
        (Some(p), false) => Destination::File(p.clone()),
        (None, true) => Destination::Stderr,
        _ => return Ok(None),
    };
    AuditLog::open(&destination, cfg.queue_lines)
        .map(Some)
        .map_err(|e| {
            let path = cfg.path.as_deref().unwrap_or(Path::new("-"));
            cerr(
                "audit.path",
                format!("{}: cannot open for appending: {e}", path.display()),
            )
        })
}

/// Where the embedded default keeps its state.
pub fn default_data_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SEALGATE_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Ok(d) = std::env::var("XDG_DATA_HOME") {
        return PathBuf::from(d).join("sealgate");
    }
    match std::env::var("HOME") {
        Ok(h) => PathBuf::from(h).join(".local/share/sealgate"),
        Err(_) => PathBuf::from("sealgate-data"),
    }
}

fn random_token(n: usize, alphabet: &[u8]) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("randomness");
    b.iter()
        .map(|x| alphabet[*x as usize % alphabet.len()] as char)
        .collect()
}

/// The embedded default: a local store, one user and one identity, all
/// generated on first run under `dir`. Returns the config and the user's
/// credentials to print.
pub fn embedded_default(
    dir: &Path,
    listen: &str,
) -> anyhow::Result<(Config, String, Zeroizing<String>)> {
    use std::io::Write;
    std::fs::create_dir_all(dir.join("keys")).with_context(|| format!("{}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let key_file = dir.join("keys/default.key.pem");
    let pass_file = dir.join("keys/default.pass");
    let env_pass = std::env::var("SEALGATE_PASSPHRASE").ok();
    if !key_file.exists() {
        let pass: Zeroizing<String> = match &env_pass {
            Some(p) => Zeroizing::new(p.clone()),
            None => {
                let p = Zeroizing::new(random_token(
                    32,
                    b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789",
                ));
                keyring::write_new_secret_file(&pass_file, p.as_bytes())?;
                p
            }
        };
        let (_, _, id) = keyring::keygen(&dir.join("keys"), "default", 3072, pass.as_bytes())?;
        eprintln!(
            "sealgate: generated identity key {} in {}",
            hex::encode(id),
            dir.join("keys").display()
        );
    }
    if env_pass.is_none() && pass_file.exists() {
        eprintln!(
            "WARNING: the identity's passphrase is stored beside the key ({}). This set-up is for trying sealgate out; set SEALGATE_PASSPHRASE or use a config file for real data.",
            pass_file.display()
        );
    }
    let cred_file = dir.join("credentials");
    if !cred_file.exists() {
        let ak = format!(
            "SG{}",
            random_token(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        );
        let sk = random_token(
            40,
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        );
        let gs = random_token(
            48,
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        );
        let mut f = std::fs::OpenOptions::new();
        f.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            f.mode(0o600);
        }
        let mut f = f.open(&cred_file)?;
        writeln!(f, "{ak}\n{sk}\n{gs}")?;
    }
    let text = Zeroizing::new(std::fs::read_to_string(&cred_file)?);
    let mut lines = text.lines();
    let ak = lines.next().unwrap_or_default().to_owned();
    let sk = Zeroizing::new(lines.next().unwrap_or_default().to_owned());
    let gs = lines.next().unwrap_or_default().to_owned();
    let passphrase = if env_pass.is_some() {
        "passphrase_env = \"SEALGATE_PASSPHRASE\"".to_owned()
    } else {
        format!("passphrase_file = {:?}", pass_file.display().to_string())
    };
    let toml_text = Zeroizing::new(format!(
        r#"
[server]
listen = "{listen}"
[[users]]
access_key = "{ak}"
secret_key = "{sk}"
[store]
kind = "local"
path = {store:?}
[gateway]
secret = "{gs}"
state_dir = {state:?}
[[identities]]
name = "default"
key_file = {key:?}
{passphrase}
[[policies]]
bucket = "*"
recipients = ["default"]
"#,
        sk = sk.as_str(),
        store = dir.join("store").display().to_string(),
        state = dir.join("state").display().to_string(),
        key = key_file.display().to_string(),
    ));
    let cfg: Config = toml::from_str(&toml_text).context("embedded default config")?;
    cfg.validate()?;
    Ok((cfg, ak, sk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_secret_is_long_and_stretched() {
        let e = gateway_key("sixteen-chars-ok").unwrap_err().to_string();
        assert!(
            e.contains("gateway.secret") && e.contains("sealgate secret"),
            "{e}"
        );
        let s = new_gateway_secret();
        assert_eq!(s.len(), 43);
        let k = gateway_key(&s).unwrap();
        assert_eq!(k.len(), 32);
        assert_eq!(
            k,
            gateway_key(&s).unwrap(),
            "every instance derives the same key"
        );
        assert_ne!(k, gateway_key(&new_gateway_secret()).unwrap());
        assert_ne!(&k[..], &s.as_bytes()[..32], "the secret is not used raw");
    }
}
