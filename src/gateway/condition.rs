//! Conditional writes: `If-None-Match: *` and `If-Match` on PutObject,
//! CompleteMultipartUpload and CopyObject (create-if-absent and
//! compare-and-swap, as Terraform's state locking, Delta Lake and Iceberg
//! commits through object_store, SlateDB and job schedulers use them).
//!
//! The client's ETag is the plaintext one, the store's is not: `If-Match`
//! is compared with the object's authenticated ETag (resolved as HEAD
//! does), and on a match the write goes to the store with `If-Match: <the
//! store's ETag of that very version>`, so a writer that comes in between
//! makes the store answer 412. `If-None-Match: *` goes to the store as it
//! is. The store enforces both atomically; sealgate never checks first and
//! writes after. A condition the store does not enforce
//! ([`crate::store::conditional`]) is refused with a fast 501, never turned
//! into a silent overwrite.

use s3s::dto::ETagCondition;
use s3s::{s3_error, S3Error, S3Result};

use super::Gateway;
use crate::store::conditional::{CondKind, Source, WriteOp};
use crate::store::WriteCondition;

/// What a client asked of the object a write replaces, before it is
/// translated for the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    /// `If-None-Match: *`.
    Absent,
    /// `If-Match: *`: any object.
    Exists,
    /// `If-Match: "<plaintext ETag>"`.
    Etag(String),
}

impl Asked {
    /// The write condition of a request's `If-Match` / `If-None-Match`.
    pub fn parse(
        if_match: Option<&ETagCondition>,
        if_none_match: Option<&ETagCondition>,
    ) -> S3Result<Option<Self>> {
        match (if_match, if_none_match) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(s3_error!(
                NotImplemented,
                "If-Match and If-None-Match together on a write are not supported: send one of them"
            )),
            (None, Some(ETagCondition::Any)) => Ok(Some(Asked::Absent)),
            (None, Some(ETagCondition::ETag(_))) => Err(s3_error!(
                NotImplemented,
                "If-None-Match on a write takes only `*` (create only if absent)"
            )),
            (Some(ETagCondition::Any), None) => Ok(Some(Asked::Exists)),
            (Some(ETagCondition::ETag(e)), None) => Ok(Some(Asked::Etag(e.value().to_owned()))),
        }
    }

    /// The same from raw headers (CopyObject's `If-Match` / `If-None-Match`
    /// on its destination, which the S3 front end does not parse).
    pub fn from_headers(h: &http::HeaderMap) -> S3Result<Option<Self>> {
        let cond = |name: http::header::HeaderName| {
            h.get(name)
                .map(|v| {
                    ETagCondition::parse_http_header(v.as_bytes()).map_err(|_| {
                        s3_error!(InvalidArgument, "an invalid If-Match or If-None-Match")
                    })
                })
                .transpose()
        };
        Self::parse(
            cond(http::header::IF_MATCH)?.as_ref(),
            cond(http::header::IF_NONE_MATCH)?.as_ref(),
        )
    }

    fn kind(&self) -> CondKind {
        match self {
            Asked::Absent => CondKind::IfNoneMatch,
            Asked::Exists | Asked::Etag(_) => CondKind::IfMatch,
        }
    }
}

fn precondition_failed() -> S3Error {
    s3_error!(
        PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold"
    )
}

/// 501 for a condition the store does not enforce: the store's limitation
/// and the config key, said once and fast (clients that retry 5xx retry it;
/// each retry costs no store request).
fn not_enforced(op: WriteOp, kind: CondKind, source: Source) -> S3Error {
    let why = match source {
        Source::Config => {
            "store.conditional_writes = \"unsupported\" in this gateway's configuration".to_owned()
        }
        Source::Native | Source::Probe => format!(
            "the store does not enforce {} on {} (a probe of the store found so; store.conditional_writes = \"auto\")",
            kind.header(),
            op.name()
        ),
    };
    S3Error::with_message(
        s3s::S3ErrorCode::NotImplemented,
        format!(
            "Conditional {} with {} is refused: {why}. sealgate makes conditional writes atomic at the store and never fakes them; without the store's check the write could silently overwrite a concurrent one. Set store.conditional_writes = \"enforced\" only for a store that enforces every condition.",
            op.name(),
            kind.header()
        ),
    )
}

