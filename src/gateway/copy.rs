//! CopyObject: a server-side copy at the store with a header rewritten for
//! the new name and the destination's policy (same data key, no content
//! passes through sealgate), and the plaintext reader UploadPartCopy uses.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::body::decrypt_plan;
use super::error::from_store;
use super::get::check_conditions;
use super::object::{manifest_key, ListInfo, Resolved};
use super::put::{place_header, policy_recipients};
use super::{check_key, check_user_metadata, object_headers, Gateway, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::keys::random_salt;
use crate::envelope::manifest::{Manifest, ManifestPart};
use crate::envelope::BodyBinding;
use crate::keyring::Keyring;
use crate::store::{ByteStream, ObjectHeaders};

/// Largest object a single store CopyObject may copy.
pub(crate) const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// Part size for copies through the multipart path.
const COPY_PART: u64 = 1024 * 1024 * 1024;

/// The plaintext of `bucket/key`, optionally a `bytes=a-b` range of it.
pub async fn read_plaintext(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    range: Option<&str>,
) -> S3Result<(ByteStream, u64)> {
    let r = gw.resolve_tail(bucket, key).await?;
    let (a, b) = match range {
        None => (0, r.size),
        Some(s) => {
            let rg = Range::parse(s)
                .map_err(|_| s3_error!(InvalidArgument, "invalid x-amz-copy-source-range"))?;
            let rr = rg.check(r.size)?;
            (rr.start, rr.end)
        }
    };
    let plan = if (a, b) == (0, r.size) {
        r.layout.plan_full()
    } else {
        r.layout
            .plan_range(a, b - 1)
            .ok_or_else(|| s3_error!(InvalidRange))?
    };
    let (_, s) = gw
        .store
        .get(
            bucket,
            key,
            Some((plan.ct_start, plan.ct_end)),
            Some(&r.info.etag),
        )
        .await
        .map_err(from_store)?;
    Ok((decrypt_plan(s, plan, &r.layout, &r.dk), b - a))
}

fn copy_failed(e: s3s::S3Error) -> s3s::S3Error {
    match e.code() {
        s3s::S3ErrorCode::PreconditionFailed | s3s::S3ErrorCode::NotModified => {
            s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            )
        }
        _ => e,
    }
}

