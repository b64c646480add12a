//! Versioning: PutBucketVersioning / GetBucketVersioning passed to the
//! store, ListObjectVersions with sealgate's keys hidden and every version's
//! plaintext size and ETag, and what the other operations need to keep old
//! versions readable: whether a bucket keeps versions (cached briefly), and
//! when a multipart manifest may be removed.
//!
//! Every version is resolved like the latest object (`object.rs`): its
//! envelope is authenticated for this bucket and key. The envelope does not
//! name a version, so a store can serve another version of the same key
//! (a rollback) but never another key's object (docs/SECURITY.md).
//!
//! A multipart object's manifest is named by its upload id, fresh for every
//! completion and every copy through sealgate; but a version restored with
//! the store's own tools keeps its envelope, so two versions can share one.
//! So on a bucket that keeps versions no request deletes a manifest:
//! `sealgate gc` removes those no version names. On a bucket that has never
//! kept versions, the manifest of an object deleted or replaced through
//! sealgate goes with it, once authenticated as that object's (an object
//! the gateway cannot open leaves its manifest to gc). A manifest hidden
//! behind a delete marker (the store's doing) is still read
//! (`object.rs`): it is authenticated like any other.

use std::time::Duration;

use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::error::from_store;
use super::object::{manifest_key, ListInfo};
use super::{Gateway, HIDDEN_PREFIX};
use crate::envelope::BodyBinding;
use crate::store::versions::{ListVersionsRequest, VersionEntry, VersionedKey, Versioning};

/// How long a bucket's versioning state is trusted without asking again.
pub(crate) const VERSIONING_TTL: Duration = Duration::from_secs(10);

/// Most versions of a manifest looked through for one a delete marker hides
/// (a manifest is written once; more than a few versions of it are the
/// store's doing).
pub(crate) const MAX_MANIFEST_VERSIONS: i32 = 100;

pub(crate) fn versioning_cache() -> moka::sync::Cache<String, Versioning> {
    moka::sync::Cache::builder()
        .max_capacity(10_000)
        .time_to_live(VERSIONING_TTL)
        .build()
}

impl Gateway {
    /// The bucket's versioning state at the store (cached for
    /// [`VERSIONING_TTL`]). A store that cannot answer (501) has none.
    pub(crate) async fn versioning(&self, bucket: &str) -> crate::store::StoreResult<Versioning> {
        if let Some(v) = self.versioning.get(bucket) {
            return Ok(v);
        }
        let v = match self.store.get_bucket_versioning(bucket).await {
            Ok(v) => v,
            Err(e) if e.status == 501 => Versioning::Never,
            Err(e) => return Err(e),
        };
        self.versioning.insert(bucket.to_owned(), v);
        Ok(v)
    }

    /// Whether a manifest that the latest object no longer names may be
    /// removed: only when the bucket keeps no versions. When the store
    /// cannot tell, the manifest stays (`sealgate gc` removes it later).
    pub(crate) async fn old_manifests_may_go(&self, bucket: &str) -> bool {
        match self.versioning(bucket).await {
            Ok(v) => !v.keeps_versions(),
            Err(e) => {
                tracing::warn!(bucket, error = %e, "versioning state unknown: a manifest is kept");
                false
            }
        }
    }

    /// Whether the bucket has never kept versions, asked at the store
    /// whenever the cache says `Never` (or nothing): versioning can be
    /// enabled at any time (by another gateway, by the store's own tools)
    /// but never returns to `Never`, so only that answer can be stale. A
    /// store without versioning (501) has never kept any; a store that
    /// cannot answer is taken to keep them.
    pub(crate) async fn never_versioned_now(&self, bucket: &str) -> bool {
        if self
            .versioning
            .get(bucket)
            .is_some_and(Versioning::keeps_versions)
        {
            return false;
        }
        match self.store.get_bucket_versioning(bucket).await {
            Ok(v) => {
                self.versioning.insert(bucket.to_owned(), v);
                v == Versioning::Never
            }
            Err(e) if e.status == 501 => true,
            Err(e) => {
                tracing::warn!(bucket, error = %e, "versioning state unknown: a manifest is kept");
                false
            }
        }
    }

