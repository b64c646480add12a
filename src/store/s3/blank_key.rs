//! Object keys made of whitespace only (` `, `   `, a tab), which S3 allows
//! like any other key of 1 to 1,024 bytes, but aws-sdk-s3 refuses to send:
//! the endpoint parameters of every operation on an object take a key that
//! `trim()`s to nothing for a missing one (`MissingField { field: "key" }`),
//! and the request never leaves the client.
//!
//! Such a key goes to the SDK as [`STANDIN`], and the request's path is set
//! to the real key just before the request is signed (so the signature
//! covers the real key). The path is written as the SDK writes any key:
//! every byte but the unreserved ones percent-encoded.

use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What the SDK is given instead of a blank key. Any key the SDK accepts
/// would do: only the last path segment of the request is replaced, and only
/// when it is exactly this.
pub const STANDIN: &str = "sealgate-blank-key";

/// Whether aws-sdk-s3 would refuse `key` (the test its endpoint parameters
/// apply).
pub fn is_blank(key: &str) -> bool {
    !key.is_empty() && key.trim().is_empty()
}

/// The key the SDK is given for `key`.
pub fn sdk_key(key: &str) -> &str {
    if is_blank(key) {
        STANDIN
    } else {
        key
    }
}

/// Bytes kept as they are in a key's path segment: RFC 3986's unreserved set.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `uri` with its last path segment, if it is [`STANDIN`], replaced by `key`
/// percent-encoded; `None` when the path does not end with the stand-in.
pub fn uri_with_key(uri: &str, key: &str) -> Option<String> {
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    let base = path.strip_suffix(STANDIN)?.strip_suffix('/')?;
    let mut out = format!("{base}/{}", utf8_percent_encode(key, KEEP));
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// Puts `key` back into a request built for [`STANDIN`] (a
/// `mutate_request` hook: it runs before signing, on every attempt).
pub fn restore(req: &mut HttpRequest, key: &str) {
    if let Some(uri) = uri_with_key(req.uri(), key) {
        if let Err(e) = req.set_uri(uri) {
            // Cannot happen for a URI the SDK built with an encoded key; the
            // request then goes to the stand-in, which holds nothing.
            tracing::error!("a blank key's request path: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_keys_are_the_ones_the_sdk_trims_away() {
        for k in [" ", "   ", "\t", " \u{3000} ", "\u{a0}"] {
            assert!(is_blank(k), "{k:?}");
            assert_eq!(sdk_key(k), STANDIN);
        }
        for k in ["", "a", " a", "a ", ".", "%20"] {
            assert!(!is_blank(k), "{k:?}");
        }
        assert_eq!(sdk_key(" a "), " a ");
    }

    #[test]
    fn the_standin_segment_becomes_the_encoded_key() {
        for (uri, key, want) in [
            (
                "http://127.0.0.1:3900/b/sealgate-blank-key?x-id=PutObject",
                " ",
                Some("http://127.0.0.1:3900/b/%20?x-id=PutObject"),
            ),
            (
                "http://127.0.0.1:3900/b/sealgate-blank-key",
                " \t ",
                Some("http://127.0.0.1:3900/b/%20%09%20"),
            ),
            (
                "https://b.s3.example/sealgate-blank-key?uploadId=x%2By&partNumber=2",
                "\u{3000}",
                Some("https://b.s3.example/%E3%80%80?uploadId=x%2By&partNumber=2"),
            ),
            // Only the whole last segment is replaced.
            ("http://h/b/a-sealgate-blank-key", " ", None),
            ("http://h/b/sealgate-blank-key/x", " ", None),
            ("http://h/b/other", " ", None),
        ] {
            assert_eq!(uri_with_key(uri, key).as_deref(), want, "{uri} {key:?}");
        }
    }
}
