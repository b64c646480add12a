//! The one place where errors of the layers below become S3 errors.

use s3s::{S3Error, S3ErrorCode};

use crate::envelope::FormatError;
use crate::store::StoreError;

/// A store error keeps its S3 code, message and the store's request id (in
/// the message, for the operator); an unreachable store is 503.
pub fn from_store(e: StoreError) -> S3Error {
    crate::metrics::global().store_error(&e.code);
    if e.unavailable && e.status == 503 && e.code == "ServiceUnavailable" {
        tracing::warn!(error = %e.message, "store unavailable");
        return S3Error::with_message(
            S3ErrorCode::ServiceUnavailable,
            "The store is unavailable. Please try again.",
        );
    }
    let code = S3ErrorCode::from_bytes(e.code.as_bytes()).unwrap_or(S3ErrorCode::InternalError);
    let mut msg = e.message.clone();
    if let Some(id) = &e.request_id {
        msg = format!("{msg} (store request id {id})");
    }
    let mut err = S3Error::with_message(code.clone(), msg);
    if code.status_code().is_none() {
        if let Ok(st) = http::StatusCode::from_u16(e.status) {
            err.set_status_code(st);
        }
    }
    err
}

impl From<StoreError> for S3Error {
    fn from(e: StoreError) -> Self {
        from_store(e)
    }
}

/// An internal error: its cause goes to the log (never to the client),
/// where it is not dropped.
pub fn internal(cause: &str) -> S3Error {
    tracing::error!(cause, "internal error");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

/// Decryption and format failures. Detail goes to the log; clients get one
/// opaque message, except for the recipient list of an object they cannot
/// open (not secret: key ids are in the stored metadata).
pub fn from_format(
    e: FormatError,
    bucket: &str,
    key: &str,
    names: &dyn Fn(&str) -> Option<String>,
) -> S3Error {
    match e {
        FormatError::NoMatchingRecipient { key_ids } => {
            let list: Vec<String> = key_ids
                .iter()
                .map(|id| match names(id) {
                    Some(n) => format!("{id} ({n})"),
                    None => id.clone(),
                })
                .collect();
            S3Error::with_message(
                S3ErrorCode::AccessDenied,
                format!(
                    "This gateway holds no private key for this object. It is encrypted for key ids: {}",
                    list.join(", ")
                ),
            )
        }
        FormatError::UnsupportedVersion(v) => {
            tracing::error!(
                bucket,
                key,
                version = v,
                "object has an unsupported format version"
            );
            S3Error::with_message(
                S3ErrorCode::InternalError,
                format!(
                    "The object uses sealgate format version {v}, which this release cannot read."
                ),
            )
        }
        other => {
            tracing::error!(bucket, key, error = %other, "object failed authentication");
            integrity_error()
        }
    }
}

pub fn integrity_error() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "The stored object failed authentication: it was altered, truncated or replaced at the store.",
    )
}

pub fn not_sealgate() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidObjectState,
        "The object at the store was not written by sealgate; it is not served.",
    )
}
