//! CopyObject: a server-side copy at the store with the envelope rewritten
//! for the new name, the destination's policy and (with REPLACE) the new
//! attributes (same data key, no content passes through sealgate); the same
//! rewrite serves `sealgate rewrap`. And the plaintext reader UploadPartCopy
//! uses.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::body::decrypt_plan;
use super::condition::Asked;
use super::error::from_store;
use super::error::internal;
use super::get::check_conditions;
use super::lock::Write;
use super::object::{manifest_key, ListInfo, Resolved};
use super::seal::{place, HeaderHome};
use super::{check_key, client_attributes, Gateway, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::keys::random_salt;
use crate::envelope::manifest::{Manifest, ManifestPart};
use crate::envelope::{Attributes, BodyBinding, RecipientStanza, Reseal};
use crate::store::conditional::WriteOp;
use crate::store::versions::Written;
use crate::store::{ByteStream, CopyConditions, ObjectHeaders, WriteCondition};

/// Largest object a single store CopyObject may copy.
pub(crate) const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// Part size for copies through the multipart path.
const COPY_PART: u64 = 1024 * 1024 * 1024;

/// The plaintext of `bucket/key`, optionally a `bytes=a-b` range of it.
pub async fn read_plaintext(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    range: Option<&str>,
) -> S3Result<(ByteStream, u64)> {
    let r = gw.resolve_version(bucket, key, version).await?;
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
        .get_version(
            bucket,
            key,
            version,
            Some((plan.ct_start, plan.ct_end)),
            Some(&r.info.etag),
        )
        .await?;
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
    let req_headers = req.headers;
    let mut i = req.input;
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
    let src_version = version_id.as_deref().map(str::to_owned);
    let (sb, sk) = (sb.to_string(), sk.to_string());
    check_key(&sk)?;
    check_key(&i.key)?;
    let replace = i
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    // A version copied over its own key is a restore, not a copy onto
    // itself.
    if sb == i.bucket && sk == i.key && !replace && src_version.is_none() {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    if i.tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE)
    {
        super::refuse_tags(i.tagging.as_deref())?;
    }
    let attributes = if replace {
        Some(client_attributes!(i)?)
    } else {
        None
    };
    // What the client asks of the destination (If-Match / If-None-Match,
    // which the S3 front end does not parse for CopyObject): refused fast
    // when the store does not enforce it.
    let asked = Asked::from_headers(&req_headers)?;
    gw.check_enforced(&i.bucket, WriteOp::Copy, asked.as_ref())
        .await?;
    let src = gw.resolve_version(&sb, &sk, src_version.as_deref()).await?;
    check_conditions(
        &src.etag,
        src.info.last_modified,
        i.copy_source_if_match.as_ref(),
        i.copy_source_if_none_match.as_ref(),
        i.copy_source_if_modified_since.as_ref(),
        i.copy_source_if_unmodified_since.as_ref(),
    )
    .map_err(copy_failed)?;
    let cond = gw
        .store_condition(&i.bucket, &i.key, asked.as_ref())
        .await?;
    // As at S3, the copy gets the lock its request asks for (or the
    // bucket's default), not the source's.
    let lock_asked = super::lock::asked(
        i.object_lock_mode.as_ref(),
        i.object_lock_retain_until_date.as_ref(),
        i.object_lock_legal_hold_status.as_ref(),
    )?;
    let lock = gw.write_lock(&i.bucket, lock_asked.clone()).await?;
    let (written, mtime) = rewrite(
        gw,
        &src,
        (&sb, &sk),
        (&i.bucket, &i.key),
        Stanzas::Policy,
        attributes.as_ref(),
        Write {
            cond: cond.as_ref(),
            lock: lock.as_ref(),
        },
    )
    .await?;
    if let Some(l) = &lock_asked {
        gw.verify_lock(&i.bucket, &i.key, written.version_id.as_deref(), l)
            .await?;
    }
    gw.remember_listing(
        &i.bucket,
        &i.key,
        &written.etag,
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
        version_id: written.version_id,
        copy_source_version_id: src.version.clone(),
        ..Default::default()
    }))
}

