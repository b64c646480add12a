//! GetObject and HeadObject: resolve, evaluate conditions on the plaintext
//! ETag, plan the ciphertext that serves the requested bytes, stream it
//! through the decryptor. GetObjectAttributes: what HEAD knows, from the
//! same authenticated resolution, and the parts of a multipart object.

use std::sync::Arc;
use std::time::SystemTime;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::body::{blob, decrypt_plan};
use super::error::from_store;
use super::object::Resolved;
use super::{check_key, parse_http_date, visible_metadata, Gateway, META_KEY};

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(_) => 0,
    }
}

fn ts_secs(t: &Timestamp) -> i64 {
    let odt: time::OffsetDateTime = t.clone().into();
    odt.unix_timestamp()
}

/// RFC 7232 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.
pub(crate) fn check_conditions(
    etag: &str,
    last_modified: SystemTime,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let matches = |c: &ETagCondition| c.is_any() || c.as_etag().is_some_and(|e| e.value() == etag);
    let lm = secs(last_modified);
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    } else if let Some(t) = if_unmodified_since {
        if lm > ts_secs(t) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(not_modified(etag, last_modified));
        }
    } else if let Some(t) = if_modified_since {
        if lm <= ts_secs(t) {
            return Err(not_modified(etag, last_modified));
        }
    }
    Ok(())
}

/// 304 Not Modified, with the ETag and Last-Modified a client keeps its
/// cache consistent with (S3 sends both).
fn not_modified(etag: &str, last_modified: SystemTime) -> s3s::S3Error {
    let mut e = s3_error!(NotModified);
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
        h.insert(http::header::ETAG, v);
    }
    if let Some(v) = super::http_date(&Timestamp::from(last_modified))
        .and_then(|d| http::HeaderValue::from_str(&d).ok())
    {
        h.insert(http::header::LAST_MODIFIED, v);
    }
    e.set_headers(h);
    e
}

/// The object's sealed checksums, for a response to a request with
/// `x-amz-checksum-mode: ENABLED` for the whole object.
fn checksums(
    r: &Resolved,
    mode: Option<&ChecksumMode>,
    whole: bool,
) -> (Checksum, Option<ChecksumType>) {
    let enabled = mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED));
    if !enabled || !whole || r.checksums.is_empty() {
        return (Checksum::default(), None);
    }
    let t = if r.parts.is_some() {
        ChecksumType::COMPOSITE
    } else {
        ChecksumType::FULL_OBJECT
    };
    (
        super::checksum::checksum_of(&r.checksums, r.parts),
        Some(ChecksumType::from_static(t)),
    )
}

/// A part number the object does not have (S3 answers InvalidPart).
fn no_such_part() -> s3s::S3Error {
    s3_error!(
        InvalidPart,
        "The requested part number is not satisfiable: the object has no such part."
    )
}

/// The plaintext byte range `[start, end)` asked for, and its Content-Range.
fn requested_range(
    r: &Resolved,
    range: Option<&Range>,
    part_number: Option<i32>,
) -> S3Result<(u64, u64, Option<String>)> {
    if let Some(pn) = part_number {
        if range.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "Range and partNumber cannot be combined"
            ));
        }
        let (a, b) = match r.parts {
            None if pn == 1 => (0, r.size),
            Some(_) => {
                let p = r
                    .layout
                    .parts
                    .iter()
                    .find(|p| p.number == pn as u32)
                    .ok_or_else(no_such_part)?;
                (p.pt_offset, p.pt_offset + p.plaintext_len)
            }
            None => return Err(no_such_part()),
        };
        let cr = (b > a).then(|| format!("bytes {}-{}/{}", a, b - 1, r.size));
        return Ok((a, b, cr));
    }
    match range {
        None => Ok((0, r.size, None)),
        Some(rg) => {
            let rr = rg.check(r.size)?;
            Ok((
                rr.start,
                rr.end,
                Some(format!("bytes {}-{}/{}", rr.start, rr.end - 1, r.size)),
            ))
        }
    }
}

pub async fn head_object(
    gw: &Gateway,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let r = gw
        .resolve_version(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    check_conditions(
        &r.etag,
        r.info.last_modified,
        i.if_match.as_ref(),
        i.if_none_match.as_ref(),
        i.if_modified_since.as_ref(),
        i.if_unmodified_since.as_ref(),
    )?;
    let (a, b, cr) = requested_range(&r, i.range.as_ref(), i.part_number)?;
    let h = r.visible(&r.info.headers);
    // As the store reports them (it enforces them).
    let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) =
        super::lock::reported(&r.info.headers);
    let (sums, sum_type) = checksums(
        &r,
        i.checksum_mode.as_ref(),
        cr.is_none() && i.part_number.is_none(),
    );
    Ok(S3Response::new(HeadObjectOutput {
        checksum_crc32: sums.checksum_crc32,
        checksum_crc32c: sums.checksum_crc32c,
        checksum_crc64nvme: sums.checksum_crc64nvme,
        checksum_sha1: sums.checksum_sha1,
        checksum_sha256: sums.checksum_sha256,
        checksum_type: sum_type,
        content_length: Some((b - a) as i64),
        content_range: cr,
        e_tag: Some(ETag::Strong(r.etag.clone())),
        last_modified: Some(Timestamp::from(r.info.last_modified)),
        accept_ranges: Some("bytes".into()),
        metadata: visible_metadata(&h),
        expires: h.expires.as_deref().and_then(parse_http_date),
        content_type: h.content_type,
        content_encoding: h.content_encoding,
        content_disposition: h.content_disposition,
        content_language: h.content_language,
        cache_control: h.cache_control,
        parts_count: i.part_number.and(r.parts.map(|n| n as i32)),
        version_id: r.info.version_id.clone(),
        object_lock_mode,
        object_lock_retain_until_date,
        object_lock_legal_hold_status,
        ..Default::default()
    }))
}