    /// Deletes manifests no object needs any more (named by authenticated
    /// envelopes), only on a bucket that has never kept versions. On one
    /// that keeps versions (enabled or suspended) a manifest is never
    /// deleted inline, plainly or by version id: a plain delete would hide
    /// it behind a delete marker (on a suspended bucket, replace it), and a
    /// version's manifest may be needed by another version (one restored
    /// with the store's own tools keeps the same envelope). `sealgate gc`,
    /// which sees every version, removes orphans there.
    pub(crate) async fn drop_manifests(&self, bucket: &str, mkeys: &[String]) {
        if mkeys.is_empty() || !self.never_versioned_now(bucket).await {
            return;
        }
        match self.store.delete_many(bucket, mkeys).await {
            Ok(rs) => {
                for (_, e) in rs {
                    if let Some(e) = e {
                        tracing::warn!(bucket, error = %e, "could not delete a multipart manifest");
                    }
                }
            }
            Err(e) => tracing::warn!(bucket, error = %e, "could not delete multipart manifests"),
        }
    }

    /// The manifest key of the object at `bucket/key` (the latest), when
    /// it is a multipart object this gateway can open: the object resolved
    /// (its envelope's MAC for this bucket and key, its manifest opened
    /// under its data key and bound to this name and upload id), so that
    /// an object planted at the store naming another object's upload id
    /// never names a manifest to delete. `None` also when it is locked now
    /// (its manifest stays with it) or cannot be opened here: `sealgate
    /// gc` decides then.
    pub(crate) async fn own_manifest(&self, bucket: &str, key: &str) -> Option<String> {
        let r = self.resolve_tail(bucket, key).await.ok()?;
        if super::lock::locked_now(&r.info.headers) {
            return None;
        }
        match r.header.binding {
            BodyBinding::Multipart { upload_id } => Some(manifest_key(&upload_id)),
            BodyBinding::Single { .. } => None,
        }
    }

    /// What a version listing shows for one version: from the listing
    /// cache (keyed by the store's ETag, which names the version's content),
    /// else that version resolved, else the store's ETag and the size from
    /// the ciphertext length.
    async fn version_info(&self, bucket: &str, e: &VersionEntry) -> ListInfo {
        if let Some(li) = self
            .listing
            .get(&(bucket.to_owned(), e.key.clone(), e.etag.clone()))
        {
            return li;
        }
        if !self.keyring.identities().is_empty() {
            if let Ok(r) = self
                .resolve_version(bucket, &e.key, Some(&e.version_id))
                .await
            {
                return ListInfo {
                    etag: r.etag.clone(),
                    size: r.size,
                };
            }
        }
        // Not `list_info`: its fallback resolves the latest object, which
        // says nothing about this version.
        ListInfo {
            etag: e.etag.clone(),
            size: crate::envelope::size::plaintext_len(e.size).unwrap_or(e.size),
        }
    }
}

/// Why a walk over a bucket's versions stopped short.
#[derive(Debug)]
pub(crate) enum WalkError {
    Store(crate::store::StoreError),
    /// The store's markers went back or repeated.
    Stuck,
    /// More versions and delete markers than the walk's budget.
    OverBudget(usize),
}

/// Every version and delete marker of a bucket (under a prefix), page by
/// page, within a budget of entries, with the store's markers checked: the
/// key marker never goes back, and no pair of markers comes twice, so a
/// store cannot keep a walk going (the budget bounds the rest).
pub(crate) struct VersionWalk<'a> {
    gw: &'a Gateway,
    bucket: &'a str,
    prefix: Option<String>,
    markers: (Option<String>, Option<String>),
    seen: std::collections::HashSet<(Option<String>, Option<String>)>,
    entries: usize,
    budget: usize,
    done: bool,
}

