//! Versioning at an S3 store: bucket versioning, deletes of versions and
//! ListObjectVersions, each answer checked like the others of this back end
//! (a page no longer than asked, markers that move).

use std::collections::HashMap;

use aws_sdk_s3::types::{
    BucketVersioningStatus, Delete, ObjectIdentifier, VersioningConfiguration,
};

use aws_sdk_s3::error::SdkError;

use super::{bad_answer, blank_key, map_err, nonempty, to_system_time, unquote, xml_text, S3Store};
use crate::store::versions::{
    Deleted, ListVersionsRequest, VersionEntry, VersionedKey, Versioning, VersionsPage,
};
use crate::store::{StoreError, StoreResult};

/// Percent-encodes a version id for a query string (`x-amz-copy-source`).
pub(super) fn encode_query(v: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    utf8_percent_encode(v, NON_ALPHANUMERIC).to_string()
}

/// A bucket's versioning from the `Status` the store answered.
fn versioning_of(status: Option<&str>) -> Versioning {
    match status {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => Versioning::Never,
    }
}

/// Checks one ListObjectVersions page: not more items than asked for, and
/// markers that move when it is truncated (a store answering with the
/// markers it was sent would keep its caller paging forever).
pub(super) fn check_versions_page(
    sent: (Option<&str>, Option<&str>),
    max_keys: i32,
    items: usize,
    truncated: bool,
    next: (Option<&str>, Option<&str>),
) -> Result<(), String> {
    if items > super::paging::max_list_items(max_keys) {
        return Err(format!(
            "a ListObjectVersions page of {items} entries for max-keys {max_keys}"
        ));
    }
    if truncated && (next.0.is_none() || next == sent) {
        return Err("a truncated ListObjectVersions page whose markers do not move".into());
    }
    Ok(())
}

impl S3Store {
    pub(super) async fn bucket_versioning(&self, bucket: &str) -> StoreResult<Versioning> {
        let status = match self
            .client
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(o) => o.status().map(|s| s.as_str().to_owned()),
            // moto names the answer's root element
            // GetBucketVersioningResponse, which the SDK refuses: read the
            // status from the answer itself (a 200 answer that is an error,
            // as S3 may send, has an `<Error>` root and is not read so).
            Err(SdkError::ServiceError(se))
                if se.raw().status().is_success()
                    && se.raw().body().bytes().is_some_and(|b| {
                        std::str::from_utf8(b).is_ok_and(|t| {
                            t.contains("<GetBucketVersioning") && !t.contains("<Error>")
                        })
                    }) =>
            {
                se.raw().body().bytes().and_then(|b| xml_text(b, "Status"))
            }
            Err(e) => return Err(map_err(e)),
        };
        Ok(versioning_of(status.as_deref()))
    }

    pub(super) async fn set_bucket_versioning(
        &self,
        bucket: &str,
        enabled: bool,
    ) -> StoreResult<()> {
        let status = if enabled {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        self.client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .customize()
            .mutate_request(add_content_md5)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    pub(super) async fn delete_one_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<Deleted> {
        let req = self
            .client
            .delete_object()
            .bucket(bucket)
            .set_version_id(version.map(str::to_owned));
        let o = keyed!(req, key).send().await.map_err(map_err)?;
        Ok(Deleted {
            version_id: o.version_id().map(str::to_owned),
            delete_marker: o.delete_marker().unwrap_or(false),
        })
    }

    pub(super) async fn delete_versions(
        &self,
        bucket: &str,
        keys: &[VersionedKey],
    ) -> StoreResult<Vec<(VersionedKey, Result<Deleted, StoreError>)>> {
        type Id = (String, Option<String>);
        let mut done: HashMap<Id, Result<Deleted, StoreError>> = HashMap::new();
        let mut exact: HashMap<Id, Result<Deleted, StoreError>> = HashMap::new();
        for chunk in keys.chunks(1000) {
            let ids = chunk
                .iter()
                .map(|k| {
                    ObjectIdentifier::builder()
                        .key(&k.key)
                        .set_version_id(k.version_id.clone())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::new(400, "InvalidRequest", e.to_string()))?;
            let del = Delete::builder()
                .set_objects(Some(ids))
                .quiet(false)
                .build()
                .map_err(|e| StoreError::new(400, "InvalidRequest", e.to_string()))?;
            let out = self
                .timed(async {
                    self.client
                        .delete_objects()
                        .bucket(bucket)
                        .delete(del)
                        .customize()
                        .mutate_request(add_content_md5)
                        .send()
                        .await
                        .map_err(map_err)
                })
                .await?;
            for d in out.deleted() {
                let asked = (
                    d.key().unwrap_or_default().to_owned(),
                    d.version_id().map(str::to_owned),
                );
                let marker = d.delete_marker().unwrap_or(false);
                done.insert(
                    asked,
                    Ok(Deleted {
                        version_id: if marker && d.version_id().is_none() {
                            d.delete_marker_version_id().map(str::to_owned)
                        } else {
                            d.delete_marker_version_id()
                                .or(d.version_id())
                                .map(str::to_owned)
                        },
                        delete_marker: marker,
                    }),
                );
            }
            for e in out.errors() {
                done.insert(
                    (
                        e.key().unwrap_or_default().to_owned(),
                        e.version_id().map(str::to_owned),
                    ),
                    Err(StoreError::new(
                        500,
                        e.code().unwrap_or("InternalError"),
                        e.message().unwrap_or_default(),
                    )),
                );
            }
        }
        // Answers to versions asked for by id are never taken for a plain
        // delete's below.
        for k in keys {
            if let Some(r) = done.remove(&(k.key.clone(), k.version_id.clone())) {
                exact.insert((k.key.clone(), k.version_id.clone()), r);
            }
        }
        Ok(keys
            .iter()
            .map(|k| {
                let r = exact
                    .get(&(k.key.clone(), k.version_id.clone()))
                    .cloned()
                    .or_else(|| unversioned_answer(&mut done, k))
                    // Only what the store listed under Deleted was deleted:
                    // a key its answer leaves out (or an error naming
                    // another version) is not known to be gone.
                    .unwrap_or_else(|| Err(left_out()));
                (k.clone(), r)
            })
            .collect())
    }

    pub(super) async fn list_versions_page(
        &self,
        bucket: &str,
        r: &ListVersionsRequest,
    ) -> StoreResult<VersionsPage> {
        let o = self
            .client
            .list_object_versions()
            .bucket(bucket)
            .set_prefix(nonempty(&r.prefix))
            .set_delimiter(nonempty(&r.delimiter))
            .max_keys(r.max_keys)
            .set_key_marker(nonempty(&r.key_marker))
            .set_version_id_marker(nonempty(&r.version_id_marker))
            .send()
            .await
            .map_err(map_err)?;
        let truncated = o.is_truncated().unwrap_or(false);
        check_versions_page(
            (r.key_marker.as_deref(), r.version_id_marker.as_deref()),
            r.max_keys,
            o.versions().len() + o.delete_markers().len() + o.common_prefixes().len(),
            truncated,
            (o.next_key_marker(), o.next_version_id_marker()),
        )
        .map_err(bad_answer)?;
        let mut entries: Vec<VersionEntry> = o
            .versions()
            .iter()
            .map(|v| VersionEntry {
                key: v.key().unwrap_or_default().to_owned(),
                version_id: v.version_id().unwrap_or("null").to_owned(),
                is_latest: v.is_latest().unwrap_or(false),
                delete_marker: false,
                size: v.size().unwrap_or(0).max(0) as u64,
                etag: unquote(v.e_tag()),
                last_modified: to_system_time(v.last_modified()),
            })
            .collect();
        entries.extend(o.delete_markers().iter().map(|m| VersionEntry {
            key: m.key().unwrap_or_default().to_owned(),
            version_id: m.version_id().unwrap_or("null").to_owned(),
            is_latest: m.is_latest().unwrap_or(false),
            delete_marker: true,
            size: 0,
            etag: String::new(),
            last_modified: to_system_time(m.last_modified()),
        }));
        Ok(VersionsPage {
            entries,
            common_prefixes: o
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned))
                .collect(),
            is_truncated: truncated,
            next_key_marker: o.next_key_marker().map(str::to_owned),
            next_version_id_marker: o.next_version_id_marker().map(str::to_owned),
        })
    }
}