pub async fn get_object(
    gw: &Gateway,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let version = i.version_id.as_deref();
    let conditional = version.is_some()
        || i.if_match.is_some()
        || i.if_none_match.is_some()
        || i.if_modified_since.is_some()
        || i.if_unmodified_since.is_some();
    let id = (i.bucket.clone(), i.key.clone());
    // Warm path: one store request. The last resolved view of this object is
    // used optimistically; the store's If-Match on its ETag guarantees the
    // bytes we decrypt are the ones that view describes. Conditional requests
    // always resolve afresh, so a 304 is never answered from a stale view;
    // so do reads of a version (never kept as the latest view).
    for attempt in 0..3 {
        let cached = if attempt == 0 && !conditional {
            gw.latest
                .get(&id)
                .filter(|r| gw.keyring.readback().is_none() || gw.keyring.can_open(&r.header))
        } else {
            None
        };
        let from_cache = cached.is_some();
        let r: Arc<Resolved> = match cached {
            Some(r) => r,
            None => gw.resolve_version(&i.bucket, &i.key, version).await?,
        };
        check_conditions(
            &r.etag,
            r.info.last_modified,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let (a, b, cr) = requested_range(&r, i.range.as_ref(), i.part_number)?;
        if i.part_number.is_some() && b == a {
            // An empty part: nothing to read from the store.
            let h = r.visible(&r.info.headers);
            let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) =
                super::lock::reported(&r.info.headers);
            return Ok(S3Response::new(GetObjectOutput {
                body: Some(blob(Box::pin(futures::stream::empty()), 0)),
                content_length: Some(0),
                e_tag: Some(ETag::Strong(r.etag.clone())),
                last_modified: Some(Timestamp::from(r.info.last_modified)),
                accept_ranges: Some("bytes".into()),
                metadata: visible_metadata(&h),
                expires: h.expires.as_deref().and_then(parse_http_date),
                content_type: h.content_type,
                content_encoding: h.content_encoding,
                content_disposition: h.content_disposition,
                content_language: h.content_language,
                cache_control: h.cache_control,
                parts_count: r.parts.map(|n| n as i32),
                version_id: r.info.version_id.clone(),
                object_lock_mode,
                object_lock_retain_until_date,
                object_lock_legal_hold_status,
                ..Default::default()
            }));
        }
        let plan = if cr.is_none() && i.part_number.is_none() || b <= a {
            r.layout.plan_full()
        } else {
            r.layout
                .plan_range(a, b - 1)
                .ok_or_else(|| s3_error!(InvalidRange))?
        };
        let (info, stream) = match gw
            .store
            .get_version(
                &i.bucket,
                &i.key,
                version,
                Some((plan.ct_start, plan.ct_end)),
                Some(&r.info.etag),
            )
            .await
        {
            Ok(x) => x,
            Err(e) if (e.status == 412 || (from_cache && e.is_not_found())) && attempt < 2 => {
                gw.latest.invalidate(&id);
                continue;
            }
            Err(e) => return Err(from_store(e)),
        };
        // Metadata may change without the content (a copy onto itself): the
        // envelope must be the one we resolved, and headers come from this
        // response.
        if info.headers.metadata.get(META_KEY) != r.info.headers.metadata.get(META_KEY) {
            gw.latest.invalidate(&id);
            continue;
        }
        let len = b - a;
        let body = decrypt_plan(stream, plan, &r.layout, &r.dk);
        let h = r.visible(&info.headers);
        let (object_lock_mode, object_lock_retain_until_date, object_lock_legal_hold_status) =
            super::lock::reported(&info.headers);
        let (sums, sum_type) = checksums(
            &r,
            i.checksum_mode.as_ref(),
            cr.is_none() && i.part_number.is_none(),
        );
        return Ok(S3Response::new(GetObjectOutput {
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sum_type,
            body: Some(blob(body, len)),
            content_length: Some(len as i64),
            content_range: cr,
            e_tag: Some(ETag::Strong(r.etag.clone())),
            last_modified: Some(Timestamp::from(info.last_modified)),
            accept_ranges: Some("bytes".into()),
            metadata: visible_metadata(&h),
            expires: h.expires.as_deref().and_then(parse_http_date),
            content_type: h.content_type,
            content_encoding: h.content_encoding,
            content_disposition: h.content_disposition,
            content_language: h.content_language,
            cache_control: h.cache_control,
            parts_count: i.part_number.and(r.parts.map(|n| n as i32)),
            version_id: info.version_id.clone(),
            object_lock_mode,
            object_lock_retain_until_date,
            object_lock_legal_hold_status,
            ..Default::default()
        }));
    }
    Err(s3_error!(
        InternalError,
        "the object kept changing while it was read"
    ))
}

