//! Object Lock through aws-sdk-s3: the lock fields of writes and reads, and
//! the bucket and version operations ([`LockStore`]). Every answer is the
//! store's; a store without Object Lock answers with its own error (Garage:
//! 501 `NotImplemented`), which the gateway passes on.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    DefaultRetention as SdkDefault, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention,
    ObjectLockRetentionMode, ObjectLockRule,
};

use super::{blank_key, map_err, S3Store};
use crate::store::lock::{
    DefaultRetention, LockConfig, LockMode, LockStore, ObjectLock, Retention,
};
use crate::store::{ObjectInfo, Store, StoreResult};

/// The SDK's lock fields of a write (PutObject, CopyObject,
/// CreateMultipartUpload).
pub(super) fn write_fields(
    l: &ObjectLock,
) -> (
    Option<ObjectLockMode>,
    Option<DateTime>,
    Option<ObjectLockLegalHoldStatus>,
) {
    (
        l.mode.map(|m| ObjectLockMode::from(m.as_str())),
        l.retain_until.map(DateTime::from),
        l.legal_hold.map(|on| {
            if on {
                ObjectLockLegalHoldStatus::On
            } else {
                ObjectLockLegalHoldStatus::Off
            }
        }),
    )
}

/// The lock a HEAD or GET answer reports; `None` when it reports none.
pub(super) fn read_fields(
    mode: Option<&ObjectLockMode>,
    until: Option<&DateTime>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> Option<ObjectLock> {
    let l = ObjectLock {
        mode: mode.and_then(|m| LockMode::parse(m.as_str())),
        retain_until: until.and_then(|d| SystemTime::try_from(*d).ok()),
        legal_hold: hold.map(|h| *h == ObjectLockLegalHoldStatus::On),
    };
    (l.mode.is_some() || l.retain_until.is_some() || l.legal_hold.is_some()).then_some(l)
}

fn retention_mode(m: LockMode) -> ObjectLockRetentionMode {
    ObjectLockRetentionMode::from(m.as_str())
}

#[async_trait]
impl LockStore for S3Store {
    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<ObjectInfo> {
        // The versioned HEAD of the store (it checks the version answered).
        Store::head_version(self, bucket, key, version).await
    }

    async fn create_locked_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.timed(async {
            self.client
                .create_bucket()
                .bucket(bucket)
                .object_lock_enabled_for_bucket(true)
                .send()
                .await
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn lock_config(&self, bucket: &str) -> StoreResult<Option<LockConfig>> {
        self.timed(async {
            let o = match self
                .client
                .get_object_lock_configuration()
                .bucket(bucket)
                .send()
                .await
                .map_err(map_err)
            {
                Ok(o) => o,
                Err(e) if e.code == "ObjectLockConfigurationNotFoundError" => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(c) = o.object_lock_configuration() else {
                return Ok(None);
            };
            Ok(Some(LockConfig {
                enabled: c.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled),
                default_retention: c.rule().and_then(|r| r.default_retention()).map(|d| {
                    DefaultRetention {
                        mode: d.mode().and_then(|m| LockMode::parse(m.as_str())),
                        days: d.days(),
                        years: d.years(),
                    }
                }),
            }))
        })
        .await
    }

    async fn put_lock_config(&self, bucket: &str, config: &LockConfig) -> StoreResult<()> {
        let mut c = ObjectLockConfiguration::builder();
        if config.enabled {
            c = c.object_lock_enabled(ObjectLockEnabled::Enabled);
        }
        if let Some(d) = &config.default_retention {
            c = c.rule(
                ObjectLockRule::builder()
                    .default_retention(
                        SdkDefault::builder()
                            .set_mode(d.mode.map(retention_mode))
                            .set_days(d.days)
                            .set_years(d.years)
                            .build(),
                    )
                    .build(),
            );
        }
        self.timed(async {
            self.client
                .put_object_lock_configuration()
                .bucket(bucket)
                .object_lock_configuration(c.build())
                .send()
                .await
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn retention(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<Option<Retention>> {
        self.timed(async {
            let req = self
                .client
                .get_object_retention()
                .bucket(bucket)
                .set_version_id(version.map(str::to_owned));
            let o = keyed!(req, key).send().await.map_err(map_err)?;
            Ok(o.retention().map(|r| Retention {
                mode: r.mode().and_then(|m| LockMode::parse(m.as_str())),
                retain_until: r
                    .retain_until_date()
                    .and_then(|d| SystemTime::try_from(*d).ok()),
            }))
        })
        .await
    }

    async fn put_retention(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        retention: &Retention,
        bypass_governance: bool,
    ) -> StoreResult<()> {
        let r = ObjectLockRetention::builder()
            .set_mode(retention.mode.map(retention_mode))
            .set_retain_until_date(retention.retain_until.map(DateTime::from))
            .build();
        self.timed(async {
            let req = self
                .client
                .put_object_retention()
                .bucket(bucket)
                .set_version_id(version.map(str::to_owned))
                .retention(r)
                .set_bypass_governance_retention(bypass_governance.then_some(true));
            keyed!(req, key).send().await.map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<bool> {
        self.timed(async {
            let req = self
                .client
                .get_object_legal_hold()
                .bucket(bucket)
                .set_version_id(version.map(str::to_owned));
            let o = keyed!(req, key).send().await.map_err(map_err)?;
            Ok(o.legal_hold().and_then(|h| h.status()) == Some(&ObjectLockLegalHoldStatus::On))
        })
        .await
    }

    async fn put_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        on: bool,
    ) -> StoreResult<()> {
        let status = if on {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        self.timed(async {
            let req = self
                .client
                .put_object_legal_hold()
                .bucket(bucket)
                .set_version_id(version.map(str::to_owned))
                .legal_hold(ObjectLockLegalHold::builder().status(status).build());
            keyed!(req, key).send().await.map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
