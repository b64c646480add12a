//! Object Lock as a store keeps it: retention (a mode and a date until
//! which a version may not be deleted or overwritten), legal holds, and a
//! bucket's default retention. The store enforces all of it; sealgate only
//! passes it through, and checks that a store which cannot lock says so
//! (docs/SECURITY.md, "Object Lock").
//!
//! A store that supports it answers [`Store::locks`](super::Store::locks)
//! with a [`LockStore`]; the embedded local store does not, and every
//! operation asking for a lock is then refused (501).

use std::time::SystemTime;

use async_trait::async_trait;

use super::StoreResult;

/// A retention mode: GOVERNANCE (users with a bypass permission may shorten
/// or remove it) or COMPLIANCE (nobody may, until it expires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

/// The lock of one object version, as a write asks for it or as the store
/// reports it (HEAD, GET).
///
/// On a write, `Some(ObjectLock::default())` in
/// [`ObjectHeaders::lock`](super::ObjectHeaders::lock) says the bucket has
/// Object Lock enabled but the write asks for nothing itself (the store
/// applies the bucket's default retention): the store request then carries
/// what S3 asks of every write to such a bucket (a content checksum).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: Option<LockMode>,
    pub retain_until: Option<SystemTime>,
    pub legal_hold: Option<bool>,
}

impl ObjectLock {
    /// Whether this asks for (or reports) any lock at all.
    pub fn is_set(&self) -> bool {
        self.mode.is_some() || self.retain_until.is_some() || self.legal_hold == Some(true)
    }

    /// Whether it protects the version at `now`: a retention not yet
    /// expired, or a legal hold.
    pub fn active_at(&self, now: SystemTime) -> bool {
        self.legal_hold == Some(true)
            || (self.mode.is_some() && self.retain_until.is_some_and(|t| t > now))
    }
}

/// An object version's retention (PutObjectRetention / GetObjectRetention).
/// Both `None` removes a GOVERNANCE retention (with the bypass).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub mode: Option<LockMode>,
    pub retain_until: Option<SystemTime>,
}

/// A bucket's default retention: every new version gets it unless its write
/// names its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRetention {
    pub mode: Option<LockMode>,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

/// A bucket's Object Lock configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockConfig {
    /// `ObjectLockEnabled: Enabled`.
    pub enabled: bool,
    pub default_retention: Option<DefaultRetention>,
}

/// Object Lock operations of a store that supports them. The version is
/// `None` for the latest one. Errors are the store's own (a store that
/// does not implement an operation answers 501 `NotImplemented`).
#[async_trait]
pub trait LockStore: Send + Sync {
    /// HeadObject of a version (the latest with `None`), with the lock the
    /// store reports.
    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<super::ObjectInfo>;
    /// CreateBucket with `x-amz-bucket-object-lock-enabled: true`.
    async fn create_locked_bucket(&self, bucket: &str) -> StoreResult<()>;
    /// `Ok(None)` when the bucket has no Object Lock configuration
    /// (`ObjectLockConfigurationNotFoundError`).
    async fn lock_config(&self, bucket: &str) -> StoreResult<Option<LockConfig>>;
    async fn put_lock_config(&self, bucket: &str, config: &LockConfig) -> StoreResult<()>;
    /// `Ok(None)` when the version has no retention.
    async fn retention(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<Option<Retention>>;
    async fn put_retention(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        retention: &Retention,
        bypass_governance: bool,
    ) -> StoreResult<()>;
    /// Whether the version's legal hold is ON.
    async fn legal_hold(&self, bucket: &str, key: &str, version: Option<&str>)
        -> StoreResult<bool>;
    async fn put_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        on: bool,
    ) -> StoreResult<()>;
}
