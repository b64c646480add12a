//! Finding and removing what sealgate left at the store that nothing needs
//! any more (`sealgate gc`): manifests of multipart objects that were
//! overwritten or deleted when their tidy-up failed, and the records of
//! uploads the store no longer has (expired by a lifecycle rule, or cut off
//! between completion and clean-up).
//!
//! Safety rules, in order:
//! - Only keys under `.sealgate/mp/`, `.sealgate/up/` and
//!   `.sealgate/probe/` are ever deleted (and uploads of keys under
//!   `.sealgate/probe/` aborted); anything else under `.sealgate/` is
//!   reported and left alone.
//! - A manifest is kept while any object in the bucket names its upload id
//!   (inline header or manifest pointer). A manifest or record younger than
//!   `min_age` is kept whatever it looks like: a completion writes the
//!   manifest before the store completes the upload, and an upload's record
//!   is written right after the store creates it.
//! - An object whose envelope cannot be read (the store answers an error, an
//!   envelope that does not parse) stops the run before anything is deleted:
//!   a manifest is only called orphaned when every object was accounted for.
//! - Upload records are kept while the store lists their upload; a store that
//!   cannot list uploads keeps them all.
//! - What the conditional-write probe left (a gateway stopped mid-probe:
//!   [`crate::store::conditional`]) goes once older than `min_age`.
//! - On a bucket that keeps versions (versioning enabled or suspended at
//!   the store), every version of every object counts: a manifest is kept
//!   while any version names it, and an orphaned one is removed with all its
//!   versions (a plain delete would only hide it behind a delete marker).
//!   The version listing is bounded ([`MAX_VERSIONS`] entries, the
//!   store's markers never going back or repeating): past it the run stops
//!   before anything is deleted. Requests through the gateway never delete
//!   a manifest on such a bucket: gc is what removes them there.
//! - On a bucket that has never kept versions, the state is asked of the
//!   store again before manifests are deleted (versioning may have been
//!   enabled during the run).
//! - Dry run unless told to delete.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use super::records::upload_prefix;
use super::versions::{VersionWalk, WalkError};
use super::{Gateway, HIDDEN_PREFIX, META_KEY};
use crate::envelope::header::MetaValue;
use crate::envelope::{BodyBinding, Header};
use crate::store::conditional::PROBE_PREFIX;
use crate::store::versions::{VersionEntry, VersionedKey};
use crate::store::{ListEntry, ListRequest, StoreError};

/// Most versions and delete markers a run reads (and keeps in memory, a
/// few hundred bytes each): a bucket with more is beyond one run.
pub const MAX_VERSIONS: usize = 2_000_000;

/// Every version and delete marker of the bucket, within [`MAX_VERSIONS`],
/// the store's markers checked (they never go back or repeat).
async fn list_all_versions(gw: &Gateway, bucket: &str) -> Result<Vec<VersionEntry>, GcError> {
    let mut walk = VersionWalk::new(gw, bucket, None, MAX_VERSIONS);
    let mut out = Vec::new();
    loop {
        match walk.next_page().await {
            Ok(Some(entries)) => out.extend(entries),
            Ok(None) => return Ok(out),
            Err(WalkError::Store(e)) => return Err(e.into()),
            Err(WalkError::Stuck) => return Err(GcError::Stuck(bucket.to_owned())),
            Err(WalkError::OverBudget(limit)) => {
                return Err(GcError::TooManyVersions {
                    bucket: bucket.to_owned(),
                    limit,
                })
            }
        }
    }
}

/// What a run found (and, with `apply`, deleted).
#[derive(Debug, Default)]
pub struct GcReport {
    /// Objects looked at.
    pub objects: usize,
    /// Manifests no object needs: (key, stored bytes).
    pub orphan_manifests: Vec<(String, u64)>,
    /// Records of uploads the store no longer has.
    pub orphan_records: Vec<(String, u64)>,
    /// Keys the conditional-write probe left, and its uploads (key, upload
    /// id) still in progress.
    pub probe_leftovers: Vec<(String, u64)>,
    pub probe_uploads: Vec<(String, String)>,
    /// Kept because they are younger than `min_age`.
    pub too_young: usize,
    /// Keys under `.sealgate/` that are none of sealgate's known kinds.
    pub unknown: Vec<String>,
    /// Whether the store could list uploads (records are kept otherwise).
    pub uploads_listed: bool,
    /// Old versions and delete markers of deleted upload records, probe
    /// keys and listing index segments (on a bucket that keeps versions).
    pub old_versions: usize,
    /// Keys (and versions) deleted (with `apply`).
    pub deleted: usize,
}