/// Many S3-compatible stores still require Content-MD5 on these requests.
fn add_content_md5(req: &mut aws_smithy_runtime_api::http::Request) {
    if let Some(b) = req.body().bytes() {
        use base64::Engine;
        use md5::Digest;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b));
        req.headers_mut().insert("content-md5", md5);
    }
}

/// A plain delete (no version asked) that the store answered with a
/// version id (the delete marker's, or as some stores do, the version it
/// removed): an answer under Deleted for that key that no delete of a
/// version asked for.
fn unversioned_answer(
    done: &mut HashMap<(String, Option<String>), Result<Deleted, StoreError>>,
    k: &VersionedKey,
) -> Option<Result<Deleted, StoreError>> {
    if k.version_id.is_some() {
        return None;
    }
    let found = done
        .iter()
        .find(|((key, v), r)| key == &k.key && v.is_some() && r.is_ok())
        .map(|(id, _)| id.clone())?;
    done.remove(&found)
}

/// A key of a batch delete the store's answer did not account for.
fn left_out() -> StoreError {
    StoreError::new(
        500,
        "InternalError",
        "the store's DeleteObjects answer did not say this key was deleted",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_pages_are_bounded_and_their_markers_move() {
        assert!(
            check_versions_page((None, None), 1000, 1000, true, (Some("a"), Some("1"))).is_ok()
        );
        assert!(check_versions_page((None, None), 1000, 10, false, (None, None)).is_ok());
        assert!(check_versions_page(
            (Some("a"), Some("1")),
            1000,
            10,
            true,
            (Some("a"), Some("2"))
        )
        .is_ok());
        // Over what was asked.
        assert!(check_versions_page((None, None), 1000, 1001, false, (None, None)).is_err());
        // Truncated with the markers it was sent, or with none.
        assert!(check_versions_page(
            (Some("a"), Some("1")),
            1000,
            10,
            true,
            (Some("a"), Some("1"))
        )
        .is_err());
        assert!(check_versions_page((None, None), 1000, 10, true, (None, None)).is_err());
    }

    #[test]
    fn a_versioning_status_is_read_strictly() {
        assert_eq!(versioning_of(Some("Enabled")), Versioning::Enabled);
        assert_eq!(versioning_of(Some("Suspended")), Versioning::Suspended);
        assert_eq!(versioning_of(None), Versioning::Never);
        assert_eq!(versioning_of(Some("enabled")), Versioning::Never);
    }

    #[test]
    fn version_ids_are_encoded_for_a_copy_source() {
        assert_eq!(encode_query("abc123"), "abc123");
        assert_eq!(encode_query("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
