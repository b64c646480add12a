//! Stateless multipart uploads. The upload id the client holds carries the
//! data key sealed under the gateway secret; each part is its own stream with
//! a fresh salt (so a re-uploaded part never reuses a nonce); completion
//! writes an authenticated manifest of the parts, then completes at the store.
//!
//! While an upload is in progress the store also keeps, under
//! `.sealgate/up/<upload>/` ([`super::records`]), the upload id given to the
//! client (so ListMultipartUploads answers it) and one sealed record per
//! uploaded part (its length, salt and plaintext MD5, bound to the store's
//! ETag of that part): part ETags are the plain MD5 of the part's plaintext,
//! as at S3, and completion finds what it needs in the records, never in
//! anything the store could have made. They go when the upload completes or
//! is aborted.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::stream::ByteStream as _;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::checksum::{ClientChecks, Expected};
use super::condition::Asked;
use super::error::from_store;
use super::error::internal;
use super::object::{manifest_key, ListInfo};
use super::records::{
    part_record_key, upload_prefix, upload_record_key, PartRecord, UploadRecord, MAX_PART_RECORD,
    MAX_UPLOAD_RECORD,
};
use super::seal::{seal_body, split, HeaderHome};
use super::token::{TokenKey, UploadToken};
use super::{check_key, client_attributes, Gateway, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::keys::random_salt;
use crate::envelope::manifest::{Manifest, ManifestPart, MAX_PARTS};
use crate::envelope::size::{plaintext_len, stream_len};
use crate::envelope::stream::Sealer;
use crate::envelope::{BodyBinding, Header, NewBinding};
use crate::store::conditional::WriteOp;
use crate::store::{ListRequest, PartInfo};

/// Upload ids of listed uploads that this gateway cannot issue a real id for
/// (no upload record, or one not made with this gateway's secret) start with
/// this; they can only be aborted.
const STORE_ID_PREFIX: &str = "store.";
const MIN_PART: u64 = 5 * 1024 * 1024;
const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;
/// Concurrent store requests for the per-part records of one request.
const RECORD_CONCURRENCY: usize = 16;

fn no_such_upload() -> s3s::S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

fn open_token(gw: &Gateway, id: &str, bucket: &str, key: &str) -> S3Result<UploadToken> {
    gw.tokens.open(id, bucket, key).ok_or_else(no_such_upload)
}

fn invalid_part() -> s3s::S3Error {
    s3_error!(
        InvalidPart,
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
    )
}

pub async fn create(
    gw: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let mut i = req.input;
    check_key(&i.key)?;
    super::refuse_tags(i.tagging.as_deref())?;
    let attributes = client_attributes!(i)?;
    // The lock asked for goes to the store's upload and, sealed in the
    // upload id, to the manifest at completion.
    let asked = super::lock::asked(
        i.object_lock_mode.as_ref(),
        i.object_lock_retain_until_date.as_ref(),
        i.object_lock_legal_hold_status.as_ref(),
    )?;
    let lock = gw.write_lock(&i.bucket, asked.clone()).await?;
    let (sealed, placed) = gw
        .new_envelope(&i.bucket, &i.key, NewBinding::Multipart, &attributes)
        .await?;
    let BodyBinding::Multipart { upload_id } = sealed.header.binding else {
        unreachable!("a multipart binding was asked for");
    };
    let header_in_record = placed.home == HeaderHome::Manifest;
    let mut headers = placed.store_headers();
    headers.lock = lock;
    let store_upload_id = gw
        .store
        .create_multipart(&i.bucket, &i.key, &headers)
        .await?;
    let token = gw.tokens.seal(
        &UploadToken {
            dk: sealed.dk,
            upload_id,
            store_upload_id: store_upload_id.clone(),
            header_in_record,
            lock: asked,
        },
        &i.bucket,
        &i.key,
    );
    // The upload record: what ListMultipartUploads answers, and the header
    // when completion must put it in the manifest. An upload without it
    // could not be resumed (or, for a large header, completed): refuse it.
    let record = UploadRecord {
        upload_id: token.clone(),
        header: header_in_record.then(|| sealed.header.raw().to_vec()),
    };
    if let Err(e) = gw
        .put_small(
            &i.bucket,
            &upload_record_key(&store_upload_id),
            record.encode().into(),
        )
        .await
    {
        let _ = gw
            .store
            .abort_multipart(&i.bucket, &i.key, &store_upload_id)
            .await;
        return Err(from_store(e));
    }
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

/// One part's upload: the request context of UploadPart and UploadPartCopy.
struct PartCtx<'a> {
    gw: &'a Gateway,
    bucket: &'a str,
    key: &'a str,
    token: &'a UploadToken,
    part: u32,
}

impl PartCtx<'_> {
    /// Encrypts one part's plaintext stream, uploads it and keeps its
    /// record; returns the part's ETag (the MD5 of its plaintext) and the
    /// checksums the client asked for.
    async fn upload<S, E>(
        &self,
        body: S,
        len: u64,
        checks: ClientChecks,
    ) -> S3Result<(String, Checksum)>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let t = self.token;
        let salt = random_salt().map_err(|_| internal("no randomness for a part salt"))?;
        let sealer = Sealer::new(&t.dk, salt, self.part, len);
        let (stream, outcome) = split(seal_body(body, sealer, checks));
        let stored = self
            .gw
            .store
            .upload_part(
                self.bucket,
                self.key,
                &t.store_upload_id,
                self.part as i32,
                stream,
                stream_len(len),
            )
            .await;
        let (store_etag, digests) = outcome.settle(stored)?;
        // Completion takes the part's length and salt from this record: if it
        // cannot be kept, the part cannot be completed, so the upload of the
        // part fails (the client retries it).
        let record = PartRecord {
            plaintext_len: len,
            salt,
            md5: digests.md5,
            checksums: super::checksum::sums_of(&digests.checksums),
        }
        .seal(&t.dk, &t.store_upload_id, self.part, &store_etag)
        .map_err(|e| self.gw.format_err(e, self.bucket, self.key))?;
        self.gw
            .put_small(
                self.bucket,
                &part_record_key(&t.store_upload_id, self.part, &store_etag),
                record.into(),
            )
            .await?;
        Ok((hex::encode(digests.md5), digests.checksums))
    }
}

