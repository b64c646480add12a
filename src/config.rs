//! Configuration: plain serde over TOML, every key documented in
//! `config/sealgate.example.toml`. Secrets may be inline, in a file
//! (`*_file`) or in an environment variable (`*_env`). A bad value fails at
//! start-up with a message naming the key at fault.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
#[error("config error at `{key}`: {msg}")]
pub struct ConfigError {
    pub key: String,
    pub msg: String,
}

pub fn cerr(key: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        msg: msg.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub identities: Vec<IdentityConfig>,
    #[serde(default)]
    pub recipients: Vec<RecipientConfig>,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// Sharing through the store: the key directory and signed groups.
    #[serde(default)]
    pub sharing: Option<SharingConfig>,
    /// Groups this gateway may encrypt for and read with, each with its
    /// pinned administrators.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// The audit log: one JSON line per request (off by default).
    #[serde(default)]
    pub audit: AuditConfig,
}

/// `[audit]`: where the audit log goes (docs/AUDIT.md). Off unless `path`
/// is set or `stderr = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Append the audit lines to this file (created with mode 0600, reopened
    /// on SIGHUP).
    pub path: Option<PathBuf>,
    /// Write the audit lines to stderr instead.
    pub stderr: bool,
    /// Lines waiting for the writer before new ones are dropped (counted);
    /// requests never wait for the audit log.
    pub queue_lines: usize,
}

fn default_audit_queue() -> usize {
    16_384
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: None,
            stderr: false,
            queue_lines: default_audit_queue(),
        }
    }
}

impl AuditConfig {
    pub fn enabled(&self) -> bool {
        self.path.is_some() || self.stderr
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.path.is_some() && self.stderr {
            return Err(cerr(
                "audit.stderr",
                "give either audit.path or audit.stderr = true, not both",
            ));
        }
        if self
            .path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty() || p.file_name().is_none())
        {
            return Err(cerr("audit.path", "must name a file"));
        }
        if self.queue_lines == 0 {
            return Err(cerr("audit.queue_lines", "must be at least 1"));
        }
        Ok(())
    }
}

/// `[sharing]`: where the key directory and group documents live, who this
/// gateway's user is there, and (to administer groups) their signing key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingConfig {
    /// The bucket holding `.sealgate/dir/` (keys and group documents).
    pub bucket: String,
    /// This user's name in the key directory and in groups.
    pub member: String,
    /// Which `[[identities]]` entry is this user's key (default: the only one).
    pub identity: Option<String>,
    /// An Ed25519 signing key (encrypted PKCS#8 PEM), to administer groups.
    pub signing_key_file: Option<PathBuf>,
    pub signing_passphrase_env: Option<String>,
    pub signing_passphrase_file: Option<PathBuf>,
    /// Where the highest group versions seen are kept across restarts (the
    /// rollback memory). Without it, it lasts as long as the process.
    pub state_dir: Option<PathBuf>,
    /// Seconds a group document is used before the store is asked again.
    #[serde(default = "default_group_refresh")]
    pub refresh_secs: u64,
}

fn default_group_refresh() -> u64 {
    30
}

/// `[[groups]]`: a group by name, with the administrators it is trusted from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    /// Fingerprints (`XXXX-XXXX-XXXX-XXXX-XXXX`) of the administrators whose
    /// signature makes a document of this group trusted. Never learned from
    /// the store.
    pub admins: Vec<String>,
    /// The lowest document version a gateway accepts even without memory of
    /// a higher one (a fresh instance): raise it after removing a member.
    #[serde(default)]
    pub min_version: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Optional https listener alongside the http one.
    pub tls_listen: Option<String>,
    /// Optional admin listener: /health, /ready, /metrics (Prometheus).
    pub admin_listen: Option<String>,
    /// Base domains for virtual-hosted-style requests (`BUCKET.DOMAIN`).
    pub domains: Vec<String>,
    pub region: String,
    pub shutdown_grace_secs: u64,
    /// Largest single PutObject/UploadPart body accepted (bytes).
    pub max_object_size: u64,
    pub max_connections: usize,
    /// Addresses or networks of the reverse proxies in front of sealgate
    /// whose `X-Forwarded-For` gives the audit log's source address.
    pub trusted_proxies: Vec<String>,
}

