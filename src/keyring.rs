//! Keys on disk and in memory: identities (private keys this gateway holds),
//! recipients (public keys, by name), policies (who every new object is
//! encrypted for), and the cache of unwrapped data keys.
//!
//! Private keys are standard encrypted PKCS#8 PEM (PBES2: PBKDF2-SHA256 with
//! 600,000 iterations, AES-256-CBC), which `openssl pkey` reads back. Public
//! keys are SPKI PEM. Key files are written 0600 and never overwritten;
//! group- or world-readable private key files are refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pkcs8::der::pem::LineEnding;
use pkcs8::der::Decode;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use zeroize::Zeroizing;

use crate::envelope::recipient::{generate_rsa_pkcs8, key_id_of_spki};
use crate::envelope::{
    DataKey, FormatError, Header, Identity, Recipient, RecipientStanza, RsaOaepIdentity,
    RsaOaepRecipient,
};

/// A private key this gateway can decrypt with, of any supported type.
pub type SharedIdentity = Arc<dyn Identity>;
/// A public key objects can be encrypted for, of any supported type.
pub type SharedRecipient = Arc<dyn Recipient>;

/// PBKDF2 iterations for new private key files.
const PBKDF2_ITERATIONS: u32 = 600_000;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    #[error("{path}: wrong passphrase, or not an encrypted PKCS#8 private key")]
    Passphrase { path: PathBuf },
    #[error("{0}")]
    Other(String),
}

fn file_err(path: &Path, msg: impl Into<String>) -> KeyError {
    KeyError::File {
        path: path.to_owned(),
        msg: msg.into(),
    }
}

/// Writes `data` to a new file with mode 0600; refuses to overwrite.
pub fn write_new_secret_file(path: &Path, data: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            file_err(path, "already exists; refusing to overwrite")
        } else {
            file_err(path, e.to_string())
        }
    })?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| file_err(path, e.to_string()))
}

/// Refuses files that group or others can read.
pub fn check_private_permissions(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| file_err(path, e.to_string()))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(file_err(
                path,
                format!(
                    "private key file is accessible to group or others (mode {:o}); run `chmod 600 {}`",
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Generates an RSA key pair and writes `NAME.key.pem` (encrypted) and
/// `NAME.pub.pem` into `dir`. Returns the two paths and the key id.
pub fn keygen(
    dir: &Path,
    name: &str,
    bits: usize,
    passphrase: &[u8],
) -> Result<(PathBuf, PathBuf, [u8; 8]), KeyError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(KeyError::Other(format!(
            "key name {name:?} must be letters, digits, '-', '_' or '.'"
        )));
    }
    if passphrase.is_empty() {
        return Err(KeyError::Other("the passphrase must not be empty".into()));
    }
    let key_path = dir.join(format!("{name}.key.pem"));
    let pub_path = dir.join(format!("{name}.pub.pem"));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(file_err(p, "already exists; refusing to overwrite"));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e.to_string()))?;
    let (private_der, public_der) =
        generate_rsa_pkcs8(bits).map_err(|e| KeyError::Other(e.to_string()))?;
    let pem = encrypt_private_key(&private_der, passphrase)?;
    let pub_pem = public_pem(&public_der)?;
    write_new_secret_file(&key_path, pem.as_bytes())?;
    write_new_secret_file(&pub_path, pub_pem.as_bytes())?;
    Ok((key_path, pub_path, key_id_of_spki(&public_der)))
}

