//! Unicode user metadata (issue 16, item 7), the way S3 carries it: HTTP
//! headers are ASCII, so a non-ASCII value travels as RFC 2047 encoded words
//! (`=?UTF-8?B?...?=`, or `?Q?`). S3 decodes them before storing and answers
//! every non-ASCII value B-encoded; ASCII values go both ways as they are
//! (docs.aws.amazon.com, "Working with object metadata"). boto3 refuses
//! non-ASCII values, so its users send encoded words; aws-sdk-s3 sends a
//! string's raw UTF-8 bytes, which sealgate takes as UTF-8 (S3 reads them as
//! Latin-1). The 2 KB limit counts the decoded UTF-8 bytes.
//!
//! Values are sealed in the envelope as decoded Unicode: the store sees
//! none of them.

use aws_sdk_s3::primitives::ByteStream;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::harness::*;

const B: &str = "meta";

/// `s` as one RFC 2047 B-encoded word.
fn b_word(s: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(s.as_bytes()))
}

/// Decodes a header value of B-encoded UTF-8 words (what sealgate answers
/// for a long value: several words separated by spaces).
fn decode_b_words(v: &str) -> String {
    let mut out = Vec::new();
    for w in v.split_whitespace() {
        let b64 = w
            .strip_prefix("=?UTF-8?B?")
            .and_then(|w| w.strip_suffix("?="))
            .unwrap_or_else(|| panic!("not a B-encoded word: {w:?}"));
        out.extend(STANDARD.decode(b64).unwrap());
    }
    String::from_utf8(out).unwrap()
}

const UNICODE: &str = "Grüße, 日本 😀";

#[tokio::test]
async fn encoded_words_are_decoded_and_answered_b_encoded() {
    let (w, gw) = World::with_bucket(B).await;
    gw.client
        .put_object()
        .bucket(B)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .metadata("plain", "ascii value, as is")
        .metadata("greeting", b_word(UNICODE))
        .metadata("q", "=?utf-8?Q?caf=C3=A9_cr=C3=A8me?=")
        .metadata("raw", "Grüße")
        .send()
        .await
        .unwrap_or_else(|e| panic!("put: {}", S3Err::from(e)));
    let want = [
        ("greeting", b_word(UNICODE)),
        ("plain", "ascii value, as is".to_owned()),
        ("q", b_word("café crème")),
        ("raw", b_word("Grüße")),
    ];
    let h = gw
        .client
        .head_object()
        .bucket(B)
        .key("k")
        .send()
        .await
        .unwrap();
    let g = gw
        .client
        .get_object()
        .bucket(B)
        .key("k")
        .send()
        .await
        .unwrap();
    for (what, m) in [("head", h.metadata()), ("get", g.metadata())] {
        let m = m.expect("metadata");
        assert_eq!(m.len(), want.len(), "{what}: {m:?}");
        for (k, v) in &want {
            assert_eq!(m.get(*k), Some(v), "{what}: x-amz-meta-{k}");
        }
    }
    // Sealed: the store holds the envelope only.
    let (info, _) = w.raw_get(B, "k").await;
    assert_eq!(
        info.headers.metadata.keys().collect::<Vec<_>>(),
        ["sg"],
        "the store's metadata"
    );
}

/// The answer's header bytes, read without an SDK: a presigned HEAD.
#[tokio::test]
async fn the_answer_header_is_ascii_on_the_wire() {
    use aws_sdk_s3::presigning::PresigningConfig;
    let (_w, gw) = World::with_bucket(B).await;
    gw.client
        .put_object()
        .bucket(B)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .metadata("greeting", b_word(UNICODE))
        .send()
        .await
        .unwrap();
    let url = gw
        .client
        .head_object()
        .bucket(B)
        .key("k")
        .presigned(PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap())
        .await
        .unwrap()
        .uri()
        .to_owned();
    let r = gw
        .unsigned("HEAD", url.strip_prefix(ENDPOINT).unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let v = r.headers().get("x-amz-meta-greeting").expect("the header");
    assert_eq!(v.as_bytes(), b_word(UNICODE).as_bytes());
    assert!(v.as_bytes().is_ascii());
}

/// A value longer than one encoded word (75 characters) is answered as
/// several; the limit counts the value's UTF-8 bytes, not its encoding.
#[tokio::test]
async fn long_values_and_the_2_kb_limit() {
    let (_w, gw) = World::with_bucket(B).await;
    let long = "é".repeat(1000); // 2,000 bytes; its encoding is longer than 2 KB
    gw.client
        .put_object()
        .bucket(B)
        .key("long")
        .body(ByteStream::from_static(b"x"))
        .metadata("v", b_word(&long))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put of 2,001 bytes of metadata: {}", S3Err::from(e)));
    let h = gw
        .client
        .head_object()
        .bucket(B)
        .key("long")
        .send()
        .await
        .unwrap();
    let v = h.metadata().unwrap().get("v").unwrap();
    assert!(v.split_whitespace().count() > 1, "one word: {v}");
    assert!(
        v.split_whitespace().all(|w| w.len() <= 75),
        "an encoded word over 75 characters: {v}"
    );
    assert_eq!(decode_b_words(v), long);

    let too_long = "é".repeat(1024); // 2,048 bytes, with the key's one: 2,049
    let e = must_fail(
        gw.client
            .put_object()
            .bucket(B)
            .key("too-long")
            .body(ByteStream::from_static(b"x"))
            .metadata("v", b_word(&too_long))
            .send()
            .await,
        "2,049 bytes of metadata",
    );
    assert_refused(&e, 400, "MetadataTooLarge", "2,049 bytes of metadata");
}

/// CopyObject with REPLACE and CreateMultipartUpload take encoded words the
/// same way; a plain copy keeps them.
#[tokio::test]
async fn copies_and_multipart_uploads_carry_unicode_metadata() {
    let (_w, gw) = World::with_bucket(B).await;
    gw.put(B, "src", b"source").await;
    gw.client
        .copy_object()
        .bucket(B)
        .key("replaced")
        .copy_source(format!("{B}/src"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("who", b_word("Zoë"))
        .send()
        .await
        .unwrap();
    gw.client
        .copy_object()
        .bucket(B)
        .key("kept")
        .copy_source(format!("{B}/replaced"))
        .send()
        .await
        .unwrap();
    let id = gw
        .client
        .create_multipart_upload()
        .bucket(B)
        .key("mp")
        .metadata("who", b_word("Zoë"))
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let etag = crate::multipart::part(&gw, B, "mp", &id, 1, b"part").await;
    crate::multipart::complete(&gw, B, "mp", &id, &[(1, &etag)])
        .await
        .unwrap();
    for k in ["replaced", "kept", "mp"] {
        let h = gw
            .client
            .head_object()
            .bucket(B)
            .key(k)
            .send()
            .await
            .unwrap();
        assert_eq!(
            h.metadata().and_then(|m| m.get("who")),
            Some(&b_word("Zoë")),
            "{k}"
        );
    }
}
