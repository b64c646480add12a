//! PutObject (encrypt while streaming), DeleteObject and DeleteObjects.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use s3s::dto::*;
use s3s::stream::ByteStream as _;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::checksum::{body_error, ClientChecks, Expected, Fault};
use super::error::from_store;
use super::object::{manifest_key, ListInfo, Resolved};
use super::{
    check_key, check_user_metadata, metadata_size, object_headers, Gateway, METADATA_LIMIT,
    META_KEY,
};
use crate::envelope::header::MetaValue;
use crate::envelope::keys::random_salt;
use crate::envelope::layout::Layout;
use crate::envelope::size::stream_len;
use crate::envelope::stream::adapters::{seal_stream, Md5Slot};
use crate::envelope::stream::Sealer;
use crate::envelope::{BodyBinding, DataKey, Header, Recipient};
use crate::store::{ByteStream, ObjectInfo};

/// Decides where the header goes: inline in metadata when it fits S3's 2 KB
/// budget together with the user's metadata, else at the head of the body
/// with an overflow pointer in metadata. Returns (metadata value, body prefix).
pub fn place_header(
    header: &Header,
    dk: &DataKey,
    user_meta: &HashMap<String, String>,
    bucket: &str,
    key: &str,
) -> S3Result<(String, Option<Bytes>)> {
    let user = metadata_size(user_meta);
    let inline = header.to_meta_inline();
    if META_KEY.len() + inline.len() + user <= METADATA_LIMIT {
        return Ok((inline, None));
    }
    let pointer = MetaValue::Overflow {
        header_len: header.raw().len() as u32,
        mac: header.mac_for(dk, bucket, key),
    }
    .encode();
    if META_KEY.len() + pointer.len() + user > METADATA_LIMIT {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size."
        ));
    }
    Ok((pointer, Some(Bytes::copy_from_slice(header.raw()))))
}

/// The recipients of a new object, or AccessDenied when no policy covers it.
pub fn policy_recipients(
    gw: &Gateway,
    bucket: &str,
    key: &str,
) -> S3Result<Vec<Arc<crate::envelope::RsaOaepRecipient>>> {
    gw.keyring.recipients_for(bucket, key).ok_or_else(|| {
        s3_error!(
            AccessDenied,
            "No encryption policy of this gateway covers {bucket}/{key}; nothing was stored."
        )
    })
}

pub(crate) fn input_body(body: StreamingBlob, fault: Fault) -> ByteStream {
    Box::pin(body.map_err(move |e| {
        fault.set(body_error(&*e));
        std::io::Error::other(e)
    }))
}

/// Encrypts `body` (exactly `len` plaintext bytes) under a fresh data key for
/// `recipients` and stores it at bucket/key. Returns the plaintext ETag.
#[allow(clippy::too_many_arguments)]
pub async fn seal_and_store(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    mut headers: crate::store::ObjectHeaders,
    body: ByteStream,
    len: u64,
    recipients: &[Arc<crate::envelope::RsaOaepRecipient>],
    checks: ClientChecks,
    fault: &Fault,
) -> S3Result<String> {
    let dk = DataKey::generate().map_err(|_| s3_error!(InternalError))?;
    let salt = random_salt().map_err(|_| s3_error!(InternalError))?;
    let refs: Vec<&dyn Recipient> = recipients
        .iter()
        .map(|r| r.as_ref() as &dyn Recipient)
        .collect();
    let header = Header::seal(
        &dk,
        &refs,
        BodyBinding::Single {
            salt,
            plaintext_len: len,
        },
        bucket,
        key,
    )
    .map_err(|e| gw.format_err(e, bucket, key))?;
    let (meta_value, prefix) = place_header(&header, &dk, &headers.metadata, bucket, key)?;
    headers.metadata.insert(META_KEY.to_owned(), meta_value);
    let body_off = prefix.as_ref().map_or(0, |h| h.len() as u64);
    let md5_slot = Md5Slot::default();
    let sealer = Sealer::new(&dk, salt, 0, len);
    let sealed: ByteStream = Box::pin(seal_stream(body, sealer, checks, md5_slot.clone()));
    let (store_body, store_len): (ByteStream, u64) = match prefix {
        Some(h) => {
            let n = h.len() as u64;
            (
                Box::pin(futures::stream::once(async move { Ok(h) }).chain(sealed)),
                n + stream_len(len),
            )
        }
        None => (sealed, stream_len(len)),
    };
    let store_etag = match gw
        .store
        .put(bucket, key, store_body, store_len, &headers)
        .await
    {
        Ok(e) => e,
        Err(e) => return Err(fault.take().unwrap_or_else(|| from_store(e))),
    };
    let md5 = md5_slot
        .lock()
        .expect("md5 slot")
        .ok_or_else(|| s3_error!(InternalError, "upload finished without a digest"))?;
    let etag = hex::encode(md5);
    gw.listing.insert(
        (bucket.to_owned(), key.to_owned(), store_etag.clone()),
        ListInfo {
            etag: etag.clone(),
            size: len,
        },
    );
    // Reading back what was just written needs neither an RSA unwrap nor a
    // resolving round trip: keep the data key and this view of the object
    // (GETs guard it with the store's ETag, as any cached view).
    let dk = Arc::new(dk);
    let readable = gw.keyring.remember(&header, &dk).await;
    let id = (bucket.to_owned(), key.to_owned());
    if store_etag.is_empty() || !readable {
        gw.latest.invalidate(&id);
    } else {
        let view = Resolved {
            header,
            dk,
            layout: Layout::single(body_off, salt, len),
            etag: etag.clone(),
            size: len,
            parts: None,
            info: ObjectInfo {
                size: store_len,
                etag: store_etag,
                last_modified: std::time::SystemTime::now(),
                headers,
            },
        };
        gw.latest.insert(id, Arc::new(view));
    }
    Ok(etag)
}

