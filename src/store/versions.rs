//! Versioning at the store: what a versioned read, delete or listing names
//! and answers. The store keeps the versions; sealgate passes version ids
//! through and authenticates every version it reads like the latest one.
//! A version id is the store's word: it selects which stored object a read
//! returns, and the envelope (bound to the bucket and key, not to a version)
//! decides whether what came back may be served (docs/SECURITY.md).

use std::time::SystemTime;

use super::{StoreError, StoreResult};

/// A bucket's versioning state, as the store reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: overwrites and deletes destroy the old object.
    Never,
    Enabled,
    /// Once enabled, now suspended: versions kept so far stay.
    Suspended,
}

impl Versioning {
    /// Whether the bucket may hold versions other than the latest (so an
    /// old object's multipart manifest may still be needed).
    pub fn keeps_versions(self) -> bool {
        self != Versioning::Never
    }
}

/// One object version or delete marker of a listing.
#[derive(Clone, Debug)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    /// Stored (ciphertext) size; 0 for a delete marker.
    pub size: u64,
    /// The store's ETag, unquoted; empty for a delete marker.
    pub etag: String,
    pub last_modified: SystemTime,
}

/// ListObjectVersions' parameters, passed to the store as they are.
#[derive(Clone, Debug, Default)]
pub struct ListVersionsRequest {
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub max_keys: i32,
    pub key_marker: Option<String>,
    pub version_id_marker: Option<String>,
}

/// A page of versions, versions and delete markers in the store's order
/// (by key, newest first within a key).
#[derive(Clone, Debug, Default)]
pub struct VersionsPage {
    pub entries: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}

/// What a delete did at the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    /// The version removed, or the delete marker's version created.
    pub version_id: Option<String>,
    /// A delete marker was created (no version id asked) or removed.
    pub delete_marker: bool,
}

/// A write's answer: the store's ETag and, on a versioning bucket, the
/// version id the write created.
#[derive(Clone, Debug, Default)]
pub struct Written {
    pub etag: String,
    pub version_id: Option<String>,
}

/// One key (and version) of a batch delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedKey {
    pub key: String,
    pub version_id: Option<String>,
}

/// The answer of a store without versioning to an operation that needs it.
pub fn not_implemented(what: &str) -> StoreError {
    StoreError::new(
        501,
        "NotImplemented",
        format!("{what}: this store does not support versioning"),
    )
}

/// Checks that a versioned read was answered for the version asked: a store
/// without versioning may ignore `versionId` and answer the latest object,
/// which must never be served as the version a client named. The literal
/// version `null` (an object written while versioning was off) may come
/// back without a version id.
pub fn check_version_answer(asked: Option<&str>, answered: Option<&str>) -> StoreResult<()> {
    match (asked, answered) {
        (None, _) => Ok(()),
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some("null"), None) => Ok(()),
        (Some(_), _) => Err(not_implemented(
            "the store answered a versioned read without that version",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_versioned_read_must_be_answered_by_that_version() {
        let cases: &[(Option<&str>, Option<&str>, bool)] = &[
            (None, None, true),
            (None, Some("v1"), true),
            (Some("v1"), Some("v1"), true),
            (Some("null"), None, true),
            (Some("null"), Some("null"), true),
            (Some("v1"), None, false),
            (Some("v1"), Some("v2"), false),
            (Some("null"), Some("v2"), false),
        ];
        for (asked, answered, ok) in cases {
            assert_eq!(
                check_version_answer(*asked, *answered).is_ok(),
                *ok,
                "{asked:?} answered by {answered:?}"
            );
        }
    }

    #[test]
    fn only_a_never_versioned_bucket_loses_old_objects() {
        assert!(!Versioning::Never.keeps_versions());
        assert!(Versioning::Enabled.keeps_versions());
        assert!(Versioning::Suspended.keeps_versions());
    }
}