/// The record of the part the store holds now under `part`: `Ok(None)` when
/// there is none or it does not open (the store's lie, or an upload begun
/// by an earlier release); a store that cannot answer is an error, never
/// taken for a missing record.
async fn part_record(
    gw: &Gateway,
    bucket: &str,
    t: &UploadToken,
    part: u32,
    store_etag: &str,
) -> Result<Option<PartRecord>, crate::store::StoreError> {
    let key = part_record_key(&t.store_upload_id, part, store_etag);
    let raw = match gw.read_small(bucket, &key, MAX_PART_RECORD).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Ok(None),
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(PartRecord::open(&t.dk, &t.store_upload_id, part, store_etag, &raw).ok())
}

/// The upload id CreateMultipartUpload gave for a listed store upload, from
/// its upload record: only an id sealed with this gateway's secret, for this
/// bucket, key and store upload, is given out (the store cannot make one).
async fn listed_upload_id(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    store_upload_id: &str,
) -> Option<String> {
    let raw = gw
        .read_small(
            bucket,
            &upload_record_key(store_upload_id),
            MAX_UPLOAD_RECORD,
        )
        .await
        .ok()??;
    let record = UploadRecord::decode(&raw)?;
    let t = gw.tokens.open(&record.upload_id, bucket, key)?;
    (t.store_upload_id == store_upload_id).then_some(record.upload_id)
}

/// The header kept in the upload record for the manifest, authenticated
/// with the upload's data key for this name and upload.
async fn kept_header(gw: &Gateway, bucket: &str, key: &str, t: &UploadToken) -> S3Result<Vec<u8>> {
    let raw = gw
        .read_small(
            bucket,
            &upload_record_key(&t.store_upload_id),
            MAX_UPLOAD_RECORD,
        )
        .await?
        .ok_or_else(no_such_upload)?;
    let header = UploadRecord::decode(&raw)
        .and_then(|r| r.header)
        .ok_or_else(no_such_upload)?;
    let h = Header::parse(&header).map_err(|e| gw.format_err(e, bucket, key))?;
    h.authenticate(&t.dk, bucket, key)
        .map_err(|e| gw.format_err(e, bucket, key))?;
    if h.binding
        != (BodyBinding::Multipart {
            upload_id: t.upload_id,
        })
    {
        return Err(no_such_upload());
    }
    Ok(header)
}

