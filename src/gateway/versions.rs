//! Versioning: PutBucketVersioning / GetBucketVersioning passed to the
//! store, ListObjectVersions with sealgate's keys hidden and every version's
//! plaintext size and ETag, and what the other operations need to keep old
//! versions readable: whether a bucket keeps versions (cached briefly), and
//! the removal of a multipart manifest that no version needs any more.
//!
//! Every version is resolved like the latest object (`object.rs`): its
//! envelope is authenticated for this bucket and key. The envelope does not
//! name a version, so a store can serve another version of the same key
//! (a rollback) but never another key's object (docs/SECURITY.md).
//!
//! A multipart object's manifest is named by its upload id, fresh for every
//! completion and every copy through sealgate, so no two versions share one:
//! the manifest of a version is removed when that version is deleted for
//! good, and never while the bucket keeps versions otherwise.

use std::time::Duration;

use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::error::from_store;
use super::object::{manifest_key, ListInfo};
use super::{Gateway, HIDDEN_PREFIX, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::{BodyBinding, Header};
use crate::store::versions::{ListVersionsRequest, VersionEntry, VersionedKey, Versioning};
use crate::store::ObjectInfo;

/// How long a bucket's versioning state is trusted without asking again.
pub(crate) const VERSIONING_TTL: Duration = Duration::from_secs(10);

/// Most manifest versions removed for one object version (a manifest is
/// written once; more than a few versions of it are the store's doing).
const MAX_MANIFEST_VERSIONS: i32 = 100;

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

    /// Removes a manifest for good: every version of it on a bucket that
    /// keeps versions (a plain delete would only hide it behind a marker).
    pub(crate) async fn purge_manifest(&self, bucket: &str, mkey: &str) {
        let keeps = self
            .versioning(bucket)
            .await
            .map_or(true, Versioning::keeps_versions);
        if !keeps {
            if let Err(e) = self.store.delete(bucket, mkey).await {
                tracing::warn!(bucket, error = %e, "could not delete a multipart manifest");
            }
            return;
        }
        let page = match self
            .store
            .list_versions(
                bucket,
                &ListVersionsRequest {
                    prefix: Some(mkey.to_owned()),
                    max_keys: MAX_MANIFEST_VERSIONS,
                    ..Default::default()
                },
            )
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(bucket, error = %e, "could not list a manifest's versions");
                return;
            }
        };
        let ids: Vec<VersionedKey> = page
            .entries
            .into_iter()
            .filter(|e| e.key == mkey)
            .map(|e| VersionedKey {
                key: e.key,
                version_id: Some(e.version_id),
            })
            .collect();
        if ids.is_empty() {
            return;
        }
        match self.store.delete_many_versions(bucket, &ids).await {
            Ok(rs) => {
                for (k, r) in rs {
                    if let Err(e) = r {
                        tracing::warn!(bucket, key = k.key, error = %e, "could not delete a manifest version");
                    }
                }
            }
            Err(e) => tracing::warn!(bucket, error = %e, "could not delete a manifest's versions"),
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

/// Removes every version under `.sealgate/` of a bucket that has nothing
/// else (one page of versions): `Err` when the client's own versions remain
/// (the bucket is not empty) or the store would not say.
pub(crate) async fn purge_hidden_versions(gw: &Gateway, bucket: &str) -> Result<(), ()> {
    let page = gw
        .store
        .list_versions(
            bucket,
            &ListVersionsRequest {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .map_err(|_| ())?;
    if page.is_truncated
        || page
            .entries
            .iter()
            .any(|e| !e.key.starts_with(HIDDEN_PREFIX))
    {
        return Err(());
    }
    let ids: Vec<VersionedKey> = page
        .entries
        .into_iter()
        .map(|e| VersionedKey {
            key: e.key,
            version_id: Some(e.version_id),
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let out = gw
        .store
        .delete_many_versions(bucket, &ids)
        .await
        .map_err(|_| ())?;
    if out.iter().all(|(_, r)| r.is_ok()) {
        Ok(())
    } else {
        Err(())
    }
}

/// The manifest key of a stored object (as the store describes it), if it
/// is a multipart one. The store's word: used only to tidy up.
pub(crate) fn manifest_named_by(info: &ObjectInfo) -> Option<String> {
    let meta = info.headers.metadata.get(META_KEY)?;
    match MetaValue::decode(meta).ok()? {
        MetaValue::Inline(raw) => match Header::parse(&raw).ok()?.binding {
            BodyBinding::Multipart { upload_id } => Some(manifest_key(&upload_id)),
            BodyBinding::Single { .. } => None,
        },
        MetaValue::InManifest { upload_id, .. } => Some(manifest_key(&upload_id)),
        MetaValue::Overflow { .. } => None,
    }
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
