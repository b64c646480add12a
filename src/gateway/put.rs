//! PutObject (encrypt while streaming), DeleteObject and DeleteObjects.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use s3s::dto::*;
use s3s::stream::ByteStream as _;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::checksum::{ClientChecks, Expected};
use super::condition::Asked;
use super::lock::Write;
use super::object::{ListInfo, Resolved, View};
use super::seal::{seal_body, split, HeaderHome};
use super::{check_key, client_attributes, Gateway};
use crate::envelope::layout::Layout;
use crate::envelope::size::stream_len;
use crate::envelope::stream::Sealer;
use crate::envelope::{Attributes, BodyBinding, NewBinding};
use crate::store::conditional::WriteOp;
use crate::store::versions::VersionedKey;
use crate::store::{ByteStream, ObjectInfo};

/// Encrypts `body` (exactly `len` plaintext bytes) under a fresh data key
/// for the policy's recipients, with `attributes` sealed in its header, and
/// stores it at bucket/key, only if `w.cond` holds there (checked by the
/// store), with the lock `w.lock`. Returns the plaintext ETag and the
/// checksums the client asked for.
pub async fn seal_and_store<S, E>(
    gw: &Gateway,
    at: (&str, &str),
    attributes: &Attributes,
    body: S,
    len: u64,
    checks: ClientChecks,
    w: Write<'_>,
) -> S3Result<(String, Checksum)>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    seal_and_store_versioned(gw, at, attributes, body, len, checks, w)
        .await
        .map(|(etag, sums, _)| (etag, sums))
}

/// [`seal_and_store`], answering also the version id the store gave the
/// new object (versioning buckets).
pub async fn seal_and_store_versioned<S, E>(
    gw: &Gateway,
    (bucket, key): (&str, &str),
    attributes: &Attributes,
    body: S,
    len: u64,
    checks: ClientChecks,
    w: Write<'_>,
) -> S3Result<(String, Checksum, Option<String>)>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sealed, placed) = gw
        .new_envelope(
            bucket,
            key,
            NewBinding::Single { plaintext_len: len },
            attributes,
        )
        .await?;
    let BodyBinding::Single { salt, .. } = sealed.header.binding else {
        unreachable!("a single-part binding was asked for");
    };
    let mut headers = placed.store_headers();
    headers.lock = w.lock.cloned();
    let prefix =
        (placed.home == HeaderHome::Body).then(|| Bytes::copy_from_slice(sealed.header.raw()));
    let body_off = prefix.as_ref().map_or(0, |h| h.len() as u64);
    let (stream, outcome) = split(seal_body(
        body,
        Sealer::new(&sealed.dk, salt, 0, len),
        checks,
    ));
    let (store_body, store_len): (ByteStream, u64) = match prefix {
        Some(h) => (
            Box::pin(futures::stream::once(async move { Ok(h) }).chain(stream)),
            body_off + stream_len(len),
        ),
        None => (stream, stream_len(len)),
    };
    let stored = gw
        .store
        .put_versioned(bucket, key, store_body, store_len, &headers, w.cond)
        .await;
    let (written, digests) = outcome.settle(stored)?;
    let store_etag = written.etag;
    let etag = hex::encode(digests.md5);
    gw.remember_listing(
        bucket,
        key,
        &store_etag,
        ListInfo {
            etag: etag.clone(),
            size: len,
        },
    );
    // Reading back what was just written needs neither an RSA unwrap nor a
    // resolving round trip: keep the data key and this view of the object
    // (GETs guard it with the store's ETag and the envelope, as any cached
    // view).
    let dk = Arc::new(sealed.dk);
    let readable = gw.keyring.remember(&sealed.header, &dk).await;
    let id = (bucket.to_owned(), key.to_owned());
    if store_etag.is_empty() || !readable {
        gw.latest.invalidate(&id);
    } else {
        let view = Resolved {
            view: Arc::new(View {
                header: sealed.header,
                dk,
                layout: Layout::single(body_off, salt, len),
                etag: etag.clone(),
                size: len,
                parts: None,
                checksums: attributes.checksums.clone(),
                attributes: Some(attributes.clone()),
            }),
            info: ObjectInfo {
                size: store_len,
                etag: store_etag,
                last_modified: std::time::SystemTime::now(),
                headers,
                version_id: written.version_id.clone(),
            },
            version: None,
        };
        gw.latest.insert(id, Arc::new(view));
    }
    Ok((etag, digests.checksums, written.version_id))
}