/// Deletes what is kept about an upload that is over. Failures are logged:
/// a left record is a small hidden object that no listing shows (and
/// `sealgate gc` finds).
async fn forget_upload(gw: &Gateway, bucket: &str, store_upload_id: &str) {
    let prefix = upload_prefix(store_upload_id);
    // An upload has at most 10,000 parts, each with a record per upload of
    // it: a generous bound on the pages, and the marker must move.
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let req = ListRequest {
            prefix: Some(prefix.clone()),
            max_keys: 1000,
            start_after: after.clone(),
            ..Default::default()
        };
        let page = match gw.store.list(bucket, &req).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(bucket, error = %e, "could not list the records of an upload");
                return;
            }
        };
        let keys: Vec<String> = page
            .entries
            .into_iter()
            .map(|e| e.key)
            .filter(|k| k.starts_with(&prefix))
            .collect();
        let Some(last) = keys.last().cloned() else {
            return;
        };
        if after.as_ref().is_some_and(|a| &last <= a) {
            return;
        }
        if let Err(e) = gw.store.delete_many(bucket, &keys).await {
            tracing::warn!(bucket, error = %e, "could not delete the records of an upload");
            return;
        }
        if !page.is_truncated {
            return;
        }
        after = Some(last);
    }
}

fn body_len(content_length: Option<i64>, body: &StreamingBlob) -> S3Result<u64> {
    content_length
        .map(|l| l.max(0) as u64)
        .or_else(|| body.remaining_length().exact().map(|n| n as u64))
        .ok_or_else(|| s3_error!(MissingContentLength))
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
    let len = body_len(i.content_length, &body)?;
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
    let ctx = PartCtx {
        gw,
        bucket: &i.bucket,
        key: &i.key,
        token: &t,
        part,
    };
    let (etag, sums) = ctx
        .upload(body, len, ClientChecks::new(expected, trailing_headers))
        .await?;
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
    // The source has another data key: its plaintext passes through sealgate
    // and is encrypted again for this upload.
    let (stream, len) = super::copy::read_plaintext(
        gw,
        sb,
        sk,
        version_id.as_deref(),
        i.copy_source_range.as_deref(),
    )
    .await?;
    let ctx = PartCtx {
        gw,
        bucket: &i.bucket,
        key: &i.key,
        token: &t,
        part,
    };
    let (etag, _) = ctx
        .upload(stream, len, ClientChecks::new(Expected::default(), None))
        .await?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(etag)),
            last_modified: Some(Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// One part of a completion, checked against what the store holds.
struct Checked {
    number: u32,
    md5: [u8; 16],
    plaintext_len: u64,
    salt: [u8; 16],
    store_etag: String,
    checksums: super::checksum::Sums,
}

/// Checks a part the client names at completion: its ETag must be the one
/// UploadPart gave for the part the store holds now, and length and salt
/// come from that part's record (or, for an upload begun before part
/// records, from the ETag's own MAC).
async fn check_part(
    gw: &Gateway,
    bucket: &str,
    t: &UploadToken,
    number: u32,
    client_etag: &str,
    stored: Option<&PartInfo>,
) -> S3Result<Checked> {
    let sp = stored.ok_or_else(invalid_part)?;
    let etag = client_etag.trim().trim_matches('"');
    if let Some(tag) = TokenKey::parse_part_etag(etag) {
        // An ETag of an earlier release (uploads in flight across an upgrade).
        if !gw
            .tokens
            .verify_part(&tag, &t.store_upload_id, number, &sp.etag)
        {
            return Err(invalid_part());
        }
        return Ok(Checked {
            number,
            md5: tag.md5,
            plaintext_len: plaintext_len(sp.size).ok_or_else(invalid_part)?,
            salt: tag.salt,
            store_etag: sp.etag.clone(),
            checksums: Vec::new(),
        });
    }
    let want: [u8; 16] = hex::decode(etag)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(invalid_part)?;
    let rec = part_record(gw, bucket, t, number, &sp.etag)
        .await?
        .ok_or_else(invalid_part)?;
    if rec.md5 != want || stream_len(rec.plaintext_len) != sp.size {
        return Err(invalid_part());
    }
    Ok(Checked {
        number,
        md5: rec.md5,
        plaintext_len: rec.plaintext_len,
        salt: rec.salt,
        store_etag: sp.etag.clone(),
        checksums: rec.checksums,
    })
}

/// The completions this gateway has in progress, by store upload id: a
/// second Complete of an upload (a client's retry after a timeout, a
/// second completer) waits for the first and is then answered as a retry
/// is (the object the first made, or `NoSuchUpload` for another part
/// list). Two Completes of one upload on two gateways can still overlap;
/// see [`complete`] for what they do then.
#[derive(Default)]
pub struct Completing(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// One upload's turn to complete; the entry goes with the last holder.
struct Turn<'a> {
    of: &'a Completing,
    id: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Completing {
    async fn turn(&self, store_upload_id: &str) -> Turn<'_> {
        let m = {
            let mut map = self.0.lock().expect("completing");
            // A waiter cancelled (its client gone) after the holder left
            // leaves an entry nobody holds: swept here, past a few.
            if map.len() > 1024 {
                map.retain(|_, m| Arc::strong_count(m) > 1);
            }
            map.entry(store_upload_id.to_owned()).or_default().clone()
        };
        Turn {
            of: self,
            id: store_upload_id.to_owned(),
            guard: Some(m.lock_owned().await),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.of.0.lock().expect("completing");
        // Nobody else holds or waits for this upload's turn.
        if map.get(&self.id).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.id);
        }
    }
}

