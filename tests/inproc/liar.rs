//! A store that lies: a real store underneath, with answers rewritten where a
//! test says so, for the lies a hostile store can tell but a real store
//! never does on its own (an old object's ETag on a new object, part sizes
//! that are not the parts', a write that fails, write conditions ignored, a
//! completion whose answer is lost), for the timing a real store cannot be
//! made to show on cue (a writer between a gateway's look and its write, or
//! right after it), and for a store that keeps the lock a multipart upload
//! asked for (moto drops it; S3 keeps it). Everything else passes through
//! unchanged, versions and Object Lock included; which write conditions the
//! store enforces is not (a store that ignores them can only be probed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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
pub struct Lies {
    /// key -> the store ETag to report for it (HEAD, GET, tail reads,
    /// listings).
    pub etags: HashMap<String, String>,
    /// Added to every part size ListParts reports.
    pub part_size_delta: i64,
    /// PUTs of keys starting with this fail (503).
    pub fail_puts_under: Option<String>,
    /// Write conditions are dropped, as a store that accepts and ignores
    /// them (Garage 2.5) does.
    pub ignore_conditions: bool,
    /// PUTs seen of keys under `.sealgate/probe/` (the conditional-write
    /// probe's).
    pub probe_puts: usize,
    /// Written (unconditionally, once) just before the next conditional PUT
    /// or completion of a client's key is passed on: another writer that
    /// comes between the gateway's look at the object and its write.
    pub intrude: Option<Vec<u8>>,
    /// Deletes of a version of this key by its id in DeleteObjects are
    /// refused (403), as a store's policy, MFA delete or lock can; the rest
    /// pass.
    pub refuse_version_deletes_of: Option<String>,
    /// The next ListParts, once the store has answered it, signals the
    /// first and waits for the second before passing the answer on: a
    /// completion held between reading the part list and the rest.
    pub hold_list_parts: Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>)>,
    /// The next completion of a client's key succeeds at the store and its
    /// answer is lost (503).
    pub lose_complete_answer: bool,
    /// Right after a write of this key succeeds, another writer puts an
    /// unlocked version on top of it.
    pub overwrite_after: Option<String>,
    /// Completions get the lock their upload asked for, as S3 gives it.
    pub keep_multipart_locks: bool,
}

pub struct Liar {
    pub inner: Arc<dyn Store>,
    pub lies: Mutex<Lies>,
    /// Tail reads asked of the store (what resolving an object costs).
    pub tail_reads: AtomicUsize,
    /// store upload id -> the lock CreateMultipartUpload asked for.
    upload_locks: Mutex<HashMap<String, ObjectLock>>,
}

impl Liar {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            lies: Mutex::new(Lies::default()),
            tail_reads: Default::default(),
            upload_locks: Default::default(),
        })
    }

    /// The condition passed on (none when conditions are ignored), after
    /// the intruder's write if one is due.
    async fn pass_condition<'c>(
        &self,
        bucket: &str,
        key: &str,
        cond: Option<&'c WriteCondition>,
    ) -> StoreResult<Option<&'c WriteCondition>> {
        let (ignore, intruder) = {
            let mut lies = self.lies.lock().unwrap();
            let intruder = if cond.is_some() && !key.starts_with(".sealgate/") {
                lies.intrude.take()
            } else {
                None
            };
            (lies.ignore_conditions, intruder)
        };
        if let Some(data) = intruder {
            self.write_over(bucket, key, data, &ObjectHeaders::default())
                .await?;
        }
        Ok(if ignore { None } else { cond })
    }

    /// The other writer, when one is due after a write of `key`.
    async fn after_write(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let due = {
            let mut lies = self.lies.lock().unwrap();
            if lies.overwrite_after.as_deref() == Some(key) {
                lies.overwrite_after.take()
            } else {
                None
            }
        };
        if due.is_none() {
            return Ok(());
        }
        // (With the checksum a bucket with Object Lock asks for.)
        let headers = ObjectHeaders {
            lock: Some(ObjectLock::default()),
            ..Default::default()
        };
        self.write_over(bucket, key, b"another writer".to_vec(), &headers)
            .await
    }

    /// Another writer's unconditional PUT, straight to the store.
    async fn write_over(
        &self,
        bucket: &str,
        key: &str,
        data: Vec<u8>,
        headers: &ObjectHeaders,
    ) -> StoreResult<()> {
        let n = data.len() as u64;
        let body: ByteStream = Box::pin(futures::stream::once(async move {
            Ok::<_, std::io::Error>(Bytes::from(data))
        }));
        self.inner.put(bucket, key, body, n, headers, None).await?;
        Ok(())
    }

    /// After a completion: the lock its upload asked for, set on the
    /// version it made when the store is to keep it (`keep`).
    async fn keep_lock(
        &self,
        keep: bool,
        bucket: &str,
        key: &str,
        upload_id: &str,
        w: &Written,
    ) -> StoreResult<()> {
        let asked = self.upload_locks.lock().unwrap().remove(upload_id);
        let (true, Some(l)) = (keep, asked) else {
            return Ok(());
        };
        let locks = self.inner.locks().expect("a store with Object Lock");
        let v = w.version_id.as_deref();
        if l.mode.is_some() {
            let r = Retention {
                mode: l.mode,
                retain_until: l.retain_until,
            };
            locks.put_retention(bucket, key, v, &r, false).await?;
        }
        if l.legal_hold == Some(true) {
            locks.put_legal_hold(bucket, key, v, true).await?;
        }
        Ok(())
    }

    fn etag_for(&self, key: &str, real: String) -> String {
        self.lies
            .lock()
            .unwrap()
            .etags
            .get(key)
            .cloned()
            .unwrap_or(real)
    }
}

