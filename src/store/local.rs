//! The embedded store: ciphertext in a local directory, the default when no S3
//! store is configured. Not a toy: writes are atomic (a blob is written to a
//! temporary file, synced and renamed; only then does one redb transaction
//! make it visible), metadata survives restarts, listings are sorted range
//! scans, and it passes the same store contract tests as the S3 back end.
//! Conditional writes (`If-None-Match: *`, `If-Match`) are checked in the
//! same redb write transaction that makes the object visible: redb runs one
//! write transaction at a time, so two writers racing on one key cannot both
//! win.
//!
//! Layout of the data directory:
//! - `index.redb`: buckets, objects (key -> record), uploads and parts
//! - `blobs/<id>`: immutable content files; an object is one or more blobs
//! - `tmp/`: files being written

use crate::store::PartSource;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use md5::{Digest, Md5};
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{
    BucketInfo, ByteStream, CopyConditions, ListEntry, ListPage, ListRequest, ObjectHeaders,
    ObjectInfo, PartInfo, Store, StoreError, StoreResult, UploadInfo, WriteCondition,
};

const BUCKETS: TableDefinition<&str, u64> = TableDefinition::new("buckets");
/// Key: `bucket/key` (bucket names cannot contain '/').
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// Key: `upload_id/00001`.
const PARTS: TableDefinition<&str, &[u8]> = TableDefinition::new("parts");

#[derive(Serialize, Deserialize, Clone, Default)]
struct StoredHeaders {
    metadata: HashMap<String, String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<String>,
}

impl From<&ObjectHeaders> for StoredHeaders {
    fn from(h: &ObjectHeaders) -> Self {
        Self {
            metadata: h.metadata.clone(),
            content_type: h.content_type.clone(),
            content_encoding: h.content_encoding.clone(),
            content_disposition: h.content_disposition.clone(),
            content_language: h.content_language.clone(),
            cache_control: h.cache_control.clone(),
            expires: h.expires.clone(),
        }
    }
}

impl From<StoredHeaders> for ObjectHeaders {
    fn from(h: StoredHeaders) -> Self {
        Self {
            metadata: h.metadata,
            content_type: h.content_type,
            content_encoding: h.content_encoding,
            content_disposition: h.content_disposition,
            content_language: h.content_language,
            cache_control: h.cache_control,
            expires: h.expires,
            lock: None,
        }
    }
}

/// The embedded store has no Object Lock: a write asking for one is refused,
/// never stored unlocked (the gateway refuses it first; this is the last
/// line).
fn no_lock(headers: &ObjectHeaders) -> StoreResult<()> {
    if headers.lock.is_some() {
        return Err(StoreError::new(
            501,
            "NotImplemented",
            "the embedded local store does not support Object Lock",
        ));
    }
    Ok(())
}

#[derive(Serialize, Deserialize, Clone)]
struct ObjectRecord {
    size: u64,
    etag: String,
    mtime_ms: u64,
    headers: StoredHeaders,
    /// Blob ids and their lengths, in order.
    blobs: Vec<(String, u64)>,
}

#[derive(Serialize, Deserialize, Clone)]
struct UploadRecord {
    bucket: String,
    key: String,
    headers: StoredHeaders,
    initiated_ms: u64,
}

#[derive(Serialize, Deserialize, Clone)]
struct PartRecord {
    blob: String,
    size: u64,
    etag: String,
    mtime_ms: u64,
}

pub struct LocalStore {
    root: PathBuf,
    db: Arc<Database>,
    pins: Arc<Pins>,
}

/// Blobs that readers hold. A blob replaced or deleted while it is being read
/// is removed when its last reader lets go, so every read sees one whole
/// version of an object.
#[derive(Default)]
struct Pins {
    state: Mutex<PinState>,
}

#[derive(Default)]
struct PinState {
    readers: HashMap<String, usize>,
    /// Pinned blobs that no object references any more.
    doomed: HashSet<String>,
}

