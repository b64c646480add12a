//! What a stored object is, once resolved: its authenticated header, data
//! key, layout, plaintext size, ETag and attributes. Resolution costs a store
//! round trip (and an RSA unwrap on a cold key cache). Results are cached,
//! keyed by authenticated bytes only (the envelope text and the trailer a
//! resolution read), never by a value the store chooses alone: what HEAD,
//! GET and conditionals answer always comes from bytes that were
//! authenticated with the object's data key.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use s3s::S3Result;

use super::error::{from_store, integrity_error, not_sealgate};
use super::{Gateway, HIDDEN_PREFIX, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::layout::Layout;
use crate::envelope::manifest::Manifest;
use crate::envelope::segment::open_trailer;
use crate::envelope::size::{plaintext_len, segments};
use crate::envelope::{Attributes, BodyBinding, DataKey, Header, TRAILER_LEN};
use crate::store::{ListEntry, ObjectInfo, Store, StoreError, StoreResult};

/// A resolution's cache key: the name, the envelope text (`sg`) and, for a
/// single-part object, the trailer read with it. Every part of it was
/// authenticated when the entry was made: the same envelope and trailer give
/// the same data key, layout and ETag.
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct CacheKey {
    bucket: String,
    key: String,
    meta: String,
    tail: Bytes,
}

/// What a listing shows for an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListInfo {
    pub etag: String,
    pub size: u64,
}

/// What authenticated bytes say about an object: the same for every
/// resolution of the same envelope and trailer, so it is what the cache keeps.
pub struct View {
    pub header: Header,
    pub dk: Arc<DataKey>,
    pub layout: Layout,
    /// Plaintext ETag, unquoted.
    pub etag: String,
    pub size: u64,
    /// Number of parts for a multipart object.
    pub parts: Option<usize>,
    /// The sealed attributes; `None` for an object written before they were
    /// sealed (its headers are then the store's).
    pub attributes: Option<Attributes>,
    /// Checksums of the whole plaintext, sealed with the object: the ones
    /// the client gave for a single-part object, the composite of the
    /// parts' for a multipart one.
    pub checksums: Vec<(u8, Vec<u8>)>,
}

/// An object as one resolution saw it: the authenticated [`View`] and what
/// the store said alongside (its ETag, which guards the reads that follow,
/// the time, and for old objects the headers).
pub struct Resolved {
    pub view: Arc<View>,
    pub info: ObjectInfo,
    /// The version asked for, when one was named (reads and copies that
    /// follow read that version, not the latest).
    pub version: Option<String>,
}

impl std::ops::Deref for Resolved {
    type Target = View;
    fn deref(&self) -> &View {
        &self.view
    }
}

impl View {
    /// What a client sees of the object's headers and user metadata: the
    /// sealed attributes, or, for an object written before they were sealed,
    /// what the store holds now (`store` is the store's latest answer).
    pub fn visible(&self, store: &crate::store::ObjectHeaders) -> Attributes {
        match &self.attributes {
            Some(a) => a.clone(),
            None => super::legacy_attributes(store),
        }
    }
}

/// Store key of the manifest of a multipart object.
pub fn manifest_key(upload_id: &[u8; 16]) -> String {
    format!("{HIDDEN_PREFIX}mp/{}", hex::encode(upload_id))
}

/// Most bytes a manifest may have (10,000 parts plus an overflow header).
const MAX_MANIFEST: u64 = 512 * 1024;

impl Gateway {
    /// Resolves an object with one tail read (metadata + trailer).
    pub async fn resolve_tail(&self, bucket: &str, key: &str) -> S3Result<Arc<Resolved>> {
        self.resolve_version(bucket, key, None).await
    }

    /// Resolves one version of an object (the latest with `None`) with one
    /// tail read. Every version is authenticated like the latest: its
    /// envelope must be bound to this bucket and key.
    pub async fn resolve_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<Arc<Resolved>> {
        let (info, tail) = self
            .store
            .get_tail_version(bucket, key, version, TRAILER_LEN as u64)
            .await?;
        self.resolve_in(bucket, key, version, info, Some(tail))
            .await
    }

    pub async fn resolve(
        &self,
        bucket: &str,
        key: &str,
        info: ObjectInfo,
        tail: Option<Bytes>,
    ) -> S3Result<Arc<Resolved>> {
        self.resolve_in(bucket, key, None, info, tail).await
    }