#[async_trait]
impl Store for Liar {
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

    // Reads of the latest lie (and count), through the plain reads or a
    // version's with `None`; a version named by its id is as stored.

    async fn head(&self, bucket: &str, key: &str) -> StoreResult<ObjectInfo> {
        let mut i = self.inner.head(bucket, key).await?;
        i.etag = self.etag_for(key, i.etag);
        Ok(i)
    }
    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<ObjectInfo> {
        match version {
            None => self.head(bucket, key).await,
            Some(_) => self.inner.head_version(bucket, key, version).await,
        }
    }
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        // The lie holds for conditions too: the store compares with what it
        // claims.
        let claimed = self.lies.lock().unwrap().etags.get(key).cloned();
        let real_if_match = match (if_match, &claimed) {
            (Some(m), Some(c)) if m == c => None,
            (Some(_), Some(_)) => {
                return Err(StoreError::new(412, "PreconditionFailed", "lying store"))
            }
            (None, _) => None,
            (m, None) => m,
        };
        let (mut i, s) = self.inner.get(bucket, key, range, real_if_match).await?;
        i.etag = self.etag_for(key, i.etag);
        Ok((i, s))
    }
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
            Some(_) => {
                self.inner
                    .get_version(bucket, key, version, range, if_match)
                    .await
            }
        }
    }
    async fn get_tail(&self, bucket: &str, key: &str, n: u64) -> StoreResult<(ObjectInfo, Bytes)> {
        self.tail_reads.fetch_add(1, Ordering::Relaxed);
        let (mut i, b) = self.inner.get_tail(bucket, key, n).await?;
        i.etag = self.etag_for(key, i.etag);
        Ok((i, b))
    }
    async fn get_tail_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        n: u64,
    ) -> StoreResult<(ObjectInfo, Bytes)> {
        match version {
            None => self.get_tail(bucket, key, n).await,
            Some(_) => self.inner.get_tail_version(bucket, key, version, n).await,
        }
    }
    async fn list(&self, bucket: &str, req: &ListRequest) -> StoreResult<ListPage> {
        let mut p = self.inner.list(bucket, req).await?;
        for e in &mut p.entries {
            e.etag = self.etag_for(&e.key, std::mem::take(&mut e.etag));
        }
        Ok(p)
    }
    async fn list_versions(
        &self,
        bucket: &str,
        req: &ListVersionsRequest,
    ) -> StoreResult<VersionsPage> {
        self.inner.list_versions(bucket, req).await
    }

    // Writes: each plain one is its versioned one (so every lie applies to
    // both), passed on as the versioned one.

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        len: u64,
        headers: &ObjectHeaders,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<String> {
        self.put_versioned(bucket, key, body, len, headers, cond)
            .await
            .map(|w| w.etag)
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
        let fail = {
            let mut lies = self.lies.lock().unwrap();
            if key.starts_with(sealgate::store::conditional::PROBE_PREFIX) {
                lies.probe_puts += 1;
            }
            lies.fail_puts_under
                .as_ref()
                .is_some_and(|p| key.starts_with(p.as_str()))
        };
        if fail {
            return Err(StoreError::unavailable("lying store: this PUT fails"));
        }
        let cond = self.pass_condition(bucket, key, cond).await?;
        let w = self
            .inner
            .put_versioned(bucket, key, body, len, headers, cond)
            .await?;
        self.after_write(bucket, key).await?;
        Ok(w)
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
        self.copy_versioned(
            src_bucket, src_key, None, dst_bucket, dst_key, headers, conds,
        )
        .await
        .map(|(w, t)| (w.etag, t))
    }
    async fn copy_versioned(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_version: Option<&str>,
        dst_bucket: &str,
        dst_key: &str,
        headers: &ObjectHeaders,
        mut conds: CopyConditions<'_>,
    ) -> StoreResult<(Written, SystemTime)> {
        if self.lies.lock().unwrap().ignore_conditions {
            conds.dest = None;
        }
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
    async fn complete_multipart_versioned(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
        cond: Option<&WriteCondition>,
    ) -> StoreResult<Written> {
        let cond = self.pass_condition(bucket, key, cond).await?;
        let w = self
            .inner
            .complete_multipart_versioned(bucket, key, upload_id, parts, cond)
            .await?;
        let (keep, lose) = {
            let mut lies = self.lies.lock().unwrap();
            (
                lies.keep_multipart_locks,
                std::mem::take(&mut lies.lose_complete_answer),
            )
        };
        self.keep_lock(keep, bucket, key, upload_id, &w).await?;
        self.after_write(bucket, key).await?;
        if lose {
            return Err(StoreError::unavailable(
                "lying store: the completion's answer was lost",
            ));
        }
        Ok(w)
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
        let (delta, hold) = {
            let mut lies = self.lies.lock().unwrap();
            (lies.part_size_delta, lies.hold_list_parts.take())
        };
        let answer = self.inner.list_parts(bucket, key, upload_id).await;
        if let Some((reached, release)) = hold {
            reached.notify_one();
            release.notified().await;
        }
        let mut ps = answer?;
        for p in &mut ps {
            p.size = (p.size as i64 + delta).max(0) as u64;
        }
        Ok(ps)
    }
    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> StoreResult<Vec<UploadInfo>> {
        self.inner.list_uploads(bucket, prefix).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> StoreResult<()> {
        self.inner.delete(bucket, key).await
    }
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<Deleted> {
        self.inner.delete_version(bucket, key, version).await
    }
    async fn delete_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> StoreResult<Vec<(String, Option<StoreError>)>> {
        self.inner.delete_many(bucket, keys).await
    }
    async fn delete_many_versions(
        &self,
        bucket: &str,
        keys: &[VersionedKey],
    ) -> StoreResult<Vec<(VersionedKey, Result<Deleted, StoreError>)>> {
        let Some(target) = self.lies.lock().unwrap().refuse_version_deletes_of.clone() else {
            return self.inner.delete_many_versions(bucket, keys).await;
        };
        let (refused, passed): (Vec<_>, Vec<_>) = keys
            .iter()
            .cloned()
            .partition(|k| k.version_id.is_some() && k.key == target);
        let mut out = if passed.is_empty() {
            Vec::new()
        } else {
            self.inner.delete_many_versions(bucket, &passed).await?
        };
        out.extend(refused.into_iter().map(|k| {
            (
                k,
                Err(StoreError::new(403, "AccessDenied", "Access Denied")),
            )
        }));
        Ok(out)
    }

    async fn get_bucket_versioning(&self, bucket: &str) -> StoreResult<Versioning> {
        self.inner.get_bucket_versioning(bucket).await
    }
    async fn put_bucket_versioning(&self, bucket: &str, enabled: bool) -> StoreResult<()> {
        self.inner.put_bucket_versioning(bucket, enabled).await
    }
    fn locks(&self) -> Option<&dyn LockStore> {
        self.inner.locks()
    }
}