impl Pins {
    fn lock(&self) -> std::sync::MutexGuard<'_, PinState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Holds a set of blobs for a reader.
struct PinGuard {
    pins: Arc<Pins>,
    blobs_dir: PathBuf,
    ids: Vec<String>,
}

impl PinGuard {
    fn new(pins: &Arc<Pins>, blobs_dir: PathBuf, ids: Vec<String>) -> Self {
        let mut st = pins.lock();
        for id in &ids {
            *st.readers.entry(id.clone()).or_default() += 1;
        }
        drop(st);
        Self {
            pins: pins.clone(),
            blobs_dir,
            ids,
        }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut remove = Vec::new();
        {
            let mut st = self.pins.lock();
            for id in &self.ids {
                if let Some(n) = st.readers.get_mut(id) {
                    *n -= 1;
                    if *n == 0 {
                        st.readers.remove(id);
                        if st.doomed.remove(id) {
                            remove.push(id.clone());
                        }
                    }
                }
            }
        }
        for id in remove {
            let _ = std::fs::remove_file(self.blobs_dir.join(id));
        }
    }
}

/// Removes a temporary file unless disarmed (a write that fails or is
/// cancelled leaves nothing behind).
struct TmpFile(Option<PathBuf>);

impl Drop for TmpFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(500, "InternalError", format!("local store: {e}"))
}

fn no_bucket() -> StoreError {
    StoreError::new(404, "NoSuchBucket", "The specified bucket does not exist")
}

fn no_key() -> StoreError {
    StoreError::new(404, "NoSuchKey", "The specified key does not exist.")
}

fn no_upload() -> StoreError {
    StoreError::new(404, "NoSuchUpload", "The specified upload does not exist.")
}

