//! Stateless multipart uploads. The upload id the client holds carries the
//! data key sealed under the gateway secret; each part is its own stream with
//! a fresh salt (so a re-uploaded part never reuses a nonce); completion
//! writes an authenticated manifest of the parts, then completes at the store.
//!
//! While an upload is in progress the store also keeps, under
//! `.sealgate/up/<upload>/`, its header (`id`: the data key wrapped for the
//! recipients, as in the object's metadata) and each part's ETag, sealed
//! (`<part>`), so that ListMultipartUploads answers the upload ids
//! CreateMultipartUpload gave and ListParts the ETags UploadPart gave: a client
//! that resumes an upload finds it, lists its parts and completes it. They go
//! when the upload completes or is aborted.

use std::collections::HashMap;

use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::stream::ByteStream as _;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::checksum::{ClientChecks, Expected, Fault};
use super::error::from_store;
use super::object::{manifest_key, ListInfo};
use super::put::{input_body, place_header, policy_recipients};
use super::token::{TokenKey, UploadToken};
use super::{check_key, check_user_metadata, object_headers, Gateway, HIDDEN_PREFIX, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::keys::random_salt;
use crate::envelope::manifest::{Manifest, ManifestPart, MAX_PARTS};
use crate::envelope::size::{plaintext_len, stream_len};
use crate::envelope::stream::adapters::{seal_stream, Md5Slot};
use crate::envelope::stream::Sealer;
use crate::envelope::{BodyBinding, DataKey, Header, Recipient};
use crate::store::{ByteStream, ListRequest};

/// Upload ids of listed uploads that this gateway cannot issue a real id for
/// (no kept header, or no key for it) start with this; they can only be
/// aborted.
const STORE_ID_PREFIX: &str = "store.";
const MIN_PART: u64 = 5 * 1024 * 1024;
const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;

fn open_token(gw: &Gateway, id: &str, bucket: &str, key: &str) -> S3Result<UploadToken> {
    gw.tokens.open(id, bucket, key).ok_or_else(|| {
        s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        )
    })
}

pub async fn create(
    gw: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    check_user_metadata(&i.metadata)?;
    let recipients = policy_recipients(gw, &i.bucket, &i.key)?;
    let mut headers = object_headers(
        i.metadata,
        i.content_type,
        i.content_encoding,
        i.content_disposition,
        i.content_language,
        i.cache_control,
        i.expires,
    );
    let dk = DataKey::generate().map_err(|_| s3_error!(InternalError))?;
    let upload_id: [u8; 16] = random_salt().map_err(|_| s3_error!(InternalError))?;
    let refs: Vec<&dyn Recipient> = recipients
        .iter()
        .map(|r| r.as_ref() as &dyn Recipient)
        .collect();
    let header = Header::seal(
        &dk,
        &refs,
        BodyBinding::Multipart { upload_id },
        &i.bucket,
        &i.key,
    )
    .map_err(|e| gw.format_err(e, &i.bucket, &i.key))?;
    let (meta, prefix) = place_header(&header, &dk, &headers.metadata, &i.bucket, &i.key)?;
    if prefix.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "this policy's envelope does not fit in object metadata; multipart uploads need fewer or smaller recipient keys"
        ));
    }
    headers.metadata.insert(META_KEY.to_owned(), meta.clone());
    let store_upload_id = gw
        .store
        .create_multipart(&i.bucket, &i.key, &headers)
        .await
        .map_err(from_store)?;
    // For ListMultipartUploads (the store lists no upload's metadata). A
    // failure costs only that: the listing then shows a `store.` id.
    let rk = upload_record_key(&store_upload_id);
    if let Err(e) = gw.put_small(&i.bucket, &rk, meta.into_bytes().into()).await {
        tracing::warn!(bucket = i.bucket, error = %e, "could not keep an upload's header for ListMultipartUploads");
    }
    let token = gw.tokens.seal(
        &UploadToken {
            dk,
            upload_id,
            store_upload_id,
        },
        &i.bucket,
        &i.key,
    );
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(token),
        ..Default::default()
    }))
}