pub async fn complete(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let i = req.input;
    let condition = Asked::parse(i.if_match.as_ref(), i.if_none_match.as_ref())?;
    let t = open_token(gw, &i.upload_id, &i.bucket, &i.key)?;
    let _turn = gw.completing.turn(&t.store_upload_id).await;
    gw.check_enforced(&i.bucket, WriteOp::Complete, condition.as_ref())
        .await?;
    let parts = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    if parts.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "You must specify at least one part"
        ));
    }
    let mut asked = Vec::with_capacity(parts.len());
    // The part checksums the client names (S3 checks them against the parts).
    let mut claimed: Vec<super::checksum::Sums> = Vec::with_capacity(parts.len());
    let mut prev = 0u32;
    for p in &parts {
        let n = p
            .part_number
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(invalid_part)?;
        if n <= prev {
            return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order. The parts list must be specified in order by part number."));
        }
        prev = n;
        let etag = p
            .e_tag
            .as_ref()
            .ok_or_else(invalid_part)?
            .value()
            .to_owned();
        asked.push((n, etag));
        claimed.push(super::checksum::sums_of(&Checksum {
            checksum_crc32: p.checksum_crc32.clone(),
            checksum_crc32c: p.checksum_crc32c.clone(),
            checksum_crc64nvme: p.checksum_crc64nvme.clone(),
            checksum_sha1: p.checksum_sha1.clone(),
            checksum_sha256: p.checksum_sha256.clone(),
            ..Default::default()
        }));
    }
    // The object this upload replaces: its manifest goes once this one is
    // in place; and what the client's condition asks of it, translated for
    // the store (both asked alongside the part list, so at no extra
    // latency).
    let (listed, previous, cond) = futures::join!(
        gw.store.list_parts(&i.bucket, &i.key, &t.store_upload_id),
        replaced_manifest(gw, &i.bucket, &i.key),
        gw.store_condition(&i.bucket, &i.key, condition.as_ref())
    );
    let stored: HashMap<i32, PartInfo> = match listed {
        Ok(ps) => ps.into_iter().map(|p| (p.part_number, p)).collect(),
        Err(e) => {
            // A retry of a Complete that succeeded (its answer lost): the same
            // answer again, as S3 gives.
            if e.code == "NoSuchUpload" {
                if let Some(answer) = answer_if_completed(gw, &i.bucket, &i.key, &t, &asked).await {
                    return answer;
                }
            }
            return Err(from_store(e));
        }
    };
    // (A retry of a Complete that succeeded is answered above whatever the
    // condition says now: the object it made would fail it.)
    let cond = cond?;
    let (bucket, t_ref, stored_ref) = (&i.bucket, &t, &stored);
    let gathered = async {
        let checked: Vec<S3Result<Checked>> = futures::stream::iter(asked.clone())
            .map(|(n, etag)| async move {
                let sp = stored_ref.get(&(n as i32));
                check_part(gw, bucket, t_ref, n, &etag, sp).await
            })
            .buffered(RECORD_CONCURRENCY)
            .collect()
            .await;
        let checked = checked.into_iter().collect::<S3Result<Vec<_>>>()?;
        let header = if t_ref.header_in_record {
            Some(kept_header(gw, bucket, &i.key, t_ref).await?)
        } else {
            None
        };
        Ok::<_, s3s::S3Error>((checked, header))
    }
    .await;
    let (checked, header) = match gathered {
        Ok(g) => g,
        Err(e) => {
            // A concurrent Complete of this upload may have won at the store
            // after the part list was read and tidied the upload's records
            // away: its object is then this completion's answer.
            if matches!(
                e.code(),
                s3s::S3ErrorCode::InvalidPart | s3s::S3ErrorCode::NoSuchUpload
            ) {
                if let Some(answer) = answer_if_completed(gw, &i.bucket, &i.key, &t, &asked).await {
                    return answer;
                }
            }
            return Err(e);
        }
    };
    for (c, want) in checked.iter().zip(&claimed) {
        for (alg, d) in want {
            if !c.checksums.iter().any(|(a, have)| a == alg && have == d) {
                return Err(s3_error!(
                    InvalidPart,
                    "The checksum given for part {} is not the one it was uploaded with.",
                    c.number
                ));
            }
        }
    }
    let sums =
        super::checksum::composite(&checked.iter().map(|c| &c.checksums).collect::<Vec<_>>());
    let last = checked.len() - 1;
    if checked[..last].iter().any(|c| c.plaintext_len < MIN_PART) {
        return Err(s3_error!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size."
        ));
    }
    let mut md5s = Vec::with_capacity(checked.len() * 16);
    for c in &checked {
        md5s.extend_from_slice(&c.md5);
    }
    let etag_md5: [u8; 16] = Md5::digest(&md5s).into();
    let total: u64 = checked.iter().map(|c| c.plaintext_len).sum();
    let store_parts: Vec<(i32, String)> = checked
        .iter()
        .map(|c| (c.number as i32, c.store_etag.clone()))
        .collect();
    let manifest = Manifest::seal_with(
        &t.dk,
        header.as_deref(),
        checked
            .into_iter()
            .map(|c| ManifestPart {
                number: c.number,
                plaintext_len: c.plaintext_len,
                salt: c.salt,
            })
            .collect(),
        &crate::envelope::manifest::Digests {
            etag_md5,
            checksums: sums.clone(),
        },
        &i.bucket,
        &i.key,
        &t.upload_id,
    )
    .map_err(|e| gw.format_err(e, &i.bucket, &i.key))?;
    let mkey = manifest_key(&t.upload_id);
    // The manifest is as locked as the object it lets be read.
    gw.put_manifest(
        &i.bucket,
        &mkey,
        bytes::Bytes::copy_from_slice(manifest.raw()),
        t.lock.as_ref(),
    )
    .await?;
    let written = match gw
        .store
        .complete_multipart_versioned(
            &i.bucket,
            &i.key,
            &t.store_upload_id,
            &store_parts,
            cond.as_ref(),
        )
        .await
    {
        Ok(e) => e,
        Err(e) => {
            // Another Complete of this upload (a client's retry, another
            // gateway) may have won at the store: the manifest is then the
            // object's own and must stay.
            if let Some(answer) = answer_if_completed(gw, &i.bucket, &i.key, &t, &asked).await {
                return answer;
            }
            match upload_id_at(gw, &i.bucket, &i.key).await {
                Ok(Some((id, _))) if id == t.upload_id => {}
                Ok(_) => gw.drop_manifests(&i.bucket, &[mkey]).await,
                Err(()) => {}
            }
            return Err(from_store(e));
        }
    };
    let store_etag = written.etag;
    // The replaced object's manifest goes (authenticated as its own, and
    // only on a bucket that has never kept versions: versions.rs).
    if let Some(old) = previous {
        if old != mkey {
            gw.drop_manifests(&i.bucket, &[old]).await;
        }
    }
    forget_upload(gw, &i.bucket, &t.store_upload_id).await;
    // A lock the store dropped is reported once the upload is tidied up
    // (the object exists; the client must not believe it locked).
    if let Some(l) = &t.lock {
        gw.verify_lock(&i.bucket, &i.key, written.version_id.as_deref(), l)
            .await?;
    }
    let etag = format!("{}-{}", hex::encode(etag_md5), store_parts.len());
    gw.remember_listing(
        &i.bucket,
        &i.key,
        &store_etag,
        ListInfo {
            etag: etag.clone(),
            size: total,
        },
    );
    let mut done = completed(i.bucket, i.key, etag);
    done.output.version_id = written.version_id;
    if !sums.is_empty() {
        let c = super::checksum::checksum_of(&sums, Some(store_parts.len()));
        let o = &mut done.output;
        o.checksum_crc32 = c.checksum_crc32;
        o.checksum_crc32c = c.checksum_crc32c;
        o.checksum_crc64nvme = c.checksum_crc64nvme;
        o.checksum_sha1 = c.checksum_sha1;
        o.checksum_sha256 = c.checksum_sha256;
        o.checksum_type = Some(ChecksumType::from_static(ChecksumType::COMPOSITE));
    }
    Ok(done)
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

