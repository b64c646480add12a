//! `config/sealgate.example.toml` must never rot: it is loaded here with the
//! key and secret files it names, every key of `src/config.rs` must be
//! documented in it, the defaults it states must be the real ones, and
//! `sealgate check-config` must accept it without printing a secret.

use std::path::{Path, PathBuf};
use std::process::Command;

use sealgate::config::{
    AuditConfig, Config, GatewayConfig, GroupConfig, ServerConfig, SharingConfig, StoreConfig,
    StoreKind,
};

const EXAMPLE: &str = include_str!("../../config/sealgate.example.toml");
const CONFIG_RS: &str = include_str!("../../src/config.rs");

const ALICE_SECRET: &str = "alice-secret-0f9e8d7c6b5a49382716";
const BACKUP_SECRET: &str = "backup-secret-5a4b3c2d1e0f9a8b7c6d";
const STORE_SECRET: &str = "store-secret-1a2b3c4d5e6f7a8b9c0d";
const GATEWAY_SECRET: &str = "gateway-secret-9f8e7d6c5b4a3f2e1d0c";
const ALICE_PASSPHRASE: &str = "alice-passphrase-3c2b1a0f9e8d";
const ALICE_SIGNING_PASSPHRASE: &str = "alice-signing-passphrase-7e6d5c4b";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A copy of the example in a fresh directory, with every file it names.
fn example_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = root.join("sealgate.toml");
    write(&config, EXAMPLE);
    let keys = root.join("keys");
    sealgate::keyring::keygen(&keys, "alice", 2048, ALICE_PASSPHRASE.as_bytes()).unwrap();
    // Only the public halves of these are named by the example.
    sealgate::keyring::keygen(&keys, "bob", 2048, b"bob passphrase").unwrap();
    sealgate::keyring::keygen(&keys, "offline", 2048, b"offline passphrase").unwrap();
    sealgate::keyring::keygen_signing(&keys, "alice", ALICE_SIGNING_PASSPHRASE.as_bytes()).unwrap();
    let secrets = root.join("secrets");
    write(&secrets.join("alice.secret"), &format!("{ALICE_SECRET}\n"));
    write(
        &secrets.join("alice.pass"),
        &format!("{ALICE_PASSPHRASE}\n"),
    );
    write(
        &secrets.join("gateway.secret"),
        &format!("{GATEWAY_SECRET}\n"),
    );
    write(
        &secrets.join("alice.sign.pass"),
        &format!("{ALICE_SIGNING_PASSPHRASE}\n"),
    );
    (dir, config)
}

#[test]
fn example_loads_with_the_files_it_names() {
    let (_dir, path) = example_dir();
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("config/sealgate.example.toml: {e}"));

    assert_eq!(cfg.users.len(), 2);
    assert_eq!(cfg.store.kind, StoreKind::S3);
    assert!(!cfg.identities.is_empty() && !cfg.recipients.is_empty() && !cfg.policies.is_empty());
    // Relative paths resolve against the config's directory, and exist there.
    let base = path.parent().unwrap();
    let mut files: Vec<&Path> = cfg
        .identities
        .iter()
        .map(|i| i.key_file.as_path())
        .collect();
    files.extend(
        cfg.identities
            .iter()
            .filter_map(|i| i.passphrase_file.as_deref()),
    );
    files.extend(cfg.recipients.iter().map(|r| r.public_key_file.as_path()));
    files.extend(
        cfg.users
            .iter()
            .filter_map(|u| u.secret_key_file.as_deref()),
    );
    files.extend(cfg.gateway.secret_file.as_deref());
    let sharing = cfg.sharing.as_ref().expect("the example has [sharing]");
    files.extend(sharing.signing_key_file.as_deref());
    files.extend(sharing.signing_passphrase_file.as_deref());
    for f in files {
        assert!(
            f.starts_with(base) && f.is_file(),
            "{} is not a file beside the config",
            f.display()
        );
    }
    // The whole keyring builds (passphrases, key files, policy names).
    sealgate::app::build_keyring(&cfg).unwrap();
    // The signing key loads as the group commands load it.
    sealgate::commands::sharing::signing_key(&cfg).unwrap();
    // The policy naming a group names a group of the example.
    assert!(cfg.groups.iter().any(|g| g.name == "team"));
    assert!(cfg
        .policies
        .iter()
        .any(|p| p.recipients.iter().any(|r| r == "group:team")));
}