fn check_part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PARTS as i32).contains(&n) {
        Ok(n as u32)
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ))
    }
}

/// Encrypts one part's plaintext stream and uploads it; returns the part ETag.
#[allow(clippy::too_many_arguments)]
async fn upload_stream(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    t: &UploadToken,
    part: u32,
    body: ByteStream,
    len: u64,
    checks: ClientChecks,
    fault: &Fault,
) -> S3Result<String> {
    let salt = random_salt().map_err(|_| s3_error!(InternalError))?;
    let md5_slot = Md5Slot::default();
    let sealer = Sealer::new(&t.dk, salt, part, len);
    let sealed: ByteStream = Box::pin(seal_stream(body, sealer, checks, md5_slot.clone()));
    let store_etag = match gw
        .store
        .upload_part(
            bucket,
            key,
            &t.store_upload_id,
            part as i32,
            sealed,
            stream_len(len),
        )
        .await
    {
        Ok(e) => e,
        Err(e) => return Err(fault.take().unwrap_or_else(|| from_store(e))),
    };
    let md5 = md5_slot
        .lock()
        .expect("md5 slot")
        .ok_or_else(|| s3_error!(InternalError, "part finished without a digest"))?;
    let etag = gw
        .tokens
        .part_etag(&t.store_upload_id, part, &md5, &salt, &store_etag);
    keep_part_tag(gw, bucket, &t.store_upload_id, part, &etag).await;
    Ok(etag)
}

/// Store key prefix of what is kept about an upload in progress: named after
/// its store upload id, so an abort by a listed `store.` id finds it too.
fn part_tag_prefix(store_upload_id: &str) -> String {
    use aws_lc_rs::digest::{digest, SHA256};
    let d = digest(&SHA256, store_upload_id.as_bytes());
    format!("{HIDDEN_PREFIX}up/{}/", hex::encode(&d.as_ref()[..16]))
}

/// Store key of the header kept for an upload in progress.
fn upload_record_key(store_upload_id: &str) -> String {
    format!("{}id", part_tag_prefix(store_upload_id))
}

/// The upload id CreateMultipartUpload gave for a listed store upload: its
/// kept header, opened with one of this gateway's identities, gives the data
/// key, and sealing is deterministic. `None` when there is no record, or this
/// gateway holds no key for it (a write-only gateway).
async fn listed_upload_id(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    store_upload_id: &str,
) -> Option<String> {
    let raw = gw
        .read_small(bucket, &upload_record_key(store_upload_id), 8192)
        .await
        .ok()??;
    let meta = String::from_utf8(raw).ok()?;
    let MetaValue::Inline(h) = MetaValue::decode(&meta).ok()? else {
        return None;
    };
    let header = Header::parse(&h).ok()?;
    let dk = gw.keyring.unwrap(&header).await.ok()?;
    header.authenticate(&dk, bucket, key).ok()?;
    let BodyBinding::Multipart { upload_id } = header.binding else {
        return None;
    };
    let t = UploadToken {
        dk: DataKey::from_slice(dk.expose()).ok()?,
        upload_id,
        store_upload_id: store_upload_id.to_owned(),
    };
    Some(gw.tokens.seal(&t, bucket, key))
}

fn part_tag_key(store_upload_id: &str, part: u32) -> String {
    format!("{}{part:05}", part_tag_prefix(store_upload_id))
}

/// Keeps a part's ETag at the store for ListParts. A failure costs only that
/// (ListParts then shows the store's ETag for the part), so it is logged, and
/// the part, which is safely at the store, is not failed for it.
async fn keep_part_tag(gw: &Gateway, bucket: &str, store_upload_id: &str, part: u32, etag: &str) {
    let raw = gw.tokens.seal_part_tag(store_upload_id, part, etag);
    let key = part_tag_key(store_upload_id, part);
    if let Err(e) = gw.put_small(bucket, &key, raw.into()).await {
        tracing::warn!(bucket, part, error = %e, "could not keep a part's ETag for ListParts");
    }
}