pub async fn put_object(
    gw: &Gateway,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let S3Request {
        input,
        trailing_headers,
        ..
    } = req;
    let bucket = input.bucket;
    let key = input.key;
    check_key(&key)?;
    check_user_metadata(&input.metadata)?;
    if input.if_match.is_some() || input.if_none_match.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "conditional PutObject is not supported"
        ));
    }
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
    let recipients = policy_recipients(gw, &bucket, &key)?;
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
    let headers = object_headers(
        input.metadata,
        input.content_type,
        input.content_encoding,
        input.content_disposition,
        input.content_language,
        input.cache_control,
        input.expires,
    );
    let fault = Fault::default();
    let checks = ClientChecks::new(expected, trailing_headers, fault.clone());
    let computed = checks.computed.clone();
    let etag = seal_and_store(
        gw,
        &bucket,
        &key,
        headers,
        input_body(body, fault.clone()),
        len,
        &recipients,
        checks,
        &fault,
    )
    .await?;
    let sums = computed.lock().expect("lock").clone();
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(ETag::Strong(etag)),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        ..Default::default()
    }))
}

/// The manifest key of a stored multipart object, if it is one.
async fn manifest_of(gw: &Gateway, bucket: &str, key: &str) -> Option<String> {
    let info = gw.store.head(bucket, key).await.ok()?;
    let meta = info.headers.metadata.get(META_KEY)?;
    let MetaValue::Inline(raw) = MetaValue::decode(meta).ok()? else {
        return None;
    };
    match Header::parse(&raw).ok()?.binding {
        BodyBinding::Multipart { upload_id } => Some(manifest_key(&upload_id)),
        BodyBinding::Single { .. } => None,
    }
}

pub async fn delete_object(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let (bucket, key) = (req.input.bucket, req.input.key);
    check_key(&key)?;
    let manifest = manifest_of(gw, &bucket, &key).await;
    gw.store.delete(&bucket, &key).await.map_err(from_store)?;
    gw.latest.invalidate(&(bucket.clone(), key.clone()));
    if let Some(m) = manifest {
        if let Err(e) = gw.store.delete(&bucket, &m).await {
            tracing::warn!(bucket, key, error = %e, "could not delete a multipart manifest");
        }
    }
    Ok(S3Response::new(DeleteObjectOutput::default()))
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
    let mut refused = Vec::new();
    let mut keys = Vec::new();
    for o in objects {
        if o.key.starts_with(super::HIDDEN_PREFIX) {
            refused.push(Error {
                key: Some(o.key),
                code: Some("AccessDenied".into()),
                message: Some("reserved by sealgate".into()),
                version_id: None,
            });
        } else {
            keys.push(o.key);
        }
    }
    let manifests: Vec<String> = futures::stream::iter(keys.clone())
        .map(|k| {
            let b = bucket.clone();
            async move { manifest_of(gw, &b, &k).await }
        })
        .buffer_unordered(gw.list_concurrency)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    let results = gw
        .store
        .delete_many(&bucket, &keys)
        .await
        .map_err(from_store)?;
    if !manifests.is_empty() {
        if let Err(e) = gw.store.delete_many(&bucket, &manifests).await {
            tracing::warn!(bucket, error = %e, "could not delete multipart manifests");
        }
    }
    let mut deleted = Vec::new();
    let mut errors = refused;
    for (k, err) in results {
        match err {
            None => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(k),
                        ..Default::default()
                    })
                }
            }
            Some(e) => errors.push(Error {
                key: Some(k),
                code: Some(e.code),
                message: Some(e.message),
                version_id: None,
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