    async fn resolve_in(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        info: ObjectInfo,
        tail: Option<Bytes>,
    ) -> S3Result<Arc<Resolved>> {
        let Some(meta) = info.headers.metadata.get(META_KEY).cloned() else {
            return Err(not_sealgate());
        };
        let ck = CacheKey {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            meta: meta.clone(),
            tail: tail.clone().unwrap_or_default(),
        };
        // A read-back key ages out while views made with it are cached: a
        // cached view serves only while the keyring still opens its header.
        let cached = match self.objects.get(&ck).await {
            Some(v) if self.keyring.readback().is_some() && !self.keyring.can_open(&v.header) => {
                // Gone with its key, data key and all, rather than kept
                // alive by the reads that keep asking for it.
                self.objects.invalidate(&ck).await;
                None
            }
            other => other,
        };
        let view = match cached {
            Some(v) => v,
            None => {
                let v = Arc::new(
                    self.resolve_uncached(bucket, key, version, &info, tail, &meta)
                        .await?,
                );
                self.objects.insert(ck, v.clone()).await;
                v
            }
        };
        let store_etag = info.etag.clone();
        let r = Arc::new(Resolved {
            view,
            info,
            version: version.map(str::to_owned),
        });
        if version.is_none() {
            // Only the latest serves the one-request GETs of the key.
            self.latest
                .insert((bucket.to_owned(), key.to_owned()), r.clone());
        }
        self.remember_listing(
            bucket,
            key,
            &store_etag,
            ListInfo {
                etag: r.etag.clone(),
                size: r.size,
            },
        );
        Ok(r)
    }

    /// Writes a small object of the gateway's own (a manifest, an upload
    /// record) in one piece.
    pub async fn put_small(&self, bucket: &str, key: &str, raw: Bytes) -> StoreResult<String> {
        let lock = self
            .bucket_locked(bucket)
            .await
            .then(crate::store::lock::ObjectLock::default);
        self.put_small_with(bucket, key, raw, lock, None).await
    }

    /// A manifest: with `lock` (the lock its upload asked for) or, without,
    /// whatever the bucket's default retention gives a new object.
    pub(crate) async fn put_manifest(
        &self,
        bucket: &str,
        key: &str,
        raw: Bytes,
        lock: Option<&crate::store::lock::ObjectLock>,
    ) -> StoreResult<String> {
        match lock {
            Some(l) => {
                self.put_small_with(bucket, key, raw, Some(l.clone()), None)
                    .await
            }
            None => self.put_small(bucket, key, raw).await,
        }
    }

    /// The one writer of the gateway's own small objects: in one piece,
    /// with `lock` and, when given, the write condition `cond`.
    pub(crate) async fn put_small_with(
        &self,
        bucket: &str,
        key: &str,
        raw: Bytes,
        lock: Option<crate::store::lock::ObjectLock>,
        cond: Option<&crate::store::WriteCondition>,
    ) -> StoreResult<String> {
        let n = raw.len() as u64;
        let body: crate::store::ByteStream =
            Box::pin(futures::stream::once(async move { Ok(raw) }));
        let headers = crate::store::ObjectHeaders {
            lock,
            ..Default::default()
        };
        self.store.put(bucket, key, body, n, &headers, cond).await
    }

    /// Reads a whole small object of the gateway's own; `Ok(None)` when it
    /// holds more than `max` bytes (the store is untrusted: never buffer
    /// what it sends without a bound).
    pub async fn read_small(
        &self,
        bucket: &str,
        key: &str,
        max: u64,
    ) -> StoreResult<Option<Vec<u8>>> {
        self.read_small_version(bucket, key, None, max).await
    }

