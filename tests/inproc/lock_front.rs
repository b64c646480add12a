//! A store in front of a real one (moto) that passes everything through,
//! versions and Object Lock included, except where a test says otherwise:
//! the timing and the failures a real store cannot be made to show on cue
//! (a completion whose answer is lost, another writer right after a write),
//! and a store that keeps the lock a multipart upload asked for (moto drops
//! it; S3 keeps it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use sealgate::store::lock::{LockStore, ObjectLock, Retention};
use sealgate::store::versions::{
    Deleted, ListVersionsRequest, VersionedKey, Versioning, VersionsPage, Written,
};
use sealgate::store::*;

#[derive(Default)]
pub struct Faults {
    /// The next completion of a client's key succeeds at the store and its
    /// answer is lost (503).
    pub lose_complete_answer: bool,
    /// Right after a write of this key succeeds, another writer puts an
    /// unlocked version on top of it.
    pub overwrite_after: Option<String>,
    /// Completions get the lock their upload asked for, as S3 gives it.
    pub keep_multipart_locks: bool,
}

pub struct Front {
    pub inner: Arc<dyn Store>,
    pub faults: Mutex<Faults>,
    /// store upload id -> the lock CreateMultipartUpload asked for.
    upload_locks: Mutex<HashMap<String, ObjectLock>>,
}

impl Front {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            faults: Mutex::new(Faults::default()),
            upload_locks: Mutex::new(HashMap::new()),
        })
    }

    /// The other writer, when one is due after a write of `key`.
    async fn after_write(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let due = {
            let mut f = self.faults.lock().unwrap();
            if f.overwrite_after.as_deref() == Some(key) {
                f.overwrite_after.take()
            } else {
                None
            }
        };
        if due.is_none() {
            return Ok(());
        }
        let body: ByteStream = Box::pin(futures::stream::once(async {
            Ok::<_, std::io::Error>(Bytes::from_static(b"another writer"))
        }));
        // (With the checksum a bucket with Object Lock asks for.)
        let headers = ObjectHeaders {
            lock: Some(ObjectLock::default()),
            ..Default::default()
        };
        self.inner
            .put(bucket, key, body, 14, &headers, None)
            .await?;
        Ok(())
    }

    fn locks_of(&self) -> &dyn LockStore {
        self.inner.locks().expect("a store with Object Lock")
    }
}