/// Generates an Ed25519 signing key (to administer groups) and writes
/// `NAME.sign.pem` (encrypted) and `NAME.sign.pub.pem` into `dir`. Returns
/// the two paths and the fingerprint.
pub fn keygen_signing(
    dir: &Path,
    name: &str,
    passphrase: &[u8],
) -> Result<(PathBuf, PathBuf, crate::sharing::fingerprint::Fingerprint), KeyError> {
    use crate::sharing::signing::SigningKey;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(KeyError::Other(format!(
            "key name {name:?} must be letters, digits, '-', '_' or '.'"
        )));
    }
    if passphrase.is_empty() {
        return Err(KeyError::Other("the passphrase must not be empty".into()));
    }
    let key_path = dir.join(format!("{name}.sign.pem"));
    let pub_path = dir.join(format!("{name}.sign.pub.pem"));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(file_err(p, "already exists; refusing to overwrite"));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e.to_string()))?;
    let k = SigningKey::generate().map_err(|e| KeyError::Other(e.to_string()))?;
    let pem = k
        .to_encrypted_pem(passphrase)
        .map_err(|e| KeyError::Other(e.to_string()))?;
    let pub_pem = k
        .verifying_key()
        .to_spki_pem()
        .map_err(|e| KeyError::Other(e.to_string()))?;
    write_new_secret_file(&key_path, pem.as_bytes())?;
    write_new_secret_file(&pub_path, pub_pem.as_bytes())?;
    Ok((key_path, pub_path, k.fingerprint()))
}

/// Encrypts PKCS#8 DER into an `ENCRYPTED PRIVATE KEY` PEM.
pub fn encrypt_private_key(der: &[u8], passphrase: &[u8]) -> Result<Zeroizing<String>, KeyError> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| KeyError::Other("no randomness".into()))?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| KeyError::Other("no randomness".into()))?;
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
            .map_err(|e| KeyError::Other(e.to_string()))?;
    let info = PrivateKeyInfo::from_der(der).map_err(|e| KeyError::Other(e.to_string()))?;
    let doc = info
        .encrypt_with_params(params, passphrase)
        .map_err(|e| KeyError::Other(e.to_string()))?;
    doc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| KeyError::Other(e.to_string()))
}

/// SPKI DER to a `PUBLIC KEY` PEM.
pub fn public_pem(der: &[u8]) -> Result<String, KeyError> {
    pkcs8::der::pem::encode_string("PUBLIC KEY", LineEnding::LF, der)
        .map_err(|e| KeyError::Other(e.to_string()))
}

/// Reads an encrypted PKCS#8 PEM private key. The key type decides the
/// identity's algorithm (RSA-OAEP-256 is the only one in v1).
pub fn load_identity(path: &Path, passphrase: &[u8]) -> Result<SharedIdentity, KeyError> {
    check_private_permissions(path)?;
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| file_err(path, e.to_string()))?);
    let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
        .map_err(|_| file_err(path, "not a PEM file"))?;
    let der = Zeroizing::new(der);
    match label {
        "ENCRYPTED PRIVATE KEY" => {
            let epki = EncryptedPrivateKeyInfo::from_der(&der)
                .map_err(|_| file_err(path, "not an encrypted PKCS#8 private key"))?;
            let secret = epki.decrypt(passphrase).map_err(|_| KeyError::Passphrase {
                path: path.to_owned(),
            })?;
            RsaOaepIdentity::from_pkcs8_der(secret.as_bytes())
                .map(|k| Arc::new(k) as SharedIdentity)
                .map_err(|e| file_err(path, e.to_string()))
        }
        "PRIVATE KEY" => Err(file_err(
            path,
            "unencrypted private keys are refused; encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
        )),
        other => Err(file_err(path, format!("unexpected PEM label {other:?}"))),
    }
}

/// Reads an SPKI PEM public key.
pub fn load_recipient(path: &Path) -> Result<SharedRecipient, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e.to_string()))?;
    let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
        .map_err(|_| file_err(path, "not a PEM file"))?;
    if label != "PUBLIC KEY" {
        return Err(file_err(
            path,
            format!("expected a PUBLIC KEY PEM, found {label:?}"),
        ));
    }
    RsaOaepRecipient::from_spki_der(&der)
        .map(|k| Arc::new(k) as SharedRecipient)
        .map_err(|e| file_err(path, e.to_string()))
}

/// A named recipient.
#[derive(Clone)]
pub struct NamedRecipient {
    pub name: String,
    pub key: SharedRecipient,
}

/// Which recipients new objects under `bucket`/`prefix` are encrypted for.
#[derive(Clone, Debug)]
pub struct Policy {
    pub bucket: String,
    pub prefix: String,
    pub recipients: Vec<String>,
}