fn default_listen() -> String {
    "127.0.0.1:9000".into()
}
fn default_domains() -> Vec<String> {
    vec!["localhost".into()]
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_grace() -> u64 {
    30
}
fn default_max_object() -> u64 {
    5 * 1024 * 1024 * 1024
}
fn default_max_connections() -> usize {
    1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            tls_listen: None,
            admin_listen: None,
            domains: default_domains(),
            region: default_region(),
            shutdown_grace_secs: default_grace(),
            max_object_size: default_max_object(),
            max_connections: default_max_connections(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub access_key: String,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub secret_key_env: Option<String>,
    /// Buckets this user may use; `["*"]` for all.
    #[serde(default = "all_buckets")]
    pub buckets: Vec<String>,
}

fn all_buckets() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// Local store: the data directory.
    pub path: Option<PathBuf>,
    /// S3 store.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub secret_key_env: Option<String>,
    pub path_style: bool,
    pub connect_timeout_secs: u64,
    pub request_timeout_secs: u64,
    pub max_attempts: u32,
    /// Which conditional writes (`If-None-Match: *`, `If-Match` on
    /// PutObject, CompleteMultipartUpload, CopyObject) the store enforces:
    /// `auto` (probe the store on the first one), `enforced`, `unsupported`
    /// (refuse them all with 501). The embedded store enforces them itself.
    pub conditional_writes: crate::store::conditional::Mode,
}

fn default_connect_timeout() -> u64 {
    5
}
fn default_request_timeout() -> u64 {
    60
}
fn default_attempts() -> u32 {
    3
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Local,
            path: None,
            endpoint: None,
            region: default_region(),
            access_key: None,
            secret_key: None,
            secret_key_file: None,
            secret_key_env: None,
            path_style: true,
            connect_timeout_secs: default_connect_timeout(),
            request_timeout_secs: default_request_timeout(),
            max_attempts: default_attempts(),
            conditional_writes: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Secret shared by every gateway instance in front of the same store:
    /// seals multipart upload ids (which carry the upload's data key).
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub key_cache_entries: u64,
    pub key_cache_idle_secs: u64,
    pub object_cache_entries: u64,
    /// Concurrent store requests used to resolve a listing's ETags.
    pub list_concurrency: usize,
    /// A directory this gateway keeps state in: the persistent listing index
    /// (a cache, sealed under the gateway secret). Without it (or without a
    /// secret) what listings learn lasts as long as the process.
    pub state_dir: Option<PathBuf>,
    /// Most entries of the persistent listing index.
    pub index_entries: u64,
    /// How often what listings learn is written to the listing index kept
    /// at the store (for new instances), in seconds; 0: no index at the
    /// store (neither written nor read). Needs a configured secret.
    pub store_index_secs: u64,
}

fn default_cache_entries() -> u64 {
    10_000
}
fn default_cache_idle() -> u64 {
    600
}
fn default_meta_cache() -> u64 {
    100_000
}
fn default_list_concurrency() -> usize {
    16
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            secret: None,
            secret_file: None,
            secret_env: None,
            key_cache_entries: default_cache_entries(),
            key_cache_idle_secs: default_cache_idle(),
            object_cache_entries: default_meta_cache(),
            list_concurrency: default_list_concurrency(),
            state_dir: None,
            index_entries: 1_000_000,
            store_index_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub name: String,
    pub key_file: PathBuf,
    pub passphrase_env: Option<String>,
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientConfig {
    pub name: String,
    pub public_key_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// A bucket name, or `*` for every bucket.
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub recipients: Vec<String>,
    /// What the prefix holds, for `check-config`: `"restic"` (a restic
    /// repository: restic must read back its `config`, `keys/`, `index/`,
    /// `snapshots/` and `locks/`, docs/BACKUPS.md) or `"none"` (not a
    /// restic repository even if the prefix ends in `data/`).
    #[serde(default)]
    pub profile: Option<String>,
}

/// The window of a `readback:` recipient of a policy (`readback:7d`: seven
/// days; `readback:36h`: 36 hours): at least one hour, at most ten years.
pub fn parse_readback(name: &str) -> Result<Duration, String> {
    let w = name.strip_prefix("readback:").unwrap_or(name);
    let bad = || {
        format!(
            "{name:?}: the read-back window is a whole number of days or hours (`readback:7d`, `readback:36h`)"
        )
    };
    let cut = w.len().saturating_sub(1);
    if !w.is_char_boundary(cut) {
        return Err(bad());
    }
    let (n, unit) = w.split_at(cut);
    let secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        _ => return Err(bad()),
    };
    match n.parse::<u64>() {
        Ok(n) if (1..=3650 * 24).contains(&n) && n * secs <= 3650 * 86_400 => {
            Ok(Duration::from_secs(n * secs))
        }
        _ => Err(bad()),
    }
}

/// The `profile` values of a policy.
pub const POLICY_PROFILES: [&str; 2] = ["restic", "none"];

/// Sections and keys that may be set from the environment. Only these: a
/// variable such as `SEALGATE_STORE_SECRET` that a config names in a
/// `*_env` key is not mistaken for an override.
const ENV_KEYS: [(&str, &[&str]); 4] = [
    (
        "server",
        &[
            "listen",
            "tls_cert",
            "tls_key",
            "tls_listen",
            "admin_listen",
            "domains",
            "region",
            "shutdown_grace_secs",
            "max_object_size",
            "max_connections",
            "trusted_proxies",
        ],
    ),
    (
        "store",
        &[
            "kind",
            "path",
            "endpoint",
            "region",
            "access_key",
            "secret_key",
            "secret_key_file",
            "secret_key_env",
            "path_style",
            "connect_timeout_secs",
            "request_timeout_secs",
            "max_attempts",
        ],
    ),
    (
        "gateway",
        &[
            "secret",
            "secret_file",
            "secret_env",
            "key_cache_entries",
            "key_cache_idle_secs",
            "object_cache_entries",
            "list_concurrency",
            "state_dir",
            "index_entries",
            "store_index_secs",
        ],
    ),
    ("audit", &["path", "stderr", "queue_lines"]),
];

/// Applies `SEALGATE_<SECTION>_<KEY>` environment variables (for containers)
/// over the file: `SEALGATE_STORE_ENDPOINT`, `SEALGATE_SERVER_LISTEN`,
/// `SEALGATE_GATEWAY_SECRET_FILE`, ... A value is read as a TOML value when it
/// parses as one (numbers, booleans, arrays), else as a string. Lists of
/// tables (users, identities, recipients, policies) come from the file only.
pub fn apply_env_overrides(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("SEALGATE_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some((section, key)) = ENV_KEYS.iter().find_map(|(s, keys)| {
            let k = rest.strip_prefix(s)?.strip_prefix('_')?;
            keys.contains(&k).then_some((*s, k))
        }) else {
            continue;
        };
        let v: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let sect = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let Some(sect) = sect.as_table_mut() else {
            return Err(cerr(section, "must be a table"));
        };
        sect.insert(key.to_owned(), v);
    }
    Ok(())
}