#[async_trait]
impl Store for Front {
    async fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>> {
        self.inner.list_buckets().await
    }
    async fn create_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.inner.create_bucket(bucket).await
    }
    async fn head_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.inner.head_bucket(bucket).await
    }
    async fn delete_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.inner.delete_bucket(bucket).await
    }
    async fn head(&self, bucket: &str, key: &str) -> StoreResult<ObjectInfo> {
        self.inner.head(bucket, key).await
    }
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        self.inner.get(bucket, key, range, if_match).await
    }
    async fn get_tail(&self, bucket: &str, key: &str, n: u64) -> StoreResult<(ObjectInfo, Bytes)> {
        self.inner.get_tail(bucket, key, n).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        len: u64,
        headers: &ObjectHeaders,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<String> {
        let etag = self
            .inner
            .put(bucket, key, body, len, headers, cond)
            .await?;
        self.after_write(bucket, key).await?;
        Ok(etag)
    }
    async fn delete(&self, bucket: &str, key: &str) -> StoreResult<()> {
        self.inner.delete(bucket, key).await
    }
    async fn delete_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> StoreResult<Vec<(String, Option<StoreError>)>> {
        self.inner.delete_many(bucket, keys).await
    }
    async fn list(&self, bucket: &str, req: &ListRequest) -> StoreResult<ListPage> {
        self.inner.list(bucket, req).await
    }
    async fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        headers: &ObjectHeaders,
        conds: CopyConditions<'_>,
    ) -> StoreResult<(String, SystemTime)> {
        self.inner
            .copy(src_bucket, src_key, dst_bucket, dst_key, headers, conds)
            .await
    }
    async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        headers: &ObjectHeaders,
    ) -> StoreResult<String> {
        let id = self.inner.create_multipart(bucket, key, headers).await?;
        if let Some(l) = headers.lock.clone() {
            self.upload_locks.lock().unwrap().insert(id.clone(), l);
        }
        Ok(id)
    }
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: ByteStream,
        len: u64,
    ) -> StoreResult<String> {
        self.inner
            .upload_part(bucket, key, upload_id, part_number, body, len)
            .await
    }
    async fn upload_part_copy(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        src: &PartSource<'_>,
    ) -> StoreResult<String> {
        self.inner
            .upload_part_copy(bucket, key, upload_id, part_number, src)
            .await
    }
    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        cond: Option<&WriteCondition>,
    ) -> StoreResult<String> {
        self.complete_multipart_versioned(bucket, key, upload_id, parts, cond)
            .await
            .map(|w| w.etag)
    }
    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<()> {
        self.inner.abort_multipart(bucket, key, upload_id).await
    }
    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<Vec<PartInfo>> {
        self.inner.list_parts(bucket, key, upload_id).await
    }
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> StoreResult<Vec<UploadInfo>> {
        self.inner.list_uploads(bucket, prefix).await
    }
    fn enforced_conditions(&self) -> Option<conditional::Support> {
        self.inner.enforced_conditions()
    }
    async fn get_bucket_versioning(&self, bucket: &str) -> StoreResult<Versioning> {
        self.inner.get_bucket_versioning(bucket).await
    }
    async fn put_bucket_versioning(&self, bucket: &str, enabled: bool) -> StoreResult<()> {
        self.inner.put_bucket_versioning(bucket, enabled).await
    }
    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<ObjectInfo> {
        self.inner.head_version(bucket, key, version).await
    }
    async fn get_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        self.inner
            .get_version(bucket, key, version, range, if_match)
            .await
    }
    async fn get_tail_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        n: u64,
    ) -> StoreResult<(ObjectInfo, Bytes)> {
        self.inner.get_tail_version(bucket, key, version, n).await
    }
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<Deleted> {
        self.inner.delete_version(bucket, key, version).await
    }
    async fn delete_many_versions(
        &self,
        bucket: &str,
        keys: &[VersionedKey],
    ) -> StoreResult<Vec<(VersionedKey, Result<Deleted, StoreError>)>> {
        self.inner.delete_many_versions(bucket, keys).await
    }
    async fn list_versions(
        &self,
        bucket: &str,
        req: &ListVersionsRequest,
    ) -> StoreResult<VersionsPage> {
        self.inner.list_versions(bucket, req).await
    }
    async fn put_versioned(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        len: u64,
        headers: &ObjectHeaders,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<Written> {
        let w = self
            .inner
            .put_versioned(bucket, key, body, len, headers, cond)
            .await?;
        self.after_write(bucket, key).await?;
        Ok(w)
    }
    async fn complete_multipart_versioned(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        cond: Option<&WriteCondition>,
    ) -> StoreResult<Written> {
        let w = self
            .inner
            .complete_multipart_versioned(bucket, key, upload_id, parts, cond)
            .await?;
        let (keep, lose) = {
            let mut f = self.faults.lock().unwrap();
            (
                f.keep_multipart_locks,
                std::mem::take(&mut f.lose_complete_answer),
            )
        };
        let asked = self.upload_locks.lock().unwrap().remove(upload_id);
        if let (true, Some(l)) = (keep, asked) {
            let v = w.version_id.as_deref();
            if l.mode.is_some() {
                let r = Retention {
                    mode: l.mode,
                    retain_until: l.retain_until,
                };
                self.locks_of()
                    .put_retention(bucket, key, v, &r, false)
                    .await?;
            }
            if l.legal_hold == Some(true) {
                self.locks_of().put_legal_hold(bucket, key, v, true).await?;
            }
        }
        self.after_write(bucket, key).await?;
        if lose {
            return Err(StoreError::unavailable(
                "front: the completion's answer was lost",
            ));
        }
        Ok(w)
    }
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
        let out = self
            .inner
            .copy_versioned(
                src_bucket,
                src_key,
                src_version,
                dst_bucket,
                dst_key,
                headers,
                conds,
            )
            .await?;
        self.after_write(dst_bucket, dst_key).await?;
        Ok(out)
    }
    fn locks(&self) -> Option<&dyn LockStore> {
        self.inner.locks()
    }
}