pub async fn put_object(
    gw: &Gateway,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let S3Request {
        mut input,
        trailing_headers,
        ..
    } = req;
    check_key(&input.key)?;
    super::refuse_tags(input.tagging.as_deref())?;
    let mut attributes = client_attributes!(input)?;
    let asked = Asked::parse(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let lock_asked = super::lock::asked(
        input.object_lock_mode.as_ref(),
        input.object_lock_retain_until_date.as_ref(),
        input.object_lock_legal_hold_status.as_ref(),
    )?;
    let body = input.body.ok_or_else(|| s3_error!(IncompleteBody))?;
    let len = input
        .content_length
        .map(|l| l.max(0) as u64)
        .or_else(|| body.remaining_length().exact().map(|n| n as u64))
        .ok_or_else(|| s3_error!(MissingContentLength))?;
    if len > gw.max_object_size {
        return Err(s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size of {} bytes.",
            gw.max_object_size
        ));
    }
    let expected = Expected::parse(
        input.content_md5.as_deref(),
        Checksum {
            checksum_crc32: input.checksum_crc32,
            checksum_crc32c: input.checksum_crc32c,
            checksum_crc64nvme: input.checksum_crc64nvme,
            checksum_sha1: input.checksum_sha1,
            checksum_sha256: input.checksum_sha256,
            ..Default::default()
        },
        input.checksum_algorithm.as_ref(),
        trailing_headers.is_some(),
    )?;
    // Checksums the client gave up front are sealed with the object (S3
    // answers them with x-amz-checksum-mode: ENABLED); they are verified
    // before the object exists.
    attributes.checksums = super::checksum::header_sums(&expected);
    let checks = ClientChecks::new(expected, trailing_headers);
    // Refused (a condition the store does not enforce, a stale ETag) before
    // the body is read.
    let cond = gw
        .write_condition(&input.bucket, &input.key, WriteOp::Put, asked.as_ref())
        .await?;
    // Refused (a lock the store cannot keep) before the body is read, too.
    let lock = gw.write_lock(&input.bucket, lock_asked.clone()).await?;
    let (etag, sums, version_id) = seal_and_store_versioned(
        gw,
        (&input.bucket, &input.key),
        &attributes,
        body,
        len,
        checks,
        Write {
            cond: cond.as_ref(),
            lock: lock.as_ref(),
        },
    )
    .await?;
    if let Some(l) = &lock_asked {
        gw.verify_lock(&input.bucket, &input.key, version_id.as_deref(), l)
            .await?;
    }
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(ETag::Strong(etag)),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        version_id,
        ..Default::default()
    }))
}

/// A version id a client named on a bucket that keeps no versions at the
/// store: `null` names the one object there is (`None`); any other is
/// refused, so that a store which ignores version ids never deletes the
/// latest object in its place.
async fn version_to_delete(
    gw: &Gateway,
    bucket: &str,
    version: Option<String>,
) -> S3Result<Option<String>> {
    let Some(v) = version else { return Ok(None) };
    if gw.versioning(bucket).await?.keeps_versions() {
        return Ok(Some(v));
    }
    if v == "null" {
        return Ok(None);
    }
    Err(s3_error!(
        InvalidArgument,
        "Invalid version id specified: the bucket has never kept versions at the store"
    ))
}