/// Where the example sets a key to the value it documents as the default, the
/// value must be the real default.
#[test]
fn example_states_the_real_defaults() {
    let (_dir, path) = example_dir();
    let cfg = Config::load(&path).unwrap();
    let (s, d) = (&cfg.server, ServerConfig::default());
    assert_eq!(s.listen, d.listen);
    assert_eq!(s.domains, d.domains);
    assert_eq!(s.region, d.region);
    assert_eq!(s.shutdown_grace_secs, d.shutdown_grace_secs);
    assert_eq!(s.max_object_size, d.max_object_size);
    assert_eq!(s.max_connections, d.max_connections);
    assert!(s.tls_cert.is_none() && s.tls_key.is_none() && s.tls_listen.is_none());
    assert_eq!(s.trusted_proxies, d.trusted_proxies);
    let (a, d) = (&cfg.audit, AuditConfig::default());
    assert!(
        !a.enabled() && !d.enabled(),
        "the audit log is off by default"
    );
    assert_eq!(a.queue_lines, d.queue_lines);
    assert!(EXAMPLE.contains("# stderr = true\n") && EXAMPLE.contains("Default: false"));
    let (g, d) = (&cfg.gateway, GatewayConfig::default());
    assert_eq!(g.key_cache_entries, d.key_cache_entries);
    assert_eq!(g.key_cache_idle_secs, d.key_cache_idle_secs);
    assert_eq!(g.object_cache_entries, d.object_cache_entries);
    assert_eq!(g.list_concurrency, d.list_concurrency);
    let (st, d) = (&cfg.store, StoreConfig::default());
    assert_eq!(
        d.kind,
        StoreKind::Local,
        "the example documents local as the default kind"
    );
    assert_eq!(st.path_style, d.path_style);
    assert_eq!(st.connect_timeout_secs, d.connect_timeout_secs);
    assert_eq!(st.request_timeout_secs, d.request_timeout_secs);
    assert_eq!(st.max_attempts, d.max_attempts);
    assert_eq!(st.conditional_writes, d.conditional_writes);
    assert_eq!(d.region, "us-east-1");
    // [sharing] and [[groups]] have no Default: their defaults are what
    // serde fills in when the keys are left out.
    let sh = cfg.sharing.as_ref().unwrap();
    let d: SharingConfig = toml::from_str("bucket = \"b\"\nmember = \"m\"").unwrap();
    assert_eq!(sh.refresh_secs, d.refresh_secs);
    assert!(EXAMPLE.contains(&format!("Default: {}\nrefresh_secs", d.refresh_secs)));
    assert!(d.state_dir.is_none() && d.signing_key_file.is_none() && d.identity.is_none());
    let d: GroupConfig = toml::from_str("name = \"g\"\nadmins = []").unwrap();
    assert_eq!(cfg.groups[0].min_version, d.min_version);
    // Defaults of keys the example leaves out or sets differently.
    assert!(EXAMPLE.contains("Default: \"us-east-1\""));
    assert!(EXAMPLE.contains("Default: [\"*\"]"));
    assert!(EXAMPLE.contains("Default: \"\" (the whole bucket)"));
}

/// `(struct name, [field names])` of every `pub struct ...Config` in
/// src/config.rs.
fn config_structs() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in CONFIG_RS.lines() {
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.split([' ', '{']).next().unwrap_or_default();
            if name.ends_with("Config") && rest.trim_end().ends_with('{') {
                current = Some((name.to_owned(), Vec::new()));
            }
            continue;
        }
        if line == "}" {
            out.extend(current.take());
            continue;
        }
        if let Some((_, fields)) = &mut current {
            if let Some(f) = line.trim().strip_prefix("pub ") {
                if let Some((name, _)) = f.split_once(':') {
                    fields.push(name.trim().to_owned());
                }
            }
        }
    }
    out
}

/// Every key of every config struct appears in the example, set or commented
/// out (`key = ...` or `# key = ...`).
#[test]
fn example_documents_every_key() {
    let structs = config_structs();
    let names: Vec<&str> = structs.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "Config",
        "ServerConfig",
        "UserConfig",
        "StoreConfig",
        "GatewayConfig",
        "IdentityConfig",
        "RecipientConfig",
        "PolicyConfig",
        "SharingConfig",
        "GroupConfig",
        "AuditConfig",
    ] {
        assert!(
            names.contains(&want),
            "src/config.rs no longer has {want}: update this test ({names:?})"
        );
    }
    let keys: Vec<&str> = EXAMPLE
        .lines()
        .map(|l| l.trim_start().trim_start_matches('#').trim_start())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    for (name, fields) in &structs {
        assert!(!fields.is_empty(), "{name}: no fields parsed");
        for f in fields {
            let documented = if name == "Config" {
                EXAMPLE.contains(&format!("\n[{f}]\n")) || EXAMPLE.contains(&format!("\n[[{f}]]\n"))
            } else {
                keys.contains(&f.as_str())
            };
            assert!(
                documented,
                "config/sealgate.example.toml does not document `{f}` ({name} in src/config.rs)"
            );
        }
    }
}

#[test]
fn check_config_accepts_the_example_and_prints_no_secret() {
    let (_dir, path) = example_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_sealgate"))
        .args(["check-config", "--config"])
        .arg(&path)
        .env("SEALGATE_BACKUP_SECRET", BACKUP_SECRET)
        .env("SEALGATE_STORE_SECRET", STORE_SECRET)
        .env_remove("SEALGATE_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "check-config failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("is valid"), "{stdout}");
    for name in [
        "SGEXAMPLEALICE",
        "SGEXAMPLEBACKUP",
        "alice",
        "bob",
        "offline",
        "team",
        "backups",
        "group:team",
    ] {
        assert!(
            stdout.contains(name),
            "check-config does not mention {name}:\n{stdout}"
        );
    }
    for secret in [
        ALICE_SECRET,
        BACKUP_SECRET,
        STORE_SECRET,
        GATEWAY_SECRET,
        ALICE_PASSPHRASE,
        ALICE_SIGNING_PASSPHRASE,
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "check-config printed a secret:\n{stdout}\n{stderr}"
        );
    }
}