/// The answer to a Complete whose upload an earlier Complete (a retried
/// request whose answer was lost, a concurrent one) made into the object at
/// the key with exactly the parts `asked` ([`completed_as`]): as that one's
/// would have been, the lock the upload asked for verified on that very
/// version first (the earlier Complete may have failed just there, or never
/// got so far). `None` when no such Complete made the object.
async fn answer_if_completed(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    t: &UploadToken,
    asked: &[(u32, String)],
) -> Option<S3Result<S3Response<CompleteMultipartUploadOutput>>> {
    let done = completed_as(gw, bucket, key, t, asked).await?;
    if let Some(l) = &t.lock {
        if let Err(e) = gw
            .verify_lock(bucket, key, done.version_id.as_deref(), l)
            .await
        {
            return Some(Err(e));
        }
    }
    let mut r = completed(bucket.to_owned(), key.to_owned(), done.etag);
    r.output.version_id = done.version_id;
    Some(Ok(r))
}

/// The upload id of the object at `bucket/key` when it is a multipart
/// object, and whether it is locked now; `Ok(None)` when there is none or
/// it is not one; `Err` when the store cannot tell. (The store's word: used
/// only to tidy up manifests.)
async fn upload_id_at(
    gw: &Gateway,
    bucket: &str,
    key: &str,
) -> Result<Option<([u8; 16], bool)>, ()> {
    let info = match gw.store.head(bucket, key).await {
        Ok(info) => info,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(_) => return Err(()),
    };
    let Some(meta) = info.headers.metadata.get(META_KEY) else {
        return Ok(None);
    };
    let locked = super::lock::locked_now(&info.headers);
    Ok(match MetaValue::decode(meta) {
        Ok(MetaValue::Inline(raw)) => match Header::parse(&raw).map(|h| h.binding) {
            Ok(BodyBinding::Multipart { upload_id }) => Some((upload_id, locked)),
            _ => None,
        },
        Ok(MetaValue::InManifest { upload_id, .. }) => Some((upload_id, locked)),
        _ => None,
    })
}

