//! Object Lock, passed through to the store: bucket creation with Object
//! Lock, the bucket's configuration (default retention), the retention and
//! legal hold of object versions, and the lock headers of writes, HEAD and
//! GET. The store enforces every lock; sealgate forwards faithfully and
//! never drops one:
//!
//! - A write asking for a lock goes ahead only when the store says the
//!   bucket has Object Lock enabled (GetObjectLockConfiguration), and the
//!   store's HEAD afterwards must report the lock: a store that cannot lock
//!   (the embedded store, Garage) gets the request refused (501, or the
//!   store's own error), never an object silently left unlocked.
//! - A multipart object is unreadable without its manifest
//!   (`.sealgate/mp/...`), so the manifest gets the object's lock: the lock
//!   asked at CreateMultipartUpload travels sealed in the upload id
//!   ([`super::token`]) to completion; a bucket's default retention reaches
//!   it as any new object; PutObjectRetention and PutObjectLegalHold are
//!   applied to the manifest first, then to the object.
//! - A locked object's manifest is never deleted by sealgate (a replaced or
//!   deleted object's locked version keeps what it needs to be read).
//!
//! What the store answers about a lock is its word, unauthenticated: a store
//! lying about it can only misreport a lock it enforces (or not) anyway.
//! docs/SECURITY.md, "Object Lock".

use std::time::{Duration, SystemTime};

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::error::from_store;
use super::object::manifest_key;
use super::{check_key, Gateway, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::{BodyBinding, Header};
use crate::store::lock::{
    DefaultRetention as StoreDefault, LockConfig, LockMode, ObjectLock, Retention,
};
use crate::store::{ObjectHeaders, StoreError, WriteCondition};

/// How long a bucket's "has Object Lock" is remembered for writes that ask
/// for no lock themselves (they then carry a checksum, as S3 requires).
pub(crate) const BUCKET_LOCK_TTL: Duration = Duration::from_secs(60);

/// What a write asks of the store besides its content: a condition on the
/// object it replaces, and a lock for the version it makes.
#[derive(Clone, Copy, Default)]
pub struct Write<'a> {
    pub cond: Option<&'a WriteCondition>,
    pub lock: Option<&'a ObjectLock>,
}

fn not_implemented(why: &str) -> s3s::S3Error {
    s3_error!(NotImplemented, "{why}")
}

fn no_lock_store() -> s3s::S3Error {
    not_implemented("Object Lock is not supported by this gateway's store (the embedded local store); nothing was written")
}

fn to_system(t: &Timestamp) -> SystemTime {
    SystemTime::from(time::OffsetDateTime::from(t.clone()))
}

fn mode_of(s: &str) -> S3Result<LockMode> {
    LockMode::parse(s).ok_or_else(|| s3_error!(InvalidArgument, "Unknown object lock mode {s}"))
}

/// The lock a write's headers ask for (`x-amz-object-lock-mode`,
/// `-retain-until-date`, `-legal-hold`); `None` when they ask for none.
pub(crate) fn asked(
    mode: Option<&ObjectLockMode>,
    until: Option<&ObjectLockRetainUntilDate>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<Option<ObjectLock>> {
    let l = ObjectLock {
        mode: mode.map(|m| mode_of(m.as_str())).transpose()?,
        retain_until: until.map(to_system),
        legal_hold: hold.map(|h| h.as_str() == ObjectLockLegalHoldStatus::ON),
    };
    if l.mode.is_some() != l.retain_until.is_some() {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
        ));
    }
    Ok(l.is_set().then_some(l))
}

/// The lock headers of a HEAD or GET answer, as the store reports them.
pub(crate) fn reported(
    h: &ObjectHeaders,
) -> (
    Option<ObjectLockMode>,
    Option<ObjectLockRetainUntilDate>,
    Option<ObjectLockLegalHoldStatus>,
) {
    let Some(l) = &h.lock else {
        return (None, None, None);
    };
    (
        l.mode.map(|m| ObjectLockMode::from(m.as_str().to_owned())),
        l.retain_until.map(Timestamp::from),
        l.legal_hold.map(|on| {
            ObjectLockLegalHoldStatus::from_static(if on {
                ObjectLockLegalHoldStatus::ON
            } else {
                ObjectLockLegalHoldStatus::OFF
            })
        }),
    )
}

/// Whether the object these store headers describe is locked now: its
/// manifest must then stay (the locked version needs it to be read).
pub(crate) fn locked_now(h: &ObjectHeaders) -> bool {
    h.lock
        .as_ref()
        .is_some_and(|l| l.active_at(SystemTime::now()))
}

impl Gateway {
    /// Whether the bucket has Object Lock enabled, as the store said within
    /// [`BUCKET_LOCK_TTL`]. A store that cannot tell (no such operation, no
    /// permission, unreachable) counts as no: a write that needs a checksum
    /// there is then refused by the store itself, with its own error.
    pub(crate) async fn bucket_locked(&self, bucket: &str) -> bool {
        let Some(locks) = self.store.locks() else {
            return false;
        };
        if let Some(on) = self.lock_buckets.get(bucket) {
            return on;
        }
        match locks.lock_config(bucket).await {
            Ok(c) => {
                let on = c.is_some_and(|c| c.enabled);
                self.lock_buckets.insert(bucket.to_owned(), on);
                on
            }
            Err(e) if e.unavailable => false,
            Err(_) => {
                self.lock_buckets.insert(bucket.to_owned(), false);
                false
            }
        }
    }