/// Who a rewritten envelope is for.
pub enum Stanzas {
    /// The destination's policy (CopyObject).
    Policy,
    /// These stanzas (rewrap).
    Given(Vec<RecipientStanza>),
}

fn needs_reencrypt(why: &str) -> s3s::S3Error {
    s3_error!(
        InvalidRequest,
        "{why}: the object's envelope is stored at the head of its body (too large for metadata), which a server-side copy cannot rewrite. Use `sealgate reencrypt` (or `sealgate rewrap` on the source first)."
    )
}

/// Copies `src` to `dst` at the store (server-side: no content passes
/// through sealgate) with its envelope rewritten: bound to the destination's
/// name, wrapped for `stanzas`, with `attributes` sealed in (`None` keeps
/// the source's), only if `w.cond` holds at the destination (checked by the
/// store), locked with `w.lock` (so is a multipart object's new manifest).
/// The data key and the content do not change. Used by CopyObject and by
/// `sealgate rewrap` (a copy onto itself).
///
/// On a bucket with Object Lock (hence versioning) a copy onto itself makes
/// a new version: the old one stays, with its lock and its envelope (still
/// readable by whoever it was wrapped for), and, while it is locked, its
/// manifest.
///
/// A single-part object whose header leads its body can only be rebound
/// (new name, same recipients and attributes); any other change is refused
/// with an error that names `reencrypt`, never done halfway.
pub async fn rewrite(
    gw: &Gateway,
    src: &Resolved,
    (sb, sk): (&str, &str),
    (db, dk): (&str, &str),
    stanzas: Stanzas,
    attributes: Option<&Attributes>,
    w: Write<'_>,
) -> S3Result<(Written, std::time::SystemTime)> {
    let cond = w.cond;
    let fe = |e| gw.format_err(e, db, dk);
    let stanzas = match stanzas {
        Stanzas::Given(s) => Some(s),
        Stanzas::Policy => {
            let rs = gw.policy_recipients(db, dk).await?;
            let same = rs.len() == src.header.recipients.len()
                && rs
                    .iter()
                    .zip(&src.header.recipients)
                    .all(|(r, st)| r.key_id() == st.key_id && r.algorithm() as u8 == st.algorithm);
            if same {
                None
            } else {
                Some(
                    rs.iter()
                        .map(|r| r.wrap(&src.dk))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(fe)?,
                )
            }
        }
    };
    // An object written before attributes were sealed stays so unless its
    // metadata is replaced: its store headers travel with it, as before.
    let legacy = src.attributes.is_none() && attributes.is_none();
    let mut store_headers = if legacy {
        let mut h = src.info.headers.clone();
        h.metadata.remove(META_KEY);
        h.lock = None;
        h
    } else {
        ObjectHeaders::default()
    };
    let other_meta: usize = store_headers
        .metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let new_upload_id = match src.header.binding {
        BodyBinding::Single { .. } => None,
        BodyBinding::Multipart { .. } => {
            Some(random_salt().map_err(|_| internal("no randomness for an upload id"))?)
        }
    };
    let header = src
        .header
        .reseal(
            &src.dk,
            Reseal {
                stanzas,
                binding: new_upload_id.map(|upload_id| BodyBinding::Multipart { upload_id }),
                attributes,
                ..Default::default()
            },
            db,
            dk,
        )
        .map_err(fe)?;
    let header_in_body = src.layout.parts.first().is_some_and(|p| p.ct_offset > 0);
    let meta = if header_in_body {
        if !header.same_content(&src.header) {
            return Err(needs_reencrypt(
                "The copy changes the object's recipients or metadata",
            ));
        }
        MetaValue::Overflow {
            header_len: src.header.raw().len() as u32,
            mac: src.header.mac_for(&src.dk, db, dk),
        }
        .encode()
    } else {
        let placed = place(&header, &src.dk, other_meta, db, dk)?;
        if placed.home == HeaderHome::Body {
            return Err(needs_reencrypt(
                "The destination's envelope does not fit in metadata",
            ));
        }
        if let Some(upload_id) = new_upload_id {
            // A multipart copy gets a manifest of its own, bound to its name.
            let md5: [u8; 16] = hex::decode(src.etag.split('-').next().unwrap_or_default())
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| internal("a multipart ETag without its MD5"))?;
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
            let in_manifest = (placed.home == HeaderHome::Manifest).then(|| header.raw());
            let digests = crate::envelope::manifest::Digests {
                etag_md5: md5,
                checksums: src.checksums.clone(),
            };
            let m = Manifest::seal_with(&src.dk, in_manifest, parts, &digests, db, dk, &upload_id)
                .map_err(fe)?;
            gw.put_manifest(
                db,
                &manifest_key(&upload_id),
                bytes::Bytes::copy_from_slice(m.raw()),
                w.lock.filter(|l| l.is_set()),
            )
            .await?;
        }
        placed.meta
    };
    store_headers.metadata.insert(META_KEY.to_owned(), meta);
    store_headers.lock = w.lock.cloned();
    let copied = if src.info.size > MAX_SINGLE_COPY {
        if src.version.is_some() {
            Err(s3_error!(
                NotImplemented,
                "copying a version of an object over 5 GiB is not supported"
            ))
        } else {
            copy_large(gw, (sb, sk), (db, dk), &store_headers, src, cond)
                .await
                .map(|(etag, t)| {
                    (
                        Written {
                            etag,
                            version_id: None,
                        },
                        t,
                    )
                })
        }
    } else {
        let conds = CopyConditions {
            source_etag: Some(&src.info.etag),
            dest: cond,
        };
        gw.store
            .copy_versioned(
                sb,
                sk,
                src.version.as_deref(),
                db,
                dk,
                &store_headers,
                conds,
            )
            .await
            .map_err(from_store)
    };
    match copied {
        Ok(done) => {
            // The manifest of what the destination held before (the
            // source's own, for a copy onto itself, authenticated when it
            // was resolved) is no longer needed, on a bucket that has never
            // kept versions (on one that does, the source stays as a
            // version, and so does its manifest: versions.rs).
            if let BodyBinding::Multipart { upload_id } = src.header.binding {
                if (sb, sk) == (db, dk)
                    && src.version.is_none()
                    && !super::lock::locked_now(&src.info.headers)
                    && gw.old_manifests_may_go(db).await
                {
                    gw.drop_manifests(db, &[manifest_key(&upload_id)]).await;
                }
            }
            gw.latest.invalidate(&(db.to_owned(), dk.to_owned()));
            Ok(done)
        }
        Err(e) => {
            // The copy's own manifest, unless the bucket keeps versions
            // (versions.rs: gc removes it if no version names it).
            if let Some(upload_id) = new_upload_id {
                gw.drop_manifests(db, &[manifest_key(&upload_id)]).await;
            }
            Err(e)
        }
    }
}

/// Copies an object over 5 GiB through a multipart copy at the store (still
/// server-side: no content passes through sealgate), completed only if
/// `cond` holds at the destination.
pub(crate) async fn copy_large(
    gw: &Gateway,
    (sb, sk): (&str, &str),
    (db, dk): (&str, &str),
    headers: &ObjectHeaders,
    src: &Resolved,
    cond: Option<&WriteCondition>,
) -> S3Result<(String, std::time::SystemTime)> {
    let id = gw.store.create_multipart(db, dk, headers).await?;
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
                    &crate::store::PartSource {
                        bucket: sb,
                        key: sk,
                        range: Some((off, end)),
                        if_match: Some(&src.info.etag),
                    },
                )
                .await?;
            parts.push((n, e));
            off = end;
            n += 1;
        }
        gw.store
            .complete_multipart(db, dk, &id, &parts, cond)
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