pub struct GcOptions {
    pub apply: bool,
    pub min_age: Duration,
    pub concurrency: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    #[error("{key}: {why}; nothing was deleted")]
    Unreadable { key: String, why: String },
    #[error("the store's listing of {0} does not advance; nothing was deleted")]
    Stuck(String),
    #[error(
        "{bucket} has more than {limit} versions and delete markers, the most one run reads \
         (gc's version budget); nothing was deleted"
    )]
    TooManyVersions { bucket: String, limit: usize },
    #[error("{0} started keeping versions during the run; nothing was deleted")]
    VersioningChanged(String),
}

/// Every entry under `prefix` (`None`: the whole bucket), page by page, with
/// a check that the store's continuation advances.
async fn list_all(
    gw: &Gateway,
    bucket: &str,
    prefix: Option<&str>,
) -> Result<Vec<ListEntry>, GcError> {
    let mut out: Vec<ListEntry> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = gw
            .store
            .list(
                bucket,
                &ListRequest {
                    prefix: prefix.map(str::to_owned),
                    max_keys: 1000,
                    continuation_token: token.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let before = out.last().map(|e| e.key.clone());
        if let (Some(b), Some(first)) = (&before, page.entries.first()) {
            if &first.key <= b {
                return Err(GcError::Stuck(bucket.to_owned()));
            }
        }
        out.extend(page.entries);
        match page.next_continuation_token {
            Some(t) if page.is_truncated => {
                if token.as_ref() == Some(&t) {
                    return Err(GcError::Stuck(bucket.to_owned()));
                }
                token = Some(t);
            }
            _ => return Ok(out),
        }
    }
}

/// The upload id a stored object's envelope names, if it is multipart.
async fn upload_id_of(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Option<[u8; 16]>, GcError> {
    let unreadable = |why: String| GcError::Unreadable {
        key: key.to_owned(),
        why,
    };
    let info = match gw.store.head_version(bucket, key, version).await {
        Ok(i) => i,
        // Deleted since the listing: it needs nothing.
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(meta) = info.headers.metadata.get(META_KEY) else {
        return Ok(None);
    };
    match MetaValue::decode(meta).map_err(|e| unreadable(e.to_string()))? {
        MetaValue::Inline(raw) => match Header::parse(&raw)
            .map_err(|e| unreadable(e.to_string()))?
            .binding
        {
            BodyBinding::Multipart { upload_id } => Ok(Some(upload_id)),
            BodyBinding::Single { .. } => Ok(None),
        },
        MetaValue::InManifest { upload_id, .. } => Ok(Some(upload_id)),
        MetaValue::Overflow { .. } => Ok(None),
    }
}

fn old_enough(e: &ListEntry, min_age: Duration, now: SystemTime) -> bool {
    now.duration_since(e.last_modified)
        .is_ok_and(|age| age >= min_age)
}

/// Finds (and with `opts.apply` deletes) what nothing needs.
pub async fn gc(gw: &Gateway, bucket: &str, opts: &GcOptions) -> Result<GcReport, GcError> {
    let now = SystemTime::now();
    let mut report = GcReport::default();
    let all = list_all(gw, bucket, None).await?;
    let (hidden, objects): (Vec<ListEntry>, Vec<ListEntry>) = all
        .into_iter()
        .partition(|e| e.key.starts_with(HIDDEN_PREFIX));
    // On a bucket that keeps versions, every version of an object may need
    // its manifest; and a manifest may be there only as versions.
    let versions = if gw.versioning(bucket).await?.keeps_versions() {
        Some(list_all_versions(gw, bucket).await?)
    } else {
        None
    };
    let named: Vec<(String, Option<String>)> = match &versions {
        Some(vs) => vs
            .iter()
            .filter(|v| !v.delete_marker && !v.key.starts_with(HIDDEN_PREFIX))
            .map(|v| (v.key.clone(), Some(v.version_id.clone())))
            .collect(),
        None => objects.iter().map(|e| (e.key.clone(), None)).collect(),
    };
    report.objects = named.len();
    let ids: Vec<Result<Option<[u8; 16]>, GcError>> = futures::stream::iter(named)
        .map(|(k, v)| async move { upload_id_of(gw, bucket, &k, v.as_deref()).await })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut live_manifests = HashSet::new();
    for id in ids {
        if let Some(u) = id? {
            live_manifests.insert(super::object::manifest_key(&u));
        }
    }
    let live_uploads: Option<HashSet<String>> = match gw.store.list_uploads(bucket, None).await {
        Ok(ups) => {
            report.probe_uploads = ups
                .iter()
                .filter(|u| u.key.starts_with(PROBE_PREFIX))
                .filter(|u| {
                    now.duration_since(u.initiated)
                        .is_ok_and(|age| age >= opts.min_age)
                })
                .map(|u| (u.key.clone(), u.upload_id.clone()))
                .collect();
            Some(ups.iter().map(|u| upload_prefix(&u.upload_id)).collect())
        }
        Err(e) if e.status == 501 || e.code == "NotImplemented" => None,
        Err(e) => return Err(e.into()),
    };
    report.uploads_listed = live_uploads.is_some();
    let mp = format!("{HIDDEN_PREFIX}mp/");
    let up = format!("{HIDDEN_PREFIX}up/");
    let mut doomed = Vec::new();
    let mut doomed_versions: Vec<VersionedKey> = Vec::new();
    if let Some(vs) = &versions {
        // Manifests by key: every version of one (delete markers too), the
        // newest time deciding its age.
        let mut manifests: std::collections::BTreeMap<&str, (Vec<&VersionEntry>, SystemTime)> =
            Default::default();
        for v in vs.iter().filter(|v| v.key.starts_with(&mp)) {
            let m = manifests
                .entry(v.key.as_str())
                .or_insert((Vec::new(), SystemTime::UNIX_EPOCH));
            m.1 = m.1.max(v.last_modified);
            m.0.push(v);
        }
        for (key, (vers, newest)) in manifests {
            if live_manifests.contains(key) {
                continue;
            }
            if now
                .duration_since(newest)
                .map_or(true, |age| age < opts.min_age)
            {
                report.too_young += 1;
                continue;
            }
            let size = vers.iter().map(|v| v.size).max().unwrap_or(0);
            report.orphan_manifests.push((key.to_owned(), size));
            doomed_versions.extend(vers.iter().map(|v| VersionedKey {
                key: v.key.clone(),
                version_id: Some(v.version_id.clone()),
            }));
        }
    }
    if let Some(vs) = &versions {
        // Upload records, probe keys and merged listing index segments
        // deleted on a bucket that keeps versions stay as old versions
        // behind delete markers: once no current object has the key, every
        // version of it goes (the current ones are judged below, as on any
        // bucket; current segments are kept).
        let current: HashSet<&str> = hidden.iter().map(|e| e.key.as_str()).collect();
        for v in vs.iter().filter(|v| {
            (v.key.starts_with(&up)
                || v.key.starts_with(PROBE_PREFIX)
                || v.key.starts_with(super::store_index::SEGMENT_PREFIX))
                && !current.contains(v.key.as_str())
        }) {
            if now
                .duration_since(v.last_modified)
                .map_or(true, |age| age < opts.min_age)
            {
                report.too_young += 1;
                continue;
            }
            report.old_versions += 1;
            doomed_versions.push(VersionedKey {
                key: v.key.clone(),
                version_id: Some(v.version_id.clone()),
            });
        }
    }
    for e in hidden {
        if e.key.starts_with(&mp) {
            if versions.is_some() {
                // Counted above, with all its versions.
                continue;
            }
            if live_manifests.contains(&e.key) {
                continue;
            }
            if !old_enough(&e, opts.min_age, now) {
                report.too_young += 1;
                continue;
            }
            report.orphan_manifests.push((e.key.clone(), e.size));
            doomed.push(e.key);
        } else if let Some(rest) = e.key.strip_prefix(&up) {
            let Some(live) = &live_uploads else { continue };
            let folder = match rest.split_once('/') {
                Some((h, _)) => format!("{up}{h}/"),
                None => {
                    report.unknown.push(e.key);
                    continue;
                }
            };
            if live.contains(&folder) {
                continue;
            }
            if !old_enough(&e, opts.min_age, now) {
                report.too_young += 1;
                continue;
            }
            report.orphan_records.push((e.key.clone(), e.size));
            doomed.push(e.key);
        } else if e.key.starts_with(PROBE_PREFIX) {
            if !old_enough(&e, opts.min_age, now) {
                report.too_young += 1;
                continue;
            }
            report.probe_leftovers.push((e.key.clone(), e.size));
            doomed.push(e.key);
        } else if !e.key.starts_with(&format!("{HIDDEN_PREFIX}dir/"))
            && !e.key.starts_with(super::store_index::SEGMENT_PREFIX)
        {
            report.unknown.push(e.key);
        }
    }
    if opts.apply {
        // Plain deletes of manifests judged from the latest objects only:
        // the bucket must still keep no versions (asked at the store again).
        if versions.is_none()
            && doomed.iter().any(|k| k.starts_with(&mp))
            && !gw.never_versioned_now(bucket).await
        {
            return Err(GcError::VersioningChanged(bucket.to_owned()));
        }
        for (key, id) in &report.probe_uploads {
            if gw.store.abort_multipart(bucket, key, id).await.is_ok() {
                report.deleted += 1;
            }
        }
        for chunk in doomed.chunks(1000) {
            for (_, err) in gw.store.delete_many(bucket, chunk).await? {
                if err.is_none() {
                    report.deleted += 1;
                }
            }
        }
        for chunk in doomed_versions.chunks(1000) {
            for (_, r) in gw.store.delete_many_versions(bucket, chunk).await? {
                if r.is_ok() {
                    report.deleted += 1;
                }
            }
        }
    }
    Ok(report)
}