/// The ETag UploadPart gave for the part the store holds now, if its kept
/// tag is there, opens, and matches that part.
async fn kept_part_etag(
    gw: &Gateway,
    bucket: &str,
    store_upload_id: &str,
    part: i32,
    store_etag: &str,
) -> Option<String> {
    let part = u32::try_from(part).ok()?;
    let key = part_tag_key(store_upload_id, part);
    let raw = gw.read_small(bucket, &key, 1024).await.ok()??;
    let etag = gw.tokens.open_part_tag(store_upload_id, part, &raw)?;
    let tag = TokenKey::parse_part_etag(&etag)?;
    gw.tokens
        .verify_part(&tag, store_upload_id, part, store_etag)
        .then_some(etag)
}

/// Deletes the kept part tags of an upload that is over. Failures are logged:
/// a left tag is a small hidden object that no listing shows.
async fn forget_part_tags(
    gw: &Gateway,
    bucket: &str,
    store_upload_id: &str,
    known: Option<Vec<i32>>,
) {
    let prefix = part_tag_prefix(store_upload_id);
    if let Some(parts) = known {
        let keys: Vec<String> = parts
            .into_iter()
            .filter_map(|n| u32::try_from(n).ok())
            .map(|n| part_tag_key(store_upload_id, n))
            .chain([upload_record_key(store_upload_id)])
            .collect();
        for chunk in keys.chunks(1000) {
            if let Err(e) = gw.store.delete_many(bucket, chunk).await {
                tracing::warn!(bucket, error = %e, "could not delete the kept part ETags of an upload");
            }
        }
        return;
    }
    // Ten pages hold the 10,000 parts an upload may have.
    for _ in 0..=MAX_PARTS / 1000 {
        let req = ListRequest {
            prefix: Some(prefix.clone()),
            max_keys: 1000,
            ..Default::default()
        };
        let page = match gw.store.list(bucket, &req).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(bucket, error = %e, "could not list the kept part ETags of an upload");
                return;
            }
        };
        let keys: Vec<String> = page.entries.into_iter().map(|e| e.key).collect();
        if keys.is_empty() {
            return;
        }
        if let Err(e) = gw.store.delete_many(bucket, &keys).await {
            tracing::warn!(bucket, error = %e, "could not delete the kept part ETags of an upload");
            return;
        }
        if !page.is_truncated {
            return;
        }
    }
}

pub async fn upload_part(
    gw: &Gateway,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let S3Request {
        input: i,
        trailing_headers,
        ..
    } = req;
    let part = check_part_number(i.part_number)?;
    let t = open_token(gw, &i.upload_id, &i.bucket, &i.key)?;
    let body = i.body.ok_or_else(|| s3_error!(IncompleteBody))?;
    let len = i
        .content_length
        .map(|l| l.max(0) as u64)
        .or_else(|| body.remaining_length().exact().map(|n| n as u64))
        .ok_or_else(|| s3_error!(MissingContentLength))?;
    if len > MAX_PART {
        return Err(s3_error!(EntityTooLarge, "a part may be at most 5 GiB"));
    }
    let expected = Expected::parse(
        i.content_md5.as_deref(),
        Checksum {
            checksum_crc32: i.checksum_crc32,
            checksum_crc32c: i.checksum_crc32c,
            checksum_crc64nvme: i.checksum_crc64nvme,
            checksum_sha1: i.checksum_sha1,
            checksum_sha256: i.checksum_sha256,
            ..Default::default()
        },
        i.checksum_algorithm.as_ref(),
        trailing_headers.is_some(),
    )?;
    let fault = Fault::default();
    let checks = ClientChecks::new(expected, trailing_headers, fault.clone());
    let computed = checks.computed.clone();
    let etag = upload_stream(
        gw,
        &i.bucket,
        &i.key,
        &t,
        part,
        input_body(body, fault.clone()),
        len,
        checks,
        &fault,
    )
    .await?;
    let sums = computed.lock().expect("lock").clone();
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(etag)),
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        ..Default::default()
    }))
}