impl Policy {
    fn matches(&self, bucket: &str, key: &str) -> bool {
        (self.bucket == "*" || self.bucket == bucket) && key.starts_with(&self.prefix)
    }
    fn rank(&self) -> (bool, usize) {
        (self.bucket != "*", self.prefix.len())
    }
}

/// The data-key cache's key for one recipient stanza.
fn dk_cache_key(st: &RecipientStanza) -> Vec<u8> {
    let mut k = Vec::with_capacity(st.wrapped.len() + 9);
    k.push(st.algorithm);
    k.extend_from_slice(&st.key_id);
    k.extend_from_slice(&st.wrapped);
    k
}

/// Everything key-related a running gateway holds.
pub struct Keyring {
    identities: Vec<(String, SharedIdentity)>,
    /// Identities learned at run time: the epoch keys of the groups this
    /// gateway's user is a member of (opened from verified group documents).
    learned: std::sync::RwLock<Vec<(String, SharedIdentity)>>,
    /// This gateway's read-back keys (`readback:` recipients of policies),
    /// when a policy names one.
    readback: std::sync::OnceLock<Arc<crate::readback::Readback>>,
    recipients: HashMap<String, NamedRecipient>,
    policies: Vec<Policy>,
    dk_cache: moka::future::Cache<Vec<u8>, Arc<DataKey>>,
    pub stats: CacheStats,
}

#[derive(Default)]
pub struct CacheStats {
    pub hits: std::sync::atomic::AtomicU64,
    pub unwraps: std::sync::atomic::AtomicU64,
}

impl Keyring {
    pub fn new(
        identities: Vec<(String, SharedIdentity)>,
        recipients: Vec<(String, SharedRecipient)>,
        policies: Vec<Policy>,
        cache_entries: u64,
        cache_idle: Duration,
    ) -> Self {
        let mut map = HashMap::new();
        for (name, r) in recipients {
            map.insert(name.clone(), NamedRecipient { name, key: r });
        }
        Self {
            identities,
            learned: Default::default(),
            readback: Default::default(),
            recipients: map,
            policies,
            dk_cache: moka::future::Cache::builder()
                .max_capacity(cache_entries)
                .time_to_idle(cache_idle)
                .build(),
            stats: CacheStats::default(),
        }
    }

    /// The identities of the config (the user's own private keys).
    pub fn identities(&self) -> &[(String, SharedIdentity)] {
        &self.identities
    }

    /// Replaces the identities learned under `source` (a group's epoch keys)
    /// with `ids`.
    pub fn learn(&self, source: &str, ids: Vec<SharedIdentity>) {
        let mut l = self.learned.write().expect("learned identities");
        l.retain(|(s, _)| s != source);
        l.extend(ids.into_iter().map(|i| (source.to_owned(), i)));
    }

    /// Gives the keyring this gateway's read-back keys; a second call is
    /// ignored (a test may set its own, with its own clock, before
    /// `app::build_over`). Returns whether this one was taken.
    pub fn set_readback(&self, rb: Arc<crate::readback::Readback>) -> bool {
        self.readback.set(rb).is_ok()
    }

    pub fn readback(&self) -> Option<&Arc<crate::readback::Readback>> {
        self.readback.get()
    }

    /// Every identity that may open `st`: configured ones first, then
    /// learned ones, then the read-back keys still alive.
    fn identity_for(&self, st: &RecipientStanza) -> Option<SharedIdentity> {
        if let Some((_, id)) = self.identities.iter().find(|(_, id)| id.matches(st)) {
            return Some(id.clone());
        }
        let learned = self
            .learned
            .read()
            .expect("learned identities")
            .iter()
            .find(|(_, id)| id.matches(st))
            .map(|(_, id)| id.clone());
        learned.or_else(|| self.readback.get()?.identity_for(st))
    }

    pub fn recipient(&self, name: &str) -> Option<&NamedRecipient> {
        self.recipients.get(name)
    }

