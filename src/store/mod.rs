//! The store: where ciphertext lives. An S3 back end ([`s3::S3Store`], the
//! production path) and an embedded local-directory back end
//! ([`local::LocalStore`], the default when no store is configured). Neither
//! sees a key: they move opaque bytes and metadata.

pub mod conditional;
pub mod local;
pub mod lock;
pub mod s3;
pub mod versions;

use std::collections::HashMap;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use versions::{Deleted, ListVersionsRequest, VersionedKey, Versioning, VersionsPage, Written};

/// A body of bytes in either direction.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>>;

/// An error from the store, keeping its S3 code and request id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store error {status} {code}: {message}")]
pub struct StoreError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    /// The store could not be reached or did not answer in time.
    pub unavailable: bool,
}

impl StoreError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            request_id: None,
            unavailable: false,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: 503,
            code: "ServiceUnavailable".to_owned(),
            message: message.into(),
            request_id: None,
            unavailable: true,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Standard headers and user metadata stored with an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectHeaders {
    /// User metadata, keys lowercase without the `x-amz-meta-` prefix.
    pub metadata: HashMap<String, String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The raw HTTP-date text of `Expires`.
    pub expires: Option<String>,
    /// Object Lock: on a write, what the version asks for (`Some` only on a
    /// bucket with Object Lock, [`lock::ObjectLock`]); on a read, what the
    /// store reports.
    pub lock: Option<lock::ObjectLock>,
}

/// What the store says about an object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub size: u64,
    /// The store's ETag, without quotes.
    pub etag: String,
    pub last_modified: SystemTime,
    pub headers: ObjectHeaders,
    /// The store's version id of what it answered (versioning stores).
    pub version_id: Option<String>,
}

/// One entry of a listing.
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub max_keys: i32,
    pub continuation_token: Option<String>,
    pub start_after: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BucketInfo {
    pub name: String,
    pub created: SystemTime,
}

#[derive(Debug, Clone)]
pub struct PartInfo {
    pub part_number: i32,
    pub etag: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

#[derive(Debug, Clone)]
pub struct UploadInfo {
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
}

/// What UploadPartCopy copies: `[start, end)` of an object (all of it
/// without a range), only if the store's ETag is `if_match` when given.
#[derive(Clone, Copy, Debug)]
pub struct PartSource<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub range: Option<(u64, u64)>,
    pub if_match: Option<&'a str>,
}

/// A condition on the object a write replaces, checked by the store in the
/// same step as the write (so two writers racing on one key cannot both
/// win). The store answers 412 `PreconditionFailed` when it does not hold
/// (or 409 `ConditionalRequestConflict` for a write that lost a race while
/// in progress); for `Matches` on a missing key, 404 `NoSuchKey`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// Only if no object has the key (`If-None-Match: *`).
    Absent,
    /// Only if the object has this store ETag, unquoted (`If-Match`).
    Matches(String),
}

impl WriteCondition {
    /// Whether the condition holds for the object now at the key (its store
    /// ETag, `None` when there is none): `Err` with the status and code a
    /// store answers when it does not.
    pub fn check(&self, current: Option<&str>) -> StoreResult<()> {
        match (self, current) {
            (WriteCondition::Absent, None) => Ok(()),
            (WriteCondition::Matches(want), Some(etag)) if want == etag => Ok(()),
            (WriteCondition::Matches(_), None) => Err(StoreError::new(
                404,
                "NoSuchKey",
                "The specified key does not exist.",
            )),
            _ => Err(StoreError::new(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            )),
        }
    }
}

/// The conditions of a server-side copy.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyConditions<'a> {
    /// The source's store ETag must be this (`x-amz-copy-source-if-match`).
    pub source_etag: Option<&'a str>,
    /// A condition on the object the copy replaces at the destination.
    pub dest: Option<&'a WriteCondition>,
}