/// An object an earlier Complete of the upload made: its ETag, and the
/// store's version id of it (when the store keeps versions).
struct Done {
    etag: String,
    version_id: Option<String>,
}

/// The manifest of the object a completion replaces, on a bucket that has
/// never kept versions, authenticated as that object's
/// ([`Gateway::own_manifest`]); `None` otherwise.
async fn replaced_manifest(gw: &Gateway, bucket: &str, key: &str) -> Option<String> {
    if !gw.old_manifests_may_go(bucket).await {
        return None;
    }
    gw.own_manifest(bucket, key).await
}

/// The object at `bucket/key` when it is this upload completed with exactly
/// these parts (by an earlier Complete whose answer was lost, or by a
/// concurrent one): same upload, same multipart ETag.
async fn completed_as(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    t: &UploadToken,
    asked: &[(u32, String)],
) -> Option<Done> {
    let mut md5s = Vec::with_capacity(asked.len() * 16);
    for (_, etag) in asked {
        let e = etag.trim().trim_matches('"');
        let md5: [u8; 16] = match TokenKey::parse_part_etag(e) {
            Some(tag) => tag.md5,
            None => hex::decode(e).ok()?.try_into().ok()?,
        };
        md5s.extend_from_slice(&md5);
    }
    let want = format!(
        "{}-{}",
        hex::encode(<[u8; 16]>::from(Md5::digest(&md5s))),
        asked.len()
    );
    let r = gw.resolve_tail(bucket, key).await.ok()?;
    let numbers: Vec<u32> = r.layout.parts.iter().map(|p| p.number).collect();
    let asked_numbers: Vec<u32> = asked.iter().map(|(n, _)| *n).collect();
    (r.header.binding
        == BodyBinding::Multipart {
            upload_id: t.upload_id,
        }
        && numbers == asked_numbers
        && r.etag == want)
        .then(|| Done {
            etag: r.etag.clone(),
            version_id: r.info.version_id.clone(),
        })
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
        .await?;
    forget_upload(gw, &i.bucket, &store_id).await;
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
        .await?;
    let rest: Vec<_> = all.into_iter().filter(|p| p.part_number > marker).collect();
    let truncated = rest.len() > max;
    let page: Vec<_> = rest.into_iter().take(max).collect();
    let next = page.last().map(|p| p.part_number);
    let (bucket, t) = (&i.bucket, &t);
    // Each part as UploadPart answered it, from its record; a part without
    // one (an upload begun by an earlier release, a record the store lost)
    // shows what the store says.
    let wanted: Vec<(i32, String)> = page
        .iter()
        .map(|p| (p.part_number, p.etag.clone()))
        .collect();
    let records: Vec<Result<Option<PartRecord>, crate::store::StoreError>> =
        futures::stream::iter(wanted)
            .map(|(n, etag)| async move {
                match u32::try_from(n) {
                    Ok(n) => part_record(gw, bucket, t, n, &etag).await,
                    Err(_) => Ok(None),
                }
            })
            .buffered(RECORD_CONCURRENCY)
            .collect()
            .await;
    let records = records.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: if truncated { next } else { None },
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(
            page.into_iter()
                .zip(records)
                .map(|(p, rec)| {
                    let (etag, size, sums) = match rec {
                        Some(r) => (hex::encode(r.md5), r.plaintext_len, r.checksums),
                        None => (
                            p.etag.clone(),
                            plaintext_len(p.size).unwrap_or(p.size),
                            Vec::new(),
                        ),
                    };
                    let c = super::checksum::checksum_of(&sums, None);
                    Part {
                        part_number: Some(p.part_number),
                        size: Some(size as i64),
                        e_tag: Some(ETag::Strong(etag)),
                        last_modified: Some(Timestamp::from(p.last_modified)),
                        checksum_crc32: c.checksum_crc32,
                        checksum_crc32c: c.checksum_crc32c,
                        checksum_crc64nvme: c.checksum_crc64nvme,
                        checksum_sha1: c.checksum_sha1,
                        checksum_sha256: c.checksum_sha256,
                    }
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
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_leave_no_entry_behind_and_leftovers_are_swept() {
        let c = Completing::default();
        {
            let _a = c.turn("a").await;
            assert_eq!(c.0.lock().unwrap().len(), 1);
        }
        assert!(c.0.lock().unwrap().is_empty(), "the last holder removes it");
        // Entries nobody holds (cancelled waiters) go once there are many;
        // one that is held stays.
        let held = c.turn("held").await;
        for i in 0..1100 {
            c.0.lock()
                .unwrap()
                .insert(format!("left-{i}"), Arc::default());
        }
        let next = c.turn("next").await;
        let keys: Vec<String> = c.0.lock().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 2, "{}", keys.len());
        assert!(keys.contains(&"held".to_owned()) && keys.contains(&"next".to_owned()));
        drop((held, next));
        assert!(c.0.lock().unwrap().is_empty());
    }
}