    /// The lock a new version at `bucket` is written with: what the client
    /// asked for, only once the store confirms the bucket has Object Lock
    /// (asked afresh, never from the cache); or, asking for nothing on a
    /// bucket with Object Lock, the marker that makes the store request
    /// carry a checksum ([`ObjectLock`]).
    pub(crate) async fn write_lock(
        &self,
        bucket: &str,
        asked: Option<ObjectLock>,
    ) -> S3Result<Option<ObjectLock>> {
        let Some(asked) = asked else {
            return Ok(self.bucket_locked(bucket).await.then(ObjectLock::default));
        };
        let locks = self.store.locks().ok_or_else(no_lock_store)?;
        match locks.lock_config(bucket).await {
            Ok(Some(c)) if c.enabled => {
                self.lock_buckets.insert(bucket.to_owned(), true);
                Ok(Some(asked))
            }
            Ok(_) => Err(s3_error!(
                InvalidRequest,
                "Bucket is missing Object Lock Configuration"
            )),
            Err(e) if e.status == 501 => Err(not_implemented(&format!(
                "The store does not support Object Lock ({}: {}); nothing was written",
                e.code, e.message
            ))),
            Err(e) => Err(from_store(e)),
        }
    }

    /// After a write that asked for `asked`: the store must report that
    /// lock on the version the write made (`version`, the id the store gave
    /// for it; the latest when it gave none), so that a writer coming in
    /// between neither passes nor fails the check in its place. A store
    /// that accepted the lock headers and dropped them is refused loudly.
    pub(crate) async fn verify_lock(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        asked: &ObjectLock,
    ) -> S3Result<()> {
        let info = self
            .store
            .head_version(bucket, key, version)
            .await
            .map_err(from_store)?;
        let got = info.headers.lock.unwrap_or_default();
        let until_ok = match (asked.retain_until, got.retain_until) {
            (None, _) => true,
            // Stores keep the date to the second or the millisecond.
            (Some(want), Some(have)) => have + Duration::from_secs(1) >= want,
            (Some(_), None) => false,
        };
        let ok = (asked.mode.is_none() || got.mode == asked.mode)
            && until_ok
            && (asked.legal_hold != Some(true) || got.legal_hold == Some(true));
        if ok {
            return Ok(());
        }
        tracing::error!(
            bucket,
            key,
            version,
            "the store accepted a locked write but reports no such lock"
        );
        Err(not_implemented(
            "The store accepted the write but does not report the Object Lock asked for: the object is NOT locked. This store does not enforce Object Lock.",
        ))
    }

    /// The lock a rewrite of an object onto itself (`sealgate rewrap`,
    /// `reencrypt`) gives the new version: the lock the old one has now (a
    /// retention not yet expired, a legal hold), so the new latest version
    /// is as protected as the one it replaces, and no more (the retention
    /// ends when the old one's does).
    pub(crate) async fn carried_lock(
        &self,
        bucket: &str,
        src: &ObjectHeaders,
    ) -> S3Result<Option<ObjectLock>> {
        let now = SystemTime::now();
        let carried = src.lock.as_ref().and_then(|l| {
            let retained = l.mode.is_some() && l.retain_until.is_some_and(|t| t > now);
            let c = ObjectLock {
                mode: if retained { l.mode } else { None },
                retain_until: if retained { l.retain_until } else { None },
                legal_hold: (l.legal_hold == Some(true)).then_some(true),
            };
            c.is_set().then_some(c)
        });
        self.write_lock(bucket, carried).await
    }

    /// The manifest key of the object version at `bucket/key` (the latest
    /// one, or `version`), if it is a multipart object. The store's word:
    /// used only to give a manifest the lock the client asks for the object.
    async fn manifest_of_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<Option<String>> {
        let locks = self.store.locks().ok_or_else(no_lock_store)?;
        let info = locks
            .head_version(bucket, key, version)
            .await
            .map_err(from_store)?;
        let Some(meta) = info.headers.metadata.get(META_KEY) else {
            return Ok(None);
        };
        Ok(match MetaValue::decode(meta) {
            Ok(MetaValue::Inline(raw)) => match Header::parse(&raw).map(|h| h.binding) {
                Ok(BodyBinding::Multipart { upload_id }) => Some(manifest_key(&upload_id)),
                _ => None,
            },
            Ok(MetaValue::InManifest { upload_id, .. }) => Some(manifest_key(&upload_id)),
            _ => None,
        })
    }
}