pub async fn upload_part_copy(
    gw: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let i = req.input;
    let part = check_part_number(i.part_number)?;
    let t = open_token(gw, &i.upload_id, &i.bucket, &i.key)?;
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
    // The source has another data key: its plaintext passes through sealgate
    // and is encrypted again for this upload.
    let (stream, len) =
        super::copy::read_plaintext(gw, sb, sk, i.copy_source_range.as_deref()).await?;
    let fault = Fault::default();
    let checks = ClientChecks::new(Expected::default(), None, fault.clone());
    let etag = upload_stream(gw, &i.bucket, &i.key, &t, part, stream, len, checks, &fault).await?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(etag)),
            last_modified: Some(Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

pub async fn complete(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let i = req.input;
    let t = open_token(gw, &i.upload_id, &i.bucket, &i.key)?;
    let parts = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    if parts.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "You must specify at least one part"
        ));
    }
    // The object this upload replaces: its manifest goes once this one is
    // in place (asked alongside the part list, so at no extra latency).
    let (listed, previous) = futures::join!(
        gw.store.list_parts(&i.bucket, &i.key, &t.store_upload_id),
        upload_id_at(gw, &i.bucket, &i.key)
    );
    let stored: HashMap<i32, crate::store::PartInfo> = match listed {
        Ok(ps) => ps.into_iter().map(|p| (p.part_number, p)).collect(),
        Err(e) => {
            // A retry of a Complete that succeeded (its answer lost): the same
            // answer again, as S3 gives.
            if e.code == "NoSuchUpload" {
                if let Some(etag) = completed_as(gw, &i.bucket, &i.key, &t, &parts).await {
                    return Ok(completed(i.bucket, i.key, etag));
                }
            }
            return Err(from_store(e));
        }
    };
    let invalid = || {
        s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
        )
    };
    let mut prev = 0i32;
    let mut manifest_parts = Vec::with_capacity(parts.len());
    let mut store_parts = Vec::with_capacity(parts.len());
    let mut md5s = Vec::with_capacity(parts.len() * 16);
    for (idx, p) in parts.iter().enumerate() {
        let n = p.part_number.ok_or_else(invalid)?;
        if n <= prev {
            return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order. The parts list must be specified in order by part number."));
        }
        prev = n;
        let tag = p
            .e_tag
            .as_ref()
            .and_then(|e| TokenKey::parse_part_etag(e.value()))
            .ok_or_else(invalid)?;
        let sp = stored.get(&n).ok_or_else(invalid)?;
        if !gw
            .tokens
            .verify_part(&tag, &t.store_upload_id, n as u32, &sp.etag)
        {
            return Err(invalid());
        }
        let plen = plaintext_len(sp.size).ok_or_else(invalid)?;
        if idx + 1 < parts.len() && plen < MIN_PART {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size."
            ));
        }
        md5s.extend_from_slice(&tag.md5);
        manifest_parts.push(ManifestPart {
            number: n as u32,
            plaintext_len: plen,
            salt: tag.salt,
        });
        store_parts.push((n, sp.etag.clone()));
    }
    let etag_md5: [u8; 16] = Md5::digest(&md5s).into();
    let total: u64 = manifest_parts.iter().map(|p| p.plaintext_len).sum();
    let manifest = Manifest::seal(
        &t.dk,
        None,
        manifest_parts,
        &etag_md5,
        &i.bucket,
        &i.key,
        &t.upload_id,
    )
    .map_err(|e| gw.format_err(e, &i.bucket, &i.key))?;
    let mkey = manifest_key(&t.upload_id);
    gw.put_small(
        &i.bucket,
        &mkey,
        bytes::Bytes::copy_from_slice(manifest.raw()),
    )
    .await
    .map_err(from_store)?;
    let store_etag = match gw
        .store
        .complete_multipart(&i.bucket, &i.key, &t.store_upload_id, &store_parts)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            // Another Complete of this upload (a client's retry, another
            // gateway) may have won at the store: the manifest is then the
            // object's own and must stay.
            if let Some(etag) = completed_as(gw, &i.bucket, &i.key, &t, &parts).await {
                return Ok(completed(i.bucket, i.key, etag));
            }
            match upload_id_at(gw, &i.bucket, &i.key).await {
                Ok(Some(id)) if id == t.upload_id => {}
                Ok(_) => {
                    let _ = gw.store.delete(&i.bucket, &mkey).await;
                }
                Err(()) => {}
            }
            return Err(from_store(e));
        }
    };
    if let Ok(Some(old)) = previous {
        if old != t.upload_id {
            if let Err(e) = gw.store.delete(&i.bucket, &manifest_key(&old)).await {
                tracing::warn!(bucket = i.bucket, key = i.key, error = %e, "could not delete the manifest of a replaced object");
            }
        }
    }
    forget_part_tags(
        gw,
        &i.bucket,
        &t.store_upload_id,
        Some(stored.keys().copied().collect()),
    )
    .await;
    let etag = format!("{}-{}", hex::encode(etag_md5), store_parts.len());
    gw.listing.insert(
        (i.bucket.clone(), i.key.clone(), store_etag),
        ListInfo {
            etag: etag.clone(),
            size: total,
        },
    );
    Ok(completed(i.bucket, i.key, etag))
}