    pub fn recipients(&self) -> impl Iterator<Item = &NamedRecipient> {
        self.recipients.values()
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The name a key id is known by, if any.
    pub fn name_of(&self, key_id: &[u8; 8]) -> Option<&str> {
        self.recipients
            .values()
            .find(|r| r.key.key_id() == *key_id)
            .map(|r| r.name.as_str())
    }

    /// The most specific policy for a new object at bucket/key.
    pub fn policy_for(&self, bucket: &str, key: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .filter(|p| p.matches(bucket, key))
            .max_by_key(|p| p.rank())
    }

    /// Unwraps the data key of `header` with any identity we hold, through
    /// the cache (keyed by the wrapped key bytes: concurrent cold requests for
    /// one object do one RSA operation). Not yet authenticated: the caller
    /// checks commitment and MAC.
    pub async fn unwrap(&self, header: &Header) -> Result<Arc<DataKey>, FormatError> {
        for st in &header.recipients {
            let Some(id) = self.identity_for(st) else {
                continue;
            };
            let cache_key = dk_cache_key(st);
            let id = id.clone();
            let stanza: RecipientStanza = st.clone();
            let stats = &self.stats;
            let mut missed = false;
            let r = self
                .dk_cache
                .try_get_with(cache_key, async {
                    missed = true;
                    stats
                        .unwraps
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let id = id.clone();
                    tokio::task::spawn_blocking(move || id.unwrap(&stanza).map(Arc::new))
                        .await
                        .map_err(|_| FormatError::Crypto)?
                })
                .await;
            if !missed {
                stats
                    .hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            return r.map_err(|e| (*e).clone());
        }
        Err(FormatError::NoMatchingRecipient {
            key_ids: header.key_ids_hex(),
        })
    }

    /// Caches the data key of an object this gateway has just sealed, so that
    /// reading it back costs no RSA operation: the same cache, bounds and
    /// expiry as keys unwrapped for reads.
    /// Returns whether this gateway holds an identity for the object: a
    /// write-only gateway (no identity among the recipients) keeps nothing,
    /// so it cannot read back what it wrote, even for a moment.
    pub async fn remember(&self, header: &Header, dk: &Arc<DataKey>) -> bool {
        let mut any = false;
        for st in &header.recipients {
            let ours = self.identity_for(st).is_some();
            if ours {
                self.dk_cache.insert(dk_cache_key(st), dk.clone()).await;
                any = true;
            }
        }
        any
    }

    /// Whether this gateway holds an identity for one of `header`'s stanzas.
    pub fn can_open(&self, header: &Header) -> bool {
        header
            .recipients
            .iter()
            .any(|st| self.identity_for(st).is_some())
    }

    /// Wraps `dk` for each of `recipients` (rewrap).
    pub fn wrap_for(
        dk: &DataKey,
        recipients: &[SharedRecipient],
    ) -> Result<Vec<RecipientStanza>, FormatError> {
        recipients.iter().map(|r| r.wrap(dk)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_encrypted_pkcs8_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (k, p, id) = keygen(dir.path(), "alice", 2048, b"correct horse").unwrap();
        let text = std::fs::read_to_string(&k).unwrap();
        assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let ident = load_identity(&k, b"correct horse").unwrap();
        assert_eq!(ident.key_id(), id);
        assert_eq!(load_recipient(&p).unwrap().key_id(), id);
        assert!(matches!(
            load_identity(&k, b"wrong"),
            Err(KeyError::Passphrase { .. })
        ));
        assert!(keygen(dir.path(), "alice", 2048, b"x").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_identity(&k, b"correct horse").unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn policy_precedence() {
        let kr = Keyring::new(
            vec![],
            vec![],
            vec![
                Policy {
                    bucket: "*".into(),
                    prefix: "".into(),
                    recipients: vec!["a".into()],
                },
                Policy {
                    bucket: "b".into(),
                    prefix: "".into(),
                    recipients: vec!["b".into()],
                },
                Policy {
                    bucket: "b".into(),
                    prefix: "x/".into(),
                    recipients: vec!["c".into()],
                },
            ],
            10,
            Duration::from_secs(60),
        );
        assert_eq!(kr.policy_for("z", "k").unwrap().recipients, vec!["a"]);
        assert_eq!(kr.policy_for("b", "k").unwrap().recipients, vec!["b"]);
        assert_eq!(kr.policy_for("b", "x/k").unwrap().recipients, vec!["c"]);
    }
}