    /// [`Gateway::read_small`] of one version (the latest with `None`).
    pub async fn read_small_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        max: u64,
    ) -> StoreResult<Option<Vec<u8>>> {
        read_small_from(self.store.as_ref(), bucket, key, version, max).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn read_range(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        start: u64,
        end: u64,
        etag: &str,
    ) -> S3Result<Bytes> {
        let (_, mut s) = self
            .store
            .get_version(bucket, key, version, Some((start, end)), Some(etag))
            .await?;
        let mut out = Vec::with_capacity((end - start) as usize);
        while let Some(c) = s.next().await {
            let c =
                c.map_err(|e| from_store(crate::store::StoreError::unavailable(e.to_string())))?;
            out.extend_from_slice(&c);
            if out.len() as u64 > end - start {
                return Err(integrity_error());
            }
        }
        if out.len() as u64 != end - start {
            return Err(integrity_error());
        }
        Ok(out.into())
    }

    async fn resolve_uncached(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        info: &ObjectInfo,
        tail: Option<Bytes>,
        meta: &str,
    ) -> S3Result<View> {
        let fe = |e| self.format_err(e, bucket, key);
        // The header, the MAC that authenticates it for this name (a
        // pointer's, when the header lives elsewhere), where the body's
        // streams start, and the manifest already read for a header kept in
        // it.
        let (header, detached_mac, body_off, manifest) =
            match MetaValue::decode(meta).map_err(fe)? {
                MetaValue::Inline(raw) => (Header::parse(&raw).map_err(fe)?, None, 0u64, None),
                MetaValue::Overflow { header_len, mac } => {
                    let h = header_len as u64;
                    if h > info.size {
                        return Err(integrity_error());
                    }
                    let raw = self
                        .read_range(bucket, key, version, 0, h, &info.etag)
                        .await?;
                    let header = Header::parse(&raw).map_err(fe)?;
                    if header.is_multipart() {
                        return Err(integrity_error());
                    }
                    (header, Some(mac), h, None)
                }
                MetaValue::InManifest { upload_id, mac } => {
                    let m = self.read_manifest(bucket, key, &upload_id).await?;
                    let raw = m.header.clone().ok_or_else(integrity_error)?;
                    let header = Header::parse(&raw).map_err(fe)?;
                    if header.binding != (BodyBinding::Multipart { upload_id }) {
                        return Err(integrity_error());
                    }
                    (header, Some(mac), 0, Some(m))
                }
            };
        let dk = match self.keyring.unwrap(&header).await {
            // Written for a group epoch this gateway has not learned yet (a
            // member added since, a new epoch): ask for the group's newest
            // document once, then try again.
            Err(crate::envelope::FormatError::NoMatchingRecipient { .. })
                if self.learn_groups_for(&header).await =>
            {
                self.keyring.unwrap(&header).await
            }
            r => r,
        }
        .map_err(fe)?;
        match &detached_mac {
            Some(mac) => header.authenticate_detached(&dk, bucket, key, mac),
            None => header.authenticate(&dk, bucket, key),
        }
        .map_err(fe)?;
        let attributes = header.open_attributes(&dk).map_err(fe)?;
        match header.binding {
            BodyBinding::Single {
                salt,
                plaintext_len,
            } => {
                let layout = Layout::single(body_off, salt, plaintext_len);
                if layout.ct_len != info.size {
                    tracing::error!(
                        bucket,
                        key,
                        expected = layout.ct_len,
                        stored = info.size,
                        "stored size does not match the header"
                    );
                    return Err(integrity_error());
                }
                // The ETag comes from the authenticated trailer, always:
                // never from a cache keyed by the store's ETag.
                let t = match tail {
                    Some(t) if t.len() == TRAILER_LEN => t,
                    _ => {
                        self.read_range(
                            bucket,
                            key,
                            version,
                            info.size - TRAILER_LEN as u64,
                            info.size,
                            &info.etag,
                        )
                        .await?
                    }
                };
                let pk = dk.payload_key(&salt, 0, plaintext_len);
                let etag = hex::encode(open_trailer(&pk, segments(plaintext_len), &t).map_err(fe)?);
                Ok(View {
                    header,
                    dk,
                    layout,
                    etag,
                    size: plaintext_len,
                    parts: None,
                    checksums: attributes
                        .as_ref()
                        .map(|a| a.checksums.clone())
                        .unwrap_or_default(),
                    attributes,
                })
            }
            BodyBinding::Multipart { upload_id } => {
                let manifest = match manifest {
                    Some(m) => m,
                    None => self.read_manifest(bucket, key, &upload_id).await?,
                };
                if detached_mac.is_none() && manifest.header.is_some() {
                    // A header inline in metadata has no business in the
                    // manifest too.
                    return Err(integrity_error());
                }
                let digests = manifest
                    .open_digests(&dk, bucket, key, &upload_id)
                    .map_err(fe)?;
                let layout = manifest.layout();
                if layout.ct_len != info.size {
                    tracing::error!(
                        bucket,
                        key,
                        expected = layout.ct_len,
                        stored = info.size,
                        "stored size does not match the manifest"
                    );
                    return Err(integrity_error());
                }
                Ok(View {
                    header,
                    dk,
                    etag: format!("{}-{}", hex::encode(digests.etag_md5), manifest.parts.len()),
                    size: layout.plaintext_len,
                    parts: Some(manifest.parts.len()),
                    layout,
                    attributes,
                    checksums: digests.checksums,
                })
            }
        }
    }

    /// Refreshes the groups when `header` has a group (X25519) stanza;
    /// whether anything may have been learned.
    async fn learn_groups_for(&self, header: &Header) -> bool {
        let Some(groups) = &self.groups else {
            return false;
        };
        let group_stanza = header
            .recipients
            .iter()
            .any(|st| st.algorithm == crate::envelope::recipient::Algorithm::X25519 as u8);
        group_stanza && groups.refresh_all().await
    }

    /// Reads and parses (not yet authenticates) a multipart object's
    /// manifest: the latest of its key or, when that is not found (a delete
    /// marker the store's tools added over it), the newest version of it on
    /// a store that lists versions. Any version will do: the manifest is
    /// authenticated with the object's data key, bound to this bucket, key
    /// and upload id.
    async fn read_manifest(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &[u8; 16],
    ) -> S3Result<Manifest> {
        let mkey = manifest_key(upload_id);
        let raw = match self.read_small(bucket, &mkey, MAX_MANIFEST).await {
            Ok(raw) => raw,
            Err(e) if e.is_not_found() => match self.read_hidden_manifest(bucket, &mkey).await? {
                Some(raw) => raw,
                None => {
                    tracing::error!(bucket, key, "multipart manifest missing");
                    return Err(integrity_error());
                }
            },
            Err(e) => return Err(from_store(e)),
        }
        .ok_or_else(integrity_error)?;
        Manifest::parse(&raw).map_err(|e| self.format_err(e, bucket, key))
    }

    /// The newest version of a manifest whose latest is a delete marker (or
    /// gone): `Ok(None)` when the store keeps no other version of it, or
    /// keeps no versions at all; `Ok(Some(None))` when it is too large.
    async fn read_hidden_manifest(
        &self,
        bucket: &str,
        mkey: &str,
    ) -> S3Result<Option<Option<Vec<u8>>>> {
        let page = match self
            .store
            .list_versions(
                bucket,
                &crate::store::versions::ListVersionsRequest {
                    prefix: Some(mkey.to_owned()),
                    max_keys: super::versions::MAX_MANIFEST_VERSIONS,
                    ..Default::default()
                },
            )
            .await
        {
            Ok(p) => p,
            Err(e) if e.status == 501 => return Ok(None),
            Err(e) => return Err(from_store(e)),
        };
        // The store's order: newest first within a key.
        let Some(v) = page
            .entries
            .into_iter()
            .find(|e| e.key == mkey && !e.delete_marker)
        else {
            return Ok(None);
        };
        match self
            .read_small_version(bucket, mkey, Some(&v.version_id), MAX_MANIFEST)
            .await
        {
            Ok(raw) => Ok(Some(raw)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(from_store(e)),
        }
    }

    /// What a listing shows for one entry: from the cache, else resolved with
    /// one tail read, else (an object this gateway cannot open) the store's
    /// ETag and the size computed from the ciphertext length.
    pub async fn list_info(&self, bucket: &str, e: &ListEntry) -> ListInfo {
        if let Some(li) = self
            .listing
            .get(&(bucket.to_owned(), e.key.clone(), e.etag.clone()))
        {
            return li;
        }
        if !self.keyring.identities().is_empty() {
            if let Ok(r) = self.resolve_tail(bucket, &e.key).await {
                return ListInfo {
                    etag: r.etag.clone(),
                    size: r.size,
                };
            }
        }
        ListInfo {
            etag: e.etag.clone(),
            size: plaintext_len(e.size).unwrap_or(e.size),
        }
    }
}

/// Reads a whole small object of the gateway's own from `store`;
/// `Ok(None)` when it holds more than `max` bytes (never buffers more,
/// whatever size the store claims).
pub(crate) async fn read_small_from(
    store: &dyn Store,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    max: u64,
) -> StoreResult<Option<Vec<u8>>> {
    let (info, mut s) = store.get_version(bucket, key, version, None, None).await?;
    if info.size > max {
        return Ok(None);
    }
    let mut raw = Vec::with_capacity(info.size as usize);
    while let Some(c) = s.next().await {
        raw.extend_from_slice(&c.map_err(|e| StoreError::unavailable(e.to_string()))?);
        if raw.len() as u64 > max {
            return Ok(None);
        }
    }
    Ok(Some(raw))
}