pub async fn delete_object(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    if req.input.if_match.is_some()
        || req.input.if_match_last_modified_time.is_some()
        || req.input.if_match_size.is_some()
    {
        // Never a silent unconditional delete.
        return Err(s3_error!(
            NotImplemented,
            "conditional DeleteObject (If-Match) is not supported"
        ));
    }
    let (bucket, key) = (req.input.bucket, req.input.key);
    check_key(&key)?;
    let version = version_to_delete(gw, &bucket, req.input.version_id).await?;
    // On a bucket that has never kept versions, the object's own manifest
    // (authenticated as this object's) goes with it; on one that keeps
    // versions, manifests are left to `sealgate gc` (versions.rs).
    let manifest = if gw.old_manifests_may_go(&bucket).await {
        gw.own_manifest(&bucket, &key).await
    } else {
        None
    };
    let deleted = gw
        .store
        .delete_version(&bucket, &key, version.as_deref())
        .await?;
    gw.latest.invalidate(&(bucket.clone(), key.clone()));
    if let Some(m) = manifest {
        gw.drop_manifests(&bucket, &[m]).await;
    }
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: deleted.delete_marker.then_some(true),
        version_id: deleted.version_id,
        ..Default::default()
    }))
}

pub async fn delete_objects(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let bucket = req.input.bucket;
    let quiet = req.input.delete.quiet.unwrap_or(false);
    let objects = req.input.delete.objects;
    if objects.len() > 1000 {
        return Err(s3_error!(MalformedXML, "at most 1000 keys per request"));
    }
    let any_version = objects.iter().any(|o| o.version_id.is_some());
    let keeps = if any_version {
        gw.versioning(&bucket).await?.keeps_versions()
    } else {
        false
    };
    let mut refused = Vec::new();
    let mut keys = Vec::new();
    for o in objects {
        if o.key.starts_with(super::HIDDEN_PREFIX) {
            refused.push(Error {
                key: Some(o.key),
                code: Some("AccessDenied".into()),
                message: Some("reserved by sealgate".into()),
                version_id: o.version_id,
            });
            continue;
        }
        let version_id = match o.version_id {
            Some(v) if !keeps && v != "null" => {
                refused.push(Error {
                    key: Some(o.key),
                    code: Some("InvalidArgument".into()),
                    message: Some(
                        "Invalid version id specified: the bucket has never kept versions at the store"
                            .into(),
                    ),
                    version_id: Some(v),
                });
                continue;
            }
            Some(v) if keeps => Some(v),
            _ => None,
        };
        keys.push(VersionedKey {
            key: o.key,
            version_id,
        });
    }
    // On a bucket that has never kept versions, each object's own manifest
    // (authenticated as that object's) goes once the store says the object
    // was deleted; on one that keeps versions, manifests are left to
    // `sealgate gc` (versions.rs).
    let manifests: std::collections::HashMap<String, String> =
        if !keys.is_empty() && gw.old_manifests_may_go(&bucket).await {
            let mut names: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
            names.sort();
            names.dedup();
            futures::stream::iter(names)
                .map(|k| {
                    let b = bucket.clone();
                    async move {
                        let m = gw.own_manifest(&b, &k).await;
                        m.map(|m| (k, m))
                    }
                })
                .buffer_unordered(gw.list_concurrency)
                .filter_map(|m| async move { m })
                .collect()
                .await
        } else {
            Default::default()
        };
    let results = gw.store.delete_many_versions(&bucket, &keys).await?;
    for k in &keys {
        gw.latest.invalidate(&(bucket.clone(), k.key.clone()));
    }
    let gone: Vec<String> = results
        .iter()
        .filter(|(k, r)| r.is_ok() && k.version_id.is_none())
        .filter_map(|(k, _)| manifests.get(&k.key).cloned())
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    gw.drop_manifests(&bucket, &gone).await;
    let mut deleted = Vec::new();
    let mut errors = refused;
    for (k, r) in results {
        match r {
            Ok(d) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(k.key),
                        delete_marker: d.delete_marker.then_some(true),
                        delete_marker_version_id: d.version_id.filter(|_| d.delete_marker),
                        version_id: k.version_id,
                    })
                }
            }
            Err(e) => errors.push(Error {
                key: Some(k.key),
                code: Some(e.code),
                message: Some(e.message),
                version_id: k.version_id,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: if errors.is_empty() {
            None
        } else {
            Some(errors)
        },
        ..Default::default()
    }))
}