pub async fn copy_object(
    gw: &Gateway,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let i = req.input;
    let CopySource::Bucket {
        bucket: sb,
        key: sk,
        version_id,
    } = &i.copy_source
    else {
        return Err(s3_error!(
            NotImplemented,
            "access point copy sources are not supported"
        ));
    };
    if version_id.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "versioned copy sources are not supported"
        ));
    }
    let (sb, sk) = (sb.to_string(), sk.to_string());
    check_key(&sk)?;
    check_key(&i.key)?;
    let replace = i
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if sb == i.bucket && sk == i.key && !replace {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    if replace {
        check_user_metadata(&i.metadata)?;
    }
    let src = gw.resolve_tail(&sb, &sk).await?;
    check_conditions(
        &src.etag,
        src.info.last_modified,
        i.copy_source_if_match.as_ref(),
        i.copy_source_if_none_match.as_ref(),
        i.copy_source_if_modified_since.as_ref(),
        i.copy_source_if_unmodified_since.as_ref(),
    )
    .map_err(copy_failed)?;
    let mut headers: ObjectHeaders = if replace {
        object_headers(
            i.metadata,
            i.content_type,
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires,
        )
    } else {
        let mut h = src.info.headers.clone();
        h.metadata.remove(META_KEY);
        h
    };
    let meta = rebind(gw, &src, &sb, &i.bucket, &i.key, &headers).await?;
    headers.metadata.insert(META_KEY.to_owned(), meta);
    let (store_etag, mtime) = if src.info.size > MAX_SINGLE_COPY {
        copy_large(gw, &sb, &sk, &i.bucket, &i.key, &headers, &src).await?
    } else {
        gw.store
            .copy(&sb, &sk, &i.bucket, &i.key, &headers, Some(&src.info.etag))
            .await
            .map_err(from_store)?
    };
    gw.listing.insert(
        (i.bucket.clone(), i.key.clone(), store_etag),
        ListInfo {
            etag: src.etag.clone(),
            size: src.size,
        },
    );
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(src.etag.clone())),
            last_modified: Some(Timestamp::from(mtime)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// The `sg` metadata value of the copy: the source's header rebound to the
/// destination name, wrapped for the destination policy's recipients. For a
/// multipart source, also writes the destination's manifest.
async fn rebind(
    gw: &Gateway,
    src: &Resolved,
    src_bucket: &str,
    dst_bucket: &str,
    dst_key: &str,
    headers: &ObjectHeaders,
) -> S3Result<String> {
    let fe = |e| gw.format_err(e, dst_bucket, dst_key);
    let overflow = src.layout.parts.first().is_some_and(|p| p.ct_offset > 0);
    if overflow {
        // The body begins with the source header, which a server-side copy
        // cannot change: keep its recipients, rebind it by a new pointer MAC.
        return Ok(MetaValue::Overflow {
            header_len: src.header.raw().len() as u32,
            mac: src.header.mac_for(&src.dk, dst_bucket, dst_key),
        }
        .encode());
    }
    let recipients = policy_recipients(gw, dst_bucket, dst_key)?;
    let stanzas = Keyring::wrap_for(&src.dk, &recipients).map_err(fe)?;
    match src.header.binding {
        BodyBinding::Single { .. } => {
            let h = src
                .header
                .rebind(
                    &src.dk,
                    Some(stanzas),
                    src.header.binding,
                    dst_bucket,
                    dst_key,
                )
                .map_err(fe)?;
            let (meta, prefix) = place_header(&h, &src.dk, &headers.metadata, dst_bucket, dst_key)?;
            if prefix.is_none() {
                return Ok(meta);
            }
            // The destination's envelope would need the body: keep the source
            // recipients, which fit.
            let h = src
                .header
                .rebind(&src.dk, None, src.header.binding, dst_bucket, dst_key)
                .map_err(fe)?;
            Ok(h.to_meta_inline())
        }
        BodyBinding::Multipart { .. } => {
            let upload_id = random_salt().map_err(|_| s3_error!(InternalError))?;
            let h = src
                .header
                .rebind(
                    &src.dk,
                    Some(stanzas),
                    BodyBinding::Multipart { upload_id },
                    dst_bucket,
                    dst_key,
                )
                .map_err(fe)?;
            let (meta, prefix) = place_header(&h, &src.dk, &headers.metadata, dst_bucket, dst_key)?;
            if prefix.is_some() {
                return Err(s3_error!(
                    NotImplemented,
                    "the destination policy's envelope does not fit in metadata"
                ));
            }
            let md5: [u8; 16] = hex::decode(src.etag.split('-').next().unwrap_or_default())
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| s3_error!(InternalError))?;
            let parts = src
                .layout
                .parts
                .iter()
                .map(|p| ManifestPart {
                    number: p.number,
                    plaintext_len: p.plaintext_len,
                    salt: p.salt,
                })
                .collect();
            let m = Manifest::seal(&src.dk, None, parts, &md5, dst_bucket, dst_key, &upload_id)
                .map_err(fe)?;
            gw.put_small(
                dst_bucket,
                &manifest_key(&upload_id),
                bytes::Bytes::copy_from_slice(m.raw()),
            )
            .await
            .map_err(from_store)?;
            let _ = src_bucket;
            Ok(meta)
        }
    }
}

/// Copies an object over 5 GiB through a multipart copy at the store (still
/// server-side: no content passes through sealgate).
pub(crate) async fn copy_large(
    gw: &Gateway,
    sb: &str,
    sk: &str,
    db: &str,
    dk: &str,
    headers: &ObjectHeaders,
    src: &Resolved,
) -> S3Result<(String, std::time::SystemTime)> {
    let id = gw
        .store
        .create_multipart(db, dk, headers)
        .await
        .map_err(from_store)?;
    let res: S3Result<String> = async {
        let mut parts = Vec::new();
        let mut off = 0u64;
        let mut n = 1i32;
        while off < src.info.size {
            let end = (off + COPY_PART).min(src.info.size);
            let e = gw
                .store
                .upload_part_copy(
                    db,
                    dk,
                    &id,
                    n,
                    sb,
                    sk,
                    Some((off, end)),
                    Some(&src.info.etag),
                )
                .await
                .map_err(from_store)?;
            parts.push((n, e));
            off = end;
            n += 1;
        }
        gw.store
            .complete_multipart(db, dk, &id, &parts)
            .await
            .map_err(from_store)
    }
    .await;
    match res {
        Ok(e) => Ok((e, std::time::SystemTime::now())),
        Err(err) => {
            let _ = gw.store.abort_multipart(db, dk, &id).await;
            Err(err)
        }
    }
}