fn completed(
    bucket: String,
    key: String,
    etag: String,
) -> S3Response<CompleteMultipartUploadOutput> {
    S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(bucket),
        key: Some(key),
        e_tag: Some(ETag::Strong(etag)),
        ..Default::default()
    })
}

/// The upload id of the object at `bucket/key` when it is a multipart
/// object, `Ok(None)` when there is none or it is not one; `Err` when the
/// store cannot tell.
async fn upload_id_at(gw: &Gateway, bucket: &str, key: &str) -> Result<Option<[u8; 16]>, ()> {
    let info = match gw.store.head(bucket, key).await {
        Ok(info) => info,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(_) => return Err(()),
    };
    let header = info
        .headers
        .metadata
        .get(META_KEY)
        .and_then(|m| match MetaValue::decode(m) {
            Ok(MetaValue::Inline(raw)) => Header::parse(&raw).ok(),
            _ => None,
        });
    Ok(match header.map(|h| h.binding) {
        Some(BodyBinding::Multipart { upload_id }) => Some(upload_id),
        _ => None,
    })
}

/// The ETag of the object at `bucket/key` when it is this upload completed
/// with exactly these parts (numbers and stream salts): by an earlier
/// Complete whose answer was lost, or by a concurrent one.
async fn completed_as(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    t: &UploadToken,
    parts: &[CompletedPart],
) -> Option<String> {
    let want = parts
        .iter()
        .map(|p| {
            let tag = TokenKey::parse_part_etag(p.e_tag.as_ref()?.value())?;
            Some((u32::try_from(p.part_number?).ok()?, tag.salt))
        })
        .collect::<Option<Vec<_>>>()?;
    let r = gw.resolve_tail(bucket, key).await.ok()?;
    let have: Vec<_> = r.layout.parts.iter().map(|p| (p.number, p.salt)).collect();
    (r.header.binding
        == BodyBinding::Multipart {
            upload_id: t.upload_id,
        }
        && have == want)
        .then(|| r.etag.clone())
}