/// Reads a secret from exactly one of: inline value, file, environment variable.
pub fn resolve_secret(
    key: &str,
    inline: Option<&str>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<Zeroizing<String>>, ConfigError> {
    let n = inline.is_some() as u8 + file.is_some() as u8 + env.is_some() as u8;
    if n > 1 {
        return Err(cerr(
            key,
            format!("give only one of `{key}`, `{key}_file` and `{key}_env`"),
        ));
    }
    if let Some(v) = inline {
        return Ok(Some(Zeroizing::new(v.to_owned())));
    }
    if let Some(f) = file {
        let v = std::fs::read_to_string(f)
            .map_err(|e| cerr(format!("{key}_file"), format!("{}: {e}", f.display())))?;
        return Ok(Some(Zeroizing::new(
            v.trim_end_matches(['\n', '\r']).to_owned(),
        )));
    }
    if let Some(name) = env {
        let v = std::env::var(name).map_err(|_| {
            cerr(
                format!("{key}_env"),
                format!("environment variable {name} is not set"),
            )
        })?;
        return Ok(Some(Zeroizing::new(v)));
    }
    Ok(None)
}

impl Config {
    /// Parses and checks a config file. Relative paths in it are resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| cerr("(file)", format!("{}: {e}", path.display())))?;
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| cerr("(syntax)", e.to_string()))?;
        apply_env_overrides(&mut table, std::env::vars())?;
        let mut cfg: Config = Config::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e
                .message()
                .split('`')
                .nth(1)
                .map(str::to_owned)
                .unwrap_or_else(|| "(syntax)".into());
            cerr(key, e.to_string())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for i in &mut self.identities {
            fix(&mut i.key_file);
            if let Some(f) = &mut i.passphrase_file {
                fix(f);
            }
        }
        for r in &mut self.recipients {
            fix(&mut r.public_key_file);
        }
        if let Some(p) = &mut self.store.path {
            fix(p);
        }
        for u in &mut self.users {
            if let Some(f) = &mut u.secret_key_file {
                fix(f);
            }
        }
        if let Some(f) = &mut self.store.secret_key_file {
            fix(f);
        }
        if let Some(f) = &mut self.gateway.secret_file {
            fix(f);
        }
        if let Some(f) = &mut self.gateway.state_dir {
            fix(f);
        }
        if let Some(f) = &mut self.server.tls_cert {
            fix(f);
        }
        if let Some(f) = &mut self.server.tls_key {
            fix(f);
        }
        if let Some(f) = &mut self.audit.path {
            fix(f);
        }
        if let Some(sh) = &mut self.sharing {
            for f in [
                &mut sh.signing_key_file,
                &mut sh.signing_passphrase_file,
                &mut sh.state_dir,
            ]
            .into_iter()
            .flatten()
            {
                fix(f);
            }
        }
    }

    /// Structural checks that need no I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| cerr("server.listen", format!("{:?}: {e}", self.server.listen)))?;
        if let Some(l) = &self.server.tls_listen {
            l.parse::<std::net::SocketAddr>()
                .map_err(|e| cerr("server.tls_listen", format!("{l:?}: {e}")))?;
            if self.server.tls_cert.is_none() || self.server.tls_key.is_none() {
                return Err(cerr(
                    "server.tls_listen",
                    "needs server.tls_cert and server.tls_key",
                ));
            }
        }
        if let Some(l) = &self.server.admin_listen {
            l.parse::<std::net::SocketAddr>()
                .map_err(|e| cerr("server.admin_listen", format!("{l:?}: {e}")))?;
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(cerr("server.tls_cert", "tls_cert and tls_key go together"));
        }
        crate::audit::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|e| cerr("server.trusted_proxies", e))?;
        self.audit.validate()?;
        if self.users.is_empty() {
            return Err(cerr("users", "at least one [[users]] entry is required"));
        }
        let mut seen = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.access_key.len() < 3 {
                return Err(cerr(format!("users[{i}].access_key"), "too short"));
            }
            if !seen.insert(&u.access_key) {
                return Err(cerr(
                    format!("users[{i}].access_key"),
                    "duplicate access key",
                ));
            }
            if u.secret_key.is_none() && u.secret_key_file.is_none() && u.secret_key_env.is_none() {
                return Err(cerr(
                    format!("users[{i}].secret_key"),
                    "missing (give secret_key, secret_key_file or secret_key_env)",
                ));
            }
        }
        match self.store.kind {
            StoreKind::Local => {
                if self.store.path.is_none() {
                    return Err(cerr("store.path", "the local store needs a directory"));
                }
            }
            StoreKind::S3 => {
                let ep = self
                    .store
                    .endpoint
                    .as_deref()
                    .ok_or_else(|| cerr("store.endpoint", "missing for kind = \"s3\""))?;
                if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                    return Err(cerr(
                        "store.endpoint",
                        format!("{ep:?} must start with http:// or https://"),
                    ));
                }
                if self.store.access_key.is_none() {
                    return Err(cerr("store.access_key", "missing for kind = \"s3\""));
                }
            }
        }
        let mut names = HashSet::new();
        for (i, id) in self.identities.iter().enumerate() {
            if !names.insert(id.name.as_str()) {
                return Err(cerr(
                    format!("identities[{i}].name"),
                    format!("duplicate name {:?}", id.name),
                ));
            }
        }
        for (i, r) in self.recipients.iter().enumerate() {
            if !names.insert(r.name.as_str()) {
                return Err(cerr(
                    format!("recipients[{i}].name"),
                    format!("duplicate name {:?}", r.name),
                ));
            }
        }
        let mut groups = HashSet::new();
        for (i, g) in self.groups.iter().enumerate() {
            if !crate::sharing::group::valid_group_name(&g.name) {
                return Err(cerr(
                    format!("groups[{i}].name"),
                    format!("{:?} is not a group name (a-z, 0-9, '.', '_', '-')", g.name),
                ));
            }
            if !groups.insert(g.name.as_str()) {
                return Err(cerr(format!("groups[{i}].name"), "duplicate group"));
            }
            if g.admins.is_empty() {
                return Err(cerr(
                    format!("groups[{i}].admins"),
                    "pin at least one administrator's fingerprint",
                ));
            }
            for a in &g.admins {
                a.parse::<crate::sharing::fingerprint::Fingerprint>()
                    .map_err(|e| cerr(format!("groups[{i}].admins"), e.to_string()))?;
            }
            if self.sharing.is_none() {
                return Err(cerr(
                    "sharing",
                    "[[groups]] need a [sharing] section (the bucket of the key directory)",
                ));
            }
        }
        if let Some(sh) = &self.sharing {
            if !crate::sharing::group::valid_member_name(&sh.member) {
                return Err(cerr(
                    "sharing.member",
                    format!(
                        "{:?} is not a member name (letters, digits, '.', '_', '-')",
                        sh.member
                    ),
                ));
            }
            match &sh.identity {
                Some(n) if !self.identities.iter().any(|i| &i.name == n) => {
                    return Err(cerr(
                        "sharing.identity",
                        format!("no [[identities]] entry named {n:?}"),
                    ))
                }
                None if self.identities.len() != 1 => {
                    return Err(cerr(
                        "sharing.identity",
                        "name this user's identity (the config has not exactly one)",
                    ))
                }
                _ => {}
            }
        }
        if self.policies.is_empty() {
            return Err(cerr(
                "policies",
                "at least one [[policies]] entry is required",
            ));
        }
        for (i, p) in self.policies.iter().enumerate() {
            if let Some(pr) = p
                .profile
                .as_deref()
                .filter(|pr| !POLICY_PROFILES.contains(pr))
            {
                return Err(cerr(
                    format!("policies[{i}].profile"),
                    format!("{pr:?} is not a profile (\"restic\" or \"none\")"),
                ));
            }
            if p.recipients.is_empty() {
                return Err(cerr(
                    format!("policies[{i}].recipients"),
                    "must name at least one recipient",
                ));
            }
            for r in &p.recipients {
                if let Some(g) = r.strip_prefix("group:") {
                    if !groups.contains(g) {
                        return Err(cerr(
                            format!("policies[{i}].recipients"),
                            format!("{r:?}: no [[groups]] entry named {g:?}"),
                        ));
                    }
                    continue;
                }
                if r.starts_with("readback:") {
                    let key = format!("policies[{i}].recipients");
                    parse_readback(r).map_err(|e| cerr(&key, e))?;
                    if self.gateway.state_dir.is_none() {
                        return Err(cerr(
                            key,
                            format!("{r:?} needs gateway.state_dir (where the read-back keys are kept, sealed)"),
                        ));
                    }
                    if self.gateway.secret.is_none()
                        && self.gateway.secret_file.is_none()
                        && self.gateway.secret_env.is_none()
                    {
                        return Err(cerr(
                            key,
                            format!("{r:?} needs gateway.secret (the read-back keys are sealed under it)"),
                        ));
                    }
                    continue;
                }
                if !names.contains(r.as_str()) {
                    return Err(cerr(
                        format!("policies[{i}].recipients"),
                        format!("unknown recipient {r:?} (not an identity or recipient name)"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readback_windows_parse_or_are_refused_without_a_panic() {
        assert_eq!(
            parse_readback("readback:7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            parse_readback("readback:36h").unwrap(),
            Duration::from_secs(36 * 3_600)
        );
        for bad in [
            "readback:",
            "readback:d",
            "readback:0d",
            "readback:7",
            "readback:7é",
            "readback:é",
            "readback:7w",
            "readback:99999d",
            "readback:-1d",
        ] {
            let e = parse_readback(bad).unwrap_err();
            assert!(e.contains("read-back window"), "{bad}: {e}");
        }
    }

    fn parse(s: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, s).unwrap();
        Config::load(&p)
    }

    const OK: &str = r#"
[[users]]
access_key = "AKIA1"
secret_key = "s"
[store]
kind = "local"
path = "data"
[[recipients]]
name = "bob"
public_key_file = "bob.pub.pem"
[[policies]]
bucket = "*"
recipients = ["bob"]
"#;

    #[test]
    fn good_config_loads() {
        let c = parse(OK).unwrap();
        assert!(c.store.path.unwrap().is_absolute());
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut t: toml::Table = toml::from_str(OK).unwrap();
        apply_env_overrides(
            &mut t,
            vec![
                (
                    "SEALGATE_SERVER_LISTEN".to_owned(),
                    "0.0.0.0:9999".to_owned(),
                ),
                ("SEALGATE_STORE_MAX_ATTEMPTS".to_owned(), "7".to_owned()),
                (
                    "SEALGATE_GATEWAY_SECRET_ENV".to_owned(),
                    "GW_SECRET".to_owned(),
                ),
                ("UNRELATED".to_owned(), "x".to_owned()),
                ("SEALGATE_STORE_SECRET".to_owned(), "not a key".to_owned()),
                ("SEALGATE_PASSPHRASE".to_owned(), "not a key".to_owned()),
            ]
            .into_iter(),
        )
        .unwrap();
        let c = Config::deserialize(toml::Value::Table(t)).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9999");
        assert_eq!(c.store.max_attempts, 7);
        assert_eq!(c.gateway.secret_env.as_deref(), Some("GW_SECRET"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse(&OK.replace("recipients = [\"bob\"]", "recipients = [\"eve\"]")).unwrap_err();
        assert_eq!(e.key, "policies[0].recipients");
        let e = parse(&OK.replace("kind = \"local\"", "kind = \"s3\"")).unwrap_err();
        assert_eq!(e.key, "store.endpoint");
        let e = parse(&format!("{OK}\n[server]\nlisten = \"nope\"\n")).unwrap_err();
        assert_eq!(e.key, "server.listen");
        let e = parse(&OK.replace(
            "access_key = \"AKIA1\"",
            "access_key = \"AKIA1\"\nbogus = 1",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn a_bad_pin_says_what_a_fingerprint_is() {
        let groups = r#"
[[identities]]
name = "alice"
key_file = "alice.key.pem"
[sharing]
bucket = "team"
member = "alice"
[[groups]]
name = "team"
admins = ["7F3A-92C1"]
"#;
        let e = parse(&format!("{OK}{groups}")).unwrap_err();
        assert_eq!(e.key, "groups[0].admins");
        assert!(
            e.msg.contains("20 hex digits") && e.msg.contains("7F3A-92C1"),
            "{e}"
        );
        let good = groups.replace("7F3A-92C1", "7F3A-92C1-0B4D-E588-1A2C");
        parse(&format!("{OK}{good}")).unwrap();
    }

    #[test]
    fn audit_is_off_by_default_and_bad_values_name_their_key() {
        let c = parse(OK).unwrap();
        assert!(!c.audit.enabled());
        assert!(c.server.trusted_proxies.is_empty());
        let c = parse(&format!("{OK}\n[audit]\npath = \"logs/audit.log\"\n")).unwrap();
        assert!(c.audit.enabled());
        assert!(
            c.audit.path.unwrap().is_absolute(),
            "resolved beside the config"
        );
        for (toml, key) in [
            ("[audit]\npath = \"a.log\"\nstderr = true\n", "audit.stderr"),
            (
                "[audit]\nstderr = true\nqueue_lines = 0\n",
                "audit.queue_lines",
            ),
            ("[audit]\nstderr = \"yes\"\n", "stderr"),
            ("[audit]\nfile = \"a.log\"\n", "file"),
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/40\"]\n",
                "server.trusted_proxies",
            ),
            (
                "[server]\ntrusted_proxies = [\"proxy.local\"]\n",
                "server.trusted_proxies",
            ),
        ] {
            let e = parse(&format!("{OK}\n{toml}")).unwrap_err();
            assert!(
                e.key == key || e.to_string().contains(key),
                "{toml:?}: {e} (key {})",
                e.key
            );
        }
        let mut t: toml::Table = toml::from_str(OK).unwrap();
        apply_env_overrides(
            &mut t,
            vec![
                ("SEALGATE_AUDIT_STDERR".to_owned(), "true".to_owned()),
                (
                    "SEALGATE_SERVER_TRUSTED_PROXIES".to_owned(),
                    "[\"10.0.0.0/8\"]".to_owned(),
                ),
            ]
            .into_iter(),
        )
        .unwrap();
        let c = Config::deserialize(toml::Value::Table(t)).unwrap();
        assert!(c.audit.stderr);
        assert_eq!(c.server.trusted_proxies, ["10.0.0.0/8"]);
    }
}