/// The operations sealgate needs from a store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>>;
    async fn create_bucket(&self, bucket: &str) -> StoreResult<()>;
    async fn head_bucket(&self, bucket: &str) -> StoreResult<()>;
    async fn delete_bucket(&self, bucket: &str) -> StoreResult<()>;

    async fn head(&self, bucket: &str, key: &str) -> StoreResult<ObjectInfo>;
    /// Reads `[start, end)` of the object (the whole object when `range` is
    /// `None`). With `if_match`, fails with 412 unless the store ETag matches.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)>;
    /// Reads the last `n` bytes (all of it when shorter) together with the
    /// object's metadata: one request that tells the gateway everything it
    /// needs about a single-part object.
    async fn get_tail(&self, bucket: &str, key: &str, n: u64) -> StoreResult<(ObjectInfo, Bytes)>;
    /// Stores exactly `len` bytes. An error from `body` must leave nothing
    /// behind. With `cond`, only if it holds ([`WriteCondition`]).
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        len: u64,
        headers: &ObjectHeaders,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<String>;
    async fn delete(&self, bucket: &str, key: &str) -> StoreResult<()>;
    /// Deletes several keys; per-key failures are returned, not raised.
    async fn delete_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> StoreResult<Vec<(String, Option<StoreError>)>>;
    async fn list(&self, bucket: &str, req: &ListRequest) -> StoreResult<ListPage>;
    /// Server-side copy replacing all metadata with `headers`, only if the
    /// [`CopyConditions`] hold (412 otherwise).
    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        headers: &ObjectHeaders,
        conds: CopyConditions<'_>,
    ) -> StoreResult<(String, SystemTime)>;

    async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        headers: &ObjectHeaders,
    ) -> StoreResult<String>;
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: ByteStream,
        len: u64,
    ) -> StoreResult<String>;
    /// Copies `[start, end)` of a stored object into a part.
    async fn upload_part_copy(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src: &PartSource<'_>,
    ) -> StoreResult<String>;
    /// Completes an upload; with `cond`, only if it holds (the upload stays
    /// as it was when it does not).
    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        cond: Option<&WriteCondition>,
    ) -> StoreResult<String>;
    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<()>;
    /// Every part of an upload, in part-number order.
    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<Vec<PartInfo>>;
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> StoreResult<Vec<UploadInfo>>;

    /// Which write conditions the store enforces, when it knows without
    /// being asked (the embedded store enforces them itself); `None` when
    /// only a probe can tell ([`conditional`]).
    fn enforced_conditions(&self) -> Option<conditional::Support> {
        None
    }

    // Versioning ([`versions`]). A store without it keeps these defaults:
    // every versioned operation answers 501 NotImplemented, and a bucket's
    // versioning reads "never enabled".

    async fn get_bucket_versioning(&self, bucket: &str) -> StoreResult<Versioning> {
        self.head_bucket(bucket).await?;
        Ok(Versioning::Never)
    }
    /// Enables (`true`) or suspends versioning.
    async fn put_bucket_versioning(&self, _bucket: &str, _enabled: bool) -> StoreResult<()> {
        Err(versions::not_implemented("PutBucketVersioning"))
    }
    /// [`Store::head`] of one version (the latest with `None`).
    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<ObjectInfo> {
        match version {
            None => self.head(bucket, key).await,
            Some(_) => Err(versions::not_implemented("a versioned read")),
        }
    }
    /// [`Store::get`] of one version (the latest with `None`).
    async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        match version {
            None => self.get(bucket, key, range, if_match).await,
            Some(_) => Err(versions::not_implemented("a versioned read")),
        }
    }
    /// [`Store::get_tail`] of one version (the latest with `None`).
    async fn get_tail_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        n: u64,
    ) -> StoreResult<(ObjectInfo, Bytes)> {
        match version {
            None => self.get_tail(bucket, key, n).await,
            Some(_) => Err(versions::not_implemented("a versioned read")),
        }
    }
    /// Deletes one version for good, or (`None`) the latest: on a
    /// versioning bucket that adds a delete marker.
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<Deleted> {
        match version {
            None => self.delete(bucket, key).await.map(|()| Deleted::default()),
            Some(_) => Err(versions::not_implemented("DeleteObject with a versionId")),
        }
    }
    /// [`Store::delete_many`] with versions; per-key outcomes in order.
    async fn delete_many_versions(
        &self,
        bucket: &str,
        keys: &[VersionedKey],
    ) -> StoreResult<Vec<(VersionedKey, Result<Deleted, StoreError>)>> {
        if keys.iter().any(|k| k.version_id.is_some()) {
            return Err(versions::not_implemented("DeleteObjects with version ids"));
        }
        let plain: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
        let out = self.delete_many(bucket, &plain).await?;
        Ok(keys
            .iter()
            .cloned()
            .zip(out)
            .map(|(k, (_, e))| (k, e.map_or(Ok(Deleted::default()), Err)))
            .collect())
    }
    /// One page of ListObjectVersions.
    async fn list_versions(
        &self,
        _bucket: &str,
        _req: &ListVersionsRequest,
    ) -> StoreResult<VersionsPage> {
        Err(versions::not_implemented("ListObjectVersions"))
    }
    /// [`Store::put`], answering the version id the write created.
    async fn put_versioned(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        len: u64,
        headers: &ObjectHeaders,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<Written> {
        let etag = self.put(bucket, key, body, len, headers, cond).await?;
        Ok(Written {
            etag,
            version_id: None,
        })
    }
    /// [`Store::complete_multipart`], answering the version id created.
    async fn complete_multipart_versioned(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        cond: Option<&WriteCondition>,
    ) -> StoreResult<Written> {
        let etag = self
            .complete_multipart(bucket, key, upload_id, parts, cond)
            .await?;
        Ok(Written {
            etag,
            version_id: None,
        })
    }
    /// [`Store::copy`] from one version of the source (the latest with
    /// `None`), answering the version id created.
    #[allow(clippy::too_many_arguments)]
    async fn copy_versioned(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_version: Option<&str>,
        dst_bucket: &str,
        dst_key: &str,
        headers: &ObjectHeaders,
        conds: CopyConditions<'_>,
    ) -> StoreResult<(Written, SystemTime)> {
        if src_version.is_some() {
            return Err(versions::not_implemented("a copy from a version"));
        }
        let (etag, t) = self
            .copy(src_bucket, src_key, dst_bucket, dst_key, headers, conds)
            .await?;
        Ok((
            Written {
                etag,
                version_id: None,
            },
            t,
        ))
    }

    /// Object Lock, when the store can be asked for it (the S3 back end; a
    /// store behind it may still answer `NotImplemented`). `None`: every
    /// request for a lock is refused.
    fn locks(&self) -> Option<&dyn lock::LockStore> {
        None
    }
}