impl<'a> VersionWalk<'a> {
    pub(crate) fn new(
        gw: &'a Gateway,
        bucket: &'a str,
        prefix: Option<String>,
        budget: usize,
    ) -> Self {
        VersionWalk {
            gw,
            bucket,
            prefix,
            markers: (None, None),
            seen: Default::default(),
            entries: 0,
            budget,
            done: false,
        }
    }

    /// The next page's entries; `Ok(None)` once the listing is done.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<VersionEntry>>, WalkError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .gw
            .store
            .list_versions(
                self.bucket,
                &ListVersionsRequest {
                    prefix: self.prefix.clone(),
                    max_keys: 1000,
                    key_marker: self.markers.0.clone(),
                    version_id_marker: self.markers.1.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(WalkError::Store)?;
        self.entries += page.entries.len();
        if self.entries > self.budget {
            return Err(WalkError::OverBudget(self.budget));
        }
        if !page.is_truncated {
            self.done = true;
            return Ok(Some(page.entries));
        }
        let next = (page.next_key_marker, page.next_version_id_marker);
        let back = match (&next.0, &self.markers.0) {
            (None, _) => true,
            (Some(n), Some(p)) => n < p,
            (Some(_), None) => false,
        };
        if back || !self.seen.insert(next.clone()) {
            return Err(WalkError::Stuck);
        }
        self.markers = next;
        Ok(Some(page.entries))
    }
}

/// Most versions and delete markers DeleteBucket looks through for
/// sealgate's own leftovers.
const MAX_BUCKET_VERSIONS: usize = 100_000;

/// On a bucket that keeps versions and that the store would not delete:
/// every version of it looked at first, and only when all of them are
/// sealgate's own (under `.sealgate/`), each removed by its version id.
/// `Err` when a version or delete marker of the client's remains (the
/// bucket is not empty), or the store would not say; nothing is deleted
/// then (a manifest hidden behind a marker would leave its multipart
/// versions unreadable).
pub(crate) async fn purge_hidden_versions(gw: &Gateway, bucket: &str) -> Result<(), ()> {
    let mut walk = VersionWalk::new(gw, bucket, None, MAX_BUCKET_VERSIONS);
    let mut ids: Vec<VersionedKey> = Vec::new();
    loop {
        match walk.next_page().await {
            Ok(Some(entries)) => {
                if entries.iter().any(|e| !e.key.starts_with(HIDDEN_PREFIX)) {
                    return Err(());
                }
                ids.extend(entries.into_iter().map(|e| VersionedKey {
                    key: e.key,
                    version_id: Some(e.version_id),
                }));
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(bucket, error = ?e, "could not list the bucket's versions");
                return Err(());
            }
        }
    }
    for chunk in ids.chunks(1000) {
        let out = gw
            .store
            .delete_many_versions(bucket, chunk)
            .await
            .map_err(|_| ())?;
        if out.iter().any(|(_, r)| r.is_err()) {
            return Err(());
        }
    }
    Ok(())
}

pub async fn get_bucket_versioning(
    gw: &Gateway,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let b = &req.input.bucket;
    let v = gw
        .store
        .get_bucket_versioning(b)
        .await
        .map_err(from_store)?;
    gw.versioning.insert(b.clone(), v);
    let status = match v {
        Versioning::Never => None,
        Versioning::Enabled => Some(BucketVersioningStatus::ENABLED),
        Versioning::Suspended => Some(BucketVersioningStatus::SUSPENDED),
    };
    Ok(S3Response::new(GetBucketVersioningOutput {
        status: status.map(BucketVersioningStatus::from_static),
        mfa_delete: None,
    }))
}

pub async fn put_bucket_versioning(
    gw: &Gateway,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let i = req.input;
    let c = i.versioning_configuration;
    if i.mfa.is_some() || c.mfa_delete.is_some() {
        return Err(s3_error!(NotImplemented, "MFA delete is not supported"));
    }
    let enabled = match c.status.as_ref().map(BucketVersioningStatus::as_str) {
        Some(BucketVersioningStatus::ENABLED) => true,
        Some(BucketVersioningStatus::SUSPENDED) => false,
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "the versioning status must be Enabled or Suspended"
            ))
        }
    };
    gw.versioning.invalidate(&i.bucket);
    let done = gw.store.put_bucket_versioning(&i.bucket, enabled).await;
    gw.versioning.invalidate(&i.bucket);
    done.map_err(from_store)?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