impl Gateway {
    /// Writes a small object of the gateway's own only if none has the key:
    /// `Ok(false)` when one has. Atomic when the store enforces
    /// `If-None-Match: *` on PutObject (the local store, moto, S3); otherwise
    /// a HEAD then a PUT, which two writers racing between the two can both
    /// pass (said in docs/SHARING.md).
    pub async fn put_small_if_absent(
        &self,
        bucket: &str,
        key: &str,
        raw: bytes::Bytes,
    ) -> crate::store::StoreResult<bool> {
        let atomic = match self.conditional.support(&self.store, bucket).await {
            Ok((support, _)) => support.enforces(WriteOp::Put, CondKind::IfNoneMatch),
            Err(e) => {
                tracing::debug!(error = %e, "conditional write support unknown: checking first");
                false
            }
        };
        if !atomic {
            match self.store.head(bucket, key).await {
                Ok(_) => return Ok(false),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let cond = atomic.then_some(WriteCondition::Absent);
        // On a bucket with Object Lock the write carries the checksum the
        // store asks of every write there (as `put_small`'s do).
        let lock = self
            .bucket_locked(bucket)
            .await
            .then(crate::store::lock::ObjectLock::default);
        match self
            .put_small_with(bucket, key, raw, lock, cond.as_ref())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if atomic && (e.status == 412 || e.status == 409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Refuses (501, without touching the object) a condition the store
    /// does not enforce on `op`. The first conditional write of a process
    /// may probe the store in `bucket`.
    pub(crate) async fn check_enforced(
        &self,
        bucket: &str,
        op: WriteOp,
        asked: Option<&Asked>,
    ) -> S3Result<()> {
        let Some(a) = asked else { return Ok(()) };
        let (support, source) = self.conditional.support(&self.store, bucket).await?;
        if support.enforces(op, a.kind()) {
            Ok(())
        } else {
            Err(not_enforced(op, a.kind(), source))
        }
    }

    /// The condition to send the store for what the client asked of
    /// `bucket/key`: for `If-Match`, the store ETag of the version whose
    /// authenticated (plaintext) ETag matched; 412 when none does, 404 when
    /// there is no object.
    pub(crate) async fn store_condition(
        &self,
        bucket: &str,
        key: &str,
        asked: Option<&Asked>,
    ) -> S3Result<Option<WriteCondition>> {
        let etag = match asked {
            None => return Ok(None),
            Some(Asked::Absent) => return Ok(Some(WriteCondition::Absent)),
            Some(Asked::Exists) => self.store.head(bucket, key).await?.etag,
            Some(Asked::Etag(want)) => {
                // One store request: the store's ETag and the authenticated
                // trailer (or manifest) come from the same version.
                let r = self.resolve_tail(bucket, key).await?;
                if r.etag != *want {
                    return Err(precondition_failed());
                }
                r.info.etag.clone()
            }
        };
        if etag.is_empty() {
            return Err(super::error::internal(
                "the store gave no ETag for the object a conditional write replaces",
            ));
        }
        Ok(Some(WriteCondition::Matches(etag)))
    }

    /// [`Self::check_enforced`] and [`Self::store_condition`] in one.
    pub(crate) async fn write_condition(
        &self,
        bucket: &str,
        key: &str,
        op: WriteOp,
        asked: Option<&Asked>,
    ) -> S3Result<Option<WriteCondition>> {
        self.check_enforced(bucket, op, asked).await?;
        self.store_condition(bucket, key, asked).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    fn tag(s: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(s.to_owned()))
    }

    #[test]
    fn what_a_client_asks() {
        let any = ETagCondition::Any;
        assert_eq!(Asked::parse(None, None).unwrap(), None);
        assert_eq!(Asked::parse(None, Some(&any)).unwrap(), Some(Asked::Absent));
        assert_eq!(Asked::parse(Some(&any), None).unwrap(), Some(Asked::Exists));
        assert_eq!(
            Asked::parse(Some(&tag("abc")), None).unwrap(),
            Some(Asked::Etag("abc".into()))
        );
        for (m, nm) in [
            (None, Some(tag("abc"))),
            (Some(tag("a")), Some(any.clone())),
        ] {
            let e = Asked::parse(m.as_ref(), nm.as_ref()).unwrap_err();
            assert_eq!(*e.code(), s3s::S3ErrorCode::NotImplemented);
        }
    }

    #[test]
    fn copy_conditions_come_from_the_headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(Asked::from_headers(&h).unwrap(), None);
        h.insert(http::header::IF_NONE_MATCH, "*".parse().unwrap());
        assert_eq!(Asked::from_headers(&h).unwrap(), Some(Asked::Absent));
        let mut h = http::HeaderMap::new();
        h.insert(http::header::IF_MATCH, "\"0123\"".parse().unwrap());
        assert_eq!(
            Asked::from_headers(&h).unwrap(),
            Some(Asked::Etag("0123".into()))
        );
        h.insert(http::header::IF_MATCH, "no quotes".parse().unwrap());
        assert!(Asked::from_headers(&h).is_err());
    }
}