/// Most parts GetObjectAttributes lists in one answer (S3's default).
const MAX_ATTRIBUTE_PARTS: i32 = 1000;

/// The attributes `x-amz-object-attributes` asks for; unknown names are
/// refused, as S3 does.
#[derive(Default)]
struct Wanted {
    etag: bool,
    checksum: bool,
    parts: bool,
    size: bool,
    storage_class: bool,
}

impl Wanted {
    fn parse(list: &[ObjectAttributes]) -> S3Result<Self> {
        let mut w = Wanted::default();
        let mut named = false;
        for a in list {
            // The header is a comma-separated list; s3s splits repeated
            // headers, a client may still send `ETag, ObjectSize`.
            for name in a.as_str().split(',').map(str::trim) {
                named = true;
                match name {
                    ObjectAttributes::ETAG => w.etag = true,
                    // Known when the client gave it (sealed with the object).
                    ObjectAttributes::CHECKSUM => w.checksum = true,
                    ObjectAttributes::OBJECT_PARTS => w.parts = true,
                    ObjectAttributes::OBJECT_SIZE => w.size = true,
                    ObjectAttributes::STORAGE_CLASS => w.storage_class = true,
                    _ => {
                        return Err(s3_error!(
                            InvalidArgument,
                            "Invalid attribute name specified."
                        ))
                    }
                }
            }
        }
        if !named {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-object-attributes names no attribute"
            ));
        }
        Ok(w)
    }
}

/// The page of parts after `marker` (at most `max`), from the object's
/// authenticated layout: `None` for a single-part object (S3 lists parts of
/// multipart objects only).
fn attribute_parts(
    r: &Resolved,
    max: i32,
    marker: Option<i32>,
) -> Option<GetObjectAttributesParts> {
    let total = r.parts?;
    let after = marker.unwrap_or(0).max(0) as u32;
    let mut rest = r.layout.parts.iter().filter(|p| p.number > after);
    let page: Vec<ObjectPart> = rest
        .by_ref()
        .take(max.max(0) as usize)
        .map(|p| ObjectPart {
            part_number: Some(p.number as i32),
            size: Some(p.plaintext_len as i64),
            ..Default::default()
        })
        .collect();
    let is_truncated = rest.next().is_some();
    Some(GetObjectAttributesParts {
        total_parts_count: Some(total as i32),
        part_number_marker: marker,
        next_part_number_marker: page.last().and_then(|p| p.part_number),
        max_parts: Some(max),
        is_truncated: Some(is_truncated),
        parts: Some(page),
    })
}

/// GetObjectAttributes, answered from the object's authenticated resolution
/// (as HEAD): the plaintext ETag and size, the parts of a multipart object
/// with their plaintext sizes, the storage class. sealgate keeps no client
/// checksums (the plaintext's would be secret material at the store), so
/// `Checksum` is never answered.
pub async fn get_object_attributes(
    gw: &Gateway,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let i = req.input;
    check_key(&i.key)?;
    let wanted = Wanted::parse(&i.object_attributes)?;
    let max = match i.max_parts {
        Some(n) if n < 0 => {
            return Err(s3_error!(
                InvalidArgument,
                "max-parts must be a non-negative integer"
            ))
        }
        m => m.unwrap_or(MAX_ATTRIBUTE_PARTS).min(MAX_ATTRIBUTE_PARTS),
    };
    if i.part_number_marker.is_some_and(|m| m < 0) {
        return Err(s3_error!(
            InvalidArgument,
            "part-number-marker must be a non-negative integer"
        ));
    }
    let r = gw
        .resolve_version(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    let checksum = (wanted.checksum && !r.checksums.is_empty()).then(|| {
        let c = super::checksum::checksum_of(&r.checksums, r.parts);
        s3s::dto::Checksum {
            checksum_type: Some(ChecksumType::from_static(if r.parts.is_some() {
                ChecksumType::COMPOSITE
            } else {
                ChecksumType::FULL_OBJECT
            })),
            ..c
        }
    });
    Ok(S3Response::new(GetObjectAttributesOutput {
        checksum,
        e_tag: wanted.etag.then(|| ETag::Strong(r.etag.clone())),
        object_size: wanted.size.then_some(r.size as i64),
        storage_class: wanted
            .storage_class
            .then(|| StorageClass::from_static(StorageClass::STANDARD)),
        object_parts: if wanted.parts {
            attribute_parts(&r, max, i.part_number_marker)
        } else {
            None
        },
        last_modified: Some(Timestamp::from(r.info.last_modified)),
        version_id: r.info.version_id.clone(),
        ..Default::default()
    }))
}