/// CreateBucket with `x-amz-bucket-object-lock-enabled: true`: created by
/// the store, then checked: a bucket the store made without Object Lock (it
/// ignores the header) is removed again and the request refused.
pub async fn create_locked_bucket(gw: &Gateway, bucket: &str) -> S3Result<()> {
    let locks = gw.store.locks().ok_or_else(|| {
        not_implemented(
            "Object Lock is not supported by this gateway's store (the embedded local store)",
        )
    })?;
    locks.create_locked_bucket(bucket).await?;
    match locks.lock_config(bucket).await {
        Ok(Some(c)) if c.enabled => {
            gw.lock_buckets.insert(bucket.to_owned(), true);
            Ok(())
        }
        other => {
            let why = match other {
                Err(e) => format!("{}: {}", e.code, e.message),
                Ok(_) => "it reports no Object Lock configuration".to_owned(),
            };
            if let Err(e) = gw.store.delete_bucket(bucket).await {
                tracing::warn!(bucket, error = %e, "could not remove a bucket created without Object Lock");
            }
            Err(not_implemented(&format!(
                "The store created the bucket without Object Lock ({why}): it does not support Object Lock, and the bucket was removed again"
            )))
        }
    }
}

pub async fn get_lock_configuration(
    gw: &Gateway,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let locks = gw.store.locks().ok_or_else(no_lock_store)?;
    let c = locks.lock_config(&req.input.bucket).await?.ok_or_else(|| {
        from_store(StoreError::new(
            404,
            "ObjectLockConfigurationNotFoundError",
            "Object Lock configuration does not exist for this bucket",
        ))
    })?;
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: c
                .enabled
                .then(|| ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule: c.default_retention.map(|d| ObjectLockRule {
                default_retention: Some(DefaultRetention {
                    days: d.days,
                    years: d.years,
                    mode: d
                        .mode
                        .map(|m| ObjectLockRetentionMode::from(m.as_str().to_owned())),
                }),
            }),
        }),
    }))
}

pub async fn put_lock_configuration(
    gw: &Gateway,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let locks = gw.store.locks().ok_or_else(no_lock_store)?;
    let i = req.input;
    let c = i
        .object_lock_configuration
        .ok_or_else(|| s3_error!(MalformedXML, "no ObjectLockConfiguration"))?;
    let default_retention = match c.rule.and_then(|r| r.default_retention) {
        Some(d) => Some(StoreDefault {
            mode: d.mode.map(|m| mode_of(m.as_str())).transpose()?,
            days: d.days,
            years: d.years,
        }),
        None => None,
    };
    let config = LockConfig {
        enabled: c
            .object_lock_enabled
            .is_some_and(|e| e.as_str() == ObjectLockEnabled::ENABLED),
        default_retention,
    };
    gw.lock_buckets.invalidate(&i.bucket);
    locks.put_lock_config(&i.bucket, &config).await?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub async fn get_retention(
    gw: &Gateway,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let locks = gw.store.locks().ok_or_else(no_lock_store)?;
    let r = locks
        .retention(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: r.map(|r| ObjectLockRetention {
            mode: r
                .mode
                .map(|m| ObjectLockRetentionMode::from(m.as_str().to_owned())),
            retain_until_date: r.retain_until.map(Timestamp::from),
        }),
    }))
}

pub async fn put_retention(
    gw: &Gateway,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let locks = gw.store.locks().ok_or_else(no_lock_store)?;
    let r = i.retention.unwrap_or_default();
    let retention = Retention {
        mode: r.mode.map(|m| mode_of(m.as_str())).transpose()?,
        retain_until: r.retain_until_date.as_ref().map(to_system),
    };
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    let version = i.version_id.as_deref();
    // The manifest first: should the object's change then fail, the
    // manifest is at worst more protected than its object, never less.
    if let Some(m) = gw.manifest_of_version(&i.bucket, &i.key, version).await? {
        locks
            .put_retention(&i.bucket, &m, None, &retention, bypass)
            .await
            .map_err(|e| manifest_failed(e, "retention"))?;
    }
    locks
        .put_retention(&i.bucket, &i.key, version, &retention, bypass)
        .await?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

fn manifest_failed(e: StoreError, what: &str) -> s3s::S3Error {
    let mut err = from_store(e);
    err.set_message(format!(
        "The {what} of the object's multipart manifest could not be set, so the object's was not changed: {}",
        err.message().unwrap_or_default()
    ));
    err
}

pub async fn get_legal_hold(
    gw: &Gateway,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let locks = gw.store.locks().ok_or_else(no_lock_store)?;
    let on = locks
        .legal_hold(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from_static(if on {
                ObjectLockLegalHoldStatus::ON
            } else {
                ObjectLockLegalHoldStatus::OFF
            })),
        }),
    }))
}

pub async fn put_legal_hold(
    gw: &Gateway,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let locks = gw.store.locks().ok_or_else(no_lock_store)?;
    let on = i
        .legal_hold
        .and_then(|h| h.status)
        .is_some_and(|s| s.as_str() == ObjectLockLegalHoldStatus::ON);
    let version = i.version_id.as_deref();
    if let Some(m) = gw.manifest_of_version(&i.bucket, &i.key, version).await? {
        locks
            .put_legal_hold(&i.bucket, &m, None, on)
            .await
            .map_err(|e| manifest_failed(e, "legal hold"))?;
    }
    locks.put_legal_hold(&i.bucket, &i.key, version, on).await?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}