pub async fn list_object_versions(
    gw: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let i = req.input;
    let url = super::list::url_encoding(i.encoding_type.as_ref())?;
    let enc = |s: String| if url { super::list::url_encode(&s) } else { s };
    let max_keys = match i.max_keys {
        Some(n) if n < 0 => {
            return Err(s3_error!(InvalidArgument, "max-keys must be non-negative"))
        }
        Some(n) => n.min(1000),
        None => 1000,
    };
    if i.version_id_marker.is_some() && i.key_marker.is_none() {
        return Err(s3_error!(
            InvalidArgument,
            "A version-id marker cannot be specified without a key marker."
        ));
    }
    let delimiter = i.delimiter.filter(|d| !d.is_empty());
    let page = gw
        .store
        .list_versions(
            &i.bucket,
            &ListVersionsRequest {
                prefix: i.prefix.clone(),
                delimiter: delimiter.clone(),
                max_keys,
                key_marker: i.key_marker.clone(),
                version_id_marker: i.version_id_marker.clone(),
            },
        )
        .await
        .map_err(from_store)?;
    let (markers, versions): (Vec<VersionEntry>, Vec<VersionEntry>) = page
        .entries
        .into_iter()
        .filter(|e| !e.key.starts_with(HIDDEN_PREFIX))
        .partition(|e| e.delete_marker);
    let versions: Vec<ObjectVersion> = futures::stream::iter(versions)
        .map(|e| {
            let bucket = i.bucket.clone();
            async move {
                let li = gw.version_info(&bucket, &e).await;
                ObjectVersion {
                    e_tag: Some(ETag::Strong(li.etag)),
                    is_latest: Some(e.is_latest),
                    key: Some(if url {
                        super::list::url_encode(&e.key)
                    } else {
                        e.key
                    }),
                    last_modified: Some(Timestamp::from(e.last_modified)),
                    size: Some(li.size as i64),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    version_id: Some(e.version_id),
                    ..Default::default()
                }
            }
        })
        .buffered(gw.list_concurrency)
        .collect()
        .await;
    let delete_markers: Vec<DeleteMarkerEntry> = markers
        .into_iter()
        .map(|e| DeleteMarkerEntry {
            is_latest: Some(e.is_latest),
            key: Some(enc(e.key)),
            last_modified: Some(Timestamp::from(e.last_modified)),
            version_id: Some(e.version_id),
            owner: None,
        })
        .collect();
    let mut prefixes = Vec::new();
    for cp in page.common_prefixes {
        let hidden = cp.starts_with(HIDDEN_PREFIX)
            || (HIDDEN_PREFIX.starts_with(cp.as_str())
                && super::list::only_hidden_under(gw, &i.bucket, &cp).await?);
        if !hidden {
            prefixes.push(CommonPrefix {
                prefix: Some(enc(cp)),
            });
        }
    }
    Ok(S3Response::new(ListObjectVersionsOutput {
        common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
        delete_markers: (!delete_markers.is_empty()).then_some(delete_markers),
        delimiter: delimiter.map(enc),
        encoding_type: i.encoding_type,
        is_truncated: Some(page.is_truncated),
        key_marker: i.key_marker.map(enc),
        max_keys: Some(max_keys),
        name: Some(i.bucket),
        next_key_marker: page.next_key_marker.map(enc),
        next_version_id_marker: page.next_version_id_marker,
        prefix: i.prefix.map(enc),
        version_id_marker: i.version_id_marker,
        versions: (!versions.is_empty()).then_some(versions),
        ..Default::default()
    }))
}