fn obj_key(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

impl LocalStore {
    /// Opens (or creates) a store in `root`.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("tmp"))?;
        // Leftovers of writes interrupted by a crash are never visible; clear them.
        for e in std::fs::read_dir(root.join("tmp"))?.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        let db = Database::create(root.join("index.redb")).map_err(std::io::Error::other)?;
        let w = db.begin_write().map_err(std::io::Error::other)?;
        {
            w.open_table(BUCKETS).map_err(std::io::Error::other)?;
            w.open_table(OBJECTS).map_err(std::io::Error::other)?;
            w.open_table(UPLOADS).map_err(std::io::Error::other)?;
            w.open_table(PARTS).map_err(std::io::Error::other)?;
        }
        w.commit().map_err(std::io::Error::other)?;
        Ok(Self {
            root: root.to_owned(),
            db: Arc::new(db),
            pins: Arc::default(),
        })
    }

    fn blob_path(&self, id: &str) -> PathBuf {
        self.root.join("blobs").join(id)
    }

    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(internal)?
    }

    fn bucket_exists(db: &Database, bucket: &str) -> StoreResult<bool> {
        let r = db.begin_read().map_err(internal)?;
        let t = r.open_table(BUCKETS).map_err(internal)?;
        Ok(t.get(bucket).map_err(internal)?.is_some())
    }

    fn read_object(db: &Database, bucket: &str, key: &str) -> StoreResult<ObjectRecord> {
        let r = db.begin_read().map_err(internal)?;
        let buckets = r.open_table(BUCKETS).map_err(internal)?;
        if buckets.get(bucket).map_err(internal)?.is_none() {
            return Err(no_bucket());
        }
        let t = r.open_table(OBJECTS).map_err(internal)?;
        let v = t.get(obj_key(bucket, key).as_str()).map_err(internal)?;
        let v = v.ok_or_else(no_key)?;
        serde_json::from_slice(v.value()).map_err(internal)
    }

    /// Reads an object's record and pins its blobs: they stay on disk until
    /// the guard is dropped, even if the object is replaced meanwhile.
    async fn read_pinned(&self, bucket: &str, key: &str) -> StoreResult<(ObjectRecord, PinGuard)> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let (pins, dir) = (self.pins.clone(), self.root.join("blobs"));
        self.db(move |db| loop {
            let rec = Self::read_object(db, &b, &k)?;
            let ids = rec.blobs.iter().map(|(id, _)| id.clone()).collect();
            let guard = PinGuard::new(&pins, dir.clone(), ids);
            // Blobs are removed only after the commit that unlinks them, and
            // then only if unpinned: if the record still names them after
            // pinning, they are safe.
            let again = Self::read_object(db, &b, &k)?;
            if again.blobs == rec.blobs {
                return Ok((again, guard));
            }
        })
        .await
    }

    /// Streams `body` into a new blob; returns (blob id, length, md5 hex).
    async fn write_blob(
        &self,
        mut body: ByteStream,
        len: u64,
    ) -> StoreResult<(String, u64, [u8; 16])> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp = self.root.join("tmp").join(&id);
        let mut guard = TmpFile(Some(tmp.clone()));
        let res: StoreResult<(u64, [u8; 16])> = async {
            let mut f = tokio::fs::File::create(&tmp).await.map_err(internal)?;
            let mut md5 = Md5::new();
            let mut n = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    StoreError::new(400, "IncompleteBody", format!("request body failed: {e}"))
                })?;
                n += chunk.len() as u64;
                if n > len {
                    return Err(StoreError::new(
                        400,
                        "IncompleteBody",
                        "body longer than declared",
                    ));
                }
                md5.update(&chunk);
                f.write_all(&chunk).await.map_err(internal)?;
            }
            if n != len {
                return Err(StoreError::new(
                    400,
                    "IncompleteBody",
                    "body shorter than declared",
                ));
            }
            f.sync_all().await.map_err(internal)?;
            Ok((n, md5.finalize().into()))
        }
        .await;
        let (n, md5) = res?;
        tokio::fs::rename(&tmp, self.blob_path(&id))
            .await
            .map_err(internal)?;
        guard.0 = None;
        Ok((id, n, md5))
    }

    /// Removes blobs no object references any more (later, for those being read).
    fn remove_blobs(&self, blobs: &[(String, u64)]) {
        let mut now = Vec::new();
        {
            let mut st = self.pins.lock();
            for (b, _) in blobs {
                if st.readers.contains_key(b) {
                    st.doomed.insert(b.clone());
                } else {
                    now.push(b);
                }
            }
        }
        for b in now {
            let _ = std::fs::remove_file(self.blob_path(b));
        }
    }

    /// Makes `rec` the object at bucket/key, if `cond` holds for the object
    /// there now (checked in the same write transaction, so no other write
    /// comes between); removes the blobs it replaced. On an error the blobs
    /// of `rec` are the caller's to keep or remove.
    async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        rec: ObjectRecord,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<()> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let cond = cond.cloned();
        let old = self
            .db(move |db| {
                let w = db.begin_write().map_err(internal)?;
                let old = {
                    if w.open_table(BUCKETS)
                        .map_err(internal)?
                        .get(b.as_str())
                        .map_err(internal)?
                        .is_none()
                    {
                        return Err(no_bucket());
                    }
                    let mut t = w.open_table(OBJECTS).map_err(internal)?;
                    let ok = obj_key(&b, &k);
                    if let Some(c) = &cond {
                        let now = match t.get(ok.as_str()).map_err(internal)? {
                            Some(v) => Some(
                                serde_json::from_slice::<ObjectRecord>(v.value())
                                    .map_err(internal)?
                                    .etag,
                            ),
                            None => None,
                        };
                        c.check(now.as_deref())?;
                    }
                    let bytes = serde_json::to_vec(&rec).map_err(internal)?;
                    let old = t
                        .insert(ok.as_str(), bytes.as_slice())
                        .map_err(internal)?
                        .map(|v| v.value().to_vec());
                    old
                };
                w.commit().map_err(internal)?;
                Ok(old.and_then(|o| serde_json::from_slice::<ObjectRecord>(&o).ok()))
            })
            .await?;
        if let Some(o) = old {
            self.remove_blobs(&o.blobs);
        }
        Ok(())
    }

    /// Fails early when `cond` does not hold now (before a body is taken);
    /// [`Self::commit_object`] checks again, atomically.
    async fn precheck(
        &self,
        bucket: &str,
        key: &str,
        cond: Option<&WriteCondition>,
    ) -> StoreResult<()> {
        let Some(c) = cond else { return Ok(()) };
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let now = self
            .db(move |db| match Self::read_object(db, &b, &k) {
                Ok(r) => Ok(Some(r.etag)),
                Err(e) if e.code == "NoSuchKey" => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        c.check(now.as_deref())
    }

    fn info(rec: &ObjectRecord) -> ObjectInfo {
        ObjectInfo {
            size: rec.size,
            etag: rec.etag.clone(),
            last_modified: from_ms(rec.mtime_ms),
            headers: rec.headers.clone().into(),
            version_id: None,
        }
    }
}

/// Reads `[start, end)` across a list of blob files, holding them pinned.
fn blob_stream(pin: PinGuard, paths: Vec<(PathBuf, u64)>, start: u64, end: u64) -> ByteStream {
    let s = futures::stream::unfold(
        (paths, 0usize, 0u64, start, None::<tokio::fs::File>),
        move |(paths, mut idx, mut base, mut pos, mut file)| async move {
            loop {
                if pos >= end || idx >= paths.len() {
                    return None;
                }
                let (path, len) = &paths[idx];
                if pos >= base + len {
                    base += len;
                    idx += 1;
                    file = None;
                    continue;
                }
                if file.is_none() {
                    let mut f = match tokio::fs::File::open(path).await {
                        Ok(f) => f,
                        Err(e) => return Some((Err(e), (paths, idx, base, end, None))),
                    };
                    if let Err(e) = f.seek(std::io::SeekFrom::Start(pos - base)).await {
                        return Some((Err(e), (paths, idx, base, end, None)));
                    }
                    file = Some(f);
                }
                let want = (end.min(base + len) - pos).min(256 * 1024) as usize;
                let mut buf = vec![0u8; want];
                let f = file.as_mut().expect("opened above");
                match f.read_exact(&mut buf).await {
                    Ok(_) => {
                        pos += want as u64;
                        return Some((Ok(bytes::Bytes::from(buf)), (paths, idx, base, pos, file)));
                    }
                    Err(e) => return Some((Err(e), (paths, idx, base, end, None))),
                }
            }
        },
    );
    Box::pin(s.inspect(move |_| {
        let _ = &pin;
    }))
}

#[async_trait]
impl Store for LocalStore {
    async fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>> {
        self.db(|db| {
            let r = db.begin_read().map_err(internal)?;
            let t = r.open_table(BUCKETS).map_err(internal)?;
            let mut out = Vec::new();
            for e in t.iter().map_err(internal)? {
                let (k, v) = e.map_err(internal)?;
                out.push(BucketInfo {
                    name: k.value().to_owned(),
                    created: from_ms(v.value()),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn create_bucket(&self, bucket: &str) -> StoreResult<()> {
        let b = bucket.to_owned();
        self.db(move |db| {
            let w = db.begin_write().map_err(internal)?;
            {
                let mut t = w.open_table(BUCKETS).map_err(internal)?;
                if t.get(b.as_str()).map_err(internal)?.is_some() {
                    return Err(StoreError::new(
                        409,
                        "BucketAlreadyOwnedByYou",
                        "Your previous request to create the named bucket succeeded and you already own it.",
                    ));
                }
                t.insert(b.as_str(), now_ms()).map_err(internal)?;
            }
            w.commit().map_err(internal)
        })
        .await
    }

    async fn head_bucket(&self, bucket: &str) -> StoreResult<()> {
        let b = bucket.to_owned();
        self.db(move |db| {
            if Self::bucket_exists(db, &b)? {
                Ok(())
            } else {
                Err(no_bucket())
            }
        })
        .await
    }

    async fn delete_bucket(&self, bucket: &str) -> StoreResult<()> {
        let b = bucket.to_owned();
        self.db(move |db| {
            let w = db.begin_write().map_err(internal)?;
            {
                let mut t = w.open_table(BUCKETS).map_err(internal)?;
                if t.get(b.as_str()).map_err(internal)?.is_none() {
                    return Err(no_bucket());
                }
                let objs = w.open_table(OBJECTS).map_err(internal)?;
                let start = format!("{b}/");
                if let Some(e) = objs.range(start.as_str()..).map_err(internal)?.next() {
                    let (k, _) = e.map_err(internal)?;
                    if k.value().starts_with(&start) {
                        return Err(StoreError::new(
                            409,
                            "BucketNotEmpty",
                            "The bucket you tried to delete is not empty",
                        ));
                    }
                }
                t.remove(b.as_str()).map_err(internal)?;
            }
            w.commit().map_err(internal)
        })
        .await
    }

    async fn head(&self, bucket: &str, key: &str) -> StoreResult<ObjectInfo> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let rec = self.db(move |db| Self::read_object(db, &b, &k)).await?;
        Ok(Self::info(&rec))
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> StoreResult<(ObjectInfo, ByteStream)> {
        let (rec, pin) = self.read_pinned(bucket, key).await?;
        if let Some(m) = if_match {
            if m != rec.etag {
                return Err(StoreError::new(
                    412,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                ));
            }
        }
        // An end past the object's end is cut to it, as HTTP ranges are.
        let (start, end) = match range {
            Some((a, b)) if a < b && a < rec.size => (a, b.min(rec.size)),
            Some(_) => {
                return Err(StoreError::new(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                ))
            }
            None => (0, rec.size),
        };
        let paths = rec
            .blobs
            .iter()
            .map(|(id, len)| (self.blob_path(id), *len))
            .collect();
        Ok((Self::info(&rec), blob_stream(pin, paths, start, end)))
    }

    async fn get_tail(
        &self,
        bucket: &str,
        key: &str,
        n: u64,
    ) -> StoreResult<(ObjectInfo, bytes::Bytes)> {
        let (rec, pin) = self.read_pinned(bucket, key).await?;
        let start = rec.size.saturating_sub(n);
        let paths = rec
            .blobs
            .iter()
            .map(|(id, len)| (self.blob_path(id), *len))
            .collect();
        let mut s = blob_stream(pin, paths, start, rec.size);
        let mut out = Vec::with_capacity((rec.size - start) as usize);
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.map_err(internal)?);
        }
        Ok((Self::info(&rec), out.into()))
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
        no_lock(headers)?;
        let b = bucket.to_owned();
        if !self.db(move |db| Self::bucket_exists(db, &b)).await? {
            return Err(no_bucket());
        }
        self.precheck(bucket, key, cond).await?;
        let (id, size, md5) = self.write_blob(body, len).await?;
        let etag = hex::encode(md5);
        let rec = ObjectRecord {
            size,
            etag: etag.clone(),
            mtime_ms: now_ms(),
            headers: headers.into(),
            blobs: vec![(id, size)],
        };
        let blobs = rec.blobs.clone();
        if let Err(e) = self.commit_object(bucket, key, rec, cond).await {
            self.remove_blobs(&blobs);
            return Err(e);
        }
        Ok(etag)
    }

    async fn delete(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let old = self
            .db(move |db| {
                let w = db.begin_write().map_err(internal)?;
                let old = {
                    if w.open_table(BUCKETS)
                        .map_err(internal)?
                        .get(b.as_str())
                        .map_err(internal)?
                        .is_none()
                    {
                        return Err(no_bucket());
                    }
                    let mut t = w.open_table(OBJECTS).map_err(internal)?;
                    let old = t
                        .remove(obj_key(&b, &k).as_str())
                        .map_err(internal)?
                        .map(|v| v.value().to_vec());
                    old
                };
                w.commit().map_err(internal)?;
                Ok(old.and_then(|o| serde_json::from_slice::<ObjectRecord>(&o).ok()))
            })
            .await?;
        if let Some(o) = old {
            self.remove_blobs(&o.blobs);
        }
        Ok(())
    }

    async fn delete_many(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> StoreResult<Vec<(String, Option<StoreError>)>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            match self.delete(bucket, k).await {
                Ok(()) => out.push((k.clone(), None)),
                Err(e) if e.code == "NoSuchBucket" => return Err(e),
                Err(e) => out.push((k.clone(), Some(e))),
            }
        }
        Ok(out)
    }

    async fn list(&self, bucket: &str, req: &ListRequest) -> StoreResult<ListPage> {
        let b = bucket.to_owned();
        let req = req.clone();
        self.db(move |db| {
            let r = db.begin_read().map_err(internal)?;
            if r.open_table(BUCKETS)
                .map_err(internal)?
                .get(b.as_str())
                .map_err(internal)?
                .is_none()
            {
                return Err(no_bucket());
            }
            let t = r.open_table(OBJECTS).map_err(internal)?;
            let prefix = req.prefix.clone().unwrap_or_default();
            let base = format!("{b}/");
            let full_prefix = format!("{base}{prefix}");
            // Resume strictly after this key (or after every key under this
            // common prefix).
            let after = req
                .continuation_token
                .as_deref()
                .and_then(|t| {
                    use base64::Engine;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(t)
                        .ok()
                        .and_then(|v| String::from_utf8(v).ok())
                })
                .or(req.start_after.clone());
            let max = req.max_keys.clamp(0, 1000) as usize;
            let mut page = ListPage::default();
            let mut last_cp: Option<String> = None;
            let mut count = 0usize;
            let mut last_returned: Option<String> = None;
            let start = match &after {
                Some(a) if format!("{base}{a}") > full_prefix => format!("{base}{a}"),
                _ => full_prefix.clone(),
            };
            // A marker that is itself a common prefix of this listing (the
            // previous page ended with it) starts after every key under it,
            // as at S3; any other marker starts right after itself.
            let delimiter = req.delimiter.as_deref().filter(|d| !d.is_empty());
            let skip_under = after.as_deref().filter(|a| {
                delimiter.is_some_and(|d| {
                    a.strip_prefix(prefix.as_str())
                        .and_then(|rest| rest.find(d).map(|i| i + d.len() == rest.len()))
                        .unwrap_or(false)
                })
            });
            for e in t.range(start.as_str()..).map_err(internal)? {
                let (k, v) = e.map_err(internal)?;
                let full = k.value();
                if !full.starts_with(&full_prefix) {
                    break;
                }
                let key = &full[base.len()..];
                if let Some(a) = &after {
                    if key <= a.as_str() || skip_under.is_some_and(|u| key.starts_with(u)) {
                        continue;
                    }
                }
                let cp = delimiter.and_then(|d| {
                    key[prefix.len()..]
                        .find(d)
                        .map(|i| key[..prefix.len() + i + d.len()].to_owned())
                });
                if let Some(cp) = cp {
                    if last_cp.as_deref() == Some(cp.as_str()) {
                        continue;
                    }
                    if count == max {
                        page.is_truncated = true;
                        break;
                    }
                    last_cp = Some(cp.clone());
                    last_returned = Some(cp.clone());
                    page.common_prefixes.push(cp);
                    count += 1;
                    continue;
                }
                if count == max {
                    page.is_truncated = true;
                    break;
                }
                let rec: ObjectRecord = serde_json::from_slice(v.value()).map_err(internal)?;
                page.entries.push(ListEntry {
                    key: key.to_owned(),
                    size: rec.size,
                    etag: rec.etag,
                    last_modified: from_ms(rec.mtime_ms),
                });
                last_returned = Some(key.to_owned());
                count += 1;
            }
            if page.is_truncated {
                use base64::Engine;
                page.next_continuation_token = last_returned
                    .map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k.as_bytes()));
            }
            Ok(page)
        })
        .await
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
        no_lock(headers)?;
        let (src, _pin) = self.read_pinned(src_bucket, src_key).await?;
        self.precheck(dst_bucket, dst_key, conds.dest).await?;
        if let Some(m) = conds.source_etag {
            if m != src.etag {
                return Err(StoreError::new(
                    412,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                ));
            }
        }
        // Blobs are immutable: the copy links them under new ids.
        let mut blobs = Vec::new();
        for (id, len) in &src.blobs {
            let new_id = uuid::Uuid::new_v4().simple().to_string();
            if let Err(e) = std::fs::hard_link(self.blob_path(id), self.blob_path(&new_id)) {
                self.remove_blobs(&blobs);
                return Err(internal(e));
            }
            blobs.push((new_id, *len));
        }
        let mtime = now_ms();
        let rec = ObjectRecord {
            size: src.size,
            etag: src.etag.clone(),
            mtime_ms: mtime,
            headers: headers.into(),
            blobs,
        };
        let blobs = rec.blobs.clone();
        if let Err(e) = self
            .commit_object(dst_bucket, dst_key, rec, conds.dest)
            .await
        {
            self.remove_blobs(&blobs);
            return Err(e);
        }
        Ok((src.etag, from_ms(mtime)))
    }

    async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        headers: &ObjectHeaders,
    ) -> StoreResult<String> {
        no_lock(headers)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let rec = UploadRecord {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            headers: headers.into(),
            initiated_ms: now_ms(),
        };
        let (b, idc) = (bucket.to_owned(), id.clone());
        self.db(move |db| {
            let w = db.begin_write().map_err(internal)?;
            {
                if w.open_table(BUCKETS)
                    .map_err(internal)?
                    .get(b.as_str())
                    .map_err(internal)?
                    .is_none()
                {
                    return Err(no_bucket());
                }
                let mut t = w.open_table(UPLOADS).map_err(internal)?;
                let bytes = serde_json::to_vec(&rec).map_err(internal)?;
                t.insert(idc.as_str(), bytes.as_slice()).map_err(internal)?;
            }
            w.commit().map_err(internal)
        })
        .await?;
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
        self.check_upload(bucket, key, upload_id).await?;
        let (blob, size, md5) = self.write_blob(body, len).await?;
        self.commit_part(upload_id, part_number, blob, size, hex::encode(md5))
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
        let PartSource {
            bucket: src_bucket,
            key: src_key,
            range,
            if_match,
        } = *src;
        self.check_upload(bucket, key, upload_id).await?;
        let (_, body) = self.get(src_bucket, src_key, range, if_match).await?;
        let len = match range {
            Some((a, b)) => b - a,
            None => self.head(src_bucket, src_key).await?.size,
        };
        let (blob, size, md5) = self.write_blob(body, len).await?;
        self.commit_part(upload_id, part_number, blob, size, hex::encode(md5))
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
        let up = self.check_upload(bucket, key, upload_id).await?;
        let stored = self.list_parts_records(upload_id).await?;
        let by_num: HashMap<i32, PartRecord> = stored.into_iter().collect();
        let mut blobs = Vec::new();
        let mut md5s = Vec::new();
        let mut prev = 0;
        for (i, (n, etag)) in parts.iter().enumerate() {
            if *n <= prev {
                return Err(StoreError::new(
                    400,
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order.",
                ));
            }
            prev = *n;
            let p = by_num.get(n).filter(|p| &p.etag == etag).ok_or_else(|| {
                StoreError::new(
                    400,
                    "InvalidPart",
                    "One or more of the specified parts could not be found.",
                )
            })?;
            if i + 1 < parts.len() && p.size < 5 * 1024 * 1024 {
                return Err(StoreError::new(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                ));
            }
            md5s.extend(hex::decode(&p.etag).map_err(internal)?);
            blobs.push((p.blob.clone(), p.size));
        }
        if parts.is_empty() {
            return Err(StoreError::new(
                400,
                "MalformedXML",
                "You must specify at least one part",
            ));
        }
        let etag = format!("{}-{}", hex::encode(Md5::digest(&md5s)), parts.len());
        let size = blobs.iter().map(|(_, l)| l).sum();
        let rec = ObjectRecord {
            size,
            etag: etag.clone(),
            mtime_ms: now_ms(),
            headers: up.headers,
            blobs: blobs.clone(),
        };
        // Keep the blobs used by the object; drop the upload and other parts.
        let used: std::collections::HashSet<String> =
            blobs.iter().map(|(b, _)| b.clone()).collect();
        // On an error (a condition that does not hold) the upload and its
        // part blobs stay as they were.
        self.commit_object(bucket, key, rec, cond).await?;
        let leftovers = self.drop_upload(upload_id).await?;
        for b in leftovers.into_iter().filter(|b| !used.contains(b)) {
            let _ = std::fs::remove_file(self.blob_path(&b));
        }
        Ok(etag)
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<()> {
        self.check_upload(bucket, key, upload_id).await?;
        for b in self.drop_upload(upload_id).await? {
            let _ = std::fs::remove_file(self.blob_path(&b));
        }
        Ok(())
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<Vec<PartInfo>> {
        self.check_upload(bucket, key, upload_id).await?;
        Ok(self
            .list_parts_records(upload_id)
            .await?
            .into_iter()
            .map(|(n, p)| PartInfo {
                part_number: n,
                etag: p.etag,
                size: p.size,
                last_modified: from_ms(p.mtime_ms),
            })
            .collect())
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> StoreResult<Vec<UploadInfo>> {
        let (b, p) = (bucket.to_owned(), prefix.unwrap_or_default().to_owned());
        self.db(move |db| {
            if !Self::bucket_exists(db, &b)? {
                return Err(no_bucket());
            }
            let r = db.begin_read().map_err(internal)?;
            let t = r.open_table(UPLOADS).map_err(internal)?;
            let mut out = Vec::new();
            for e in t.iter().map_err(internal)? {
                let (k, v) = e.map_err(internal)?;
                let u: UploadRecord = serde_json::from_slice(v.value()).map_err(internal)?;
                if u.bucket == b && u.key.starts_with(&p) {
                    out.push(UploadInfo {
                        key: u.key,
                        upload_id: k.value().to_owned(),
                        initiated: from_ms(u.initiated_ms),
                    });
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key).then(a.initiated.cmp(&b.initiated)));
            Ok(out)
        })
        .await
    }

    /// One process, one index: every condition is checked in the write
    /// transaction that makes the object visible.
    fn enforced_conditions(&self) -> Option<super::conditional::Support> {
        Some(super::conditional::Support::ALL)
    }
}

impl LocalStore {
    async fn check_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StoreResult<UploadRecord> {
        let id = upload_id.to_owned();
        let rec = self
            .db(move |db| {
                let r = db.begin_read().map_err(internal)?;
                let t = r.open_table(UPLOADS).map_err(internal)?;
                let v = t
                    .get(id.as_str())
                    .map_err(internal)?
                    .ok_or_else(no_upload)?;
                serde_json::from_slice::<UploadRecord>(v.value()).map_err(internal)
            })
            .await?;
        if rec.bucket != bucket || rec.key != key {
            return Err(no_upload());
        }
        Ok(rec)
    }

    async fn commit_part(
        &self,
        upload_id: &str,
        part_number: i32,
        blob: String,
        size: u64,
        etag: String,
    ) -> StoreResult<String> {
        let id = upload_id.to_owned();
        let rec = PartRecord {
            blob: blob.clone(),
            size,
            etag: etag.clone(),
            mtime_ms: now_ms(),
        };
        let res = self
            .db(move |db| {
                let w = db.begin_write().map_err(internal)?;
                let old = {
                    if w.open_table(UPLOADS)
                        .map_err(internal)?
                        .get(id.as_str())
                        .map_err(internal)?
                        .is_none()
                    {
                        return Err(no_upload());
                    }
                    let mut t = w.open_table(PARTS).map_err(internal)?;
                    let bytes = serde_json::to_vec(&rec).map_err(internal)?;
                    let old = t
                        .insert(format!("{id}/{part_number:05}").as_str(), bytes.as_slice())
                        .map_err(internal)?
                        .map(|v| v.value().to_vec());
                    old
                };
                w.commit().map_err(internal)?;
                Ok(old.and_then(|o| serde_json::from_slice::<PartRecord>(&o).ok()))
            })
            .await;
        match res {
            Ok(old) => {
                if let Some(o) = old {
                    let _ = std::fs::remove_file(self.blob_path(&o.blob));
                }
                Ok(etag)
            }
            Err(e) => {
                let _ = std::fs::remove_file(self.blob_path(&blob));
                Err(e)
            }
        }
    }

    async fn list_parts_records(&self, upload_id: &str) -> StoreResult<Vec<(i32, PartRecord)>> {
        let id = upload_id.to_owned();
        self.db(move |db| {
            let r = db.begin_read().map_err(internal)?;
            let t = r.open_table(PARTS).map_err(internal)?;
            let start = format!("{id}/");
            let mut out = Vec::new();
            for e in t.range(start.as_str()..).map_err(internal)? {
                let (k, v) = e.map_err(internal)?;
                let Some(n) = k.value().strip_prefix(&start) else {
                    break;
                };
                let n: i32 = n.parse().map_err(internal)?;
                out.push((n, serde_json::from_slice(v.value()).map_err(internal)?));
            }
            Ok(out)
        })
        .await
    }

    /// Removes an upload and its part records; returns the part blobs.
    async fn drop_upload(&self, upload_id: &str) -> StoreResult<Vec<String>> {
        let id = upload_id.to_owned();
        self.db(move |db| {
            let w = db.begin_write().map_err(internal)?;
            let mut blobs = Vec::new();
            {
                let mut parts = w.open_table(PARTS).map_err(internal)?;
                let start = format!("{id}/");
                let keys: Vec<(String, PartRecord)> = parts
                    .range(start.as_str()..)
                    .map_err(internal)?
                    .map_while(|e| {
                        let (k, v) = e.ok()?;
                        let k = k.value().to_owned();
                        if !k.starts_with(&start) {
                            return None;
                        }
                        Some((k, serde_json::from_slice(v.value()).ok()?))
                    })
                    .collect();
                for (k, p) in keys {
                    parts.remove(k.as_str()).map_err(internal)?;
                    blobs.push(p.blob);
                }
                w.open_table(UPLOADS)
                    .map_err(internal)?
                    .remove(id.as_str())
                    .map_err(internal)?;
            }
            w.commit().map_err(internal)?;
            Ok(blobs)
        })
        .await
    }
}