pub async fn abort(
    gw: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let i = req.input;
    let store_id = match i.upload_id.strip_prefix(STORE_ID_PREFIX) {
        Some(id) => id.to_owned(),
        None => open_token(gw, &i.upload_id, &i.bucket, &i.key)?.store_upload_id,
    };
    gw.store
        .abort_multipart(&i.bucket, &i.key, &store_id)
        .await
        .map_err(from_store)?;
    forget_part_tags(gw, &i.bucket, &store_id, None).await;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(
    gw: &Gateway,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let i = req.input;
    let t = open_token(gw, &i.upload_id, &i.bucket, &i.key)?;
    let marker: i32 = i.part_number_marker.unwrap_or(0);
    let max = i.max_parts.unwrap_or(1000).clamp(1, 1000) as usize;
    let all = gw
        .store
        .list_parts(&i.bucket, &i.key, &t.store_upload_id)
        .await
        .map_err(from_store)?;
    let rest: Vec<_> = all.into_iter().filter(|p| p.part_number > marker).collect();
    let truncated = rest.len() > max;
    let page: Vec<_> = rest.into_iter().take(max).collect();
    let next = page.last().map(|p| p.part_number);
    let sid = &t.store_upload_id;
    let bucket = &i.bucket;
    let etags: Vec<String> = futures::stream::iter(
        page.iter()
            .map(|p| (p.part_number, p.etag.clone()))
            .collect::<Vec<_>>(),
    )
    .map(|(n, store_etag)| async move {
        kept_part_etag(gw, bucket, sid, n, &store_etag)
            .await
            .unwrap_or(store_etag)
    })
    .buffered(8)
    .collect()
    .await;
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: if truncated { next } else { None },
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(
            page.into_iter()
                .zip(etags)
                .map(|(p, etag)| Part {
                    part_number: Some(p.part_number),
                    size: Some(plaintext_len(p.size).unwrap_or(p.size) as i64),
                    e_tag: Some(ETag::Strong(etag)),
                    last_modified: Some(Timestamp::from(p.last_modified)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}

pub async fn list_uploads(
    gw: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let i = req.input;
    let ups = gw
        .store
        .list_uploads(&i.bucket, i.prefix.as_deref())
        .await
        .map_err(from_store)?;
    let max = i.max_uploads.unwrap_or(1000).clamp(1, 1000) as usize;
    let mut visible: Vec<_> = ups
        .into_iter()
        .filter(|u| !u.key.starts_with(super::HIDDEN_PREFIX))
        .collect();
    // S3's order, by key then initiation (some stores list in another).
    visible.sort_by(|a, b| {
        a.key
            .cmp(&b.key)
            .then(a.initiated.cmp(&b.initiated))
            .then(a.upload_id.cmp(&b.upload_id))
    });
    // Pages: after the key marker, or after the upload the two markers name
    // (its id as this gateway gave it), in the store's order.
    let key_marker = i.key_marker.clone().filter(|m| !m.is_empty());
    let start = match &key_marker {
        None => 0,
        Some(km) => {
            let marked = i
                .upload_id_marker
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| match m.strip_prefix(STORE_ID_PREFIX) {
                    Some(sid) => sid.to_owned(),
                    None => gw
                        .tokens
                        .open(m, &i.bucket, km)
                        .map(|t| t.store_upload_id)
                        .unwrap_or_default(),
                });
            let at = marked.and_then(|sid| {
                visible
                    .iter()
                    .position(|u| &u.key == km && u.upload_id == sid)
            });
            match at {
                Some(p) => p + 1,
                None => visible
                    .iter()
                    .position(|u| u.key.as_str() > km.as_str())
                    .unwrap_or(visible.len()),
            }
        }
    };
    let truncated = visible.len() - start > max;
    let bucket = &i.bucket;
    let uploads: Vec<MultipartUpload> = futures::stream::iter(
        visible
            .into_iter()
            .skip(start)
            .take(max)
            .collect::<Vec<_>>(),
    )
    .map(|u| async move {
        let id = listed_upload_id(gw, bucket, &u.key, &u.upload_id)
            .await
            .unwrap_or_else(|| format!("{STORE_ID_PREFIX}{}", u.upload_id));
        MultipartUpload {
            key: Some(u.key),
            upload_id: Some(id),
            initiated: Some(Timestamp::from(u.initiated)),
            ..Default::default()
        }
    })
    .buffered(8)
    .collect()
    .await;
    let (next_key_marker, next_upload_id_marker) = match uploads.last() {
        Some(u) if truncated => (u.key.clone(), u.upload_id.clone()),
        _ => (None, None),
    };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        next_key_marker,
        next_upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        uploads: Some(uploads),
        ..Default::default()
    }))
}
